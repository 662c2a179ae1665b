"""Error and soft-failure bodies as Provena's services put them on the wire (contract 2, 2.0, 4.3, 11).

The real services run FastAPI on pydantic 1, so 422 bodies use pydantic-1 wording; soft failures
are HTTP 200 with `status.success=false` and the other response keys present as `null`, which
pydantic-2 clients (ProvenaInterfaces v2) need in order to parse them.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from ProvenaInterfaces import RegistryAPI

from provena_ops.sandbox.seed import SeedSummary
from tests.conftest import Api

MODEL_RUN = "/registry/activity/model_run"
STUDY = "/registry/activity/study"
IMPORT_MODES = [
    "ADD_ONLY",
    "ADD_OR_OVERWRITE",
    "OVERWRITE_ONLY",
    "SYNC_ADD_OR_OVERWRITE",
    "SYNC_DELETION_ALLOWED",
]
FETCH_KEYS = {"status", "item", "roles", "locked", "item_is_seed"}


# ---- helpers ------------------------------------------------------------------------------------
def missing(where: str, name: str) -> dict[str, Any]:
    return {"loc": [where, name], "msg": "field required", "type": "value_error.missing"}


def assert_422(response: httpx.Response, detail: list[dict[str, Any]]) -> None:
    assert response.status_code == 422, response.text
    assert response.json() == {"detail": detail}


def first_study(demo: SeedSummary) -> str:
    return demo.notable["studies"].split(",")[0].strip()


def typed_fetch(api: Api, prefix: str, item_id: str) -> httpx.Response:
    return api.http.get(f"{api.registry}{prefix}/fetch", params={"id": item_id}, headers=api.auth())


def assert_soft_fetch_failure(response: httpx.Response) -> dict[str, Any]:
    """HTTP 200, success false, every GenericFetchResponse key present and null; parses in v2."""
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == FETCH_KEYS
    assert body["status"]["success"] is False
    assert body["item"] is None and body["roles"] is None
    assert body["locked"] is None and body["item_is_seed"] is None
    parsed = RegistryAPI.ModelRunFetchResponse.model_validate(body)
    assert parsed.item is None
    return body


# ---- 422: pydantic-1 style ------------------------------------------------------------------------
def test_missing_query_param_on_typed_fetch(api: Api) -> None:
    assert_422(api.http.get(f"{api.registry}{MODEL_RUN}/fetch", headers=api.auth()), [missing("query", "id")])


@pytest.mark.parametrize(
    ("service", "path", "param"),
    [
        ("registry", "/registry/general/fetch", "id"),
        ("prov", "/explore/upstream", "starting_id"),
        ("jobs", "/jobs/user/fetch", "session_id"),
    ],
)
def test_missing_query_param_on_other_services(api: Api, service: str, path: str, param: str) -> None:
    base = {"registry": api.registry, "prov": api.prov, "jobs": api.jobs}[service]
    assert_422(api.http.get(f"{base}{path}", headers=api.auth()), [missing("query", param)])


def test_non_integer_history_id_on_revert(api: Api, demo: SeedSummary) -> None:
    body = {"id": first_study(demo), "history_id": "abc", "reason": "typo"}
    response = api.http.put(f"{api.registry}{STUDY}/revert", json=body, headers=api.auth())
    not_int = {"msg": "value is not a valid integer", "type": "type_error.integer"}
    assert_422(response, [{"loc": ["body", "history_id"], **not_int}])


def test_bad_enum_on_admin_import(api: Api) -> None:
    response = api.http.post(
        f"{api.registry}/admin/import", json={"import_mode": "NOPE", "items": []}, headers=api.auth()
    )
    permitted = ", ".join(f"'{mode}'" for mode in IMPORT_MODES)
    assert_422(
        response,
        [
            {
                "loc": ["body", "import_mode"],
                "msg": f"value is not a valid enumeration member; permitted: {permitted}",
                "type": "type_error.enum",
                "ctx": {"enum_values": IMPORT_MODES},
            }
        ],
    )


def test_missing_body_on_admin_import(api: Api) -> None:
    response = api.http.post(f"{api.registry}/admin/import", headers=api.auth())
    assert_422(response, [{"loc": ["body"], "msg": "field required", "type": "value_error.missing"}])


def test_invalid_study_body_is_422_not_soft_failure(api: Api, demo: SeedSummary) -> None:
    """STUDY has no custom validator, so a bad body never reaches the soft-failure path (contract 2.0)."""
    response = api.http.put(
        f"{api.registry}{STUDY}/update",
        params={"id": first_study(demo), "reason": "bad body"},
        json={"display_name": "x"},
        headers=api.auth(),
    )
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert {"loc": ["body", "title"], "msg": "field required", "type": "value_error.missing"} in detail
    assert all(error["type"] == "value_error.missing" and error["loc"][0] == "body" for error in detail)


def test_prov_update_body_errors(api: Api) -> None:
    response = api.http.post(f"{api.prov}/model_run/update", json={}, headers=api.auth())
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert missing("body", "model_run_id") in detail
    assert missing("body", "record") in detail


# ---- 404 / 405 ------------------------------------------------------------------------------------
@pytest.mark.parametrize("authorised", [True, False], ids=["with-token", "no-token"])
def test_unknown_route_is_404_not_found(api: Api, authorised: bool) -> None:
    """Routing precedes auth: an unknown path is 404 even without a token."""
    headers = api.auth() if authorised else {}
    for url in (
        f"{api.registry}/registry/activity/nonsense/fetch",
        f"{api.registry}/no/such/route",
        f"{api.prov}/model_run/nonsense",
        f"{api.jobs}/jobs/nonsense",
    ):
        response = api.http.get(url, headers=headers)
        assert response.status_code == 404, (url, response.text)
        assert response.json() == {"detail": "Not Found"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", f"{MODEL_RUN}/update"),
        ("PUT", f"{MODEL_RUN}/revert"),
        ("POST", f"{MODEL_RUN}/create"),
        ("POST", f"{MODEL_RUN}/seed"),
        ("PUT", "/registry/entity/dataset/update"),
        ("PUT", "/registry/activity/create/update"),
    ],
)
def test_service_proxy_and_read_only_types_have_no_user_edit_routes(
    api: Api, demo: SeedSummary, method: str, path: str
) -> None:
    """Model runs are edited only through the prov API; datasets only through the data store."""
    run_id = demo.notable["model run with annotations"]
    response = api.http.request(
        method, f"{api.registry}{path}", params={"id": run_id, "reason": "x"}, json={}, headers=api.auth()
    )
    assert response.status_code == 404, response.text
    assert response.json() == {"detail": "Not Found"}


@pytest.mark.parametrize(
    ("service", "method", "path"),
    [
        ("registry", "GET", f"{STUDY}/update"),
        ("registry", "POST", f"{STUDY}/fetch"),
        ("registry", "GET", f"{STUDY}/list"),
        ("registry", "DELETE", f"{MODEL_RUN}/fetch"),
        ("prov", "GET", "/model_run/update"),
        ("jobs", "GET", "/jobs/user/list"),
    ],
)
def test_wrong_method_is_405(api: Api, service: str, method: str, path: str) -> None:
    base = {"registry": api.registry, "prov": api.prov, "jobs": api.jobs}[service]
    response = api.http.request(method, f"{base}{path}", headers=api.auth())
    assert response.status_code == 405, response.text
    assert response.json() == {"detail": "Method Not Allowed"}


# ---- soft failures with null keys -------------------------------------------------------------------
def test_unknown_id_is_soft_failure_with_null_keys(api: Api) -> None:
    response = typed_fetch(api, MODEL_RUN, "10378.1/does-not-exist")
    body = assert_soft_fetch_failure(response)
    assert "10378.1/does-not-exist" in body["status"]["details"]
    # The nulls are on the wire, not defaulted by the client.
    assert '"item":null' in response.text.replace(" ", "")


def test_empty_id_is_soft_failure(api: Api) -> None:
    body = assert_soft_fetch_failure(typed_fetch(api, MODEL_RUN, ""))
    assert body["status"]["details"] == "Value error. Details ID cannot be empty."


def test_other_subtype_through_model_run_route_is_validation_dump(api: Api, demo: SeedSummary) -> None:
    body = assert_soft_fetch_failure(typed_fetch(api, MODEL_RUN, first_study(demo)))
    details = body["status"]["details"]
    assert re.search(r"Error: \d+ validation errors? for ItemModelRun\n", details), details
    assert "(type=" in details


def test_model_run_through_study_route_is_validation_dump(api: Api, demo: SeedSummary) -> None:
    response = typed_fetch(api, STUDY, demo.notable["model run with annotations"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == FETCH_KEYS and body["item"] is None
    assert body["status"]["success"] is False
    assert re.search(r"Error: \d+ validation errors? for ItemStudy\n", body["status"]["details"])
    RegistryAPI.StudyFetchResponse.model_validate(body)


def test_unknown_id_on_general_fetch_keeps_null_item(api: Api) -> None:
    response = api.http.get(
        f"{api.registry}/registry/general/fetch", params={"id": "10378.1/nope"}, headers=api.auth()
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": {"success": False, "details": response.json()["status"]["details"]},
        "item": None,
    }
    RegistryAPI.UntypedFetchResponse.model_validate(response.json())


def test_successful_fetch_parses_in_v2(api: Api, demo: SeedSummary) -> None:
    """Control: the same model parses a real item, so the soft-failure checks are not vacuous."""
    response = typed_fetch(api, MODEL_RUN, demo.notable["model run with user_metadata"])
    parsed = RegistryAPI.ModelRunFetchResponse.model_validate(response.json())
    assert parsed.status.success is True
    assert parsed.item is not None and parsed.item.user_metadata
