"""The embedded Provena-compatible sandbox: FastAPI + SQLite on loopback, reached only over HTTP."""

from provena_ops.sandbox.app import SERVICE_PREFIXES, build_app, service_urls
from provena_ops.sandbox.context import Sandbox, SandboxSettings
from provena_ops.sandbox.server import RunningSandbox, running_sandbox

__all__ = [
    "SERVICE_PREFIXES",
    "RunningSandbox",
    "Sandbox",
    "SandboxSettings",
    "build_app",
    "running_sandbox",
    "service_urls",
]
