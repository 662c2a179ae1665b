"""Names in the seeded demo registry, and job and fault helpers, that several sandbox test modules use."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from provena_ops.sandbox import SandboxSettings, running_sandbox
from provena_ops.sandbox.seed import SeedSummary
from tests.conftest import Api

COMPLETION = "Updating item to mark completion of provenance lodge."
FINAL = ("SUCCEEDED", "FAILED")


@contextmanager
def served(db: Path, **settings: Any) -> Iterator[Api]:
    """A private server on `db` with its own settings (ones the shared server must not keep)."""
    with running_sandbox(SandboxSettings(db_path=db, **settings)) as running:
        api = Api(running)
        try:
            yield api
        finally:
            api.close()


def run_id(demo: SeedSummary, number: int) -> str:
    """Seeded run `number` (0-based); the runs have consecutive handles starting at run 0."""
    first = demo.notable["model run with annotations"]
    prefix, _, handle = first.rpartition("/")
    return f"{prefix}/{int(handle) + number}"


def studies(demo: SeedSummary) -> list[str]:
    return demo.notable["studies"].split(", ")


def fetch_job(api: Api, session_id: str, user: str = "admin") -> tuple[int, dict[str, Any]]:
    response = api.http.get(
        f"{api.jobs}/jobs/user/fetch", params={"session_id": session_id}, headers=api.auth(user)
    )
    body: dict[str, Any] = response.json()
    return response.status_code, body


def wait_job(api: Api, session_id: str, user: str = "admin", timeout: float = 10.0) -> dict[str, Any]:
    """Poll until the job is final; 400 (row not written yet) is tolerated."""
    deadline = time.monotonic() + timeout
    while True:
        code, body = fetch_job(api, session_id, user)
        assert code in (200, 400), body
        if code == 200 and body["job"]["status"] in FINAL:
            job: dict[str, Any] = body["job"]
            return job
        assert time.monotonic() < deadline, f"job {session_id} not final after {timeout} s: {body}"
        time.sleep(0.02)


def set_faults(api: Api, **faults: Any) -> None:
    response = api.http.put(
        f"{api.running.base_url.rstrip('/')}/sandbox/faults", json=faults, headers=api.auth("admin")
    )
    assert response.status_code == 200, response.text


def without_nulls(value: Any) -> Any:
    """An answer as Provena stores it: `py_to_dict` leaves out every None, at every depth."""
    if isinstance(value, dict):
        return {key: without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value
