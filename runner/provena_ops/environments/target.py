"""Resolve an environment into a reachable target: derived endpoints, or the sandbox started on demand.

A command that targets the sandbox gets a real server on a free loopback port for its duration, with its
state in the working directory, seeded with the demo registry the first time; the rest of the runner then
talks to it over HTTP exactly as it would to a deployment.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provena_ops.environments.checks import is_production_stage
from provena_ops.environments.file import AuthOptions, Endpoints, ToolingEnvironment, derive_endpoints
from provena_ops.errors import ProvenaOpsError


@dataclass(frozen=True)
class TargetArgs:
    """Which environment a command talks to, as its command line says (-e, --param, --environments):
    the one value every command builds and hands on."""

    environment: str | None = None  # None: the playbook's own
    params: Mapping[str, str] = field(default_factory=dict)
    environments_file: Path | None = None  # None: Provena's search order
    cwd: Path | None = None  # where relative paths (a sandbox database) are resolved
    variables: Mapping[str, Any] = field(default_factory=dict)  # --var and --var-file: playbook vars


@dataclass(frozen=True)
class Target:
    name: str
    stage: str
    endpoints: Endpoints
    auth: AuthOptions
    sandbox_db: Path | None = None  # set when the target is the embedded sandbox

    @property
    def identity(self) -> str:
        """What a plan records as the registry it read: the registry URL, or for the embedded sandbox its
        database (served on a different loopback port by every command)."""
        return f"sandbox:{self.sandbox_db}" if self.sandbox_db is not None else self.endpoints.registry

    @property
    def is_production(self) -> bool:
        return is_production_stage(self.stage)


def sandbox_db_path(env: ToolingEnvironment, cwd: Path | None = None) -> Path | None:
    """Where an embedded-sandbox environment keeps its state (None for a deployment)."""
    options = env.provena_ops
    if options is None or options.sandbox is None:
        return None
    db = Path(options.sandbox.db)
    return db if db.is_absolute() else (cwd or Path.cwd()) / db


def target_identity(env: ToolingEnvironment, params: Mapping[str, str], cwd: Path | None = None) -> str:
    """Target.identity, known without starting or contacting anything."""
    db = sandbox_db_path(env, cwd)
    return f"sandbox:{db}" if db is not None else derive_endpoints(env, params).registry


@contextlib.contextmanager
def open_target(
    env: ToolingEnvironment, params: Mapping[str, str], cwd: Path | None = None
) -> Iterator[Target]:
    options = env.provena_ops
    auth = options.auth if options and options.auth else AuthOptions()
    if options is None or options.sandbox is None:
        yield Target(env.name, env.stage, derive_endpoints(env, params), auth)
        return
    db = sandbox_db_path(env, cwd)
    assert db is not None
    if not db.exists() and options.sandbox.seed == "demo":
        _seed_first_use(db)
    from provena_ops.sandbox import SandboxSettings, running_sandbox

    try:
        server = running_sandbox(SandboxSettings(db_path=db))
        running = server.__enter__()
    except Exception as exc:
        raise ProvenaOpsError(
            f"cannot start the embedded sandbox on {db}: {exc}",
            hint="check that the directory is writable; `provena-ops sandbox reset --db ...` empties a "
            "damaged sandbox",
        ) from exc
    try:
        endpoints = running.endpoints
        yield Target(
            env.name,
            env.stage,
            Endpoints(
                registry=endpoints["registry_api_endpoint_override"],
                prov=endpoints["prov_api_endpoint_override"],
                jobs=endpoints["jobs_service_api_endpoint_override"],
                search=endpoints["search_api_endpoint_override"],
                keycloak=endpoints["keycloak_endpoint_override"],
                others={},
            ),
            auth,
            sandbox_db=db,
        )
    finally:
        server.__exit__(None, None, None)


def _seed_first_use(db: Path) -> None:
    from provena_ops.sandbox import admin

    db.parent.mkdir(parents=True, exist_ok=True)
    partial = db.with_name(db.name + ".seeding")
    for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
        leftover.unlink(missing_ok=True)
    admin.seed(partial, 60, reset=False)
    partial.replace(db)  # seeded completely or not at all: an interrupted first use seeds again next time
