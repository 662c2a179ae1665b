"""Planning against the shared sandbox server, addressed like a remote deployment (endpoint overrides)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from provena_ops import api
from provena_ops.plan.model import Plan
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


@pytest.fixture
def plan_on(
    api: Api, remote_environments: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[PlanOn]:
    """plan_on(playbook_text, user="admin", roles=None) -> Plan, planned over HTTP against the server."""

    def make(text: str, user: str = "admin", roles: list[str] | None = None, **options: object) -> Plan:
        monkeypatch.setenv("PROVENA_OPS_ACCESS_TOKEN", api.token(user, roles, lifetime=600))
        path = tmp_path / "playbook.yaml"
        path.write_text(text)
        return api_plan(path, remote_environments, **options)

    yield make


def api_plan(path: Path, environments: Path, **options: object) -> Plan:
    return api.plan(path, environment="rehearsal", environments_file=environments, **options)  # type: ignore[arg-type]


def playbook(*operations: str, name: str = "test") -> str:
    """A playbook around operation snippets written at column 0 (`op: ...` first)."""
    body = ""
    for operation in operations:
        lines = operation.strip("\n").splitlines()
        body += "  - " + lines[0] + "\n" + "".join(f"    {line}\n" for line in lines[1:])
    return f"version: 1\nname: {name}\nenvironment: rehearsal\noperations:\n{body}"
