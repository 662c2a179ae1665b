"""The job API (contract 8) and the search API (contract 9)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from ProvenaInterfaces import AsyncJobAPI, SearchAPI

from provena_ops.sandbox.seed import SeedSummary
from tests.conftest import Api
from tests.sandbox.seeded import fetch_job, run_id, set_faults, studies, wait_job

# ---- helpers ------------------------------------------------------------------------------------


def fetch_run(api: Api, item_id: str) -> dict[str, Any]:
    response = api.http.get(
        f"{api.registry}/registry/activity/model_run/fetch", params={"id": item_id}, headers=api.auth()
    )
    assert response.status_code == 200
    item: dict[str, Any] = response.json()["item"]
    assert item is not None
    return item


def general_fetch(api: Api, item_id: str) -> dict[str, Any] | None:
    response = api.http.get(
        f"{api.registry}/registry/general/fetch", params={"id": item_id}, headers=api.auth()
    )
    assert response.status_code == 200
    item: dict[str, Any] | None = response.json()["item"]
    return item


def submit(api: Api, model_run_id: str, reason: str, user: str = "admin") -> str:
    """Resubmit the run's current record (a valid update) and return the session id."""
    record = fetch_run(api, model_run_id)["record"]
    response = api.http.post(
        f"{api.prov}/model_run/update",
        json={"model_run_id": model_run_id, "reason": reason, "record": record},
        headers=api.auth(user),
    )
    assert response.status_code == 200, response.text
    session_id: str = response.json()["session_id"]
    return session_id


# ---- job API ------------------------------------------------------------------------------------


def test_job_row_appears_after_a_delay(api: Api, demo: SeedSummary) -> None:
    set_faults(api, job_row_delay_ms=600)
    run = run_id(demo, 2)
    session_id = submit(api, run, "Delayed row")
    code, body = fetch_job(api, session_id)
    assert (code, body) == (400, {"detail": "Item was not found."})
    assert wait_job(api, session_id)["status"] == "SUCCEEDED"


def test_unknown_session_is_not_found(api: Api) -> None:
    code, body = fetch_job(api, str(uuid.uuid4()))
    assert (code, body) == (400, {"detail": "Item was not found."})


def test_other_users_cannot_fetch_a_job(api: Api, demo: SeedSummary) -> None:
    run = run_id(demo, 1)
    session_id = submit(api, run, "Mine", user="alice")
    wait_job(api, session_id, user="alice")
    code, body = fetch_job(api, session_id, user="bob")
    assert (code, body) == (401, {"detail": "Not authorised to view this record."})


def test_job_fetch_needs_a_token(api: Api) -> None:
    response = api.http.get(f"{api.jobs}/jobs/user/fetch", params={"session_id": str(uuid.uuid4())})
    assert response.status_code == 401


def list_all(api: Api, user: str, limit: int) -> tuple[list[str], int]:
    """All session ids of the user's jobs, page by page; also returns the number of pages."""
    ids: list[str] = []
    key: dict[str, Any] | None = None
    pages = 0
    while True:
        response = api.http.post(
            f"{api.jobs}/jobs/user/list", json={"pagination_key": key, "limit": limit}, headers=api.auth(user)
        )
        assert response.status_code == 200, response.text
        page = AsyncJobAPI.ListJobsResponse.model_validate(response.json())
        assert len(page.jobs) <= limit
        ids.extend(job.session_id for job in page.jobs)
        pages += 1
        key = page.pagination_key
        if key is None:
            return ids, pages
        assert pages < 20


def test_user_list_is_newest_first_and_paginated(api: Api, demo: SeedSummary) -> None:
    run = run_id(demo, 2)
    mine = [submit(api, run, f"edit {index}", user="alice") for index in range(12)]
    bobs = submit(api, run_id(demo, 1), "bob's", user="bob")
    for session_id in mine:
        wait_job(api, session_id, user="alice")
    ids, pages = list_all(api, "alice", limit=5)
    assert ids == list(reversed(mine))
    assert pages >= 3
    assert bobs not in ids
    # default limit 10
    first = api.http.post(f"{api.jobs}/jobs/user/list", json={}, headers=api.auth("alice")).json()
    assert [job["session_id"] for job in first["jobs"]] == list(reversed(mine))[:10]
    assert first["pagination_key"] is not None
    rest = api.http.post(
        f"{api.jobs}/jobs/user/list",
        json={"pagination_key": first["pagination_key"]},
        headers=api.auth("alice"),
    ).json()
    assert [job["session_id"] for job in rest["jobs"]] == list(reversed(mine))[10:]


def test_admin_job_routes_need_job_service_read(api: Api, demo: SeedSummary) -> None:
    run = run_id(demo, 2)
    session_id = submit(api, run, "For admin", user="alice")
    wait_job(api, session_id, user="alice")
    url = f"{api.jobs}/jobs/admin/fetch"
    assert api.http.get(url, params={"session_id": session_id}, headers=api.auth("alice")).status_code == 401
    assert api.http.post(f"{api.jobs}/jobs/admin/list", json={}, headers=api.auth("alice")).status_code == 401
    for headers in (api.auth("admin"), api.auth("reader", roles=["job-service-read"])):
        response = api.http.get(url, params={"session_id": session_id}, headers=headers)
        assert response.status_code == 200, response.text
        assert AsyncJobAPI.AdminGetJobResponse.model_validate(response.json()).job.session_id == session_id
    listed = api.http.post(
        f"{api.jobs}/jobs/admin/list", json={"username_filter": "alice"}, headers=api.auth("admin")
    )
    assert listed.status_code == 200
    assert [job["session_id"] for job in listed.json()["jobs"]] == [session_id]
    missing = api.http.get(url, params={"session_id": str(uuid.uuid4())}, headers=api.auth("admin"))
    assert missing.status_code == 400


@pytest.mark.parametrize("user", ["alice", "admin"])
def test_submitter_owns_the_job(api: Api, demo: SeedSummary, user: str) -> None:
    run = run_id(demo, 2)
    job = wait_job(api, submit(api, run, "Owner", user=user), user=user)
    assert job["username"] == user


# ---- search API ---------------------------------------------------------------------------------


def search(api: Api, user: str = "admin", **params: Any) -> SearchAPI.QueryResults:
    response = api.http.get(f"{api.search}/search/entity-registry", params=params, headers=api.auth(user))
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"status", "results", "warnings"}
    for hit in body["results"]:
        assert set(hit) == {"id", "score"}
    return SearchAPI.QueryResults.model_validate(body)


def hit_ids(results: SearchAPI.QueryResults) -> list[str]:
    assert results.results is not None
    return [hit.id for hit in results.results]


def test_search_returns_scored_hits(api: Api) -> None:
    results = search(api, query="reef")
    assert results.status.success is True
    assert results.results
    scores = [hit.score for hit in results.results]
    assert scores == sorted(scores, reverse=True)
    ids = hit_ids(results)
    assert len(ids) == len(set(ids))
    for item_id in ids:
        assert general_fetch(api, item_id) is not None


def test_default_limit_is_ten(api: Api) -> None:
    assert len(hit_ids(search(api, query="run"))) == 10  # 60 model runs match


@pytest.mark.parametrize(("limit", "expected"), [(3, 3), (30, 30), (50, 50), (100, 50)])
def test_record_limit_is_capped_at_fifty(api: Api, limit: int, expected: int) -> None:
    assert len(hit_ids(search(api, query="run", record_limit=limit))) == expected


def test_subtype_filter(api: Api, demo: SeedSummary) -> None:
    ids = hit_ids(search(api, query="study", subtype_filter="STUDY", record_limit=50))
    assert set(ids) == set(studies(demo))
    seagrass = hit_ids(search(api, query="Seagrass", subtype_filter="MODEL", record_limit=50))
    assert seagrass
    for item_id in seagrass:
        item = general_fetch(api, item_id)
        assert item is not None and item["item_subtype"] == "MODEL"
    unfiltered = hit_ids(search(api, query="Seagrass", record_limit=50))
    assert len(unfiltered) > len(seagrass)


def test_invalid_subtype_filter_is_a_422(api: Api) -> None:
    response = api.http.get(
        f"{api.search}/search/entity-registry",
        params={"query": "run", "subtype_filter": "NOT_A_SUBTYPE"},
        headers=api.auth(),
    )
    assert response.status_code == 422


def test_query_is_required(api: Api) -> None:
    assert api.http.get(f"{api.search}/search/entity-registry", headers=api.auth()).status_code == 422


@pytest.mark.parametrize("which", ["study", "person", "model run"])
def test_exact_display_name_ranks_first(api: Api, demo: SeedSummary, which: str) -> None:
    item_id = {
        "study": studies(demo)[2],
        "person": fetch_run(api, run_id(demo, 2))["record"]["associations"]["modeller_id"],
        "model run": run_id(demo, 7),
    }[which]
    item = general_fetch(api, item_id)
    assert item is not None
    assert hit_ids(search(api, query=item["display_name"]))[0] == item_id


def test_search_needs_the_read_role(api: Api) -> None:
    url = f"{api.search}/search/entity-registry"
    assert api.http.get(url, params={"query": "run"}).status_code == 401
    assert api.http.get(url, params={"query": "run"}, headers=api.auth("reader", roles=[])).status_code == 401
    assert search(api, user="reader", query="run").results


def test_fresh_index_drops_deleted_items(api: Api, demo: SeedSummary) -> None:
    study = studies(demo)[2]
    assert hit_ids(search(api, query="Seagrass recovery trial"))[0] == study
    response = api.http.delete(
        f"{api.registry}/registry/activity/study/delete", params={"id": study}, headers=api.auth()
    )
    assert response.status_code == 200
    assert study not in hit_ids(search(api, query="Seagrass recovery trial", record_limit=50))


def test_stale_index_still_returns_a_deleted_item(api: Api, demo: SeedSummary) -> None:
    # Contract 9: the index is fed asynchronously; confirm hits with a registry fetch.
    set_faults(api, search_staleness_s=60)
    study = studies(demo)[2]
    assert hit_ids(search(api, query="Seagrass recovery trial"))[0] == study
    response = api.http.delete(
        f"{api.registry}/registry/activity/study/delete", params={"id": study}, headers=api.auth()
    )
    assert response.status_code == 200
    assert hit_ids(search(api, query="Seagrass recovery trial"))[0] == study
    assert general_fetch(api, study) is None
