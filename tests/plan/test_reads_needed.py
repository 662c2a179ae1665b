"""The reads a plan makes are those its playbook needs: at 100,000 records every skipped read is minutes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from provena_ops.environments.file import Endpoints
from provena_ops.facts.model import State
from provena_ops.facts.reader import read_state
from provena_ops.playbook.model import Playbook
from provena_ops.provena.auth import StaticToken
from provena_ops.provena.http import ProvenaHttp
from provena_ops.sandbox.seed import SeedSummary
from tests.conftest import Api
from tests.sandbox.seeded import run_id


def read(api: Api, operation: dict[str, Any]) -> tuple[State, int]:
    playbook = Playbook.model_validate(
        {"version": 1, "name": "reads", "environment": "sandbox", "operations": [operation]}
    )

    async def go() -> tuple[State, int]:
        endpoints = Endpoints(api.registry, api.prov, api.jobs, api.search, api.keycloak, {})
        async with ProvenaHttp(endpoints, StaticToken(api.token()), environment="rehearsal") as http:
            return await read_state(http, playbook), http.requests

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("changes", "moves"),
    [
        ({"annotations": {"set": {"reviewed": "yes"}}}, False),
        ({"set": {"description": "Recalibrated.", "display_name": "Renamed"}}, False),
        ({"set": {"modeller_id": "10378.1/1690003"}}, True),
        ({"set": {"study_id": None}}, True),
    ],
)
def test_downstream_records_are_read_only_for_edits_that_move_runs_in_the_graph(
    api: Api, demo: SeedSummary, changes: dict[str, Any], moves: bool
) -> None:
    runs = [run_id(demo, n) for n in (0, 1, 2)]
    state, _ = read(api, {"op": "update_model_runs", "model_runs": runs, "reason": "r", **changes})
    assert set(state.downstream) == (set(runs) if moves else set())
    assert all(state.record(run).exists for run in runs)
    linking, _ = read(
        api, {"op": "link_studies", "study": demo.notable["studies"].split(", ")[0], "model_runs": runs}
    )
    assert set(linking.downstream) == set(runs)  # a new study link moves the run
    assert not state.graph_read_errors  # an explore not made, not one that failed
