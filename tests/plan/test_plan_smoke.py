"""The plan as a user meets it: each example playbook planned over HTTP against the sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from provena_ops.sandbox.seed import SeedSummary
from tests.plan.conftest import PlanOn, playbook


def test_study_deletion_relinks_every_linked_run_first(plan_on: PlanOn) -> None:
    made = plan_on(
        playbook(
            """
op: delete_studies
studies:
  - id: 10378.1/1690051
    linked_model_runs: replace
    replace_with: 10378.1/1690048
    model_run_overrides:
      10378.1/1690060: remove
"""
        )
    )
    assert not made.problems, made.problems
    study = next(a for a in made.actions if a.kind == "delete_study")
    relinks = [a for a in made.actions if a.kind == "relink"]
    assert {a.key for a in relinks} == set(study.depends_on)
    assert len(relinks) == 10
    removed = next(a for a in relinks if a.record_id == "10378.1/1690060")
    assert [(c.field, c.before, c.after) for c in removed.changes] == [("study_id", "10378.1/1690051", None)]
    assert made.summary.line() == "Plan: 0 to update, 10 to relink, 1 to delete, 0 unchanged."


def test_a_study_linked_to_something_else_fails_the_plan(plan_on: PlanOn, demo: SeedSummary) -> None:
    study = demo.notable["study with a non-model-run connection"]
    made = plan_on(playbook(f"op: delete_studies\nlinked_model_runs: remove\nstudies: [{study}]"))
    assert any("CREATE" in p.message and study in p.message for p in made.problems), made.problems


EXAMPLES = Path(__file__).parents[2] / "playbooks" / "examples"
# Each example against the seeded registry: no problem, this summary, these warnings.
EXPECTED = {
    "delete-model-runs": (
        "Plan: 0 to update, 2 to delete, 0 unchanged.",
        [
            "2 model run deletions (of runs with a graph) remove 2 nodes and 14 links in total "
            "(average 1.0 nodes, 7.0 links per run)"
        ],
    ),
    "delete-studies": ("Plan: 0 to update, 10 to relink, 1 to delete, 0 unchanged.", []),
    "link-studies": ("Plan: 0 to update, 2 to relink, 0 to delete, 1 unchanged.", []),
    "relodge-model-runs": ("Plan: 0 to update, 0 to delete, 1 to relodge, 0 unchanged.", []),
    "update-model-runs": ("Plan: 1 to update, 0 to delete, 0 unchanged.", []),
}


def test_every_example_is_expected() -> None:
    assert sorted(path.stem for path in EXAMPLES.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_example_plans_against_the_seeded_registry(plan_on: PlanOn, name: str) -> None:
    """What a newcomer sees planning each example: no problem, exactly this summary and these warnings."""
    text = (EXAMPLES / f"{name}.yaml").read_text()
    made = plan_on(text.replace("environment: sandbox", "environment: rehearsal"))
    assert [problem.message for problem in made.problems] == []
    assert (made.summary.line(), made.warnings) == EXPECTED[name]
