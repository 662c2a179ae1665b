"""Registry API reads the planner needs: typed fetch (with the caller's roles and lock state), general
fetch (any subtype), and complete listings that follow pagination to the end."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ProvenaError
from .http import ProvenaHttp

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
LIST_PAGE_SIZE = 100


@dataclass(frozen=True)
class Fetched:
    """A typed fetch: the item when found, with what the caller may do to it."""

    id: str
    item: dict[str, Any] | None
    roles: tuple[str, ...] = ()
    locked: bool = False
    problem: str | None = None  # Provena's soft-failure text when not found or of another subtype


@dataclass
class Listing:
    """Counts of a complete listing; the items themselves go to the caller page by page."""

    items: int = 0
    not_authorised: int = 0
    unparsable: int = 0


async def fetch(http: ProvenaHttp, subtype: str, item_id: str) -> Fetched:
    """Typed fetch; a missing or wrong-subtype record is `item=None` with Provena's reason."""
    body = await http.json(
        "registry", "GET", f"{SUBTYPE_ROUTES[subtype]}/fetch", params={"id": item_id, "seed_allowed": "false"}
    )
    status = body.get("status") or {}
    if not status.get("success"):
        return Fetched(item_id, None, problem=str(status.get("details", "not found")))
    return Fetched(
        item_id,
        body.get("item"),
        tuple(body.get("roles") or ()),
        bool(body.get("locked")),
    )


async def general_fetch(http: ProvenaHttp, item_id: str) -> dict[str, Any] | None:
    """Any item by id, whatever its subtype (None when it does not exist)."""
    body = await http.json("registry", "GET", "/registry/general/fetch", params={"id": item_id})
    status = body.get("status") or {}
    if not status.get("success"):
        return None
    item = body.get("item")
    return dict(item) if isinstance(item, dict) else None


async def list_all(
    http: ProvenaHttp, subtype: str, on_page: Callable[[list[dict[str, Any]]], None]
) -> Listing:
    """Every complete item of a subtype the caller can read, handed to `on_page` a page at a time (so
    10,000 full items are never held at once). Pages are followed until the key is null: a page can be
    short or empty while more remain."""
    listing = Listing()
    key: Any = None
    pages = 0
    while True:
        body = await http.json(
            "registry",
            "POST",
            f"{SUBTYPE_ROUTES[subtype]}/list",
            json={"filter_by": None, "sort_by": None, "pagination_key": key, "page_size": LIST_PAGE_SIZE},
        )
        page = body.get("items") or []
        listing.items += len(page)
        on_page(page)
        listing.not_authorised += int(body.get("not_authorised_count") or 0)
        listing.unparsable += int(body.get("unparsable_item_count") or 0)
        key = body.get("pagination_key")
        pages += 1
        if key is None:
            return listing
        if pages > 100_000:
            raise ProvenaError(f"listing {subtype} did not end after {pages} pages")
