"""`provena-ops sandbox ...`: serve, seed, reset, load and mint tokens for the embedded sandbox."""

from __future__ import annotations

import difflib
import errno
import json
import signal
import sys
from pathlib import Path
from types import ModuleType

import typer
from rich.table import Table

from provena_ops.cli.options import (
    err,
    out,
    write_atomically,
)
from provena_ops.cli.outputs import SANDBOX_EXPORT, check_output
from provena_ops.environments.file import DEFAULT_SANDBOX_DB
from provena_ops.errors import ProvenaOpsError

sandbox_app = typer.Typer(
    rich_markup_mode="markdown",
    help="Run and manage the embedded Provena-compatible sandbox (FastAPI + SQLite on loopback).",
    no_args_is_help=True,
)

MAX_DELAY_MS = 600_000.0
DB_OPTION = typer.Option(Path(DEFAULT_SANDBOX_DB), "--db", help="Sandbox database file.")


def _sandbox_admin() -> ModuleType:
    """Imported on use: the sandbox pulls in FastAPI and uvicorn, which `validate` does not need."""
    from provena_ops.sandbox import admin

    return admin


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
    fault_kinds: list[str] | None = typer.Option(
        None,
        "--fault-kinds",
        metavar="KINDS",
        help="Faults to inject, comma-separated or repeated: 500, 502, 503, 504, 429, drop, lost, "
        "or a mix: transient (default), throttle, all. See docs/sandbox.md.",
    ),
    fault_seed: int | None = typer.Option(
        None,
        "--fault-seed",
        metavar="N",
        help="Seed of the fault fates: the same seed faults the same requests again (printed if unset).",
    ),
    request_log: Path | None = typer.Option(
        None, "--request-log", metavar="FILE", help="Append one JSON line per request to FILE (no tokens)."
    ),
    seed_demo: bool = typer.Option(
        False, "--seed-demo", help="Seed the demo registry when the sandbox is empty."
    ),
    no_link_check: bool = typer.Option(
        False,
        "--no-link-check",
        help="Let users with no Person link edit studies, models and templates (production refuses).",
    ),
    allow_remote: bool = typer.Option(
        False, "--allow-remote", help="Allow listening on a non-loopback address."
    ),
) -> None:
    """Serve the sandbox until interrupted, printing the endpoint overrides to use."""
    from provena_ops.sandbox.context import SandboxSettings
    from provena_ops.sandbox.server import NotLoopback, base_url_of, bind, make_server

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
    kinds = fault_kinds_of(fault_kinds)
    if fault_seed is not None and not 0 <= fault_seed < 2**63:
        raise ProvenaOpsError(f"--fault-seed must be between 0 and {2**63 - 1}, got {fault_seed}")
    if request_log is not None:
        check_request_log(request_log)
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
        fault_kinds=kinds,
        random_seed=fault_seed,
        request_log=request_log,
        enforce_user_links=not no_link_check,
    )
    from provena_ops.sandbox.app import service_urls

    try:
        server, running = make_server(settings)
    except OSError as exc:
        sock.close()
        raise ProvenaOpsError(f"cannot write the request log {request_log}: {exc.strerror}") from exc
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # uvicorn shuts down, then ends by SIGTERM (status 143)
    base_url = base_url_of(sock)
    err.print(f"Provena sandbox on {base_url} (database {db})")
    if fault_rate > 0 or job_fail_rate > 0:
        err.print(
            f"Faults: {', '.join(kinds)} on {fault_rate:.0%} of requests, {job_fail_rate:.0%} of jobs; "
            f"seed {running.fault_seed} (replay with --fault-seed {running.fault_seed})"
        )
    if request_log is not None:
        err.print(f"Request log: {request_log}")
    print(json.dumps(service_urls(base_url, settings.realm_name), indent=2), flush=True)
    server.run(sockets=[sock])


def fault_kinds_of(given: list[str] | None) -> tuple[str, ...]:
    """--fault-kinds as a tuple of kinds, mixes expanded, in the order given, each once."""
    from provena_ops.sandbox.context import FAULT_KINDS, FAULT_MIXES

    if not given:
        return FAULT_MIXES["transient"]
    kinds: list[str] = []
    for part in (word.strip() for value in given for word in value.split(",")):
        if not part:
            continue
        expanded = FAULT_MIXES.get(part) or ((part,) if part in FAULT_KINDS else None)
        if expanded is None:
            close = difflib.get_close_matches(part, [*FAULT_KINDS, *FAULT_MIXES], n=1)
            raise ProvenaOpsError(
                f"--fault-kinds: unknown fault kind {part!r}"
                + (f"; did you mean {close[0]!r}?" if close else ""),
                hint=f"kinds: {', '.join(FAULT_KINDS)}; mixes: {', '.join(FAULT_MIXES)}",
            )
        kinds.extend(kind for kind in expanded if kind not in kinds)
    if not kinds:
        raise ProvenaOpsError("--fault-kinds names no fault kind", hint="e.g. --fault-kinds 503,429")
    return tuple(kinds)


def check_request_log(path: Path) -> None:
    """Refuse a log path that cannot be appended to, before the server starts."""
    if path.is_dir():
        raise ProvenaOpsError(f"--request-log {path} is a directory", hint="name a file in it")
    if path.exists() and not path.is_file():
        raise ProvenaOpsError(f"--request-log {path} is not a regular file")
    if not path.parent.is_dir():
        raise ProvenaOpsError(f"--request-log {path}: directory {path.parent} does not exist")


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
def export(
    out_file: Path = typer.Argument(..., metavar="OUT.json", help="Where to write the export."),
    db: Path = DB_OPTION,
) -> None:
    """Write the sandbox's registry in Provena's admin export form (item, access settings, lock state per
    record) plus its graph (nodes and links with their record ids), sorted, so that two exports (before and
    after a rehearsal) compare with diff. `sandbox load` reads it back."""
    admin = _sandbox_admin()
    admin.refuse_not_a_sandbox(db)
    to_stdout = str(out_file) == "-"
    if not to_stdout:
        check_output(out_file, SANDBOX_EXPORT, protect={db: "the sandbox database itself"})
    text, counts = admin.export(db)
    if to_stdout:
        sys.stdout.write(text)
        return
    write_atomically(out_file, text, SANDBOX_EXPORT)
    out.print(
        f"Exported {counts['items']} items and a graph of {counts['nodes']} nodes and {counts['links']} "
        f"links to {out_file}."
    )


@sandbox_app.command()
def load(
    export: Path = typer.Argument(
        ...,
        metavar="EXPORT",
        help="A registry export (JSON array of BundledItem), or a `sandbox export` file.",
    ),
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
    if result["graph"] is not None:
        nodes, links = result["graph"]
        out.print(f"Loaded its graph: {nodes} nodes and {links} links.")
    elif relodge:
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
