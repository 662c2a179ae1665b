"""Validating large inputs stays linear and bounded: a playbook listing 150,000 ids and an environments
file of 100,000 environments (target for both: peak RSS under 300 MB).

Each input is validated in a process of its own, so the peak RSS reported is that validation's alone.
Sizes grow tenfold (or threefold) from row to row; time per item staying flat is what linear means, and is
reported as a ratio of the same run (the machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

RSS_TARGET_MB = 300
MEASURE = """
import sys, time
from pathlib import Path
from provena_ops import api
from provena_ops.environments.file import check_environments, load_environments, read_environments_text
kind, path = sys.argv[1], Path(sys.argv[2])
started = time.perf_counter()
if kind == "playbook":
    [loaded] = api.validate([path], environments=load_environments())
    assert loaded.valid, [d.render() for d in loaded.diagnostics[:3]]
else:
    parsed, diagnostics = check_environments(str(path), read_environments_text(path))
    assert parsed is not None, [d.render() for d in diagnostics[:3]]
import resource
print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def write_playbook(directory: Path, ids: int) -> Path:
    lines = [
        "version: 1",
        f"name: delete-{ids}",
        "environment: sandbox",
        "operations:",
        "  - op: update_model_runs",
        "    reason: bulk correction after the 2026 audit",
        "    set: {description: corrected}",
        "    model_runs:",
        *(f"      - 10378.1/{3_000_000 + n}" for n in range(ids)),
    ]
    path = directory / f"playbook-{ids}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_environments(directory: Path, count: int) -> Path:
    """Written one environment at a time: a benchmark that holds the whole file in memory would lend its
    size to the peak RSS of the process it starts."""
    path = directory / f"environments-{count}.json"
    with path.open("w") as file:
        file.write('{"envs": [\n')
        for n in range(count):
            env = {
                "name": f"feature-{n}",
                "stage": "DEV",
                "domain": "dev.example.org",
                "realm_name": "example",
                "replacements": [{"id": "feature_number", "key": "${feature_number}"}],
                "registry_api_endpoint_override": f"https://f${{feature_number}}-registry-api-{n}.dev.example.org",
                "prov_api_endpoint_override": f"https://f${{feature_number}}-prov-api-{n}.dev.example.org",
            }
            file.write((",\n" if n else "") + json.dumps(env))
        file.write("\n]}\n")
    return path


def measure(kind: str, path: Path) -> tuple[float, float]:
    """(seconds, peak RSS in MB, the whole process's) of validating `path` in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, kind, str(path)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"validating {path} failed:\n{done.stderr[-2000:]}")
    seconds, rss = done.stdout.split()
    return float(seconds), float(rss)


def table(
    kind: str, unit: str, sizes: list[int], write: Callable[[Path, int], Path], directory: Path
) -> None:
    """One row per size, then how time per item grew from the smallest to the largest, and the peak RSS
    of the largest against the target."""
    print(f"{kind:>14}   size MB   seconds   us/{unit:<4}  peak RSS MB")
    rows = []
    for count in sorted(sizes):
        path = write(directory, count)
        seconds, rss = measure(kind, path)
        rows.append((count, seconds, rss))
        size = path.stat().st_size / 1024 / 1024
        print(f"{count:>14,}   {size:7.1f}   {seconds:7.2f}   {seconds / count * 1e6:7.1f}   {rss:10.0f}")
    (first, first_s, _), (last, last_s, last_rss) = rows[0], rows[-1]
    verdict = "meets" if last_rss < RSS_TARGET_MB else "MISSES"
    print(
        f"time per {unit}, {last:,} vs {first:,}: {(last_s / last) / (first_s / first):.2f}x (1.0 = linear); "
        f"peak RSS {last_rss:.0f} MB: {verdict} the {RSS_TARGET_MB} MB target"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ids", type=int, nargs="+", default=[15_000, 50_000, 150_000])
    parser.add_argument("--environments", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        table("playbook", "id", args.ids, write_playbook, Path(tmp))
        print()
        table("environments", "env", args.environments, write_environments, Path(tmp))


if __name__ == "__main__":
    main()
