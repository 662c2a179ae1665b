"""Registry API routes (contract section 4): typed and general fetch/list, update, revert, locks,
admin delete, export and import."""

import json
import re
from importlib import resources
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from ProvenaInterfaces import RegistryAPI as api
from ProvenaInterfaces.SharedTypes import StatusResponse

from provena_ops.sandbox.auth_api import require_link
from provena_ops.sandbox.context import Sandbox
from provena_ops.sandbox.fetching import fetch_outcome
from provena_ops.sandbox.http import (
    InternalError,
    Pydantic1BodyRoute,
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
    check_raw_item_subtype,
    enum_text,
    item_roles,
    key_error,
    lock_change,
    no_lock_row,
    v1_item_dump,
    write_update,
)
from provena_ops.sandbox.listing import list_page
from provena_ops.sandbox.realm import REGISTRY_ADMIN, REGISTRY_READ, REGISTRY_WRITE, Identity

# registry-api main.py route configs: `enforce_username_person_link` (not person, organisation, model run).
LINKED_SUBTYPES = frozenset({"STUDY", "MODEL", "MODEL_RUN_WORKFLOW_TEMPLATE", "DATASET_TEMPLATE", "DATASET"})
READ = require_roles(REGISTRY_READ)
WRITE = require_roles(REGISTRY_READ, REGISTRY_WRITE)
ADMIN = require_roles(REGISTRY_READ, REGISTRY_WRITE, REGISTRY_ADMIN)


def sandbox_of(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


def not_found(item_id: str) -> str:
    """The soft failure of update and revert for an id with a lock row but no item."""
    return f"Could not find the given key ({item_id}) in the registry."


def not_present(item_id: str) -> str:
    """describe_access_helper's 400 (registry-api helpers/action_helpers.py)."""
    return f"Item (id={item_id!r}) was not present in the registry. Are you sure the id is correct?"


def typed_fetch(
    sandbox: Sandbox, identity: Identity, info: SubtypeInfo, item_id: str, seed_allowed: bool
) -> Response:
    empty: dict[str, Any] = {"item": None, "roles": None, "locked": None, "item_is_seed": None}
    outcome = fetch_outcome(sandbox, identity, info, item_id, seed_allowed)
    if isinstance(outcome, str):
        return soft_failure(outcome, **empty)
    return JSONResponse(outcome)


GENERAL_FETCHED = json.dumps(status(True, "Successfully retrieved item from the registry."))


def raw_json(text: str) -> Response:
    """A JSON response from text already serialised (stored items are valid JSON as written)."""
    return Response(text.encode(), media_type="application/json")


DOMAIN_SCHEMAS: dict[str, Any] = json.loads(
    resources.files("provena_ops.sandbox").joinpath("data/domain_schemas.json").read_text()
)["schemas"]
"""pydantic 1's schemas of the domain models, as registry-api generates them (see the file's `_how`)."""


def add_typed_routes(router: APIRouter, info: SubtypeInfo) -> None:
    prefix = info.prefix

    @router.get(f"{prefix}/fetch", response_model=info.fetch_response, name=f"{info.subtype}.fetch")
    async def fetch(
        request: Request, id: str = Query(...), seed_allowed: bool = False, identity: Identity = Depends(READ)
    ) -> Response:
        return typed_fetch(sandbox_of(request), identity, info, id, seed_allowed)

    @router.post(f"{prefix}/list", response_model=info.list_response, name=f"{info.subtype}.list")
    async def list_items(
        request: Request, body: api.SubtypeListRequest, identity: Identity = Depends(READ)
    ) -> JSONResponse:
        return list_page(sandbox_of(request), identity, body, info)

    @router.delete(
        f"{prefix}/delete",
        response_model=StatusResponse,
        name=f"{info.subtype}.delete",
        include_in_schema=False,
    )
    async def delete(
        request: Request, id: str = Query(...), identity: Identity = Depends(ADMIN)
    ) -> JSONResponse:
        return admin_delete(sandbox_of(request), id)

    @router.get(f"{prefix}/locks/history", response_model=api.LockHistoryResponse)
    async def lock_history(
        request: Request, id: str = Query(...), identity: Identity = Depends(READ)
    ) -> JSONResponse:
        """lock_history_route_helper: no existence or subtype check; history oldest first."""
        entry = readable_lock_entry(sandbox_of(request), identity, info, id)
        history = [api.LockEvent.model_validate(event).model_dump(mode="json") for event in entry["history"]]
        return JSONResponse(
            {"status": status(True, "Successfully fetched the lock history"), "history": history}
        )

    @router.get(f"{prefix}/locks/locked", response_model=api.LockStatusResponse)
    async def lock_status(
        request: Request, id: str = Query(...), identity: Identity = Depends(READ)
    ) -> JSONResponse:
        entry = readable_lock_entry(sandbox_of(request), identity, info, id)
        return JSONResponse({"locked": bool(entry["locked"])})

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
        if not id:
            raise provena_error(500, "Unexpected error occurred while trying to fetch item.")
        if sandbox.store.get_item(id) is None:
            raise provena_error(400, not_present(id))
        return JSONResponse({"roles": item_roles(sandbox, identity, id, info.subtype)})

    @router.get(f"{prefix}/auth/configuration", response_model=api.AccessSettings)
    async def auth_configuration(
        request: Request, id: str = Query(...), identity: Identity = Depends(READ)
    ) -> JSONResponse:
        sandbox = sandbox_of(request)
        settings = access_settings_for(sandbox, identity, info, id, "view")
        return JSONResponse(api.AccessSettings.model_validate(settings).model_dump(mode="json"))

    @router.put(f"{prefix}/auth/configuration", response_model=StatusResponse)
    async def set_auth_configuration(
        request: Request, body: api.AccessSettings, id: str = Query(...), identity: Identity = Depends(WRITE)
    ) -> JSONResponse:
        sandbox = sandbox_of(request)
        with sandbox.store.transaction():
            old = access_settings_for(sandbox, identity, info, id, "edit")
            if body.owner != old.get("owner"):
                raise provena_error(
                    400,
                    f"The owner of a resource cannot be changed. Old: {old.get('owner')}, New: {body.owner}.",
                )
            offered = set(body.general).union(*body.groups.values())
            invalid = offered - set(available_roles(info.subtype))
            if invalid:
                raise provena_error(
                    400,
                    "Inappropriate roles are being added to the role configuration - ensure these roles are "
                    f"available for the resource type. Invalid roles: {invalid}. Available roles: "
                    f"{set(available_roles(info.subtype))}.",
                )
            sandbox.store.put_auth(
                {"id": id, "access_settings": body.model_dump(mode="json", exclude_none=True)}
            )
        return JSONResponse(
            {
                "status": status(
                    True, f"Successfully updated the authorisation configuration for item id={id!r}."
                )
            }
        )

    @router.get(f"{prefix}/auth/roles", response_model=api.AuthRolesResponse)
    async def roles(identity: Identity = Depends(READ)) -> JSONResponse:
        described = [api.ROLE_METADATA_MAP[r].model_dump() for r in available_roles(info.subtype)]
        return JSONResponse({"roles": described})

    domain_model = info.domain_model  # the body model differs per subtype

    @router.get(f"{prefix}/schema", response_model=api.JsonSchemaResponse, name=f"{info.subtype}.schema")
    async def schema(identity: Identity = Depends(READ)) -> JSONResponse:
        return JSONResponse(
            {
                "status": status(True, "Successfully returned autogenerated pydantic model json schema."),
                "json_schema": DOMAIN_SCHEMAS[info.subtype],
            }
        )

    @router.get(f"{prefix}/ui_schema", response_model=api.UiSchemaResponse, name=f"{info.subtype}.ui_schema")
    async def ui_schema(identity: Identity = Depends(READ)) -> JSONResponse:
        """Provena answers its web UI's rendering hints here; the sandbox has none to give."""
        return JSONResponse({"status": status(True, "Delivered UI Schema successfully"), "ui_schema": {}})

    @router.post(f"{prefix}/validate", response_model=StatusResponse, name=f"{info.subtype}.validate")
    async def validate(
        request: Request,
        body: domain_model,  # type: ignore[valid-type]
        identity: Identity = Depends(READ),
    ) -> JSONResponse:
        try:
            validate_domain(info, sandbox_of(request), body.model_dump(mode="json"))  # type: ignore[attr-defined]
        except SoftFailure as failure:
            return soft_failure(failure.details)
        return JSONResponse({"status": status(True, "Validation successful.")})

    if info.actions is not ActionSet.STANDARD:
        return

    @router.put(f"{prefix}/update", response_model=api.UpdateResponse, name=f"{info.subtype}.update")
    async def update(
        request: Request,
        body: domain_model,  # type: ignore[valid-type]
        id: str = Query(...),
        reason: str | None = None,
        identity: Identity = Depends(WRITE),
    ) -> JSONResponse:
        sandbox = sandbox_of(request)
        if info.subtype in LINKED_SUBTYPES:
            require_link(sandbox, identity)
        try:
            with sandbox.store.transaction():
                domain = body.model_dump(mode="json")  # type: ignore[attr-defined]
                details = update_standard(sandbox, identity, info, id, domain, reason)
        except SoftFailure as failure:
            return soft_failure(failure.details, register_create_activity_session_id=None)
        return JSONResponse({"status": status(True, details), "register_create_activity_session_id": None})

    @router.put(f"{prefix}/revert", response_model=api.ItemRevertResponse, name=f"{info.subtype}.revert")
    async def revert(
        request: Request, body: api.ItemRevertRequest, identity: Identity = Depends(WRITE)
    ) -> JSONResponse:
        sandbox = sandbox_of(request)
        if info.subtype in LINKED_SUBTYPES:
            require_link(sandbox, identity)
        try:
            with sandbox.store.transaction():
                revert_item(sandbox, identity, info, body)
        except SoftFailure as failure:
            return soft_failure(failure.details)
        return JSONResponse(
            {"status": status(True, f"Successfully reverted item {body.id} to v{body.history_id}.")}
        )


def readable_lock_entry(
    sandbox: Sandbox, identity: Identity, info: SubtypeInfo, item_id: str
) -> dict[str, Any]:
    """The lock information behind lock history and lock status, for a caller who may read the item."""
    entry = sandbox.store.get_lock(item_id)
    if entry is None:
        raise provena_error(400, no_lock_row(item_id))
    if not can(item_roles(sandbox, identity, item_id, info.subtype), READ_ROLES):
        # Provena's lock status route reuses the lock history text.
        raise unauthorised("You are not authorised to view the lock history of this item.")
    information: dict[str, Any] = entry["lock_information"]
    return information


def access_settings_for(
    sandbox: Sandbox, identity: Identity, info: SubtypeInfo, item_id: str, verb: str
) -> dict[str, Any]:
    """get_and_check_access_settings_helper / check_and_update_access_settings_helper: the item,
    its auth row, the caller's item admin role, then the route's subtype."""
    item = sandbox.store.get_item(item_id)
    if item is None:
        raise provena_error(400, not_present(item_id))
    auth = sandbox.store.get_auth(item_id)
    if auth is None:
        raise provena_error(
            500,
            f"The specified item (id={item_id!r}) is missing an authorisation configuration. No access "
            "granted.",
        )
    if not can(item_roles(sandbox, identity, item_id, info.subtype), ADMIN_ITEM_ROLES):
        raise unauthorised(
            f"You are not authorised to {verb} the access configuration for item id={item_id!r}."
        )
    check_raw_item_subtype(info, item_id, item)
    settings: dict[str, Any] = auth["access_settings"]
    return settings


def _validation_targets(info: SubtypeInfo, domain: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The items a domain body must name (registry-api helpers/type_validators.py): id, the name its
    errors use, and the subtype it must be."""
    if info.subtype == "MODEL_RUN_WORKFLOW_TEMPLATE":
        templates = [*domain.get("input_templates", []), *domain.get("output_templates", [])]
        return [(str(domain.get("software_id")), "Software ID", "MODEL")] + [
            (str(t["template_id"]), "Dataset Template", "DATASET_TEMPLATE") for t in templates
        ]
    if info.subtype == "DATASET":
        collection = domain.get("collection_format") or {}
        associations, dataset_info = (
            collection.get("associations") or {},
            collection.get("dataset_info") or {},
        )
        targets = [
            (str(associations.get("organisation_id")), "Author Organisation ID", "ORGANISATION"),
            (str(dataset_info.get("publisher_id")), "Dataset Publisher Organisation ID", "ORGANISATION"),
        ]
        if associations.get("data_custodian_id") is not None:
            targets.append((str(associations["data_custodian_id"]), "Data Custodian ID", "PERSON"))
        return targets
    return []


_EWKT = re.compile(r"SRID=(?P<srid>\d+);(?P<geometry>.+)")


def validate_domain(info: SubtypeInfo, sandbox: Sandbox, domain: dict[str, Any]) -> None:
    """The custom validators (registry-api helpers/type_validators.py); failures are soft: HTTP 200,
    success=false, `Validation Error: {e}`. STUDY has none: a bad study body is a 422."""
    if info.subtype == "PERSON" and not domain.get("ethics_approved"):
        raise SoftFailure(
            "Validation Error: Please ensure mandatory ethics consent is obtained before proceeding with "
            "registration or updating of person."
        )
    for target_id, name, subtype in _validation_targets(info, domain):
        found = sandbox.store.get_item(target_id)
        if found is None:
            problem = f"Could not find {name} with ID {target_id} in registry. Please ensure it exists."
        elif found.get("record_type") == "SEED_ITEM":
            problem = (
                f"Seed items ({target_id}) are not allowed to be used in this type. Use complete items only"
            )
        elif found.get("item_subtype") != subtype:
            problem = (
                f"Mismatch between expected item types. Please ensure {target_id} refers to a "
                f"{enum_text('ItemSubType', subtype)}."
            )
        else:
            continue
        raise SoftFailure(f"Validation Error: {problem}")
    if info.subtype == "DATASET":
        dataset_info = (domain.get("collection_format") or {}).get("dataset_info") or {}
        spatial = dataset_info.get("spatial_info") or {}
        for ewkt in (spatial.get("coverage"), spatial.get("extent")):
            if ewkt is not None and _EWKT.match(str(ewkt)) is None:
                raise SoftFailure(
                    "Validation Error: Invalid EWKT format recieved. Please use the E-WKT standard of: "
                    "'SRID=<SRID>;<WKT Formatted Geometry>'. Where the SRID is an integer number."
                )


def existing_of_type(sandbox: Sandbox, info: SubtypeInfo, item_id: str, mismatch: str) -> dict[str, Any]:
    """`retrieve_and_type_item`: a complete item of another subtype does not parse (500); a seed of
    another subtype parses but is the wrong type (soft failure with `mismatch`)."""
    existing = sandbox.store.get_item(item_id)
    if existing is None:
        raise SoftFailure(not_found(item_id))
    if existing.get("record_type") == "SEED_ITEM":
        if existing.get("item_subtype") != info.subtype:
            raise SoftFailure(mismatch)
        return existing
    if v1_item_dump(info, existing) is not None:
        raise provena_error(
            500,
            f"Item with id {item_id} is neither a seed item nor a valid entry. Not sure how to handle this "
            "item. Aborting.",
        )
    return existing


def update_standard(
    sandbox: Sandbox,
    identity: Identity,
    info: SubtypeInfo,
    item_id: str,
    domain: dict[str, Any],
    reason: str | None,
) -> str:
    """update_item (registry-api helpers/action_helpers.py), in its order of checks; returns the
    success details."""
    validate_domain(info, sandbox, domain)
    check_lock(sandbox, item_id)
    existing = existing_of_type(
        sandbox, info, item_id, "The existing item is a valid item, but has a different subtype or category."
    )
    if not can(item_roles(sandbox, identity, item_id, info.subtype), WRITE_ROLES):
        raise unauthorised(f"You are not authorised to edit the item (id={item_id!r}).")
    is_seed = existing["record_type"] == "SEED_ITEM"
    if not is_seed and reason is None:
        raise provena_error(
            400,
            f"Cannot update item {item_id} as no reason was provided and this item is not a seed item. "
            "Please provide a reason for this update.",
        )
    write_update(sandbox, info, existing, domain, reason or "Initial record creation", identity.username)
    if is_seed:
        return "Successfully applied update. Seeded item was updated to a complete item."
    return "Successfully applied update. Complete item had it's contents updated."


def revert_item(sandbox: Sandbox, identity: Identity, info: SubtypeInfo, body: api.ItemRevertRequest) -> None:
    """revert_item_helper (registry-api helpers/action_helpers.py), in its order of checks."""
    check_lock(sandbox, body.id)
    if sandbox.store.get_item(body.id) is None:
        raise SoftFailure(not_found(body.id))
    if not can(item_roles(sandbox, identity, body.id, info.subtype), WRITE_ROLES):
        raise unauthorised(f"You are not authorised to edit the item (id={body.id!r}).")
    existing = existing_of_type(
        sandbox,
        info,
        body.id,
        "The existing item is a valid item, but has a different subtype or category than the specified "
        "subroute. Ensure the item is the correct type.",
    )
    if existing["record_type"] == "SEED_ITEM":
        raise provena_error(
            400,
            f"You cannot revert a seed item to a previous version. The item with id {body.id} is not a "
            "complete item.",
        )
    entry = next((h for h in existing.get("history") or [] if int(h["id"]) == body.history_id), None)
    if entry is None:
        raise provena_error(
            400,
            f"The item with id {body.id} does not have a history entry with id matching {body.history_id}. "
            "No action taken.",
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
        raise provena_error(
            500, f"Failed to delete from the resource table, exception: injected fault ({item_id})."
        )
    with sandbox.store.transaction():
        check_lock(sandbox, item_id)
        sandbox.store.delete_item(item_id)
    return JSONResponse({"status": status(True, "Item deleted.")})


def build_registry_app() -> FastAPI:
    app = FastAPI(title="Provena Registry API (sandbox)")
    install_error_handlers(app)
    router = APIRouter(route_class=Pydantic1BodyRoute)

    @router.get("/")
    async def health() -> dict[str, str]:
        return {"message": "Health check successful."}

    for info in SUBTYPES.values():
        add_typed_routes(router, info)

    @router.get("/registry/general/fetch", response_model=api.UntypedFetchResponse)
    async def general_fetch(
        request: Request, id: str = Query(...), identity: Identity = Depends(READ)
    ) -> Response:
        """registry-api routes/registry_general/registry_general.py: the raw stored dict, with
        DynamoDB's partition key (general list and export strip it); an empty id is uncaught."""
        sandbox = sandbox_of(request)
        if not id:
            raise InternalError("ValueError: ID cannot be empty")
        stored = sandbox.store.get_item_text(id)
        if stored is None:
            return soft_failure(
                f"The id you specified was not available in the registry, error: {key_error(id)}.", item=None
            )
        subtype, _, text = stored
        if not can(item_roles(sandbox, identity, id, subtype), READ_ROLES):
            raise unauthorised("You are not authorised to fetch this item.")
        return raw_json(f'{{"status":{GENERAL_FETCHED},"item":{text[:-1]},"universal_partition_key":"OK"}}}}')

    @router.post("/registry/general/list", response_model=api.PaginatedListResponse)
    async def general_list(
        request: Request, body: api.GeneralListRequest, identity: Identity = Depends(READ)
    ) -> JSONResponse:
        return list_page(sandbox_of(request), identity, body, None)

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
        return JSONResponse(
            {"status": status(True, f"Successfully exported {len(bundles)} items."), "items": bundles}
        )

    @router.post("/admin/import", response_model=api.RegistryImportResponse)
    async def import_items(
        request: Request, body: api.RegistryImportRequest, identity: Identity = Depends(ADMIN)
    ) -> JSONResponse:
        return JSONResponse(import_bundle(sandbox_of(request), body))

    add_check_access_routes(router, READ, WRITE, ADMIN)

    app.include_router(router)
    return app
