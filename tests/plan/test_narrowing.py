"""Narrowing a run over HTTP against the seeded sandbox: `exclude:` in selectors, `skip_locked: true` on
operations, and --target on plan and apply (with what the targeted records depend on)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from provena_ops.api import PlaybookInvalid
from tests.apply.test_apply_cli import environ
from tests.conftest import Api
from tests.plan.conftest import PlanOn, playbook
from tests.plan.test_plan_rules import RUN_ROUTE, RUNS_OF_51, STUDY_48, STUDY_51, STUDY_ROUTE

RETIRE_51 = f"op: delete_studies\nlinked_model_runs: replace\nreplace_with: {STUDY_48}\nstudies: [{STUDY_51}]"


def lock(api: Api, route: str, item_id: str) -> None:
    response = api.http.put(
        f"{api.registry}{route}/locks/lock",
        json={"id": item_id, "reason": "under review"},
        headers=api.auth(),
    )
    assert response.status_code == 200 and response.json()["status"]["success"], response.text


def test_exclude_leaves_runs_out_of_a_selector_and_says_which(plan_on: PlanOn) -> None:
    plan = plan_on(
        playbook(
            "op: relodge_model_runs\nmodel_runs:\n"
            f"  - linked_to_study: {STUDY_51}\n"
            f"    exclude: [{RUNS_OF_51[0]}, {{display_name_matches: 'Catchment*'}}, 10378.1/1]"
        )
    )
    [target] = plan.targets
    catchments = [run for run in RUNS_OF_51 if run != RUNS_OF_51[0] and run in target.excluded]
    assert RUNS_OF_51[0] in target.excluded and catchments
    assert sorted(target.model_runs + target.excluded) == sorted(RUNS_OF_51)
    assert {action.record_id for action in plan.actions} == set(target.model_runs)
    assert not any(
        action.display_name and action.display_name.startswith("Catchment") for action in plan.actions
    )
    assert plan.warnings == [
        "operations[0]: exclude {'id': '10378.1/1'} leaves out none of the runs its selector chose"
    ]


def test_exclude_beside_an_id_is_refused_with_its_place(plan_on: PlanOn) -> None:
    with pytest.raises(PlaybookInvalid) as refused:
        plan_on(
            playbook(
                f"op: relodge_model_runs\nmodel_runs:\n  - id: {RUNS_OF_51[0]}\n"
                f"    exclude: [{RUNS_OF_51[1]}]"
            )
        )
    said = refused.value.render()
    assert "exclude narrows a selector (linked_to_study or display_name_matches)" in said
    assert "playbook.yaml:7:" in said


def test_skip_locked_reports_a_locked_run_and_keeps_the_study_it_would_orphan(
    api: Api, plan_on: PlanOn
) -> None:
    lock(api, RUN_ROUTE, RUNS_OF_51[0])
    stopped = plan_on(playbook(RETIRE_51))
    assert [problem.record_id for problem in stopped.problems] == [RUNS_OF_51[0]]
    assert "skip_locked: true" in stopped.problems[0].hint

    plan = plan_on(playbook(RETIRE_51 + "\nskip_locked: true"))
    assert plan.problems == []
    skipped = {skip.record_id: skip.reason for skip in plan.skipped}
    assert skipped[RUNS_OF_51[0]] == f"{RUNS_OF_51[0]} is locked, so Provena refuses to edit it"
    assert skipped[STUDY_51].startswith(f"update {RUNS_OF_51[0]} is skipped (")
    assert plan.summary.skipped == 2 and plan.summary.relink == len(RUNS_OF_51) - 1
    assert plan.summary.delete == 0  # the study stays: deleting it would orphan the locked run
    assert "2 skipped" in plan.summary.line()
    assert RUNS_OF_51[0] not in plan.fingerprints  # what is left alone cannot make the plan stale


def test_skip_locked_skips_a_locked_study_itself(api: Api, plan_on: PlanOn) -> None:
    lock(api, STUDY_ROUTE, STUDY_51)
    plan = plan_on(playbook(RETIRE_51 + "\nskip_locked: true"))
    assert [skip.record_id for skip in plan.skipped] == [STUDY_51] and plan.problems == []
    assert plan.summary.relink == len(RUNS_OF_51)  # the relinks still happen; only the deletion waits


def test_target_keeps_a_study_deletion_with_the_relinks_it_needs(plan_on: PlanOn) -> None:
    extra = f"op: relodge_model_runs\nmodel_runs: [{RUNS_OF_51[0]}, {RUNS_OF_51[1]}]"
    whole = plan_on(playbook(RETIRE_51, extra))
    study = plan_on(playbook(RETIRE_51, extra), only=frozenset({STUDY_51}))
    assert {a.record_id for a in study.actions} == {STUDY_51, *RUNS_OF_51}
    assert [a.kind for a in study.actions].count("relodge") == 0
    assert len(study.actions) < len(whole.actions) and study.targeted == [STUDY_51]
    assert study.warnings[0].startswith(
        f"resource targeting is in effect: the plan holds only the actions on --target {STUDY_51}"
    )
    one = plan_on(playbook(RETIRE_51), only=frozenset({RUNS_OF_51[2]}))
    assert [a.key for a in one.actions] == [f"update {RUNS_OF_51[2]}"]
    assert STUDY_51 not in one.fingerprints


def test_a_target_the_plan_does_not_hold_is_a_problem_with_the_closest_id(plan_on: PlanOn) -> None:
    typo = RUNS_OF_51[0][:-1] + ("9" if RUNS_OF_51[0][-1] != "9" else "8")
    plan = plan_on(playbook(RETIRE_51), only=frozenset({typo}))
    [problem] = plan.problems
    assert problem.message.startswith(f"--target {typo} names no record this playbook acts on")


def cli(api: Api, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "provena_ops", *args]
    return subprocess.run(
        command, cwd=cwd, env=environ(api, cwd / "locks"), capture_output=True, text=True, timeout=120
    )


def test_apply_with_target_writes_only_that_record_and_a_saved_targeted_plan_stays_narrow(
    api: Api, remote_environments: Path, tmp_path: Path
) -> None:
    (tmp_path / "retire.yaml").write_text(playbook(RETIRE_51))
    where = ["-e", "rehearsal", "--environments", str(remote_environments)]
    done = cli(api, tmp_path, "apply", "retire.yaml", *where, "--target", RUNS_OF_51[0], "--auto-approve")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Apply: 1 changed, 0 ok, 0 failed, 0 skipped." in done.stdout
    assert "resource targeting is in effect" in done.stdout
    fetched = api.http.get(f"{api.registry}{STUDY_ROUTE}/fetch", params={"id": STUDY_51}, headers=api.auth())
    assert fetched.json()["item"] is not None  # the study was not targeted: still there

    saved = cli(api, tmp_path, "plan", "retire.yaml", *where, "--target", RUNS_OF_51[1], "--out", "plan.json")
    assert saved.returncode == 2, saved.stdout + saved.stderr
    refused = cli(api, tmp_path, "apply", "--plan", "plan.json", "--target", RUNS_OF_51[2], "--auto-approve")
    assert refused.returncode == 1 and "--target narrows a plan as it is made" in refused.stderr
    lock(api, RUN_ROUTE, RUNS_OF_51[3])  # a change outside the targeted plan does not make it stale
    applied = cli(api, tmp_path, "apply", "--plan", "plan.json", "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Apply: 1 changed, 0 ok, 0 failed, 0 skipped." in applied.stdout
