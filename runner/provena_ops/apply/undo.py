"""`undo RUN`: the run's journal read back into a restore playbook, then planned, shown, approved and
carried out exactly as `apply` carries out a playbook (same PROD guard, lock, journal and resume).

The journal holds every record as it was before each write (and, from this version, its access
settings and lock state before a deletion, and its fingerprint after each change), so the records a
run changed can be put back through Provena's own routes. The undo is a run like any other: re-running
the same command after a crash finishes it, and undoing it redoes the original change.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from provena_ops.api import client_for, plan_with
from provena_ops.apply.journal import (
    DEFAULT_RUNS_DIR,
    ActionFinished,
    ActionStarted,
    BadJournal,
    Planned,
    RunFinished,
    RunStarted,
    find_run,
    first_event,
    journals,
    last_event,
    open_journal,
    read_events,
)
from provena_ops.apply.review import NotApplied, read_saved_plan, refuse_problems
from provena_ops.apply.run import ApplyOptions, ApplyResult, ApplyUI, Prepared, apply_prepared, confirm_target
from provena_ops.environments.file import load_environments
from provena_ops.environments.target import Target, TargetArgs, open_target, target_identity
from provena_ops.errors import ProvenaOpsError, first_problem
from provena_ops.plan.keys import key_record
from provena_ops.plan.model import Action, Plan, PlaybookInfo
from provena_ops.playbook.loader import LoadedPlaybook
from provena_ops.playbook.model import RUN_ID_PATTERN, Playbook, Restore, RestoreImage, restore_digest
from provena_ops.signals import run_async

LAST = "last"


class NothingToUndo(ProvenaOpsError):
    """The run wrote nothing (cancelled, refused, or every record was already as planned)."""


@dataclass(frozen=True)
class RunToUndo:
    journal: Path
    started: RunStarted
    restore: Restore


def resolve_run(runs: Path, run: str) -> tuple[Path, str | None]:
    """The journal RUN names, and a note when `last` resolved to something the user should know. `last`
    is the latest run, except that an undo which did not finish is finished rather than undone: so the
    same command, repeated after a crash, converges instead of flipping back."""
    if run != LAST:
        return find_run(runs, run), None
    if runs.exists() and not runs.is_dir():
        raise ProvenaOpsError(f"the runs directory {runs} is not a directory", hint="give --runs-dir DIR")
    every = [path for path in journals(runs) if re.fullmatch(RUN_ID_PATTERN, path.stem)]
    if not every:
        raise ProvenaOpsError(f"no runs in {runs} yet", hint="`provena-ops log list` shows the runs")
    writing = [path for path in every if _wrote(path)]
    latest = writing[-1] if writing else every[-1]
    later = len(every) - every.index(latest) - 1
    said = f"the last {later} run(s) changed nothing; undoing {latest.stem}" if later else None
    head, tail = first_event(latest), _safe_last(latest)
    if isinstance(head, RunStarted) and head.undoes and not _succeeded(tail):
        return find_run(runs, head.undoes), (
            f"the last run, {head.run_id}, an undo of {head.undoes}, did not finish: finishing it"
        )
    return latest, said


def _wrote(path: Path) -> bool:
    """Whether a run started any write (only the lines that can say so are looked at)."""
    try:
        with open_journal(path) as file:
            return any(b'"action_started"' in line for line in file)
    except (OSError, ProvenaOpsError):
        return False


def _safe_last(path: Path) -> Any:
    try:
        return last_event(path)
    except ProvenaOpsError:
        return None


def _succeeded(event: Any) -> bool:
    return isinstance(event, RunFinished) and event.recap.succeeded and not event.stopped


def read_run(path: Path) -> RunToUndo:
    """A run's journal as the restore that undoes it: per record it wrote, the image before its first
    write, how its action ended and the fingerprint it left."""
    events = read_events(path)
    if not events or not isinstance(events[0], RunStarted):
        raise ProvenaOpsError(
            f"{path}: not a run journal (it does not start with run_started)",
            hint="journals are written by provena-ops apply and undo",
        )
    head = events[0]
    if head.run_id != path.stem or head.undoes == head.run_id:
        why = "undoes itself" if head.undoes == head.run_id else f"is named {path.name}"
        raise BadJournal(
            f"{path}: the journal of run {head.run_id} {why}; it is not undone",
            hint="journals are written by provena-ops only; restore the file from a backup",
        )
    plans = [event.plan for event in events if isinstance(event, Planned)]
    actions: dict[str, Action] = {action.key: action for action in (plans[0].actions if plans else [])}
    started: dict[str, ActionStarted] = {}
    finished: dict[str, ActionFinished] = {}
    for event in events:
        if isinstance(event, ActionStarted):
            _consistent(path, event, actions.get(event.key))
            started.setdefault(event.key, event)
        elif isinstance(event, ActionFinished):
            finished[event.key] = event
    records: dict[str, str] = {}
    for key, start in started.items():
        other = records.setdefault(start.record_id, key)
        if other != key:
            raise BadJournal(
                f"{path}: {start.record_id} is written by two actions ({other}, {key}); it is not undone",
                hint="journals are written by provena-ops only; restore the file from a backup",
            )
    images: list[RestoreImage] = []
    left_alone: list[str] = []
    for key, start in started.items():
        if start.kind == "relodge":
            left_alone.append(
                f"{key}: a relodge only adds to the graph, and Provena has no route to take links out"
            )
            continue
        action = actions.get(key)
        if action is not None and action.stale_link_to and not action.changes:
            left_alone.append(
                f"{key}: it only removed a stale graph link to {action.stale_link_to}, which no route "
                "puts back (the record never named it)"
            )
            continue
        try:
            images.append(_image(start, actions.get(key), finished.get(key)))
        except ValidationError as exc:  # a journal is trusted for nothing: what it holds is checked
            raise BadJournal(
                f"{path}: {key}: {first_problem(exc)}; this run cannot be undone",
                hint="journals are written by provena-ops only; restore the file from a backup",
            ) from None
    for key, action in actions.items():
        if action.outcome == "change" and key not in started:
            end = finished.get(key)
            why = f"{end.result}: {end.detail}" if end is not None else "never started"
            left_alone.append(f"{key}: not written by run {head.run_id} ({why})")
    if not images:
        raise NothingToUndo(
            f"run {head.run_id} wrote nothing that undo can put back; nothing to undo",
            hint="`provena-ops log show " + head.run_id + "` shows what it did",
        )
    try:
        restore = Restore(
            op="restore",
            run=head.run_id,
            registry=head.environment.registry,
            digest=restore_digest(head.run_id, head.environment.registry, images, left_alone),
            images=images,
            not_started=left_alone,
            description=f"Undo of run {head.run_id} ({head.playbook.name})",
        )
    except ValidationError as exc:
        raise BadJournal(
            f"{path}: {first_problem(exc)}; this run cannot be undone",
            hint="journals are written by provena-ops only; restore the file from a backup",
        ) from None
    return RunToUndo(path, head, restore)


def _same_registry(head: RunStarted, name: str, identity: str) -> None:
    if identity != head.environment.registry:
        raise NotApplied(
            f"run {head.run_id} was applied to {head.environment.registry}; '{name}' is now {identity}; "
            "nothing was read or written",
            hint="undo it against the deployment it was applied to (check the environments file and "
            "--param values)",
        )


def _consistent(path: Path, start: ActionStarted, action: Action | None) -> None:
    """An action's key, record and kind agree with each other and with the plan the run carried out."""
    planned = action is None or (action.record_id == start.record_id and action.kind == start.kind)
    if " " not in start.key or key_record(start.key) != start.record_id or not planned:
        raise BadJournal(
            f"{path}: the action {start.key} names record {start.record_id} ({start.kind}), which its key "
            "or the run's plan does not; it is not undone",
            hint="journals are written by provena-ops only; restore the file from a backup",
        )


def _image(start: ActionStarted, action: Action | None, end: ActionFinished | None) -> RestoreImage:
    subtype = (
        action.subtype if action is not None else ("STUDY" if start.kind == "delete_study" else "MODEL_RUN")
    )
    kind = start.kind if start.kind in ("update", "relink", "delete_model_run", "delete_study") else "restore"
    after = end.after if end is not None and end.result == "changed" else None  # else: compare records
    return RestoreImage(
        id=start.record_id,
        subtype=subtype,
        undoes=kind,
        result=end.result if end is not None else None,
        reason=action.reason if action is not None and action.reason else None,
        before=start.before,
        after=after,
        written=action.record if action is not None and kind in ("update", "relink") else None,
        access=start.access,
        lock=start.lock,
    )


def undo_playbook(run: RunToUndo) -> Playbook:
    return Playbook(
        version=1,
        name=f"undo of run {run.started.run_id}",
        description=f"Restores what run {run.started.run_id} ({run.started.playbook.name}) changed.",
        environment=run.started.environment.name,
        operations=[run.restore],
    )


def playbook_text(playbook: Playbook) -> str:
    """The restore playbook as YAML: reviewed in a pull request, then planned and applied like any
    other (its images are verbatim, and pinned by their digest)."""
    data = playbook.model_dump(mode="json", exclude_none=True, exclude_defaults=False)
    for empty in ("params", "vars"):
        if not data.get(empty):
            data.pop(empty, None)
    restore = data["operations"][0]
    for image, model in zip(restore["images"], playbook.operations[0].images, strict=True):  # type: ignore[union-attr]
        image["before"] = model.before  # null is meaningful here: the record did not exist
    header = (
        "# yaml-language-server: $schema=../../schemas/playbook.schema.json\n"
        f"# Written by `provena-ops undo {restore['run']} --write-playbook`: it puts back what that run\n"
        "# changed. Review it like any playbook (provena-ops plan FILE); the images are the records as\n"
        "# the run's journal holds them, and `digest` makes any edit of them a validation error.\n"
    )
    # Escaped, not raw: a reviewer reading the pull request sees a zero-width or bidi character as \u200b.
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=False, width=100)


@dataclass(frozen=True)
class UndoRequest:
    """What to undo, and how: the command line's RUN, --force and --plan."""

    run: str
    force: frozenset[str] = frozenset()
    plan_file: Path | None = None


def undo(
    request: UndoRequest,
    ui: ApplyUI,
    *,
    where: TargetArgs = TargetArgs(),
    options: ApplyOptions = ApplyOptions(),
) -> ApplyResult:
    """Plan the undo, show it, have it approved and carry it out, journalled as a run of its own."""
    prepared, check = _prepare(request, ui, where, options)
    return apply_prepared(prepared, ui, where, options, check_target=check)


def plan_undo(
    request: UndoRequest,
    ui: ApplyUI,
    *,
    where: TargetArgs = TargetArgs(),
    options: ApplyOptions = ApplyOptions(),
) -> Plan:
    """The undo's plan only: read, never written, no journal."""
    prepared, check = _prepare(request, ui, where, options)
    with open_target(prepared.env, prepared.loaded.params, cwd=where.cwd) as target:
        check(target)

        async def run() -> Plan:
            async with client_for(target, options.concurrency, options.sign_in) as http:
                return await plan_with(
                    http, target, prepared.loaded, prepared.playbook, ui.reading,
                    info=prepared.info, force=prepared.force,
                )  # fmt: skip

        return run_async(run())


def _prepare(
    request: UndoRequest, ui: ApplyUI, where: TargetArgs, options: ApplyOptions
) -> tuple[Prepared, Callable[[Target], None]]:
    runs = options.runs_dir or (where.cwd or Path.cwd()) / DEFAULT_RUNS_DIR
    path, note = resolve_run(runs, request.run)
    if note:
        ui.note(note)
    target_run = read_run(path)
    head = target_run.started
    if where.environment is not None and where.environment != head.environment.name:
        raise NotApplied(
            f"run {head.run_id} was applied to '{head.environment.name}', not '{where.environment}'; "
            "nothing was contacted",
            hint="undo a run against the environment it was applied to (leave -e out)",
        )
    saved = read_saved_plan(request.plan_file) if request.plan_file is not None else None
    if saved is not None:
        refuse_problems(saved)
        if saved.playbook.sha256 != target_run.restore.digest:
            raise NotApplied(
                f"the saved plan is not the undo of run {head.run_id} as its journal stands "
                f"(it was made for {saved.playbook.name!r}, {saved.playbook.sha256[:19]})",
                hint=f"plan it again: provena-ops undo {head.run_id} --plan-only --out PLAN",
            )
    known = load_environments(where.environments_file)
    env = known.get(head.environment.name)
    confirm_target(env, options)
    # Before the target is opened (a sandbox is created then), and again once it is.
    _same_registry(head, env.name, target_identity(env, where.params, where.cwd))
    playbook = undo_playbook(target_run)
    loaded = LoadedPlaybook(str(path), playbook, None, environment=env.name, params=dict(where.params))
    info = PlaybookInfo(file=str(path), name=playbook.name, sha256=target_run.restore.digest)

    def same_registry(target: Target) -> None:
        """Under the environment lock: the run is still as read (not an apply that was going on)."""
        if read_run(path).restore.digest != target_run.restore.digest:
            raise NotApplied(
                f"run {head.run_id}'s journal changed while the undo was prepared (the run was still going "
                "on); nothing was read or written",
                hint="undo it again once it has finished",
            )
        _same_registry(head, target.name, target.identity)

    prepared = Prepared(env, loaded, playbook, saved, info=info, undoes=head.run_id, force=request.force)
    return prepared, same_registry
