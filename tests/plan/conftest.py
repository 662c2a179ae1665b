"""Planning against the shared sandbox server, addressed like a remote deployment (endpoint overrides)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from provena_ops import api
from provena_ops import api as api_module
from provena_ops.environments.target import TargetArgs
from provena_ops.facts.model import State
from provena_ops.plan.model import Plan
from provena_ops.plan.planner import make_plan
from provena_ops.playbook.model import Playbook
from provena_ops.sandbox import RunningSandbox
from tests.conftest import Api

PlanOn = Callable[..., Plan]


@pytest.fixture
def remote_environments(server: RunningSandbox, tmp_path: Path) -> Path:
    """An environments file whose `rehearsal` environment is the test server, as an admin would write it."""
    endpoints = server.endpoints
    path = tmp_path / "environments.json"
    path.write_text(
        json.dumps(
            {
                "envs": [
                    {
                        "name": "rehearsal",
                        "stage": "DEV",
                        "domain": "sandbox.invalid",
                        "realm_name": "provena",
                        **{key: value for key, value in endpoints.items()},
                    }
                ]
            }
        )
    )
    return path


CAPTURE_VARIABLE = "PROVENA_OPS_CAPTURE_CASES"  # a directory: record each plan's inputs as a golden case


@pytest.fixture
def plan_on(
    api: Api,
    remote_environments: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Iterator[PlanOn]:
    """plan_on(playbook_text, user="admin", roles=None) -> Plan, planned over HTTP against the server."""

    def make(text: str, user: str = "admin", roles: list[str] | None = None, **options: object) -> Plan:
        monkeypatch.setenv("PROVENA_OPS_ACCESS_TOKEN", api.token(user, roles, lifetime=600))
        path = tmp_path / "playbook.yaml"
        path.write_text(text)
        capture = os.environ.get(CAPTURE_VARIABLE)
        if capture:
            monkeypatch.setattr(api_module, "make_plan", capturing(Path(capture), request, text))
        return api_plan(path, remote_environments, **options)

    yield make


def capturing(into: Path, request: pytest.FixtureRequest, text: str) -> Callable[..., Plan]:
    """make_plan, saving the playbook and the facts it was given as a case for tests/plan/golden."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.removeprefix("test_").lower()).strip("-")

    def make(playbook: Playbook, state: State, **info: Any) -> Plan:
        case, number = into / name, 1
        while case.exists():
            number += 1
            case = into / f"{name}-{number}"
        case.mkdir(parents=True)
        (case / "playbook.yaml").write_text(text)
        (case / "facts.json").write_text(
            state.with_records().model_dump_json(indent=1, exclude_defaults=True) + "\n"
        )
        return make_plan(playbook, state, **info)

    return make


def api_plan(path: Path, environments: Path, **options: Any) -> Plan:
    return api.plan(path, TargetArgs("rehearsal", environments_file=environments), api.PlanOptions(**options))


def playbook(*operations: str, name: str = "test") -> str:
    """A playbook around operation snippets written at column 0 (`op: ...` first)."""
    body = ""
    for operation in operations:
        lines = operation.strip("\n").splitlines()
        body += "  - " + lines[0] + "\n" + "".join(f"    {line}\n" for line in lines[1:])
    return f"version: 1\nname: {name}\nenvironment: rehearsal\noperations:\n{body}"
