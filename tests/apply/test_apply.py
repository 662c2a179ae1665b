"""Apply over real HTTP against the sandbox: what changes, in what order, what the journal says, and how
failures, faults, stale plans, locks and interrupted jobs are handled."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from provena_ops import api as ops
from provena_ops.apply.executor import Executor, JobWait
from provena_ops.apply.journal import (
    ActionFinished,
    ActionStarted,
    JobRecovered,
    JobStatus,
    Journal,
    RequestSent,
    RunFinished,
    RunResumed,
    read_events,
)
from provena_ops.apply.lock import Locked, environment_lock
from provena_ops.apply.review import NotApplied
from provena_ops.environments.file import Endpoints
from provena_ops.environments.target import TargetArgs
from provena_ops.errors import ProvenaOpsError
from provena_ops.plan.model import Plan
from provena_ops.provena.auth import StaticToken
from provena_ops.provena.http import ProvenaHttp
from provena_ops.render.json_format import render_json
from provena_ops.sandbox import RunningSandbox
from tests.apply.conftest import FAST, ApplyOn, RecordingUI, apply_with, events, history_length
from tests.conftest import Api
from tests.plan.conftest import playbook
from tests.plan.test_plan_rules import (
    CATCHMENT_002,
    LOCKED_RUN,
    REEF_010,
    RUN_ROUTE,
    RUNS_OF_51,
    SEAGRASS_012,
    STUDY_48,
    STUDY_51,
    STUDY_ROUTE,
)
from tests.sandbox.seeded import set_faults

EXAMPLES = Path(__file__).parents[2] / "playbooks" / "examples"
DELETE_51 = playbook(
    f"op: delete_studies\nlinked_model_runs: replace\nreplace_with: {STUDY_48}\nstudies: [{STUDY_51}]"
)


def describe(run: str, description: str) -> str:
    """A playbook that sets one model run's description."""
    return playbook(
        f"op: update_model_runs\nreason: r\nmodel_runs: [{run}]\nset: {{description: {description}}}"
    )


def fetch(api: Api, route: str, item_id: str) -> dict[str, Any] | None:
    response = api.http.get(f"{api.registry}{route}/fetch", params={"id": item_id}, headers=api.auth())
    item: dict[str, Any] | None = response.json()["item"]
    return item


def of_kind(result: Any, kind: type) -> list[Any]:
    return [event for event in events(result) if isinstance(event, kind)]


# -- the happy path, and idempotency -------------------------------------------------------------------------


def test_a_study_deletion_relinks_every_run_then_deletes_the_study(apply_on: ApplyOn, api: Api) -> None:
    before = {run: history_length(api, RUN_ROUTE, run) for run in RUNS_OF_51}
    result = apply_on(DELETE_51)
    assert result.recap.succeeded and result.recap.changed == len(RUNS_OF_51) + 1
    assert fetch(api, STUDY_ROUTE, STUDY_51) is None
    for run in RUNS_OF_51:
        item = fetch(api, RUN_ROUTE, run)
        assert item is not None and item["record"]["study_id"] == STUDY_48
        assert len(item["history"]) == before[run] + 2  # Provena's edit and its completion: one job each
    order = [e.key for e in events(result) if isinstance(e, ActionFinished) and e.result == "changed"]
    assert order[-1] == f"delete {STUDY_51}"  # after every relink


def test_a_second_apply_writes_nothing_and_says_so(apply_on: ApplyOn) -> None:
    apply_on(DELETE_51)
    again = apply_on(DELETE_51)
    assert not again.plan.has_changes
    assert (again.recap.changed, again.recap.failed) == (0, 0) and again.recap.succeeded
    assert of_kind(again, ActionStarted) == [] and of_kind(again, RequestSent) == []


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_every_example_playbook_applies_and_then_has_nothing_left_to_do(
    apply_on: ApplyOn, example: str
) -> None:
    text = (EXAMPLES / example).read_text()
    first = apply_on(text)
    assert first.recap.succeeded, first.outcomes
    assert first.recap.changed > 0
    second = apply_on(text)
    assert not second.plan.has_changes, [a.key for a in second.plan.actions if a.outcome == "change"]
    # A finished job leaves no noise; only a name that no longer resolves is said (deleted, or a typo?).
    unresolved = "nothing to delete (already deleted, if an earlier apply deleted it"
    assert [w for w in second.plan.warnings if unresolved not in w] == [] and second.plan.problems == []
    assert [a.warnings for a in second.plan.actions if a.warnings] == []
    assert of_kind(second, RequestSent) == []


def test_a_model_run_deletion_removes_the_graph_then_the_registry_record(apply_on: ApplyOn, api: Api) -> None:
    result = apply_on(playbook(f"op: delete_model_runs\nmodel_runs: [{REEF_010}]"))
    assert result.recap.changed == 1
    requests = [e.request for e in of_kind(result, RequestSent)]
    assert requests == [f"POST /model_run/delete {REEF_010}", f"DELETE {RUN_ROUTE}/delete {REEF_010}"]
    assert fetch(api, RUN_ROUTE, REEF_010) is None
    explored = api.http.get(
        f"{api.prov}/explore/upstream", params={"starting_id": STUDY_48, "depth": 1}, headers=api.auth()
    )
    assert REEF_010 not in json.dumps(explored.json())


# -- the journal -----------------------------------------------------------------------------------------


def test_the_journal_is_written_ahead_of_every_write_and_keeps_the_record_as_it_was(
    apply_on: ApplyOn, api: Api
) -> None:
    original = fetch(api, RUN_ROUTE, CATCHMENT_002)
    result = apply_on(describe(CATCHMENT_002, "x"))
    sequence = [(type(e).__name__, getattr(e, "key", None)) for e in events(result)]
    key = f"update {CATCHMENT_002}"
    steps = [name for name, k in sequence if k == key]
    assert steps[0] == "ActionStarted" and steps[1] == "RequestSent" and steps[-1] == "ActionFinished"
    assert "JobStatus" in steps
    [started] = of_kind(result, ActionStarted)
    assert started.before == original  # enough to put it back
    [sent] = of_kind(result, RequestSent)
    assert sent.session_id and any(s.status == "SUCCEEDED" for s in of_kind(result, JobStatus))
    assert sequence[0][0] == "RunStarted" and sequence[-1][0] == "RunFinished"


def test_no_token_is_ever_written_to_the_journal(apply_on: ApplyOn, api: Api, tmp_path: Path) -> None:
    result = apply_on(DELETE_51)
    token = os.environ["PROVENA_OPS_ACCESS_TOKEN"]
    text = result.journal.read_text()
    assert token not in text and token.split(".")[2] not in text


# -- failures --------------------------------------------------------------------------------------------


def test_a_job_failed_for_a_reason_provena_does_not_say_is_explained_from_the_record(
    apply_on: ApplyOn, api: Api
) -> None:
    """prov-api's failed update job reads the same whatever the registry refused; a run locked after
    it was checked and before its job ran is named as the likely cause."""
    target = RUNS_OF_51[1]
    set_faults(api, job_delay_ms=400)
    stop = threading.Event()

    def lock_when_submitted() -> None:
        while not stop.is_set():
            listed = api.http.post(f"{api.jobs}/jobs/admin/list", json={}, headers=api.auth()).json()
            if any(job["payload"].get("model_run_record_id") == target for job in listed.get("jobs", [])):
                api.http.put(
                    f"{api.registry}{RUN_ROUTE}/locks/lock",
                    json={"id": target, "reason": "frozen mid-apply"},
                    headers=api.auth(),
                )
                return
            stop.wait(0.02)

    locker = threading.Thread(target=lock_when_submitted)
    locker.start()
    try:
        result = apply_on(DELETE_51)
    finally:
        stop.set()
        locker.join()
    detail = result.outcomes[f"update {target}"].detail
    assert "An error occurred while lodging the provenance record. Error: .." in detail
    assert detail.endswith(f"(likely: {target} is locked; an admin of the record can unlock it)")


def test_a_failed_job_fails_its_action_skips_what_depends_on_it_and_the_rest_goes_on(
    apply_on: ApplyOn, api: Api
) -> None:
    broken = RUNS_OF_51[2]
    set_faults(api, fail_jobs_for=[broken])
    result = apply_on(DELETE_51)
    outcomes = result.outcomes
    assert outcomes[f"update {broken}"].result == "failed"
    assert "FAILED" in outcomes[f"update {broken}"].detail
    assert outcomes[f"delete {STUDY_51}"].result == "skipped"
    assert outcomes[f"delete {STUDY_51}"].detail.startswith(f"update {broken} failed")
    assert sum(o.result == "changed" for o in outcomes.values()) == len(RUNS_OF_51) - 1
    assert fetch(api, STUDY_ROUTE, STUDY_51) is not None  # never deleted while a run still names it
    set_faults(api, fail_jobs_for=[])
    finished = apply_on(DELETE_51)
    assert finished.recap.succeeded and finished.recap.changed == 2  # the one relink, then the study


def test_fail_fast_starts_nothing_after_the_first_failure(apply_on: ApplyOn, api: Api) -> None:
    set_faults(api, fail_next_jobs=1)
    result = apply_on(DELETE_51, fail_fast=True, parallelism=1)
    results = [o.result for o in result.outcomes.values()]
    assert results.count("failed") == 1
    assert results.count("changed") == 0
    updates = {k: o for k, o in result.outcomes.items() if k.startswith("update")}
    assert all("--fail-fast" in o.detail for o in updates.values() if o.result == "skipped")
    assert result.outcomes[f"delete {STUDY_51}"].result == "skipped"
    assert result.stopped and result.stopped.startswith("--fail-fast after update ")


def test_a_job_that_outlasts_the_wait_is_unknown_and_the_next_run_follows_it(
    apply_on: ApplyOn, api: Api
) -> None:
    edit = describe(CATCHMENT_002, "slow")
    before = history_length(api, RUN_ROUTE, CATCHMENT_002)
    set_faults(api, job_delay_ms=600)
    first = apply_on(edit, job_wait=JobWait(timeout_s=0.3, first_poll_s=0.05, max_poll_s=0.1))
    assert first.outcomes[f"update {CATCHMENT_002}"].result == "unknown"
    assert not first.recap.succeeded
    set_faults(api, job_delay_ms=0)
    second = apply_on(edit)
    [recovered] = of_kind(second, JobRecovered)
    assert recovered.key == f"update {CATCHMENT_002}" and recovered.status == "SUCCEEDED"
    assert of_kind(second, RequestSent) == []  # followed, not submitted again
    assert history_length(api, RUN_ROUTE, CATCHMENT_002) == before + 2


def test_a_registry_delete_that_fails_after_the_graph_delete_is_finished_by_the_next_run(
    apply_on: ApplyOn, api: Api
) -> None:
    text = playbook(f"op: delete_model_runs\nmodel_runs: [{REEF_010}]")
    set_faults(api, fail_registry_delete_for=[REEF_010])
    first = apply_on(text)
    outcome = first.outcomes[f"delete {REEF_010}"]
    assert outcome.result == "failed"
    assert "graph is deleted" in outcome.detail and "registry record remains" in outcome.detail
    set_faults(api, fail_registry_delete_for=[])
    second = apply_on(text)
    [action] = second.plan.actions
    assert any("only the registry record is deleted" in w for w in action.warnings)
    assert second.recap.changed == 1 and fetch(api, RUN_ROUTE, REEF_010) is None
    assert next(e.request for e in of_kind(second, RequestSent)).startswith("POST /model_run/delete")


def test_transient_faults_and_lost_answers_change_nothing_twice(apply_on: ApplyOn, api: Api) -> None:
    before = {run: history_length(api, RUN_ROUTE, run) for run in RUNS_OF_51}
    set_faults(api, fault_rate=0.25, fault_kinds=["502", "503", "429", "drop", "lost"], retry_after_s=0)
    result = apply_on(DELETE_51)
    set_faults(api, fault_rate=0)
    if not result.recap.succeeded:  # a lost answer whose job never showed up: a second run finishes
        result = apply_on(DELETE_51)
    assert result.recap.succeeded, result.outcomes
    assert fetch(api, STUDY_ROUTE, STUDY_51) is None
    for run in RUNS_OF_51:
        assert history_length(api, RUN_ROUTE, run) == before[run] + 2, run  # exactly one job per run


def test_a_study_is_not_deleted_while_something_still_links_to_it(
    api: Api, tmp_path: Path, environments_file: Path
) -> None:
    """The last check before a study deletion: a run linked after planning keeps the study."""
    plan = Plan.model_validate_json(save_plan(api, tmp_path, environments_file, DELETE_51).read_text())
    linked = api.http.post(
        f"{api.prov}/model_run/edit/link_to_study",
        params={"model_run_id": SEAGRASS_012, "study_id": STUDY_51},
        headers=api.auth(),
    )
    assert linked.status_code == 200, linked.text

    async def execute() -> Executor:
        endpoints = Endpoints(api.registry, api.prov, api.jobs, api.search, api.keycloak, {})
        token = StaticToken(api.token(lifetime=600))
        async with ProvenaHttp(endpoints, token, environment="rehearsal") as http:
            journal = Journal(tmp_path / "runs", "late")
            executor = Executor(http, plan, journal, job_wait=FAST)
            await executor.run()
            journal.close()
            return executor

    executor = asyncio.run(execute())
    assert all(o.result == "changed" for k, o in executor.outcomes.items() if k.startswith("update"))
    outcome = executor.outcomes[f"delete {STUDY_51}"]
    assert outcome.result == "failed"
    assert outcome.detail.startswith("not deleted: ") and SEAGRASS_012 in outcome.detail
    assert fetch(api, STUDY_ROUTE, STUDY_51) is not None


# -- approval, plans with problems, saved plans -------------------------------------------------------------


def test_nothing_is_written_without_approval(apply_on: ApplyOn, api: Api) -> None:
    ui = RecordingUI(approve=False)
    with pytest.raises(NotApplied, match="apply cancelled; nothing was changed"):
        apply_on(DELETE_51, ui=ui, auto_approve=False)
    assert ui.asked == 1 and ui.shown
    assert fetch(api, STUDY_ROUTE, STUDY_51) is not None


def test_a_plan_with_problems_is_not_applied(apply_on: ApplyOn, api: Api) -> None:
    with pytest.raises(NotApplied, match=r"the plan has 1 problem\(s\); nothing was applied"):
        apply_on(describe(LOCKED_RUN, "x"))


def save_plan(api: Api, tmp_path: Path, environments_file: Path, text: str) -> Path:
    path = tmp_path / "playbook.yaml"
    path.write_text(text)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PROVENA_OPS_ACCESS_TOKEN", api.token(lifetime=600))
        made = ops.plan(path, TargetArgs("rehearsal", environments_file=environments_file))
    saved = tmp_path / "plan.json"
    saved.write_text(render_json(made))
    return saved


def test_a_deletion_target_that_is_gone_says_which_run_deleted_it(apply_on: ApplyOn, api: Api) -> None:
    text = playbook(f"op: delete_model_runs\nmodel_runs: [{REEF_010}, 10378.1/1999999]")
    first = apply_on(text)
    assert first.recap.changed == 1
    again = apply_on(text)
    gone, typo = again.plan.actions
    assert (gone.outcome, gone.why) == ("not_found", f"not found: deleted by run {first.run_id}")
    assert typo.outcome == "not_found" and "(a typo?)" in (typo.why or "")
    assert again.plan.summary.line() == "Plan: 0 to update, 0 to delete, 0 unchanged, 2 not found."


def test_a_saved_plan_is_applied_as_saved(
    apply_on: ApplyOn, api: Api, tmp_path: Path, environments_file: Path
) -> None:
    saved = save_plan(api, tmp_path, environments_file, DELETE_51)
    reviewed = Plan.model_validate_json(saved.read_text())
    result = apply_on(DELETE_51, plan_file=saved)
    assert result.plan.actions == reviewed.actions  # what was reviewed, action for action
    assert result.recap.succeeded and fetch(api, STUDY_ROUTE, STUDY_51) is None
    again = apply_on(DELETE_51, plan_file=saved)
    assert not again.plan.has_changes and again.recap.changed == 0  # shown as done, not as to do
    assert not of_kind(again, RequestSent)


def doctor(saved: Path, edit: Any) -> None:
    plan = json.loads(saved.read_text())
    edit(plan)
    saved.write_text(json.dumps(plan))


def test_a_saved_plan_cut_short_or_malformed_is_named_with_what_is_wrong(
    api: Api, tmp_path: Path, environments_file: Path
) -> None:
    saved = save_plan(api, tmp_path, environments_file, DELETE_51)
    text = saved.read_text()
    whole = json.loads(text)
    inside_a_name = text.index('"display_name": "') + len('"display_name": "') + 2  # not at a byte count
    cases = {
        "cut short": (text[:inside_a_name], "invalid JSON: Unterminated string starting at"),
        "other format": (
            json.dumps({**whole, "plan_format": 2}),
            "plan_format: Input should be exactly 1 (the number), not 2",
        ),
        "bad outcome": (
            json.dumps({**whole, "actions": [{**whole["actions"][0], "outcome": "maybe"}]}),
            "actions[0].outcome: Input should be 'change', 'unchanged' or 'not_found' (found 'maybe')",
        ),
    }
    for name, (text, said) in cases.items():
        broken = tmp_path / f"{name}.json"
        broken.write_text(text)
        with pytest.raises(ProvenaOpsError) as refused:
            apply_with(None, RecordingUI(), plan_file=broken, cwd=tmp_path)
        assert refused.value.message.startswith(f"{broken} is not a provena-ops plan: ")
        assert said in refused.value.message, (name, refused.value.message)
    assert fetch(api, STUDY_ROUTE, STUDY_51) is not None


def test_a_saved_plan_edited_by_hand_is_refused_and_changes_nothing(
    apply_on: ApplyOn, api: Api, tmp_path: Path, environments_file: Path
) -> None:
    """Only what `plan` wrote is applied: an edited target, record or summary is not carried out."""
    text = playbook(f"op: delete_model_runs\nmodel_runs: [{REEF_010}]")
    bystander = CATCHMENT_002  # in no playbook here

    def retarget(plan: dict[str, Any]) -> None:
        plan["actions"][0]["record_id"] = bystander
        plan["actions"][0]["key"] = f"delete {bystander}"

    def rename(plan: dict[str, Any]) -> None:
        plan["actions"][0]["record"] = {**plan["actions"][0]["record"], "display_name": "HACKED"}

    def forge_fingerprint(plan: dict[str, Any]) -> None:
        retarget(plan)
        plan["fingerprints"][bystander] = "sha256:" + "0" * 64

    saved = save_plan(api, tmp_path, environments_file, text)
    doctor(saved, retarget)
    with pytest.raises(ProvenaOpsError, match="acts on a record the plan never read"):
        apply_on(text, plan_file=saved)
    saved = save_plan(api, tmp_path, environments_file, text)
    doctor(saved, forge_fingerprint)
    with pytest.raises(NotApplied) as refused:
        apply_on(text, plan_file=saved)
    assert f"1 action(s) planned now are not in it as written: delete {REEF_010}" in refused.value.message
    assert "edited after `provena-ops plan` wrote it" in (refused.value.hint or "")
    assert fetch(api, RUN_ROUTE, REEF_010) is not None and fetch(api, RUN_ROUTE, bystander) is not None

    edit_text = describe(REEF_010, "reviewed")
    saved = save_plan(api, tmp_path, environments_file, edit_text)
    doctor(saved, rename)
    before = fetch(api, RUN_ROUTE, REEF_010)
    with pytest.raises(NotApplied, match=f"not in it as written: update {REEF_010}"):
        apply_on(edit_text, plan_file=saved)
    assert fetch(api, RUN_ROUTE, REEF_010) == before

    saved = save_plan(api, tmp_path, environments_file, text)
    doctor(saved, lambda plan: plan["summary"].update(delete=5))
    with pytest.raises(ProvenaOpsError, match="its summary does not count its actions"):
        apply_on(text, plan_file=saved)
    assert fetch(api, RUN_ROUTE, REEF_010) is not None


def test_a_stale_saved_plan_is_refused_naming_what_changed(
    apply_on: ApplyOn, api: Api, tmp_path: Path, environments_file: Path
) -> None:
    saved = save_plan(api, tmp_path, environments_file, DELETE_51)
    run = RUNS_OF_51[0]
    apply_on(describe(run, "meanwhile"))
    with pytest.raises(NotApplied) as refused:
        apply_on(DELETE_51, plan_file=saved)
    assert "the saved plan is stale: 1 record(s) changed since it was made: " + run in refused.value.message
    assert fetch(api, STUDY_ROUTE, STUDY_51) is not None


def test_a_saved_plan_for_a_changed_playbook_or_another_environment_is_refused(
    apply_on: ApplyOn, api: Api, tmp_path: Path, environments_file: Path
) -> None:
    saved = save_plan(api, tmp_path, environments_file, DELETE_51)
    with pytest.raises(NotApplied, match="has changed since the plan was made"):
        apply_on(DELETE_51 + "# edited\n", plan_file=saved)
    with pytest.raises(NotApplied, match="the plan was made for 'rehearsal', but -e names 'sandbox'"):
        apply_with(None, RecordingUI(), plan_file=saved, environment="sandbox", cwd=tmp_path)


# -- safety rails ------------------------------------------------------------------------------------------


def test_production_needs_its_name_confirmed(
    api: Api, server: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    environments = tmp_path / "prod.json"
    env = {"name": "prod", "stage": "PROD", "domain": "sandbox.invalid", "realm_name": "provena"}
    environments.write_text(json.dumps({"envs": [{**env, **server.endpoints}]}))
    path = tmp_path / "playbook.yaml"
    path.write_text(DELETE_51.replace("environment: rehearsal", "environment: prod"))
    monkeypatch.setenv("PROVENA_OPS_ACCESS_TOKEN", api.token(lifetime=600))
    options: dict[str, Any] = {"environments_file": environments, "cwd": tmp_path, "auto_approve": True}
    with pytest.raises(
        NotApplied, match="'prod' is a production environment \\(stage PROD\\); nothing was contacted"
    ):
        apply_with(path, RecordingUI(), **options)
    with pytest.raises(NotApplied, match="--confirm-environment rehearsal does not name the target"):
        apply_with(path, RecordingUI(), confirm_environment="rehearsal", **options)
    sandboxed = tmp_path / "sandboxed.yaml"
    sandboxed.write_text(DELETE_51.replace("environment: rehearsal", "environment: sandbox"))
    with pytest.raises(NotApplied, match="does not name the target environment 'sandbox'"):
        apply_with(sandboxed, RecordingUI(), confirm_environment="prod", **options)
    result = apply_with(path, RecordingUI(), confirm_environment="prod", job_wait=FAST, **options)
    assert result.recap.succeeded


def test_a_second_apply_on_the_same_registry_is_refused_naming_the_holder(
    apply_on: ApplyOn, api: Api, tmp_path: Path
) -> None:
    """Whatever the environment is called and wherever it is run from: the lock is the registry's."""
    holder = "provena-ops apply other.yaml"
    with (
        environment_lock(tmp_path / "locks", "another-name", api.registry, holder),
        pytest.raises(Locked) as refused,
    ):
        apply_on(DELETE_51)
    assert f"another apply holds the lock on 'rehearsal' ({api.registry}): process {os.getpid()}" in (
        refused.value.message
    )
    assert f"({holder})" in refused.value.message
    assert apply_on(DELETE_51).recap.succeeded  # released with its holder


def test_a_lock_left_by_a_killed_apply_is_free_and_its_holder_reported(
    apply_on: ApplyOn, api: Api, tmp_path: Path
) -> None:
    ui = RecordingUI()
    dead = {"pid": 999_999_999, "host": socket.gethostname(), "since": "earlier", "command": "provena-ops x"}
    with environment_lock(tmp_path / "locks", "rehearsal", api.registry, "probe"):
        pass  # find the lock file's name
    [lock] = (tmp_path / "locks").iterdir()
    lock.write_text(json.dumps(dead))  # what a process killed while holding the lock leaves behind
    result = apply_on(DELETE_51, ui=ui)
    assert result.recap.succeeded
    assert any("took over the lock on 'rehearsal' left by process 999999999" in n for n in ui.notes)
    assert lock.read_text() == ""  # released cleanly this time


def test_actions_run_at_most_parallelism_at_a_time(apply_on: ApplyOn, api: Api) -> None:
    set_faults(api, job_delay_ms=30)
    result = apply_on(DELETE_51, parallelism=3)
    running = peak = 0
    for event in events(result):
        if isinstance(event, ActionStarted):
            running += 1
            peak = max(peak, running)
        elif isinstance(event, ActionFinished) and event.result == "changed":
            running -= 1
    assert peak == 3
    assert isinstance(events(result)[-1], RunFinished)


def test_an_edit_whose_answer_is_lost_is_found_in_the_job_list_not_submitted_again(
    apply_on: ApplyOn, api: Api
) -> None:
    """Provena did the work but the answer never arrived: the job list says which job it was."""
    before = {run: history_length(api, RUN_ROUTE, run) for run in RUNS_OF_51}
    set_faults(api, fault_rate=1.0, fault_kinds=["lost"], fault_paths=["/model_run/update"])
    result = apply_on(DELETE_51)
    assert result.recap.succeeded, result.outcomes
    submissions = [e for e in of_kind(result, RequestSent) if e.request.startswith("POST /model_run/update")]
    assert len(submissions) == len(RUNS_OF_51)
    assert all(e.detail == "the answer was lost; the job was found in the job list" for e in submissions)
    for run in RUNS_OF_51:
        assert history_length(api, RUN_ROUTE, run) == before[run] + 2, run


def test_an_edit_refused_with_a_5xx_and_no_job_is_submitted_again(apply_on: ApplyOn, api: Api) -> None:
    """Provena answered 500 and launched nothing: the same run submits it again, once, not twice."""
    edit = describe(CATCHMENT_002, "again")
    before = history_length(api, RUN_ROUTE, CATCHMENT_002)
    set_faults(api, fault_rate=1.0, fault_kinds=["500"], fault_paths=["/model_run/update"])
    healed = threading.Timer(1.0, lambda: set_faults(api, fault_rate=0))  # the next submission goes through
    healed.start()
    result = apply_on(edit)
    healed.join()
    assert result.recap.succeeded, result.outcomes
    assert history_length(api, RUN_ROUTE, CATCHMENT_002) == before + 2  # one job, not two


def test_an_edit_with_no_answer_and_no_job_is_unknown_and_done_once_by_the_next_run(
    apply_on: ApplyOn, api: Api
) -> None:
    edit = describe(CATCHMENT_002, "y")
    before = history_length(api, RUN_ROUTE, CATCHMENT_002)
    set_faults(api, fault_rate=1.0, fault_kinds=["503"], fault_paths=["/model_run/update"])
    first = apply_on(edit)
    outcome = first.outcomes[f"update {CATCHMENT_002}"]
    assert outcome.result == "unknown"  # a 503 may come from a gateway after Provena did the work
    assert "no job for" in outcome.detail and "the next apply looks again" in outcome.detail
    assert history_length(api, RUN_ROUTE, CATCHMENT_002) == before
    set_faults(api, fault_rate=0)
    second = apply_on(edit)
    assert second.recap.changed == 1 and of_kind(second, JobRecovered) == []
    assert history_length(api, RUN_ROUTE, CATCHMENT_002) == before + 2


def test_losing_track_of_a_submitted_job_is_unknown_and_the_next_run_follows_it(
    apply_on: ApplyOn, api: Api
) -> None:
    """Polling fails after the submission: the job runs on; the next apply follows it, not resubmits."""
    edit = describe(CATCHMENT_002, "z")
    before = history_length(api, RUN_ROUTE, CATCHMENT_002)
    set_faults(api, job_delay_ms=300, fault_rate=1.0, fault_kinds=["503"], fault_paths=["/jobs/user/fetch"])
    first = apply_on(edit)
    outcome = first.outcomes[f"update {CATCHMENT_002}"]
    assert outcome.result == "unknown" and "then following it failed" in outcome.detail
    set_faults(api, fault_rate=0)
    second = apply_on(edit)
    [recovered] = of_kind(second, JobRecovered)
    assert recovered.status == "SUCCEEDED" and of_kind(second, RequestSent) == []
    assert history_length(api, RUN_ROUTE, CATCHMENT_002) == before + 2


def test_a_job_whose_row_appears_late_after_a_lost_answer_is_found_before_submitting_again(
    apply_on: ApplyOn, api: Api
) -> None:
    """The row appears after the patience (3 s, FAST) but within twice it: found, not submitted twice."""
    edit = describe(CATCHMENT_002, "late")
    before = history_length(api, RUN_ROUTE, CATCHMENT_002)
    set_faults(
        api,
        job_row_delay_ms=4000,
        job_delay_ms=1500,
        fault_rate=1.0,
        fault_kinds=["lost"],
        fault_paths=["/model_run/update"],
    )
    first = apply_on(edit)
    set_faults(api, fault_rate=0, job_delay_ms=0)
    outcome = first.outcomes[f"update {CATCHMENT_002}"]
    assert outcome.result == "changed", outcome
    [sent] = [e for e in of_kind(first, RequestSent) if e.request.startswith("POST /model_run/update")]
    assert sent.detail == "the answer was lost; the job was found in the job list"
    assert history_length(api, RUN_ROUTE, CATCHMENT_002) == before + 2


def test_a_link_only_the_graph_still_has_is_removed_so_the_study_can_go(apply_on: ApplyOn, api: Api) -> None:
    """A run whose graph (not its record) links to the study: its record is re-submitted unchanged."""
    item = fetch(api, RUN_ROUTE, SEAGRASS_012)
    assert item is not None and not item["record"].get("study_id")
    doctored = {**item, "record": {**item["record"], "study_id": STUDY_51}}
    relodged = api.http.post(f"{api.prov}/admin/store_record", json=doctored, headers=api.auth())
    assert relodged.status_code == 200, relodged.text
    result = apply_on(DELETE_51)
    assert result.outcomes[f"update {SEAGRASS_012}"].result == "changed", result.outcomes
    assert result.recap.succeeded and fetch(api, STUDY_ROUTE, STUDY_51) is None


def test_a_saved_plan_is_not_applied_when_applying_it_now_has_problems(
    apply_on: ApplyOn, api: Api, tmp_path: Path, environments_file: Path
) -> None:
    saved = save_plan(api, tmp_path, environments_file, DELETE_51)  # planned by admin
    ui = RecordingUI()
    with pytest.raises(NotApplied, match=r"would run into 1 problem\(s\)"):
        apply_on(DELETE_51, ui=ui, user="alice", plan_file=saved)
    assert "alice lacks the entity-registry-admin role needed to delete" in ui.shown[-1].problems[0].message
    assert fetch(api, STUDY_ROUTE, STUDY_51) is not None
    assert all(history_length(api, RUN_ROUTE, run) > 0 for run in RUNS_OF_51)


def test_an_interrupted_saved_plan_is_finished_by_the_same_command(
    apply_on: ApplyOn, api: Api, tmp_path: Path, environments_file: Path
) -> None:
    saved = save_plan(api, tmp_path, environments_file, DELETE_51)
    set_faults(api, fail_jobs_for=[RUNS_OF_51[1]])
    partial = apply_on(DELETE_51, plan_file=saved)
    assert not partial.recap.succeeded and partial.recap.changed == len(RUNS_OF_51) - 1
    set_faults(api, fail_jobs_for=[])
    finished = apply_on(DELETE_51, plan_file=saved)  # the runs it moved are not "changes since"
    assert finished.recap.succeeded and finished.recap.changed == 2
    assert fetch(api, STUDY_ROUTE, STUDY_51) is None


def test_an_unexpected_error_in_one_action_leaves_the_others_to_finish(
    apply_on: ApplyOn, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from provena_ops.provena import writes

    real = writes.delete_graph

    async def broken(http: ProvenaHttp, model_run_id: str) -> dict[str, int]:
        if model_run_id == REEF_010:
            raise OSError(28, "No space left on device")
        return await real(http, model_run_id)

    monkeypatch.setattr(writes, "delete_graph", broken)
    result = apply_on(playbook(f"op: delete_model_runs\nmodel_runs: [{REEF_010}, {CATCHMENT_002}]"))
    outcome = result.outcomes[f"delete {REEF_010}"]
    assert outcome.result == "unknown"
    assert outcome.detail.startswith("internal error: OSError: [Errno 28] No space left on device")
    assert result.outcomes[f"delete {CATCHMENT_002}"].result == "changed"


def test_a_journal_cut_short_by_a_crash_stays_readable_after_it_is_resumed(
    apply_on: ApplyOn, api: Api
) -> None:
    first = apply_on(DELETE_51)
    lines = first.journal.read_text().splitlines(keepends=True)
    torn = "".join(lines[:-3]) + lines[-3][: len(lines[-3]) // 2]  # killed mid-write, no run_finished
    first.journal.write_text(torn)
    apply_on(DELETE_51)
    resumed = read_events(first.journal)
    assert isinstance(resumed[-1], RunResumed) and len(resumed) == len(lines) - 3 + 1
