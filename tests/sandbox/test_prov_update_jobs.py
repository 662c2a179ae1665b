"""POST /model_run/update and its MODEL_RUN_UPDATE job, and the job API (contract 6.1, 6.2, 8)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from ProvenaInterfaces import AsyncJobAPI

from provena_ops.sandbox.seed import SeedSummary
from tests.conftest import Api
from tests.sandbox.seeded import (
    COMPLETION,
    FINAL,
    fetch_job,
    run_id,
    set_faults,
    studies,
    wait_job,
    without_nulls,
)

PREFIX = "Failed to validate an entity's ID in the record, error: "
DEQUEUED_INFO = "Job removed from queue ready for processing by worker task."
IN_PROGRESS_INFO = "Job has been dispatched to worker callback and is in progress."


# ---- helpers ------------------------------------------------------------------------------------


def fetch_run(api: Api, item_id: str) -> dict[str, Any]:
    response = api.http.get(
        f"{api.registry}/registry/activity/model_run/fetch", params={"id": item_id}, headers=api.auth()
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"]["success"] is True, body
    item: dict[str, Any] = body["item"]
    return item


def submit(api: Api, model_run_id: str, record: dict[str, Any], reason: str, user: str = "admin") -> str:
    response = api.http.post(
        f"{api.prov}/model_run/update",
        json={"model_run_id": model_run_id, "reason": reason, "record": record},
        headers=api.auth(user),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"session_id"}
    session_id: str = body["session_id"]
    return session_id


def upstream_ids(api: Api, start: str, depth: int = 1) -> set[str]:
    response = api.http.get(
        f"{api.prov}/explore/upstream", params={"starting_id": start, "depth": depth}, headers=api.auth()
    )
    assert response.status_code == 200, response.text
    return {node["id"] for node in response.json()["graph"]["nodes"]}


def downstream_ids(api: Api, start: str, depth: int = 1) -> set[str]:
    response = api.http.get(
        f"{api.prov}/explore/downstream", params={"starting_id": start, "depth": depth}, headers=api.auth()
    )
    assert response.status_code == 200, response.text
    return {node["id"] for node in response.json()["graph"]["nodes"]}


def post_update_raw(api: Api, model_run_id: str, record: dict[str, Any], user: str = "admin") -> Any:
    return api.http.post(
        f"{api.prov}/model_run/update",
        json={"model_run_id": model_run_id, "reason": "test", "record": record},
        headers=api.auth(user),
    )


# ---- synchronous validation ---------------------------------------------------------------------


def test_unknown_study_is_refused_with_the_validation_prefix(api: Api, demo: SeedSummary) -> None:
    run = run_id(demo, 1)
    record = fetch_run(api, run)["record"]
    record["study_id"] = "10378.1/9999999"
    response = post_update_raw(api, run, record)
    assert response.status_code == 400
    assert response.json()["detail"].startswith(PREFIX)


def test_missing_required_annotation_is_refused(api: Api, demo: SeedSummary) -> None:
    run = demo.notable["model run with annotations"]  # workflow template 0 requires "scenario"
    record = fetch_run(api, run)["record"]
    record["annotations"] = {"notes": "no scenario"}
    response = post_update_raw(api, run, record)
    assert response.status_code == 400
    assert response.json()["detail"].startswith(PREFIX)


def test_modeller_that_is_not_a_person_is_refused(api: Api, demo: SeedSummary) -> None:
    run = run_id(demo, 1)
    record = fetch_run(api, run)["record"]
    # run 1 has an organisation: use it as the modeller
    organisation = record["associations"]["requesting_organisation_id"]
    assert organisation
    record["associations"]["modeller_id"] = organisation
    response = post_update_raw(api, run, record)
    assert response.status_code == 400
    assert response.json()["detail"].startswith(PREFIX)


def test_end_before_start_is_a_pydantic_422(api: Api, demo: SeedSummary) -> None:
    run = run_id(demo, 1)
    record = fetch_run(api, run)["record"]
    record["end_time"] = record["start_time"] - 1
    response = post_update_raw(api, run, record)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)


def test_dataset_template_outside_the_workflow_is_a_direct_400(api: Api, demo: SeedSummary) -> None:
    run = run_id(demo, 0)  # workflow 0: inputs forcing+config, output grid
    other = fetch_run(api, run_id(demo, 1))["record"]  # workflow 1 outputs a "summary" dataset
    record = fetch_run(api, run)["record"]
    record["inputs"].append(other["outputs"][0])
    response = post_update_raw(api, run, record)
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail
    assert not detail.startswith(PREFIX)


def test_invalid_record_launches_no_job(api: Api, demo: SeedSummary) -> None:
    run = run_id(demo, 1)
    record = fetch_run(api, run)["record"]
    record["study_id"] = "10378.1/9999999"
    assert post_update_raw(api, run, record, user="alice").status_code == 400
    listed = api.http.post(f"{api.jobs}/jobs/user/list", json={}, headers=api.auth("alice"))
    assert listed.status_code == 200
    assert listed.json()["jobs"] == []


def test_update_needs_the_write_role(api: Api, demo: SeedSummary) -> None:
    run = run_id(demo, 1)
    record = fetch_run(api, run)["record"]
    assert post_update_raw(api, run, record, user="reader").status_code == 401


# ---- successful update --------------------------------------------------------------------------


def test_update_job_walks_the_status_sequence(api: Api, demo: SeedSummary) -> None:
    set_faults(api, job_delay_ms=500)  # each state lasts long enough for a loaded machine to see it
    run = run_id(demo, 2)
    record = fetch_run(api, run)["record"]
    record["description"] = "Edited description."
    session_id = submit(api, run, record, "Edit description")
    seen: list[tuple[str, str | None]] = []
    deadline = time.monotonic() + 10
    while not seen or seen[-1][0] not in FINAL:
        code, body = fetch_job(api, session_id)
        assert code == 200, body
        state = (body["job"]["status"], body["job"]["info"])
        if not seen or seen[-1] != state:
            seen.append(state)
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert seen == [
        ("PENDING", None),
        ("DEQUEUED", DEQUEUED_INFO),
        ("IN_PROGRESS", IN_PROGRESS_INFO),
        ("SUCCEEDED", None),
    ]


def test_succeeded_job_row_has_the_contract_fields(api: Api, demo: SeedSummary) -> None:
    run = run_id(demo, 2)
    record = fetch_run(api, run)["record"]
    session_id = submit(api, run, record, "No-op update", user="alice")
    job = wait_job(api, session_id, user="alice")
    parsed = AsyncJobAPI.GetJobResponse.model_validate({"job": job}).job
    assert str(uuid.UUID(parsed.session_id, version=4)) == parsed.session_id
    assert job["status"] == "SUCCEEDED"
    assert job["info"] is None
    assert job["username"] == "alice"
    assert job["job_type"] == "PROV_LODGE"
    assert job["job_sub_type"] == "MODEL_RUN_UPDATE"
    assert job["payload"]["model_run_record_id"] == run
    assert job["payload"]["reason"] == "No-op update"
    assert isinstance(job["created_timestamp"], int)
    assert job["result"]["record"]["id"] == run
    assert job["result"]["record"]["record"] == without_nulls(record)  # stored by py_to_dict


def test_update_rewrites_item_and_adds_two_history_entries(api: Api, demo: SeedSummary) -> None:
    run = demo.notable["model run with user_metadata"]
    before = fetch_run(api, run)
    assert before["user_metadata"]
    assert before["record_status"] == "LODGED"
    record = before["record"]
    record["display_name"] = "Renamed run"
    record["description"] = "New description."
    record["annotations"] = {"scenario": "rcp85", "extra": "keys are allowed"}
    job = wait_job(api, submit(api, run, record, "Rename the run"))
    assert job["status"] == "SUCCEEDED", job
    after = fetch_run(api, run)
    assert after["record"] == record
    assert after["display_name"] == "Renamed run"
    assert after["user_metadata"] is None
    assert after["record_status"] == "COMPLETE"
    assert len(after["history"]) == len(before["history"]) + 2
    assert after["history"][0]["reason"] == COMPLETION
    assert after["history"][1]["reason"] == "Rename the run"
    assert after["history"][2:] == before["history"]
    for entry in after["history"][:2]:  # both proxy updates send the same COMPLETE domain info
        assert entry["item"]["record_status"] == "COMPLETE"
        assert entry["item"]["user_metadata"] is None
        assert entry["item"]["record"] == record
    assert after["updated_timestamp"] >= before["updated_timestamp"]
    assert after["owner_username"] == before["owner_username"]
    assert after["created_timestamp"] == before["created_timestamp"]


def test_changing_the_study_moves_the_graph_link(api: Api, demo: SeedSummary) -> None:
    run = run_id(demo, 0)
    s1, s2 = studies(demo)[0], studies(demo)[1]
    record = fetch_run(api, run)["record"]
    assert record["study_id"] == s1
    assert s1 in upstream_ids(api, run)
    record["study_id"] = s2
    assert wait_job(api, submit(api, run, record, "Move study"))["status"] == "SUCCEEDED"
    upstream = upstream_ids(api, run)
    assert s2 in upstream
    assert s1 not in upstream
    assert run in downstream_ids(api, s2)
    assert run not in downstream_ids(api, s1)


def test_removing_the_study_unlinks_it(api: Api, demo: SeedSummary) -> None:
    run = run_id(demo, 1)
    record = fetch_run(api, run)["record"]
    study = record["study_id"]
    del record["study_id"]  # clients send an absent study_id
    assert wait_job(api, submit(api, run, record, "Unlink study"))["status"] == "SUCCEEDED"
    assert fetch_run(api, run)["record"]["study_id"] is None
    assert study not in upstream_ids(api, run)


def test_group_member_can_update_another_owners_run(api: Api, demo: SeedSummary) -> None:
    run = run_id(demo, 1)  # owned by bob, "modellers" group (alice) has metadata-write
    item = fetch_run(api, run)
    assert item["owner_username"] == "bob"
    job = wait_job(api, submit(api, run, item["record"], "Group edit", user="alice"), user="alice")
    assert job["status"] == "SUCCEEDED", job
    assert fetch_run(api, run)["history"][1]["username"] == "alice"


# ---- failures only surface in the job -----------------------------------------------------------


# prov-api jobs/prov_jobs.py: every refusal of the registry update reads the same (the wrapped
# HTTPException renders empty), so a FAILED update names no cause.
LODGE_FAILED = "Job failed, err: An error occurred while lodging the provenance record. Error: .."


def assert_failed(job: dict[str, Any], info: str = LODGE_FAILED) -> None:
    assert job["status"] == "FAILED", job
    assert job["info"] == info, job["info"]
    assert job["result"] is None


def test_unknown_model_run_id_fails_in_the_job(api: Api, demo: SeedSummary) -> None:
    record = fetch_run(api, run_id(demo, 1))["record"]
    assert_failed(wait_job(api, submit(api, "10378.1/9999999", record, "Unknown target")))


def test_study_id_as_model_run_id_fails_in_the_job(api: Api, demo: SeedSummary) -> None:
    study = studies(demo)[0]
    record = fetch_run(api, run_id(demo, 1))["record"]
    assert_failed(wait_job(api, submit(api, study, record, "Wrong subtype")))
    general = api.http.get(f"{api.registry}/registry/general/fetch", params={"id": study}, headers=api.auth())
    assert general.json()["item"]["item_subtype"] == "STUDY"
    assert len(general.json()["item"]["history"]) == 1


def test_locked_record_fails_in_the_job_and_is_untouched(api: Api, demo: SeedSummary) -> None:
    run = demo.notable["locked record"]
    before = fetch_run(api, run)
    record = dict(before["record"], description="Should not land.")
    assert_failed(wait_job(api, submit(api, run, record, "Locked edit")))
    assert fetch_run(api, run) == before


def test_run_not_writable_by_caller_fails_in_the_job(api: Api, demo: SeedSummary) -> None:
    run = run_id(demo, 0)  # alice's run without a group grant: bob only has metadata-read
    before = fetch_run(api, run)
    assert before["owner_username"] == "alice"
    record = dict(before["record"], description="Bob was here.")
    job = wait_job(api, submit(api, run, record, "Bob edit", user="bob"), user="bob")
    assert_failed(job)
    assert fetch_run(api, run) == before


def test_injected_failure_marks_the_job_failed(api: Api, demo: SeedSummary) -> None:
    set_faults(api, fail_next_jobs=1)
    run = run_id(demo, 2)
    record = fetch_run(api, run)["record"]
    job = wait_job(api, submit(api, run, record, "Doomed"))
    assert job["status"] == "FAILED"
    assert job["info"].startswith(
        ("Job failed, err:", "Callback function raised unhandled exception. Error:")
    )
    assert job["result"] is None
    # only the next job was doomed
    assert wait_job(api, submit(api, run, record, "Fine"))["status"] == "SUCCEEDED"


def test_fail_jobs_for_targets_one_record(api: Api, demo: SeedSummary) -> None:
    doomed, fine = run_id(demo, 2), run_id(demo, 6)
    set_faults(api, fail_jobs_for=[doomed])
    assert wait_job(api, submit(api, doomed, fetch_run(api, doomed)["record"], "x"))["status"] == "FAILED"
    assert wait_job(api, submit(api, fine, fetch_run(api, fine)["record"], "x"))["status"] == "SUCCEEDED"


def test_job_revalidates_the_record(api: Api, demo: SeedSummary) -> None:
    # The study passes validation at submission but is deleted before the worker runs the job.
    set_faults(api, job_delay_ms=300)
    run = run_id(demo, 0)
    before = fetch_run(api, run)
    session_id = submit(api, run, before["record"], "Revalidate")
    deleted = api.http.delete(
        f"{api.registry}/registry/activity/study/delete",
        params={"id": before["record"]["study_id"]},
        headers=api.auth(),
    )
    assert deleted.status_code == 200
    job = wait_job(api, session_id)
    study = before["record"]["study_id"]
    # Not wrapped in "Job failed, err:": prov_jobs.py writes the validator's text as it is.
    assert_failed(
        job,
        f"{PREFIX}Provided model run workflow definition with id {study} was not a valid id, error: "
        f"Failed to retrieve item with details: Could not find the given key ({study}) in the registry. "
        f"Details \"Failed to find item. Is the ID ('{study}') correct and in the database?\".."
        ".",
    )
    assert fetch_run(api, run) == before


def test_update_of_a_never_lodged_run_lodges_its_graph(api: Api, demo: SeedSummary) -> None:
    run = demo.notable["model run without graph (never lodged)"]
    record = fetch_run(api, run)["record"]
    assert upstream_ids(api, run) == set()
    assert wait_job(api, submit(api, run, record, "Lodge"))["status"] == "SUCCEEDED"
    expected = {run, record["workflow_template_id"], record["associations"]["modeller_id"]}
    expected |= {d["dataset_id"] for d in record["inputs"]}
    assert expected <= upstream_ids(api, run)
    assert {d["dataset_id"] for d in record["outputs"]} <= downstream_ids(api, run)


def revoke_general_read(api: Api, study: str) -> None:
    """Leave the study readable only by its owner (and realm admins)."""
    url = f"{api.registry}/registry/activity/study/auth/configuration"
    settings = api.http.get(url, params={"id": study}, headers=api.auth()).json()
    settings.update(general=[], groups={})
    response = api.http.put(url, params={"id": study}, json=settings, headers=api.auth())
    assert response.status_code == 200, response.text


def test_unreadable_referenced_entity_is_a_401_at_submission(api: Api, demo: SeedSummary) -> None:
    run, study = run_id(demo, 0), studies(demo)[1]  # alice's run, bob's study
    revoke_general_read(api, study)
    record = dict(fetch_run(api, run)["record"], study_id=study)
    response = post_update_raw(api, run, record, user="alice")
    assert response.status_code == 401


def test_job_fails_when_a_referenced_entity_becomes_unreadable(api: Api, demo: SeedSummary) -> None:
    set_faults(api, job_delay_ms=300)
    run, study = run_id(demo, 0), studies(demo)[1]
    before = fetch_run(api, run)
    session_id = submit(api, run, dict(before["record"], study_id=study), "Relink", user="alice")
    revoke_general_read(api, study)  # the worker revalidates with alice's permissions
    job = wait_job(api, session_id, user="alice")
    assert job["status"] == "FAILED", job
    assert job["info"].startswith(
        ("Job failed, err:", "Callback function raised unhandled exception. Error:")
    )
    assert fetch_run(api, run) == before
    # the worker keeps serving later jobs
    set_faults(api, job_delay_ms=0)
    assert wait_job(api, submit(api, run, before["record"], "Later"))["status"] == "SUCCEEDED"
