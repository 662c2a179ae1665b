"""A 500-run study deletion as a reviewer reads it: the text plan fits in a screen (alike relinks said
once, members on --verbose), the summary first and last; golden text, verbose and Markdown renderings."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from rich.console import Console

from provena_ops.plan.actions import Actions
from provena_ops.plan.model import Plan
from provena_ops.playbook.model import Playbook
from provena_ops.render.json_format import json_chunks, render_json
from provena_ops.render.markdown import render_markdown
from provena_ops.render.terminal import render_terminal
from provena_ops.sandbox import RunningSandbox, SandboxSettings, running_sandbox
from provena_ops.sandbox.context import Sandbox
from provena_ops.sandbox.seed import seed_demo
from tests.conftest import Api
from tests.plan.test_renderings import compare, pinned_plan

RUNS = 2_000  # a quarter of them, 500, belong to the study deleted
LINES = 60


@pytest.fixture(scope="module")
def study_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningSandbox, list[str]]]:
    path = tmp_path_factory.mktemp("study500") / "sandbox.db"
    sandbox = Sandbox(SandboxSettings(db_path=path))
    summary = seed_demo(sandbox, runs=RUNS)
    sandbox.store.close()
    with running_sandbox(SandboxSettings(db_path=path, random_seed=7)) as running:
        yield running, summary.notable["studies"].split(", ")


@pytest.fixture(scope="module")
def study_plan(study_server: tuple[RunningSandbox, list[str]]) -> Plan:
    running, studies = study_server
    api = Api(running)
    store = Sandbox(running.settings).store
    linked = sorted(
        str(run["id"])
        for run in store.items_of_subtype("MODEL_RUN")
        if run["record"].get("study_id") == studies[1]
    )
    store.close()
    assert len(linked) == 500
    playbook = Playbook.model_validate(
        {
            "version": 1,
            "name": "retire-study",
            "environment": "rehearsal",
            "operations": [
                {
                    "op": "delete_studies",
                    "linked_model_runs": "replace",
                    "replace_with": studies[2],
                    "studies": [
                        {"id": studies[1], "model_run_overrides": {run: "remove" for run in linked[:12]}}
                    ],
                }
            ],
        }
    )

    try:
        return pinned_plan(api, playbook, "playbooks/retire.yaml", "retire")
    finally:
        api.close()


@pytest.fixture(scope="module")
def mixed_plan(study_server: tuple[RunningSandbox, list[str]]) -> Plan:
    """Every operation at once over 2,000 runs: selectors edit and link hundreds, deletions remove runs
    whose outputs others used, a study goes with replace and an override."""
    running, studies = study_server
    api = Api(running)
    playbook = Playbook.model_validate(
        {
            "version": 1,
            "name": "mixed",
            "environment": "rehearsal",
            "operations": [
                {
                    "op": "update_model_runs",
                    "reason": "recalibrated (OPS-7)",
                    "model_runs": [{"display_name_matches": "Reef run 10*"}],
                    "set": {"description": "Recalibrated."},
                },
                {
                    "op": "link_studies",
                    "study": studies[3],
                    "model_runs": [{"display_name_matches": "Seagrass run 20*"}],
                },
                {
                    "op": "delete_model_runs",
                    "model_runs": [{"display_name_matches": "Catchment run 00*"}],
                },
                {
                    "op": "delete_studies",
                    "linked_model_runs": "replace",
                    "replace_with": studies[2],
                    "studies": [{"id": studies[4]}],
                },
                {"op": "relodge_model_runs", "model_runs": [{"display_name_matches": "Reef run 3*"}]},
            ],
        }
    )
    try:
        return pinned_plan(api, playbook, "playbooks/mixed.yaml", "mixed")
    finally:
        api.close()


def text_of(plan: Plan, verbose: bool = False) -> str:
    buffer = io.StringIO()
    render_terminal(plan, Console(file=buffer, width=100, color_system=None, soft_wrap=True), verbose=verbose)
    return buffer.getvalue()


def test_a_500_run_study_deletion_reads_in_a_screen(study_plan: Plan, update_golden: bool) -> None:
    assert study_plan.summary.line() == "Plan: 0 to update, 500 to relink, 1 to delete, 0 unchanged."
    text = text_of(study_plan)
    lines = text.splitlines()
    assert len(lines) <= LINES, len(lines)
    assert lines[1] == lines[-1] == study_plan.summary.line()  # the summary first and last
    assert "~ relink 488 model runs" in text and "~ relink 12 model runs" in text
    assert "after: 488 relinked to " in text and ", 12 unlinked, 12 by override" in text
    compare("study-500.txt", text, update_golden)


def test_verbose_lists_every_member_once(study_plan: Plan, update_golden: bool) -> None:
    text = text_of(study_plan, verbose=True)
    relinked = [a.record_id for a in study_plan.actions if a.kind == "relink"]
    assert all(text.count(f"      {run}  ") == 1 for run in relinked)
    compare("study-500-verbose.txt", text, update_golden)


def test_the_markdown_of_a_500_run_study_deletion(study_plan: Plan, update_golden: bool) -> None:
    """Counts per operation first, the picture, then two collapsed groups and the study: the records
    are listed, one per line, inside the groups."""
    text = render_markdown(study_plan)
    assert "| `operations[0]` delete_studies | 0 | 500 | 1 | 0 |" in text
    assert text.count("<details>") == 2 + 1  # the two groups, and the study deletion
    assert '(["488 model runs relinked"])' in text and '(["12 model runs unlinked"])' in text
    assert "- after: 488 relinked to 10378.1/" in text
    visible = [line for line in text.split("- records (")[0].splitlines()]
    assert len(visible) <= LINES, len(visible)  # before the first collapsed list of records
    compare("study-500.md", text, update_golden)


def test_a_mixed_playbook_at_scale_in_every_format(mixed_plan: Plan, update_golden: bool) -> None:
    """Text within a screen, JSON with the same categories per operation, Markdown with its picture."""
    text = text_of(mixed_plan)
    assert len(text.splitlines()) <= LINES * 2, len(text.splitlines())
    compare("mixed.txt", text, update_golden)
    compare("mixed.md", render_markdown(mixed_plan), update_golden)
    compare("mixed.json", render_json(mixed_plan), update_golden)
    totals = {key: 0 for key in type(mixed_plan.summary).model_fields}
    for target in mixed_plan.targets:
        assert target.summary is not None
        for key in totals:
            totals[key] += getattr(target.summary, key)
    assert totals["problems"] <= mixed_plan.summary.problems
    assert {k: v for k, v in totals.items() if k != "problems"} == {
        k: v for k, v in mixed_plan.summary.model_dump().items() if k != "problems"
    }
    for label, count in (("to update", mixed_plan.summary.update), ("to relink", mixed_plan.summary.relink)):
        assert f"{count} {label}" in mixed_plan.summary.line()  # the categories JSON has, named alike


def test_the_json_of_a_500_run_study_deletion(study_plan: Plan, update_golden: bool) -> None:
    """The same counts as text and Markdown say, for scripts: the categories are one set in every format."""
    text = render_json(study_plan)
    summary = json.loads(text)["summary"]
    assert (summary["relink"], summary["delete"], summary["update"], summary["problems"]) == (500, 1, 0, 0)
    compare("study-500.json", text, update_golden)


def test_a_saved_plan_written_in_pieces_is_pydantics_json_of_it(mixed_plan: Plan, study_plan: Plan) -> None:
    """--out writes a large plan an action at a time; the file is the same as the whole plan's JSON."""
    for plan in (mixed_plan, study_plan, mixed_plan.model_copy(update={"actions": Actions()})):
        pieces = list(json_chunks(plan))
        assert "".join(pieces) == plan.model_dump_json(indent=2) + "\n"
        assert len(pieces) == (len(plan.actions) + 2 if plan.actions else 1)
