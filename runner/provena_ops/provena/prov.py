"""Prov API reads: lineage exploration and the trial-mode model-run delete (the graph impact)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import ProvenaError
from .http import ProvenaHttp


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


async def trial_delete(http: ProvenaHttp, model_run_id: str) -> list[dict[str, Any]]:
    """What deleting the model run would remove from the graph, without removing anything."""
    body = await http.json(
        "prov", "POST", "/model_run/delete", json={"record_id": model_run_id, "trial_mode": True}
    )
    diff = body.get("diff")
    return list(diff) if isinstance(diff, list) else []
