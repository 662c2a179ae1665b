"""The job service: rows in SQLite, a worker that walks PENDING -> DEQUEUED -> IN_PROGRESS ->
SUCCEEDED/FAILED with Provena's info strings, and the job API routes (contract section 8).

Each transition, including a job's whole effect on registry and graph, is one transaction, so a
server killed mid-job re-runs that job cleanly after a restart instead of leaving half of it.
"""

import asyncio
import base64
import contextlib
import json
import logging
import time
import uuid
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from ProvenaInterfaces import AsyncJobAPI as jobs_api
from ProvenaInterfaces.ProvenanceModels import ModelRunRecord

from provena_ops.sandbox.context import Sandbox
from provena_ops.sandbox.http import (
    Pydantic1BodyRoute,
    add_check_access_routes,
    identify,
    install_error_handlers,
    provena_error,
    require_roles,
)
from provena_ops.sandbox.items import SUBTYPES, WRITE_ROLES, can, is_locked, item_roles, write_update
from provena_ops.sandbox.provenance import (
    VALIDATION_PREFIX,
    RecordInvalid,
    graph_for,
    merge_additively,
    prov_serialisation,
    relodge_diff,
    validate_record,
)
from provena_ops.sandbox.realm import JOB_ADMIN, JOB_READ, JOB_WRITE, Identity

logger = logging.getLogger("provena_ops.sandbox.jobs")
DEQUEUED_INFO = "Job removed from queue ready for processing by worker task."
IN_PROGRESS_INFO = "Job has been dispatched to worker callback and is in progress."
COMPLETION_REASON = "Updating item to mark completion of provenance lodge."


# prov-api jobs/prov_jobs.py: a handler's failure is `f"Job failed, err: {error}."`, and the errors
# wrap an HTTPException, whose str() is empty on Starlette 0.22 (raised with keyword arguments): so a
# refused registry update (unknown id, other subtype, locked, no write) reads the same in every case.
LODGE_FAILED = "Job failed, err: An error occurred while lodging the provenance record. Error: .."
VALIDATION_RAISED = "Job failed, err: Unhandled exception during model run lodging. Error: .."


class JobFailed(Exception):
    """A handler's failure; the message is the job's whole `info`."""


def encode_user(identity: Identity) -> str:
    """Provena encrypts the caller's identity into the job payload; the sandbox only encodes it."""
    raw = json.dumps({"username": identity.username, "email": identity.email, "roles": identity.roles})
    return base64.b64encode(raw.encode()).decode()


def decode_user(blob: str) -> Identity:
    data = json.loads(base64.b64decode(blob))
    return Identity(username=data["username"], email=data["email"], roles=list(data["roles"]), token="")


def launch_job(
    sandbox: Sandbox,
    username: str,
    job_type: str,
    sub_type: str,
    payload: dict[str, Any],
    batch_id: str | None = None,
) -> str:
    settings = sandbox.settings
    now = time.time()
    visible_at = now + settings.job_row_delay_ms / 1000
    job = {
        "session_id": _new_session_id(sandbox, username, job_type, sub_type, payload),
        "created_timestamp": int(now),
        "username": username,
        "batch_id": batch_id,
        "payload": payload,
        "job_type": job_type,
        "job_sub_type": sub_type,
        "gsi_status": "ok",
        "status": "PENDING",
        "info": None,
        "result": None,
    }
    with sandbox.store.transaction():
        sandbox.store.put_job(job, visible_at, visible_at + settings.job_delay_ms / 1000)
    sandbox.wake_jobs()
    return str(job["session_id"])


def _new_session_id(
    sandbox: Sandbox, username: str, job_type: str, sub_type: str, payload: dict[str, Any]
) -> str:
    """Drawn from the fault seed, so a replayed rehearsal polls the same session ids (and meets the
    same faults on them); an id already in the table is drawn again."""
    key = json.dumps([username, job_type, sub_type, payload], sort_keys=True, default=str)
    while True:
        session_id = str(sandbox.fates.uuid("session", key))
        if sandbox.store.get_job(session_id, float("inf")) is None:
            return session_id


def _injected_failure(sandbox: Sandbox, job: dict[str, Any]) -> bool:
    target = str(job["payload"].get("model_run_record_id") or "")
    if target and target in sandbox.faults.fail_jobs_for:
        return True
    if sandbox.faults.fail_next_jobs > 0:
        sandbox.faults.fail_next_jobs -= 1
        return True
    rate = sandbox.settings.job_fail_rate
    return rate > 0 and sandbox.fates.draw("job", target or str(job["session_id"])) < rate


def _run_update(sandbox: Sandbox, payload: dict[str, Any]) -> dict[str, Any]:
    """MODEL_RUN_UPDATE (contract 6.2): revalidate, registry update, graph diff, completion update."""
    caller = decode_user(payload["user_info"])
    run_id = str(payload["model_run_record_id"])
    record = ModelRunRecord.model_validate(payload["updated_record"])
    try:
        if payload.get("revalidate", True):
            validate_record(sandbox, record, caller)
    except RecordInvalid as exc:
        if exc.direct:  # raised as an HTTPException by Provena's validator
            raise JobFailed(VALIDATION_RAISED) from exc
        raise JobFailed(f"{VALIDATION_PREFIX}{exc.message}.") from exc
    except HTTPException as exc:
        raise JobFailed(VALIDATION_RAISED) from exc
    info = SUBTYPES["MODEL_RUN"]
    existing = sandbox.store.get_item(run_id)
    if (
        existing is None
        or existing["item_subtype"] != "MODEL_RUN"
        or existing["record_type"] != "COMPLETE_ITEM"
        or is_locked(sandbox, run_id)
        or not can(item_roles(sandbox, caller, run_id, "MODEL_RUN"), WRITE_ROLES)
    ):
        raise JobFailed(LODGE_FAILED)  # the registry's refusal, as prov-api's job reports it
    graph = graph_for(sandbox, run_id, record)
    domain = {
        "display_name": record.display_name,
        "user_metadata": None,
        "record_status": "COMPLETE",
        "record": record.model_dump(mode="json"),
        "prov_serialisation": prov_serialisation(run_id, graph),
    }
    updated = write_update(sandbox, info, existing, domain, str(payload["reason"]), caller.username)
    sandbox.store.apply_diff(relodge_diff(sandbox, run_id, record))
    write_update(sandbox, info, updated, domain, COMPLETION_REASON, caller.username)
    # Written with py_to_dict (no nulls), as the job table stores it.
    stored_record = record.model_dump(mode="json", exclude_none=True)
    return {"record": {"id": run_id, "prov_json": domain["prov_serialisation"], "record": stored_record}}


def _run_lodge_only(sandbox: Sandbox, payload: dict[str, Any]) -> dict[str, Any]:
    run_id = str(payload["model_run_record_id"])
    record = ModelRunRecord.model_validate(payload["record"])
    merge_additively(sandbox, run_id, record)
    return {
        "record": {
            "id": run_id,
            "prov_json": prov_serialisation(run_id, graph_for(sandbox, run_id, record)),
            "record": record.model_dump(mode="json", exclude_none=True),
        }
    }


HANDLERS = {"MODEL_RUN_UPDATE": _run_update, "MODEL_RUN_LODGE_ONLY": _run_lodge_only}


def advance_jobs(sandbox: Sandbox) -> None:
    """Move every due job one or more steps; a zero delay runs a job to completion in one call."""
    delay = sandbox.settings.job_delay_ms / 1000
    while True:
        now = time.time()
        due = sandbox.store.due_jobs(now)
        if not due:
            return
        for queued in due:
            with sandbox.store.transaction():
                job = sandbox.store.still_due(queued["session_id"], queued["status"], now)
                if job is None:
                    continue  # another server on the same database took this step
                if job["status"] == "PENDING":
                    job.update(status="DEQUEUED", info=DEQUEUED_INFO)
                elif job["status"] == "DEQUEUED":
                    job.update(status="IN_PROGRESS", info=IN_PROGRESS_INFO)
                else:
                    _finish(sandbox, job)
                sandbox.store.put_job(job, 0, now + delay)


def _finish(sandbox: Sandbox, job: dict[str, Any]) -> None:
    handler = HANDLERS.get(str(job["job_sub_type"]))
    try:
        if _injected_failure(sandbox, job):
            raise RuntimeError("injected job failure (sandbox fault injection)")
        if handler is None:
            raise KeyError(str(job["job_sub_type"]))  # the handler map's lookup
        with sandbox.store.savepoint():  # a failing job leaves no half-written registry or graph
            result = handler(sandbox, job["payload"])
    except JobFailed as exc:
        job.update(status="FAILED", info=str(exc), result=None)
    except (HTTPException, RecordInvalid):
        # A registry refusal met while lodging (e.g. the caller can no longer read an entity).
        job.update(status="FAILED", info=LODGE_FAILED, result=None)
    except Exception as exc:
        # EcsSqsPythonTools JobRunner.run_job_loop; a KeyError renders with its quotes.
        job.update(
            status="FAILED", info=f"Callback function raised unhandled exception. Error: {exc}.", result=None
        )
    else:
        job.update(status="SUCCEEDED", info=None, result=result)


async def job_worker(sandbox: Sandbox) -> None:
    """Runs for the server's lifetime; picks up unfinished jobs left by a previous run first."""
    event = asyncio.Event()
    sandbox.job_loop, sandbox.job_wakeup = asyncio.get_running_loop(), event
    while True:
        event.clear()
        try:
            advance_jobs(sandbox)
        except Exception:
            logger.exception("sandbox job worker: transition failed; retrying shortly")
            await asyncio.sleep(0.5)
            continue
        next_at = sandbox.store.next_job_time()
        timeout = 3600.0 if next_at is None else max(0.0, next_at - time.time())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout=timeout)


def _page(
    sandbox: Sandbox, username: str | None, batch_id: str | None, key: dict[str, Any] | None, limit: int
) -> dict[str, Any]:
    after = None
    if key is not None:
        if not isinstance(key.get("seq"), int):
            raise provena_error(400, f"Invalid pagination key {key!r}.")
        after = int(key["seq"])
    rows = sandbox.store.list_jobs(username, batch_id, time.time(), after, limit)
    next_key = {"seq": rows[-1][0]} if len(rows) == limit and rows else None
    return {"jobs": [job for _, job in rows], "pagination_key": next_key}


def build_jobs_app() -> FastAPI:
    app = FastAPI(title="Provena Job API (sandbox)")
    install_error_handlers(app)
    router = APIRouter(route_class=Pydantic1BodyRoute)
    admin_read = require_roles(JOB_READ)
    admin_write = require_roles(JOB_READ, JOB_WRITE)
    admin = require_roles(JOB_READ, JOB_WRITE, JOB_ADMIN)

    def sandbox_of(request: Request) -> Sandbox:
        sandbox: Sandbox = request.app.state.sandbox
        return sandbox

    async def any_user(request: Request) -> Identity:
        return identify(request)

    @router.get("/")
    async def health() -> dict[str, str]:
        return {"message": "Health check successful."}

    @router.get("/jobs/user/fetch", response_model=jobs_api.GetJobResponse)
    async def user_fetch(
        request: Request, session_id: str = Query(...), identity: Identity = Depends(any_user)
    ) -> JSONResponse:
        job = sandbox_of(request).store.get_job(session_id, time.time())
        if job is None:
            raise provena_error(400, "Item was not found.")
        if job["username"] != identity.username:
            raise provena_error(401, "Not authorised to view this record.")
        return JSONResponse({"job": job})

    @router.post("/jobs/user/list", response_model=jobs_api.ListJobsResponse)
    async def user_list(
        request: Request, body: jobs_api.ListJobsRequest, identity: Identity = Depends(any_user)
    ) -> JSONResponse:
        return JSONResponse(
            _page(sandbox_of(request), identity.username, None, body.pagination_key, body.limit)
        )

    @router.post("/jobs/user/list_batch", response_model=jobs_api.ListByBatchResponse)
    async def user_list_batch(
        request: Request, body: jobs_api.ListByBatchRequest, identity: Identity = Depends(any_user)
    ) -> JSONResponse:
        return JSONResponse(
            _page(sandbox_of(request), identity.username, body.batch_id, body.pagination_key, body.limit)
        )

    @router.get("/jobs/admin/fetch", response_model=jobs_api.AdminGetJobResponse)
    async def admin_fetch(
        request: Request, session_id: str = Query(...), identity: Identity = Depends(admin_read)
    ) -> JSONResponse:
        job = sandbox_of(request).store.get_job(session_id, time.time())
        if job is None:
            raise provena_error(400, "Item was not found.")
        return JSONResponse({"job": job})

    @router.post("/jobs/admin/list", response_model=jobs_api.AdminListJobsResponse)
    async def admin_list(
        request: Request, body: jobs_api.AdminListJobsRequest, identity: Identity = Depends(admin_read)
    ) -> JSONResponse:
        return JSONResponse(
            _page(sandbox_of(request), body.username_filter, None, body.pagination_key, body.limit)
        )

    @router.post("/jobs/admin/list_batch", response_model=jobs_api.AdminListByBatchResponse)
    async def admin_list_batch(
        request: Request, body: jobs_api.AdminListByBatchRequest, identity: Identity = Depends(admin_read)
    ) -> JSONResponse:
        return JSONResponse(
            _page(sandbox_of(request), body.username_filter, body.batch_id, body.pagination_key, body.limit)
        )

    @router.post("/jobs/admin/launch", response_model=jobs_api.AdminLaunchJobResponse)
    async def admin_launch(
        request: Request, body: jobs_api.AdminLaunchJobRequest, identity: Identity = Depends(admin_write)
    ) -> JSONResponse:
        batch_id = str(uuid.uuid4()) if body.request_batch_id else body.add_to_batch
        session_id = launch_job(
            sandbox_of(request),
            body.username or identity.username,
            body.job_type.value,
            body.job_sub_type.value,
            body.job_payload,
            batch_id,
        )
        return JSONResponse({"session_id": session_id, "batch_id": batch_id})

    add_check_access_routes(router, admin_read, admin_write, admin)
    app.include_router(router)
    return app
