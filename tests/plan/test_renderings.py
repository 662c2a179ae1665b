"""Golden files for the three renderings of one plan that exercises every kind of action and outcome.

The plan is made by the pure planner from state read over HTTP from the seeded sandbox, with the run-time
fields (environment URL, time) pinned. Regenerate with `pytest tests/plan --update-golden` and review the
diff: these files are what admins and reviewers read.
"""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path

import pytest
from rich.console import Console

from provena_ops.environments.file import Endpoints
from provena_ops.facts.reader import read_state
from provena_ops.plan.actions import Actions
from provena_ops.plan.model import EnvironmentInfo, Plan, PlaybookInfo, Problem
from provena_ops.plan.planner import make_plan
from provena_ops.playbook.model import Playbook
from provena_ops.provena.auth import StaticToken
from provena_ops.provena.http import ProvenaHttp
from provena_ops.render.json_format import render_json
from provena_ops.render.markdown import render_markdown
from provena_ops.render.terminal import render_terminal
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


def pinned_plan(api: Api, playbook: Playbook, file: str, name: str) -> Plan:
    """The playbook planned over HTTP, with what varies between runs (file, URL, time) pinned."""

    async def read() -> Plan:
        endpoints = Endpoints(api.registry, api.prov, api.jobs, api.search, api.keycloak, {})
        async with ProvenaHttp(endpoints, StaticToken(api.token()), environment="rehearsal") as http:
            state = await read_state(http, playbook)
        return make_plan(
            playbook,
            state,
            playbook_info=PlaybookInfo(file=file, name=name, sha256="sha256:" + "0" * 64),
            environment=EnvironmentInfo(
                name="rehearsal", stage="DEV", registry="https://registry-api.example.org"
            ),
            created_at="2026-11-22T00:00:00+00:00",
        )

    return asyncio.run(read())


@pytest.fixture
def golden_plan(api: Api) -> Plan:
    return pinned_plan(api, Playbook.model_validate(PLAYBOOK), "playbooks/golden.yaml", "golden")


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
        ("delete_model_run", "not_found"),
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


def balanced(text: str) -> bool:
    depth = 0
    for tag in re.findall(r"</?details>", text):
        depth += -1 if tag.startswith("</") else 1
        if depth < 0:
            return False
    return depth == 0


@pytest.mark.parametrize("share", [0.2, 0.35, 0.5, 0.75, 0.95])
def test_markdown_past_the_comment_limit_is_truncated_and_says_where_the_plan_is(
    golden_plan: Plan, share: float
) -> None:
    limit = int(len(render_markdown(golden_plan)) * share)
    text = render_markdown(golden_plan, full_plan_at="plan.json", limit=limit)
    assert len(text) <= limit
    assert "**Truncated**" in text and "The full plan is in `plan.json`." in text
    assert text.startswith("### provena-ops plan: `golden` on `rehearsal` (DEV)")
    assert "| to update |" in text  # the count table always survives
    assert "is locked, so Provena refuses to edit it" in text  # problems come before everything else
    assert balanced(text), "a cut left a <details> open or closed one twice"
    records = re.findall(r"<details><summary><code>.*?</summary>\n\n(.*?)\n\n</details>", text, re.DOTALL)
    assert len(records) == text.count("<details><summary><code>")  # no record title without its details
    assert all(body.startswith("- ") for body in records)
    # a block of alike changes shows its records; any other block shows one
    shown = sum(
        int(m.group(1)) if (m := re.search(r"^- records \((\d+)\):", b, re.M)) else 1 for b in records
    )
    changing = sum(1 for a in golden_plan.actions if a.outcome == "change")
    assert f"this comment shows {shown} of the {changing} records that change." in text


def test_markdown_truncation_without_a_saved_plan_says_how_to_save_it(golden_plan: Plan) -> None:
    text = render_markdown(golden_plan, limit=3000)
    assert "The full plan was not saved: run `provena-ops plan` with `--out plan.json` to keep it." in text
    assert "plan saved with" not in text


def test_markdown_of_a_plan_with_thousands_of_problems_stays_under_githubs_limit(golden_plan: Plan) -> None:
    many = golden_plan.model_copy(
        update={
            "problems": [
                golden_plan.problems[0].model_copy(update={"message": f"problem number {n} " + "x" * 80})
                for n in range(10_000)
            ]
        }
    )
    text = render_markdown(many, full_plan_at="plan.json")
    assert len(text) <= 65_535
    assert "problem number 0 " in text and "problem number 9999 " not in text
    assert re.search(r"- … and [\d,]+ more problems \(see the full plan\)", text)
    assert balanced(text) and "**Truncated**" in text


def test_markdown_shows_side_effects_and_notes(golden_plan: Plan) -> None:
    text = render_markdown(golden_plan)
    assert "> Provena's update job adds two history entries" in text
    assert "- note: 2 of them: user_metadata is cleared" in text  # alike changes: the gist once
    assert " — user_metadata is cleared (now {'batch': 'B0', 'operator': 'bob'})" in text  # and each


def test_markdown_escapes_names_and_messages(golden_plan: Plan) -> None:
    action = golden_plan.actions[0].model_copy(update={"display_name": "<b>x</b> & @team ``x``"})
    text = render_markdown(golden_plan.model_copy(update={"actions": Actions([action])}))
    assert "&lt;b&gt;x&lt;/b&gt; &amp; @\u200bteam" in text and "<b>x</b>" not in text
    assert "@team" not in text  # no one is mentioned by a record's name
    assert "<summary><code>~</code> update 10378.1/1690054  &lt;b&gt;x&lt;/b&gt;" in text


def test_problems_of_one_cause_are_said_once_with_the_records(golden_plan: Plan) -> None:
    locked = [f"10378.1/16900{n}" for n in range(70, 82)]
    problems = [
        Problem(
            message=f"{run} is locked, so Provena refuses to edit it",
            hint="ask an admin of the record to unlock it (registry locks/unlock), then plan again",
            operation=0,
            record_id=run,
        )
        for run in locked
    ]
    plan = golden_plan.model_copy(update={"problems": problems})
    buffer = io.StringIO()
    render_terminal(plan, Console(file=buffer, width=100, color_system=None, soft_wrap=True))
    text = buffer.getvalue()
    assert text.count("is locked, so Provena refuses to edit it") == 1
    assert f"the same for 11 more: {', '.join(locked[1:6])}, ... and 6 more (--verbose lists them)" in text
    assert text.count("hint: ask an admin of the record to unlock it") == 1
    buffer = io.StringIO()
    render_terminal(plan, Console(file=buffer, width=200, color_system=None, soft_wrap=True), verbose=True)
    assert f"the same for 11 more: {', '.join(locked[1:])}" in buffer.getvalue()


def test_show_renders_a_saved_plan_offline_in_each_format(golden_plan: Plan, tmp_path: Path) -> None:
    from tests.sandbox.test_cli import run

    saved = tmp_path / "plan.json"
    saved.write_text(render_json(golden_plan))
    buffer = io.StringIO()
    render_terminal(golden_plan, Console(file=buffer, width=200, color_system=None, soft_wrap=True))
    shown_text = run(tmp_path, "show", saved)
    assert shown_text.code == 0 and shown_text.stdout.splitlines()[1] == golden_plan.summary.line()
    assert run(tmp_path, "show", saved, "--format", "json").stdout == render_json(golden_plan)
    markdown = run(tmp_path, "show", saved, "--format", "markdown").stdout
    assert markdown == render_markdown(golden_plan, full_plan_at=str(saved))
    (tmp_path / "retire.yaml").write_text("version: 1\n")
    run(tmp_path, "show", "retire.yaml").assert_clean_error(
        "retire.yaml is a playbook, not a saved plan", "provena-ops plan retire.yaml"
    )
    saved.write_text(render_json(golden_plan).replace('"plan_format": 1', '"plan_format": 2'))
    run(tmp_path, "show", saved).assert_clean_error("is not a provena-ops plan: plan_format")
