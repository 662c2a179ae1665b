"""Offline validation time of a 10,000-operation playbook (target: under 2 seconds).

Also times a trivial playbook in the same run, so the figure can be read as a ratio that survives a noisy
shared machine, and reports the per-operation cost.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from provena_ops import api
from provena_ops.environments.file import load_environments

HEADER = """\
# yaml-language-server: $schema=../schemas/playbook.schema.json
version: 1
name: large-cleanup
environment: sandbox
vars:
  reason: bulk clean-up after the 2026 registry audit
operations:
"""

# A realistic mix: mostly edits and deletions, some study work, each naming records by id.
TEMPLATES = (
    """\
  - op: update_model_runs
    reason: "{{{{ reason }}}} ({n})"
    model_runs: [10378.1/{run}]
    set:
      description: Recalibrated run {n}
      requesting_organisation_id: 10378.1/1690007
    annotations:
      set: {{audit: "2026", batch: "b{batch}"}}
""",
    """\
  - op: delete_model_runs
    model_runs:
      - 10378.1/{run}
""",
    """\
  - op: link_studies
    study: 10378.1/1690048
    model_runs: [10378.1/{run}]
""",
    """\
  - op: delete_studies
    linked_model_runs: replace
    replace_with: 10378.1/1690048
    studies:
      - id: 10378.1/{study}
        model_run_overrides:
          10378.1/{run}: remove
""",
)


def write_playbook(directory: Path, operations: int) -> Path:
    parts = [HEADER]
    for n in range(operations):
        template = TEMPLATES[n % len(TEMPLATES)]
        parts.append(template.format(n=n, run=3_000_000 + n, study=5_000_000 + n, batch=n % 7))
    path = directory / f"playbook-{operations}.yaml"
    path.write_text("".join(parts))
    return path


def best_time(path: Path, repeats: int) -> float:
    environments = load_environments()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        [loaded] = api.validate([path], environments=environments)
        times.append(time.perf_counter() - started)
        assert loaded.valid, [d.render() for d in loaded.diagnostics[:3]]
    return min(times) if repeats < 3 else statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--operations", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        small = write_playbook(Path(tmp), 1)
        large = write_playbook(Path(tmp), args.operations)
        size_mb = large.stat().st_size / 1024 / 1024
        small_s = best_time(small, args.repeats)
        large_s = best_time(large, args.repeats)
    print(f"validate 1-operation playbook:        {small_s * 1000:8.1f} ms")
    print(
        f"validate {args.operations:,}-operation playbook: {large_s * 1000:8.1f} ms  "
        f"({size_mb:.1f} MB, {large_s / args.operations * 1e6:.0f} us/operation, "
        f"{large_s / small_s:.0f} x the 1-operation playbook)"
    )
    verdict = "meets" if large_s < 2.0 else "MISSES"
    print(f"target < 2 s for {args.operations:,} operations: {verdict}")


if __name__ == "__main__":
    main()
