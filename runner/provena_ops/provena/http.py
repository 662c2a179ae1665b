"""One keep-alive connection per lane, bounded concurrency, safe retries, typed responses, plain-words errors.

Reads are always safe to retry. Transient failures (connection errors, timeouts, 429 honouring
Retry-After, 500, 502, 503, 504) are retried with exponential backoff and full jitter, for as long as the
retry budget lasts (60 s since the first attempt, $PROVENA_OPS_RETRY_BUDGET to change it; at most 30
attempts): a transient outage shorter than the budget costs time, not the run. A 401 with an expired
token refreshes the token once. Nothing else is retried: 400/404/422 and the other 401s are answers, not
accidents. A write that is not idempotent is
retried only when it cannot have reached Provena (the connection was never made, or a 429 refused it);
any other failure (a 5xx, a connection dropped mid-request) says it may have been sent, and the caller
finds out what became of it.

The sandbox's fault injection (500, 502, 503, 504, 429, dropped and lost answers) is exactly this set.

Concurrency is a pool of lanes, each holding one keep-alive connection per service host (wire.py): a
request takes a free lane and gives it back. Planning thousands of records is bound by the client's CPU:
through one shared httpx AsyncClient a request cost 2.9 ms of CPU, through lanes of httpx transports
1.3 ms, through httpcore connections directly less again (benchmarks/scale_growth.py reports it).
"""

from __future__ import annotations

import asyncio
import random
import time
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

import httpcore
import httpx
from pydantic import BaseModel, ValidationError
from pydantic_core import from_json, to_json

from provena_ops import __version__
from provena_ops.environments.file import Endpoints
from provena_ops.provena.auth import TokenSource
from provena_ops.provena.errors import (
    TOKEN_DETAILS,
    NotAuthorised,
    ProvenaError,
    Unexpected,
    Unreachable,
    answer_hint,
    refusal_hint,
)
from provena_ops.provena.retry import TRANSIENT_STATUS, RetryPolicy, retry_after
from provena_ops.provena.wire import Answer, Connection, DecodingError, Target, TooLarge

M = TypeVar("M", bound=BaseModel)


BULKY_ANSWERS = 4  # bulky answers in flight at once before the size of one is known
BULKY_BYTES = 96 << 20  # in flight at once, judged by the largest such answer seen


class BulkyLane:
    """Admits requests whose answers grow with the registry (a trial delete lists every record id on
    every shared graph element) as many at a time as fit BULKY_BYTES, judging each by the largest such
    answer seen: at 10,000 runs (~1 MB each) every lane, at 100,000 (~11 MB) eight. 16 answers of 11 MB
    in flight, with their read buffers, were ~700 MB; eight peak at ~240 MB, four at ~190 MB but take
    14% longer (a 10,000-run deletion plan at 100,000 runs)."""

    def __init__(self, lanes: int, budget: int = BULKY_BYTES) -> None:
        self._lanes = lanes
        self._budget = budget
        self._largest = 0
        self._inside = 0
        self._turn = asyncio.Condition()

    @property
    def allowed(self) -> int:
        if not self._largest:
            return min(self._lanes, BULKY_ANSWERS)
        return max(1, min(self._lanes, self._budget // self._largest))

    def seen(self, size: int) -> None:
        self._largest = max(self._largest, size)

    async def __aenter__(self) -> None:
        async with self._turn:
            await self._turn.wait_for(lambda: self._inside < self.allowed)
            self._inside += 1

    async def __aexit__(self, *_: object) -> None:
        async with self._turn:
            self._inside -= 1
            self._turn.notify_all()


class ProvenaHttp:
    """HTTP to the four Provena services of one target. Use as an async context manager."""

    def __init__(
        self,
        endpoints: Endpoints,
        auth: TokenSource,
        *,
        environment: str,
        concurrency: int = 8,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
        use_proxies: bool = True,
    ) -> None:
        self.bases = {
            "registry": endpoints.registry,
            "prov": endpoints.prov,
            "jobs": endpoints.jobs,
            "search": endpoints.search,
        }
        self.auth = auth
        self.environment = environment
        self.retry = retry or RetryPolicy()
        tls = httpx.create_ssl_context()  # loading the CA bundle costs ~35 ms: once, not once per lane
        self._timeout = httpx.Timeout(timeout_s).as_dict()
        self._targets = {service: _target_or_none(url) for service, url in self.bases.items()}
        # A lane keeps one connection per service host (a deployment serves each API from its own host;
        # one shared connection would be closed and reopened, TLS and all, whenever the host changes).
        self._routes = {
            service: (_origin(url), proxy_for(url) if use_proxies else None)
            for service, url in self.bases.items()
        }
        self._lanes: asyncio.Queue[dict[tuple[str, str | None], Connection]] = asyncio.Queue()
        self._connections: list[Connection] = []
        for _ in range(concurrency):
            lane = {  # services on one host share its connection (a Connection uses only the origin)
                route: Connection(target, tls, route[1])
                for service, route in self._routes.items()
                if (target := self._targets[service]) is not None
            }
            self._connections.extend(lane.values())
            self._lanes.put_nowait(lane)
        self._rng = random.Random()
        self.concurrency = concurrency
        self.bulky = BulkyLane(concurrency)
        self.requests = 0  # sent, retries included: benchmarks read it

    async def __aenter__(self) -> ProvenaHttp:
        return self

    async def __aexit__(self, *_: object) -> None:
        await asyncio.gather(*(connection.aclose() for connection in self._connections), self.auth.aclose())

    def where(self, service: str, method: str, path: str, params: Mapping[str, Any] | None = None) -> str:
        """The call in an admin's terms: which request, with which ids, on which service of which target."""
        query = f"?{urlencode(params, safe='/')}" if params else ""
        return f"{method} {path}{query[:160]} on the {service} API of '{self.environment}'"

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        retry_safe: bool = True,
    ) -> Answer:
        """Send one request; returns any response that is not a transient failure or an auth refusal."""
        where = self.where(service, method, path, params)
        try:  # an endpoint that could not be split at start-up is split again, to say what is wrong
            target = self._targets[service] or Target.of(self.bases[service])
            url = target.url(path, dict(params) if params else None)
        except (ValueError, httpcore.UnsupportedProtocol, httpcore.LocalProtocolError) as exc:
            raise Unexpected(
                f"{where} could not be sent: {exc}",
                hint="check the environment's endpoint URLs (scheme and host)",
            ) from None
        body = b"" if json is None else to_json(json)
        fixed = [(b"Host", target.host_header), *BASE_HEADER_LIST]
        if json is not None:
            fixed += [(b"Content-Type", b"application/json"), (b"Content-Length", str(len(body)).encode())]
        refreshed = False
        attempt = 0
        started = time.monotonic()
        while True:
            token = await self.auth.token()
            headers = [*fixed, (b"Authorization", f"Bearer {token}".encode())]
            lane = await self._lanes.get()
            failure: Exception | None = None
            try:
                self.requests += 1
                status, answered, content = await lane[self._routes[service]].send(
                    method, url, headers, body, self._timeout, MAX_RESPONSE_BYTES
                )
                response = Answer(status, answered, content, token)
            except TooLarge as exc:
                size = (
                    f"{exc.declared // 1024 // 1024} MB"
                    if exc.declared
                    else f"more than {MAX_RESPONSE_BYTES // 1024 // 1024} MB"
                )
                raise Unexpected(
                    f"{where} answered {size}, more than any Provena answer",
                    hint="check that the environment's endpoint points at this Provena service",
                ) from None
            except (httpcore.UnsupportedProtocol, httpcore.LocalProtocolError, DecodingError) as exc:
                raise Unexpected(  # not the network's fault: retrying cannot help
                    f"{where} could not be sent or read: {type(exc).__name__} {redact(str(exc), token)}",
                    hint="check the environment's endpoint URLs (scheme and host)",
                ) from None
            except (
                httpcore.NetworkError,
                httpcore.TimeoutException,
                httpcore.RemoteProtocolError,
                httpcore.ProxyError,
            ) as exc:
                failure = exc
            finally:
                self._lanes.put_nowait(lane)
            if failure is not None:
                never_sent = isinstance(failure, httpcore.ConnectError | httpcore.ConnectTimeout)
                if (not retry_safe and not never_sent) or self.retry.exhausted(attempt, started):
                    raise Unreachable(
                        f"{where} failed {self.attempts_text(attempt, started)}: {type(failure).__name__} "
                        f"{redact(str(failure), token)}".rstrip(),
                        hint="check the network and the environment's endpoints; the call was "
                        + ("retried" if retry_safe else "not retried because it writes"),
                        retryable=True,
                        maybe_sent=not never_sent,
                    ) from failure
                await asyncio.sleep(self.retry.wait(self.retry.delay(attempt, None, self._rng), started))
                attempt += 1
                continue
            if response.status_code in TRANSIENT_STATUS:
                throttled = response.status_code == 429  # refused before any work: safe to send again
                if (not retry_safe and not throttled) or self.retry.exhausted(attempt, started):
                    raise Unreachable(
                        f"{where} answered {response.status_code} {self.attempts_text(attempt, started)}",
                        status=response.status_code,
                        hint="Provena is overloaded or restarting; try again later"
                        if retry_safe or throttled
                        else "the write may have been carried out; apply again checks before repeating it",
                        retryable=True,
                        maybe_sent=not throttled,
                    )
                delay = self.retry.delay(attempt, retry_after(response), self._rng)
                await asyncio.sleep(self.retry.wait(delay, started))
                attempt += 1
                continue
            if response.status_code == 401:
                detail = redact(detail_of(response), token)
                # A 401 that blames the token (expired, or signed by a key since rotated): renew it once.
                if not refreshed and detail in TOKEN_DETAILS[:2] and await self.auth.refresh(token):
                    refreshed = True
                    continue
                raise NotAuthorised(
                    f"{where} was refused (401): {detail}",
                    status=401,
                    detail=detail,
                    hint=refusal_hint(detail, token, self.environment),
                )
            return response

    def attempts_text(self, attempt: int, started: float) -> str:
        tried = f"after {attempt + 1} attempt{'s' if attempt else ''}"
        elapsed = time.monotonic() - started
        return tried + (f" over {elapsed:.0f} s" if attempt and elapsed >= 1 else "")

    async def parsed(
        self,
        model: type[M],
        service: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        retry_safe: bool = True,
        sized: Callable[[int], None] | None = None,
    ) -> M:
        """A 200 response checked against Provena's published model (pydantic-core parses and checks in
        one pass: a 500 KB trial delete in ~0.2 ms, a tenth of the json module's time). `sized` is told
        the answer's length."""
        response = await self._ok(service, method, path, params=params, json=json, retry_safe=retry_safe)
        if sized is not None:
            sized(len(response.content))
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise _unexpected(self.where(service, method, path, params), response, model, exc) from exc

    async def parsed_with_raw(
        self,
        model: type[M],
        service: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> tuple[M, dict[str, Any]]:
        """As `parsed`, with the raw JSON object too, for records that must be kept (and fingerprinted)
        exactly as read, fields the published model does not know included.

        pydantic-core's parser shares repeated strings (keys, ids, enum values) across responses, which
        halves what 10,000 kept records weigh and parses in half the json module's time."""
        response = await self._ok(service, method, path, params=params, json=json, retry_safe=True)
        try:
            try:
                raw = from_json(response.content, cache_strings="all")
            except ValueError as exc:
                raise NotJson(str(exc)) from exc
            if not isinstance(raw, dict):
                raise ValueError(f"a JSON {type(raw).__name__}, not an object")
            return model.model_validate(raw), raw
        except (ValidationError, ValueError) as exc:
            raise _unexpected(self.where(service, method, path, params), response, model, exc) from exc

    async def _ok(
        self,
        service: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None,
        json: Any,
        retry_safe: bool,
    ) -> Answer:
        """The response when it is a 200; any other status is an error naming the call."""
        response = await self.call(service, method, path, params=params, json=json, retry_safe=retry_safe)
        if response.status_code != 200:
            detail = redact(detail_of(response), response.token)
            raise ProvenaError(
                f"{self.where(service, method, path, params)} answered {response.status_code}: {detail}",
                status=response.status_code,
                detail=detail,
                hint=answer_hint(detail, self.environment),
            )
        return response


MAX_RESPONSE_BYTES = 128 * 1024 * 1024  # decoded; Provena's largest answers (trial deletes) are ~1 MB


class NotJson(ValueError):
    pass


def _unexpected(
    where: str, response: Answer, model: type[BaseModel], exc: ValidationError | ValueError
) -> Unexpected:
    not_json = isinstance(exc, NotJson) or (
        isinstance(exc, ValidationError) and any(e["type"] == "json_invalid" for e in exc.errors())
    )
    if not_json:
        return Unexpected(
            f"{where} answered something that is not JSON: {redact(response.text[:200], response.token)!r}",
            status=200,
            hint="check that the environment's endpoint points at this Provena service",
        )
    return Unexpected(
        f"{where} answered a body that does not match Provena's {model.__name__}: "
        f"{redact(_validation_summary(exc), response.token)}",
        status=200,
        hint="check that the endpoint is this Provena service and that its version is one "
        "provena-ops supports (provena-interfaces-v2 2.10)",
    )


def redact(text: str, token: str) -> str:
    """Provena's error bodies (or a gateway's) may quote the request's credentials back."""
    return text.replace(token, "<token>") if len(token) >= 8 else text


def _target_or_none(url: str) -> Target | None:
    """A service's URL split once; None when it cannot be one (each call then says why)."""
    try:
        return Target.of(url)
    except (ValueError, httpcore.UnsupportedProtocol):
        return None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


BASE_HEADER_LIST = [
    (b"User-Agent", f"provena-ops/{__version__}".encode()),
    (b"Accept", b"application/json"),
    (b"Accept-Encoding", b"gzip, deflate"),  # a gateway may compress: trial deletes are ~500 KB of ids
]


def proxy_for(url: str) -> str | None:
    """The proxy the environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY, as curl and httpx read them) sets
    for `url`, if any: one transport per lane bypasses the client layer that would otherwise apply it."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment()  # the environment only, as curl and httpx do
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass_environment(parts.netloc, proxies):  # type: ignore[attr-defined]
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def _validation_summary(exc: ValidationError | ValueError) -> str:
    if not isinstance(exc, ValidationError):
        return str(exc)
    errors = exc.errors(include_url=False)
    shown = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in errors[:3])
    return shown + (f" (and {len(errors) - 3} more)" if len(errors) > 3 else "")


def detail_of(response: Answer) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, dict):
        detail = body.get("detail")
        if isinstance(detail, str):
            return detail
        if isinstance(detail, list):
            return "; ".join(
                f"{'.'.join(str(p) for p in entry.get('loc', []))}: {entry.get('msg')}"
                for entry in detail
                if isinstance(entry, dict)
            )
        status = body.get("status")
        if isinstance(status, dict) and "details" in status:
            return str(status["details"])
    return str(body)[:300]
