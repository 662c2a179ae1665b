"""Registry typed and general lists: defaults, sorting, pagination, filters, permissions (contract 4.7)."""

from __future__ import annotations

import copy
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
DEMO_RUNS = 60


def studies(demo: SeedSummary) -> list[str]:
    """Seeded studies; owners alternate alice, bob, alice, ..."""
    return demo.notable["studies"].split(", ")


def list_request(api: Api, prefix: str, body: dict[str, Any] | None, user: str = "admin") -> httpx.Response:
    return api.http.post(f"{api.registry}{prefix}/list", json=body, headers=api.auth(user))


def list_page(api: Api, prefix: str, body: dict[str, Any] | None, user: str = "admin") -> dict[str, Any]:
    response = list_request(api, prefix, body, user)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def list_all(
    api: Api, prefix: str, body: dict[str, Any], user: str = "admin", max_pages: int = 100
) -> list[dict[str, Any]]:
    """Every page, following pagination_key until it is null, as provenaclient does."""
    pages: list[dict[str, Any]] = []
    key: dict[str, Any] | None = None
    for _ in range(max_pages):
        page = list_page(api, prefix, {**body, "pagination_key": key}, user)
        pages.append(page)
        key = page["pagination_key"]
        if key is None:
            return pages
    raise AssertionError(f"pagination did not end after {max_pages} pages")


def items_of(pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item for page in pages for item in page["items"]]


def set_general_roles(api: Api, item_id: str, owner: str, general: list[str]) -> None:
    response = api.http.put(
        f"{api.registry}{STUDY}/auth/configuration",
        params={"id": item_id},
        json={"owner": owner, "general": general, "groups": {}},
        headers=api.auth(owner),
    )
    assert response.status_code == 200, response.text


def add_model_run_payload(api: Api, payload: dict[str, Any]) -> None:
    """Write a raw model-run payload through admin import, skipping its parse check."""
    item_id = payload["id"]
    bundle = {
        "id": item_id,
        "item_payload": payload,
        "auth_payload": {"id": item_id, "access_settings": {"owner": "alice", "general": [], "groups": {}}},
        "lock_payload": {"id": item_id, "lock_information": {"locked": False, "history": []}},
    }
    response = api.http.post(
        f"{api.registry}/admin/import",
        json={"import_mode": "ADD_ONLY", "trial_mode": False, "parse_items": False, "items": [bundle]},
        headers=api.auth(),
    )
    assert response.json()["status"]["success"] is True, response.text


def add_seed_model_run(api: Api, item_id: str) -> None:
    # Updated later than every demo item, so it leads the default order.
    add_model_run_payload(
        api,
        {
            "id": item_id,
            "owner_username": "alice",
            "created_timestamp": 1_800_000_000,
            "updated_timestamp": 1_800_000_000,
            "item_category": "ACTIVITY",
            "item_subtype": "MODEL_RUN",
            "record_type": "SEED_ITEM",
            "workflow_links": None,
            "versioning_info": None,
        },
    )


def test_default_page_is_20_model_runs_newest_update_first(api: Api) -> None:
    # The body is required (422 without one, as FastAPI answers a missing required body); `{}` will do.
    assert list_request(api, MODEL_RUN, None).status_code == 422
    bodies: list[dict[str, Any]] = [{}, {"page_size": 20}]
    for body in bodies:
        page = list_page(api, MODEL_RUN, body)
        items = page["items"]
        assert len(items) == 20
        assert page["pagination_key"] is not None
        stamps = [item["updated_timestamp"] for item in items]
        assert stamps == sorted(stamps, reverse=True)

    everything = items_of(list_all(api, MODEL_RUN, {"page_size": 100}))
    newest = sorted(everything, key=lambda item: item["updated_timestamp"], reverse=True)[:20]
    assert [item["id"] for item in list_page(api, MODEL_RUN, {})["items"]] == [item["id"] for item in newest]


def test_default_order_follows_updates(api: Api, demo: SeedSummary) -> None:
    # An update bumps updated_timestamp, moving the study to the front of the default order.
    oldest = studies(demo)[0]
    assert list_page(api, STUDY, {})["items"][-1]["id"] == oldest
    response = api.http.put(
        f"{api.registry}{STUDY}/update",
        params={"id": oldest, "reason": "touch"},
        json={"display_name": "Touched", "title": "Touched", "description": "Touched."},
        headers=api.auth(),
    )
    assert response.status_code == 200
    assert list_page(api, STUDY, {})["items"][0]["id"] == oldest


@pytest.mark.parametrize("page_size", [7, 13, 1])
def test_pagination_collects_every_model_run_once(api: Api, page_size: int) -> None:
    pages = list_all(api, MODEL_RUN, {"page_size": page_size})
    ids = [item["id"] for item in items_of(pages)]
    assert len(ids) == DEMO_RUNS
    assert len(set(ids)) == DEMO_RUNS
    assert all(item["item_subtype"] == "MODEL_RUN" for item in items_of(pages))
    assert pages[-1]["pagination_key"] is None
    assert all(page["pagination_key"] is not None for page in pages[:-1])
    assert all(len(page["items"]) == page_size for page in pages[:-1])


@pytest.mark.parametrize("page_size", [20, 30, 60])
def test_page_ending_on_the_last_item_still_carries_a_key(api: Api, page_size: int) -> None:
    # DynamoDB behaviour: the last full page returns a key, and the next page is empty with a null key.
    pages = list_all(api, MODEL_RUN, {"page_size": page_size})
    assert len(pages) == DEMO_RUNS // page_size + 1
    assert pages[-2]["pagination_key"] is not None
    assert len(pages[-2]["items"]) == page_size
    assert pages[-1]["items"] == []
    assert pages[-1]["pagination_key"] is None
    assert len({item["id"] for item in items_of(pages)}) == DEMO_RUNS


def test_page_limit_applies_before_record_type_filtering(api: Api) -> None:
    # The seed run is first in the default order: the first one-item page is empty but has a key.
    seed_id = "10378.1/1799001"
    add_seed_model_run(api, seed_id)
    first = list_page(api, MODEL_RUN, {"page_size": 1})
    assert first["items"] == []
    assert first["seed_items"] == []
    assert first["pagination_key"] is not None
    second = list_page(api, MODEL_RUN, {"page_size": 1, "pagination_key": first["pagination_key"]})
    assert len(second["items"]) == 1
    assert second["items"][0]["id"] != seed_id
    assert len(items_of(list_all(api, MODEL_RUN, {"page_size": 1}))) == DEMO_RUNS


def test_unparsable_items_are_returned_and_flag_the_status(api: Api, demo: SeedSummary) -> None:
    broken = copy.deepcopy(list_page(api, MODEL_RUN, {})["items"][0])
    broken["id"] = "10378.1/1799002"
    del broken["record"]
    add_model_run_payload(api, broken)

    page = list_page(api, MODEL_RUN, {"page_size": 100})
    assert page["status"]["success"] is False
    assert [item["id"] for item in page["unparsable_items"]] == [broken["id"]]
    assert page["unparsable_item_count"] == 1
    assert len(page["items"]) == page["complete_item_count"] == DEMO_RUNS
    assert page["total_item_count"] == DEMO_RUNS + 1
    reg.ModelRunListResponse.model_validate(page)


def test_page_size_zero_is_the_dynamodb_500(api: Api) -> None:
    response = list_request(api, MODEL_RUN, {"page_size": 0})
    assert response.status_code == 500
    assert response.json()["detail"] == (
        "Failed to query the database. Error: Parameter validation failed:\n"
        "Invalid value for parameter Limit, value: 0, valid min value: 1"
    )


def test_record_type_filters(api: Api) -> None:
    seed_id = "10378.1/1799001"
    add_seed_model_run(api, seed_id)

    def listed(record_type: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"page_size": 100}
        if record_type is not None:
            body["filter_by"] = {"record_type": record_type}
        return list_page(api, MODEL_RUN, body)

    default, complete = listed(None), listed("COMPLETE_ONLY")
    for page in (default, complete):
        assert len(page["items"]) == DEMO_RUNS
        assert page["seed_items"] == []
        assert seed_id not in {item["id"] for item in page["items"]}

    seeds = listed("SEED_ONLY")
    assert seeds["items"] == []
    assert [item["id"] for item in seeds["seed_items"]] == [seed_id]
    assert seeds["seed_item_count"] == 1

    everything = listed("ALL")
    assert len(everything["items"]) == DEMO_RUNS
    assert [item["id"] for item in everything["seed_items"]] == [seed_id]
    assert everything["total_item_count"] == DEMO_RUNS + 1
    assert reg.ModelRunListResponse.model_validate(everything).seed_items is not None


@pytest.mark.parametrize(
    ("sort_type", "field"), [("DISPLAY_NAME", "display_name"), ("CREATED_TIME", "created_timestamp")]
)
@pytest.mark.parametrize("ascending", [True, False])
def test_sorting_across_pages(api: Api, sort_type: str, field: str, ascending: bool) -> None:
    sort = {"sort_type": sort_type, "ascending": ascending}
    items = items_of(list_all(api, MODEL_RUN, {"page_size": 11, "sort_by": sort}))
    values = [item[field] for item in items]
    assert len(values) == DEMO_RUNS
    assert values == sorted(values, reverse=not ascending)


def test_display_name_sort_differs_from_default_order(api: Api) -> None:
    # The seed's names cycle Reef/Catchment/Seagrass, so a name sort must reorder the default list.
    sort = {"sort_type": "DISPLAY_NAME", "ascending": True}
    by_name = list_page(api, MODEL_RUN, {"sort_by": sort})["items"]
    assert by_name[0]["display_name"].startswith("Catchment")
    default = list_page(api, MODEL_RUN, {})["items"]
    assert [i["id"] for i in by_name] != [i["id"] for i in default]


def test_unsupported_sort_is_400(api: Api) -> None:
    response = list_request(api, STUDY, {"sort_by": {"sort_type": "RELEASE_TIMESTAMP"}})
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail.startswith("Failed to generate query parameters")
    # The service runs Python 3.11: enums are named with their class prefix.
    assert "SortType.RELEASE_TIMESTAMP" in detail
    assert "FilterType.ITEM_SUBTYPE" in detail


def test_list_response_parses_and_counts_are_consistent(api: Api) -> None:
    page = list_page(api, MODEL_RUN, {"page_size": 25})
    parsed = reg.ModelRunListResponse.model_validate(page)
    assert parsed.status.success is True
    assert parsed.items is not None
    assert all(isinstance(item, models.ItemModelRun) for item in parsed.items)
    assert parsed.complete_item_count == len(parsed.items) == 25
    assert parsed.seed_item_count == 0
    assert parsed.unparsable_item_count == 0
    assert parsed.unparsable_items == []
    assert parsed.not_authorised_count == 0
    assert parsed.total_item_count == (
        parsed.complete_item_count + parsed.seed_item_count + parsed.unparsable_item_count
    )


def test_subtype_list_ignores_general_filter_fields(api: Api) -> None:
    # provenaclient sends a GeneralListRequest; item_subtype is ignored by a typed list.
    page = list_page(api, MODEL_RUN, {"filter_by": {"record_type": "COMPLETE_ONLY", "item_subtype": "STUDY"}})
    assert len(page["items"]) == 20
    assert {item["item_subtype"] for item in page["items"]} == {"MODEL_RUN"}


def test_listing_skips_items_the_caller_cannot_read(api: Api, demo: SeedSummary) -> None:
    bobs_study = studies(demo)[1]
    set_general_roles(api, bobs_study, "bob", [])

    for user, visible, hidden in (("alice", 4, 1), ("reader", 4, 1), ("bob", 5, 0), ("admin", 5, 0)):
        page = list_page(api, STUDY, {}, user=user)
        ids = [item["id"] for item in page["items"]]
        assert len(ids) == visible, user
        assert (bobs_study in ids) is (hidden == 0), user
        assert page["not_authorised_count"] == hidden, user
        assert page["complete_item_count"] == visible, user
        reg.StudyListResponse.model_validate(page)

    # The general list drops them silently too.
    general = api.http.post(
        f"{api.registry}/registry/general/list",
        json={"filter_by": {"item_subtype": "STUDY"}},
        headers=api.auth("alice"),
    ).json()
    assert bobs_study not in {item["id"] for item in general["items"]}
    assert len(general["items"]) == 4


def test_general_list_returns_raw_dicts_of_the_filtered_subtype(api: Api, demo: SeedSummary) -> None:
    response = api.http.post(
        f"{api.registry}/registry/general/list",
        json={"filter_by": {"item_subtype": "STUDY"}},
        headers=api.auth(),
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"]["success"] is True
    assert set(body) == {"status", "items", "total_item_count", "pagination_key"}
    assert sorted(item["id"] for item in body["items"]) == sorted(studies(demo))
    for item in body["items"]:
        assert item["item_subtype"] == "STUDY"
        assert "universal_partition_key" not in item
        typed = api.http.get(
            f"{api.registry}{STUDY}/fetch", params={"id": item["id"]}, headers=api.auth()
        ).json()["item"]
        assert item == without_nulls(typed)  # raw: as stored, without the nulls
    parsed = reg.PaginatedListResponse.model_validate(body)
    assert parsed.total_item_count == len(studies(demo))


def test_general_list_paginates_over_every_item(api: Api, demo: SeedSummary) -> None:
    pages = list_all(api, "/registry/general", {"page_size": 25})
    ids = [item["id"] for item in items_of(pages)]
    assert len(ids) == len(set(ids)) == sum(demo.counts.values())
    assert {item["item_subtype"] for item in items_of(pages)} >= {"PERSON", "STUDY", "MODEL_RUN", "CREATE"}
