"""How seeding and planning grow with the registry: 1,000, 10,000 and 100,000 model runs (--quick: the first
two), each against a sandbox served with 20 ms injected latency per request.

For each size, from one run:
- `sandbox seed --scale N` wall time (target at 100,000: under 2 minutes);
- `provena-ops plan` in its own process, as an admin runs it, of (a) an edit of every model run
  (`display_name_matches: "*"`) and (b) the deletion of a tenth of them: wall time, its ratio to the higher
  of two bounds (`requests x 20 ms / concurrency`, and the sandbox's own CPU time, since one sandbox
  process serves every request on one core), peak RSS (target < 400 MB), and client CPU per record;
- the plan checked against the registry: every matching run is in it, nothing else;
- the sandbox's floor: the ratio to the latency bound that a raw keep-alive client fetching model runs
  reaches on the same server, which no client can beat (answers due together are served in turn).

Requests are counted from the sandbox's request log (`sandbox serve --request-log`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from fetch_throughput import CLI, run_measured, start_server
from fetch_throughput import measure as fetch_rate
from plan_scale import LATENCY_MS, latency_bound_s, server_cpu_s
from provena_ops.sandbox.admin import token

CONCURRENCY = 16


@dataclass
class Planned:
    wall: float
    requests: int
    client_cpu: float
    sandbox_cpu: float
    peak_mb: float
    records: int

    @property
    def bound(self) -> float:
        return max(latency_bound_s(self.requests, CONCURRENCY), self.sandbox_cpu)

    def row(self) -> str:
        latency_bound = latency_bound_s(self.requests, CONCURRENCY)
        return (
            f"{self.wall:8.1f} s {self.wall / self.bound:5.2f}x (latency bound {latency_bound:.1f} s, "
            f"sandbox CPU {self.sandbox_cpu:.1f} s) {self.peak_mb:6.0f} MB  client CPU "
            f"{self.client_cpu / max(self.records, 1) * 1000:.2f} ms/record, "
            f"{self.client_cpu / max(self.requests, 1) * 1000:.2f} ms/request ({self.requests:,} requests)"
        )


def lines_in(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def plan(
    directory: Path, name: str, playbook: dict[str, object], endpoints: dict[str, str], access: str
) -> tuple[Path, float, float, float]:
    """(saved plan, wall s, client CPU s, peak RSS MB) of `provena-ops plan` in its own process."""
    environments = directory / "environments.json"
    environments.write_text(
        json.dumps(
            {
                "envs": [
                    {"name": "bench", "stage": "DEV", "domain": "bench.invalid", "realm_name": "provena"}
                    | endpoints
                ]
            }
        )
    )
    source = directory / f"{name}.yaml"
    source.write_text(json.dumps(playbook))
    saved = directory / f"{name}.plan.json"
    started = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        code, cpu, peak = run_measured(
            [*CLI, "plan", str(source), "--environments", str(environments), "--out", str(saved)],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, "PROVENA_OPS_ACCESS_TOKEN": access},
        )
        wall = time.perf_counter() - started
        if code not in (0, 2):
            err.seek(0)
            raise RuntimeError(f"plan failed: {err.read()[-2000:].decode(errors='replace')}")
    return saved, wall, cpu, peak


def model_runs(db: Path) -> tuple[list[str], set[str]]:
    """Every model run in the registry, and those of them locked (a plan skips them)."""
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT id FROM items WHERE subtype = 'MODEL_RUN' ORDER BY id").fetchall()
        locks = connection.execute("SELECT id, data FROM locks").fetchall()
    locked = {str(i) for i, data in locks if json.loads(data)["lock_information"]["locked"]}
    return [str(row[0]) for row in rows], locked


def planned_ids(saved: Path) -> set[str]:
    document = json.loads(saved.read_text())
    return {str(action["record_id"]) for action in document["actions"]}


FLOOR_FETCHES = 2_000


def floor_ratio(endpoints: dict[str, str], runs: list[str], access: str) -> float:
    """How close to the latency bound the sandbox itself lets a client come: typed fetches by a raw
    keep-alive client (no httpx, no parsing) through CONCURRENCY connections, as a ratio to the bound.
    One server process answers every request in turn, so lanes whose answers are due together queue."""
    url = endpoints["registry_api_endpoint_override"] + "/registry/activity/model_run/fetch"
    queries = [f"?id={quote(run, safe='')}" for run in (runs * FLOOR_FETCHES)[:FLOOR_FETCHES]]
    rate = asyncio.run(fetch_rate(url, queries, access, CONCURRENCY))
    return len(queries) / rate / latency_bound_s(len(queries), CONCURRENCY)


def measure(size: int, tmp: Path) -> tuple[float, float, Planned, Planned]:
    directory = tmp / str(size)
    directory.mkdir()
    db = directory / "registry.db"
    started = time.perf_counter()
    subprocess.run(
        [*CLI, "sandbox", "seed", "--db", str(db), "--scale", str(size)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    seeded = time.perf_counter() - started
    runs, locked = model_runs(db)
    access = token(db, "admin", None, 3600, None)
    log = directory / "requests.jsonl"
    server, endpoints = start_server(db, LATENCY_MS, "--request-log", str(log))
    results = []
    try:
        floor = floor_ratio(endpoints, runs, access)
        edit_all = {
            "version": 1,
            "name": "edit every run",
            "environment": "bench",
            "operations": [
                {
                    "op": "update_model_runs",
                    "model_runs": [{"display_name_matches": "*"}],
                    "reason": "bench",
                    "skip_locked": True,
                    "annotations": {"set": {"reviewed": "2026-12"}},
                }
            ],
        }
        deleted = [run for run in runs if run not in locked][: size // 10]
        delete_tenth = {
            "version": 1,
            "name": "delete a tenth",
            "environment": "bench",
            "operations": [{"op": "delete_model_runs", "model_runs": deleted}],
        }
        for name, playbook, expected in (
            ("edit-all", edit_all, set(runs) - locked),
            ("delete", delete_tenth, set(deleted)),
        ):
            before_requests, before_cpu = lines_in(log), server_cpu_s(server)
            saved, wall, client_cpu, peak = plan(directory, name, playbook, endpoints, access)
            got = planned_ids(saved)
            if got != expected:
                raise RuntimeError(
                    f"{name} at {size:,}: {len(expected - got)} matching runs missing from the plan, "
                    f"{len(got - expected)} planned that should not be (e.g. "
                    f"{sorted(expected ^ got)[:3]})"
                )
            results.append(
                Planned(
                    wall,
                    lines_in(log) - before_requests,
                    client_cpu,
                    server_cpu_s(server) - before_cpu,
                    peak,
                    len(expected),
                )
            )
    finally:
        server.terminate()
        server.wait(timeout=60)
    return seeded, floor, results[0], results[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 and 10,000 runs only (a few minutes)")
    parser.add_argument("--sizes", type=int, nargs="*", help="registry sizes to measure (model runs)")
    args = parser.parse_args()
    sizes = args.sizes or ([1_000, 10_000] if args.quick else [1_000, 10_000, 100_000])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            seeded, floor, edit_all, delete = measure(size, Path(tmp))
            rows.append((size, seeded, edit_all, delete))
            print(
                f"{size:>9,} runs: seed {seeded:6.1f} s; the sandbox's floor: {floor:.2f}x of the latency "
                "bound (a raw client's fetches)"
            )
            print(f"    plan an edit of all {size:,}: {edit_all.row()}")
            print(f"    plan deleting {size // 10:,}: {delete.row()}")
    first = rows[0]
    print("\ngrowth against the smallest registry (time and memory per record, as ratios; 1.00 = linear):")
    for size, seeded, edit_all, delete in rows:
        scale = size / first[0]
        print(
            f"{size:>9,}: seed {seeded / first[1] / scale:.2f}, edit-all plan "
            f"{edit_all.wall / first[2].wall / scale:.2f} time, "
            f"{edit_all.peak_mb / first[2].peak_mb:.2f}x memory; delete plan "
            f"{delete.wall / first[3].wall / scale:.2f} time, {delete.peak_mb / first[3].peak_mb:.2f}x memory"
        )


if __name__ == "__main__":
    main()
