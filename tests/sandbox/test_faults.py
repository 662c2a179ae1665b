"""Fault injection as a client notices it: transient HTTP failures, latency, and job/registry faults.

Contract sections 8 (jobs), 10 (non-atomic admin workflows) and 11 (rehearsal extras: fail the Nth
job, registry 500 on delete, a job row that is not written yet).
"""

from __future__ import annotations

import time
import weakref
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest

from provena_ops.sandbox import RunningSandbox, SandboxSettings, running_sandbox
from provena_ops.sandbox.seed import SeedSummary
from tests.conftest import Api
from tests.sandbox.seeded import COMPLETION, FINAL, run_id, served, studies

STUDY = "/registry/activity/study"
MODEL_RUN = "/registry/activity/model_run"
FAULT_DETAIL = "Sandbox fault injection: transient failure."
LOCKED = "Cannot perform this action as the resource is locked."
TRANSIENT_STATUS = (429, 500, 502, 503, 504)


# ---- helpers ------------------------------------------------------------------------------------

_HEADERS: weakref.WeakKeyDictionary[Api, dict[str, dict[str, str]]] = weakref.WeakKeyDictionary()


def auth(api: Api, user: str = "admin") -> dict[str, str]:
    """Bearer headers, minted once per client and user (RS256 signing costs ~50 ms a token)."""
    cached = _HEADERS.setdefault(api, {})
    if user not in cached:
        cached[user] = api.auth(user)
    return cached[user]


def control_url(api: Api) -> str:
    return f"{api.running.base_url.rstrip('/')}/sandbox"


def set_faults(api: Api, **faults: Any) -> None:
    """Flip fault switches through the sandbox's own HTTP control route."""
    response = api.http.put(f"{control_url(api)}/faults", json=faults, headers=auth(api, "admin"))
    assert response.status_code == 200, response.text
    assert response.json() == {"message": "Fault settings updated."}


def fetch_item(api: Api, prefix: str, item_id: str) -> dict[str, Any]:
    response = api.http.get(f"{api.registry}{prefix}/fetch", params={"id": item_id}, headers=auth(api))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"]["success"] is True, body
    item: dict[str, Any] = body["item"]
    return item


def submit(api: Api, model_run_id: str, record: dict[str, Any], reason: str, user: str = "admin") -> str:
    response = api.http.post(
        f"{api.prov}/model_run/update",
        json={"model_run_id": model_run_id, "reason": reason, "record": record},
        headers=auth(api, user),
    )
    assert response.status_code == 200, response.text
    session_id: str = response.json()["session_id"]
    return session_id


def wait_job(api: Api, session_id: str, user: str = "admin", timeout: float = 10.0) -> dict[str, Any]:
    """Poll until the job is final; 400 (row not written yet) is tolerated."""
    deadline = time.monotonic() + timeout
    while True:
        response = api.http.get(
            f"{api.jobs}/jobs/user/fetch", params={"session_id": session_id}, headers=auth(api, user)
        )
        assert response.status_code in (200, 400), response.text
        if response.status_code == 200 and response.json()["job"]["status"] in FINAL:
            job: dict[str, Any] = response.json()["job"]
            return job
        assert time.monotonic() < deadline, f"job {session_id} not final after {timeout} s"
        time.sleep(0.02)


def registry_fetch(api: Api, item_id: str) -> httpx.Response:
    return api.http.get(f"{api.registry}/registry/general/fetch", params={"id": item_id}, headers=auth(api))


@pytest.fixture
def fresh(sandbox_db: Path) -> Iterator[Api]:
    """A private server on a copy of the demo registry, for settings the shared server must not keep."""
    with served(sandbox_db, random_seed=11) as client:
        yield client


def faulty_server(db: Path, kind: str) -> AbstractContextManager[RunningSandbox]:
    return running_sandbox(
        SandboxSettings(db_path=db, fault_kinds=(kind,), fault_rate=1.0, retry_after_s=1, random_seed=3)
    )


# ---- transient HTTP faults ----------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_429_carries_an_integer_retry_after_and_a_json_detail(sandbox_db: Path, demo: SeedSummary) -> None:
    with faulty_server(sandbox_db, "429") as running:
        api = Api(running)
        try:
            for _ in range(3):
                response = registry_fetch(api, studies(demo)[0])
                assert response.status_code == 429
                assert response.headers["retry-after"].isdigit()
                assert int(response.headers["retry-after"]) == 1
                assert response.headers["content-type"].startswith("application/json")
                assert response.json() == {"detail": FAULT_DETAIL}
        finally:
            api.close()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", ["500", "502", "503", "504"])
def test_5xx_fault_answers_with_that_status(sandbox_db: Path, demo: SeedSummary, kind: str) -> None:
    with faulty_server(sandbox_db, kind) as running:
        api = Api(running)
        try:
            for url in (
                f"{api.registry}/registry/general/fetch?id={studies(demo)[0]}",
                f"{api.prov}/explore/upstream?starting_id={run_id(demo, 0)}",
                f"{api.jobs}/jobs/user/fetch?session_id=nothing",
                f"{api.search}/search/entity-registry?query=reef",
                api.keycloak,
            ):
                response = api.http.get(url, headers=auth(api))
                assert response.status_code == int(kind), url
                assert response.json() == {"detail": FAULT_DETAIL}
                assert "retry-after" not in response.headers
        finally:
            api.close()


@pytest.mark.timeout(30)
def test_drop_is_a_transport_error_and_the_server_keeps_serving(sandbox_db: Path, demo: SeedSummary) -> None:
    with faulty_server(sandbox_db, "drop") as running:
        api = Api(running)
        try:
            for _ in range(3):
                with pytest.raises(httpx.TransportError):
                    registry_fetch(api, studies(demo)[0])
            # A dropped request never reached the service: switching faults off is all it takes.
            set_faults(api, fault_rate=0)
            for _ in range(3):
                response = registry_fetch(api, studies(demo)[0])
                assert response.status_code == 200
                assert response.json()["item"]["id"] == studies(demo)[0]
            # A brand-new connection works too.
            with httpx.Client(timeout=10) as other:
                fresh_response = other.get(
                    f"{api.registry}/registry/general/fetch",
                    params={"id": studies(demo)[1]},
                    headers=auth(api),
                )
            assert fresh_response.status_code == 200
        finally:
            api.close()


def test_drop_raises_remote_protocol_error_mid_body(api: Api, demo: SeedSummary) -> None:
    api.running.sandbox.settings.fault_kinds = ("drop",)
    set_faults(api, fault_rate=1.0)
    with pytest.raises(httpx.RemoteProtocolError):
        registry_fetch(api, studies(demo)[0])
    set_faults(api, fault_rate=0.0)
    assert registry_fetch(api, studies(demo)[0]).status_code == 200


@pytest.mark.parametrize("kind", ["503", "429"])
def test_faulted_post_leaves_the_keep_alive_connection_usable(api: Api, kind: str) -> None:
    """The injector answers without reading the request body; the next request on the same
    connection must still parse (no leftover body bytes)."""
    api.running.sandbox.settings.fault_kinds = (kind,)
    url = f"{api.registry}/registry/general/list"
    body = {"page_size": 1, "padding": "x" * 200_000}
    set_faults(api, fault_rate=1.0)
    assert api.http.post(url, json=body, headers=auth(api)).status_code == int(kind)
    set_faults(api, fault_rate=0.0)
    for _ in range(2):
        response = api.http.post(url, json=body, headers=auth(api))
        assert response.status_code == 200, response.text
        assert response.json()["status"]["success"] is True


def test_latency_delays_service_requests(api: Api, demo: SeedSummary) -> None:
    set_faults(api, latency_ms=300)
    status = api.http.get(f"{control_url(api)}/status")
    assert status.json()["latency_ms"] == 300
    for _ in range(2):
        started = time.monotonic()
        response = registry_fetch(api, studies(demo)[0])
        elapsed = time.monotonic() - started
        assert response.status_code == 200
        assert elapsed >= 0.29, elapsed


def test_control_routes_are_never_faulted(api: Api, demo: SeedSummary) -> None:
    set_faults(api, fault_rate=1.0)
    # Service routes all fail now (one of 5xx, 429, or a dropped connection).
    for _ in range(10):
        try:
            response = registry_fetch(api, studies(demo)[0])
        except httpx.TransportError:
            continue
        assert response.status_code in TRANSIENT_STATUS
    # The control app answers every time, so a harness can always switch faults off.
    for _ in range(20):
        status = api.http.get(f"{control_url(api)}/status")
        assert status.status_code == 200
        assert status.json()["fault_rate"] == 1.0
    set_faults(api, fault_rate=0.0, latency_ms=0.0)
    assert api.http.get(f"{control_url(api)}/status").json()["fault_rate"] == 0.0
    assert registry_fetch(api, studies(demo)[0]).status_code == 200


def test_fault_control_needs_an_admin_token(api: Api) -> None:
    url = f"{control_url(api)}/faults"
    assert api.http.put(url, json={"fault_rate": 1.0}).status_code == 401
    assert api.http.put(url, json={"fault_rate": 1.0}, headers=auth(api, "alice")).status_code == 401
    assert api.http.get(f"{control_url(api)}/status").json()["fault_rate"] == 0.0


@pytest.mark.parametrize(
    "body",
    [
        {"fault_rate": 2.0},
        {"fault_rate": -0.5},
        {"job_fail_rate": 1.5},
        {"latency_ms": -10},
        {"fail_next_jobs": -3},
    ],
)
def test_out_of_range_fault_settings_are_refused(api: Api, body: dict[str, Any]) -> None:
    response = api.http.put(f"{control_url(api)}/faults", json=body, headers=auth(api))
    assert response.status_code == 422, response.text
    settings, faults = api.running.sandbox.settings, api.running.sandbox.faults
    assert (settings.fault_rate, settings.job_fail_rate, settings.latency_ms) == (0.0, 0.0, 0.0)
    assert faults.fail_next_jobs == 0


@pytest.mark.parametrize(
    ("body", "attribute", "wanted"),
    [({"fault_kinds": ["429"]}, "fault_kinds", ("429",)), ({"retry_after_s": 0}, "retry_after_s", 0)],
)
def test_fault_settings_are_applied_or_refused_never_ignored(
    api: Api, body: dict[str, Any], attribute: str, wanted: object
) -> None:
    response = api.http.put(f"{control_url(api)}/faults", json=body, headers=auth(api))
    applied = (
        tuple(getattr(api.running.sandbox.settings, attribute))
        if attribute == "fault_kinds"
        else (getattr(api.running.sandbox.settings, attribute))
    )
    if response.status_code == 200:
        assert applied == wanted, f"200 {response.json()} but {attribute} is still {applied!r}"
    else:
        assert response.status_code == 422, response.text


# ---- a retrying client gets through a faulty sandbox ----------------------------------------------


class RetryingClient:
    """Retries what a careful client treats as transient: 429 (honouring Retry-After, capped), 5xx,
    and transport errors, with a bounded number of attempts."""

    def __init__(self, api: Api, attempts: int = 12, retry_after_cap: float = 1.0) -> None:
        self.api = api
        self.attempts = attempts
        self.retry_after_cap = retry_after_cap
        self.faults: Counter[str] = Counter()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        for _ in range(self.attempts):
            try:
                response = self.api.http.request(method, url, headers=auth(self.api), **kwargs)
            except httpx.TransportError as exc:
                self.faults[type(exc).__name__] += 1
                continue
            if response.status_code == 429:
                self.faults["429"] += 1
                wait = int(response.headers["retry-after"])
                time.sleep(min(wait, self.retry_after_cap))
                continue
            if response.status_code in (500, 502, 503, 504):
                self.faults[str(response.status_code)] += 1
                time.sleep(0.005)
                continue
            return response
        raise AssertionError(f"{method} {url}: still failing after {self.attempts} attempts")


@pytest.mark.timeout(60)
def test_retrying_client_completes_fetches_and_an_update_job(api: Api, demo: SeedSummary) -> None:
    run = run_id(demo, 2)
    item_ids = [*studies(demo), *(run_id(demo, n) for n in range(10))]
    before = fetch_item(api, MODEL_RUN, run)
    jobs_before = api.http.post(f"{api.jobs}/jobs/user/list", json={"limit": 50}, headers=auth(api))
    assert jobs_before.status_code == 200
    job_count_before = len(jobs_before.json()["jobs"])

    api.running.sandbox.settings.retry_after_s = 0  # not exposed by the control route
    set_faults(api, fault_rate=0.2)
    client = RetryingClient(api)

    for number in range(50):
        item_id = item_ids[number % len(item_ids)]
        response = client.request("GET", f"{api.registry}/registry/general/fetch", params={"id": item_id})
        assert response.status_code == 200
        assert response.json()["item"]["id"] == item_id

    record = dict(before["record"], description="Edited through a faulty network.")
    submitted = client.request(
        "POST",
        f"{api.prov}/model_run/update",
        json={"model_run_id": run, "reason": "Faulty network edit", "record": record},
    )
    assert submitted.status_code == 200, submitted.text
    session_id = submitted.json()["session_id"]
    deadline = time.monotonic() + 20
    while True:
        polled = client.request("GET", f"{api.jobs}/jobs/user/fetch", params={"session_id": session_id})
        assert polled.status_code in (200, 400), polled.text
        if polled.status_code == 200 and polled.json()["job"]["status"] in FINAL:
            job = polled.json()["job"]
            break
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert job["status"] == "SUCCEEDED", job

    study = studies(demo)[0]
    study_before = client.request("GET", f"{api.registry}{STUDY}/fetch", params={"id": study}).json()["item"]
    edited = client.request(
        "PUT",
        f"{api.registry}{STUDY}/update",
        params={"id": study, "reason": "Faulty network study edit"},
        json={"display_name": "Retried", "title": "Retried", "description": "Retried edit."},
    )
    assert edited.status_code == 200
    assert edited.json()["status"]["success"] is True

    assert sum(client.faults.values()) > 0, "no fault fired at fault_rate=0.2"
    assert len(client.faults) >= 2, client.faults  # several kinds, not just one
    set_faults(api, fault_rate=0.0)

    # Exactly once: one job, one update (= two history entries for a model-run update), one study edit.
    after = fetch_item(api, MODEL_RUN, run)
    assert after["record"] == record
    assert len(after["history"]) == len(before["history"]) + 2
    assert [h["reason"] for h in after["history"][:2]] == [COMPLETION, "Faulty network edit"]
    assert after["history"][2:] == before["history"]
    jobs_after = api.http.post(f"{api.jobs}/jobs/user/list", json={"limit": 50}, headers=auth(api))
    assert len(jobs_after.json()["jobs"]) == job_count_before + 1
    study_after = fetch_item(api, STUDY, study)
    assert len(study_after["history"]) == len(study_before["history"]) + 1
    assert study_after["history"][0]["reason"] == "Faulty network study edit"


# ---- registry delete fault ------------------------------------------------------------------------


def test_fail_registry_delete_for_fails_only_that_id(api: Api, demo: SeedSummary) -> None:
    doomed, fine = studies(demo)[2], studies(demo)[3]
    set_faults(api, fail_registry_delete_for=[doomed])

    refused = api.http.delete(f"{api.registry}{STUDY}/delete", params={"id": doomed}, headers=auth(api))
    assert refused.status_code == 500
    assert isinstance(refused.json()["detail"], str)
    assert doomed in refused.json()["detail"]
    hidden = api.http.delete(
        f"{api.registry}/registry/general/delete", params={"id": doomed}, headers=auth(api)
    )
    assert hidden.status_code == 500
    assert fetch_item(api, STUDY, doomed)["id"] == doomed  # nothing was deleted
    locked = api.http.get(f"{api.registry}{STUDY}/locks/locked", params={"id": doomed}, headers=auth(api))
    assert locked.status_code == 200  # the lock entry is still there

    deleted = api.http.delete(f"{api.registry}{STUDY}/delete", params={"id": fine}, headers=auth(api))
    assert deleted.status_code == 200
    assert deleted.json() == {"status": {"success": True, "details": "Item deleted."}}

    # The realm-role check still comes first.
    not_admin = api.http.delete(
        f"{api.registry}{STUDY}/delete", params={"id": doomed}, headers=auth(api, "alice")
    )
    assert not_admin.status_code == 401

    set_faults(api, fail_registry_delete_for=[])
    again = api.http.delete(f"{api.registry}{STUDY}/delete", params={"id": doomed}, headers=auth(api))
    assert again.status_code == 200


def test_registry_delete_fault_exposes_the_non_atomic_model_run_delete(api: Api, demo: SeedSummary) -> None:
    """Contract 10 weakness 1: graph delete, then registry delete, with no compensation."""
    run = run_id(demo, 6)
    set_faults(api, fail_registry_delete_for=[run])
    graph = api.http.post(
        f"{api.prov}/model_run/delete", json={"record_id": run, "trial_mode": False}, headers=auth(api)
    )
    assert graph.status_code == 200
    assert graph.json()["diff"]
    registry = api.http.delete(f"{api.registry}{MODEL_RUN}/delete", params={"id": run}, headers=auth(api))
    assert registry.status_code == 500
    assert fetch_item(api, MODEL_RUN, run)["id"] == run  # the record outlives its graph
    lineage = api.http.get(
        f"{api.prov}/explore/upstream", params={"starting_id": run, "depth": 1}, headers=auth(api)
    )
    assert lineage.status_code == 200
    assert lineage.json()["graph"]["nodes"] == []


# ---- job faults -----------------------------------------------------------------------------------


def assert_injected_failure(job: dict[str, Any]) -> None:
    assert job["status"] == "FAILED", job
    assert isinstance(job["info"], str)
    assert job["info"].startswith(("Job failed, err:", "Callback function raised unhandled exception."))
    assert job["result"] is None


def test_fail_next_jobs_fails_one_job_and_leaves_the_record(api: Api, demo: SeedSummary) -> None:
    run = run_id(demo, 2)
    before = fetch_item(api, MODEL_RUN, run)
    upstream_before = api.http.get(
        f"{api.prov}/explore/upstream", params={"starting_id": run, "depth": 1}, headers=auth(api)
    ).json()
    set_faults(api, fail_next_jobs=1)
    record = dict(before["record"], study_id=studies(demo)[3], description="Must not land.")
    assert_injected_failure(wait_job(api, submit(api, run, record, "Doomed")))
    assert fetch_item(api, MODEL_RUN, run) == before
    upstream_after = api.http.get(
        f"{api.prov}/explore/upstream", params={"starting_id": run, "depth": 1}, headers=auth(api)
    ).json()
    assert upstream_after == upstream_before
    # The switch was consumed: the same submission now succeeds.
    assert wait_job(api, submit(api, run, record, "Retry"))["status"] == "SUCCEEDED"
    assert fetch_item(api, MODEL_RUN, run)["record"]["study_id"] == studies(demo)[3]


def test_job_fail_rate(api: Api, demo: SeedSummary) -> None:
    run = run_id(demo, 6)
    before = fetch_item(api, MODEL_RUN, run)
    record = before["record"]

    set_faults(api, job_fail_rate=1.0)
    for attempt in range(3):
        assert_injected_failure(wait_job(api, submit(api, run, record, f"always fails {attempt}")))
    assert fetch_item(api, MODEL_RUN, run) == before

    set_faults(api, job_fail_rate=0.5)
    outcomes = [wait_job(api, submit(api, run, record, f"coin {n}"))["status"] for n in range(12)]
    succeeded = outcomes.count("SUCCEEDED")
    assert 0 < succeeded < len(outcomes), outcomes  # seeded rng: both outcomes occur
    after = fetch_item(api, MODEL_RUN, run)
    # Only the successful jobs left history, two entries each, in submission order.
    assert len(after["history"]) == len(before["history"]) + 2 * succeeded
    landed = [h["reason"] for h in after["history"] if h["reason"].startswith("coin ")]
    expected = [f"coin {n}" for n, status in enumerate(outcomes) if status == "SUCCEEDED"]
    assert landed == list(reversed(expected))

    set_faults(api, job_fail_rate=0.0)
    assert wait_job(api, submit(api, run, record, "reliable again"))["status"] == "SUCCEEDED"


def test_fail_jobs_for_targets_one_record_until_cleared(api: Api, demo: SeedSummary) -> None:
    doomed, fine = run_id(demo, 2), run_id(demo, 6)
    set_faults(api, fail_jobs_for=[doomed])
    doomed_before = fetch_item(api, MODEL_RUN, doomed)
    for attempt in range(2):
        job = wait_job(api, submit(api, doomed, doomed_before["record"], f"doomed {attempt}"))
        assert_injected_failure(job)
    assert fetch_item(api, MODEL_RUN, doomed) == doomed_before
    fine_record = fetch_item(api, MODEL_RUN, fine)["record"]
    assert wait_job(api, submit(api, fine, fine_record, "fine"))["status"] == "SUCCEEDED"
    set_faults(api, fail_jobs_for=[])
    assert wait_job(api, submit(api, doomed, doomed_before["record"], "cleared"))["status"] == "SUCCEEDED"


def test_job_row_delay_answers_400_until_the_row_appears(api: Api, demo: SeedSummary) -> None:
    set_faults(api, job_row_delay_ms=600, job_delay_ms=150)
    run = run_id(demo, 2)
    record = dict(fetch_item(api, MODEL_RUN, run)["record"], description="After a row delay.")
    submitted_at = time.monotonic()
    session_id = submit(api, run, record, "Row delay")
    seen: list[str] = []
    deadline = time.monotonic() + 15
    while not seen or seen[-1] not in FINAL:
        response = api.http.get(
            f"{api.jobs}/jobs/user/fetch", params={"session_id": session_id}, headers=auth(api)
        )
        if response.status_code == 400:
            assert response.json() == {"detail": "Item was not found."}
            state = "absent"
            if not seen:  # the row is invisible to listings too
                listed = api.http.post(f"{api.jobs}/jobs/user/list", json={}, headers=auth(api))
                assert session_id not in {j["session_id"] for j in listed.json()["jobs"]}
        else:
            assert response.status_code == 200, response.text
            state = response.json()["job"]["status"]
            if seen == ["absent"]:  # the first sighting of the row, no earlier than the delay
                assert time.monotonic() - submitted_at >= 0.55
        if not seen or seen[-1] != state:
            seen.append(state)
        assert time.monotonic() < deadline, seen
        time.sleep(0.01)
    # A loaded machine can miss a short-lived state between two polls, never reorder them.
    lifecycle = ["PENDING", "DEQUEUED", "IN_PROGRESS", "SUCCEEDED"]
    assert seen[0] == "absent" and seen[-1] == "SUCCEEDED" and "absent" not in seen[1:], seen
    assert seen[1:] == sorted(seen[1:], key=lifecycle.index), seen
    assert fetch_item(api, MODEL_RUN, run)["record"] == record


def test_job_faults_leave_the_worker_running(api: Api, demo: SeedSummary) -> None:
    """A failed job must not stall later jobs queued behind it."""
    set_faults(api, fail_next_jobs=2, job_delay_ms=50)
    runs = [run_id(demo, n) for n in (0, 2, 6)]
    sessions = [submit(api, r, fetch_item(api, MODEL_RUN, r)["record"], "queued") for r in runs]
    statuses = [wait_job(api, s)["status"] for s in sessions]
    assert statuses == ["FAILED", "FAILED", "SUCCEEDED"]


# ---- locked records ---------------------------------------------------------------------------------


def test_update_of_the_locked_record_is_refused(api: Api, demo: SeedSummary) -> None:
    run = demo.notable["locked record"]
    before = fetch_item(api, MODEL_RUN, run)
    locked = api.http.get(f"{api.registry}{MODEL_RUN}/locks/locked", params={"id": run}, headers=auth(api))
    assert locked.json()["locked"] is True
    record = dict(before["record"], description="Should not land.")
    # Submission is accepted (the lock is not checked synchronously); the job fails on the registry's
    # 401, in prov-api's words, which lose the registry's detail (jobs/prov_jobs.py: str() of an
    # HTTPException is empty).
    job = wait_job(api, submit(api, run, record, "Locked edit"))
    assert job["status"] == "FAILED", job
    assert job["info"] == "Job failed, err: An error occurred while lodging the provenance record. Error: .."
    assert job["result"] is None
    assert fetch_item(api, MODEL_RUN, run) == before
    # The registry refuses the admin delete too, and the registry has no plain model-run update.
    delete = api.http.delete(f"{api.registry}{MODEL_RUN}/delete", params={"id": run}, headers=auth(api))
    assert delete.status_code == 401
    assert delete.json()["detail"] == LOCKED
    plain = api.http.put(
        f"{api.registry}{MODEL_RUN}/update", params={"id": run, "reason": "x"}, json={}, headers=auth(api)
    )
    assert plain.status_code in (404, 405)
    assert fetch_item(api, MODEL_RUN, run) == before


def test_running_sandbox_fixture_for_fresh_servers_is_isolated(fresh: Api, server: RunningSandbox) -> None:
    """Settings flipped on a private server do not leak into the shared one."""
    set_faults(fresh, fault_rate=1.0)
    status = httpx.get(f"{server.base_url.rstrip('/')}/sandbox/status", timeout=10)
    assert status.json()["fault_rate"] == 0.0
