"""Prov API and job answers word for word as Provena's prov-api and job infrastructure give them.

Sources in Provena's public repository: prov-api helpers/validate_model_run_record.py and
helpers/entity_validators.py (record validation), routes/explore/explore.py, routes/model_run/model_run.py,
jobs/prov_jobs.py (job failure texts) and async-util EcsSqsPythonTools (job status infos).
"""

from __future__ import annotations

from typing import Any

import httpx

from provena_ops.sandbox.seed import SeedSummary
from tests.conftest import Api
from tests.sandbox.seeded import run_id, set_faults, studies, wait_job

MODEL_RUN = "/registry/activity/model_run"
PREFIX = "Failed to validate an entity's ID in the record, error: "
UNKNOWN = "10378.1/9999999"
LODGE_FAILED = "Job failed, err: An error occurred while lodging the provenance record. Error: .."


def record_of(api: Api, run: str) -> dict[str, Any]:
    item = api.http.get(f"{api.registry}{MODEL_RUN}/fetch", params={"id": run}, headers=api.auth()).json()[
        "item"
    ]
    record: dict[str, Any] = item["record"]
    return record


def update(api: Api, run: str, record: dict[str, Any], user: str = "admin") -> httpx.Response:
    return api.http.post(
        f"{api.prov}/model_run/update",
        json={"model_run_id": run, "reason": "texts", "record": record},
        headers=api.auth(user),
    )


def not_found(item_id: str) -> str:
    return (
        f"Failed to retrieve item with details: Could not find the given key ({item_id}) in the registry. "
        f"Details \"Failed to find item. Is the ID ('{item_id}') correct and in the database?\".."
    )


def refused_with(response: httpx.Response, message: str) -> None:
    assert (response.status_code, response.json()) == (400, {"detail": f"{PREFIX}{message}."})


def test_record_checks_in_provenas_order_and_words(api: Api, demo: SeedSummary) -> None:
    run = run_id(demo, 4)
    record = record_of(api, run)
    # ModelRunRecord's own validators come first, as pydantic-1 422s (a model validator at __root__).
    early = update(api, run, dict(record, end_time=record["start_time"] - 1))
    assert (early.status_code, early.json()) == (
        422,
        {
            "detail": [
                {
                    "loc": ["body", "record", "__root__"],
                    "msg": f"The 'start_time' value ({record['start_time']}) must be smaller than or equal "
                    f"to the 'end_time' value ({record['start_time'] - 1}).",
                    "type": "value_error",
                }
            ]
        },
    )
    empty = update(api, run, dict(record, display_name=""))
    assert empty.json() == {
        "detail": [
            {
                "loc": ["body", "record", "display_name"],
                "msg": "string must not be empty",
                "type": "value_error",
            }
        ]
    }
    refused_with(
        update(api, run, dict(record, study_id=UNKNOWN)),
        # (sic) Provena names the workflow definition for a bad study.
        f"Provided model run workflow definition with id {UNKNOWN} was not a valid id, error: "
        f"{not_found(UNKNOWN)}",
    )
    refused_with(
        update(api, run, dict(record, associations=dict(record["associations"], modeller_id=UNKNOWN))),
        f"Modeller with id {UNKNOWN} was not a valid person, error: {not_found(UNKNOWN)}.",
    )
    dataset = dict(record["inputs"][0], dataset_id=UNKNOWN)
    template = dataset["dataset_template_id"]
    refused_with(
        update(api, run, dict(record, inputs=[dataset, *record["inputs"][1:]])),
        "An input dataset validation process failed, type DatasetType.DATA_STORE, template id "
        f"{template}, reason "
        f"Input dataset with id {UNKNOWN} was not a valid id, error: {not_found(UNKNOWN)}.",
    )


def test_a_model_run_id_where_a_study_belongs_quotes_the_registry_dump(api: Api, demo: SeedSummary) -> None:
    run, other = run_id(demo, 4), run_id(demo, 5)
    answer = update(api, run, dict(record_of(api, run), study_id=other))
    assert answer.status_code == 400
    detail = answer.json()["detail"]
    assert detail.startswith(
        f"{PREFIX}Provided model run workflow definition with id {other} was not a valid id, error: "
        "Failed to "
        "retrieve item with details: The record was found but could not parsed as an appropriate "
        "type: Error The "
        "record was marked as a COMPLETE_ITEM but could not be parsed as the correct model. Error: "
    )
    assert "validation errors for ItemStudy\n" in detail and detail.endswith("(type=assertion_error)....")


def test_refused_registry_updates_all_fail_the_job_in_the_same_words(api: Api, demo: SeedSummary) -> None:
    record = record_of(api, run_id(demo, 6))
    for target in (UNKNOWN, studies(demo)[0], demo.notable["locked record"]):
        session = update(api, target, record).json()["session_id"]
        job = wait_job(api, session)
        assert (job["status"], job["info"], job["result"]) == ("FAILED", LODGE_FAILED, None)


def test_job_infos_on_the_way(api: Api, demo: SeedSummary) -> None:
    set_faults(api, job_delay_ms=150)
    run = run_id(demo, 7)
    session = update(api, run, record_of(api, run)).json()["session_id"]
    seen: dict[str, Any] = {}
    while not seen or list(seen)[-1] not in ("SUCCEEDED", "FAILED"):
        answer = api.http.get(
            f"{api.jobs}/jobs/user/fetch", params={"session_id": session}, headers=api.auth()
        )
        if answer.status_code == 200:
            job = answer.json()["job"]
            seen[job["status"]] = job["info"]
    assert seen == {
        "PENDING": None,
        "DEQUEUED": "Job removed from queue ready for processing by worker task.",
        "IN_PROGRESS": "Job has been dispatched to worker callback and is in progress.",
        "SUCCEEDED": None,
    } or list(seen) == ["DEQUEUED", "IN_PROGRESS", "SUCCEEDED"]


def test_explore_texts(api: Api, demo: SeedSummary) -> None:
    missing = api.http.get(
        f"{api.prov}/explore/upstream", params={"starting_id": UNKNOWN}, headers=api.auth()
    )
    assert (missing.status_code, missing.json()["detail"]) == (
        500,
        f"The provided id {UNKNOWN} was not a valid registry{' ' * 16}item. Error from registry lookup: .",
    )
    deep = api.http.get(
        f"{api.prov}/explore/downstream",
        params={"starting_id": run_id(demo, 0), "depth": 11},
        headers=api.auth(),
    )
    assert deep.json() == {"detail": "Depth provided is in excess of depth maximum: 10."}
    fine = api.http.get(
        f"{api.prov}/explore/downstream", params={"starting_id": run_id(demo, 0)}, headers=api.auth()
    )
    assert fine.json()["status"] == {
        "success": True,
        "details": "Made downstream query (with depth 2) to neo4j backend.",
    }


def test_link_to_study_success_text(api: Api, demo: SeedSummary) -> None:
    run = demo.notable["model run without study"]
    linked = api.http.post(
        f"{api.prov}/model_run/edit/link_to_study",
        params={"model_run_id": run, "study_id": studies(demo)[0]},
        headers=api.auth(),
    )
    assert linked.json()["status"] == {
        "success": True,
        "details": "Succesfully linked model run and study together in the registry and lodged a job for the "
        "provenance graph update with given session ID.",
    }


def test_relodge_texts(api: Api, demo: SeedSummary) -> None:
    """prov-api routes/admin/restore_from_registry.py and helpers/admin_helpers.py."""
    run = run_id(demo, 8)
    item = api.http.get(f"{api.registry}{MODEL_RUN}/fetch", params={"id": run}, headers=api.auth()).json()[
        "item"
    ]
    one = api.http.post(f"{api.prov}/admin/store_record", json=item, headers=api.auth())
    assert one.json() == {"status": {"success": True, "details": "Successfully re-lodged item."}}
    many = api.http.post(f"{api.prov}/admin/store_records", json=[item], headers=api.auth())
    assert many.json()["status"]["details"] == "Successfully re-lodged all of the provenance records."
    everything = api.http.post(f"{api.prov}/admin/store_all_registry_records", headers=api.auth())
    assert everything.json()["status"]["details"].startswith("Successfully re-lodged all ")
    assert everything.json()["status"]["details"].endswith(" provenance records from the registry.")
