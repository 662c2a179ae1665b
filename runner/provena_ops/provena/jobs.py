"""Job API reads: the state of an asynchronous job (a model-run update's PENDING -> ... -> SUCCEEDED)."""

from __future__ import annotations

from ProvenaInterfaces.AsyncJobAPI import GetJobResponse, ListJobsRequest, ListJobsResponse
from ProvenaInterfaces.AsyncJobModels import JobStatusTable

from provena_ops.provena.errors import ProvenaError
from provena_ops.provena.http import ProvenaHttp

NOT_WRITTEN_YET = "Item was not found."


async def fetch_job(http: ProvenaHttp, session_id: str) -> JobStatusTable | None:
    """The job, or None while its row does not exist yet: Provena writes it asynchronously after the
    submission answers, so a fresh session id is 400 'Item was not found.' for a while."""
    try:
        parsed = await http.parsed(
            GetJobResponse, "jobs", "GET", "/jobs/user/fetch", params={"session_id": session_id}
        )
    except ProvenaError as exc:
        if exc.status == 400 and exc.detail == NOT_WRITTEN_YET:
            return None
        raise
    return parsed.job


async def jobs_since(
    http: ProvenaHttp, since: float, page_size: int = 50, max_pages: int = 40
) -> list[JobStatusTable]:
    """The signed-in user's jobs created at or after `since` (Unix seconds): how a submission whose
    answer was lost is found again. Pages are read until one holds nothing that recent (Provena lists
    newest first, but nothing here depends on it beyond that stopping rule)."""
    found: list[JobStatusTable] = []
    key = None
    for _ in range(max_pages):
        parsed = await http.parsed(
            ListJobsResponse,
            "jobs",
            "POST",
            "/jobs/user/list",
            json=ListJobsRequest(pagination_key=key, limit=page_size).model_dump(mode="json"),
        )
        recent = [job for job in parsed.jobs if job.created_timestamp >= since]
        found.extend(recent)
        key = parsed.pagination_key
        if key is None or not recent:
            break
    return found
