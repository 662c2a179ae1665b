"""The Provena client over real HTTP against the sandbox: bounded concurrency, safe retries of
transient failures (and only of those), token refresh, typed answers, the job reader."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
from ProvenaInterfaces.RegistryAPI import UntypedFetchResponse

from provena_ops.environments import Endpoints
from provena_ops.provena import jobs, registry
from provena_ops.provena.auth import StaticToken, TokenSource
from provena_ops.provena.errors import ProvenaError, Unreachable
from provena_ops.provena.http import ProvenaHttp, RetryPolicy
from provena_ops.sandbox.seed import SeedSummary
from tests.conftest import Api
from tests.sandbox.seeded import run_id, set_faults, wait_job

T = TypeVar("T")
FAST_RETRIES = RetryPolicy(attempts=8, base_delay_s=0.001, max_delay_s=0.01, max_retry_after_s=0.05)


def endpoints_of(api: Api) -> Endpoints:
    return Endpoints(api.registry, api.prov, api.jobs, api.search, api.keycloak, {})


def run(
    api: Api,
    work: Callable[[ProvenaHttp], Awaitable[T]],
    *,
    auth: TokenSource | None = None,
    concurrency: int = 8,
    retry: RetryPolicy = FAST_RETRIES,
) -> tuple[T, int]:
    """Run `work` with a client of the sandbox; returns its result and the requests sent."""

    async def main() -> tuple[T, int]:
        source = auth or StaticToken(api.token(lifetime=600))
        async with ProvenaHttp(
            endpoints_of(api), source, environment="test", concurrency=concurrency, retry=retry
        ) as http:
            return await work(http), http.requests

    return asyncio.run(main())


def test_transient_failures_are_retried_until_every_read_succeeds(api: Api, demo: SeedSummary) -> None:
    set_faults(api, fault_rate=0.3, fault_kinds=["502", "503", "504", "429", "drop"], retry_after_s=0)
    ids = [run_id(demo, n) for n in range(40)]

    async def fetch_all(http: ProvenaHttp) -> list[registry.Fetched]:
        return list(await asyncio.gather(*(registry.fetch(http, "MODEL_RUN", i) for i in ids)))

    fetched, requests = run(api, fetch_all)
    assert [f.id for f in fetched] == ids and all(f.item is not None for f in fetched)
    assert requests > len(ids)  # some were answered with a failure and sent again


def test_retries_are_bounded_and_the_error_says_what_was_tried(api: Api, demo: SeedSummary) -> None:
    set_faults(api, fault_rate=1.0, fault_kinds=["503"])
    with pytest.raises(Unreachable) as failure:
        run(api, lambda http: registry.fetch(http, "MODEL_RUN", run_id(demo, 0)))
    assert failure.value.message == (
        "GET /registry/activity/model_run/fetch on the registry API of 'test' answered 503 after 8 attempts"
    )


def test_retry_after_is_honoured(api: Api, demo: SeedSummary) -> None:
    set_faults(api, fault_rate=1.0, fault_kinds=["429"], retry_after_s=1)
    started = time.monotonic()
    with pytest.raises(Unreachable):
        run(
            api,
            lambda http: registry.fetch(http, "MODEL_RUN", run_id(demo, 0)),
            retry=RetryPolicy(attempts=2, base_delay_s=0.001),
        )
    assert time.monotonic() - started >= 1.0


def test_a_write_is_never_retried(api: Api) -> None:
    set_faults(api, fault_rate=1.0, fault_kinds=["503"])

    async def write(http: ProvenaHttp) -> None:
        await http.call("prov", "POST", "/model_run/update", json={}, retry_safe=False)

    with pytest.raises(Unreachable) as failure:
        run(api, write)
    assert "after 1 attempt" in failure.value.message
    assert failure.value.hint == "Provena is overloaded or restarting; try again later"


def test_answers_are_not_retried(api: Api) -> None:
    async def missing_route(http: ProvenaHttp) -> ProvenaError:
        try:
            await http.parsed(UntypedFetchResponse, "registry", "GET", "/no/such/route")
        except ProvenaError as exc:
            return exc
        raise AssertionError("a missing route answered 200")

    failure, requests = run(api, missing_route)
    assert (failure.status, requests) == (404, 1)


def test_concurrency_is_bounded(api: Api, demo: SeedSummary) -> None:
    set_faults(api, latency_ms=100)
    ids = [run_id(demo, n) for n in range(12)]

    async def fetch_all(http: ProvenaHttp) -> float:
        started = time.monotonic()
        await asyncio.gather(*(registry.fetch(http, "MODEL_RUN", i) for i in ids))
        return time.monotonic() - started

    elapsed, requests = run(api, fetch_all, concurrency=4)
    assert requests == 12
    assert elapsed >= 0.3  # 12 requests of 100 ms, 4 at a time: at least three waves
    assert elapsed < 1.2  # ... and not one at a time


class ExpiringToken:
    """Hands out an expired token until refreshed, as a long plan outliving its token would."""

    def __init__(self, api: Api) -> None:
        self.current = api.token(lifetime=-60)
        self.fresh = api.token(lifetime=600)
        self.refreshes = 0

    async def token(self) -> str:
        return self.current

    async def refresh(self) -> bool:
        self.refreshes += 1
        self.current = self.fresh
        return True

    def expired(self) -> bool:
        return self.current != self.fresh

    @property
    def username(self) -> str:
        return "admin"


def test_an_expired_token_is_refreshed_once_and_the_read_repeated(api: Api, demo: SeedSummary) -> None:
    source = ExpiringToken(api)
    fetched, requests = run(api, lambda http: registry.fetch(http, "MODEL_RUN", run_id(demo, 0)), auth=source)
    assert fetched.item is not None
    assert (source.refreshes, requests) == (1, 2)


def test_the_job_reader_follows_an_update_job_to_its_end(api: Api, demo: SeedSummary) -> None:
    set_faults(api, job_row_delay_ms=300)
    model_run = run_id(demo, 1)
    item = api.http.get(
        f"{api.registry}/registry/activity/model_run/fetch", params={"id": model_run}, headers=api.auth()
    ).json()["item"]
    submitted = api.http.post(
        f"{api.prov}/model_run/update",
        json={"model_run_id": model_run, "reason": "client test", "record": item["record"]},
        headers=api.auth(),
    )
    session_id = submitted.json()["session_id"]

    async def first_and_last(http: ProvenaHttp) -> tuple[object, object]:
        first = await jobs.fetch_job(http, session_id)
        wait_job(api, session_id)
        return first, await jobs.fetch_job(http, session_id)

    (first, last), _ = run(api, first_and_last)
    assert first is None  # the row is written after the submission answers
    assert last is not None and last.status.value == "SUCCEEDED"  # type: ignore[attr-defined]
    (unknown, _) = run(api, lambda http: jobs.fetch_job(http, str(uuid.uuid4())))
    assert unknown is None
