"""Prov API reads: lineage exploration and the trial-mode model-run delete (the graph impact)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from ProvenaInterfaces.ProvenanceAPI import LineageResponse, PostDeleteGraphRequest
from pydantic import BaseModel, ConfigDict

from provena_ops.provena.errors import ProvenaError
from provena_ops.provena.http import ProvenaHttp


@dataclass(frozen=True)
class Neighbour:
    id: str
    subtype: str


async def explore(http: ProvenaHttp, direction: str, starting_id: str, depth: int = 1) -> list[Neighbour]:
    """Nodes within `depth` hops of `starting_id` (direction: upstream or downstream), itself excluded."""
    parsed = await http.parsed(
        LineageResponse,
        "prov",
        "GET",
        f"/explore/{direction}",
        params={"starting_id": starting_id, "depth": depth},
    )
    if not parsed.status.success:
        raise ProvenaError(f"exploring {direction} of {starting_id} failed: {parsed.status.details}")
    nodes = (parsed.graph or {}).get("nodes") or []
    return [
        Neighbour(str(node["id"]), str(node.get("item_subtype")))
        for node in nodes
        if isinstance(node, dict) and "id" in node and node["id"] != starting_id
    ]


class DiffAction(BaseModel):
    model_config = ConfigDict(extra="ignore")

    action_type: Any = None


class GraphDiff(BaseModel):
    """PostDeleteGraphResponse, checked as far as the plan uses it: the type of each action. Its record id
    lists (every record on every shared element: megabytes for a run sharing a template with 100,000
    others) are parsed past, never built as Python objects."""

    diff: list[DiffAction]

    def counts(self) -> dict[str, int]:
        return dict(Counter(str(action.action_type) for action in self.diff))


async def trial_delete(http: ProvenaHttp, model_run_id: str) -> dict[str, int]:
    """How many graph actions of each type deleting the model run would take, without removing anything."""
    return await graph_delete(http, model_run_id, trial=True)


async def graph_delete(http: ProvenaHttp, model_run_id: str, *, trial: bool) -> dict[str, int]:
    """Graph actions of each type that deleting the run's graph takes (`trial`: would take). The answer
    lists every record on every shared element: it goes through the bulky lane."""
    async with http.bulky:
        parsed = await http.parsed(
            GraphDiff,
            "prov",
            "POST",
            "/model_run/delete",
            json=PostDeleteGraphRequest(record_id=model_run_id, trial_mode=trial).model_dump(mode="json"),
            sized=http.bulky.seen,
        )
        return parsed.counts()
