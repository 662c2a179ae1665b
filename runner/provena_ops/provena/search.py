"""Search API: candidate ids for a display name (the index can be stale: callers confirm by fetching)."""

from __future__ import annotations

from ProvenaInterfaces.SearchAPI import QueryResults

from provena_ops.provena.errors import ProvenaError
from provena_ops.provena.http import ProvenaHttp

MAX_RESULTS = 50  # Provena caps record_limit at 50


async def search_ids(
    http: ProvenaHttp, query: str, subtype: str | None, limit: int = MAX_RESULTS
) -> list[str]:
    """Ids in the index's order (best first); `subtype` None searches every subtype."""
    params: dict[str, str | int] = {"query": query, "record_limit": min(limit, MAX_RESULTS)}
    if subtype is not None:
        params["subtype_filter"] = subtype
    parsed = await http.parsed(QueryResults, "search", "GET", "/search/entity-registry", params=params)
    if not parsed.status.success:
        raise ProvenaError(f"searching for {query!r} in '{http.environment}' failed: {parsed.status.details}")
    return [result.id for result in parsed.results or []]
