"""A typed registry fetch as Provena's registry-api decides it, shared by the registry route and the
prov API's record validation (which reads every referenced entity through that route)."""

from __future__ import annotations

from typing import Any

from provena_ops.sandbox.context import Sandbox
from provena_ops.sandbox.http import provena_error, status, unauthorised
from provena_ops.sandbox.items import (
    READ_ROLES,
    SubtypeInfo,
    can,
    item_roles,
    key_error,
    no_lock_row,
    parsed_item,
    typed_view,
)
from provena_ops.sandbox.realm import Identity


def fetch_outcome(
    sandbox: Sandbox, identity: Identity, info: SubtypeInfo, item_id: str, seed_allowed: bool = False
) -> str | dict[str, Any]:
    """registry-api helpers/action_helpers.py `fetch_helper`, in its order: read, access, parse,
    seed, type, lock. A str is the soft failure's details; a dict the whole answer."""
    if not item_id:
        return "Value error. Details ID cannot be empty."
    stored = sandbox.store.get_item(item_id)
    if stored is None:
        return f"Could not find the given key ({item_id}) in the registry. Details {key_error(item_id)}."
    roles = item_roles(sandbox, identity, item_id, info.subtype)
    if not can(roles, READ_ROLES):
        raise unauthorised("You are not authorised to fetch this item.")
    is_seed = stored.get("record_type") == "SEED_ITEM"
    view: dict[str, Any] | None = None
    if not is_seed:
        view, dump = parsed_item(info, stored)
        if dump is not None:
            return (
                "The record was found but could not parsed as an appropriate type: Error The record was "
                f"marked as a COMPLETE_ITEM but could not be parsed as the correct model. Error: {dump}.."
            )
    if is_seed and not seed_allowed:
        return "A valid seed item was found, but seed_allowed was set to false."
    if stored.get("item_subtype") != info.subtype or stored.get("item_category") != info.category:
        raise provena_error(
            400,
            f"Item with id {item_id} did not have the correct category or subtype for the specified item "
            "type.",
        )
    lock = sandbox.store.get_lock(item_id)
    if lock is None:
        raise provena_error(400, f"Failed to check if locked. Error: {no_lock_row(item_id)}.")
    return {
        "status": status(
            True,
            f"Successfully retrieved {'seed' if is_seed else 'complete'} item and parsed into current "
            "data model.",
        ),
        "item": view if view is not None else typed_view(info, stored),
        "roles": roles,
        "locked": bool(lock["lock_information"]["locked"]),
        "item_is_seed": is_seed,
    }
