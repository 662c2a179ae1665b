"""Applying 1,000 model-run deletions against the sandbox with 20 ms injected latency per request.

Each deletion re-reads its run, deletes its graph, then its registry record (three requests in a row),
after a plan that fetches and trial-deletes every run. Figures, from one run:
- wall time of planning and of executing, each as a ratio to its bound `requests x 20 ms / concurrency`
  (planning reads 16 at a time, execution runs 8 actions at a time: the defaults);
- the same work one request and one action at a time, as Provena's delete-model-runs script does it,
  measured on a 100-run sample and compared per run.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from fetch_throughput import start_server
from plan_scale import LATENCY_MS, deletion_playbook, endpoints_of, run_ids, server_cpu_s
from provena_ops.apply.executor import Executor
from provena_ops.apply.journal import Journal
from provena_ops.facts.reader import read_state
from provena_ops.plan.model import EnvironmentInfo, PlaybookInfo
from provena_ops.plan.planner import make_plan
from provena_ops.playbook.model import Playbook
from provena_ops.provena.auth import StaticToken
from provena_ops.provena.http import ProvenaHttp
from provena_ops.sandbox.admin import seed, token


async def apply_once(
    endpoints: dict[str, str], access: str, playbook: Playbook, concurrency: int, parallelism: int, runs: Path
) -> tuple[float, int, float, int, int]:
    """(plan seconds, plan requests, execute seconds, execute requests, runs deleted)."""
    target = endpoints_of(endpoints)
    async with ProvenaHttp(target, StaticToken(access), environment="bench", concurrency=concurrency) as http:
        started = time.perf_counter()
        state = await read_state(http, playbook)
        plan = make_plan(
            playbook,
            state,
            playbook_info=PlaybookInfo(file="bench.yaml", name="bench", sha256="sha256:0"),
            environment=EnvironmentInfo(name="bench", stage="DEV", registry=target.registry),
            created_at="now",
        )
        planned, plan_requests = time.perf_counter() - started, http.requests
        journal = Journal(runs, f"bench-{parallelism}")
        executor = Executor(http, plan, journal, parallelism=parallelism)
        started = time.perf_counter()
        recap = await executor.run()
        journal.close()
        return (
            planned,
            plan_requests,
            time.perf_counter() - started,
            http.requests - plan_requests,
            recap.changed,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "apply.db"
        locked = seed(db, args.runs + 200, reset=False).notable["locked record"]
        runs = [run for run in run_ids(db) if run != locked]  # a locked run fails its deletion, by design
        access = token(db, "admin", None, 3600, None)
        server, endpoints = start_server(db, LATENCY_MS)
        try:
            cpu = server_cpu_s(server)
            plan_s, plan_requests, run_s, run_requests, deleted = asyncio.run(
                apply_once(endpoints, access, deletion_playbook(runs[: args.runs]), 16, 8, Path(tmp))
            )
            server_cpu = server_cpu_s(server) - cpu
            plan_bound = plan_requests * LATENCY_MS / 1000 / 16
            run_bound = run_requests * LATENCY_MS / 1000 / 8
            total = plan_s + run_s
            print(
                f"apply {deleted:,} model-run deletions: {total:.2f} s; plan {plan_s:.2f} s for "
                f"{plan_requests:,} requests = {plan_s / plan_bound:.2f}x its bound; "
                f"execute {run_s:.2f} s for {run_requests:,} requests = {run_s / run_bound:.2f}x its bound "
                f"(whole: {total / (plan_bound + run_bound):.2f}x); sandbox CPU {server_cpu:.2f} s"
            )
            sample = runs[args.runs : args.runs + 100]
            one_plan, _, one_run, _, one_deleted = asyncio.run(
                apply_once(endpoints, access, deletion_playbook(sample), 1, 1, Path(tmp))
            )
            sequential = (one_plan + one_run) / one_deleted
            concurrent = total / deleted
            print(
                f"one request and one action at a time (100-run sample): {sequential * 1000:.1f} ms per run; "
                f"concurrent {concurrent * 1000:.1f} ms per run -> {sequential / concurrent:.1f}x faster"
            )
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
