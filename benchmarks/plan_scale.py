"""Planning at scale against the sandbox with 20 ms injected latency per request.

Figures, all from one run so they survive a noisy machine:
- 1,000 model-run deletions, and a study with ~1,000 linked model runs: wall time as a ratio to the bound
  `requests x 20 ms / concurrency` (target: within 1.5x);
- the same deletions one request at a time, as Provena's admin script does, measured on a 100-run sample
  and compared per request (target: concurrent planning at least 8x faster);
- peak memory of planning an edit of 10,000 model runs (link them all to one study, no latency):
  every run, its referenced entities and its downstream records are read, and every edited record is
  held in the plan (target: under 300 MB).

Client and sandbox share the machine's two cores, so each figure also gives the CPU time of both: when
either exceeds the latency bound, that process, not the network, is the limit. A trial delete of a run
whose graph shares elements with thousands of others answers ~500 KB (Provena lists every record id on
shared nodes and links); receiving it costs the client ~3 ms of CPU, against ~1.3 ms for a fetch.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from fetch_throughput import CLI, run_measured, start_server
from provena_ops.environments.file import Endpoints
from provena_ops.facts.reader import read_state
from provena_ops.plan.model import EnvironmentInfo, Plan, PlaybookInfo
from provena_ops.plan.planner import make_plan
from provena_ops.playbook.model import Playbook
from provena_ops.provena.auth import StaticToken
from provena_ops.provena.http import ProvenaHttp
from provena_ops.sandbox.admin import seed, token

LATENCY_MS = 20.0
FIRST_RUN = 1_690_000  # handles are consecutive from 10378.1/1690001; runs follow the reference data


def endpoints_of(served: dict[str, str]) -> Endpoints:
    """The served sandbox's endpoint overrides as the client's Endpoints."""
    return Endpoints(
        served["registry_api_endpoint_override"],
        served["prov_api_endpoint_override"],
        served["jobs_service_api_endpoint_override"],
        served["search_api_endpoint_override"],
        served["keycloak_endpoint_override"],
        {},
    )


async def plan_once(
    endpoints: dict[str, str], access: str, playbook: Playbook, concurrency: int
) -> tuple[Plan, int, float]:
    target = endpoints_of(endpoints)
    started = time.perf_counter()
    async with ProvenaHttp(target, StaticToken(access), environment="bench", concurrency=concurrency) as http:
        state = await read_state(http, playbook)
        requests = http.requests
    made = make_plan(
        playbook,
        state,
        playbook_info=PlaybookInfo(file="bench.yaml", name="bench", sha256="sha256:0"),
        environment=EnvironmentInfo(name="bench", stage="DEV", registry=target.registry),
        created_at="now",
    )
    return made, requests, time.perf_counter() - started


def server_cpu_s(process: subprocess.Popen[str]) -> float:
    fields = Path(f"/proc/{process.pid}/stat").read_text().split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def latency_bound_s(requests: int, lanes: int) -> float:
    """The least time `requests` take through `lanes` connections when each waits LATENCY_MS."""
    return requests * LATENCY_MS / 1000 / lanes


def report(
    label: str, wall: float, requests: int, concurrency: int, server_cpu: float, client_cpu: float
) -> None:
    bound = requests * LATENCY_MS / 1000 / concurrency
    print(
        f"{label}: {wall:6.2f} s for {requests:,} requests = {wall / bound:.2f}x the latency bound "
        f"{bound:.2f} s (target <= 1.5x); CPU: client {client_cpu:.2f} s, sandbox {server_cpu:.2f} s"
    )


def deletion_playbook(run_ids: list[str]) -> Playbook:
    return Playbook.model_validate(
        {
            "version": 1,
            "name": "bench",
            "environment": "bench",
            "operations": [{"op": "delete_model_runs", "model_runs": run_ids}],
        }
    )


def study_playbook(study: str) -> Playbook:
    return Playbook.model_validate(
        {
            "version": 1,
            "name": "bench",
            "environment": "bench",
            "operations": [{"op": "delete_studies", "linked_model_runs": "remove", "studies": [study]}],
        }
    )


def link_all_playbook(study: str) -> Playbook:
    return Playbook.model_validate(
        {
            "version": 1,
            "name": "bench",
            "environment": "bench",
            "operations": [
                {
                    "op": "link_studies",
                    "study": study,
                    "model_runs": [{"display_name_matches": "*"}],
                    "replace_existing_links": True,
                }
            ],
        }
    )


def plan_in_own_process(
    directory: Path, endpoints: dict[str, str], access: str, studies: str
) -> tuple[float, float, int]:
    """The CLI as an admin runs it, so its peak RSS is the tool's own (seeding happened elsewhere)."""
    environments = directory / "environments.json"
    environments.write_text(
        json.dumps(
            {
                "envs": [
                    {
                        "name": "bench",
                        "stage": "DEV",
                        "domain": "bench.invalid",
                        "realm_name": "provena",
                        **endpoints,
                    }
                ]
            }
        )
    )
    playbook = directory / "link-all.yaml"
    playbook.write_text(
        json.dumps(link_all_playbook(studies.split(", ")[0]).model_dump(mode="json", exclude_none=True))
    )
    saved = directory / "plan.json"
    started = time.perf_counter()
    with saved.open("w") as out, tempfile.TemporaryFile() as err:
        code, _, peak = run_measured(
            [*CLI, "plan", str(playbook), "--environments", str(environments), "--format", "json"],
            stdout=out,
            stderr=err,
            env={**os.environ, "PROVENA_OPS_ACCESS_TOKEN": access},
        )
        wall = time.perf_counter() - started
        if code not in (0, 2):
            err.seek(0)
            raise RuntimeError(f"plan failed: {err.read()[-2000:].decode(errors='replace')}")
    count = len(json.loads(saved.read_text())["targets"][0]["model_runs"])
    return peak, wall, count


def run_ids(db: Path) -> list[str]:
    import sqlite3

    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT id FROM items WHERE subtype = 'MODEL_RUN' ORDER BY id").fetchall()
    return [row[0] for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--memory-records", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "scale.db"
        summary = seed(db, 4_400, reset=False)  # ~1,000 runs per study for the first four studies
        study = summary.notable["studies"].split(", ")[0]
        runs = run_ids(db)
        access = token(db, "admin", None, 3600, None)
        server, endpoints = start_server(db, LATENCY_MS)
        try:
            cpu, own = server_cpu_s(server), time.process_time()
            _, requests, wall = asyncio.run(
                plan_once(endpoints, access, deletion_playbook(runs[:1_000]), args.concurrency)
            )
            report(
                "plan 1,000 model-run deletions",
                wall,
                requests,
                args.concurrency,
                server_cpu_s(server) - cpu,
                time.process_time() - own,
            )
            cpu, own = server_cpu_s(server), time.process_time()
            linked, study_requests, study_wall = asyncio.run(
                plan_once(endpoints, access, study_playbook(study), args.concurrency)
            )
            relinks = sum(1 for a in linked.actions if a.kind == "relink")
            report(
                f"plan a study with {relinks:,} linked runs",
                study_wall,
                study_requests,
                args.concurrency,
                server_cpu_s(server) - cpu,
                time.process_time() - own,
            )
            _, one_requests, one_wall = asyncio.run(
                plan_once(endpoints, access, deletion_playbook(runs[1_000:1_100]), 1)
            )
            sequential, concurrent = one_wall / one_requests, wall / requests
            print(
                f"deletions one request at a time (100-run sample): {sequential * 1000:.1f} ms/request; "
                f"concurrent {concurrent * 1000:.2f} ms/request -> {sequential / concurrent:.1f}x faster "
                "(target >= 8x)"
            )
        finally:
            server.terminate()
            server.wait(timeout=30)
        big = Path(tmp) / "memory.db"
        big_summary = seed(big, args.memory_records, reset=False)
        access = token(big, "admin", None, 3600, None)
        server, endpoints = start_server(big, 0.0)
        try:
            peak, wall, count = plan_in_own_process(
                Path(tmp), endpoints, access, big_summary.notable["studies"]
            )
            print(
                f"plan linking {count:,} model runs (no latency, `provena-ops plan` in its own process): "
                f"{wall:.1f} s; peak RSS {peak:.0f} MB (target < 300 MB)"
            )
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
