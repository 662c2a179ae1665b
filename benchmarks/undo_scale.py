"""Undoing model-run deletions (--runs, 1,000 by default; `make bench` gives 10,000) against the sandbox
with 20 ms injected latency per request, beside the apply of the same deletions, in one run.

The apply journals each run as it was (item, access settings, lock history) and deletes its graph and
its record; the undo reads every run back (absent: typed then general fetch), then per run imports it
add-only, relodges its graph and reads its after-image. Figures: wall time of each phase as a ratio to
its bound, the higher of `requests x 20 ms / concurrency` (reads 16 at a time, actions 8 at a time: the
defaults) and the sandbox's CPU time in it; the undo's whole time against the apply's; and the journal's
fsyncs per action (it fsyncs each event before going on) with their time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from fetch_throughput import start_server
from plan_scale import (
    LATENCY_MS,
    deletion_playbook,
    endpoints_of,
    latency_bound_s,
    run_ids,
    server_cpu_s,
)
from provena_ops.apply.executor import Executor
from provena_ops.apply.journal import Journal, Planned, RunStarted, now
from provena_ops.apply.undo import read_run, undo_playbook
from provena_ops.facts.reader import read_state
from provena_ops.facts.restore_reader import read_restore_state
from provena_ops.plan.model import EnvironmentInfo, Plan, PlaybookInfo
from provena_ops.plan.planner import make_plan
from provena_ops.playbook.model import Playbook, Restore
from provena_ops.provena.auth import StaticToken
from provena_ops.provena.http import ProvenaHttp
from provena_ops.sandbox.admin import seed, token

if TYPE_CHECKING:
    from _typeshed import HasFileno

READS, ACTIONS = 16, 8


class Fsyncs:
    """Counts the journal's fsyncs (it calls os.fsync once per event) and the time they take, once
    `install`ed (by main: importing this module changes nothing)."""

    def __init__(self) -> None:
        self.count, self.seconds = 0, 0.0
        self._fsync = os.fsync

    def install(self) -> None:
        os.fsync = self._counted

    def _counted(self, fd: int | HasFileno) -> None:
        started = time.perf_counter()
        self._fsync(fd)
        self.seconds += time.perf_counter() - started
        self.count += 1


FSYNCS = Fsyncs()


class Phase:
    """One phase's wall time against its bound: the higher of `requests x 20 ms / lanes` and the
    sandbox's own CPU time in it (one sandbox process serves every request)."""

    def __init__(
        self, name: str, seconds: float, requests: int, lanes: int, sandbox_cpu: float, fsyncs: int = 0
    ) -> None:
        self.name, self.seconds, self.requests, self.fsyncs = name, seconds, requests, fsyncs
        self.latency_bound = latency_bound_s(requests, lanes)
        self.sandbox_cpu = sandbox_cpu
        self.bound = max(self.latency_bound, sandbox_cpu)

    def __str__(self) -> str:
        return (
            f"{self.name} {self.seconds:.2f} s for {self.requests:,} requests = "
            f"{self.seconds / self.bound:.2f}x its bound (latency {self.latency_bound:.1f} s, sandbox CPU "
            f"{self.sandbox_cpu:.1f} s)"
        )


async def run_plan(
    http: ProvenaHttp,
    playbook: Playbook,
    environment: EnvironmentInfo,
    run_id: str,
    runs: Path,
    server: subprocess.Popen[str],
) -> tuple[Phase, Phase, int, Path]:
    """Plan and carry out `playbook` as one journalled run: (plan phase, execute phase, changed, journal)."""
    first = playbook.operations[0]
    info = PlaybookInfo(file="bench.yaml", name=playbook.name, sha256="sha256:" + "0" * 64)
    journal = Journal(runs, run_id)
    journal.write(
        RunStarted(
            at=now(), run_id=run_id, who="admin", environment=environment, playbook=info, command="bench",
        )
    )  # fmt: skip
    started, before, cpu = time.perf_counter(), http.requests, server_cpu_s(server)
    if isinstance(first, Restore):
        state = await read_restore_state(http, first)
        state.journal_digest = first.digest
    else:
        state = await read_state(http, playbook)
    plan: Plan = make_plan(playbook, state, playbook_info=info, environment=environment, created_at="now")
    assert not plan.problems, plan.problems
    journal.write(Planned(at=now(), plan=plan))
    planning = Phase(
        "plan", time.perf_counter() - started, http.requests - before, READS, server_cpu_s(server) - cpu
    )
    started, before, cpu, synced = time.perf_counter(), http.requests, server_cpu_s(server), FSYNCS.count
    recap = await Executor(http, plan, journal, parallelism=ACTIONS).run()
    executing = Phase(
        "execute",
        time.perf_counter() - started,
        http.requests - before,
        ACTIONS,
        server_cpu_s(server) - cpu,
        FSYNCS.count - synced,
    )
    journal.close()
    return planning, executing, recap.changed, journal.path


async def apply_then_undo(
    endpoints: dict[str, str], access: str, runs: list[str], tmp: Path, server: subprocess.Popen[str]
) -> None:
    target = endpoints_of(endpoints)
    environment = EnvironmentInfo(name="bench", stage="DEV", registry=target.registry)
    async with ProvenaHttp(target, StaticToken(access), environment="bench", concurrency=READS) as http:
        apply_plan, apply_run, deleted, journal = await run_plan(
            http, deletion_playbook(runs), environment, "20261202T000000Z-000001", tmp, server
        )
        undoing = undo_playbook(read_run(journal))
        undo_plan, undo_run, restored, _ = await run_plan(
            http, undoing, environment, "20261202T000001Z-000002", tmp, server
        )
    applied = apply_plan.seconds + apply_run.seconds
    undone = undo_plan.seconds + undo_run.seconds
    whole = undone / (undo_plan.bound + undo_run.bound)
    applied_whole = applied / (apply_plan.bound + apply_run.bound)
    print(
        f"apply {deleted:,} model-run deletions: {applied:.2f} s; {apply_plan}; {apply_run} "
        f"(whole: {applied_whole:.2f}x its bound, target <= 1.4x)"
    )
    print(
        f"undo of them ({restored:,} restored): {undone:.2f} s; {undo_plan}; {undo_run} "
        f"(whole: {whole:.2f}x its bound, target <= 1.4x); undo / apply = {undone / applied:.2f}"
    )
    for name, phase, actions in (("apply", apply_run, deleted), ("undo", undo_run, restored)):
        print(
            f"journal of the {name}: {phase.fsyncs / max(actions, 1):.1f} fsyncs per action "
            f"({phase.fsyncs:,} in all)"
        )
    print(f"fsync time, in all: {FSYNCS.seconds:.2f} s ({FSYNCS.count:,} fsyncs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1_000)
    args = parser.parse_args()
    FSYNCS.install()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "undo.db"
        locked = seed(db, args.runs + 20, reset=False).notable["locked record"]
        runs = [run for run in run_ids(db) if run != locked][: args.runs]
        access = token(db, "admin", None, 3600, None)
        server, endpoints = start_server(db, LATENCY_MS)
        try:
            cpu = server_cpu_s(server)
            asyncio.run(apply_then_undo(endpoints, access, runs, Path(tmp), server))
            print(f"sandbox CPU {server_cpu_s(server) - cpu:.2f} s")
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
