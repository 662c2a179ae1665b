"""The registry answers word for word as Provena's registry-api (FastAPI 0.88 on pydantic 1, Python 3.11).

Each test names the file of Provena's public source (github.com/provena/provena) its texts come from.
Interpolated values render as that stack renders them: str-Enums as `ItemSubType.STUDY`, `{id=}` as
`id='X'`, a KeyError as the repr of its message, and pydantic-1 dumps exactly as provena-interfaces
2.10.3 on pydantic 1.10.17 prints them (tests/sandbox/data/v1_cross_parse.json).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from provena_ops.sandbox.seed import SeedSummary
from tests.conftest import Api
from tests.sandbox.seeded import run_id, studies

STUDY = "/registry/activity/study"
MODEL_RUN = "/registry/activity/model_run"
PERSON = "/registry/agent/person"
UNKNOWN = "10378.1/9999999"
V1_DUMPS: dict[str, str | None] = json.loads(
    (Path(__file__).parent / "data" / "v1_cross_parse.json").read_text()
)["dumps"]
LOCKED = "Cannot perform this action as the resource is locked."


def ok(details: str) -> dict[str, Any]:
    return {"success": True, "details": details}


def refused(details: str) -> dict[str, Any]:
    return {"success": False, "details": details}


def no_lock_row(item_id: str) -> str:
    return f"Failed to retrieve ID {item_id} from the lock table, are you sure it exists?"


def key_error(item_id: str) -> str:
    return f"\"Failed to find item. Is the ID ('{item_id}') correct and in the database?\""


def get(api: Api, path: str, user: str = "admin", **params: Any) -> httpx.Response:
    return api.http.get(f"{api.registry}{path}", params=params, headers=api.auth(user))


def send(
    api: Api, method: str, path: str, body: Any = None, user: str = "admin", **params: Any
) -> httpx.Response:
    return api.http.request(method, f"{api.registry}{path}", params=params, json=body, headers=api.auth(user))


def detail(response: httpx.Response, status_code: int) -> Any:
    assert response.status_code == status_code, response.text
    return response.json()["detail"]


def stored(api: Api, item_id: str) -> dict[str, Any]:
    item: dict[str, Any] = get(api, "/registry/general/fetch", id=item_id).json()["item"]
    return item


def first_of(api: Api, subtype: str) -> str:
    body = {"filter_by": {"item_subtype": subtype}, "page_size": 1}
    found: str = send(api, "POST", "/registry/general/list", body).json()["items"][0]["id"]
    return found


def study_domain(api: Api, study: str) -> dict[str, Any]:
    item = stored(api, study)
    return {key: item[key] for key in ("display_name", "title", "description") if key in item} | {
        key: item[key] for key in ("study_alternative_id", "user_metadata") if key in item
    }


# ---- typed fetch: registry-api helpers/action_helpers.py (fetch_helper), helpers/dynamo_helpers.py ---------


def test_fetch_of_an_unknown_id_quotes_the_key_error(api: Api) -> None:
    response = get(api, f"{STUDY}/fetch", id=UNKNOWN)
    assert response.status_code == 200
    assert response.json() == {
        "status": refused(
            f"Could not find the given key ({UNKNOWN}) in the registry. Details {key_error(UNKNOWN)}."
        ),
        "item": None,
        "roles": None,
        "locked": None,
        "item_is_seed": None,
    }


def test_fetch_of_a_complete_item_through_another_route_is_the_pydantic_1_dump(
    api: Api, demo: SeedSummary
) -> None:
    study = min(studies(demo))  # the item v1_cross_parse.json was made from: the first complete study
    body = get(api, f"{MODEL_RUN}/fetch", id=study).json()
    dump = V1_DUMPS["STUDY->MODEL_RUN"]
    assert dump is not None
    assert body["status"] == refused(
        "The record was found but could not parsed as an appropriate type: Error The record was marked as a "
        f"COMPLETE_ITEM but could not be parsed as the correct model. Error: {dump}.."
    )
    assert body["item"] is None


def test_fetch_answers_the_parsed_item_with_its_null_fields(api: Api, demo: SeedSummary) -> None:
    """Typed routes answer the parsed model (every optional field, null when unset); storage leaves the
    nulls out (py_to_dict), which general fetch shows, with DynamoDB's partition key."""
    study = studies(demo)[0]
    body = get(api, f"{STUDY}/fetch", id=study).json()
    assert body["status"] == ok("Successfully retrieved complete item and parsed into current data model.")
    assert body["item"]["workflow_links"] is None and "versioning_info" in body["item"]
    assert (body["locked"], body["item_is_seed"]) == (False, False)
    raw = get(api, "/registry/general/fetch", id=study).json()
    assert raw["status"] == ok("Successfully retrieved item from the registry.")
    assert "workflow_links" not in raw["item"] and raw["item"]["universal_partition_key"] == "OK"
    assert all(value is not None for value in raw["item"].values())


def seed_bundle(api: Api, template: dict[str, Any], item_id: str) -> dict[str, Any]:
    item = {
        key: template[key]
        for key in (
            "owner_username",
            "created_timestamp",
            "updated_timestamp",
            "item_category",
            "item_subtype",
        )
    }
    return {
        "id": item_id,
        "item_payload": {"id": item_id, **item, "record_type": "SEED_ITEM"},
        "auth_payload": {"id": item_id, "access_settings": {"owner": "admin", "general": [], "groups": {}}},
        "lock_payload": {"id": item_id, "lock_information": {"locked": False, "history": []}},
    }


def test_seed_items_on_fetch(api: Api, demo: SeedSummary) -> None:
    seed = "10378.1/1799777"
    bundle = seed_bundle(api, stored(api, studies(demo)[0]), seed)
    imported = send(
        api, "POST", "/admin/import", {"import_mode": "ADD_ONLY", "trial_mode": False, "items": [bundle]}
    )
    assert imported.json()["status"] == ok("Successfully imported with mode: ImportMode.ADD_ONLY."), (
        imported.text
    )
    hidden = get(api, f"{STUDY}/fetch", id=seed).json()
    assert hidden["status"] == refused("A valid seed item was found, but seed_allowed was set to false.")
    shown = get(api, f"{STUDY}/fetch", id=seed, seed_allowed="true").json()
    assert shown["status"] == ok("Successfully retrieved seed item and parsed into current data model.")
    assert shown["item_is_seed"] is True and shown["item"]["record_type"] == "SEED_ITEM"
    elsewhere = get(api, f"{MODEL_RUN}/fetch", id=seed, seed_allowed="true")
    assert detail(elsewhere, 400) == (
        f"Item with id {seed} did not have the correct category or subtype for the specified item type."
    )


# ---- lists: helpers/action_helpers.py, routes/registry_general/registry_general.py, dynamo_helpers.py ------


@pytest.mark.parametrize("path", [f"{STUDY}/list", "/registry/general/list"])
def test_a_list_request_needs_a_body(api: Api, path: str) -> None:
    response = api.http.post(f"{api.registry}{path}", headers=api.auth())
    assert detail(response, 422) == [
        {"loc": ["body"], "msg": "field required", "type": "value_error.missing"}
    ]


@pytest.mark.parametrize("path", [f"{STUDY}/list", "/registry/general/list"])
def test_a_list_body_is_read_as_pydantic_1_reads_a_model(api: Api, path: str) -> None:
    """pydantic 1 validates a model from dict(value): `[]` and `""` are `{}`, a list of pairs a mapping."""
    plain = send(api, "POST", path, {}).json()
    assert send(api, "POST", path, []).json() == plain
    assert send(api, "POST", path, "").json() == plain
    assert len(send(api, "POST", path, [["page_size", 1]]).json()["items"]) == 1
    for not_a_mapping in (3, "ab", [1]):
        assert detail(send(api, "POST", path, not_a_mapping), 422) == [
            {"loc": ["body"], "msg": "value is not a valid dict", "type": "type_error.dict"}
        ]


@pytest.mark.parametrize("path", [f"{STUDY}/list", "/registry/general/list"])
def test_a_pagination_key_no_page_gave_is_dynamodbs_refusal_as_a_500(api: Api, path: str) -> None:
    """dynamo_helpers.py query_dbb wraps every query error; DynamoDB refuses a start key off the index."""
    for key in ({"id": "nope"}, {"display_name": "x"}, {"id": 3, "updated_timestamp": 1}):
        assert detail(send(api, "POST", path, {"pagination_key": key}), 500) == (
            "Failed to query the database. Error: An error occurred (ValidationException) when calling the "
            "Query operation: The provided starting key is invalid: The provided key element does not match "
            "the schema"
        )


def test_list_texts_and_item_forms(api: Api) -> None:
    typed = send(api, "POST", f"{STUDY}/list", {}).json()
    assert typed["status"] == ok("Successfully listed items.")
    assert list(typed) == [
        "status",
        "items",
        "seed_items",
        "unparsable_items",
        "total_item_count",
        "complete_item_count",
        "seed_item_count",
        "unparsable_item_count",
        "not_authorised_count",
        "pagination_key",
    ]
    assert all("workflow_links" in item for item in typed["items"])  # parsed: nulls included
    general = send(api, "POST", "/registry/general/list", {}).json()
    assert general["status"] == ok("Searched database and returned items matching query.")
    assert list(general) == ["status", "items", "total_item_count", "pagination_key"]
    for item in general["items"]:  # raw: no nulls, no partition key
        assert "universal_partition_key" not in item and None not in item.values()


@pytest.mark.parametrize(
    ("path", "filter_by", "filter_text"),
    [
        ("/registry/general/list", None, "None"),
        ("/registry/general/list", {"item_subtype": "STUDY"}, "FilterType.ITEM_SUBTYPE"),
        (f"{STUDY}/list", None, "FilterType.ITEM_SUBTYPE"),
    ],
)
def test_a_sort_without_an_index_is_provenas_400(
    api: Api, path: str, filter_by: dict[str, Any] | None, filter_text: str
) -> None:
    body = {"sort_by": {"sort_type": "RELEASE_TIMESTAMP"}, "filter_by": filter_by}
    assert detail(send(api, "POST", path, body), 400) == (
        "Failed to generate query parameters. Error: Could not derive an index name for filter type "
        f"{filter_text} and sort type SortType.RELEASE_TIMESTAMP. If attempting to sort items by some field "
        "belonging to only particular item subtypes, ensure to provide the item subtype filter to access its "
        "index, or utilise the specific list routes for the item subtype."
    )


# ---- general fetch: routes/registry_general/registry_general.py ------------------------------------------


def test_general_fetch_texts(api: Api) -> None:
    assert get(api, "/registry/general/fetch", id=UNKNOWN).json() == {
        "status": refused(
            f"The id you specified was not available in the registry, error: {key_error(UNKNOWN)}."
        ),
        "item": None,
    }
    empty = get(api, "/registry/general/fetch", id="")
    assert (empty.status_code, empty.text) == (500, "Internal Server Error")
    assert empty.headers["content-type"].startswith("text/plain")


# ---- update and revert: helpers/action_helpers.py, helpers/item_type_route_generator.py -------------------


def update(
    api: Api, study: str, domain: dict[str, Any], user: str = "admin", **params: Any
) -> httpx.Response:
    return send(api, "PUT", f"{STUDY}/update", domain, user, id=study, **params)


def test_update_texts_in_provenas_order(api: Api, demo: SeedSummary) -> None:
    study = studies(demo)[0]
    domain = study_domain(api, study)
    assert detail(update(api, UNKNOWN, domain, reason="x"), 400) == (
        f"Failed to check if locked. No access provided. Error: {no_lock_row(UNKNOWN)}."
    )
    run = run_id(demo, 3)
    assert detail(update(api, run, domain, reason="x"), 500) == (
        f"Item with id {run} is neither a seed item nor a valid entry. Not sure how to handle this item. "
        "Aborting."
    )
    assert detail(update(api, study, domain), 400) == (
        f"Cannot update item {study} as no reason was provided and this item is not a seed item. "
        "Please provide a reason for this update."
    )
    done = update(api, study, dict(domain, title="Renamed"), reason="Rename")
    assert done.json() == {
        "status": ok("Successfully applied update. Complete item had it's contents updated."),
        "register_create_activity_session_id": None,
    }


def test_update_without_edit_rights_names_the_id(api: Api, demo: SeedSummary) -> None:
    study = next(s for s in studies(demo) if stored(api, s)["owner_username"] != "reader")
    response = update(api, study, study_domain(api, study), user="bob", reason="x")
    if stored(api, study)["owner_username"] == "bob":
        pytest.skip("bob owns the first study")
    assert detail(response, 401) == f"You are not authorised to edit the item (id={study!r})."


def test_update_of_a_locked_item(api: Api, demo: SeedSummary) -> None:
    study = studies(demo)[1]
    assert send(api, "PUT", f"{STUDY}/locks/lock", {"id": study, "reason": "freeze"}).status_code == 200
    assert detail(update(api, study, study_domain(api, study), reason="x"), 401) == LOCKED


def test_person_without_ethics_approval_is_a_soft_validation_error(api: Api) -> None:
    people = send(api, "POST", f"{PERSON}/list", {}).json()["items"]
    person = people[0]
    domain = {
        key: person[key]
        for key in ("display_name", "email", "first_name", "last_name", "orcid", "ethics_approved")
        if person.get(key) is not None
    }
    response = send(
        api, "PUT", f"{PERSON}/update", dict(domain, ethics_approved=False), id=person["id"], reason="x"
    )
    assert response.status_code == 200
    assert response.json() == {
        "status": refused(
            "Validation Error: Please ensure mandatory ethics consent is obtained before proceeding with "
            "registration or updating of person."
        ),
        "register_create_activity_session_id": None,
    }


def test_revert_texts(api: Api, demo: SeedSummary) -> None:
    study = studies(demo)[2]
    domain = study_domain(api, study)
    assert update(api, study, dict(domain, title="Changed"), reason="Change").status_code == 200
    missing = send(api, "PUT", f"{STUDY}/revert", {"id": study, "history_id": 7, "reason": "back"})
    assert detail(missing, 400) == (
        f"The item with id {study} does not have a history entry with id matching 7. No action taken."
    )
    unknown = send(api, "PUT", f"{STUDY}/revert", {"id": UNKNOWN, "history_id": 0, "reason": "back"})
    assert (
        detail(unknown, 400)
        == f"Failed to check if locked. No access provided. Error: {no_lock_row(UNKNOWN)}."
    )
    done = send(api, "PUT", f"{STUDY}/revert", {"id": study, "history_id": 0, "reason": "back"})
    assert done.json() == {"status": ok(f"Successfully reverted item {study} to v0.")}
    assert stored(api, study)["history"][0]["reason"] == "(Restoring to v0) back"


# ---- locks: helpers/action_helpers.py, helpers/lock_helpers.py --------------------------------------------


def test_lock_texts(api: Api, demo: SeedSummary) -> None:
    study = studies(demo)[3]

    def change(action: str, item_id: str = study, prefix: str = STUDY, user: str = "admin") -> httpx.Response:
        return send(api, "PUT", f"{prefix}/locks/{action}", {"id": item_id, "reason": "why"}, user)

    assert change("lock").json() == {"status": ok("Resource locked successfully.")}
    assert detail(change("lock"), 400) == "Resource is already locked."
    assert change("unlock").json() == {"status": ok("Resource unlocked successfully.")}
    assert detail(change("unlock"), 400) == "Cannot unlock already unlocked resource."
    assert detail(change("lock", UNKNOWN), 400) == no_lock_row(UNKNOWN)
    owner = stored(api, study)["owner_username"]
    stranger = "bob" if owner != "bob" else "alice"
    for action in ("lock", "unlock"):  # unlock reuses the lock text
        assert detail(change(action, user=stranger), 401) == "You are not authorised to lock this item."
    dump = V1_DUMPS["STUDY->MODEL_RUN"]
    first = min(studies(demo))
    assert detail(change("lock", first, MODEL_RUN), 400) == (
        "Failed to parse item with the associated route's subtype model of ItemSubType.MODEL_RUN. Are you "
        f"using the correct endpoint route for id {first} pointing to an item subtype of STUDY? "
        f"Error: {dump}."
    )


def test_lock_history_and_status_answers(api: Api, demo: SeedSummary) -> None:
    study = studies(demo)[4]
    send(api, "PUT", f"{STUDY}/locks/lock", {"id": study, "reason": "first"})
    history = get(api, f"{STUDY}/locks/history", id=study).json()
    assert list(history) == ["status", "history"]  # no `locked` key
    assert history["status"] == ok("Successfully fetched the lock history")
    assert [list(event) for event in history["history"]] == [
        ["action_type", "username", "email", "reason", "timestamp"]
    ]
    assert get(api, f"{STUDY}/locks/locked", id=study).json() == {"locked": True}
    for route in ("history", "locked"):
        assert detail(get(api, f"{STUDY}/locks/{route}", id=UNKNOWN), 400) == no_lock_row(UNKNOWN)


# ---- auth routes and delete: helpers/action_helpers.py -----------------------------------------------------


def test_access_routes_texts(api: Api, demo: SeedSummary) -> None:
    study = studies(demo)[0]
    assert detail(get(api, f"{STUDY}/auth/evaluate", id=UNKNOWN), 400) == (
        f"Item (id={UNKNOWN!r}) was not present in the registry. Are you sure the id is correct?"
    )
    owner = stored(api, study)["owner_username"]
    stranger = "bob" if owner != "bob" else "alice"
    assert detail(get(api, f"{STUDY}/auth/configuration", stranger, id=study), 401) == (
        f"You are not authorised to view the access configuration for item id={study!r}."
    )
    settings = get(api, f"{STUDY}/auth/configuration", id=study).json()
    changed = send(api, "PUT", f"{STUDY}/auth/configuration", settings, id=study)
    assert changed.json() == {
        "status": ok(f"Successfully updated the authorisation configuration for item id={study!r}.")
    }
    moved = send(api, "PUT", f"{STUDY}/auth/configuration", dict(settings, owner="mallory"), id=study)
    assert detail(moved, 400) == f"The owner of a resource cannot be changed. Old: {owner}, New: mallory."


def test_delete_texts(api: Api, demo: SeedSummary) -> None:
    assert detail(send(api, "DELETE", f"{STUDY}/delete", id=UNKNOWN), 400) == (
        f"Failed to check if locked. No access provided. Error: {no_lock_row(UNKNOWN)}."
    )
    assert send(api, "DELETE", f"{STUDY}/delete", id=studies(demo)[4]).json() == {
        "status": ok("Item deleted.")
    }


# ---- export and import: routes/admin/import_export_restore.py, helpers/admin_helpers.py --------------------


def test_export_and_import_texts(api: Api, demo: SeedSummary) -> None:
    exported = send(api, "GET", "/admin/export").json()
    bundles = exported["items"]
    assert exported["status"] == ok(f"Successfully exported {len(bundles)} items.")
    study = studies(demo)[0]
    mine = next(b for b in bundles if b["id"] == study)
    assert None not in mine["item_payload"].values() and "universal_partition_key" not in mine["item_payload"]

    def trial(mode: str, items: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
        answer: dict[str, Any] = send(
            api, "POST", "/admin/import", {"import_mode": mode, "items": items, **options}
        ).json()
        return answer

    assert trial("ADD_ONLY", [mine]) == {
        "status": refused("There were errors during validation of the import mode, see the failure list."),
        "trial_mode": True,
        "statistics": None,
        "failure_list": [[f"Overlapping item on add only mode {study}", mine]],
    }
    fine = trial("ADD_OR_OVERWRITE", [mine])
    assert fine["status"] == ok("TRIAL: Successfully imported with mode: ImportMode.ADD_OR_OVERWRITE.")
    assert fine["statistics"] == {
        "old_registry_size": len(bundles),
        "new_registry_size": len(bundles),
        "deleted_entries": 0,
        "overwritten_entries": 1,
        "new_entries": 0,
    }
    sync = trial("SYNC_ADD_OR_OVERWRITE", [mine])
    assert len(sync["failure_list"]) == len(bundles) - 1
    reason, about = sync["failure_list"][0]
    assert reason == f"Item {about['id']} currently exists but not provided in update" and about in bundles
    broken = dict(mine, lock_payload={"id": study})
    assert trial("ADD_OR_OVERWRITE", [broken]) == {
        "status": refused("There were 1 items with parsing issues! See failure list."),
        "trial_mode": True,
        "statistics": None,
        "failure_list": [["Failed to parse the lock payload of item as a LockTableEntry.", broken]],
    }


# ---- schema, ui_schema, validate: helpers/item_type_route_generator.py, helpers/action_helpers.py -------


def test_schema_routes_answer_pydantic_1s_schema_of_the_domain_model(api: Api) -> None:
    answer = get(api, f"{STUDY}/schema", user="reader").json()
    assert answer["status"] == ok("Successfully returned autogenerated pydantic model json schema.")
    schema = answer["json_schema"]
    assert schema["title"] == "StudyDomainInfo" and schema["required"] == [
        "display_name",
        "title",
        "description",
    ]
    assert schema["properties"]["study_alternative_id"] == {  # registry-api main.py's null patch
        "title": "Study Alternative Id",
        "type": ["string", "null"],
    }
    assert get(api, f"{PERSON}/ui_schema", user="reader").json() == {
        "status": ok("Delivered UI Schema successfully"),
        "ui_schema": {},
    }
    assert detail(api.http.get(f"{api.registry}{STUDY}/schema"), 401) == "Not authenticated"


def test_validate_routes(api: Api) -> None:
    """type_validators.py: the custom validators' failures soft, a body that does not parse a 422."""
    fine = {"display_name": "v", "title": "v", "description": "v"}
    assert send(api, "POST", f"{STUDY}/validate", fine, user="reader").json() == {
        "status": ok("Validation successful.")
    }
    assert detail(send(api, "POST", f"{STUDY}/validate", {"title": "t"}, user="reader"), 422) == [
        {"loc": ["body", "display_name"], "msg": "field required", "type": "value_error.missing"},
        {"loc": ["body", "description"], "msg": "field required", "type": "value_error.missing"},
    ]
    person = {"display_name": "Ada", "email": "ada@example.org", "first_name": "Ada", "last_name": "N"}
    assert send(api, "POST", f"{PERSON}/validate", person, user="reader").json() == {
        "status": refused(
            "Validation Error: Please ensure mandatory ethics consent is obtained before proceeding with "
            "registration or updating of person."
        )
    }
    assert send(api, "POST", f"{PERSON}/validate", person | {"ethics_approved": True}).json()["status"] == ok(
        "Validation successful."
    )
    template = stored(api, first_of(api, "MODEL_RUN_WORKFLOW_TEMPLATE"))
    body = {
        key: template[key] for key in ("display_name", "software_id", "input_templates", "output_templates")
    }
    check = "/registry/entity/model_run_workflow/validate"
    assert send(api, "POST", check, body).json()["status"] == ok("Validation successful.")
    assert send(api, "POST", check, body | {"software_id": UNKNOWN}).json()["status"] == refused(
        f"Validation Error: Could not find Software ID with ID {UNKNOWN} in registry. Please ensure it "
        "exists."
    )


def test_delete_routes_are_hidden_from_the_openapi_document(api: Api) -> None:
    paths = api.http.get(f"{api.registry}/openapi.json").json()["paths"]
    assert f"{STUDY}/delete" not in paths and f"{STUDY}/validate" in paths
    assert api.http.delete(f"{api.registry}{STUDY}/delete", params={"id": UNKNOWN}).status_code == 401


# ---- request validation: FastAPI 0.88 on pydantic 1 ---------------------------------------------------


def test_an_email_error_is_pydantic_1s(api: Api) -> None:
    person = {
        "display_name": "Ada",
        "email": "nope",
        "first_name": "Ada",
        "last_name": "N",
        "ethics_approved": True,
    }
    response = send(api, "PUT", f"{PERSON}/update", person, id=first_of(api, "PERSON"))
    assert detail(response, 422) == [
        {"loc": ["body", "email"], "msg": "value is not a valid email address", "type": "value_error.email"}
    ]


def test_an_enum_error_in_a_dump_carries_pydantic_1s_context(api: Api, demo: SeedSummary) -> None:
    """str(ValidationError) appends `; enum_values=[...]` with the members' reprs (import_export_restore)."""
    bundle = next(b for b in send(api, "GET", "/admin/export").json()["items"] if b["id"] == studies(demo)[0])
    bundle["item_payload"]["item_subtype"] = "NOT_A_TYPE"
    body = {"import_mode": "ADD_OR_OVERWRITE", "trial_mode": True, "parse_items": True, "items": [bundle]}
    reason = send(api, "POST", "/admin/import", body).json()["failure_list"][0][0]
    subtypes = [
        "WORKFLOW_RUN", "MODEL_RUN", "STUDY", "CREATE", "VERSION", "PERSON", "ORGANISATION", "SOFTWARE",
        "MODEL", "WORKFLOW_TEMPLATE", "MODEL_RUN_WORKFLOW_TEMPLATE", "DATASET", "DATASET_TEMPLATE",
    ]  # fmt: skip
    members = ", ".join(f"<ItemSubType.{s}: '{s}'>" for s in subtypes)
    assert reason == (
        "Could not parse registry item as Record Info: 1 validation error for RecordInfo\nitem_subtype\n"
        "  value is not a valid enumeration member; permitted: "
        + ", ".join(f"'{s}'" for s in subtypes)
        + f" (type=type_error.enum; enum_values=[{members}])"
    )


def test_malformed_json_is_pydantic_1s_decode_error_before_authentication(api: Api) -> None:
    response = api.http.post(
        f"{api.registry}/registry/general/list", content=b"{bad", headers={"content-type": "application/json"}
    )
    assert detail(response, 422) == [
        {
            "loc": ["body", 1],
            "msg": "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
            "type": "value_error.jsondecode",
            "ctx": {
                "msg": "Expecting property name enclosed in double quotes",
                "doc": "{bad",
                "pos": 1,
                "lineno": 1,
                "colno": 2,
            },
        }
    ]
    no_token = api.http.post(f"{api.registry}/registry/general/list")
    assert detail(no_token, 401) == "Not authenticated"  # a missing body waits for authentication


def test_a_model_validator_fails_at_root_as_pydantic_1_reports_it(api: Api) -> None:
    body = {"sort_by": {"begins_with": "x"}}
    assert detail(send(api, "POST", "/registry/general/list", body), 422) == [
        {
            "loc": ["body", "sort_by", "__root__"],
            "msg": "Cannot filter by begins_with without specifying sort_type",
            "type": "value_error",
        }
    ]
