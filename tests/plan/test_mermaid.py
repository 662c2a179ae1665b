"""The Markdown plan's graph picture: drawn from the plan, bounded in size, safe with hostile names, and
accepted by Mermaid's own parser (installed by `make mermaid-parser`; CI sets PROVENA_OPS_MERMAID=required
so a missing parser fails instead of skipping)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from provena_ops.plan.actions import Actions
from provena_ops.plan.model import Action, FieldChange, Neighbour, Plan
from provena_ops.render.markdown import render_markdown
from provena_ops.render.mermaid import MOST_ENDPOINTS, MOST_GROUPS, label, render_mermaid

PARSER = Path(__file__).parents[1] / "mermaid"
GOLDEN = Path(__file__).parent / "golden"


def parse(diagrams: list[str]) -> list[dict[str, object]]:
    """Each diagram as Mermaid's parser judges it."""
    node = shutil.which("node")
    if node is None or not (PARSER / "node_modules" / "mermaid").is_dir():
        if os.environ.get("PROVENA_OPS_MERMAID") == "required":
            pytest.fail("Mermaid's parser is not installed: run `make mermaid-parser`")
        pytest.skip("Mermaid's parser is not installed (make mermaid-parser); golden files still check")
    done = subprocess.run(
        [node, str(PARSER / "parse.mjs")],
        input="\0".join(diagrams),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


def diagrams_in(markdown: str) -> list[str]:
    return re.findall(r"```mermaid\n(.*?)\n```", markdown, re.DOTALL)


def relink(number: int, before: str, after: str | None, name: str = "") -> Action:
    return Action(
        key=f"update 10378.1/9{number:05d}",
        kind="relink",
        record_id=f"10378.1/9{number:05d}",
        subtype="MODEL_RUN",
        display_name=name or f"run {number}",
        operations=[0],
        outcome="change",
        changes=[FieldChange(field="study_id", before=before, after=after)],
    )


def plan_of(golden: Plan, actions: list[Action]) -> Plan:
    return golden.model_copy(update={"actions": Actions(actions), "problems": [], "warnings": []})


@pytest.fixture
def golden() -> Plan:
    return Plan.model_validate_json((GOLDEN / "plan.json").read_text())


def test_the_golden_pictures_are_valid_mermaid() -> None:
    """Every picture of the checked-in Markdown plans: the golden plan, the 500-run study deletion and
    the mixed playbook."""
    diagrams = [d for path in sorted(GOLDEN.glob("*.md")) for d in diagrams_in(path.read_text())]
    assert len(diagrams) >= 3
    assert all(result["ok"] for result in parse(diagrams)), parse(diagrams)


def test_hostile_names_cannot_break_the_diagram_or_the_comment(golden: Plan) -> None:
    names = [
        '"]; click g0 "https://evil.example"',
        "```\n</details><b>x</b>",
        "#quot; %% comment ;;; --> x",
        "\u202eevil\u0000 tab\t| pipe |",
    ]
    actions = [relink(n, "10378.1/1", "10378.1/2", name) for n, name in enumerate(names)]
    for number, action in enumerate(actions):  # one node each: a group of one names its record
        actions[number] = action.model_copy(
            update={"changes": [FieldChange(field="study_id", before=f"10378.1/{number}", after="10378.1/9")]}
        )
    picture = render_mermaid(plan_of(golden, actions))
    assert picture is not None
    assert "```" not in picture and "</details>" not in picture and "click" not in picture.split('"')[0]
    for line in picture.splitlines()[1:]:
        outside = re.sub(r'"[^"]*"', "", line)  # what is not inside a quoted label is ours alone
        assert re.fullmatch(r"[ A-Za-z0-9_:()\[\]|>.\-x#,;]*", outside), line
    assert all(result["ok"] for result in parse([picture]))


def test_a_label_says_the_text_as_written() -> None:
    assert label('a "b" <c>') == '"a #34;b#34; #60;c#62;"'
    assert label("Reef run 010 (v2)") == '"Reef run 010 (v2)"'


def test_the_picture_is_bounded_whatever_the_plan(golden: Plan) -> None:
    """200 distinct relinks (200 groups, 400 studies): the largest groups drawn, the rest counted."""
    actions = [relink(n, f"10378.1/{n}", f"10378.1/{1000 + n}") for n in range(200)]
    actions += [relink(500 + n, "10378.1/7", "10378.1/8") for n in range(50)]  # the largest group
    picture = render_mermaid(plan_of(golden, actions))
    assert picture is not None
    groups = re.findall(r"^  g\d+\(", picture, re.MULTILINE)
    endpoints = re.findall(r"^  r\d+\[", picture, re.MULTILINE)
    assert len(groups) == MOST_GROUPS and len(endpoints) <= MOST_ENDPOINTS
    assert '"50 model runs relinked"' in picture  # the largest group is drawn first
    assert "more[" in picture and "189 more groups (189 records)" in picture
    assert len(picture) < 8_000
    assert all(result["ok"] for result in parse([picture]))


def test_deleted_runs_with_downstream_records_are_drawn_as_removed(golden: Plan) -> None:
    deletions = [
        Action(
            key=f"delete 10378.1/8{n}",
            kind="delete_model_run",
            record_id=f"10378.1/8{n}",
            subtype="MODEL_RUN",
            operations=[0],
            outcome="change",
            downstream=[Neighbour(id=f"10378.1/7{n}", subtype="DATASET", name="outputs")],
        )
        for n in range(4)
    ]
    picture = render_mermaid(plan_of(golden, deletions))
    assert picture is not None
    assert '(["4 model runs deleted"]):::removed' in picture
    assert '"4 downstream records"' in picture
    markdown = render_markdown(plan_of(golden, deletions))
    assert (
        "- :warning: 4 records downstream keep their registry records and lose this provenance:" in markdown
    )
    assert "  - `10378.1/70` DATASET outputs" in markdown


def test_a_plan_that_changes_nothing_has_no_picture(golden: Plan) -> None:
    quiet = [a for a in golden.actions if a.outcome != "change"]
    assert render_mermaid(plan_of(golden, quiet)) is None
    assert "```mermaid" not in render_markdown(plan_of(golden, quiet))
