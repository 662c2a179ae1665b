"""Search API: candidate ids for a display name (the index can be stale: callers confirm by fetching)."""

from __future__ import annotations

from .http import ProvenaHttp

MAX_RESULTS = 50  # Provena caps record_limit at 50


async def search_ids(http: ProvenaHttp, query: str, subtype: str) -> list[str]:
    body = await http.json(
        "search",
        "GET",
        "/search/entity-registry",
        params={"query": query, "subtype_filter": subtype, "record_limit": MAX_RESULTS},
    )
    return [str(result["id"]) for result in body.get("results") or []]
