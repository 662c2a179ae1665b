"""Small stand-ins served for real on loopback, for what the sandbox cannot be: a service that is not
Provena, a forward proxy, a server that counts connections. And reading a pseudo-terminal to its end."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """`handler` on a free loopback port, in a thread, for the block; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def read_terminal(controller: int, answer: tuple[bytes, bytes] | None = None) -> bytes:
    """Everything written to a pseudo-terminal until its other side closes; types answer[1] once
    answer[0] has been shown."""
    seen = b""
    answered = answer is None
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the other side closed (EIO on Linux)
            return seen
        if not chunk:
            return seen
        seen += chunk
        if not answered and answer is not None and answer[0] in seen:
            os.write(controller, answer[1])
            answered = True
