"""Registry locks (contract 4.8) and admin delete (contract 4.5)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from ProvenaInterfaces import RegistryAPI as reg
from ProvenaInterfaces.SharedTypes import StatusResponse

from provena_ops.sandbox.seed import SeedSummary
from tests.conftest import Api

STUDY = "/registry/activity/study"
MODEL_RUN = "/registry/activity/model_run"
PERSON = "/registry/agent/person"
FIRST_PERSON = "10378.1/1690001"  # the seed registers persons first
UNKNOWN = "10378.1/9999999"
MISSING_ROLE = "You are not authorised to access this resource as you don't have the correct role."
LOCKED = "Cannot perform this action as the resource is locked."


def studies(demo: SeedSummary) -> list[str]:
    """Seeded studies; owners alternate alice, bob, alice, ..."""
    return demo.notable["studies"].split(", ")


def change_lock(
    api: Api, action: str, item_id: str, reason: str = "testing", user: str = "admin", prefix: str = STUDY
) -> httpx.Response:
    return api.http.put(
        f"{api.registry}{prefix}/locks/{action}",
        json={"id": item_id, "reason": reason},
        headers=api.auth(user),
    )


def lock_history(api: Api, item_id: str, prefix: str = STUDY, user: str = "admin") -> dict[str, Any]:
    response = api.http.get(
        f"{api.registry}{prefix}/locks/history", params={"id": item_id}, headers=api.auth(user)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def is_locked(api: Api, item_id: str, prefix: str = STUDY, user: str = "admin") -> bool:
    response = api.http.get(
        f"{api.registry}{prefix}/locks/locked", params={"id": item_id}, headers=api.auth(user)
    )
    assert response.status_code == 200, response.text
    return reg.LockStatusResponse.model_validate(response.json()).locked


def fetch(api: Api, prefix: str, item_id: str, user: str = "admin") -> dict[str, Any]:
    response = api.http.get(f"{api.registry}{prefix}/fetch", params={"id": item_id}, headers=api.auth(user))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def general_fetch(api: Api, item_id: str) -> dict[str, Any]:
    response = api.http.get(
        f"{api.registry}/registry/general/fetch", params={"id": item_id}, headers=api.auth()
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def delete(api: Api, item_id: str, user: str = "admin", prefix: str = STUDY) -> httpx.Response:
    return api.http.delete(f"{api.registry}{prefix}/delete", params={"id": item_id}, headers=api.auth(user))


def study_domain(title: str) -> dict[str, Any]:
    return {"display_name": title, "title": title, "description": f"About {title}."}


# ---- locks -------------------------------------------------------------------------------------


def test_lock_and_unlock_toggle_with_history_oldest_first(api: Api, demo: SeedSummary) -> None:
    study = studies(demo)[0]  # alice's, so she is item admin
    assert is_locked(api, study) is False

    locked = change_lock(api, "lock", study, "freeze for review", user="alice")
    assert locked.status_code == 200
    assert StatusResponse.model_validate(locked.json()).status.success is True
    assert is_locked(api, study, user="reader") is True
    assert fetch(api, STUDY, study)["locked"] is True

    unlocked = change_lock(api, "unlock", study, "review done", user="admin")
    assert unlocked.status_code == 200
    assert unlocked.json()["status"]["success"] is True
    assert is_locked(api, study) is False

    body = lock_history(api, study, user="reader")
    assert body["status"]["success"] is True
    assert "locked" not in body  # Provena's lock history answer has status and history only
    events = body["history"]
    assert [(e["action_type"], e["username"], e["reason"]) for e in events] == [
        ("LOCK", "alice", "freeze for review"),
        ("UNLOCK", "admin", "review done"),
    ]
    assert all(isinstance(e["timestamp"], int) for e in events)
    assert events[0]["timestamp"] <= events[1]["timestamp"]
    parsed = reg.LockHistoryResponse.model_validate(body)
    assert parsed.history is not None
    assert len(parsed.history) == 2


def test_lock_history_reports_locked_state_and_keeps_earlier_events(api: Api, demo: SeedSummary) -> None:
    run = demo.notable["locked record"]
    body = lock_history(api, run, prefix=MODEL_RUN)
    assert is_locked(api, run, prefix=MODEL_RUN) is True
    assert [e["action_type"] for e in body["history"]] == ["LOCK"]

    assert change_lock(api, "unlock", run, "released", prefix=MODEL_RUN).status_code == 200
    after = lock_history(api, run, prefix=MODEL_RUN)
    assert is_locked(api, run, prefix=MODEL_RUN) is False
    assert after["history"][0] == body["history"][0]
    assert [(e["action_type"], e["reason"]) for e in after["history"]] == [
        ("LOCK", body["history"][0]["reason"]),
        ("UNLOCK", "released"),
    ]


def test_lock_and_unlock_are_400_when_nothing_changes(api: Api, demo: SeedSummary) -> None:
    study = studies(demo)[0]
    assert change_lock(api, "unlock", study).status_code == 400
    assert change_lock(api, "lock", study).status_code == 200
    assert change_lock(api, "lock", study).status_code == 400
    # The refused no-ops leave no trace in the history.
    assert [e["action_type"] for e in lock_history(api, study)["history"]] == ["LOCK"]


def test_lock_of_unknown_id_is_400(api: Api) -> None:
    assert change_lock(api, "lock", UNKNOWN).status_code == 400


def test_lock_requires_item_admin(api: Api, demo: SeedSummary) -> None:
    bobs_study = studies(demo)[1]
    response = change_lock(api, "lock", bobs_study, user="alice")
    assert response.status_code == 401
    reader = change_lock(api, "lock", bobs_study, user="reader")
    assert reader.status_code == 401
    assert reader.json()["detail"] == MISSING_ROLE
    assert is_locked(api, bobs_study) is False
    assert change_lock(api, "lock", bobs_study, user="bob").status_code == 200


def test_locking_through_another_subtypes_route_is_400(api: Api) -> None:
    response = change_lock(api, "lock", FIRST_PERSON, prefix=STUDY)
    assert response.status_code == 400
    assert "validation error" in str(response.json()["detail"])  # a pydantic dump
    assert is_locked(api, FIRST_PERSON, prefix=PERSON) is False


def test_locked_item_rejects_update_revert_and_delete(api: Api, demo: SeedSummary) -> None:
    study = studies(demo)[0]
    assert change_lock(api, "lock", study, user="alice").status_code == 200
    before = fetch(api, STUDY, study)["item"]

    edit = api.http.put(
        f"{api.registry}{STUDY}/update",
        params={"id": study, "reason": "while locked"},
        json=study_domain("Locked edit"),
        headers=api.auth("alice"),
    )
    undo = api.http.put(
        f"{api.registry}{STUDY}/revert",
        json={"id": study, "history_id": 0, "reason": "while locked"},
        headers=api.auth("alice"),
    )
    removal = delete(api, study)
    for response in (edit, undo, removal):
        assert response.status_code == 401
        assert response.json()["detail"] == LOCKED
    assert fetch(api, STUDY, study)["item"] == before


def test_lock_check_comes_before_type_and_permission_checks(api: Api, demo: SeedSummary) -> None:
    # Contract 4.4 order: lock check, then subtype check, then item write permission.
    study = studies(demo)[0]  # alice's
    assert change_lock(api, "lock", study, user="alice").status_code == 200
    assert change_lock(api, "lock", FIRST_PERSON, prefix=PERSON).status_code == 200
    for user, target in (("bob", study), ("admin", FIRST_PERSON)):
        response = api.http.put(
            f"{api.registry}{STUDY}/update",
            params={"id": target, "reason": "while locked"},
            json=study_domain("Locked edit"),
            headers=api.auth(user),
        )
        assert response.status_code == 401, user
        assert response.json()["detail"] == LOCKED, user


# ---- delete ------------------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["alice", "reader"])
def test_delete_requires_the_admin_realm_role(api: Api, demo: SeedSummary, user: str) -> None:
    study = studies(demo)[0]  # alice owns it, but delete is a realm-admin route
    response = delete(api, study, user=user)
    assert response.status_code == 401
    assert response.json()["detail"] == MISSING_ROLE
    assert fetch(api, STUDY, study)["status"]["success"] is True


def test_delete_of_unknown_id_is_400(api: Api) -> None:
    # The lock check runs first and its lookup fails, despite the docstring promising success.
    response = delete(api, UNKNOWN)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Failed to check if locked")


def test_delete_of_locked_item_is_401(api: Api, demo: SeedSummary) -> None:
    run = demo.notable["locked record"]
    response = delete(api, run, prefix=MODEL_RUN)
    assert response.status_code == 401
    assert response.json()["detail"] == LOCKED
    assert fetch(api, MODEL_RUN, run)["status"]["success"] is True


def test_delete_removes_the_item_lock_and_auth_entries(api: Api, demo: SeedSummary) -> None:
    study = studies(demo)[3]
    response = delete(api, study)
    assert response.status_code == 200
    assert response.json() == {"status": {"success": True, "details": "Item deleted."}}

    gone = fetch(api, STUDY, study)
    assert gone["status"]["success"] is False
    assert gone["item"] is None
    assert general_fetch(api, study)["status"]["success"] is False
    # The lock entry went too: deleting again fails the lock lookup like any unknown id.
    assert delete(api, study).status_code == 400


def test_delete_has_no_subtype_check(api: Api) -> None:
    response = delete(api, FIRST_PERSON, prefix=STUDY)
    assert response.status_code == 200
    assert response.json()["status"]["success"] is True
    assert general_fetch(api, FIRST_PERSON)["item"] is None


def test_hidden_general_delete_route(api: Api, demo: SeedSummary) -> None:
    study = studies(demo)[3]
    alice = api.http.delete(
        f"{api.registry}/registry/general/delete", params={"id": study}, headers=api.auth("alice")
    )
    assert alice.status_code == 401
    response = api.http.delete(
        f"{api.registry}/registry/general/delete", params={"id": study}, headers=api.auth()
    )
    assert response.json() == {"status": {"success": True, "details": "Item deleted."}}
    assert general_fetch(api, study)["item"] is None


def test_study_delete_neither_cascades_nor_touches_the_graph(api: Api, demo: SeedSummary) -> None:
    run = demo.notable["model run with annotations"]
    study = fetch(api, MODEL_RUN, run)["item"]["record"]["study_id"]
    assert study in studies(demo)

    assert delete(api, study).status_code == 200

    # No cascade: the run keeps its now dangling study link.
    assert fetch(api, MODEL_RUN, run)["item"]["record"]["study_id"] == study
    # The graph is untouched: the run's lineage still reaches the study node.
    lineage = api.http.get(
        f"{api.prov}/explore/upstream", params={"starting_id": run, "depth": 1}, headers=api.auth()
    )
    assert lineage.status_code == 200
    nodes = lineage.json()["graph"]["nodes"]
    assert {"id": study, "item_category": "ACTIVITY", "item_subtype": "STUDY"} in nodes
    # Exploring from the deleted study itself fails: prov checks the id against the registry first.
    downstream = api.http.get(
        f"{api.prov}/explore/downstream", params={"starting_id": study, "depth": 1}, headers=api.auth()
    )
    assert downstream.status_code == 500
