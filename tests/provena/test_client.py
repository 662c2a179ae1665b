"""The Provena client over real HTTP against the sandbox: bounded concurrency, safe retries of
transient failures (and only of those), token refresh, typed answers, the job reader."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import ClassVar, TypeVar

import httpx
import pytest
from ProvenaInterfaces.RegistryAPI import UntypedFetchResponse

from provena_ops.environments.file import Endpoints
from provena_ops.provena import jobs, prov, registry, search
from provena_ops.provena.auth import StaticToken, TokenSource
from provena_ops.provena.errors import ProvenaError, Unexpected, Unreachable
from provena_ops.provena.http import BULKY_ANSWERS, BULKY_BYTES, BulkyLane, ProvenaHttp
from provena_ops.provena.retry import RetryPolicy
from provena_ops.sandbox.seed import SeedSummary
from tests.conftest import Api
from tests.local_servers import serving
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
        f"GET /registry/activity/model_run/fetch?id={run_id(demo, 0)}&seed_allowed=false on the registry "
        "API of 'test' answered 503 after 8 attempts"
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
    assert failure.value.maybe_sent
    assert failure.value.hint == "the write may have been carried out; apply again checks before repeating it"


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
    set_faults(api, latency_ms=200)
    ids = [run_id(demo, n) for n in range(12)]

    async def fetch_all(http: ProvenaHttp) -> float:
        started = time.monotonic()
        await asyncio.gather(*(registry.fetch(http, "MODEL_RUN", i) for i in ids))
        return time.monotonic() - started

    elapsed, requests = run(api, fetch_all, concurrency=4)
    assert requests == 12
    assert elapsed >= 0.6  # 12 requests of 200 ms, 4 at a time: at least three waves
    assert elapsed < 2.4  # ... and not one at a time (wide: a loaded CI machine adds overhead)


def test_answers_that_grow_with_the_registry_are_read_as_many_at_a_time_as_fit(
    api: Api, demo: SeedSummary
) -> None:
    """A trial delete's answer lists every record on every shared graph element: small ones (the demo's)
    go through every lane once one is seen; before that, BULKY_ANSWERS at a time."""
    set_faults(api, latency_ms=200)
    ids = [run_id(demo, n % 6) for n in range(16)]

    async def trial_delete_all(http: ProvenaHttp) -> float:
        started = time.monotonic()
        await asyncio.gather(*(prov.trial_delete(http, i) for i in ids))
        return time.monotonic() - started

    elapsed, requests = run(api, trial_delete_all, concurrency=16)
    assert requests == len(ids)
    assert elapsed >= 0.4  # the first BULKY_ANSWERS, then the other twelve together: two waves
    assert elapsed < 0.75  # not four waves of BULKY_ANSWERS


def test_answers_of_megabytes_are_admitted_as_many_as_fit_the_budget() -> None:
    lane = BulkyLane(16)
    assert lane.allowed == BULKY_ANSWERS  # none seen yet: a registry of any size
    lane.seen(1 << 20)
    assert lane.allowed == 16  # 1 MB answers (10,000 runs): every lane
    lane.seen(11 << 20)
    assert lane.allowed == BULKY_BYTES // (11 << 20) == 8  # 11 MB (100,000 runs)
    lane.seen(1 << 20)
    assert lane.allowed == 8  # judged by the largest seen
    lane.seen(BULKY_BYTES * 3)
    assert lane.allowed == 1  # one at a time, never none

    async def admitted() -> int:
        most = inside = 0

        async def one() -> None:
            nonlocal most, inside
            async with lane:
                inside += 1
                most = max(most, inside)
                await asyncio.sleep(0.01)
                inside -= 1

        await asyncio.gather(*(one() for _ in range(5)))
        return most

    assert asyncio.run(admitted()) == 1


class ExpiringToken:
    """Hands out an expired token until refreshed, as a long plan outliving its token would."""

    def __init__(self, api: Api) -> None:
        self.current = api.token(lifetime=-60)
        self.fresh = api.token(lifetime=600)
        self.refreshes = 0

    async def token(self) -> str:
        return self.current

    async def refresh(self, stale: str) -> bool:
        self.refreshes += 1
        self.current = self.fresh
        return True

    def expired(self) -> bool:
        return self.current != self.fresh

    @property
    def username(self) -> str:
        return "admin"

    async def aclose(self) -> None:
        return None


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


class _ForwardProxy(BaseHTTPRequestHandler):
    """A plain HTTP forward proxy: relays absolute-form requests and counts them."""

    seen: ClassVar[list[str]] = []

    def _relay(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        _ForwardProxy.seen.append(self.path)
        answer = httpx.request(
            self.command, self.path, headers=headers, content=body, timeout=30, trust_env=False
        )
        self.send_response(answer.status_code)
        self.send_header("content-type", answer.headers.get("content-type", "application/json"))
        self.send_header("content-length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_POST = _relay

    def log_message(self, *_: object) -> None:
        return


@pytest.fixture
def forward_proxy() -> Iterator[str]:
    _ForwardProxy.seen.clear()
    with serving(_ForwardProxy) as url:
        yield url


def test_the_environments_proxy_settings_are_honoured(
    api: Api, demo: SeedSummary, forward_proxy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (
        "NO_PROXY",
        "no_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "http_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", forward_proxy)
    fetched, _ = run(api, lambda http: registry.fetch(http, "MODEL_RUN", run_id(demo, 0)))
    assert fetched.item is not None
    assert _ForwardProxy.seen and _ForwardProxy.seen[0].startswith(api.registry)
    _ForwardProxy.seen.clear()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    fetched, _ = run(api, lambda http: registry.fetch(http, "MODEL_RUN", run_id(demo, 0)))
    assert fetched.item is not None and _ForwardProxy.seen == []


class _Counting(BaseHTTPRequestHandler):
    """A keep-alive server answering every GET with `answer`; counts the connections it accepts."""

    protocol_version = "HTTP/1.1"
    connections: ClassVar[dict[int, int]] = {}
    answers: ClassVar[dict[int, tuple[bytes, dict[str, str]]]] = {}

    @property
    def port(self) -> int:
        return int(self.connection.getsockname()[1])

    def setup(self) -> None:
        super().setup()
        _Counting.connections[self.port] = _Counting.connections.get(self.port, 0) + 1

    def do_GET(self) -> None:
        body, headers = _Counting.answers[self.port]
        body = body.replace(b"TOKEN", self.headers.get("authorization", "").encode())
        self.send_response(int(headers.get("status", "200")))
        for name, value in headers.items():
            if name != "status":
                self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        return


@contextlib.contextmanager
def counting_server(body: bytes, **headers: str) -> Iterator[str]:
    with serving(_Counting) as url:
        port = int(url.rsplit(":", 1)[1])
        _Counting.answers[port] = (body, {"content-type": "application/json", **headers})
        _Counting.connections[port] = 0
        yield url


def on(registry_url: str, search_url: str = "http://127.0.0.1:9") -> Endpoints:
    return Endpoints(registry_url, "http://127.0.0.1:9", "http://127.0.0.1:9", search_url, "", {})


def run_on(endpoints: Endpoints, work: Callable[[ProvenaHttp], Awaitable[T]], concurrency: int = 1) -> T:
    async def main() -> T:
        async with ProvenaHttp(
            endpoints, StaticToken("a-secret-token-value"), environment="test", concurrency=concurrency
        ) as http:
            return await work(http)

    return asyncio.run(main())


def test_each_service_host_keeps_its_own_connection() -> None:
    fetched = b'{"status": {"success": false, "details": "Could not find the given key"}, "item": null}'
    searched = b'{"status": {"success": true, "details": ""}, "results": [], "warnings": []}'
    with counting_server(fetched) as registry_url, counting_server(searched) as search_url:

        async def alternate(http: ProvenaHttp) -> None:
            for _ in range(10):
                await registry.general_fetch(http, "10378.1/1")
                await search.search_ids(http, "x", "MODEL_RUN")

        run_on(on(registry_url, search_url), alternate)
        ports = [int(url.rsplit(":", 1)[1]) for url in (registry_url, search_url)]
        assert [_Counting.connections[port] for port in ports] == [1, 1]  # 20 requests, 2 connections


def test_an_error_body_quoting_the_token_does_not_repeat_it() -> None:
    echo = b'{"detail": "Invalid key=value pair in Authorization header: TOKEN"}'
    with counting_server(echo, status="400") as url, pytest.raises(ProvenaError) as failure:
        run_on(on(url), lambda http: registry.general_fetch(http, "10378.1/1"))
    assert "a-secret-token-value" not in failure.value.render()
    assert "Authorization header: Bearer <token>" in failure.value.message
    assert "?id=10378.1/1 on the registry API of 'test' answered 400" in failure.value.message


def test_a_body_that_cannot_be_decoded_is_an_error_not_a_traceback() -> None:
    with (
        counting_server(b"not gzip at all", **{"content-encoding": "gzip"}) as url,
        pytest.raises(Unexpected) as failure,
    ):
        run_on(on(url), lambda http: registry.general_fetch(http, "10378.1/1"))
    assert "could not be sent or read: DecodingError" in failure.value.message


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b"<html>502 Bad Gateway</html>", "answered something that is not JSON: '<html>502 Bad Gateway"),
        (b'["an", "array"]', "does not match Provena's UntypedFetchResponse: a JSON list, not an object"),
        (b'{"status": "fine"}', "does not match Provena's UntypedFetchResponse"),
    ],
)
def test_a_200_that_is_not_a_provena_answer_is_named_not_a_traceback(body: bytes, said: str) -> None:
    """A proxy's error page or another service behind the endpoint, answering 200."""
    with counting_server(body) as url, pytest.raises(Unexpected) as failure:
        run_on(on(url), lambda http: registry.general_fetch(http, "10378.1/1"))
    assert said in failure.value.message
    assert "general/fetch?id=10378.1/1 on the registry API of 'test'" in failure.value.message


def test_records_read_share_their_repeated_strings(api: Api, demo: SeedSummary) -> None:
    """What lets 10,000 records fit in memory: a key or id repeated across records is one object."""

    async def two(http: ProvenaHttp) -> list[registry.Fetched]:
        return [await registry.fetch(http, "MODEL_RUN", run_id(demo, n)) for n in (0, 1)]

    first, second = run(api, two)[0]
    assert first.item is not None and second.item is not None
    assert first.item["record_type"] == second.item["record_type"] == "COMPLETE_ITEM"
    assert first.item["record_type"] is second.item["record_type"]
    key = next(k for k in first.item if k == "item_subtype")
    assert key is next(k for k in second.item if k == "item_subtype")


@pytest.mark.parametrize("bomb", [False, True], ids=["large-body", "gzip-bomb"])
def test_an_answer_larger_than_any_provena_answer_is_refused_not_read(
    bomb: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from provena_ops.provena import http as client

    monkeypatch.setattr(client, "MAX_RESPONSE_BYTES", 1024 * 1024)
    payload = b'{"pad": "' + b"x" * (4 * 1024 * 1024) + b'"}'
    body, headers = (gzip.compress(payload), {"content-encoding": "gzip"}) if bomb else (payload, {})
    with counting_server(body, **headers) as url, pytest.raises(Unexpected) as refused:
        run_on(on(url), lambda http: registry.fetch(http, "MODEL_RUN", "10378.1/1"))
    said = "answered more than 1 MB, more than any Provena answer" if bomb else "answered 4 MB, more than"
    assert said in refused.value.message, refused.value.message


@pytest.mark.parametrize(
    "url", ["ftp://registry.example.org", "registry.example.org/api", "https:///no-host"]
)
def test_an_endpoint_that_is_not_an_http_url_is_named_when_called(url: str) -> None:
    """The other services stay usable; a call to this one says what is wrong, and retries nothing."""
    with pytest.raises(Unexpected) as failure:
        run_on(on(url), lambda http: registry.general_fetch(http, "10378.1/1"))
    assert (
        "general/fetch?id=10378.1/1 on the registry API of 'test' could not be sent" in failure.value.message
    )
    assert failure.value.hint == "check the environment's endpoint URLs (scheme and host)"


def test_a_multi_megabyte_answer_arrives_whole_in_large_reads() -> None:
    """A trial delete on a registry of 100,000 runs answers ~11 MB; it is read up to a megabyte at a time
    (httpcore's 64 KB reads cost a third of the client's CPU per trial delete), and arrives byte for byte."""
    import inspect

    import httpcore

    from provena_ops.provena import wire

    reader = inspect.getsource(httpcore.AsyncHTTP11Connection._receive_event)
    assert "self.READ_NUM_BYTES" in reader, "httpcore no longer reads by READ_NUM_BYTES: see wire.py"
    assert httpcore.AsyncHTTP11Connection.READ_NUM_BYTES == wire.RECEIVE_BYTES >= 1 << 20
    pad = "".join(f"10378.1/{n}," for n in range(400_000))
    body = b'{"status": {"success": true, "details": ""}, "item": {"pad": "' + pad.encode() + b'"}}'
    assert len(body) > 5 * 1024 * 1024
    with counting_server(body) as url:
        fetched = run_on(on(url), lambda http: registry.general_fetch(http, "10378.1/1"))
    assert fetched.item == {"pad": pad}
