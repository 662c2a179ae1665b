"""Job API reads: the state of an asynchronous job (a model-run update's PENDING -> ... -> SUCCEEDED)."""

from __future__ import annotations

from ProvenaInterfaces.AsyncJobAPI import GetJobResponse
from ProvenaInterfaces.AsyncJobModels import JobStatusTable

from .errors import ProvenaError
from .http import ProvenaHttp

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
