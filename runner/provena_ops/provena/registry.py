"""Registry API reads the planner needs: typed fetch (with the caller's roles and lock state), general
fetch (any subtype), and complete listings that follow pagination to the end. Every response is checked
against Provena's published models; the raw item is kept, so it can be fingerprinted exactly as read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from ProvenaInterfaces.RegistryAPI import (
    GenericFetchResponse,
    ModelRunFetchResponse,
    StudyFetchResponse,
    SubtypeListRequest,
    UntypedFetchResponse,
)
from ProvenaInterfaces.SharedTypes import Status
from pydantic import BaseModel, ConfigDict

from provena_ops.provena.errors import NotAuthorised, ProvenaError
from provena_ops.provena.http import ProvenaHttp

SUBTYPE_ROUTES = {
    "MODEL_RUN": "/registry/activity/model_run",
    "STUDY": "/registry/activity/study",
    "CREATE": "/registry/activity/create",
    "VERSION": "/registry/activity/version",
    "PERSON": "/registry/agent/person",
    "ORGANISATION": "/registry/agent/organisation",
    "MODEL": "/registry/entity/model",
    "MODEL_RUN_WORKFLOW_TEMPLATE": "/registry/entity/model_run_workflow",
    "DATASET_TEMPLATE": "/registry/entity/dataset_template",
    "DATASET": "/registry/entity/dataset",
}
FETCH_MODELS: dict[str, type[GenericFetchResponse]] = {
    "MODEL_RUN": ModelRunFetchResponse,
    "STUDY": StudyFetchResponse,
}
# Provena reads one DynamoDB page (at most 1 MB) per list call whatever the page size, so a larger page
# would not mean fewer round trips against a real deployment.
LIST_PAGE_SIZE = 100


@dataclass(frozen=True)
class Fetched:
    """A fetch: the item when found, with what the caller may do to it."""

    id: str
    item: dict[str, Any] | None
    roles: tuple[str, ...] = ()
    locked: bool = False
    problem: str | None = None  # Provena's words when not found, of another subtype, or unreadable
    unreadable: bool = False  # it exists, but the caller may not read it


@dataclass
class Listing:
    """Counts of a complete listing; the items themselves go to the caller page by page."""

    items: int = 0
    not_authorised: int = 0
    unparsable: int = 0


async def fetch(http: ProvenaHttp, subtype: str, item_id: str) -> Fetched:
    """Typed fetch; a missing or wrong-subtype record is `item=None` with Provena's reason."""
    try:
        parsed, raw = await http.parsed_with_raw(
            FETCH_MODELS[subtype],
            "registry",
            "GET",
            f"{SUBTYPE_ROUTES[subtype]}/fetch",
            params={"id": item_id, "seed_allowed": "false"},
        )
    except NotAuthorised as exc:
        if exc.item_unreadable:
            return _unreadable(http, item_id)
        raise
    if not parsed.status.success or raw.get("item") is None:
        return Fetched(item_id, None, problem=parsed.status.details or "not found")
    return Fetched(item_id, raw["item"], tuple(str(role) for role in parsed.roles or ()), bool(parsed.locked))


async def general_fetch(http: ProvenaHttp, item_id: str) -> Fetched:
    """Any item by id, whatever its subtype (`item=None` when it does not exist or cannot be read)."""
    try:
        parsed, raw = await http.parsed_with_raw(
            UntypedFetchResponse, "registry", "GET", "/registry/general/fetch", params={"id": item_id}
        )
    except NotAuthorised as exc:
        if exc.item_unreadable:
            return _unreadable(http, item_id)
        raise
    if not parsed.status.success or not isinstance(raw.get("item"), dict):
        return Fetched(item_id, None, problem=parsed.status.details or "not found")
    return Fetched(item_id, dict(raw["item"]))


def _unreadable(http: ProvenaHttp, item_id: str) -> Fetched:
    return Fetched(
        item_id,
        None,
        problem=f"{http.auth.username} may not read it (Provena answered 401: no read permission)",
        unreadable=True,
    )


class ListedRun(NamedTuple):
    """What a listing is read for: which run, its name (for selectors) and its study (for links)."""

    id: str
    display_name: str
    study_id: str | None


class _Slim(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _ListedRecord(_Slim):
    study_id: str | None = None


class _ListedItem(_Slim):
    id: str
    display_name: str
    record: _ListedRecord


class _ListPage(_Slim):
    """ModelRunListResponse, checked only as far as it is used: each page's items are summarised, and a
    run that is a target is fetched (and checked against ItemModelRun) on its own. Checking every
    listed item in full costs more CPU than the rest of reading the page."""

    status: Status
    items: list[_ListedItem] | None = None
    not_authorised_count: int | None = None
    unparsable_item_count: int | None = None
    pagination_key: dict[str, Any] | None = None


async def list_model_runs(http: ProvenaHttp, on_page: Callable[[list[ListedRun]], None]) -> Listing:
    """Every complete model run the caller can read, handed to `on_page` a page at a time (so 10,000
    full items are never held at once). Pages are followed until the key is null: a page can be short or
    empty while more remain."""
    listing = Listing()
    key: Any = None
    pages = 0
    while True:
        parsed = await http.parsed(
            _ListPage,
            "registry",
            "POST",
            f"{SUBTYPE_ROUTES['MODEL_RUN']}/list",
            json=SubtypeListRequest(pagination_key=key, page_size=LIST_PAGE_SIZE).model_dump(mode="json"),
        )
        page = [ListedRun(item.id, item.display_name, item.record.study_id) for item in parsed.items or []]
        listing.items += len(page)
        on_page(page)
        listing.not_authorised += parsed.not_authorised_count or 0
        listing.unparsable += parsed.unparsable_item_count or 0
        key = parsed.pagination_key
        pages += 1
        if key is None:
            return listing
        if pages > 100_000:
            raise ProvenaError(f"listing model runs in '{http.environment}' did not end after {pages} pages")
