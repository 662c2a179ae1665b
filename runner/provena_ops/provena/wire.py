"""One request on one keep-alive connection, through httpcore (httpx's own transport layer) directly.

Planning 100,000 records is bound by the client's CPU per request. httpx's client-side models cost most
of it: each request parses and re-validates its URL in pure Python, builds a Request and a Response
model and streams through three layers of iterators; the connection pool re-scans its connections on
every request. A lane here holds one httpcore connection per origin and sends ready-made requests on
it, the URL given as parts, so none of that runs. Measured by benchmarks/scale_growth.py (client CPU per
request, before and after, in the commit that made this module).
"""

from __future__ import annotations

import ssl
import time
import zlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpcore
from pydantic_core import from_json

# A connection idle for longer may have been closed by the server (uvicorn closes after 5 s): it is
# checked before use, as httpcore's pool checks every connection on every request.
IDLE_CHECK_S = 1.0

# httpcore reads a body 64 KB at a time, and each read passes through h11's buffer and anyio's timeout
# scopes. A trial delete on a registry of 100,000 runs answers ~11 MB (every record id of every shared
# graph element); reading up to 1 MB at a time cut the client's CPU per trial delete by a third
# (32 -> 22 ms; the commit that set it says how it was measured). Small answers are unaffected: a read
# returns what has arrived. A test checks httpcore still reads by this class attribute.
RECEIVE_BYTES = 1 << 20
httpcore.AsyncHTTP11Connection.READ_NUM_BYTES = RECEIVE_BYTES


class TooLarge(Exception):
    """The decoded body grew past the caller's budget (`declared`: the size its headers gave, if any)."""

    def __init__(self, declared: int | None = None) -> None:
        super().__init__(declared)
        self.declared = declared


class DecodingError(Exception):
    """The body is not in the encoding its headers name: sending again would not help."""


@dataclass(frozen=True)
class Target:
    """Where a service lives: scheme, host, port and path prefix, split once."""

    scheme: bytes
    host: bytes
    port: int | None
    prefix: str
    host_header: bytes

    @classmethod
    def of(cls, url: str) -> Target:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise httpcore.UnsupportedProtocol(f"the URL {url!r} is not http(s)://host/...")
        return cls(
            parts.scheme.encode(),
            parts.hostname.encode("idna"),
            parts.port,
            parts.path.rstrip("/"),
            parts.netloc.rsplit("@", 1)[-1].encode("idna"),
        )

    def url(self, path: str, params: dict[str, Any] | None) -> httpcore.URL:
        target = quote(self.prefix + path, safe="/:@!$&'()*+,;=-._~")
        if params:
            target += "?" + urlencode(params, quote_via=quote, safe="/")
        return httpcore.URL(scheme=self.scheme, host=self.host, port=self.port, target=target.encode())


@dataclass
class Answer:
    """What Provena answered: status, headers (lower-case names), and the decoded body."""

    status_code: int
    headers: dict[str, str]
    content: bytes
    token: str = field(default="", repr=False)  # to redact from anything quoted back

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    @property
    def reason_phrase(self) -> str:
        return {401: "Unauthorized", 404: "Not Found", 500: "Internal Server Error"}.get(self.status_code, "")

    def json(self) -> Any:
        return from_json(self.content)


class Connection:
    """One keep-alive connection to one origin (or through one proxy), replaced when it closes."""

    def __init__(self, target: Target, ssl_context: ssl.SSLContext, proxy: str | None) -> None:
        self.target = target
        self.ssl_context = ssl_context
        self.proxy = proxy
        self.used_at = 0.0
        self._connection: httpcore.AsyncHTTPConnection | None = None
        self._proxied: httpcore.AsyncHTTPProxy | None = None

    async def _usable(self) -> httpcore.AsyncHTTPConnection | httpcore.AsyncHTTPProxy:
        if self.proxy is not None:  # a pool of one, which checks its connection itself
            if self._proxied is None:
                self._proxied = httpcore.AsyncHTTPProxy(
                    proxy_url=self.proxy, ssl_context=self.ssl_context, max_connections=1
                )
            return self._proxied
        current = self._connection
        if current is not None:
            idle = time.monotonic() - self.used_at > IDLE_CHECK_S
            if current.is_closed() or (idle and current.has_expired()):
                await current.aclose()
                current = None
        if current is None:
            port = self.target.port or default_port(self.target)
            origin = httpcore.Origin(self.target.scheme, self.target.host, port)
            current = self._connection = httpcore.AsyncHTTPConnection(
                origin, ssl_context=self.ssl_context, keepalive_expiry=30.0
            )
        return current

    async def send(
        self,
        method: str,
        url: httpcore.URL,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        timeout: dict[str, float | None],
        budget: int,
    ) -> tuple[int, dict[str, str], bytes]:
        connection = await self._usable()
        request = httpcore.Request(
            method.encode(), url, headers=headers, content=body, extensions={"timeout": timeout}
        )
        try:
            response = await connection.handle_async_request(request)
        except httpcore.ConnectionNotAvailable:  # closed between the check and the send: never sent
            await self.aclose()
            raise httpcore.ConnectError("the kept-alive connection had closed") from None
        try:
            names = {
                key.decode("latin-1").lower(): value.decode("latin-1") for key, value in response.headers
            }
            declared = names.get("content-length", "")
            if declared.isdigit() and int(declared) > budget:
                raise TooLarge(int(declared))
            content = await _decoded(response, names.get("content-encoding", ""), budget)
        finally:
            await response.aclose()
            self.used_at = time.monotonic()
        return response.status, names, content

    async def aclose(self) -> None:
        connection, proxied, self._connection, self._proxied = self._connection, self._proxied, None, None
        if connection is not None:
            await connection.aclose()
        if proxied is not None:
            await proxied.aclose()


def default_port(target: Target) -> int:
    return 443 if target.scheme == b"https" else 80


async def _decoded(response: httpcore.Response, encoding: str, budget: int) -> bytes:
    """The body with gzip or deflate undone, refused once it passes `budget` bytes."""
    decoder: Any = None
    if encoding in ("gzip", "x-gzip"):
        decoder = zlib.decompressobj(zlib.MAX_WBITS | 16)
    elif encoding == "deflate":
        decoder = zlib.decompressobj()
    elif encoding not in ("", "identity"):
        raise DecodingError(f"the answer is encoded as {encoding!r}, which was not asked for")
    chunks: list[bytes] = []
    size = 0
    stream: Any = response.stream
    async for chunk in stream:
        if decoder is not None:
            try:
                chunk = decoder.decompress(chunk, budget - size + 1)
            except zlib.error as exc:
                raise DecodingError(f"the answer's {encoding} encoding is broken: {exc}") from None
            if decoder.unconsumed_tail:
                raise TooLarge
        size += len(chunk)
        if size > budget:
            raise TooLarge
        chunks.append(chunk)
    if decoder is not None:
        rest = decoder.flush()
        size += len(rest)
        if size > budget:
            raise TooLarge
        chunks.append(rest)
    return b"".join(chunks)
