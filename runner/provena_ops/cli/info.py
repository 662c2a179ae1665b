"""The commands that describe rather than act: `version`, `schema`, `environments`."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from provena_ops import __version__
from provena_ops.cli.options import (
    ENVIRONMENTS_FILE_OPTION,
    PARAM_OPTION,
    out,
)
from provena_ops.errors import ProvenaOpsError
from provena_ops.render.outputs import OutputFormat

if TYPE_CHECKING:
    from provena_ops.environments.file import Environments, ToolingEnvironment
    from provena_ops.render.outputs import EnvironmentEntry


def version() -> None:
    """Print the provena-ops version."""
    out.print(__version__)


def schema(
    name: str = typer.Argument(
        "playbook",
        metavar="NAME",
        help="Which schema, e.g. playbook, plan, journal-event, apply-result (an unknown name lists them).",
    ),
) -> None:
    """Print a JSON Schema generated from provena-ops' models (for editors and CI tooling)."""
    from provena_ops.playbook.schema import SCHEMAS, render_schema

    if name not in SCHEMAS:
        raise ProvenaOpsError(
            f"there is no schema named {name!r}", hint=f"choose one of: {', '.join(SCHEMAS)}"
        )
    sys.stdout.write(render_schema(name))


def environments(
    name: str | None = typer.Argument(None, metavar="NAME", help="Show one environment's endpoints."),
    environments_file: Path | None = ENVIRONMENTS_FILE_OPTION,
    param: list[str] | None = PARAM_OPTION,
    output: OutputFormat = typer.Option(
        OutputFormat.text, "--format", help="text, or json (one document, schemas/environments.schema.json)."
    ),
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
    if output is OutputFormat.json:
        chosen = [known.get(name)] if name is not None else list(known.envs.values())
        sys.stdout.write(_document(known, chosen, params))
        return
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


def _document(known: Environments, chosen: list[ToolingEnvironment], params: Mapping[str, str]) -> str:
    from provena_ops.render.outputs import EnvironmentsDocument, dump

    return dump(
        EnvironmentsDocument(source=known.source, environments=[_entry(env, params) for env in chosen])
    )


def _entry(env: ToolingEnvironment, params: Mapping[str, str]) -> EnvironmentEntry:
    """One environment as a script needs it: endpoints derived as Provena derives them, when they can be."""
    from provena_ops.environments.file import derive_endpoints, missing_params
    from provena_ops.render.outputs import Endpoints, EnvironmentEntry, SandboxInfo

    options = env.provena_ops
    sandbox = options.sandbox if options is not None else None
    needs = missing_params(env, params)
    endpoints = None
    if sandbox is None and not needs:
        derived = derive_endpoints(env, params)
        endpoints = Endpoints(
            registry=derived.registry,
            prov=derived.prov,
            jobs=derived.jobs,
            search=derived.search,
            keycloak=derived.keycloak,
            others=dict(derived.others),
        )
    return EnvironmentEntry(
        name=env.name,
        stage=env.stage,
        domain=env.domain,
        production=env.is_production,
        auth_method=options.auth.method if options is not None and options.auth is not None else None,
        sandbox=SandboxInfo(db=sandbox.db, seed=sandbox.seed) if sandbox is not None else None,
        needs_params=needs,
        endpoints=endpoints,
    )
