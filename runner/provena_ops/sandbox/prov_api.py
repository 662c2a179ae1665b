"""Prov API routes (contract section 6): model-run update/delete/link, explore, admin relodge."""

from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from ProvenaInterfaces import ProvenanceAPI as prov
from ProvenaInterfaces import RegistryModels as models
from ProvenaInterfaces.ProvenanceModels import ModelRunRecord
from ProvenaInterfaces.SharedTypes import StatusResponse
from pydantic import ValidationError

from provena_ops.sandbox.context import Sandbox
from provena_ops.sandbox.graph import diff_to_json
from provena_ops.sandbox.http import (
    Pydantic1BodyRoute,
    add_check_access_routes,
    install_error_handlers,
    provena_error,
    require_roles,
    status,
)
from provena_ops.sandbox.items import LOCKED, SUBTYPES, WRITE_ROLES, can, item_roles, write_update
from provena_ops.sandbox.jobs import encode_user, launch_job
from provena_ops.sandbox.provenance import (
    VALIDATION_PREFIX,
    RecordInvalid,
    delete_diff,
    explore,
    merge_additively,
    validate_record,
)
from provena_ops.sandbox.realm import REGISTRY_ADMIN, REGISTRY_READ, REGISTRY_WRITE, Identity

READ = require_roles(REGISTRY_READ)
WRITE = require_roles(REGISTRY_READ, REGISTRY_WRITE)
ADMIN = require_roles(REGISTRY_READ, REGISTRY_WRITE, REGISTRY_ADMIN)
MAX_DEPTH = 10


def sandbox_of(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


def _validate_or_400(sandbox: Sandbox, record: ModelRunRecord, identity: Identity | None) -> None:
    try:
        validate_record(sandbox, record, identity)
    except RecordInvalid as exc:
        message = exc.message if exc.direct else f"{VALIDATION_PREFIX}{exc.message}."
        raise provena_error(400, message) from exc


def _model_run_or_none(sandbox: Sandbox, run_id: str) -> tuple[dict[str, Any] | None, str]:
    item = sandbox.store.get_item(run_id)
    if item is None:
        return None, f"Could not find the given key ({run_id}) in the registry."
    if item["record_type"] != "COMPLETE_ITEM":
        return None, f"Item with id {run_id} is a seed item."
    if item["item_subtype"] != "MODEL_RUN":
        return None, f"Item with id {run_id} is a {item['item_subtype']}, not a MODEL_RUN."
    return item, ""


def _relodge(sandbox: Sandbox, item: models.ItemModelRun, validate: bool, identity: Identity) -> None:
    if validate:
        _validate_or_400(sandbox, item.record, identity)
    try:
        merge_additively(sandbox, item.id, item.record)
    except RecordInvalid as exc:
        raise provena_error(400, exc.message) from exc


def build_prov_app() -> FastAPI:
    app = FastAPI(title="Provena Prov API (sandbox)")
    install_error_handlers(app)
    router = APIRouter(route_class=Pydantic1BodyRoute)

    @router.get("/")
    async def health() -> dict[str, str]:
        return {"message": "Health check successful."}

    @router.post("/model_run/update", response_model=prov.PostUpdateModelRunResponse)
    async def update(
        request: Request, body: prov.PostUpdateModelRunInput, identity: Identity = Depends(WRITE)
    ) -> JSONResponse:
        sandbox = sandbox_of(request)
        _validate_or_400(sandbox, body.record, identity)
        payload = {
            "model_run_record_id": body.model_run_id,
            "updated_record": body.record.model_dump(mode="json", exclude_none=True),
            "reason": body.reason,
            "revalidate": True,
            "user_info": encode_user(identity),
        }
        session_id = launch_job(sandbox, identity.username, "PROV_LODGE", "MODEL_RUN_UPDATE", payload)
        return JSONResponse({"session_id": session_id})

    @router.post("/model_run/delete", response_model=prov.PostDeleteGraphResponse, include_in_schema=False)
    async def delete(
        request: Request, body: prov.PostDeleteGraphRequest, identity: Identity = Depends(ADMIN)
    ) -> Response:
        sandbox = sandbox_of(request)
        item, problem = _model_run_or_none(sandbox, body.record_id)
        if item is None:
            raise provena_error(
                400,
                "Exception: could not delete model run as error occurred when fetching the "
                f"record from the registry: {problem}",
            )
        if body.trial_mode:  # a read: no write lock, and the graph's shared tags come from the cache
            with sandbox.store.snapshot():
                actions = delete_diff(sandbox, body.record_id)
        else:
            with sandbox.store.transaction():
                actions = delete_diff(sandbox, body.record_id)
                sandbox.store.apply_diff(actions)
        return Response(diff_to_json(actions), media_type="application/json")

    @router.post("/model_run/edit/link_to_study", response_model=prov.AddStudyLinkResponse)
    async def link_to_study(
        request: Request,
        model_run_id: str = Query(...),
        study_id: str = Query(...),
        identity: Identity = Depends(WRITE),
    ) -> JSONResponse:
        sandbox = sandbox_of(request)
        item, problem = _model_run_or_none(sandbox, model_run_id)
        if item is None:
            raise provena_error(400, f"Invalid model run id {model_run_id}: {problem}")
        study = sandbox.store.get_item(study_id)
        if study is None or study["item_subtype"] != "STUDY" or study["record_type"] != "COMPLETE_ITEM":
            raise provena_error(400, f"Invalid study id {study_id}: not a complete study in the registry.")
        if item["record"].get("study_id"):
            raise provena_error(
                400,
                f"Cannot link to another study: model run {model_run_id} is already linked "
                f"to study {item['record']['study_id']}.",
            )
        lock = sandbox.store.get_lock(model_run_id)
        if lock and lock["lock_information"]["locked"]:
            raise provena_error(401, LOCKED)
        if not can(item_roles(sandbox, identity, model_run_id, "MODEL_RUN"), WRITE_ROLES):
            raise provena_error(401, "You are not authorised to update this item.")
        record = dict(item["record"], study_id=study_id)
        info = SUBTYPES["MODEL_RUN"]
        domain = {
            key: item.get(key)
            for key in ("display_name", "user_metadata", "record_status", "prov_serialisation")
        }
        with sandbox.store.transaction():
            write_update(
                sandbox,
                info,
                item,
                {**domain, "record": record},
                "Linking model run to study.",
                identity.username,
            )
        session_id = launch_job(
            sandbox,
            identity.username,
            "PROV_LODGE",
            "MODEL_RUN_LODGE_ONLY",
            {"model_run_record_id": model_run_id, "record": record, "user_info": encode_user(identity)},
        )
        return JSONResponse(
            {
                "status": status(
                    True,
                    # (sic) prov-api routes/model_run/model_run.py
                    "Succesfully linked model run and study together in the registry and lodged a job for "
                    "the provenance graph update with given session ID.",
                ),
                "model_run_id": model_run_id,
                "study_id": study_id,
                "session_id": session_id,
            }
        )

    for direction in ("upstream", "downstream"):

        def make(upstream: bool = direction == "upstream") -> Any:
            async def lineage(
                request: Request,
                starting_id: str = Query(...),
                depth: int | None = None,
                identity: Identity = Depends(READ),
            ) -> JSONResponse:
                sandbox = sandbox_of(request)
                depth = depth or 2
                if depth > MAX_DEPTH:
                    raise provena_error(400, f"Depth provided is in excess of depth maximum: {MAX_DEPTH}.")
                if sandbox.store.get_item(starting_id) is None:
                    # prov-api helpers/entity_validators.py unknown_validator: a backslash line
                    # continuation keeps the next line's 16 spaces, and the error is never filled in.
                    raise provena_error(
                        500,
                        f"The provided id {starting_id} was not a valid registry{' ' * 16}item. Error from "
                        "registry lookup: .",
                    )
                graph = explore(sandbox, starting_id, depth, upstream)
                kind = "lineage" if upstream else "downstream"
                return JSONResponse(
                    {
                        "status": status(True, f"Made {kind} query (with depth {depth}) to neo4j backend."),
                        "record_count": len(graph["nodes"]),
                        "graph": graph,
                    }
                )

            return lineage

        router.get(f"/explore/{direction}", response_model=prov.LineageResponse)(make())

    @router.post("/admin/store_record", response_model=StatusResponse)
    async def store_record(
        request: Request,
        body: models.ItemModelRun,
        validate_record: bool = True,
        identity: Identity = Depends(ADMIN),
    ) -> JSONResponse:
        _relodge(sandbox_of(request), body, validate_record, identity)
        return JSONResponse({"status": status(True, "Successfully re-lodged item.")})

    @router.post("/admin/store_records", response_model=StatusResponse)
    async def store_records(
        request: Request,
        body: list[models.ItemModelRun],
        validate_record: bool = True,
        identity: Identity = Depends(ADMIN),
    ) -> JSONResponse:
        for item in body:
            _relodge(sandbox_of(request), item, validate_record, identity)
        return JSONResponse({"status": status(True, "Successfully re-lodged all of the provenance records.")})

    @router.post("/admin/store_all_registry_records", response_model=StatusResponse)
    async def store_all(
        request: Request, validate_record: bool = True, identity: Identity = Depends(ADMIN)
    ) -> JSONResponse:
        sandbox = sandbox_of(request)
        count = 0
        for raw in sandbox.store.items_of_subtype("MODEL_RUN"):
            if raw["record_type"] != "COMPLETE_ITEM":
                continue
            try:
                item = models.ItemModelRun.model_validate(raw)
            except ValidationError as exc:
                raise provena_error(
                    400, f"Model run {raw['id']} failed to parse: {exc.errors()[0]['msg']}"
                ) from exc
            _relodge(sandbox, item, validate_record, identity)
            count += 1
        details = f"Successfully re-lodged all {count} provenance records from the registry."
        return JSONResponse({"status": status(True, details)})

    add_check_access_routes(router, READ, WRITE, ADMIN)
    app.include_router(router)
    return app
