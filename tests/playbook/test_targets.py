"""The sandbox environment starts on demand, seeds on first use, and is reached over real HTTP."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import httpx

from provena_ops.environments.file import BUILTIN_SANDBOX, ToolingEnvironment
from provena_ops.environments.target import open_target


def test_sandbox_target_seeds_on_first_use_and_serves_over_http(tmp_path: Path) -> None:
    with open_target(BUILTIN_SANDBOX, {}, cwd=tmp_path) as target:
        assert target.sandbox_db == tmp_path / ".provena-ops" / "sandbox.db"
        assert target.endpoints.registry.startswith("http://127.0.0.1:")
        realm = httpx.get(target.endpoints.keycloak, timeout=10).json()
        assert realm["realm"] == "provena" and realm["public_key"]
        status = httpx.get(target.endpoints.registry.rsplit("/", 1)[0] + "/sandbox/status", timeout=10).json()
        assert status["items"] == 113
        first = target.endpoints.registry
    assert not (tmp_path / ".provena-ops" / "sandbox.db.seeding").exists()
    with open_target(BUILTIN_SANDBOX, {}, cwd=tmp_path) as target:  # state kept, not reseeded
        status = httpx.get(target.endpoints.registry.rsplit("/", 1)[0] + "/sandbox/status", timeout=10).json()
        assert status["items"] == 113
        second = target.endpoints.registry
    # Each command gets its own free port (the kernel's pick: the same one twice is a 1-in-28,000
    # chance), and its server is gone when the command ends.
    assert urlsplit(first).port != urlsplit(second).port, (first, second)
    for url in (first, second):
        try:
            httpx.get(url, timeout=2)
        except httpx.TransportError:
            continue
        raise AssertionError(f"the sandbox at {url} kept running after the command")


def test_remote_target_derives_endpoints_without_any_network() -> None:
    env = ToolingEnvironment(name="prod", stage="PROD", domain="example.org", realm_name="r")
    with open_target(env, {}) as target:
        assert target.is_production
        assert target.endpoints.prov == "https://prov-api.example.org"
        assert target.sandbox_db is None
        assert target.auth.method == "device"
