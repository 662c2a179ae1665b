"""The writes apply makes, each as Provena's own admin scripts make it (contract sections 4.5, 4.10, 6.2,
6.3, 6.6). Only the model-run update is not idempotent (a second submission is a second job, with two more
history entries), so it alone is never retried blindly: the executor finds out what became of it."""

from __future__ import annotations

from typing import Any

from ProvenaInterfaces.ProvenanceAPI import (
    PostUpdateModelRunInput,
    PostUpdateModelRunResponse,
)
from ProvenaInterfaces.ProvenanceModels import ModelRunRecord
from ProvenaInterfaces.RegistryAPI import (
    AccessSettings,
    BundledItem,
    LockHistoryResponse,
    RegistryImportRequest,
    RegistryImportResponse,
)
from ProvenaInterfaces.RegistryModels import ItemModelRun
from ProvenaInterfaces.SharedTypes import ImportMode, StatusResponse

from provena_ops.provena.errors import ProvenaError
from provena_ops.provena.http import ProvenaHttp
from provena_ops.provena.prov import graph_delete
from provena_ops.provena.registry import SUBTYPE_ROUTES


async def submit_update(http: ProvenaHttp, model_run_id: str, reason: str, record: dict[str, Any]) -> str:
    """Submit a model-run edit; returns the job's session id. Provena validates the record first (a 400
    names the reference it rejects) and then does the work in a MODEL_RUN_UPDATE job."""
    body = PostUpdateModelRunInput(
        model_run_id=model_run_id, reason=reason, record=ModelRunRecord.model_validate(record)
    )
    parsed = await http.parsed(
        PostUpdateModelRunResponse,
        "prov",
        "POST",
        "/model_run/update",
        json=body.model_dump(mode="json", exclude_none=True),
        retry_safe=False,
    )
    return parsed.session_id


async def delete_graph(http: ProvenaHttp, model_run_id: str) -> dict[str, int]:
    """Remove a model run's provenance graph (the registry record stays). Repeating it changes nothing
    (a run without a graph gives an empty diff), so it is retried like a read."""
    return await graph_delete(http, model_run_id, trial=False)


async def delete_item(http: ProvenaHttp, subtype: str, item_id: str) -> None:
    """Registry admin delete. Provena checks no subtype, answers 400 for an unknown id and 401 for a locked
    one; a repeat after a lost answer is a 400, which the caller resolves by fetching."""
    parsed = await http.parsed(
        StatusResponse, "registry", "DELETE", f"{SUBTYPE_ROUTES[subtype]}/delete", params={"id": item_id}
    )
    if not parsed.status.success:
        raise ProvenaError(f"deleting {item_id} failed: {parsed.status.details}")


async def read_access(http: ProvenaHttp, subtype: str, item_id: str) -> dict[str, Any]:
    """The item's access settings (owner, general roles, group roles), journalled before a deletion so
    that undoing it restores who may see and change the record."""
    parsed = await http.parsed(
        AccessSettings,
        "registry",
        "GET",
        f"{SUBTYPE_ROUTES[subtype]}/auth/configuration",
        params={"id": item_id},
    )
    return parsed.model_dump(mode="json")


async def read_lock(http: ProvenaHttp, subtype: str, item_id: str, locked: bool) -> dict[str, Any]:
    """The item's lock information (state and history), journalled before a deletion, as the admin
    import takes it back (LockTableEntry.lock_information)."""
    parsed = await http.parsed(
        LockHistoryResponse,
        "registry",
        "GET",
        f"{SUBTYPE_ROUTES[subtype]}/locks/history",
        params={"id": item_id},
    )
    history = [event.model_dump(mode="json") for event in parsed.history]
    return {"locked": locked, "history": history}


async def import_items(http: ProvenaHttp, bundles: list[dict[str, Any]], mode: ImportMode) -> str:
    """Put items back with the registry admin import (contract 4.10): item, access settings and lock
    state exactly as given. Add-only for a deleted record (an id that exists makes the whole import
    fail, so a repeat after a lost answer writes nothing twice), overwrite-only to put fields back on
    one that exists (a repeat writes the same again): retried like a read. Trial mode is Provena's
    default; it is turned off explicitly. Returns Provena's words."""
    body = RegistryImportRequest(
        import_mode=mode,
        parse_items=True,
        allow_entry_deletion=False,
        trial_mode=False,
        items=[BundledItem.model_validate(bundle) for bundle in bundles],
    )
    parsed = await http.parsed(
        RegistryImportResponse,
        "registry",
        "POST",
        "/admin/import",
        json=body.model_dump(mode="json"),
        retry_safe=True,  # the same bundle twice writes it once: add-only refuses the repeat
    )
    if not parsed.status.success:
        failures = "; ".join(str(failure[0]) for failure in (parsed.failure_list or [])[:3])
        raise ProvenaError(
            f"Provena's import refused it: {parsed.status.details}" + (f" ({failures})" if failures else "")
        )
    return parsed.status.details or "imported"


async def relodge(http: ProvenaHttp, item: dict[str, Any]) -> None:
    """Rebuild a model run's graph from its registry record; additive, so safe to repeat."""
    parsed = await http.parsed(
        StatusResponse,
        "prov",
        "POST",
        "/admin/store_record",
        params={"validate_record": "true"},
        json=ItemModelRun.model_validate(item).model_dump(mode="json"),
    )
    if not parsed.status.success:
        raise ProvenaError(f"relodging {item.get('id')} failed: {parsed.status.details}")
