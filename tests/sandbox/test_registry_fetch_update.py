"""Registry typed/general fetch, STUDY update and revert (contract 4.3, 4.4, 4.6, 4.9)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from ProvenaInterfaces import RegistryAPI as reg
from ProvenaInterfaces import RegistryModels as models

from provena_ops.sandbox.seed import SeedSummary
from tests.conftest import Api
from tests.sandbox.seeded import without_nulls

STUDY = "/registry/activity/study"
MODEL_RUN = "/registry/activity/model_run"
PERSON = "/registry/agent/person"
FIRST_PERSON = "10378.1/1690001"  # the seed registers persons first
UNKNOWN = "10378.1/9999999"
ALL_ROLES = ["metadata-read", "metadata-write", "admin"]
MISSING_ROLE = "You are not authorised to access this resource as you don't have the correct role."
LOCKED = "Cannot perform this action as the resource is locked."


def studies(demo: SeedSummary) -> list[str]:
    """Seeded studies; owners alternate alice, bob, alice, ..."""
    return demo.notable["studies"].split(", ")


def run_number(demo: SeedSummary, number: int) -> str:
    """The id of seeded model run `number` (runs have consecutive handles; run 0 has annotations)."""
    prefix, first = demo.notable["model run with annotations"].split("/")
    return f"{prefix}/{int(first) + number}"


def fetch(api: Api, prefix: str, item_id: str, user: str = "admin", **params: Any) -> httpx.Response:
    return api.http.get(
        f"{api.registry}{prefix}/fetch", params={"id": item_id, **params}, headers=api.auth(user)
    )


def fetched_item(api: Api, prefix: str, item_id: str) -> dict[str, Any]:
    body = fetch(api, prefix, item_id).json()
    assert body["status"]["success"] is True, body
    item: dict[str, Any] = body["item"]
    return item


def study_domain(title: str) -> dict[str, Any]:
    return {
        "display_name": title,
        "user_metadata": {"source": "test"},
        "title": title,
        "description": f"About {title}.",
        "study_alternative_id": None,
    }


def update(
    api: Api,
    prefix: str,
    item_id: str | None,
    body: Any,
    reason: str | None = "test edit",
    user: str = "admin",
) -> httpx.Response:
    params = {k: v for k, v in (("id", item_id), ("reason", reason)) if v is not None}
    return api.http.put(f"{api.registry}{prefix}/update", params=params, json=body, headers=api.auth(user))


def revert(api: Api, item_id: str, history_id: int, reason: str, user: str = "admin") -> httpx.Response:
    return api.http.put(
        f"{api.registry}{STUDY}/revert",
        json={"id": item_id, "history_id": history_id, "reason": reason},
        headers=api.auth(user),
    )


def set_general_roles(api: Api, item_id: str, owner: str, general: list[str]) -> None:
    response = api.http.put(
        f"{api.registry}{STUDY}/auth/configuration",
        params={"id": item_id},
        json={"owner": owner, "general": general, "groups": {}},
        headers=api.auth(owner),
    )
    assert response.status_code == 200, response.text


def import_bundles(api: Api, bundles: list[dict[str, Any]]) -> None:
    response = api.http.post(
        f"{api.registry}/admin/import",
        json={"import_mode": "ADD_OR_OVERWRITE", "trial_mode": False, "items": bundles},
        headers=api.auth(),
    )
    assert response.json()["status"]["success"] is True, response.text


def bundle(item: dict[str, Any], owner: str) -> dict[str, Any]:
    return {
        "id": item["id"],
        "item_payload": item,
        "auth_payload": {
            "id": item["id"],
            "access_settings": {"owner": owner, "general": ["metadata-read"], "groups": {}},
        },
        "lock_payload": {"id": item["id"], "lock_information": {"locked": False, "history": []}},
    }


def seed_study(item_id: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "owner_username": "alice",
        "created_timestamp": 1_700_000_000,
        "updated_timestamp": 1_700_000_000,
        "item_category": "ACTIVITY",
        "item_subtype": "STUDY",
        "record_type": "SEED_ITEM",
        "workflow_links": None,
        "versioning_info": None,
    }


# ---- typed fetch -------------------------------------------------------------------------------


def test_typed_fetch_returns_roles_lock_state_and_parses(api: Api, demo: SeedSummary) -> None:
    locked = demo.notable["locked record"]
    response = fetch(api, MODEL_RUN, locked)
    assert response.status_code == 200
    body = response.json()
    assert body["status"]["success"] is True
    assert body["roles"] == ALL_ROLES
    assert body["locked"] is True
    assert body["item_is_seed"] is False
    parsed = reg.ModelRunFetchResponse.model_validate(body)
    assert isinstance(parsed.item, models.ItemModelRun)
    assert parsed.item.id == locked

    unlocked = fetch(api, STUDY, studies(demo)[0]).json()
    assert unlocked["locked"] is False
    assert isinstance(reg.StudyFetchResponse.model_validate(unlocked).item, models.ItemStudy)


@pytest.mark.parametrize(
    ("user", "study_index", "expected"),
    [
        ("alice", 0, ALL_ROLES),  # owner
        ("alice", 1, ["metadata-read"]),  # bob's study: only the general role
        ("reader", 1, ["metadata-read"]),
        ("bob", 1, ALL_ROLES),
    ],
)
def test_typed_fetch_roles_follow_item_permissions(
    api: Api, demo: SeedSummary, user: str, study_index: int, expected: list[str]
) -> None:
    body = fetch(api, STUDY, studies(demo)[study_index], user=user).json()
    assert body["status"]["success"] is True
    assert body["roles"] == expected


def test_typed_fetch_roles_include_group_entries(api: Api, demo: SeedSummary) -> None:
    # Odd-numbered runs belong to bob and grant the modellers group (alice is a member) read+write.
    body = fetch(api, MODEL_RUN, run_number(demo, 1), user="alice").json()
    assert body["item"]["owner_username"] == "bob"
    assert sorted(body["roles"]) == ["metadata-read", "metadata-write"]


def test_typed_fetch_of_unknown_id_is_a_soft_failure_with_null_keys(api: Api) -> None:
    response = fetch(api, STUDY, UNKNOWN)
    assert response.status_code == 200
    body = response.json()
    assert body["status"]["success"] is False
    assert f"Could not find the given key ({UNKNOWN})" in body["status"]["details"]
    # v2 declares these nullable without defaults: the keys must be present.
    assert {"item", "roles", "locked", "item_is_seed"} <= body.keys()
    assert body["item"] is None
    assert reg.StudyFetchResponse.model_validate(body).item is None


@pytest.mark.parametrize(
    ("prefix", "target", "model"),
    [
        (MODEL_RUN, "study", reg.ModelRunFetchResponse),
        (STUDY, "person", reg.StudyFetchResponse),
    ],
)
def test_typed_fetch_of_complete_item_of_another_subtype_is_a_soft_failure(
    api: Api, demo: SeedSummary, prefix: str, target: str, model: type[reg.GenericFetchResponse]
) -> None:
    other = studies(demo)[0] if target == "study" else FIRST_PERSON
    response = fetch(api, prefix, other)
    assert response.status_code == 200
    body = response.json()
    assert body["status"]["success"] is False
    assert "validation error" in body["status"]["details"]  # a pydantic-1 dump
    assert body["item"] is None
    assert model.model_validate(body).item is None


def test_typed_fetch_with_empty_id_is_a_soft_failure(api: Api) -> None:
    response = fetch(api, MODEL_RUN, "")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == {"success": False, "details": "Value error. Details ID cannot be empty."}
    assert body["item"] is None
    reg.ModelRunFetchResponse.model_validate(body)


def test_reading_without_item_read_is_401(api: Api, demo: SeedSummary) -> None:
    bobs_study = studies(demo)[1]
    set_general_roles(api, bobs_study, "bob", [])
    for user in ("alice", "reader"):
        response = fetch(api, STUDY, bobs_study, user=user)
        assert response.status_code == 401
        assert response.json()["detail"] == "You are not authorised to fetch this item."
        general = api.http.get(
            f"{api.registry}/registry/general/fetch", params={"id": bobs_study}, headers=api.auth(user)
        )
        assert general.status_code == 401
        history = api.http.get(
            f"{api.registry}{STUDY}/locks/history", params={"id": bobs_study}, headers=api.auth(user)
        )
        assert history.status_code == 401
    assert fetch(api, STUDY, bobs_study, user="bob").json()["status"]["success"] is True


def test_seed_items_are_hidden_unless_seed_allowed(api: Api) -> None:
    seed_id = "10378.1/1799001"
    import_bundles(api, [bundle(seed_study(seed_id), "alice")])

    hidden = fetch(api, STUDY, seed_id).json()
    assert hidden["status"]["success"] is False
    assert hidden["item"] is None

    shown = fetch(api, STUDY, seed_id, seed_allowed="true").json()
    assert shown["status"]["success"] is True
    assert shown["item_is_seed"] is True
    assert shown["item"]["record_type"] == "SEED_ITEM"
    assert isinstance(reg.StudyFetchResponse.model_validate(shown).item, models.SeededItem)

    # A seed of another subtype is a hard 400 when seeds are allowed.
    wrong = fetch(api, MODEL_RUN, seed_id, seed_allowed="true")
    assert wrong.status_code == 400
    assert "did not have the correct category or subtype" in wrong.json()["detail"]


# ---- general fetch -----------------------------------------------------------------------------


def test_general_fetch_returns_the_raw_stored_dict(api: Api, demo: SeedSummary) -> None:
    study = studies(demo)[0]
    response = api.http.get(
        f"{api.registry}/registry/general/fetch", params={"id": study}, headers=api.auth()
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"]["success"] is True
    assert set(body) == {"status", "item"}  # no roles / locked / item_is_seed
    item = body["item"]
    assert item["universal_partition_key"] == "OK"
    assert item["item_subtype"] == "STUDY"
    typed = fetched_item(api, STUDY, study)
    # Stored without nulls (py_to_dict); the typed answer is the parsed model, nulls included.
    raw = {k: v for k, v in item.items() if k != "universal_partition_key"}
    assert raw == without_nulls(typed)
    assert None not in raw.values() and None in typed.values()
    assert reg.UntypedFetchResponse.model_validate(body).item == item


def test_general_fetch_of_unknown_id_is_a_soft_failure(api: Api) -> None:
    response = api.http.get(
        f"{api.registry}/registry/general/fetch", params={"id": UNKNOWN}, headers=api.auth()
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"]["success"] is False
    assert "item" in body
    assert body["item"] is None


# ---- study update ------------------------------------------------------------------------------


def test_study_update_prepends_history_and_keeps_identity(api: Api, demo: SeedSummary) -> None:
    study = studies(demo)[0]  # alice's
    before = fetched_item(api, STUDY, study)
    first = study_domain("Reef outlook, revised")

    response = update(api, STUDY, study, first, reason="fix title", user="alice")
    assert response.status_code == 200
    parsed = reg.UpdateResponse.model_validate(response.json())
    assert parsed.status.success is True
    assert parsed.register_create_activity_session_id is None

    after = fetched_item(api, STUDY, study)
    assert after["title"] == first["title"]
    assert after["user_metadata"] == {"source": "test"}
    assert after["owner_username"] == before["owner_username"] == "alice"
    assert after["created_timestamp"] == before["created_timestamp"]
    assert after["updated_timestamp"] > before["updated_timestamp"]
    assert after["record_type"] == "COMPLETE_ITEM"
    assert after["versioning_info"] is None
    assert [entry["id"] for entry in after["history"]] == [1, 0]  # newest first
    newest = after["history"][0]
    assert newest["reason"] == "fix title"
    assert newest["username"] == "alice"
    assert isinstance(newest["timestamp"], int)
    domain = models.StudyDomainInfo
    assert domain.model_validate(newest["item"]) == domain.model_validate(first)
    assert after["history"][1] == before["history"][0]

    assert update(api, STUDY, study, study_domain("Third title"), reason="again").status_code == 200
    latest = fetched_item(api, STUDY, study)
    assert [entry["id"] for entry in latest["history"]] == [2, 1, 0]
    assert latest["history"][0]["username"] == "admin"
    assert latest["owner_username"] == "alice"


def test_study_update_history_id_is_max_plus_one(api: Api, demo: SeedSummary) -> None:
    # Ids need not be contiguous (imports, old data): the next id is max + 1, not len(history).
    study = studies(demo)[2]
    item = fetched_item(api, STUDY, study)
    initial = item["history"][0]
    item["history"] = [{**initial, "id": 7, "reason": "imported"}, {**initial, "id": 3}]
    import_bundles(api, [bundle(item, "alice")])

    assert update(api, STUDY, study, study_domain("Seagrass, renamed")).status_code == 200
    assert [entry["id"] for entry in fetched_item(api, STUDY, study)["history"]] == [8, 7, 3]


def test_study_update_without_reason_is_400(api: Api, demo: SeedSummary) -> None:
    study = studies(demo)[0]
    response = update(api, STUDY, study, study_domain("No reason"), reason=None)
    assert response.status_code == 400
    assert len(fetched_item(api, STUDY, study)["history"]) == 1


def test_study_update_of_unknown_id_fails_the_lock_lookup(api: Api) -> None:
    response = update(api, STUDY, UNKNOWN, study_domain("Ghost"))
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Failed to check if locked")


def test_study_update_with_invalid_body_is_422_in_pydantic1_shape(api: Api, demo: SeedSummary) -> None:
    body = study_domain("Missing title")
    del body["title"]
    response = update(api, STUDY, studies(demo)[0], body)
    assert response.status_code == 422
    assert {
        "loc": ["body", "title"],
        "msg": "field required",
        "type": "value_error.missing",
    } in response.json()["detail"]


def test_realm_roles_are_checked_before_request_validation(api: Api, demo: SeedSummary) -> None:
    # Contract 2.0: a missing token or role wins over a missing query parameter and a bad body.
    no_token = api.http.put(f"{api.registry}{STUDY}/update", json={})
    assert no_token.status_code == 401
    reader = update(api, STUDY, None, {"title": 3}, reason=None, user="reader")
    assert reader.status_code == 401
    assert reader.json()["detail"] == MISSING_ROLE


def test_study_update_by_user_without_item_write_is_401(api: Api, demo: SeedSummary) -> None:
    response = update(api, STUDY, studies(demo)[1], study_domain("Not mine"), user="alice")
    assert response.status_code == 401
    assert fetched_item(api, STUDY, studies(demo)[1])["title"] != "Not mine"


def test_person_update_failing_validation_is_a_soft_failure(api: Api) -> None:
    body = {
        "display_name": "Ada Nguyen",
        "email": "ada.nguyen@example.org",
        "first_name": "Ada",
        "last_name": "Nguyen",
        "ethics_approved": False,
    }
    response = update(api, PERSON, FIRST_PERSON, body)
    assert response.status_code == 200
    assert response.json()["status"]["success"] is False
    assert len(fetched_item(api, PERSON, FIRST_PERSON)["history"]) == 1

    # Validation runs before the lock-table lookup, so even an unknown id is a soft failure.
    unknown = update(api, PERSON, UNKNOWN, body)
    assert unknown.status_code == 200
    assert unknown.json()["status"]["success"] is False


def test_study_update_of_complete_item_of_another_subtype_is_500(api: Api) -> None:
    response = update(api, STUDY, FIRST_PERSON, study_domain("Person as study"))
    assert response.status_code == 500
    assert response.json()["detail"] == (
        f"Item with id {FIRST_PERSON} is neither a seed item nor a valid entry. "
        "Not sure how to handle this item. Aborting."
    )
    assert fetched_item(api, PERSON, FIRST_PERSON)["item_subtype"] == "PERSON"


def test_updating_a_seed_through_another_subtype_route_is_a_soft_failure(api: Api) -> None:
    seed_id = "10378.1/1799002"
    import_bundles(api, [bundle(seed_study(seed_id), "alice")])
    person = {
        "display_name": "Seed Person",
        "email": "seed.person@example.org",
        "first_name": "Seed",
        "last_name": "Person",
        "ethics_approved": True,
    }
    response = update(api, PERSON, seed_id, person)
    assert response.status_code == 200
    assert response.json()["status"] == {
        "success": False,
        "details": "The existing item is a valid item, but has a different subtype or category.",
    }


def test_model_run_update_route_does_not_exist(api: Api, demo: SeedSummary) -> None:
    # Model runs are SERVICE_PROXY: user tokens edit them through the prov API only.
    run = demo.notable["model run with annotations"]
    assert update(api, MODEL_RUN, run, {"display_name": "x"}).status_code == 404


# ---- revert ------------------------------------------------------------------------------------


def test_revert_copies_the_history_entry_back(api: Api, demo: SeedSummary) -> None:
    study = studies(demo)[0]
    original = fetched_item(api, STUDY, study)
    assert update(api, STUDY, study, study_domain("Temporary"), user="alice").status_code == 200

    response = revert(api, study, 0, "undo the rename", user="alice")
    assert response.status_code == 200
    assert reg.ItemRevertResponse.model_validate(response.json()).status.success is True

    item = fetched_item(api, STUDY, study)
    assert item["title"] == original["title"]
    assert item["display_name"] == original["display_name"]
    assert [entry["id"] for entry in item["history"]] == [2, 1, 0]
    newest = item["history"][0]
    assert newest["reason"] == "(Restoring to v0) undo the rename"
    assert newest["username"] == "alice"
    assert newest["item"] == original["history"][0]["item"]
    assert item["updated_timestamp"] >= original["updated_timestamp"]


def test_revert_to_unknown_history_id_is_400(api: Api, demo: SeedSummary) -> None:
    study = studies(demo)[0]
    response = revert(api, study, 5, "no such version")
    assert response.status_code == 400
    assert len(fetched_item(api, STUDY, study)["history"]) == 1


def test_revert_by_user_without_item_write_is_401(api: Api, demo: SeedSummary) -> None:
    assert revert(api, studies(demo)[1], 0, "not mine", user="alice").status_code == 401


def test_revert_with_non_integer_history_id_is_422(api: Api, demo: SeedSummary) -> None:
    response = api.http.put(
        f"{api.registry}{STUDY}/revert",
        json={"id": studies(demo)[0], "history_id": "latest", "reason": "bad id"},
        headers=api.auth(),
    )
    assert response.status_code == 422
    assert {
        "loc": ["body", "history_id"],
        "msg": "value is not a valid integer",
        "type": "type_error.integer",
    } in response.json()["detail"]


# ---- seeds and other STANDARD types ------------------------------------------------------------


def test_completing_a_seed_needs_no_reason(api: Api) -> None:
    seed_id = "10378.1/1799003"
    import_bundles(api, [bundle(seed_study(seed_id), "alice")])
    response = update(api, STUDY, seed_id, study_domain("Completed seed"), reason=None, user="alice")
    assert response.status_code == 200
    assert response.json()["status"]["success"] is True
    item = fetched_item(api, STUDY, seed_id)
    assert item["record_type"] == "COMPLETE_ITEM"
    assert item["title"] == "Completed seed"
    assert item["owner_username"] == "alice"
    assert [entry["id"] for entry in item["history"]] == [0]


def test_reverting_a_seed_is_400(api: Api) -> None:
    seed_id = "10378.1/1799004"
    import_bundles(api, [bundle(seed_study(seed_id), "alice")])
    assert revert(api, seed_id, 0, "nothing to restore").status_code == 400


def test_model_update_keeps_versioning_info(api: Api) -> None:
    model_prefix, model_id = "/registry/entity/model", "10378.1/1690010"  # the first seeded model
    before = fetched_item(api, model_prefix, model_id)
    assert before["versioning_info"] is not None
    body = {
        "display_name": "Reef Hydrodynamics Model v2 docs",
        "name": "Reef Hydrodynamics Model",
        "description": "Updated description.",
        "documentation_url": "https://models.example.org/0/docs/v2",
        "source_url": "https://git.example.org/models/0",
    }
    assert update(api, model_prefix, model_id, body, reason="docs moved").status_code == 200
    after = fetched_item(api, model_prefix, model_id)
    assert after["versioning_info"] == before["versioning_info"]
    assert after["workflow_links"] == before["workflow_links"]
    assert after["description"] == "Updated description."
    assert [entry["id"] for entry in after["history"]] == [1, 0]
