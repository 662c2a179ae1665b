"""Applying against the shared sandbox server over HTTP, addressed like a remote deployment."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from provena_ops.apply.executor import JobWait
from provena_ops.apply.journal import Event, read_events
from provena_ops.apply.run import ApplyOptions, ApplyResult, apply
from provena_ops.environments.target import Target, TargetArgs
from provena_ops.plan.model import Action, Plan
from provena_ops.sandbox import RunningSandbox
from tests.conftest import Api

FAST = JobWait(timeout_s=30, first_poll_s=0.02, max_poll_s=0.2, lost_submission_s=3)
TARGET_FIELDS = ("environment", "params", "environments_file", "cwd")


def apply_with(file: Path | None, ui: Any, *, plan_file: Path | None = None, **arguments: Any) -> ApplyResult:
    """apply() with its two values built from keywords, as tests spell them: -e and friends make the
    TargetArgs, the rest the ApplyOptions."""
    where = TargetArgs(**{key: arguments.pop(key) for key in TARGET_FIELDS if key in arguments})
    return apply(file, ui, plan_file=plan_file, where=where, options=ApplyOptions(**arguments))


@dataclass
class RecordingUI:
    """Stands in for the terminal: records what apply shows and says, answers the approval question."""

    approve: bool = True
    notes: list[str] = field(default_factory=list)
    shown: list[Plan] = field(default_factory=list)
    asked: int = 0

    def note(self, text: str) -> None:
        self.notes.append(text)

    @property
    def reading(self) -> None:
        return None

    def show(self, plan: Plan) -> None:
        self.shown.append(plan)

    def confirm(self, plan: Plan, target: Target) -> bool:
        self.asked += 1
        return self.approve

    def executing(self, plan: Plan) -> Callable[[Action, str], None] | None:
        return None


ApplyOn = Callable[..., ApplyResult]


@pytest.fixture
def environments_file(server: RunningSandbox, tmp_path: Path) -> Path:
    path = tmp_path / "environments.json"
    env = {"name": "rehearsal", "stage": "DEV", "domain": "sandbox.invalid", "realm_name": "provena"}
    path.write_text(json.dumps({"envs": [{**env, **server.endpoints}]}))
    return path


@pytest.fixture
def apply_on(
    api: Api, environments_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ApplyOn]:
    """apply_on(playbook_text, ui=RecordingUI(), user="admin", **apply options) -> ApplyResult."""

    def run(text: str, ui: RecordingUI | None = None, user: str = "admin", **options: Any) -> ApplyResult:
        monkeypatch.setenv("PROVENA_OPS_ACCESS_TOKEN", api.token(user, lifetime=600))
        monkeypatch.setenv("PROVENA_OPS_LOCK_DIR", str(tmp_path / "locks"))
        path = tmp_path / "playbook.yaml"
        path.write_text(text)
        options.setdefault("auto_approve", True)
        options.setdefault("job_wait", FAST)
        return apply_with(
            path,
            ui or RecordingUI(),
            environment="rehearsal",
            environments_file=environments_file,
            cwd=tmp_path,
            **options,
        )

    yield run


def events(result: ApplyResult) -> list[Event]:
    return read_events(result.journal)


def history_length(api: Api, route: str, item_id: str) -> int:
    response = api.http.get(f"{api.registry}{route}/fetch", params={"id": item_id}, headers=api.auth())
    item = response.json()["item"]
    return len(item["history"]) if item else -1


@pytest.fixture
def playbook_file(tmp_path: Path) -> Path:
    """Retire study 51 (its ten runs relinked to study 48) and delete three runs: 14 actions."""
    from tests.apply.test_apply_cli import DELETE_51

    path = tmp_path / "retire.yaml"
    path.write_text(DELETE_51)
    return path
