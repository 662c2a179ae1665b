"""Prov API reads: lineage exploration and the trial-mode model-run delete (the graph impact)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ProvenaError
from .http import ProvenaHttp, detail_of


@dataclass(frozen=True)
class Neighbour:
    id: str
    subtype: str


async def explore(http: ProvenaHttp, direction: str, starting_id: str, depth: int = 1) -> list[Neighbour]:
    """Nodes within `depth` hops of `starting_id` (direction: upstream or downstream), itself excluded."""
    body = await http.json(
        "prov", "GET", f"/explore/{direction}", params={"starting_id": starting_id, "depth": depth}
    )
    status = body.get("status") or {}
    if not status.get("success", True):
        raise ProvenaError(f"exploring {direction} of {starting_id} failed: {status.get('details')}")
    graph = body.get("graph") or {}
    return [
        Neighbour(str(node["id"]), str(node.get("item_subtype")))
        for node in graph.get("nodes", [])
        if node.get("id") != starting_id
    ]


_ACTION_TYPE = re.compile(rb'"action_type"\s*:\s*"([A-Z_]+)"')


async def trial_delete(http: ProvenaHttp, model_run_id: str) -> dict[str, int]:
    """How many graph actions of each type deleting the model run would take, without removing anything.

    Only the counts are needed, and a run sharing nodes with thousands of others gets a response of
    megabytes (every shared element lists every record id), so the body is scanned, not parsed.
    """
    response = await http.call(
        "prov", "POST", "/model_run/delete", json={"record_id": model_run_id, "trial_mode": True}
    )
    if response.status_code != 200:
        raise ProvenaError(
            f"trial delete of {model_run_id} answered {response.status_code}: {detail_of(response)}",
            status=response.status_code,
        )
    counts: dict[str, int] = {}
    for match in _ACTION_TYPE.finditer(response.content):
        kind = match.group(1).decode()
        counts[kind] = counts.get(kind, 0) + 1
    return counts
