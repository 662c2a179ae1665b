"""Journals read back: the list of runs, and one run action by action (each record's fields before and
after, beside what became of it), for people and, as the models of render/outputs.py, for scripts."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from provena_ops.apply.journal import (
    ActionFinished,
    ActionStarted,
    BadJournal,
    Event,
    JobRecovered,
    JobStatus,
    Planned,
    RequestSent,
    RunFinished,
    RunResumed,
    RunStarted,
    journals,
    outline,
    read_events,
)
from provena_ops.errors import ProvenaOpsError
from provena_ops.plan.model import Action
from provena_ops.render.common import short, shown
from provena_ops.render.outputs import (
    LogRunDocument,
    RecoveredJob,
    Request,
    RunAction,
    RunHeader,
    RunResult,
    Unreadable,
)

RESULT_STYLE = {
    "changed": "yellow",
    "ok": "green",
    "failed": "red",
    "skipped": "yellow",
    "unknown": "magenta",
    "unfinished": "magenta",
    "not_started": "dim",
    "succeeded": "green",
    "refused": "red",
    "cancelled": "yellow",
    "interrupted": "magenta",
}
# What apply journals when 'no' is answered at the approval prompt (apply/run.py).
DECLINED = "apply cancelled"


def run_result(finished: RunFinished | None, resumed_by: str | None, started: int) -> tuple[RunResult, str]:
    """How a run ended, as one word and in words. The word is what `log list --result` filters on."""
    later = f"; its unfinished work was followed by run {resumed_by}" if resumed_by else ""
    again = later or " (apply again to finish)"
    if finished is None:
        after = f" after {started} action(s) started" if started else ""
        return "interrupted", f"no end recorded{after}{again}"
    recap, stopped = finished.recap, finished.stopped
    counts = recap.line().removeprefix("Apply: ").rstrip(".")
    if finished.cancelled or (stopped or "").startswith(DECLINED):
        return "cancelled", stopped or "nothing was changed"
    if stopped == "interrupted":
        return "interrupted", counts + again
    if stopped and not any(recap.model_dump().values()):  # stopped before anything was carried out
        return "refused", stopped
    if stopped or not recap.succeeded:
        return "failed", counts + (f"; stopped: {stopped}" if stopped else "")
    return "succeeded", counts


def _header(
    path: Path, head: RunStarted, finished: RunFinished | None, resumed_by: str | None, started: int
) -> RunHeader:
    result, ending = run_result(finished, resumed_by, started)
    return RunHeader(
        run_id=head.run_id,
        journal=str(path),
        started_at=head.at,
        who=head.who,
        environment=head.environment,
        playbook=head.playbook,
        command=head.command,
        undoes=head.undoes,
        result=result,
        ending=ending,
        finished_at=finished.at if finished else None,
        recap=finished.recap if finished else None,
        stopped=finished.stopped if finished else None,
        resumed_by=resumed_by,
        actions_started=started,
    )


def list_runs(directory: Path) -> tuple[list[RunHeader], list[Unreadable]]:
    """Every run in `directory`, oldest first, read only as far as a listing needs."""
    runs: list[RunHeader] = []
    unreadable: list[Unreadable] = []
    for path in journals(directory):
        try:
            seen = outline(path)
        except (OSError, BadJournal) as exc:
            unreadable.append(Unreadable(journal=str(path), problem=str(exc)))
            continue
        if seen is None:
            problem = "its first line is not a run_started event"
            unreadable.append(Unreadable(journal=str(path), problem=problem))
            continue
        runs.append(_header(path, seen.head, seen.finished, seen.resumed_by, seen.actions_started))
    return runs, unreadable


def ending_text(run: RunHeader) -> str:
    """'cancelled, no action started: ...': a run that never wrote anything says so."""
    never = ", no action started" if not run.actions_started and run.result != "succeeded" else ""
    return f"{run.result}{never}: {run.ending}"


def render_runs(runs: list[RunHeader], unreadable: list[Unreadable], console: Console) -> None:
    """One line per run, oldest first, never wrapped (logs are grepped as often as read)."""
    rows = [("run", "started", "environment", "playbook", "by", "result")]
    for run in runs:
        env = run.environment
        rows.append(
            (
                run.run_id,
                run.started_at[:19].replace("T", " "),
                f"{env.name} ({env.stage})",
                run.playbook.name,
                run.who,
                ending_text(run),
            )
        )
    for entry in unreadable:
        rows.append((Path(entry.journal).stem, "", "", "", "", f"unreadable journal: {entry.problem}"))
    widths = [max(len(row[column]) for row in rows) for column in range(5)]
    for number, row in enumerate(rows):
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[5]
        console.print(f"[bold]{shown(line)}[/]" if number == 0 else shown(line), highlight=False)


# -- one run -----------------------------------------------------------------------------------------


def run_document(path: Path, events: list[Event], with_events: bool = False) -> LogRunDocument:
    """A run's journal as its actions: the plan's changes for each, and what the journal says of it."""
    if not events:
        raise ProvenaOpsError(
            f"{path} holds no journal events (empty, or its only line is unreadable)",
            hint="journals are written by `provena-ops apply`; `provena-ops log list` shows the runs",
        )
    head = events[0]
    if not isinstance(head, RunStarted):
        raise BadJournal(
            f"{path}: not a run journal (it does not start with run_started)",
            hint="journals are written by provena-ops apply and undo; `provena-ops log list` shows the runs",
        )
    planned = next((event.plan for event in events if isinstance(event, Planned)), None)
    actions: dict[str, RunAction] = {}
    if planned is not None:
        for action in planned.actions:
            actions.setdefault(action.key, _planned(action))
    finished: RunFinished | None = None
    resumed_by: str | None = None
    recovered: list[RecoveredJob] = []
    started: set[str] = set()
    for event in events:
        if isinstance(event, ActionStarted | RequestSent | JobStatus | ActionFinished):
            _record(actions, event, started)
        elif isinstance(event, RunFinished):
            finished = event
        elif isinstance(event, RunResumed):
            resumed_by = event.by_run
        elif isinstance(event, JobRecovered):
            recovered.append(
                RecoveredJob(
                    from_run=event.from_run, key=event.key, session_id=event.session_id, status=event.status
                )
            )
    for run_action in actions.values():
        if run_action.result == "not_started" and run_action.planned not in (None, "change"):
            # nothing was to be done for it
            run_action.result, run_action.detail = "ok", run_action.detail or run_action.planned
    return LogRunDocument(
        run=_header(path, head, finished, resumed_by, len(started)),
        plan=planned.summary if planned is not None else None,
        recovered=recovered,
        actions=list(actions.values()),
        events=events if with_events else None,
    )


def _planned(action: Action) -> RunAction:
    return RunAction(
        key=action.key,
        kind=action.kind,
        record_id=action.record_id,
        display_name=action.display_name,
        planned=action.outcome,
        reason=action.reason,
        changes=list(action.changes),
        result="not_started",
        detail=action.why,
    )


def _record(
    actions: dict[str, RunAction],
    event: ActionStarted | RequestSent | JobStatus | ActionFinished,
    started: set[str],
) -> None:
    """One event of an action into what is known of it (an action the plan lacks is listed too)."""
    action = actions.get(event.key)
    if action is None:
        kind = event.kind if isinstance(event, ActionStarted) else event.key.split(" ", 1)[0]
        record = event.record_id if isinstance(event, ActionStarted) else None
        action = RunAction(key=event.key, kind=kind, record_id=record, planned=None, result="not_started")
        actions[event.key] = action
    if isinstance(event, ActionStarted):
        started.add(event.key)
        if action.started_at is None:
            action.started_at = event.at
            action.before_kept = event.before is not None
        if action.result == "not_started":
            action.result = "unfinished"
    elif isinstance(event, RequestSent):
        request = Request(
            at=event.at, request=event.request, session_id=event.session_id, detail=event.detail
        )
        action.requests.append(request)
    elif isinstance(event, JobStatus):
        action.job_status = event.status
    else:
        action.result, action.detail = event.result, event.detail
        action.finished_at, action.after = event.at, event.after


def render_run(
    path: Path, console: Console, *, verbose: bool = False, events: bool = False
) -> LogRunDocument:
    """One run for people: its header, then each action with its fields before and after; with
    `events`, every step in order. Returns what it showed."""
    document = run_document(path, read_events(path), with_events=events)
    render_document(document, console, verbose=verbose)
    return document


def render_document(document: LogRunDocument, console: Console, *, verbose: bool = False) -> None:
    run = document.run
    env = run.environment
    console.print(f"[bold]run {run.run_id}[/] by {shown(run.who)} on {shown(env.name)} ({shown(env.stage)})")
    console.print(f"  playbook {shown(run.playbook.file)} ({shown(run.playbook.sha256[:19])})")
    console.print(f"  registry {shown(env.registry)}", highlight=False)
    console.print(f"  command  {shown(run.command)}", highlight=False)
    if run.undoes:
        console.print(f"  undoes   {shown(run.undoes)}", highlight=False)
    ended = f" (ended {_clock(run.finished_at)})" if run.finished_at else ""
    console.print(f"  started  {_clock(run.started_at)}", highlight=False)
    style = RESULT_STYLE[run.result]
    console.print(f"  result   [{style}]{shown(ending_text(run))}[/]{ended}", highlight=False)
    for job in document.recovered:
        console.print(
            f"  followed {shown(job.key)} of interrupted run {shown(job.from_run)}: job "
            f"{shown(job.session_id)} {shown(job.status)}",
            highlight=False,
        )
    if document.plan is None:
        console.print("\nIt never planned: nothing was read or written.")
    else:
        console.print(f"\n{shown(document.plan.line())}", highlight=False)
    hidden = 0
    for action in document.actions:
        if action.planned == "unchanged" and not verbose:
            hidden += 1
            continue
        _render_action(action, console)
    if hidden:
        console.print(f"\n[dim]{hidden} unchanged (already as planned): --verbose lists them[/]")
    not_started = sum(1 for action in document.actions if action.result == "not_started")
    unfinished = sum(1 for action in document.actions if action.result == "unfinished")
    tail = [f"{not_started} not started"] if not_started else []
    tail += [f"{unfinished} unfinished"] if unfinished else []
    if run.recap is not None:
        recap = run.recap.line().rstrip(".")
        console.print(f"\n[bold]{shown(recap)}{shown(''.join(', ' + part for part in tail))}.[/]")
    elif tail:
        console.print(f"\n[bold]No end recorded: {shown(', '.join(tail))}.[/]")
    if document.events is not None:
        console.print("\n[bold]Events[/]")
        for event in document.events:
            _render_event(event, console)


LABELS = {"not_started": "not started"}


def _render_action(action: RunAction, console: Console) -> None:
    status: str = action.result
    if action.planned == "not_found":
        status = "not found"
    label = LABELS.get(status, status)
    style = RESULT_STYLE.get(action.result, "")
    name = f"  {shown(action.display_name)}" if action.display_name else ""
    console.print(f"\n[{style}]{label:<11}[/] [bold]{shown(action.key)}[/]{name}", highlight=False)
    for change in action.changes:
        before, after = shown(short(change.before)), shown(short(change.after))
        console.print(f"    {shown(change.field)}: {before} -> {after}", highlight=False)
    if not action.changes and action.kind in ("delete_model_run", "delete_study"):
        kept = " (the record as it was is kept in the journal)" if action.before_kept else ""
        console.print(f"    the record -> deleted{kept}", highlight=False)
    said = [shown(action.detail)] if action.detail else []
    if action.job_status and action.job_status not in (action.detail or ""):
        said.append(f"job {shown(action.job_status)}")
    if said:
        console.print(f"    [dim]{'; '.join(said)}[/]", highlight=False)


def _clock(at: str | None) -> str:
    return f"{at[:19].replace('T', ' ')} UTC" if at else ""


def _render_event(event: Event, console: Console) -> None:
    clock = shown(event.at[11:23])
    if isinstance(event, RunStarted):
        console.print(f"{clock}  run {shown(event.run_id)} started", highlight=False)
    elif isinstance(event, Planned):
        console.print(f"{clock}  {shown(event.plan.summary.line())}", highlight=False)
    elif isinstance(event, JobRecovered):
        console.print(
            f"{clock}  followed {shown(event.key)} of interrupted run {shown(event.from_run)}: "
            f"job {shown(event.session_id)} {shown(event.status)}",
            highlight=False,
        )
    elif isinstance(event, ActionStarted):
        kept = "the record as it was is kept here" if event.before is not None else "no record before"
        console.print(f"{clock}  {shown(event.key)}: started ({kept})", highlight=False)
    elif isinstance(event, RequestSent):
        job = f" -> job {shown(event.session_id)}" if event.session_id else ""
        detail = f" ({shown(event.detail)})" if event.detail else ""
        console.print(f"{clock}  {shown(event.key)}: {shown(event.request)}{job}{detail}", highlight=False)
    elif isinstance(event, JobStatus):
        info = f": {shown(event.info)}" if event.info else ""
        console.print(f"{clock}  {shown(event.key)}: job {shown(event.status)}{info}", highlight=False)
    elif isinstance(event, ActionFinished):
        style = RESULT_STYLE[event.result]
        console.print(
            f"{clock}  {shown(event.key)}: [{style}]{event.result}[/] {shown(event.detail)}",
            highlight=False,
        )
    elif isinstance(event, RunFinished):
        stopped = f" (stopped: {shown(event.stopped)})" if event.stopped else ""
        console.print(f"{clock}  [bold]{shown(event.recap.line())}[/]{stopped}", highlight=False)
    elif isinstance(event, RunResumed):
        console.print(
            f"{clock}  resumed by run {shown(event.by_run)}, which saw its jobs to their end", highlight=False
        )
