"""Shared fixtures: a seeded sandbox database made once, copied per test, served by real uvicorn."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from provena_ops.sandbox import RunningSandbox, SandboxSettings, running_sandbox
from provena_ops.sandbox.context import Sandbox
from provena_ops.sandbox.seed import SeedSummary, seed_demo


@pytest.fixture(autouse=True)
def token_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Sign-ins are cached per test, never in the developer's own ~/.cache. Retries last 5 s, not the
    default minute: tests that exhaust them on purpose would otherwise wait (the fault-convergence test
    runs with the default); crash reports go to the test's own directory."""
    path = tmp_path_factory.mktemp("token-cache")
    monkeypatch.setenv("PROVENA_OPS_CACHE_DIR", str(path))
    monkeypatch.setenv("PROVENA_OPS_RETRY_BUDGET", "5")
    monkeypatch.setenv("PROVENA_OPS_CRASH_DIR", str(tmp_path_factory.mktemp("crashes")))
    for variable in ("PROVENA_OPS_ACCESS_TOKEN", "PROVENA_OPS_OFFLINE_TOKEN", "PROVENA_OPS_CLIENT_SECRET"):
        monkeypatch.delenv(variable, raising=False)
    return path


@dataclass
class SeededTemplate:
    path: Path
    summary: SeedSummary


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> SeededTemplate:
    """The demo registry, seeded once per test session; tests get copies of the file."""
    path = tmp_path_factory.mktemp("template") / "sandbox.db"
    sandbox = Sandbox(SandboxSettings(db_path=path))
    summary = seed_demo(sandbox)
    sandbox.store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    sandbox.store.close()
    return SeededTemplate(path, summary)


@pytest.fixture
def sandbox_db(seeded_template: SeededTemplate, tmp_path: Path) -> Path:
    target = tmp_path / "sandbox.db"
    shutil.copyfile(seeded_template.path, target)
    return target


@pytest.fixture
def demo(seeded_template: SeededTemplate) -> SeedSummary:
    """Names of notable seeded records (locked record, study with a non-model-run link, ...)."""
    return seeded_template.summary


@pytest.fixture(scope="session")
def shared_server(
    seeded_template: SeededTemplate, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningSandbox]:
    """One real uvicorn server for the session; `server` restores its state before every test."""
    path = tmp_path_factory.mktemp("shared") / "sandbox.db"
    shutil.copyfile(seeded_template.path, path)
    with running_sandbox(SandboxSettings(db_path=path, random_seed=7)) as running:
        yield running


@pytest.fixture
def server(shared_server: RunningSandbox, seeded_template: SeededTemplate) -> RunningSandbox:
    """The demo registry, freshly restored, behind a real uvicorn on an ephemeral loopback port."""
    shared_server.sandbox.restore(seeded_template.path)
    return shared_server


@pytest.fixture
def empty_server(tmp_path: Path) -> Iterator[RunningSandbox]:
    with running_sandbox(SandboxSettings(db_path=tmp_path / "empty.db", random_seed=7)) as running:
        yield running


class Api:
    """An httpx client that knows the sandbox's per-service base URLs and mints tokens."""

    def __init__(self, running: RunningSandbox) -> None:
        self.running = running
        endpoints = running.endpoints
        self.registry = endpoints["registry_api_endpoint_override"]
        self.prov = endpoints["prov_api_endpoint_override"]
        self.jobs = endpoints["jobs_service_api_endpoint_override"]
        self.search = endpoints["search_api_endpoint_override"]
        self.keycloak = endpoints["keycloak_endpoint_override"]
        self.http = httpx.Client(timeout=30)
        self._sandbox = Sandbox(running.settings)

    def token(self, user: str = "admin", roles: list[str] | None = None, lifetime: int = 300) -> str:
        known = self._sandbox.realm.users().get(user, {"roles": []})
        return self._sandbox.realm.mint_access_token(
            user, roles if roles is not None else known["roles"], lifetime=lifetime
        )

    def auth(self, user: str = "admin", roles: list[str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user, roles)}"}

    def close(self) -> None:
        self.http.close()
        self._sandbox.store.close()


@pytest.fixture
def api(server: RunningSandbox) -> Iterator[Api]:
    client = Api(server)
    yield client
    client.close()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="Rewrite golden files from the current output instead of comparing (review the diff!).",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))
