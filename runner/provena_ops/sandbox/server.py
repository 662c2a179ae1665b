"""Serve the sandbox with uvicorn on loopback, in the foreground (CLI) or a background thread (tests)."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn

from provena_ops.sandbox.app import build_app, service_urls
from provena_ops.sandbox.context import Sandbox, SandboxSettings


class NotLoopback(ValueError):
    pass


def bind(host: str, port: int, allow_remote: bool = False) -> socket.socket:
    """Bind before uvicorn starts, so port 0 yields a known ephemeral port with no race."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not allow_remote:
        raise NotLoopback(
            f"refusing to serve the sandbox on {host}: it listens on loopback only; pass "
            "--allow-remote to override"
        )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this; without it, responses written as headers + body wait on
    # delayed ACKs (40 ms per request on Linux loopback).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def base_url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def make_server(settings: SandboxSettings, log_level: str = "warning") -> tuple[uvicorn.Server, Sandbox]:
    app = build_app(settings)
    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="on", timeout_keep_alive=30)
    sandbox: Sandbox = app.state.sandbox
    return uvicorn.Server(config), sandbox


@dataclass
class RunningSandbox:
    base_url: str
    settings: SandboxSettings
    # The server's own state, for in-process harnesses (tests restoring a snapshot between cases).
    sandbox: Sandbox

    @property
    def endpoints(self) -> dict[str, str]:
        return service_urls(self.base_url, self.settings.realm_name)


@contextlib.contextmanager
def running_sandbox(settings: SandboxSettings, host: str = "127.0.0.1") -> Iterator[RunningSandbox]:
    """A real uvicorn server on an ephemeral loopback port, in a thread, for the block's duration."""
    sock = bind(host, 0)
    server, sandbox = make_server(settings)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the sandbox server did not start")
        time.sleep(0.01)
    try:
        yield RunningSandbox(base_url_of(sock), settings, sandbox)
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()
