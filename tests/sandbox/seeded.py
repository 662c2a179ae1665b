"""Names in the seeded demo registry that several sandbox test modules use."""

from __future__ import annotations

from provena_ops.sandbox.seed import SeedSummary

COMPLETION = "Updating item to mark completion of provenance lodge."
FINAL = ("SUCCEEDED", "FAILED")


def run_id(demo: SeedSummary, number: int) -> str:
    """Seeded run `number` (0-based); the runs have consecutive handles starting at run 0."""
    first = demo.notable["model run with annotations"]
    prefix, _, handle = first.rpartition("/")
    return f"{prefix}/{int(handle) + number}"


def studies(demo: SeedSummary) -> list[str]:
    return demo.notable["studies"].split(", ")
