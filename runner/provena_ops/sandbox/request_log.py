"""`sandbox serve --request-log FILE`: one JSON line per request, appended as each answer ends.

A line says what a client asked and what it got (method, path, query, status, duration, the fault
injected if any), so a rehearsal can be inspected and compared with another. It never holds a
credential: headers and bodies are not logged, and query values whose names say secret are masked.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import IO
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECRET_WORDS = ("token", "secret", "password", "code", "assertion", "key", "auth")
MASK = "***"


def masked_query(raw: bytes) -> str:
    """The query string with the value of every parameter that could carry a credential masked."""
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    return urlencode([(name, MASK if _secret(name) else value) for name, value in pairs])


def _secret(name: str) -> bool:
    return any(word in name.lower() for word in SECRET_WORDS)


class RequestLogFile:
    """The log file, opened for appending by the server and closed when it stops."""

    def __init__(self, path: Path) -> None:
        # Line-buffered append: each line reaches the file whole when its request ends, so a log
        # read while the server runs (or after it is killed) ends on a complete line.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._file: IO[str] = os.fdopen(fd, "a", buffering=1, encoding="utf-8")

    def write(self, entry: dict[str, object]) -> None:
        if not self._file.closed:
            self._file.write(json.dumps(entry, separators=(",", ":")) + "\n")

    def close(self) -> None:
        self._file.close()


class RequestLog:
    """ASGI middleware, outermost: the logged status is the one the client received, faults included."""

    def __init__(self, app: ASGIApp, log: RequestLogFile) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        answered: dict[str, int] = {}

        async def recording(message: Message) -> None:
            if message["type"] == "http.response.start":
                answered["status"] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording)
        finally:
            self._write(scope, answered.get("status"), time.monotonic() - started)

    def _write(self, scope: Scope, status: int | None, elapsed_s: float) -> None:
        state = scope.get("state") or {}
        entry = {
            "time": round(time.time(), 3),
            "method": scope.get("method"),
            "path": scope.get("path"),
            "query": masked_query(bytes(scope.get("query_string", b""))),
            "status": status,
            "duration_ms": round(elapsed_s * 1000, 2),
            "fault": state.get("sandbox_fault"),
        }
        self.log.write(entry)
