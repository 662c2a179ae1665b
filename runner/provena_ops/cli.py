"""The `provena-ops` command line: thin wrappers that parse, call, print, and map errors to exit codes."""

from __future__ import annotations

import errno
import json
import os
import shlex
import signal
import sys
import traceback
from enum import StrEnum
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import typer
from rich.table import Table

from . import __version__
from .apply_cli import apply_command, log_app
from .auth_cli import AUTH_METHOD_OPTION, AuthMethod, auth_app, interactive_choice
from .cli_common import (
    CONCURRENCY_OPTION,
    ENVIRONMENT_OPTION,
    ENVIRONMENTS_FILE_OPTION,
    PARAM_OPTION,
    ReadProgress,
    err,
    out,
    write_atomically,
)
from .environments import DEFAULT_SANDBOX_DB
from .errors import Interrupted, ProvenaOpsError
from .gitops_cli import gitops_app
from .playbook.loader import LoadedPlaybook
from .redaction import scrub
from .signals import interrupted, terminate_like_interrupt
from .text import visible

app = typer.Typer(
    rich_markup_mode="markdown",  # (every group) reflows the docstrings' wrapped lines in --help
    help="Declarative playbooks for Provena administration, with an embedded Provena sandbox.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
sandbox_app = typer.Typer(
    rich_markup_mode="markdown",
    help="Run and manage the embedded Provena-compatible sandbox (FastAPI + SQLite on loopback).",
    no_args_is_help=True,
)
app.add_typer(sandbox_app, name="sandbox")
app.command("apply")(apply_command)
app.add_typer(log_app, name="log")
app.add_typer(auth_app, name="auth")
app.add_typer(gitops_app, name="gitops")

MAX_DELAY_MS = 600_000.0
DB_OPTION = typer.Option(Path(DEFAULT_SANDBOX_DB), "--db", help="Sandbox database file.")


def _sandbox_admin() -> ModuleType:
    """Imported on use: the sandbox pulls in FastAPI and uvicorn, which `validate` does not need."""
    from .sandbox import admin

    return admin


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


@app.command()
def version() -> None:
    """Print the provena-ops version."""
    out.print(__version__)


@app.command()
def validate(
    playbooks: list[Path] | None = typer.Argument(None, help="Playbook files to check."),
    changed_since: str | None = typer.Option(
        None, "--changed-since", help="Check every playbook under playbooks/ changed since this git ref."
    ),
    environment: str | None = ENVIRONMENT_OPTION,
    environments_file: Path | None = ENVIRONMENTS_FILE_OPTION,
    param: list[str] | None = PARAM_OPTION,
    output: OutputFormat = typer.Option(
        OutputFormat.text, "--format", help="text for people, json for tools."
    ),
) -> None:
    """Check playbooks offline; every problem is reported with file:line:column, what was expected and a hint.

    With `--environments FILE` and no playbook, checks the environments file alone. Exit status: 0 when
    everything is valid (warnings allowed), 1 otherwise.
    """
    from . import api
    from .environments import parse_params

    if not playbooks and changed_since is None and environments_file is not None:
        _validate_environments(environments_file, output)
        return
    if changed_since is not None:
        from .gitops import changed_playbooks

        if playbooks:
            raise ProvenaOpsError("give playbook files or --changed-since, not both")
        playbooks = changed_playbooks(changed_since, Path.cwd())
        if not playbooks:
            err.print(f"No playbook changed since {changed_since}: nothing to validate.", highlight=False)
            return
    elif not playbooks:
        raise ProvenaOpsError(
            "validate needs playbook files",
            hint="provena-ops validate FILE..., --changed-since REF, or --environments FILE alone",
        )
    loaded = api.validate(
        playbooks,
        environment=environment,
        params=parse_params(param or []),
        environments_file=environments_file,
    )
    if output is OutputFormat.json:
        print(json.dumps([api.report(item).model_dump(mode="json") for item in loaded], indent=2))
    else:
        for item in loaded:
            _print_validation(item)
    if not all(item.valid for item in loaded):
        raise typer.Exit(1)


def _validate_environments(path: Path, output: OutputFormat) -> None:
    from .environments import check_environments, read_environments_text

    parsed, diagnostics = check_environments(str(path), read_environments_text(path))
    errors = [d for d in diagnostics if d.severity == "error"]
    if output is OutputFormat.json:
        report = {
            "file": str(path),
            "valid": parsed is not None,
            "environments": len(parsed) if parsed is not None else 0,
            "diagnostics": [d.model_dump(mode="json") for d in diagnostics],
        }
        print(json.dumps([report], indent=2))
    else:
        for diagnostic in diagnostics:
            print(visible(diagnostic.render()))
        warnings = len(diagnostics) - len(errors)
        tail = f", {warnings} warning{'s' if warnings != 1 else ''}" if warnings else ""
        if parsed is not None:
            count = len(parsed)
            print(f"{path}: valid ({count} environment{'s' if count != 1 else ''}{tail})")
        else:
            print(f"{path}: {len(errors)} error{'s' if len(errors) != 1 else ''}{tail}")
    if parsed is None:
        raise typer.Exit(1)


def _print_validation(loaded: LoadedPlaybook) -> None:
    for diagnostic in loaded.diagnostics:
        print(visible(diagnostic.render()))
    errors = len(loaded.errors)
    warnings = len(loaded.diagnostics) - errors
    tail = f", {warnings} warning{'s' if warnings != 1 else ''}" if warnings else ""
    if loaded.valid and loaded.playbook is not None:
        count = len(loaded.playbook.operations)
        print(
            f"{loaded.file}: valid ({count} operation{'s' if count != 1 else ''}, "
            f"environment {loaded.environment}{tail})"
        )
    else:
        print(f"{loaded.file}: {errors} error{'s' if errors != 1 else ''}{tail}")


class PlanFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


@app.command()
def plan(
    playbook: Path | None = typer.Argument(None, help="The playbook to plan (or give --changed-since)."),
    save: Path | None = typer.Option(
        None, "--out", help="Save the plan as JSON (for review and `apply --plan`)."
    ),
    changed_since: str | None = typer.Option(
        None, "--changed-since", help="Plan every playbook under playbooks/ changed since this git ref."
    ),
    out_dir: Path | None = typer.Option(
        None, "--out-dir", help="With --changed-since: save each plan as JSON in this directory."
    ),
    output: PlanFormat = typer.Option(
        PlanFormat.text, "--format", help="text, json, or markdown (PR comments)."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="List unchanged records too."),
    environment: str | None = ENVIRONMENT_OPTION,
    environments_file: Path | None = ENVIRONMENTS_FILE_OPTION,
    param: list[str] | None = PARAM_OPTION,
    concurrency: int = CONCURRENCY_OPTION,
    auth_method: AuthMethod | None = AUTH_METHOD_OPTION,
) -> None:
    """Read live state and show what apply would change, record by record, field by field.

    Exit status: 0 no changes, 2 changes present, 1 error (a plan with problems or a usage error
    included), 130 interrupted.
    """
    from . import api
    from .environments import parse_params
    from .render.json_format import render_json
    from .render.markdown import render_markdown
    from .render.terminal import render_terminal

    if changed_since is not None or out_dir is not None:
        from .gitops_cli import plan_changed

        if playbook is not None or save is not None or changed_since is None:
            wrong = (
                "--out-dir goes with --changed-since"
                if changed_since is None
                else "--changed-since plans the playbooks changed since REF, so it takes no PLAYBOOK"
                if playbook is not None
                else "--out saves one playbook's plan; with --changed-since, plans go to --out-dir"
            )
            raise ProvenaOpsError(
                wrong, hint="give either a PLAYBOOK (with --out), or --changed-since REF (with --out-dir)"
            )
        plan_changed(
            changed_since, out_dir, output.value, verbose, environment, environments_file, param or [],
            concurrency, interactive_choice(auth_method),
        )  # fmt: skip
        return
    if playbook is None:
        raise ProvenaOpsError(
            "plan needs a playbook", hint="provena-ops plan PLAYBOOK, or --changed-since REF"
        )
    if save is not None:
        _check_writable(save, playbook)
    progress = ReadProgress() if err.is_terminal else None
    try:
        made = api.plan(
            playbook,
            environment=environment,
            params=parse_params(param or []),
            environments_file=environments_file,
            concurrency=concurrency,
            progress=progress,
            sign_in=interactive_choice(auth_method),
        )
    except KeyboardInterrupt:
        raise Interrupted(
            "plan interrupted while reading; plan only reads, so nothing was changed"
            + (" and no plan was saved" if save is not None else ""),
            hint="run it again when ready",
        ) from None
    finally:
        if progress is not None:
            progress.clear()
    unsaved: ProvenaOpsError | None = None
    if save is not None:
        try:
            write_atomically(save, render_json(made))
        except ProvenaOpsError as exc:
            unsaved, save = exc, None  # still show the plan, and claim no file
    if output is PlanFormat.json:
        sys.stdout.write(render_json(made))
    elif output is PlanFormat.markdown:
        sys.stdout.write(render_markdown(made, full_plan_at=str(save) if save else None))
    else:
        render_terminal(made, out, verbose=verbose)
    if unsaved is not None:
        raise unsaved
    if made.problems:
        raise typer.Exit(1)
    if made.has_changes:
        raise typer.Exit(2)


def _check_writable(path: Path, playbook: Path) -> None:
    """Refuse an unusable --out before reading anything, rather than losing the plan after: the plan is
    written beside the file and renamed over it, which would replace a device, a pipe or the playbook."""
    if path.is_dir():
        raise ProvenaOpsError(f"--out {path} is a directory", hint="give a file name, e.g. plan.json")
    if path.exists() and not path.is_file():
        raise ProvenaOpsError(
            f"--out {path} is not a regular file (a device, pipe or socket)",
            hint="give a file name, e.g. plan.json; to print the plan, use --format json",
        )
    if path.exists() and playbook.exists() and path.resolve() == playbook.resolve():
        raise ProvenaOpsError(
            f"--out {path} is the playbook itself; the plan would replace it",
            hint="give another file name, e.g. plan.json",
        )
    if not path.parent.is_dir():
        raise ProvenaOpsError(
            f"cannot write the plan to {path}: the directory {path.parent} does not exist",
            hint="create it first, or choose another --out path",
        )
    try:
        probe = path.with_name(f".{path.name}.probe")
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ProvenaOpsError(
            f"cannot write the plan to {path}: {exc.strerror or exc}",
            hint="choose a path in a writable directory",
        ) from exc


@app.command()
def init(
    directory: Path = typer.Argument(Path("."), help="Where to create the playbook repository."),
    install: str | None = typer.Option(
        None, "--install", help="How the CI workflow installs provena-ops (pip requirement or git URL)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace files that already exist."),
    branch: str = typer.Option(
        "main", "--branch", help="The branch merges land on: the workflow applies pushes to it."
    ),
) -> None:
    """Scaffold a playbook repository: environments, playbooks/, a pre-commit hook and a GitHub Actions
    workflow that plans pull requests and applies the reviewed plans on merge."""
    from .scaffold import WORKFLOW_PATH
    from .scaffold import init as scaffold

    made = scaffold(directory, install=install, force=force, branch=branch)
    for name in made.written:
        out.print(f"wrote {directory / name}", highlight=False)
    into = "" if directory == Path(".") else f"cd {shlex.quote(str(directory))} && "
    out.print(
        "\nNext:\n"
        f"  1. {into}git init -b {branch}   (if it is not a repository yet)\n"
        "  2. pre-commit install   (validate playbooks before each commit)\n"
        f"  3. check PROVENA_OPS_INSTALL in {WORKFLOW_PATH}\n"
        "  4. add your deployment to environments/environments.json and store its credentials: the\n"
        "     writing one in the GitHub Environment provena-apply, a read-only one as a repository\n"
        "     secret (docs/gitops.md in provena-ops, section 5)",
        highlight=False,
    )


@app.command()
def schema(
    name: str = typer.Argument("playbook", help="Which schema: playbook, plan or journal-event."),
) -> None:
    """Print a JSON Schema generated from provena-ops' models (for editors and CI tooling)."""
    from .playbook.schema import SCHEMAS, render_schema

    if name not in SCHEMAS:
        raise ProvenaOpsError(
            f"there is no schema named {name!r}", hint=f"choose one of: {', '.join(SCHEMAS)}"
        )
    sys.stdout.write(render_schema(name))


@app.command()
def environments(
    name: str | None = typer.Argument(None, help="Show one environment's endpoints."),
    environments_file: Path | None = ENVIRONMENTS_FILE_OPTION,
    param: list[str] | None = PARAM_OPTION,
) -> None:
    """List the environments a playbook can target, or show where one environment's APIs are."""
    from .environments import derive_endpoints, load_environments, missing_params, parse_params

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


@sandbox_app.command()
def serve(
    db: Path = DB_OPTION,
    host: str = typer.Option("127.0.0.1", help="Address to listen on (loopback unless --allow-remote)."),
    port: int = typer.Option(8765, help="Port to listen on; 0 picks a free one."),
    latency_ms: float = typer.Option(0.0, "--latency-ms", help="Delay added to every service request."),
    fault_rate: float = typer.Option(
        0.0, "--fault-rate", help="Share of requests answered with 5xx, 429 or a dropped connection."
    ),
    job_delay_ms: float = typer.Option(0.0, "--job-delay-ms", help="Delay of each job phase."),
    job_row_delay_ms: float = typer.Option(
        0.0, "--job-row-delay-ms", help="How long a new job's row stays invisible (400 on fetch)."
    ),
    job_fail_rate: float = typer.Option(0.0, "--job-fail-rate", help="Share of jobs that end FAILED."),
    seed_demo: bool = typer.Option(
        False, "--seed-demo", help="Seed the demo registry when the sandbox is empty."
    ),
    allow_remote: bool = typer.Option(
        False, "--allow-remote", help="Allow listening on a non-loopback address."
    ),
) -> None:
    """Serve the sandbox until interrupted, printing the endpoint overrides to use."""
    from .sandbox.context import SandboxSettings
    from .sandbox.server import NotLoopback, base_url_of, bind, make_server

    for name, rate in (("--fault-rate", fault_rate), ("--job-fail-rate", job_fail_rate)):
        if not 0 <= rate <= 1:
            raise ProvenaOpsError(f"{name} must be between 0 and 1, got {rate}")
    for name, value in (
        ("--latency-ms", latency_ms),
        ("--job-delay-ms", job_delay_ms),
        ("--job-row-delay-ms", job_row_delay_ms),
    ):
        if value < 0:
            raise ProvenaOpsError(f"{name} must not be negative, got {value}")
        if not value <= MAX_DELAY_MS:  # also refuses nan and inf, which would hang every request
            raise ProvenaOpsError(f"{name} must be at most {MAX_DELAY_MS:.0f}, got {value}")
    if not 0 <= port <= 65535:
        raise ProvenaOpsError(f"--port must be between 0 and 65535, got {port}", hint="0 picks a free port")
    try:
        sock = bind(host, port, allow_remote)
    except NotLoopback as exc:
        raise ProvenaOpsError(str(exc)) from exc
    except OSError as exc:
        hint = (
            f"{host} is not an address of this machine; use 127.0.0.1"
            if exc.errno == errno.EADDRNOTAVAIL
            else "pick another --port, or 0 for a free one"
        )
        raise ProvenaOpsError(f"cannot listen on {host}:{port}: {exc.strerror}", hint=hint) from exc
    admin = _sandbox_admin()
    try:
        admin.open_sandbox(db).store.close()  # an unusable --db fails here, before anything is printed
        if seed_demo and admin.is_empty(db):
            admin.seed(db, 60, reset=False)
    except ProvenaOpsError:
        sock.close()
        raise
    settings = SandboxSettings(
        db_path=db,
        latency_ms=latency_ms,
        fault_rate=fault_rate,
        job_delay_ms=job_delay_ms,
        job_row_delay_ms=job_row_delay_ms,
        job_fail_rate=job_fail_rate,
    )
    from .sandbox.app import service_urls

    server, _ = make_server(settings)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # uvicorn shuts down, then ends by SIGTERM (status 143)
    base_url = base_url_of(sock)
    err.print(f"Provena sandbox on {base_url} (database {db})")
    print(json.dumps(service_urls(base_url, settings.realm_name), indent=2), flush=True)
    server.run(sockets=[sock])


@sandbox_app.command()
def seed(
    db: Path = DB_OPTION,
    demo: bool = typer.Option(
        True, "--demo/--no-demo", help="Build the demo registry (the only seed so far)."
    ),
    scale: int = typer.Option(60, "--scale", help="Number of model runs to create."),
    reset: bool = typer.Option(False, "--reset", help="Empty the sandbox first."),
) -> None:
    """Build a realistic, deterministic registry (people, templates, datasets, studies, model runs, graph)."""
    if not demo:
        raise ProvenaOpsError(
            "nothing to seed without --demo", hint="use `provena-ops sandbox load` for exports"
        )
    summary = _sandbox_admin().seed(db, scale, reset)
    table = Table(title=f"Seeded {db}")
    table.add_column("subtype")
    table.add_column("items", justify="right")
    for subtype, count in summary.counts.items():
        table.add_row(subtype, str(count))
    out.print(table)
    for label, value in summary.notable.items():
        out.print(f"[bold]{label}[/]: {value}")


@sandbox_app.command()
def reset(db: Path = DB_OPTION) -> None:
    """Empty the sandbox: registry, graph, jobs and sessions (the realm's signing key is kept)."""
    _sandbox_admin().reset(db)
    out.print(f"Sandbox {db} is empty.")


@sandbox_app.command()
def load(
    export: Path = typer.Argument(..., help="A registry export (JSON array of BundledItem)."),
    db: Path = DB_OPTION,
    replace: bool = typer.Option(
        False,
        "--replace",
        help="Make the sandbox identical to the export: delete items not in it (with --relodge, rebuild the "
        "graph too).",
    ),
    relodge: bool = typer.Option(
        True, "--relodge/--no-relodge", help="Rebuild the provenance graph from the loaded model runs."
    ),
) -> None:
    """Load a registry export into the sandbox, to rehearse a playbook on a copy of a real registry."""
    result = _sandbox_admin().load(db, export, replace, relodge)
    stats = result["statistics"]
    out.print(
        f"Loaded {export}: {stats['new_entries']} new, {stats['overwritten_entries']} overwritten, "
        f"{stats['deleted_entries']} deleted; registry now holds {stats['new_registry_size']} items."
    )
    if relodge:
        out.print(f"Relodged {result['relodged']} model run graphs.")
        for failure in result["relodge_failures"]:
            err.print(f"warning: could not relodge {failure}")


@sandbox_app.command()
def token(
    user: str = typer.Option(..., "--user", help="preferred_username of the token."),
    roles: list[str] | None = typer.Option(
        None, "--roles", help="Preset (admin, write, read, none) or realm roles, comma-separated or repeated."
    ),
    email: str | None = typer.Option(None, "--email", help="email claim (default derived from the user)."),
    lifetime: int = typer.Option(300, "--lifetime", help="Seconds until the token expires."),
    db: Path = DB_OPTION,
) -> None:
    """Mint a sandbox access token (RS256, signed by the sandbox realm) and print it."""
    print(_sandbox_admin().token(db, user, roles, lifetime, email))


DEBUG_VARIABLE = "PROVENA_OPS_DEBUG"
USER_ERROR = 1
BUG = 3
INTERRUPTED = 130  # as the shell reports a SIGINT
# The base of typer's usage errors, whichever click it carries (its own copy since typer 0.25).
USAGE_ERROR: type[Exception] = next(
    base for base in typer.BadParameter.__mro__ if base.__name__ == "ClickException"
)


def main() -> None:
    """Exit codes: 0 success, 1 a user error (or, for apply, anything not applied), 2 the plan has
    changes (plan only), 3 a provena-ops bug (with a crash report), 130 interrupted (Ctrl-C, SIGTERM)."""
    terminate_like_interrupt()
    try:
        # Not standalone: click would exit 2 on a usage error, which `plan` documents as "changes
        # present", and typer turns Ctrl-C into a silent exit.
        code = app(standalone_mode=False, prog_name="provena-ops")
    except USAGE_ERROR as exc:
        from typer.rich_utils import rich_format_error

        rich_format_error(cast(Any, exc))
        sys.exit(USER_ERROR)
    except typer.Abort:  # end of input at a prompt
        err.print("error: no answer (end of input); nothing was changed", markup=False, highlight=False)
        sys.exit(USER_ERROR)
    except Interrupted as exc:
        err.print(visible(scrub(exc.render())), markup=False, highlight=False, soft_wrap=True)
        sys.exit(INTERRUPTED)
    except ProvenaOpsError as exc:
        if os.environ.get(DEBUG_VARIABLE):
            sys.stderr.write(scrub("".join(traceback.format_exception(exc))))
        err.print(visible(scrub(exc.render())), markup=False, highlight=False, soft_wrap=True)
        sys.exit(USER_ERROR)
    except KeyboardInterrupt:
        err.print("interrupted; nothing more was started", markup=False, highlight=False)
        sys.exit(INTERRUPTED)
    except Exception as exc:  # a bug: say so plainly, keep the traceback for whoever fixes it
        if interrupted():  # what the interrupt broke on its way out (a library swallowing it)
            err.print("interrupted; nothing more was started", markup=False, highlight=False)
            sys.exit(INTERRUPTED)
        from .crash import write_crash_report

        report = write_crash_report(exc)
        if os.environ.get(DEBUG_VARIABLE):  # the traceback, minus any secret a frame's text may quote
            sys.stderr.write(scrub("".join(traceback.format_exception(exc))))
        where = f"a crash report is in {report}" if report else "no crash report could be written"
        err.print(
            f"error: provena-ops hit a bug ({type(exc).__name__}); {where}: please report it",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(BUG)
    if code == INTERRUPTED:  # typer turns a KeyboardInterrupt in a command into this code, silently
        err.print("interrupted; nothing more was started", markup=False, highlight=False)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
