"""`provena-ops log`: the journals of earlier runs, listed (and filtered) or shown one at a time, for
people or, with --format json, for scripts."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer

from provena_ops.cli.apply import RUNS_DIR_OPTION
from provena_ops.cli.options import err, out
from provena_ops.errors import ProvenaOpsError
from provena_ops.playbook.diagnostics import did_you_mean
from provena_ops.render.outputs import RUN_RESULTS, OutputFormat, RunHeader, RunResult

log_app = typer.Typer(
    rich_markup_mode="markdown", help="Show the journals of earlier applies.", no_args_is_help=True
)
LAST = "last"  # as `provena-ops undo last` spells it
FORMAT_OPTION = typer.Option(OutputFormat.text, "--format", help="text, or json (one document on stdout).")
SINCE_HINT = (
    "give an ISO date or time (2026-11-26, 2026-11-26T10:15, 2026-11-26T10:15+10:00; UTC unless it has "
    "an offset) or a time back from now (30m, 2h, 3d, 1w)"
)
RELATIVE = re.compile(r"([0-9]{1,9}) ?([smhdw])")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime) -> datetime:
    """--since WHEN as a moment (UTC): an ISO date or time, or a time back from `now`."""
    value = text.strip()
    relative = RELATIVE.fullmatch(value)
    try:
        if relative is not None:
            moment = now - timedelta(**{UNITS[relative[2]]: int(relative[1])})
        else:
            moment = datetime.fromisoformat(value)
            moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    except ValueError:
        raise ProvenaOpsError(
            f"{text!r} is not a date, a time or a time back from now", where="--since", hint=SINCE_HINT
        ) from None
    except OverflowError:
        raise ProvenaOpsError(
            f"{text!r} reaches back before any date", where="--since", hint=SINCE_HINT
        ) from None
    if moment > now:
        raise ProvenaOpsError(
            f"{text!r} is in the future ({moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC): no run started since",
            where="--since",
            hint=SINCE_HINT,
        )
    return moment.astimezone(UTC)


def parse_results(given: list[str]) -> list[RunResult]:
    results: list[RunResult] = []
    for value in given:
        known = next((result for result in RUN_RESULTS if result == value.strip().lower()), None)
        if known is None:
            close = did_you_mean(value, RUN_RESULTS)
            raise ProvenaOpsError(
                f"{value!r} is not how a run ends" + (f" (did you mean {close!r}?)" if close else ""),
                where="--result",
                hint=f"choose one of: {', '.join(RUN_RESULTS)} (repeat --result for any of several)",
            )
        results.append(known)
    return results


def _started(run: RunHeader) -> datetime | None:
    try:
        moment = datetime.fromisoformat(run.started_at)
    except ValueError:  # a journal is trusted for nothing: a time that cannot be read matches no --since
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _matches(run: RunHeader, environments: list[str], since: datetime | None, results: Sequence[str]) -> bool:
    if environments and run.environment.name not in environments:
        return False
    if results and run.result not in results:
        return False
    if since is not None:
        started = _started(run)
        return started is not None and started >= since
    return True


@log_app.command("list")
def log_list(
    output: OutputFormat = FORMAT_OPTION,
    environment: list[str] | None = typer.Option(
        None, "--environment", "-e", metavar="NAME", help="Only runs on this environment (repeatable: any)."
    ),
    since: str | None = typer.Option(
        None,
        "--since",
        metavar="WHEN",
        help="Only runs started at or after WHEN: an ISO date or time (UTC unless it has an offset), or "
        "a time back from now: 30m, 2h, 3d, 1w.",
    ),
    result: list[str] | None = typer.Option(
        None,
        "--result",
        metavar="RESULT",
        help="Only runs that ended so: succeeded, failed, refused, cancelled or interrupted (repeatable: "
        "any).",
    ),
    runs_dir: Path = RUNS_DIR_OPTION,
) -> None:
    """List earlier runs, oldest first: when, where, what, by whom, and how each ended.

    A run that never started any action (refused, cancelled at the approval prompt, killed while
    planning) says 'no action started'. A journal that cannot be read is always listed.
    """
    from provena_ops.render.log import list_runs, render_runs
    from provena_ops.render.outputs import LogFilters, LogListDocument, dump

    environments = list(environment or [])
    moment = parse_since(since, datetime.now(UTC)) if since is not None else None
    results = parse_results(result or [])
    if runs_dir.exists() and not runs_dir.is_dir():
        raise ProvenaOpsError(f"the runs directory {runs_dir} is not a directory", hint="give --runs-dir DIR")
    runs, unreadable = list_runs(runs_dir)
    _unknown_environments(environments, runs)
    chosen = [run for run in runs if _matches(run, environments, moment, results)]
    if output is OutputFormat.json:
        filters = LogFilters(
            environments=environments,
            since=moment.isoformat(timespec="milliseconds") if moment else None,
            results=results,
        )
        document = LogListDocument(
            runs_dir=str(runs_dir), filters=filters, runs=chosen, unreadable=unreadable
        )
        sys.stdout.write(dump(document))
        return
    if not runs and not unreadable:
        out.print(f"No runs in {runs_dir} yet (`provena-ops apply` writes one per run).", highlight=False)
        return
    if not chosen and not unreadable:
        out.print(f"No run in {runs_dir} matches (of {len(runs)}).", highlight=False)
        return
    render_runs(chosen, unreadable, out)


def _unknown_environments(names: list[str], runs: list[RunHeader]) -> None:
    """A name no run here was on is most likely a typo: said, not an error (it may just be early)."""
    seen = sorted({run.environment.name for run in runs})
    for name in names:
        if name not in seen:
            close = did_you_mean(name, seen)
            where = f"runs here were on: {', '.join(seen)}" if seen else "there are no runs here"
            maybe = f"; did you mean {close!r}?" if close else ""
            err.print(f"note: no run here was on {name!r} ({where}){maybe}", markup=False, highlight=False)


def resolve(runs_dir: Path, run: str) -> Path:
    """RUN as a journal: its id or a unique start of it, or `last`, the newest run (the same order as
    `undo last`, which also passes over the newest runs when they changed nothing)."""
    from provena_ops.apply.journal import find_run, journals
    from provena_ops.playbook.model import RUN_ID_PATTERN

    if run != LAST:
        return find_run(runs_dir, run)
    if runs_dir.exists() and not runs_dir.is_dir():
        raise ProvenaOpsError(f"the runs directory {runs_dir} is not a directory", hint="give --runs-dir DIR")
    every = [path for path in journals(runs_dir) if re.fullmatch(RUN_ID_PATTERN, path.stem)]
    if not every:
        raise ProvenaOpsError(
            f"no runs in {runs_dir} yet", hint="`provena-ops apply` writes one per run; give --runs-dir DIR"
        )
    return every[-1]


@log_app.command("show")
def log_show(
    run: str = typer.Argument(
        ..., metavar="RUN", help="Run id (or its unique start) from `log list`, or last: the newest run."
    ),
    output: OutputFormat = FORMAT_OPTION,
    events: bool = typer.Option(
        False, "--events", help="Also every event in order: requests, jobs and their statuses."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="List unchanged actions too."),
    runs_dir: Path = RUNS_DIR_OPTION,
) -> None:
    """Show one run action by action: each record's fields before and after, and what became of it.

    Actions the run planned but never started are listed as 'not started'; with --events, every
    request, job and outcome follows in order. --format json writes the run as one document
    (schemas/log-run.schema.json), its events included with --events.
    """
    from provena_ops.apply.journal import read_events
    from provena_ops.render.log import render_document, run_document
    from provena_ops.render.outputs import dump

    path = resolve(runs_dir, run)
    document = run_document(path, read_events(path), with_events=events)
    if output is OutputFormat.json:
        sys.stdout.write(dump(document))
        return
    render_document(document, out, verbose=verbose)
