"""Registry admin import (contract 4.10), as registry-api routes/admin/import_export_restore.py and
helpers/admin_helpers.py answer it: parse checks, then the mode's validation, then statistics; each
failure is listed as `[reason, bundle]`, and nothing is written in trial mode (the default).

Import writes the registry, auth and lock tables only; like Provena it never rebuilds the graph
(`sandbox load` relodges model runs afterwards when asked to).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ProvenaInterfaces import RegistryAPI as api
from ProvenaInterfaces import RegistryModels as models
from ProvenaInterfaces.SharedTypes import ImportMode
from pydantic import ValidationError

from provena_ops.sandbox.context import Sandbox
from provena_ops.sandbox.http import status, v1_dump
from provena_ops.sandbox.items import SUBTYPES, v1_item_dump

Failure = tuple[str, dict[str, Any]]


def _parse_failure(bundle: api.BundledItem) -> str | None:
    """import_parsed's checks, the first failure winning: the item, then its lock, then its auth."""
    payload = bundle.item_payload
    try:
        models.RecordInfo.model_validate(payload)
    except ValidationError as exc:
        dump = v1_dump(models.RecordInfo, [dict(e) for e in exc.errors()])
        return f"Could not parse registry item as Record Info: {dump}"
    if payload.get("record_type") != "SEED_ITEM":
        info = SUBTYPES.get(str(payload.get("item_subtype")))
        if info is None or info.category != payload.get("item_category"):
            return (
                "The item could be parsed as a record but had a category/subtype combination that was "
                "not known."
            )
        mismatch = v1_item_dump(info, payload)
        if mismatch is not None:
            return f"Could not parse registry item as it's matched type: {mismatch}"
    try:
        models.LockTableEntry.model_validate(bundle.lock_payload)
    except ValidationError:
        return "Failed to parse the lock payload of item as a LockTableEntry."
    try:
        models.AuthTableEntry.model_validate(bundle.auth_payload)
    except ValidationError:
        return "Failed to parse the auth payload of item as a AuthTableEntry."
    return None


def _bundle_of(sandbox: Sandbox, item_id: str) -> dict[str, Any]:
    """An existing entry as export bundles it."""
    return {
        "id": item_id,
        "item_payload": sandbox.store.get_item(item_id) or {},
        "auth_payload": sandbox.store.get_auth(item_id) or {},
        "lock_payload": sandbox.store.get_lock(item_id) or {},
    }


SYNC_MODES = (ImportMode.SYNC_ADD_OR_OVERWRITE, ImportMode.SYNC_DELETION_ALLOWED)


@dataclass(frozen=True)
class _Held:
    """What the registry holds, as far as an import's mode needs it. Provena scans the whole table; the
    sandbox looks up the incoming ids by key unless a sync mode needs every id (an undo imports one run
    at a time: a scan per import made undoing 10,000 deletions quadratic)."""

    size: int  # entries now
    present: set[str]  # the incoming ids it holds
    missing: list[str]  # sync modes: the ids it holds that the import does not give, in id order


def _held(sandbox: Sandbox, mode: ImportMode, incoming: dict[str, dict[str, Any]]) -> _Held:
    if mode in SYNC_MODES:
        existing = sandbox.store.item_ids()
        present = set(incoming).intersection(existing)
        return _Held(len(existing), present, [key for key in existing if key not in incoming])
    return _Held(sandbox.store.count_items(), sandbox.store.present_ids(incoming), [])


def _mode_failures(
    sandbox: Sandbox, request: api.RegistryImportRequest, incoming: dict[str, dict[str, Any]], held: _Held
) -> list[Failure]:
    """The import mode's validator: which entries it refuses, with the bundle each is about."""
    mode, present, missing = request.import_mode, held.present, held.missing
    if mode is ImportMode.ADD_ONLY:
        return [
            (f"Overlapping item on add only mode {key}", item)
            for key, item in incoming.items()
            if key in present
        ]
    if mode is ImportMode.OVERWRITE_ONLY:
        return [
            (f"Item {key} does not already exist", item)
            for key, item in incoming.items()
            if key not in present
        ]
    if mode is ImportMode.SYNC_ADD_OR_OVERWRITE:
        return [
            (f"Item {key} currently exists but not provided in update", _bundle_of(sandbox, key))
            for key in missing
        ]
    if mode is ImportMode.SYNC_DELETION_ALLOWED and not request.allow_entry_deletion:
        return [
            (f"Item {key} will be deleted but deletion not explicitly enabled", _bundle_of(sandbox, key))
            for key in missing
        ]
    return []


def _statistics(mode: ImportMode, held: _Held, new: set[str]) -> dict[str, int]:
    """Provena's figures per mode (admin_helpers.py), the same in trial and real mode."""
    size, both = held.size, held.present
    added = len(new) - len(both)
    if mode is ImportMode.ADD_ONLY:
        return _figures(size, size + len(new), 0, 0, len(new))
    if mode is ImportMode.OVERWRITE_ONLY:
        return _figures(size, size, 0, len(new), 0)
    if mode is ImportMode.SYNC_DELETION_ALLOWED:
        return _figures(size, len(new), len(held.missing), len(both), added)
    return _figures(size, size + added, 0, len(both), added)


def _figures(old_size: int, new_size: int, deleted: int, overwritten: int, new: int) -> dict[str, int]:
    return {
        "old_registry_size": old_size,
        "new_registry_size": new_size,
        "deleted_entries": deleted,
        "overwritten_entries": overwritten,
        "new_entries": new,
    }


def import_bundle(sandbox: Sandbox, request: api.RegistryImportRequest) -> dict[str, Any]:
    mode = request.import_mode

    def failed(details: str, failures: list[Failure]) -> dict[str, Any]:
        return {
            "status": status(False, details),
            "trial_mode": request.trial_mode,
            "statistics": None,
            "failure_list": [[reason, bundle] for reason, bundle in failures],
        }

    if request.parse_items:
        parse_failures = [
            (reason, bundle.model_dump(mode="json"))
            for bundle in request.items
            if (reason := _parse_failure(bundle)) is not None
        ]
        if parse_failures:
            return failed(
                f"There were {len(parse_failures)} items with parsing issues! See failure list.",
                parse_failures,
            )

    with sandbox.store.transaction():
        incoming = {bundle.id: bundle.model_dump(mode="json") for bundle in request.items}  # later ones win
        held = _held(sandbox, mode, incoming)
        mode_failures = _mode_failures(sandbox, request, incoming, held)
        if mode_failures:
            return failed(
                "There were errors during validation of the import mode, see the failure list.", mode_failures
            )
        statistics = _statistics(mode, held, set(incoming))
        if not request.trial_mode:
            for bundle in incoming.values():
                sandbox.store.put_item(bundle["item_payload"])
                sandbox.store.put_lock(bundle["lock_payload"])
                sandbox.store.put_auth(bundle["auth_payload"])
            if mode is ImportMode.SYNC_DELETION_ALLOWED:
                for item_id in held.missing:
                    sandbox.store.delete_item(item_id)
    prefix = "TRIAL: " if request.trial_mode else ""
    return {
        "status": status(True, f"{prefix}Successfully imported with mode: ImportMode.{mode.name}."),
        "trial_mode": request.trial_mode,
        "statistics": statistics,
        "failure_list": None,
    }
