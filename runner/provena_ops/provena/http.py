"""One keep-alive connection pool per target, bounded concurrency, safe retries, and plain-words errors.

Reads are always safe to retry. Transient failures (connection errors, timeouts, 429 honouring
Retry-After, 502/503/504) are retried with exponential backoff and full jitter, a bounded number of
times; a 401 with an expired token refreshes the token once. Nothing else is retried: 400/404/422 and the
other 401s are answers, not accidents.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from ..environments import Endpoints
from .auth import TokenSource
from .errors import NotAuthorised, ProvenaError, Unreachable

TRANSIENT_STATUS = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay_s: float = 0.25
    max_delay_s: float = 8.0
    max_retry_after_s: float = 60.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_retry_after_s)
        return rng.uniform(0, min(self.max_delay_s, self.base_delay_s * 2**attempt))


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
        self._limit = asyncio.Semaphore(concurrency)
        self._client = httpx.AsyncClient(
            timeout=timeout_s,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )
        self._rng = random.Random()
        self.requests = 0  # sent, retries included: benchmarks and the plan's summary read it

    async def __aenter__(self) -> ProvenaHttp:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._client.aclose()

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        retry_safe: bool = True,
    ) -> httpx.Response:
        """Send one request; returns any response that is not a transient failure or an auth refusal."""
        url = self.bases[service] + path
        refreshed = False
        attempt = 0
        while True:
            headers = {"Authorization": f"Bearer {await self.auth.token()}"}
            try:
                async with self._limit:
                    self.requests += 1
                    response = await self._client.request(
                        method, url, params=params, json=json, headers=headers
                    )
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                if not retry_safe or attempt + 1 >= self.retry.attempts:
                    raise Unreachable(
                        f"{method} {path} on {service} API of '{self.environment}' failed: "
                        f"{type(exc).__name__} {exc}".rstrip(),
                        hint="check the network and the environment's endpoints; the call was "
                        + ("retried" if retry_safe else "not retried because it writes"),
                        retryable=True,
                    ) from exc
                await asyncio.sleep(self.retry.delay(attempt, None, self._rng))
                attempt += 1
                continue
            if response.status_code in TRANSIENT_STATUS:
                if not retry_safe or attempt + 1 >= self.retry.attempts:
                    raise Unreachable(
                        f"{method} {path} on {service} API of '{self.environment}' answered "
                        f"{response.status_code} {self.attempts_text(attempt)}",
                        status=response.status_code,
                        hint="Provena is overloaded or restarting; try again later",
                        retryable=True,
                    )
                await asyncio.sleep(self.retry.delay(attempt, _retry_after(response), self._rng))
                attempt += 1
                continue
            if response.status_code == 401:
                if not refreshed and self.auth.expired() and await self.auth.refresh():
                    refreshed = True
                    continue
                raise NotAuthorised(
                    f"{method} {path} on {service} API of '{self.environment}' was refused (401): "
                    f"{detail_of(response)}",
                    status=401,
                    hint=f"Provena answers 401 for a missing role, a missing item permission or a locked "
                    f"record; signed in as {self.auth.username}",
                )
            return response

    def attempts_text(self, attempt: int) -> str:
        return f"after {attempt + 1} attempt{'s' if attempt else ''}"

    async def json(
        self,
        service: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        retry_safe: bool = True,
    ) -> Any:
        """The JSON body of a 200; any other status is an error naming the call and Provena's detail."""
        response = await self.call(service, method, path, params=params, json=json, retry_safe=retry_safe)
        if response.status_code != 200:
            raise ProvenaError(
                f"{method} {path} on {service} API of '{self.environment}' answered {response.status_code}: "
                f"{detail_of(response)}",
                status=response.status_code,
            )
        try:
            return response.json()
        except ValueError as exc:
            raise ProvenaError(
                f"{method} {path} on {service} API of '{self.environment}' answered non-JSON: "
                f"{response.text[:200]!r}",
                status=response.status_code,
            ) from exc


def detail_of(response: httpx.Response) -> str:
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


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
