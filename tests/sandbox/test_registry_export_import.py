"""Registry admin export and import: five modes, trial mode, parse checks, statistics (contract 4.10)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from ProvenaInterfaces import RegistryAPI as reg

from provena_ops.sandbox import RunningSandbox
from provena_ops.sandbox.seed import SeedSummary
from tests.conftest import Api

STUDY = "/registry/activity/study"
MISSING_ROLE = "You are not authorised to access this resource as you don't have the correct role."
NEW_ID = "10378.1/1799001"


@pytest.fixture
def empty(empty_server: RunningSandbox) -> Iterator[Api]:
    client = Api(empty_server)
    yield client
    client.close()


def studies(demo: SeedSummary) -> list[str]:
    return demo.notable["studies"].split(", ")


def export(api: Api) -> list[dict[str, Any]]:
    response = api.http.get(f"{api.registry}/admin/export", headers=api.auth())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"]["success"] is True
    items: list[dict[str, Any]] = body["items"]
    return items


def import_items(
    api: Api, mode: str, items: list[dict[str, Any]], user: str = "admin", **options: Any
) -> httpx.Response:
    body = {"import_mode": mode, "items": items, **options}
    return api.http.post(f"{api.registry}/admin/import", json=body, headers=api.auth(user))


def imported(api: Api, mode: str, items: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
    response = import_items(api, mode, items, **options)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    reg.RegistryImportResponse.model_validate(result)
    return result


def statistics(old: int, new: int, deleted: int = 0, overwritten: int = 0, added: int = 0) -> dict[str, int]:
    return {
        "old_registry_size": old,
        "new_registry_size": new,
        "deleted_entries": deleted,
        "overwritten_entries": overwritten,
        "new_entries": added,
    }


def bundle_of(items: list[dict[str, Any]], item_id: str) -> dict[str, Any]:
    return copy.deepcopy(next(bundle for bundle in items if bundle["id"] == item_id))


def new_study_bundle(template: dict[str, Any], item_id: str = NEW_ID) -> dict[str, Any]:
    """A copy of an exported study under a new id (payload, auth and lock ids all follow)."""
    bundle = copy.deepcopy(template)
    bundle["id"] = bundle["item_payload"]["id"] = item_id
    bundle["auth_payload"]["id"] = bundle["lock_payload"]["id"] = item_id
    bundle["item_payload"]["title"] = bundle["item_payload"]["display_name"] = "Imported study"
    return bundle


def fetch_study(api: Api, item_id: str) -> dict[str, Any]:
    response = api.http.get(f"{api.registry}{STUDY}/fetch", params={"id": item_id}, headers=api.auth())
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# ---- export ------------------------------------------------------------------------------------


def test_export_bundles_every_item_with_auth_and_lock(api: Api, demo: SeedSummary) -> None:
    response = api.http.get(f"{api.registry}/admin/export", headers=api.auth())
    assert response.status_code == 200
    parsed = reg.RegistryExportResponse.model_validate(response.json())
    assert parsed.items is not None
    assert len(parsed.items) == sum(demo.counts.values())
    assert len({bundle.id for bundle in parsed.items}) == len(parsed.items)

    bundles = {bundle.id: bundle for bundle in parsed.items}
    for bundle in parsed.items:
        assert (
            bundle.item_payload["id"] == bundle.auth_payload["id"] == bundle.lock_payload["id"] == bundle.id
        )
        assert "universal_partition_key" not in bundle.item_payload  # stripped, as in the general list
    study = bundles[studies(demo)[1]]
    assert study.auth_payload["access_settings"] == {
        "owner": "bob",
        "general": ["metadata-read"],
        "groups": {},
    }
    # The stored form: what general fetch answers, without the partition key (no null fields either).
    general = api.http.get(
        f"{api.registry}/registry/general/fetch", params={"id": study.id}, headers=api.auth()
    )
    assert study.item_payload == {
        k: v for k, v in general.json()["item"].items() if k != "universal_partition_key"
    }
    assert None not in study.item_payload.values()
    locked = bundles[demo.notable["locked record"]].lock_payload["lock_information"]
    assert locked["locked"] is True
    assert [event["action_type"] for event in locked["history"]] == ["LOCK"]


@pytest.mark.parametrize("user", ["alice", "reader"])
def test_export_and_import_are_admin_only(api: Api, user: str) -> None:
    exported = api.http.get(f"{api.registry}/admin/export", headers=api.auth(user))
    assert exported.status_code == 401
    assert exported.json()["detail"] == MISSING_ROLE
    # The realm-role check runs before body validation: a malformed body still gets 401, not 422.
    malformed = api.http.post(f"{api.registry}/admin/import", json={"items": 3}, headers=api.auth(user))
    assert malformed.status_code == 401
    assert malformed.json()["detail"] == MISSING_ROLE


def test_import_request_validation_is_422(api: Api) -> None:
    response = api.http.post(f"{api.registry}/admin/import", json={"items": []}, headers=api.auth())
    assert response.status_code == 422
    assert {"loc": ["body", "import_mode"], "msg": "field required", "type": "value_error.missing"} in (
        response.json()["detail"]
    )


def test_unknown_import_mode_is_422_with_enum_values(api: Api) -> None:
    response = api.http.post(
        f"{api.registry}/admin/import", json={"import_mode": "OVERWRITE_ALL", "items": []}, headers=api.auth()
    )
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "import_mode"]
    assert error["type"] == "type_error.enum"
    assert error["ctx"]["enum_values"] == [
        "ADD_ONLY",
        "ADD_OR_OVERWRITE",
        "OVERWRITE_ONLY",
        "SYNC_ADD_OR_OVERWRITE",
        "SYNC_DELETION_ALLOWED",
    ]


# ---- trial mode --------------------------------------------------------------------------------


def test_trial_mode_is_the_default_and_changes_nothing(api: Api, demo: SeedSummary) -> None:
    before = export(api)
    changed = bundle_of(before, studies(demo)[0])
    changed["item_payload"]["title"] = "Changed in trial"
    items = [changed, new_study_bundle(changed)]

    result = imported(api, "ADD_OR_OVERWRITE", items)
    assert result["trial_mode"] is True
    assert result["status"] == {
        "success": True,
        "details": "TRIAL: Successfully imported with mode: ImportMode.ADD_OR_OVERWRITE.",
    }
    assert result["statistics"] == statistics(len(before), len(before) + 1, overwritten=1, added=1)
    assert result["failure_list"] is None
    assert export(api) == before


def test_only_successes_are_prefixed_with_trial(api: Api) -> None:
    """registry-api helpers/admin_helpers.py: the `TRIAL: ` prefix is on the success text alone."""
    result = imported(api, "ADD_ONLY", export(api)[:1])
    assert result["status"] == {
        "success": False,
        "details": "There were errors during validation of the import mode, see the failure list.",
    }


# ---- the five modes ----------------------------------------------------------------------------


def test_add_only_fails_when_ids_exist(api: Api, demo: SeedSummary) -> None:
    before = export(api)
    template = bundle_of(before, studies(demo)[0])
    result = imported(api, "ADD_ONLY", [template, new_study_bundle(template)], trial_mode=False)
    assert result["status"]["success"] is False
    assert result["trial_mode"] is False
    assert export(api) == before


def test_add_only_adds_new_items(api: Api, demo: SeedSummary) -> None:
    before = export(api)
    result = imported(
        api, "ADD_ONLY", [new_study_bundle(bundle_of(before, studies(demo)[0]))], trial_mode=False
    )
    assert result["status"] == {
        "success": True,
        "details": "Successfully imported with mode: ImportMode.ADD_ONLY.",
    }
    assert result["statistics"] == statistics(len(before), len(before) + 1, added=1)
    assert fetch_study(api, NEW_ID)["item"]["title"] == "Imported study"


def test_add_or_overwrite_adds_and_replaces(api: Api, demo: SeedSummary) -> None:
    before = export(api)
    changed = bundle_of(before, studies(demo)[0])
    changed["item_payload"]["title"] = "Overwritten title"
    changed["lock_payload"]["lock_information"]["locked"] = True
    result = imported(api, "ADD_OR_OVERWRITE", [changed, new_study_bundle(changed)], trial_mode=False)
    assert result["status"]["success"] is True
    assert result["statistics"] == statistics(len(before), len(before) + 1, overwritten=1, added=1)

    after = fetch_study(api, studies(demo)[0])
    assert after["item"]["title"] == "Overwritten title"
    assert after["locked"] is True  # lock table written from lock_payload
    assert fetch_study(api, NEW_ID)["status"]["success"] is True
    assert len(export(api)) == len(before) + 1


def test_overwrite_only_fails_on_new_ids_and_replaces_existing(api: Api, demo: SeedSummary) -> None:
    before = export(api)
    changed = bundle_of(before, studies(demo)[0])
    changed["item_payload"]["title"] = "Overwritten title"

    refused = imported(api, "OVERWRITE_ONLY", [changed, new_study_bundle(changed)], trial_mode=False)
    assert refused["status"]["success"] is False
    assert export(api) == before

    result = imported(api, "OVERWRITE_ONLY", [changed], trial_mode=False)
    assert result["status"]["success"] is True
    assert result["statistics"] == statistics(len(before), len(before), overwritten=1)
    assert fetch_study(api, studies(demo)[0])["item"]["title"] == "Overwritten title"


def test_sync_add_or_overwrite_needs_every_registry_id(api: Api, demo: SeedSummary) -> None:
    before = export(api)
    refused = imported(api, "SYNC_ADD_OR_OVERWRITE", before[1:], trial_mode=False)
    assert refused["status"]["success"] is False
    assert export(api) == before

    extra = new_study_bundle(bundle_of(before, studies(demo)[0]))
    result = imported(api, "SYNC_ADD_OR_OVERWRITE", [*before, extra], trial_mode=False)
    assert result["status"]["success"] is True
    assert result["statistics"] == statistics(len(before), len(before) + 1, overwritten=len(before), added=1)
    assert len(export(api)) == len(before) + 1


def test_sync_deletion_allowed_needs_allow_entry_deletion(api: Api, demo: SeedSummary) -> None:
    before = export(api)
    kept = [bundle for bundle in before if bundle["item_payload"]["item_subtype"] == "STUDY"]
    deleted = len(before) - len(kept)

    refused = imported(api, "SYNC_DELETION_ALLOWED", kept, trial_mode=False)
    assert refused["status"]["success"] is False
    assert export(api) == before

    trial = imported(api, "SYNC_DELETION_ALLOWED", kept, allow_entry_deletion=True)
    assert trial["status"]["details"].startswith("TRIAL: ")
    assert trial["statistics"] == statistics(len(before), len(kept), deleted=deleted, overwritten=len(kept))
    assert export(api) == before

    result = imported(api, "SYNC_DELETION_ALLOWED", kept, allow_entry_deletion=True, trial_mode=False)
    assert result["status"]["success"] is True
    assert result["statistics"] == trial["statistics"]
    assert export(api) == kept


def test_sync_deletion_allowed_without_deletions_needs_no_permission(api: Api) -> None:
    before = export(api)
    result = imported(api, "SYNC_DELETION_ALLOWED", before, trial_mode=False)
    assert result["status"]["success"] is True
    assert result["statistics"] == statistics(len(before), len(before), overwritten=len(before))


# ---- parse checks ------------------------------------------------------------------------------


@pytest.mark.parametrize("broken", ["item_payload", "auth_payload", "lock_payload"])
def test_parse_failures_are_reported_and_nothing_is_imported(
    api: Api, demo: SeedSummary, broken: str
) -> None:
    before = export(api)
    bad = new_study_bundle(bundle_of(before, studies(demo)[0]))
    if broken == "item_payload":
        del bad["item_payload"]["title"]
    elif broken == "auth_payload":
        bad["auth_payload"]["access_settings"] = "everyone"
    else:
        bad["lock_payload"]["lock_information"]["locked"] = "sometimes"
    good = new_study_bundle(bundle_of(before, studies(demo)[1]), "10378.1/1799002")

    result = imported(api, "ADD_OR_OVERWRITE", [good, bad], trial_mode=False)
    assert result["status"]["success"] is False
    failures = result["failure_list"]
    assert isinstance(failures, list)
    assert len(failures) == 1
    message, item = failures[0]
    assert isinstance(message, str)
    assert message
    assert item["id"] == NEW_ID
    assert export(api) == before


def test_parse_items_false_skips_the_checks(api: Api, demo: SeedSummary) -> None:
    before = export(api)
    bad = new_study_bundle(bundle_of(before, studies(demo)[0]))
    del bad["item_payload"]["title"]
    result = imported(api, "ADD_ONLY", [bad], parse_items=False)
    assert result["status"]["success"] is True
    assert result["statistics"] == statistics(len(before), len(before) + 1, added=1)


# ---- round trip --------------------------------------------------------------------------------


def test_round_trip_into_an_empty_registry(api: Api, empty: Api, demo: SeedSummary) -> None:
    exported = export(api)
    assert export(empty) == []

    result = imported(empty, "ADD_ONLY", exported, trial_mode=False)
    assert result["status"] == {
        "success": True,
        "details": "Successfully imported with mode: ImportMode.ADD_ONLY.",
    }
    assert result["statistics"] == statistics(0, len(exported), added=len(exported))
    assert export(empty) == exported

    # Items, roles and lock state all came across.
    run = demo.notable["locked record"]
    fetched = empty.http.get(
        f"{empty.registry}/registry/activity/model_run/fetch",
        params={"id": run},
        headers=empty.auth("reader"),
    ).json()
    assert fetched["locked"] is True
    assert fetched["roles"] == ["metadata-read"]

    # Import writes tables only: the graph is not rebuilt.
    lineage = empty.http.get(
        f"{empty.prov}/explore/upstream", params={"starting_id": run, "depth": 1}, headers=empty.auth()
    )
    assert lineage.status_code == 200
    assert lineage.json()["graph"]["nodes"] == []
    assert lineage.json()["record_count"] == 0
