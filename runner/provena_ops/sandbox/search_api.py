"""Search API (contract section 9): fuzzy text search over registry items, `{id, score}` hits.

Like Provena's OpenSearch index it is fed asynchronously: with `search_staleness_s` set, the
index is a snapshot refreshed at most that often, so recent edits and deletions can be missing
or still present, which is why clients must confirm hits with a registry fetch.
"""

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from ProvenaInterfaces.RegistryModels import ItemSubType
from ProvenaInterfaces.SearchAPI import QueryResults

from provena_ops.sandbox.context import Sandbox
from provena_ops.sandbox.http import Pydantic1BodyRoute, install_error_handlers, require_roles, status
from provena_ops.sandbox.realm import REGISTRY_READ, Identity

DEFAULT_LIMIT = 10
MAX_LIMIT = 50


def build_search_app() -> FastAPI:
    app = FastAPI(title="Provena Search API (sandbox)")
    install_error_handlers(app)
    router = APIRouter(route_class=Pydantic1BodyRoute)

    @router.get("/")
    async def health() -> dict[str, str]:
        return {"message": "Health check successful."}

    @router.get("/search/entity-registry", response_model=QueryResults)
    async def search(
        request: Request,
        query: str = Query(...),
        subtype_filter: ItemSubType | None = None,
        record_limit: int | None = None,
        identity: Identity = Depends(require_roles(REGISTRY_READ)),
    ) -> JSONResponse:
        sandbox: Sandbox = request.app.state.sandbox
        limit = min(record_limit or DEFAULT_LIMIT, MAX_LIMIT)
        sandbox.search_index.refresh_if_stale(sandbox.store, sandbox.settings.search_staleness_s)
        results = sandbox.search_index.query(query, subtype_filter.value if subtype_filter else None, limit)
        return JSONResponse(
            {"status": status(True, f"Found {len(results)} results."), "results": results, "warnings": []}
        )

    app.include_router(router)
    return app
