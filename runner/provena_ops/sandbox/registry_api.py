"""Registry API routes (contract section 4): typed and general fetch/list, update, revert, locks,
admin delete, export and import."""

import json
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from ProvenaInterfaces import RegistryAPI as api
from ProvenaInterfaces.SharedTypes import StatusResponse

from provena_ops.sandbox.context import Sandbox
from provena_ops.sandbox.http import (
    add_check_access_routes,
    install_error_handlers,
    provena_error,
    require_roles,
    soft_failure,
    status,
    unauthorised,
)
from provena_ops.sandbox.importer import import_bundle
from provena_ops.sandbox.items import (
    ADMIN_ITEM_ROLES,
    READ_ROLES,
    SUBTYPES,
    WRITE_ROLES,
    ActionSet,
    SoftFailure,
    SubtypeInfo,
    available_roles,
    can,
    check_lock,
    is_locked,
    item_roles,
    lock_change,
    parse_dump,
    write_update,
)
from provena_ops.sandbox.listing import list_page
from provena_ops.sandbox.realm import REGISTRY_ADMIN, REGISTRY_READ, REGISTRY_WRITE, Identity

READ = require_roles(REGISTRY_READ)
WRITE = require_roles(REGISTRY_READ, REGISTRY_WRITE)
ADMIN = require_roles(REGISTRY_READ, REGISTRY_WRITE, REGISTRY_ADMIN)


def sandbox_of(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


def not_found(item_id: str) -> str:
    return f"Could not find the given key ({item_id}) in the registry."


def typed_fetch(
    sandbox: Sandbox, identity: Identity, info: SubtypeInfo, item_id: str, seed_allowed: bool
) -> Response:
    empty: dict[str, Any] = {"item": None, "roles": None, "locked": None, "item_is_seed": None}
    if not item_id:
        return soft_failure("Value error. Details ID cannot be empty.", **empty)
    stored = sandbox.store.get_item_text(item_id)
    if stored is None:
        return soft_failure(not_found(item_id), **empty)
    subtype, record_type, text = stored
    is_seed = record_type == "SEED_ITEM"
    if is_seed and subtype != info.subtype:
        if seed_allowed:
            raise provena_error(
                400,
                f"Item with id {item_id} did not have the correct category or subtype. "
                f"Expected {info.category}/{info.subtype}.",
            )
        return soft_failure(f"Item with id {item_id} is a seed item and seed_allowed is false.", **empty)
    if is_seed and not seed_allowed:
        return soft_failure(f"Item with id {item_id} is a seed item and seed_allowed is false.", **empty)
    if not is_seed and subtype != info.subtype:
        dump = parse_dump(info.item_model, json.loads(text)) or (
            f"1 validation error for {info.item_model.__name__}\nitem_subtype\n  unexpected value; "
            f"permitted: <ItemSubType.{info.subtype}: '{info.subtype}'> (type=value_error.const; given="
            f"{subtype}; permitted=(<ItemSubType.{info.subtype}: '{info.subtype}'>,))"
        )
        return soft_failure(dump, **empty)
    roles = item_roles(sandbox, identity, item_id, subtype)
    if not can(roles, READ_ROLES):
        raise unauthorised("You are not authorised to fetch this item.")
    rest = json.dumps({"roles": roles, "locked": is_locked(sandbox, item_id), "item_is_seed": is_seed})
    return raw_json(f'{{"status":{FETCHED},"item":{text},{rest[1:]}')


FETCHED = json.dumps(status(True, "Successfully fetched item."))


def raw_json(text: str) -> Response:
    """A JSON response from text already serialised (stored items are valid JSON as written)."""
    return Response(text.encode(), media_type="application/json")


def add_typed_routes(router: APIRouter, info: SubtypeInfo) -> None:
    prefix = info.prefix

    @router.get(f"{prefix}/fetch", response_model=info.fetch_response, name=f"{info.subtype}.fetch")
    async def fetch(
        request: Request, id: str = Query(...), seed_allowed: bool = False, identity: Identity = Depends(READ)
    ) -> Response:
        return typed_fetch(sandbox_of(request), identity, info, id, seed_allowed)

    @router.post(f"{prefix}/list", response_model=info.list_response, name=f"{info.subtype}.list")
    async def list_items(
        request: Request, body: api.SubtypeListRequest | None = None, identity: Identity = Depends(READ)
    ) -> JSONResponse:
        return list_page(sandbox_of(request), identity, body or api.SubtypeListRequest(), info)

    @router.delete(f"{prefix}/delete", response_model=StatusResponse, name=f"{info.subtype}.delete")
    async def delete(
        request: Request, id: str = Query(...), identity: Identity = Depends(ADMIN)
    ) -> JSONResponse:
        return admin_delete(sandbox_of(request), id)

    @router.get(f"{prefix}/locks/history", response_model=api.LockHistoryResponse)
    async def lock_history(
        request: Request, id: str = Query(...), identity: Identity = Depends(READ)
    ) -> JSONResponse:
        sandbox = sandbox_of(request)
        item, entry = sandbox.store.get_item(id), sandbox.store.get_lock(id)
        if item is None or entry is None:
            raise provena_error(400, f"Could not find the given key ({id}) in the lock table.")
        if not can(item_roles(sandbox, identity, id, item["item_subtype"]), READ_ROLES):
            raise unauthorised("You are not authorised to view the lock history of this item.")
        # `locked` rides along because provenaclient's get_lock_status reads this route (a client bug).
        return JSONResponse(
            {
                "status": status(True, "Successfully retrieved lock history."),
                "history": entry["lock_information"]["history"],
                "locked": bool(entry["lock_information"]["locked"]),
            }
        )

    @router.get(f"{prefix}/locks/locked", response_model=api.LockStatusResponse)
    async def lock_status(
        request: Request, id: str = Query(...), identity: Identity = Depends(READ)
    ) -> JSONResponse:
        sandbox = sandbox_of(request)
        item = sandbox.store.get_item(id)
        if item is None or sandbox.store.get_lock(id) is None:
            raise provena_error(400, f"Could not find the given key ({id}) in the lock table.")
        if not can(item_roles(sandbox, identity, id, item["item_subtype"]), READ_ROLES):
            raise unauthorised("You are not authorised to view the lock status of this item.")
        return JSONResponse({"locked": is_locked(sandbox, id)})

    for action, lock in (("lock", True), ("unlock", False)):

        def make(lock: bool = lock) -> Any:
            async def change(
                request: Request, body: api.LockChangeRequest, identity: Identity = Depends(WRITE)
            ) -> JSONResponse:
                sandbox = sandbox_of(request)
                with sandbox.store.transaction():
                    message = lock_change(sandbox, identity, info, body.id, body.reason, lock)
                return JSONResponse({"status": status(True, message)})

            return change

        router.put(
            f"{prefix}/locks/{action}", response_model=StatusResponse, name=f"{info.subtype}.{action}"
        )(make())

    @router.get(f"{prefix}/auth/evaluate", response_model=api.DescribeAccessResponse)
    async def evaluate(
        request: Request, id: str = Query(...), identity: Identity = Depends(READ)
    ) -> JSONResponse:
        sandbox = sandbox_of(request)
        item = sandbox.store.get_item(id)
        if item is None:
            raise provena_error(400, not_found(id))
        return JSONResponse({"roles": item_roles(sandbox, identity, id, item["item_subtype"])})

    @router.get(f"{prefix}/auth/configuration", response_model=api.AccessSettings)
    async def auth_configuration(
        request: Request, id: str = Query(...), identity: Identity = Depends(READ)
    ) -> JSONResponse:
        sandbox = sandbox_of(request)
        item, auth = sandbox.store.get_item(id), sandbox.store.get_auth(id)
        if item is None or auth is None:
            raise provena_error(400, not_found(id))
        if not can(item_roles(sandbox, identity, id, item["item_subtype"]), ADMIN_ITEM_ROLES):
            raise unauthorised("You are not authorised to view the access settings of this item.")
        return JSONResponse(auth["access_settings"])

    @router.put(f"{prefix}/auth/configuration", response_model=StatusResponse)
    async def set_auth_configuration(
        request: Request, body: api.AccessSettings, id: str = Query(...), identity: Identity = Depends(WRITE)
    ) -> JSONResponse:
        sandbox = sandbox_of(request)
        with sandbox.store.transaction():
            item = sandbox.store.get_item(id)
            if item is None:
                raise provena_error(400, not_found(id))
            if not can(item_roles(sandbox, identity, id, item["item_subtype"]), ADMIN_ITEM_ROLES):
                raise unauthorised("You are not authorised to change the access settings of this item.")
            sandbox.store.put_auth({"id": id, "access_settings": body.model_dump(mode="json")})
        return JSONResponse({"status": status(True, "Successfully updated access settings.")})

    @router.get(f"{prefix}/auth/roles", response_model=api.AuthRolesResponse)
    async def roles(identity: Identity = Depends(READ)) -> JSONResponse:
        described = [api.ROLE_METADATA_MAP[r].model_dump() for r in available_roles(info.subtype)]
        return JSONResponse({"roles": described})

    if info.actions is not ActionSet.STANDARD:
        return

    domain_model = info.domain_model  # the body model differs per subtype

    @router.put(f"{prefix}/update", response_model=api.UpdateResponse, name=f"{info.subtype}.update")
    async def update(
        request: Request,
        body: domain_model,  # type: ignore[valid-type]
        id: str = Query(...),
        reason: str | None = None,
        identity: Identity = Depends(WRITE),
    ) -> JSONResponse:
        sandbox = sandbox_of(request)
        try:
            with sandbox.store.transaction():
                update_standard(sandbox, identity, info, id, body.model_dump(mode="json"), reason)  # type: ignore[attr-defined]
        except SoftFailure as failure:
            return soft_failure(failure.details, register_create_activity_session_id=None)
        return JSONResponse(
            {
                "status": status(True, "Successfully updated item."),
                "register_create_activity_session_id": None,
            }
        )

    @router.put(f"{prefix}/revert", response_model=api.ItemRevertResponse, name=f"{info.subtype}.revert")
    async def revert(
        request: Request, body: api.ItemRevertRequest, identity: Identity = Depends(WRITE)
    ) -> JSONResponse:
        sandbox = sandbox_of(request)
        with sandbox.store.transaction():
            revert_item(sandbox, identity, info, body)
        return JSONResponse({"status": status(True, "Successfully reverted item.")})


def validate_domain(info: SubtypeInfo, sandbox: Sandbox, domain: dict[str, Any]) -> None:
    """The custom validators some subtypes have; failures are soft (HTTP 200, success=false)."""
    if info.subtype == "PERSON" and not domain.get("ethics_approved"):
        raise SoftFailure(
            "Validation failed: You cannot register a Person without ethics approval "
            "(ethics_approved must be true)."
        )
    if info.subtype == "MODEL_RUN_WORKFLOW_TEMPLATE":
        model = sandbox.store.get_item(str(domain.get("software_id")))
        if model is None or model["item_subtype"] != "MODEL" or model["record_type"] != "COMPLETE_ITEM":
            raise SoftFailure(
                f"Validation failed: software_id {domain.get('software_id')} is not a complete "
                "MODEL in the registry."
            )
        for template in [*domain.get("input_templates", []), *domain.get("output_templates", [])]:
            found = sandbox.store.get_item(template["template_id"])
            if found is None or found["item_subtype"] != "DATASET_TEMPLATE":
                raise SoftFailure(
                    f"Validation failed: template {template['template_id']} is not a "
                    "DATASET_TEMPLATE in the registry."
                )


def update_standard(
    sandbox: Sandbox,
    identity: Identity,
    info: SubtypeInfo,
    item_id: str,
    domain: dict[str, Any],
    reason: str | None,
) -> None:
    """Provena's check order for STANDARD updates (contract 4.4)."""
    validate_domain(info, sandbox, domain)
    check_lock(sandbox, item_id)
    existing = sandbox.store.get_item(item_id)
    if existing is None:
        raise provena_error(400, not_found(item_id))
    if existing["item_subtype"] != info.subtype:
        if existing["record_type"] == "SEED_ITEM":
            raise SoftFailure("The existing item is a valid item, but has a different subtype or category.")
        raise provena_error(
            500,
            f"Item with id {item_id} is neither a seed item nor a valid entry. Not sure "
            "how to handle this item. Aborting.",
        )
    if not can(item_roles(sandbox, identity, item_id, info.subtype), WRITE_ROLES):
        raise unauthorised("You are not authorised to update this item.")
    if existing["record_type"] == "COMPLETE_ITEM" and not reason:
        raise provena_error(400, "Cannot update a complete item without providing a reason for the update.")
    write_update(sandbox, info, existing, domain, reason or "Initial record creation", identity.username)


def revert_item(sandbox: Sandbox, identity: Identity, info: SubtypeInfo, body: api.ItemRevertRequest) -> None:
    check_lock(sandbox, body.id)
    existing = sandbox.store.get_item(body.id)
    if existing is None:
        raise provena_error(400, not_found(body.id))
    if existing["record_type"] == "SEED_ITEM":
        raise provena_error(400, "Cannot revert a seed item.")
    if existing["item_subtype"] != info.subtype:
        raise provena_error(400, parse_dump(info.item_model, existing) or "Item has a different subtype.")
    if not can(item_roles(sandbox, identity, body.id, info.subtype), WRITE_ROLES):
        raise unauthorised("You are not authorised to revert this item.")
    entry = next((h for h in existing["history"] if int(h["id"]) == body.history_id), None)
    if entry is None:
        raise provena_error(
            400,
            f"Cannot revert to history entry with id {body.history_id} as it does not "
            "exist in the item's history.",
        )
    write_update(
        sandbox,
        info,
        existing,
        entry["item"],
        f"(Restoring to v{body.history_id}) {body.reason}",
        identity.username,
    )


def admin_delete(sandbox: Sandbox, item_id: str) -> JSONResponse:
    """No subtype check, no cascade, never touches the graph (contract 4.5)."""
    if item_id in sandbox.faults.fail_registry_delete_for:
        raise provena_error(500, f"Failed to delete item {item_id}: injected fault.")
    with sandbox.store.transaction():
        check_lock(sandbox, item_id)
        sandbox.store.delete_item(item_id)
    return JSONResponse({"status": status(True, "Item deleted.")})


def build_registry_app() -> FastAPI:
    app = FastAPI(title="Provena Registry API (sandbox)")
    install_error_handlers(app)
    router = APIRouter()

    @router.get("/")
    async def health() -> dict[str, str]:
        return {"message": "Health check successful."}

    for info in SUBTYPES.values():
        add_typed_routes(router, info)

    @router.get("/registry/general/fetch", response_model=api.UntypedFetchResponse)
    async def general_fetch(
        request: Request, id: str = Query(...), identity: Identity = Depends(READ)
    ) -> Response:
        sandbox = sandbox_of(request)
        stored = sandbox.store.get_item_text(id)
        if stored is None:
            return soft_failure(not_found(id), item=None)
        subtype, _, text = stored
        if not can(item_roles(sandbox, identity, id, subtype), READ_ROLES):
            raise unauthorised("You are not authorised to fetch this item.")
        # The raw stored dict plus DynamoDB's partition key, which general list and export strip.
        return raw_json(f'{{"status":{FETCHED},"item":{text[:-1]},"universal_partition_key":"OK"}}}}')

    @router.post("/registry/general/list", response_model=api.PaginatedListResponse)
    async def general_list(
        request: Request, body: api.GeneralListRequest | None = None, identity: Identity = Depends(READ)
    ) -> JSONResponse:
        return list_page(sandbox_of(request), identity, body or api.GeneralListRequest(), None)

    @router.delete("/registry/general/delete", include_in_schema=False)
    async def general_delete(
        request: Request, id: str = Query(...), identity: Identity = Depends(ADMIN)
    ) -> JSONResponse:
        return admin_delete(sandbox_of(request), id)

    @router.get("/registry/general/about/version")
    async def version(identity: Identity = Depends(READ)) -> dict[str, Any]:
        return {
            "commit_id": None,
            "commit_url": None,
            "tag_name": "sandbox",
            "release_title": "provena-ops sandbox",
            "release_url": None,
        }

    @router.get("/admin/export", response_model=api.RegistryExportResponse)
    async def export(request: Request, identity: Identity = Depends(ADMIN)) -> JSONResponse:
        sandbox = sandbox_of(request)
        bundles = [
            {
                "id": item["id"],
                "item_payload": item,
                "auth_payload": sandbox.store.get_auth(item["id"]) or {},
                "lock_payload": sandbox.store.get_lock(item["id"]) or {},
            }
            for item in sandbox.store.all_items()
        ]
        return JSONResponse({"status": status(True, f"Exported {len(bundles)} items."), "items": bundles})

    @router.post("/admin/import", response_model=api.RegistryImportResponse)
    async def import_items(
        request: Request, body: api.RegistryImportRequest, identity: Identity = Depends(ADMIN)
    ) -> JSONResponse:
        return JSONResponse(import_bundle(sandbox_of(request), body))

    add_check_access_routes(router, READ, WRITE, ADMIN)

    app.include_router(router)
    return app
