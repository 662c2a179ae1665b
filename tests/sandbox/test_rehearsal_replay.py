"""Rehearsals that can be replayed and inspected: `--request-log FILE`, `--fault-seed N`, `--fault-kinds`.

A fault run repeats when the same requests meet the same faults: with one seed, each request (method,
path, query, body, and how many identical ones came before) meets the same fate on every run, however
concurrent clients interleave; a job's failure and the session ids handed out repeat too.
"""

from __future__ import annotations

import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from provena_ops.sandbox.seed import SeedSummary
from tests.conftest import Api
from tests.sandbox.seeded import run_id, served, studies
from tests.sandbox.test_cli import in_process, run_in_process

__all__ = ["in_process"]  # a fixture used here

STUDY = "/registry/activity/study"


def copy(db: Path, name: str) -> Path:
    target = db.with_name(name)
    shutil.copyfile(db, target)
    return target


def fetches(demo: SeedSummary) -> list[tuple[str, dict[str, str]]]:
    """Distinct requests, each made twice: the second of a pair is the retry of the first."""
    ids = [*studies(demo), *(run_id(demo, n) for n in range(15))]
    return [("/registry/general/fetch", {"id": item_id}) for item_id in ids for _ in range(2)]


def fates(api: Api, requests: list[tuple[str, dict[str, str]]], workers: int) -> list[tuple[str, str, int]]:
    headers = api.auth()

    def one(request: tuple[str, dict[str, str]]) -> tuple[str, str, int]:
        path, params = request
        try:
            code = api.http.get(f"{api.registry}{path}", params=params, headers=headers).status_code
        except httpx.TransportError:
            code = -1  # a dropped connection
        return path, params["id"], code

    with ThreadPoolExecutor(workers) as pool:
        return sorted(pool.map(one, requests))


def test_one_seed_faults_the_same_requests_however_clients_interleave(
    sandbox_db: Path, demo: SeedSummary
) -> None:
    requests = fetches(demo)
    faulty = {"fault_rate": 0.4, "retry_after_s": 0}
    with served(copy(sandbox_db, "a.db"), random_seed=42, **faulty) as api:
        first = fates(api, requests, workers=1)
    with served(copy(sandbox_db, "b.db"), random_seed=42, **faulty) as api:
        again = fates(api, list(reversed(requests)), workers=8)
    with served(copy(sandbox_db, "c.db"), random_seed=43, **faulty) as api:
        other = fates(api, requests, workers=1)
    assert first == again
    assert first != other
    codes = [code for _, _, code in first]
    assert 200 in codes and any(code != 200 for code in codes), codes


def test_job_failures_and_session_ids_repeat_with_the_seed(sandbox_db: Path, demo: SeedSummary) -> None:
    def rehearse(db: Path, seed: int) -> list[tuple[str, str, str]]:
        with served(db, random_seed=seed, job_fail_rate=0.5) as api:
            outcomes = []
            for number in range(8):
                run = run_id(demo, number)
                record = api.http.get(
                    f"{api.registry}/registry/activity/model_run/fetch",
                    params={"id": run},
                    headers=api.auth(),
                ).json()["item"]["record"]
                launched = api.http.post(
                    f"{api.prov}/model_run/update",
                    json={"model_run_id": run, "reason": "rehearsal", "record": record},
                    headers=api.auth(),
                )
                session_id = launched.json()["session_id"]
                job = wait_final(api, session_id)
                outcomes.append((run, session_id, job["status"]))
            return outcomes

    first = rehearse(copy(sandbox_db, "a.db"), 5)
    assert first == rehearse(copy(sandbox_db, "b.db"), 5)
    assert {status for _, _, status in first} == {"SUCCEEDED", "FAILED"}


def wait_final(api: Api, session_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        answer = api.http.get(
            f"{api.jobs}/jobs/user/fetch", params={"session_id": session_id}, headers=api.auth()
        )
        if answer.status_code == 200 and answer.json()["job"]["status"] in ("SUCCEEDED", "FAILED"):
            job: dict[str, Any] = answer.json()["job"]
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {session_id} did not finish")


# ---- the request log ---------------------------------------------------------------------------------


def test_the_request_log_has_a_line_per_request_and_never_a_token(
    sandbox_db: Path, demo: SeedSummary, tmp_path: Path
) -> None:
    log = tmp_path / "requests.jsonl"
    with served(sandbox_db, request_log=log, random_seed=1, fault_rate=0.5, fault_kinds=("503",)) as api:
        token = api.token()
        headers = {"Authorization": f"Bearer {token}"}
        for study in studies(demo):
            api.http.get(f"{api.registry}{STUDY}/fetch", params={"id": study}, headers=headers)
        api.http.post(
            f"{api.keycloak}/protocol/openid-connect/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "provena-ops-ci",
                "client_secret": "sandbox-client-secret",
            },
        )
        api.http.get(
            f"{api.registry}/registry/general/fetch",
            params={"id": "x", "access_token": token},
            headers=headers,
        )
    assert log.stat().st_mode & 0o777 == 0o600
    text = log.read_text()
    assert token not in text and "sandbox-client-secret" not in text and "Bearer" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == len(studies(demo)) + 2
    assert all(
        set(line) == {"time", "method", "path", "query", "status", "duration_ms", "fault"} for line in lines
    )
    fetched = lines[: len(studies(demo))]
    assert {line["path"] for line in fetched} == {f"/registry-api{STUDY}/fetch"}
    # The status logged is the one the client got: faults included, and named.
    assert {line["status"] for line in fetched if line["fault"] == "503"} == {503}
    assert {line["status"] for line in fetched if line["fault"] is None} == {200}
    assert lines[-1]["query"] == "id=x&access_token=%2A%2A%2A"


# ---- the command line ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "fragments"),
    [
        (("--fault-kinds", "503,bogus"), ("unknown fault kind 'bogus'", "kinds: 500, 502")),
        (("--fault-kinds", "throtle"), ("did you mean 'throttle'?",)),
        (("--fault-kinds", ","), ("names no fault kind",)),
        (("--fault-seed", "-1"), ("--fault-seed must be between 0",)),
        (("--request-log", "/nonexistent/dir/log.jsonl"), ("directory /nonexistent/dir does not exist",)),
    ],
)
def test_bad_rehearsal_options_are_refused_before_serving(
    in_process: None, sandbox_db: Path, options: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    outcome = run_in_process("sandbox", "serve", "--port", "0", "--db", sandbox_db, *options)
    assert outcome.code == 1, outcome
    for fragment in fragments:
        assert fragment in outcome.stderr, outcome.stderr
    assert "Traceback" not in outcome.stderr


def test_fault_kind_mixes_expand_in_order() -> None:
    from provena_ops.cli.sandbox import fault_kinds_of

    assert fault_kinds_of(None) == ("500", "502", "503", "504", "429", "drop")
    assert fault_kinds_of(["throttle"]) == ("429",)
    assert fault_kinds_of(["lost", "503", "429,lost"]) == ("lost", "503", "429")
    assert fault_kinds_of(["all"])[-1] == "lost"
