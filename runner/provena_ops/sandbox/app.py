"""Assemble the sandbox: one loopback server, one path prefix per Provena service.

Provena's services collide on paths (`/admin/...`, `/check-access/...`), so each keeps its own
base URL, addressed through the environment's endpoint overrides, exactly as a deployment's
separate hosts would be.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field

from provena_ops.sandbox.auth_api import build_auth_app
from provena_ops.sandbox.context import Sandbox, SandboxSettings
from provena_ops.sandbox.faults import FaultInjector
from provena_ops.sandbox.http import require_roles
from provena_ops.sandbox.jobs import build_jobs_app, job_worker
from provena_ops.sandbox.keycloak_api import build_keycloak_app, realm_json
from provena_ops.sandbox.prov_api import build_prov_app
from provena_ops.sandbox.realm import REGISTRY_ADMIN, REGISTRY_READ, REGISTRY_WRITE, Identity
from provena_ops.sandbox.registry_api import build_registry_app
from provena_ops.sandbox.request_log import RequestLog, RequestLogFile
from provena_ops.sandbox.search_api import build_search_app

SERVICE_PREFIXES = {
    "registry": "/registry-api",
    "prov": "/prov-api",
    "jobs": "/job-api",
    "search": "/search-api",
    "auth": "/auth-api",
}


def service_urls(base_url: str, realm_name: str = "provena") -> dict[str, str]:
    """Endpoint overrides (ToolingEnvironment field names) for a sandbox served at `base_url`."""
    base = base_url.rstrip("/")
    return {
        "registry_api_endpoint_override": base + SERVICE_PREFIXES["registry"],
        "prov_api_endpoint_override": base + SERVICE_PREFIXES["prov"],
        "jobs_service_api_endpoint_override": base + SERVICE_PREFIXES["jobs"],
        "search_api_endpoint_override": base + SERVICE_PREFIXES["search"],
        "auth_api_endpoint_override": base + SERVICE_PREFIXES["auth"],
        "keycloak_endpoint_override": f"{base}/auth/realms/{realm_name}",
    }


class FaultSettings(BaseModel):
    """Runtime switches for tests and rehearsals; unset fields are left as they are."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float | None = Field(None, ge=0)
    fault_rate: float | None = Field(None, ge=0, le=1)
    fault_kinds: list[Literal["500", "502", "503", "504", "429", "drop", "lost"]] | None = Field(
        None, min_length=1
    )
    fault_paths: list[str] | None = None
    retry_after_s: int | None = Field(None, ge=0)
    job_delay_ms: float | None = Field(None, ge=0)
    job_row_delay_ms: float | None = Field(None, ge=0)
    job_fail_rate: float | None = Field(None, ge=0, le=1)
    fail_next_jobs: int | None = Field(None, ge=0)
    fail_jobs_for: list[str] | None = None
    fail_registry_delete_for: list[str] | None = None
    search_staleness_s: float | None = Field(None, ge=0)


def build_control_app(sandbox: Sandbox) -> FastAPI:
    app = FastAPI(title="provena-ops sandbox control")
    admin = require_roles(REGISTRY_READ, REGISTRY_WRITE, REGISTRY_ADMIN)

    @app.get("/status")
    async def status() -> dict[str, Any]:
        nodes, links = sandbox.store.graph_size()
        settings = sandbox.settings
        return {
            "items": sandbox.store.count_items(),
            "graph_nodes": nodes,
            "graph_links": links,
            "latency_ms": settings.latency_ms,
            "fault_rate": settings.fault_rate,
            "job_delay_ms": settings.job_delay_ms,
            "job_row_delay_ms": settings.job_row_delay_ms,
        }

    @app.put("/faults")
    async def faults(body: FaultSettings, identity: Identity = Depends(admin)) -> dict[str, str]:
        if body.fault_kinds is not None:
            sandbox.settings.fault_kinds = tuple(body.fault_kinds)
        if body.fault_paths is not None:
            sandbox.settings.fault_paths = tuple(body.fault_paths)
        for name in (
            "latency_ms",
            "fault_rate",
            "retry_after_s",
            "job_delay_ms",
            "job_row_delay_ms",
            "job_fail_rate",
            "search_staleness_s",
        ):
            value = getattr(body, name)
            if value is not None:
                setattr(sandbox.settings, name, value)
        if body.fail_next_jobs is not None:
            sandbox.faults.fail_next_jobs = body.fail_next_jobs
        if body.fail_jobs_for is not None:
            sandbox.faults.fail_jobs_for = set(body.fail_jobs_for)
        if body.fail_registry_delete_for is not None:
            sandbox.faults.fail_registry_delete_for = set(body.fail_registry_delete_for)
        return {"message": "Fault settings updated."}

    return app


def build_app(settings: SandboxSettings) -> FastAPI:
    sandbox = Sandbox(settings)
    request_log = None if settings.request_log is None else RequestLogFile(settings.request_log)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        worker = asyncio.create_task(job_worker(sandbox))
        try:
            yield
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            sandbox.store.close()
            if request_log is not None:
                request_log.close()

    app = FastAPI(title="provena-ops sandbox", lifespan=lifespan)
    app.state.sandbox = sandbox
    services = {
        SERVICE_PREFIXES["registry"]: build_registry_app(),
        SERVICE_PREFIXES["prov"]: build_prov_app(),
        SERVICE_PREFIXES["jobs"]: build_jobs_app(),
        SERVICE_PREFIXES["search"]: build_search_app(),
        SERVICE_PREFIXES["auth"]: build_auth_app(),
        f"/auth/realms/{settings.realm_name}": build_keycloak_app(settings.realm_name),
        "/sandbox": build_control_app(sandbox),
    }

    @app.get(f"/auth/realms/{settings.realm_name}", include_in_schema=False)
    async def realm_without_slash(request: Request) -> dict[str, Any]:
        # Clients GET the realm URL exactly as configured, with no trailing slash; a mount would
        # answer that with a redirect, which provenaclient does not follow.
        return realm_json(request, settings.realm_name)

    for prefix, service in services.items():
        service.state.sandbox = sandbox
        app.mount(prefix, service)

    @app.get("/")
    async def index(request: Request) -> dict[str, Any]:
        return {
            "message": "provena-ops sandbox",
            "endpoints": service_urls(str(request.base_url), settings.realm_name),
        }

    app.add_middleware(FaultInjector, sandbox=sandbox)
    if request_log is not None:
        app.add_middleware(RequestLog, log=request_log)  # added last: runs outermost
    return app
