"""Registry listing with DynamoDB-like pagination (contract 4.7).

The page limit is applied before record-type and permission filtering, exactly like Provena's
query on its DynamoDB index: a page can be short or empty while the key is non-null, and a page
that ends exactly on the last item still carries a key. Clients must loop until the key is null.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from ProvenaInterfaces import RegistryAPI as api
from pydantic import ValidationError

from provena_ops.sandbox.context import Sandbox
from provena_ops.sandbox.http import provena_error, status
from provena_ops.sandbox.items import READ_ROLES, SubtypeInfo, can, item_roles, typed_view
from provena_ops.sandbox.realm import Identity

SORT_COLUMNS = {
    None: ("updated_ts", "updated_timestamp"),
    api.SortType.UPDATED_TIME: ("updated_ts", "updated_timestamp"),
    api.SortType.CREATED_TIME: ("created_ts", "created_timestamp"),
    api.SortType.DISPLAY_NAME: ("display_name", "display_name"),
}


def _sort(
    request: api.SubtypeListRequest | api.GeneralListRequest, subtype: str | None
) -> tuple[str, str, bool]:
    """The index Provena would query (registry-api helpers/dynamo_helpers.py); a filter and sort pair
    with no index is its 400, naming both as Python 3.11 renders the enums."""
    sort = request.sort_by
    sort_type = sort.sort_type if sort is not None else None
    if sort_type not in SORT_COLUMNS:
        filter_type = "FilterType.ITEM_SUBTYPE" if subtype else "None"
        sort_text = f"SortType.{api.SortType(sort_type).name}" if sort_type is not None else "None"
        raise provena_error(
            400,
            "Failed to generate query parameters. Error: Could not derive an index name for filter type "
            f"{filter_type} and sort type {sort_text}. If attempting to sort items by some field belonging "
            "to only particular item subtypes, ensure to provide the item subtype filter to access its "
            "index, or utilise the specific list routes for the item subtype.",
        )
    column, key_field = SORT_COLUMNS[sort_type]
    return column, key_field, bool(sort.ascending) if sort is not None else False


def _cursor(key: dict[str, Any] | None, key_field: str) -> tuple[Any, str] | None:
    """Where the page starts. A key that is not one the index returned is DynamoDB's ValidationException,
    which registry-api's query_dbb (helpers/dynamo_helpers.py) turns into a 500 quoting it."""
    if key is None:
        return None
    if not isinstance(key.get("id"), str) or key_field not in key:
        raise provena_error(
            500,
            "Failed to query the database. Error: An error occurred (ValidationException) when calling "
            "the Query operation: The provided starting key is invalid: The provided key element does not "
            "match the schema",
        )
    return (key[key_field], key["id"])


def list_page(
    sandbox: Sandbox,
    identity: Identity,
    request: api.SubtypeListRequest | api.GeneralListRequest,
    info: SubtypeInfo | None,
) -> JSONResponse:
    if request.page_size < 1:
        raise provena_error(
            500,
            "Failed to query the database. Error: Parameter validation failed:\nInvalid value for parameter "
            f"Limit, value: {request.page_size}, valid min value: 1",
        )
    subtype = info.subtype if info else None
    record_type = "COMPLETE_ONLY"
    if isinstance(request, api.GeneralListRequest) and request.filter_by is not None:
        if request.filter_by.item_subtype is not None:
            subtype = request.filter_by.item_subtype.value
        record_type = api.QueryRecordTypes(request.filter_by.record_type).value
    elif isinstance(request, api.SubtypeListRequest) and request.filter_by is not None:
        record_type = api.QueryRecordTypes(request.filter_by.record_type).value
    column, key_field, ascending = _sort(request, subtype)
    raw = sandbox.store.page_items(
        subtype, column, ascending, _cursor(request.pagination_key, key_field), request.page_size
    )
    next_key: dict[str, Any] | None = None
    if len(raw) == request.page_size:
        last = raw[-1]
        # DynamoDB's LastEvaluatedKey on a GSI: the table key and the index's partition and sort keys.
        partition = {"item_subtype": subtype} if subtype else {"universal_partition_key": "OK"}
        next_key = {"id": last["id"], **partition, key_field: last.get(key_field)}

    wanted = [item for item in raw if _record_type_matches(item, record_type)]
    readable = [
        item
        for item in wanted
        if can(item_roles(sandbox, identity, item["id"], item["item_subtype"]), READ_ROLES)
    ]
    not_authorised = len(wanted) - len(readable)
    if info is None:
        return JSONResponse(
            {
                "status": status(True, "Searched database and returned items matching query."),
                "items": readable,
                "total_item_count": len(readable),
                "pagination_key": next_key,
            }
        )

    complete: list[dict[str, Any]] = []
    seeds: list[dict[str, Any]] = []
    unparsable: list[dict[str, Any]] = []
    for item in readable:
        if item["record_type"] == "SEED_ITEM":
            seeds.append(typed_view(info, item))
            continue
        try:
            complete.append(typed_view(info, item))
        except ValidationError:
            unparsable.append(item)
    # Provena's precedence slip: `"Successfully listed items." + "" if not warning else " WARNING..."`.
    ok = not unparsable
    warning = " WARNING at least one unparsable entity exists in the registry."
    details = "Successfully listed items." if ok else warning
    return JSONResponse(
        {
            "status": status(ok, details),
            "items": complete,
            "seed_items": seeds,
            "unparsable_items": unparsable,
            "total_item_count": len(readable),
            "complete_item_count": len(complete),
            "seed_item_count": len(seeds),
            "unparsable_item_count": len(unparsable),
            "not_authorised_count": not_authorised,
            "pagination_key": next_key,
        }
    )


def _record_type_matches(item: dict[str, Any], record_type: str) -> bool:
    if record_type == "ALL":
        return True
    wanted = "SEED_ITEM" if record_type == "SEED_ONLY" else "COMPLETE_ITEM"
    return bool(item["record_type"] == wanted)
