"""Transient faults on service routes (5xx, 429 with Retry-After, dropped and lost answers) whose
fate repeats: with the same fault seed, the same request meets the same fault on every run (fates.py).
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from provena_ops.sandbox.context import Sandbox

FAULT_BODY = b'{"detail":"Sandbox fault injection: transient failure."}'


class FaultInjector:
    """ASGI middleware: latency on every service request, then a fault for a `fault_rate` share."""

    def __init__(self, app: ASGIApp, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith("/sandbox"):
            await self.app(scope, receive, send)
            return
        settings = self.sandbox.settings
        if settings.latency_ms > 0:
            await asyncio.sleep(settings.latency_ms / 1000)
        path = str(scope.get("path", ""))
        aimed = not settings.fault_paths or path.endswith(settings.fault_paths)
        if not (aimed and settings.fault_rate > 0):
            await self.app(scope, receive, send)
            return
        body, receive = await _buffered(receive)
        draw = self.sandbox.fates.draw(
            str(scope.get("method", "")), path, bytes(scope.get("query_string", b"")), body
        )
        if draw >= settings.fault_rate:
            await self.app(scope, receive, send)
            return
        kind = self.sandbox.fates.pick(settings.fault_kinds, draw, settings.fault_rate)
        scope.setdefault("state", {})["sandbox_fault"] = kind
        if kind == "lost":
            await self._lose_answer(scope, receive, send)
        else:
            await self._fail(kind, send)

    async def _lose_answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The request is carried out, then the connection drops before the answer: what a gateway
        timeout or a network cut looks like to a client that wrote something."""

        async def swallow(message: Message) -> None:
            return None

        await self.app(scope, receive, swallow)
        await self._fail("drop", send)

    async def _fail(self, kind: str, send: Send) -> None:
        if kind == "drop":
            # Start a response and abandon it: the client sees the connection close mid-message.
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")],
                }
            )
            await send({"type": "http.response.body", "body": b'{"status":', "more_body": True})
            raise ConnectionAbortedError("sandbox fault injection: dropped connection")
        headers = [(b"content-type", b"application/json")]
        if kind == "429":
            headers.append((b"retry-after", str(self.sandbox.settings.retry_after_s).encode()))
        headers.append((b"content-length", str(len(FAULT_BODY)).encode()))
        await send({"type": "http.response.start", "status": int(kind), "headers": headers})
        await send({"type": "http.response.body", "body": FAULT_BODY})


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """The whole request body, and a `receive` that hands it to the app again."""
    chunks: list[bytes] = []
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(bytes(message.get("body", b"")))
        if not message.get("more_body", False):
            break

    async def replay() -> Message:
        if messages:
            return messages.pop(0)
        return await receive()

    return b"".join(chunks), replay


def job_fate(sandbox: Sandbox, target: str) -> bool:
    """Whether a job on `target` ends FAILED under `job_fail_rate` (repeatable like request faults)."""
    rate = sandbox.settings.job_fail_rate
    return rate > 0 and sandbox.fates.draw("job", target) < rate
