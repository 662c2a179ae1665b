"""The commands that describe rather than act: `version`, `schema`, `environments`."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.table import Table

from provena_ops import __version__
from provena_ops.cli.options import (
    ENVIRONMENTS_FILE_OPTION,
    PARAM_OPTION,
    out,
)
from provena_ops.errors import ProvenaOpsError


def version() -> None:
    """Print the provena-ops version."""
    out.print(__version__)


def schema(
    name: str = typer.Argument("playbook", help="Which schema: playbook, plan or journal-event."),
) -> None:
    """Print a JSON Schema generated from provena-ops' models (for editors and CI tooling)."""
    from provena_ops.playbook.schema import SCHEMAS, render_schema

    if name not in SCHEMAS:
        raise ProvenaOpsError(
            f"there is no schema named {name!r}", hint=f"choose one of: {', '.join(SCHEMAS)}"
        )
    sys.stdout.write(render_schema(name))


def environments(
    name: str | None = typer.Argument(None, help="Show one environment's endpoints."),
    environments_file: Path | None = ENVIRONMENTS_FILE_OPTION,
    param: list[str] | None = PARAM_OPTION,
) -> None:
    """List the environments a playbook can target, or show where one environment's APIs are."""
    from provena_ops.environments.file import (
        derive_endpoints,
        load_environments,
        missing_params,
        parse_params,
    )

    known = load_environments(environments_file)
    params = parse_params(param or [])
    if name is None:
        table = Table(title=f"Environments ({known.source})")
        for column in ("name", "stage", "domain", "target"):
            table.add_column(column)
        for env in known.envs.values():
            needs = missing_params(env, params)
            if env.is_sandbox:
                target = "embedded sandbox"
            elif needs:
                target = f"(needs --param {', '.join(needs)})"
            else:  # the registry API as Provena derives it: an override wins over the domain
                target = derive_endpoints(env, params).registry + " ..."
            table.add_row(env.name, env.stage, env.domain, target)
        out.print(table)
        return
    env = known.get(name)
    if env.is_sandbox:
        assert env.provena_ops is not None and env.provena_ops.sandbox is not None
        out.print(
            f"{env.name}: the embedded sandbox, started on a free loopback port for each command; "
            f"state in {env.provena_ops.sandbox.db} (seeded with {env.provena_ops.sandbox.seed} on first use)"
        )
        return
    endpoints = derive_endpoints(env, params)
    table = Table(title=f"{env.name} ({env.stage})")
    table.add_column("service")
    table.add_column("base URL")
    for service in ("registry", "prov", "jobs", "search", "keycloak"):
        table.add_row(service, getattr(endpoints, service))
    for service, url in endpoints.others.items():
        table.add_row(service, url)
    out.print(table)
