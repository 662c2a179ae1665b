"""Golden files for the three renderings of one plan that exercises every kind of action and outcome.

The plan is made by the pure planner from state read over HTTP from the seeded sandbox, with the run-time
fields (environment URL, time) pinned. Regenerate with `pytest tests/plan --update-golden` and review the
diff: these files are what admins and reviewers read.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from rich.console import Console

from provena_ops.environments import Endpoints
from provena_ops.plan import EnvironmentInfo, Plan, PlaybookInfo
from provena_ops.planner import make_plan
from provena_ops.playbook.model import Playbook
from provena_ops.provena.auth import StaticToken
from provena_ops.provena.http import ProvenaHttp
from provena_ops.render.json_format import render_json
from provena_ops.render.markdown import render_markdown
from provena_ops.render.terminal import render_terminal
from provena_ops.state import read_state
from tests.conftest import Api

GOLDEN = Path(__file__).parent / "golden"

PLAYBOOK = {
    "version": 1,
    "name": "golden",
    "environment": "rehearsal",
    "operations": [
        {
            "op": "update_model_runs",
            "reason": "fix attribution (OPS-1)",
            "model_runs": ["10378.1/1690054", "10378.1/1690057"],
            "set": {"modeller_id": "10378.1/1690003", "description": "Recalibrated."},
            "annotations": {"set": {"calibration": "v3"}},
        },
        {
            "op": "delete_studies",
            "linked_model_runs": "replace",
            "replace_with": "10378.1/1690048",
            "studies": [{"id": "10378.1/1690051", "model_run_overrides": {"10378.1/1690060": "remove"}}],
        },
        {"op": "delete_model_runs", "model_runs": ["10378.1/1690062", "10378.1/1690066", "10378.1/1999999"]},
        {
            "op": "link_studies",
            "study": "10378.1/1690050",
            "model_runs": ["10378.1/1690055", "10378.1/1690064"],
        },
        {"op": "relodge_model_runs", "model_runs": ["10378.1/1690112", "10378.1/1690063"]},
    ],
}


@pytest.fixture
def golden_plan(api: Api) -> Plan:
    playbook = Playbook.model_validate(PLAYBOOK)

    async def read() -> Plan:
        endpoints = Endpoints(api.registry, api.prov, api.jobs, api.search, api.keycloak, {})
        async with ProvenaHttp(endpoints, StaticToken(api.token()), environment="rehearsal") as http:
            state = await read_state(http, playbook)
        return make_plan(
            playbook,
            state,
            playbook_info=PlaybookInfo(
                file="playbooks/golden.yaml", name="golden", sha256="sha256:" + "0" * 64
            ),
            environment=EnvironmentInfo(
                name="rehearsal", stage="DEV", registry="https://registry-api.example.org"
            ),
            created_at="2026-11-22T00:00:00+00:00",
        )

    return asyncio.run(read())


def compare(name: str, actual: str, update_golden: bool) -> None:
    path = GOLDEN / name
    if update_golden or not path.exists():
        path.write_text(actual)
        if not update_golden:
            pytest.fail(f"wrote missing golden file {name}; review and commit it")
    assert actual == path.read_text(), f"{name} differs; if intended, rerun with --update-golden and review"


def test_the_golden_plan_covers_every_kind_of_action(golden_plan: Plan) -> None:
    kinds = {(a.kind, a.outcome) for a in golden_plan.actions}
    assert {
        ("update", "change"),
        ("relink", "change"),
        ("relink", "unchanged"),
        ("delete_study", "change"),
        ("delete_model_run", "change"),
        ("delete_model_run", "already_absent"),
        ("relodge", "change"),
        ("relodge", "unchanged"),
    } <= kinds
    assert golden_plan.problems and golden_plan.warnings and golden_plan.notes


def test_terminal_rendering(golden_plan: Plan, update_golden: bool) -> None:
    buffer = io.StringIO()
    render_terminal(golden_plan, Console(file=buffer, width=100, color_system=None, soft_wrap=True))
    compare("plan.txt", buffer.getvalue(), update_golden)


def test_terminal_rendering_verbose_lists_unchanged_records(golden_plan: Plan) -> None:
    buffer = io.StringIO()
    render_terminal(
        golden_plan, Console(file=buffer, width=100, color_system=None, soft_wrap=True), verbose=True
    )
    assert "= relink 10378.1/1690055  Seagrass run 003: the record already holds every requested value" in (
        buffer.getvalue()
    )


def test_json_rendering(golden_plan: Plan, update_golden: bool) -> None:
    rendered = render_json(golden_plan)
    compare("plan.json", rendered, update_golden)
    assert Plan.model_validate_json(rendered) == golden_plan


def test_markdown_rendering(golden_plan: Plan, update_golden: bool) -> None:
    compare("plan.md", render_markdown(golden_plan), update_golden)


def test_markdown_past_the_comment_limit_is_truncated_and_says_where_the_plan_is(golden_plan: Plan) -> None:
    text = render_markdown(golden_plan, full_plan_at="plan.json", limit=2500)
    assert len(text) <= 2500
    assert "**Truncated**" in text and "The full plan is in `plan.json`." in text
    assert text.startswith("### provena-ops plan: `golden` on `rehearsal` (DEV)")
    assert "| to update |" in text  # the count table always survives
    assert text.count("<details>") <= text.count("</details>")
