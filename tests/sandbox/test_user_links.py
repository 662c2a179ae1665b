"""The auth API's Person link service and the registry's enforcement of it, as production has them.

Texts from Provena's public source: auth-api routes/identity/user.py and admin.py, helpers/
registry_api_helpers.py; the registry's check in registry-api helpers/item_type_route_generator.py
(`enforce_user_link_check`), its gated types in registry-api main.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from provena_ops.sandbox.seed import SeedSummary
from tests.conftest import Api
from tests.sandbox.seeded import served, studies

STUDY = "/registry/activity/study"
WRITER = ["entity-registry-read", "entity-registry-write"]
NOT_LINKED = "In order to perform this operation you must link your User account to a Person in the registry."
MISSING_ROLE = "You are not authorised to access this resource as you don't have the correct role."


def auth_url(api: Api) -> str:
    return api.running.endpoints["auth_api_endpoint_override"]


def lookup(api: Api, user: str, roles: list[str] | None = None, **params: str) -> dict[str, Any]:
    answer = api.http.get(f"{auth_url(api)}/link/user/lookup", params=params, headers=api.auth(user, roles))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def study_update(api: Api, study: str, user: str, roles: list[str] | None = None) -> httpx.Response:
    item = api.http.get(f"{api.registry}{STUDY}/fetch", params={"id": study}, headers=api.auth()).json()[
        "item"
    ]
    domain = {key: item[key] for key in ("display_name", "title", "description")}
    return api.http.put(
        f"{api.registry}{STUDY}/update",
        params={"id": study, "reason": "link check"},
        json=domain,
        headers=api.auth(user, roles),
    )


def people(api: Api) -> list[dict[str, Any]]:
    listed = api.http.post(f"{api.registry}/registry/agent/person/list", json={}, headers=api.auth())
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


def test_every_demo_user_is_linked_and_anyone_can_look_anyone_up(api: Api) -> None:
    linked = lookup(api, "alice")
    assert linked["success"] is True and linked["person_id"] in {p["id"] for p in people(api)}
    assert lookup(api, "carol", WRITER) == {"person_id": None, "success": False}
    assert lookup(api, "carol", WRITER, username="bob")["success"] is True


def test_a_study_edit_without_a_link_is_refused_before_anything_else(api: Api, demo: SeedSummary) -> None:
    """Realm roles first (401), then the link (400), before validation, the lock and the item's rights."""
    study = studies(demo)[0]
    refused = study_update(api, study, "carol", WRITER)
    assert (refused.status_code, refused.json()) == (400, {"detail": NOT_LINKED})
    assert study_update(api, study, "carol", ["entity-registry-read"]).json() == {"detail": MISSING_ROLE}
    # Linked by an admin, carol gets as far as the item's own permission.
    person = people(api)[-1]["id"]
    assigned = api.http.post(
        f"{auth_url(api)}/link/admin/assign",
        json={"username": "carol", "person_id": person},
        headers=api.auth("admin"),
    )
    assert (assigned.status_code, assigned.json()) == (200, {})
    assert study_update(api, study, "carol", WRITER).json() == {
        "detail": f"You are not authorised to edit the item (id={study!r})."
    }


def test_user_assign_and_validate_texts(api: Api) -> None:
    person = people(api)[-1]["id"]  # owned by admin
    already = api.http.post(
        f"{auth_url(api)}/link/user/assign", json={"person_id": person}, headers=api.auth("alice")
    )
    linked_to = lookup(api, "alice")["person_id"]
    assert (already.status_code, already.json()["detail"]) == (
        400,
        f"The username alice already has a person ID assigned, ID {linked_to}. You cannot deassign "
        "a Person ID "
        "without contacting an admin.",
    )
    # A registry admin may read any Person's access settings, but links only to a Person they own.
    registry_admin = api.auth("zed", [*WRITER, "entity-registry-admin"])
    validated = api.http.post(
        f"{auth_url(api)}/link/user/validate", json={"person_id": person}, headers=registry_admin
    )
    assert validated.json() == {
        "status": {
            "success": False,
            "details": "You are not authorised to assign your identity to a Person in the Registry which you "
            f"do not own. Username: zed. Person ID: {person}.",
        }
    }
    # dave may not even read the person's access settings: the registry's 401, in the auth API's words.
    dave = api.auth("dave", WRITER)
    assigned = api.http.post(f"{auth_url(api)}/link/user/assign", json={"person_id": person}, headers=dave)
    assert (assigned.status_code, assigned.json()["detail"]) == (
        401,
        "Registry did not grant access to the auth configuration for this person. Details: You are not "
        f"authorised to view the access configuration for item id={person!r}..",
    )
    empty = api.http.post(f"{auth_url(api)}/link/user/assign", json={"person_id": ""}, headers=dave)
    assert empty.status_code == 422


def test_admin_routes_need_their_sys_admin_role(api: Api) -> None:
    person = people(api)[0]["id"]
    body = {"username": "erin", "person_id": person}
    refused = api.http.post(f"{auth_url(api)}/link/admin/assign", json=body, headers=api.auth("alice"))
    assert (refused.status_code, refused.json()) == (401, {"detail": MISSING_ROLE})
    admin = api.auth("admin")
    assert api.http.post(f"{auth_url(api)}/link/admin/assign", json=body, headers=admin).json() == {}
    again = api.http.post(f"{auth_url(api)}/link/admin/assign", json=body, headers=admin)
    assert again.json()["detail"] == (
        f"The username erin already has a person ID assigned, ID {person}. Use the force parameter "
        "to reassign."
    )
    reverse = api.http.get(
        f"{auth_url(api)}/link/admin/reverse_lookup", params={"person_id": person}, headers=admin
    )
    assert "erin" in reverse.json()["usernames"]
    for _ in range(2):  # clearing is answered the same whether or not there was a link
        cleared = api.http.delete(
            f"{auth_url(api)}/link/admin/clear", params={"username": "erin"}, headers=admin
        )
        assert (cleared.status_code, cleared.json()) == (200, {})
    assert api.http.get(
        f"{auth_url(api)}/link/admin/lookup", params={"username": "erin"}, headers=admin
    ).json() == {"person_id": None, "success": False}


@pytest.fixture
def unenforced(sandbox_db: Path) -> Iterator[Api]:
    with served(sandbox_db, enforce_user_links=False) as api:
        yield api


def test_enforcement_can_be_switched_off_for_a_rehearsal(unenforced: Api, demo: SeedSummary) -> None:
    study = studies(demo)[0]
    answer = study_update(unenforced, study, "carol", WRITER)
    assert answer.json() == {"detail": f"You are not authorised to edit the item (id={study!r})."}


# ---- the user-group service: auth-api routes/groups/user.py and admin.py ------------------------------


def test_group_routes_answer_the_sandboxs_memberships(api: Api) -> None:
    """The real registry asks /groups/user/list_user_membership on every list and group access check."""

    def ask(path: str, user: str = "alice", **params: str) -> dict[str, Any]:
        answer = api.http.get(f"{auth_url(api)}/groups/{path}", params=params, headers=api.auth(user))
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    modellers = {
        "id": "modellers",
        "display_name": "Modellers",
        "description": "The sandbox's demo modelling team.",
        "default_data_store_access": None,
    }
    assert ask("user/list_user_membership") == {
        "status": {"success": True, "details": "Member is part of 1 groups as listed."},
        "groups": [modellers],
    }
    assert ask("user/list_user_membership", "reader")["groups"] == []
    assert ask("admin/list_user_membership", "admin", username="alice")["groups"] == [modellers]
    assert ask("user/list_groups", "reader")["status"]["details"] == "Retrieved 1 groups successfully"
    assert ask("user/describe_group", "reader", id="nope") == {
        "status": {"success": False, "details": "No group with id nope was found."},
        "group": None,
    }
    assert ask("user/check_membership", "reader", group_id="modellers")["is_member"] is False
    assert ask("user/list_members", "reader", id="modellers")["status"] == {
        "success": False,
        "details": "You are not a member of group with id modellers.",
    }
    assert [u["username"] for u in ask("user/list_members", id="modellers")["group"]["users"]] == ["alice"]
    refused = api.http.get(
        f"{auth_url(api)}/groups/admin/list_user_membership",
        params={"username": "alice"},
        headers=api.auth("alice"),
    )
    assert refused.status_code == 401 and refused.json()["detail"] == MISSING_ROLE
