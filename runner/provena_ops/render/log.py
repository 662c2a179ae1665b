"""Journals for people: the list of runs, and one run as a timeline."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from provena_ops.apply.journal import (
    ActionFinished,
    ActionStarted,
    Event,
    JobRecovered,
    JobStatus,
    Planned,
    RequestSent,
    RunFinished,
    RunResumed,
    RunStarted,
    first_event,
    journals,
    last_event,
    read_events,
)
from provena_ops.errors import ProvenaOpsError
from provena_ops.render.common import shown

RESULT_STYLE = {
    "changed": "yellow",
    "ok": "green",
    "failed": "red",
    "skipped": "yellow",
    "unknown": "magenta",
}


def render_runs(directory: Path, console: Console) -> None:
    """One line per run, oldest first, never wrapped (logs are grepped as often as read)."""
    paths = list(journals(directory))
    if not paths:
        console.print(f"No runs in {directory} yet (`provena-ops apply` writes one per run).")
        return
    rows = [("run", "started", "environment", "playbook", "by", "result")]
    for path in paths:
        head = first_event(path)
        if not isinstance(head, RunStarted):
            rows.append((path.stem, "", "", "", "", "unreadable journal"))
            continue
        rows.append(
            (
                head.run_id,
                head.at[:19].replace("T", " "),
                f"{head.environment.name} ({head.environment.stage})",
                head.playbook.name,
                head.who,
                _ending(last_event(path)),
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(5)]
    for number, row in enumerate(rows):
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[5]
        console.print(f"[bold]{shown(line)}[/]" if number == 0 else shown(line), highlight=False)


def _ending(last: Event | None) -> str:
    if isinstance(last, RunFinished) and last.cancelled:
        return f"cancelled: {last.stopped or 'nothing was changed'}"
    if isinstance(last, RunFinished):
        text = last.recap.line().removeprefix("Apply: ").rstrip(".")
        return text + (f"; stopped: {last.stopped}" if last.stopped else "")
    if isinstance(last, RunResumed):
        return f"unfinished work followed by run {last.by_run}"
    return "interrupted (apply again to finish)"


def render_run(path: Path, console: Console) -> None:
    events = read_events(path)
    if not events:
        raise ProvenaOpsError(
            f"{path} holds no journal events (empty, or its only line is unreadable)",
            hint="journals are written by `provena-ops apply`; `provena-ops log list` shows the runs",
        )
    for event in events:
        clock = event.at[11:23]
        if isinstance(event, RunStarted):
            env = event.environment
            console.print(f"[bold]run {event.run_id}[/] by {shown(event.who)} on {env.name} ({env.stage})")
            console.print(f"  playbook {shown(event.playbook.file)} ({event.playbook.sha256[:19]})")
            console.print(f"  registry {shown(env.registry)}")
            console.print(f"  command  {shown(event.command)}", highlight=False)
        elif isinstance(event, Planned):
            console.print(f"{clock}  {shown(event.plan.summary.line())}")
        elif isinstance(event, JobRecovered):
            console.print(
                f"{clock}  followed {event.key} of interrupted run {event.from_run}: "
                f"job {event.session_id} {event.status}"
            )
        elif isinstance(event, ActionStarted):
            kept = "the record as it was is kept here" if event.before is not None else "no record before"
            console.print(f"{clock}  {shown(event.key)}: started ({kept})")
        elif isinstance(event, RequestSent):
            job = f" -> job {event.session_id}" if event.session_id else ""
            detail = f" ({shown(event.detail)})" if event.detail else ""
            console.print(
                f"{clock}  {shown(event.key)}: {shown(event.request)}{job}{detail}", highlight=False
            )
        elif isinstance(event, JobStatus):
            info = f": {shown(event.info)}" if event.info else ""
            console.print(f"{clock}  {shown(event.key)}: job {event.status}{info}", highlight=False)
        elif isinstance(event, ActionFinished):
            style = RESULT_STYLE[event.result]
            console.print(
                f"{clock}  {shown(event.key)}: [{style}]{event.result}[/] {shown(event.detail)}",
                highlight=False,
            )
        elif isinstance(event, RunFinished):
            stopped = f" (stopped: {shown(event.stopped)})" if event.stopped else ""
            console.print(f"{clock}  [bold]{shown(event.recap.line())}[/]{stopped}")
        elif isinstance(event, RunResumed):
            console.print(f"{clock}  resumed by run {event.by_run}, which saw its jobs to their end")
