"""Registry admin import (contract 4.10): five modes, trial mode by default, parse checks, statistics.

Import writes the registry, auth and lock tables only; like Provena it never rebuilds the graph
(`sandbox load` relodges model runs afterwards when asked to).
"""

from __future__ import annotations

from typing import Any

from ProvenaInterfaces import RegistryAPI as api
from ProvenaInterfaces import RegistryModels as models
from ProvenaInterfaces.SharedTypes import ImportMode
from pydantic import ValidationError

from provena_ops.sandbox.context import Sandbox
from provena_ops.sandbox.http import status
from provena_ops.sandbox.items import SUBTYPES


def _parse_failure(bundle: api.BundledItem) -> str | None:
    payload = bundle.item_payload
    try:
        if payload.get("record_type") == "SEED_ITEM":
            models.SeededItem.model_validate(payload)
        else:
            info = SUBTYPES.get(str(payload.get("item_subtype")))
            if info is None:
                return f"Item {bundle.id} has unsupported subtype {payload.get('item_subtype')!r}."
            info.item_model.model_validate(payload)
        models.AuthTableEntry.model_validate(bundle.auth_payload)
        models.LockTableEntry.model_validate(bundle.lock_payload)
    except ValidationError as exc:
        return (
            f"Failed to parse item {bundle.id}: {exc.errors()[0].get('msg')} at {exc.errors()[0].get('loc')}"
        )
    if payload.get("id") != bundle.id:
        return f"Bundle id {bundle.id} does not match item payload id {payload.get('id')}."
    return None


def import_bundle(sandbox: Sandbox, request: api.RegistryImportRequest) -> dict[str, Any]:
    mode = request.import_mode
    prefix = "TRIAL: " if request.trial_mode else ""

    def failed(details: str, failures: list[tuple[str, dict[str, Any]]] | None = None) -> dict[str, Any]:
        return {
            "status": status(False, prefix + details),
            "trial_mode": request.trial_mode,
            "statistics": None,
            "failure_list": [[message, item] for message, item in failures] if failures else None,
        }

    if request.parse_items:
        failures = [
            (message, bundle.model_dump())
            for bundle in request.items
            if (message := _parse_failure(bundle)) is not None
        ]
        if failures:
            return failed(f"{len(failures)} item(s) failed to parse; nothing was imported.", failures)

    with sandbox.store.transaction():
        existing = set(sandbox.store.item_ids())
        incoming = {bundle.id for bundle in request.items}
        new_ids = incoming - existing
        overwritten = incoming & existing
        leftover = existing - incoming
        if mode is ImportMode.ADD_ONLY and overwritten:
            return failed(
                f"Mode {mode} forbids overwriting, but {len(overwritten)} id(s) already exist: "
                f"{', '.join(sorted(overwritten)[:10])}."
            )
        if mode is ImportMode.OVERWRITE_ONLY and new_ids:
            return failed(
                f"Mode {mode} only overwrites, but {len(new_ids)} id(s) do not exist: "
                f"{', '.join(sorted(new_ids)[:10])}."
            )
        if mode is ImportMode.SYNC_ADD_OR_OVERWRITE and leftover:
            return failed(
                f"Mode {mode} requires every registry id in the payload, but {len(leftover)} are "
                f"missing: {', '.join(sorted(leftover)[:10])}."
            )
        deleting = mode is ImportMode.SYNC_DELETION_ALLOWED and bool(leftover)
        if deleting and not request.allow_entry_deletion:
            return failed(
                f"Mode {mode} would delete {len(leftover)} entries, but allow_entry_deletion is false."
            )
        deleted = leftover if deleting else set()
        statistics = {
            "old_registry_size": len(existing),
            "new_registry_size": len(existing) + len(new_ids) - len(deleted),
            "deleted_entries": len(deleted),
            "overwritten_entries": len(overwritten),
            "new_entries": len(new_ids),
        }
        if not request.trial_mode:
            for bundle in request.items:
                sandbox.store.put_item(bundle.item_payload)
                sandbox.store.put_auth(bundle.auth_payload)
                sandbox.store.put_lock(bundle.lock_payload)
            for item_id in deleted:
                sandbox.store.delete_item(item_id)
    return {
        "status": status(True, f"{prefix}Successfully imported with mode: {mode}."),
        "trial_mode": request.trial_mode,
        "statistics": statistics,
        "failure_list": None,
    }
