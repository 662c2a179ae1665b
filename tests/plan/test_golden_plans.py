"""Golden planner cases, pyinfra style: a playbook and the facts read from Provena -> the exact plan.

Each directory under tests/plan/golden holds `playbook.yaml`, `facts.json` (the `State` the reader
produced) and `plan.json` (what the planner must make of them). No server: the planner is pure, so each
case runs in milliseconds and names every problem, warning, action and field change it expects.

    pytest tests/plan/test_golden_plans.py --update-golden  # plan.json from the planner; review the diff
    PROVENA_OPS_CAPTURE_CASES=DIR pytest tests/plan           # new cases from the HTTP planner tests
"""

from __future__ import annotations

import difflib
import functools
import hashlib
from pathlib import Path

import pytest

from provena_ops.environments.file import Environments, load_environments
from provena_ops.facts.model import State
from provena_ops.plan.model import EnvironmentInfo, Plan, PlaybookInfo
from provena_ops.plan.planner import make_plan
from provena_ops.playbook.loader import load_playbook
from provena_ops.render.json_format import render_json

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(path.parent.name for path in GOLDEN.glob("*/playbook.yaml"))
ENVIRONMENT = EnvironmentInfo(name="rehearsal", stage="DEV", registry="https://registry.rehearsal.example")
CREATED_AT = "2026-01-01T00:00:00+00:00"


@functools.cache
def environments() -> Environments:
    return load_environments(GOLDEN / "environments.json")


def plan_case(case: Path) -> Plan:
    loaded = load_playbook(case / "playbook.yaml", environments=environments())
    assert loaded.playbook is not None, [d.render() for d in loaded.diagnostics]
    digest = "sha256:" + hashlib.sha256((case / "playbook.yaml").read_bytes()).hexdigest()
    return make_plan(
        loaded.playbook,
        State.model_validate_json((case / "facts.json").read_text()),
        playbook_info=PlaybookInfo(file="playbook.yaml", name=loaded.playbook.name, sha256=digest),
        environment=ENVIRONMENT,
        created_at=CREATED_AT,
    )


def test_there_are_cases_for_every_rule() -> None:
    assert len(CASES) >= 60


@pytest.mark.parametrize("name", CASES)
def test_the_planner_makes_the_expected_plan(name: str, update_golden: bool) -> None:
    case = GOLDEN / name
    made = render_json(plan_case(case))
    expected_file = case / "plan.json"
    if update_golden or not expected_file.exists():
        expected_file.write_text(made)
        if not update_golden:
            pytest.fail(f"{expected_file} did not exist: written from the planner, review it")
        return
    expected = expected_file.read_text()
    if made != expected:
        diff = difflib.unified_diff(
            expected.splitlines(), made.splitlines(), "expected plan.json", "planned now", lineterm="", n=2
        )
        pytest.fail(f"{name}: the plan differs\n" + "\n".join(diff), pytrace=False)
