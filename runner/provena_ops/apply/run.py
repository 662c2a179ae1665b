"""`apply`: plan (or take a saved plan), show it, have it approved, carry it out, journal every step.

The order is what keeps it safe: the PROD confirmation before anything is contacted; the environment lock
before anything is read; jobs an interrupted run left in flight followed to their end before planning
(so nothing is submitted twice); a saved plan refused when any record it read has changed; the journal
written ahead of every write.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from provena_ops.api import (
    client_for,
    environment_info,
    file_digest,
    load_valid,
    plan_with,
    playbook_info,
    refuse_empty_environment,
)
from provena_ops.apply.executor import ActionOutcome, Executor, JobWait
from provena_ops.apply.journal import (
    DEFAULT_RUNS_DIR,
    JobRecovered,
    Journal,
    Planned,
    Recap,
    Result,
    RunFinished,
    RunStarted,
    new_run_id,
    now,
)
from provena_ops.apply.lock import default_lock_dir, environment_lock
from provena_ops.apply.recovery import finish_in_flight
from provena_ops.apply.review import (
    REMAKE,
    NotApplied,
    altered,
    listing,
    read_saved_plan,
    refuse_other_target,
    refuse_problems,
    stale,
    unmatched,
)
from provena_ops.environments.file import ToolingEnvironment
from provena_ops.environments.signin import SignInChoice
from provena_ops.environments.target import Target, TargetArgs, open_target, target_identity
from provena_ops.errors import Interrupted, PromptCancelled, ProvenaOpsError
from provena_ops.facts.reader import ReadingProgress, together
from provena_ops.plan.model import Action, Plan, PlaybookInfo
from provena_ops.plan.record_checks import normalised
from provena_ops.playbook.loader import LoadedPlaybook
from provena_ops.playbook.model import Playbook, Restore
from provena_ops.playbook.yaml_source import MAX_BYTES
from provena_ops.provena import registry
from provena_ops.provena.http import ProvenaHttp
from provena_ops.signals import run_async


class ApplyUI(Protocol):
    """What apply needs from whoever runs it (the CLI, a test): to show, to ask, to report progress."""

    def note(self, text: str) -> None: ...

    def show(self, plan: Plan) -> None: ...

    def confirm(self, plan: Plan, target: Target) -> bool: ...

    @property
    def reading(self) -> ReadingProgress | None: ...

    def executing(self, plan: Plan) -> Callable[[Action, Result], None] | None: ...


@dataclass
class ApplyResult:
    run_id: str
    journal: Path
    plan: Plan
    recap: Recap
    outcomes: dict[str, ActionOutcome] = field(default_factory=dict)
    recovered: list[JobRecovered] = field(default_factory=list)
    stopped: str | None = None


@dataclass(frozen=True)
class ApplyOptions:
    """How to apply, as the command line (or a script) asks: one value instead of a dozen parameters."""

    auto_approve: bool = False
    confirm_environment: str | None = None
    parallelism: int = 8  # writes in flight
    concurrency: int = 16  # reads in flight
    fail_fast: bool = False
    command: str = "provena-ops apply"  # what the journal records, and what an interrupt says to re-run
    runs_dir: Path | None = None  # journals; default .provena-ops/runs under the working directory
    job_wait: JobWait = field(default_factory=JobWait)
    sign_in: SignInChoice | None = None
    only: frozenset[str] = frozenset()  # --target ids: apply only their actions and what they depend on


@dataclass(frozen=True)
class ApplyRun:
    """One apply once its target is open and signed in: what every step of it works with."""

    http: ProvenaHttp
    target: Target
    journal: Journal
    runs: Path
    prepared: Prepared
    ui: ApplyUI
    options: ApplyOptions

    @property
    def info(self) -> PlaybookInfo:
        return self.prepared.info or playbook_info(self.prepared.loaded, self.prepared.playbook)


def apply(
    file: Path | None,
    ui: ApplyUI,
    *,
    plan_file: Path | None = None,
    where: TargetArgs = TargetArgs(),
    options: ApplyOptions = ApplyOptions(),
) -> ApplyResult:
    environment = where.environment
    refuse_empty_environment(environment)
    saved = read_saved_plan(plan_file) if plan_file is not None else None
    if saved is not None:
        refuse_problems(saved)
        if options.only:
            raise ProvenaOpsError(
                "--target narrows a plan as it is made; a saved plan already holds what it applies",
                hint="apply the saved plan as it is, or plan again: provena-ops plan PLAYBOOK --target ID "
                "--out plan.json",
            )
        if environment is not None:
            refuse_other_target(saved, environment, None, None, True)
    if file is None:
        if saved is None:
            raise ProvenaOpsError("apply needs a playbook or --plan", hint="provena-ops apply PLAYBOOK")
        file = Path(saved.playbook.file)
    if saved is not None:
        _same_playbook(file, saved)
        if where.variables:
            raise ProvenaOpsError(
                "--var and --var-file set a playbook's vars as a plan is made; a saved plan keeps the "
                "values it was made with",
                hint="apply the saved plan as it is, or plan again with the new values: provena-ops plan "
                "PLAYBOOK --var NAME=VALUE --out plan.json",
            )
        where = dataclasses.replace(where, variables=saved.variables)
    loaded, playbook, known = load_valid(file, where)
    assert loaded.environment is not None
    env = known.get(loaded.environment)
    if saved is not None and saved.playbook.name != playbook.name:
        raise NotApplied(
            f"the plan names its playbook {saved.playbook.name!r}, but {file} is named {playbook.name!r}",
            hint="the file was edited after `provena-ops plan` wrote it; " + REMAKE,
        )
    if saved is not None:
        identity = target_identity(env, loaded.params, where.cwd)
        refuse_other_target(saved, env.name, env.stage, identity, environment is not None)
    confirm_target(env, options)
    first = playbook.operations[0]
    undoes = first.run if isinstance(first, Restore) else None  # a restore playbook's run is an undo
    only = frozenset(saved.targeted) if saved is not None else options.only
    prepared = Prepared(env, loaded, playbook, saved, undoes=undoes, only=only)
    return apply_prepared(prepared, ui, where, options)


@dataclass(frozen=True)
class Prepared:
    """A playbook ready to apply, from a file or made in memory (an undo's, from a journal)."""

    env: ToolingEnvironment
    loaded: LoadedPlaybook
    playbook: Playbook
    saved: Plan | None = None
    info: PlaybookInfo | None = None  # for a playbook that is not a file
    undoes: str | None = None
    force: frozenset[str] = frozenset()
    only: frozenset[str] = frozenset()  # --target ids (a saved plan's own, when it was narrowed)


def confirm_target(env: ToolingEnvironment, options: ApplyOptions) -> None:
    """The PROD guard, before anything is contacted: a production stage needs its name confirmed, and a
    confirmation of another environment confirms nothing."""
    confirmed = options.confirm_environment
    if confirmed is not None and confirmed != env.name:
        raise NotApplied(  # a confirmation meant for another environment confirms nothing
            f"--confirm-environment {confirmed} does not name the target environment "
            f"'{env.name}'; nothing was contacted",
            hint=f"check the playbook's environment (and -e); to apply to '{env.name}', "
            f"confirm it: --confirm-environment {env.name}",
        )
    if env.is_production and confirmed != env.name:
        raise NotApplied(
            f"'{env.name}' is a production environment (stage {env.stage}); nothing was contacted",
            hint=f"add --confirm-environment {env.name} to apply there",
        )


def apply_prepared(
    prepared: Prepared,
    ui: ApplyUI,
    where: TargetArgs,
    options: ApplyOptions,
    check_target: Callable[[Target], None] | None = None,
) -> ApplyResult:
    """Carry out a prepared playbook under the environment lock; `check_target` may refuse the target
    once it is open (before anything is read)."""
    runs = options.runs_dir or (where.cwd or Path.cwd()) / DEFAULT_RUNS_DIR
    with (
        open_target(prepared.env, prepared.loaded.params, cwd=where.cwd) as target,
        environment_lock(default_lock_dir(), target.name, target.identity, options.command) as took_over,
    ):
        if check_target is not None:
            check_target(target)
        if took_over:
            ui.note(took_over)

        async def run() -> ApplyResult:
            async with client_for(target, options.concurrency, options.sign_in) as http:
                await (
                    http.auth.token()
                )  # signed in first: the journal names who; a refused sign-in leaves none
                journal = Journal(runs, new_run_id())
                try:
                    return await _apply(ApplyRun(http, target, journal, runs, prepared, ui, options))
                finally:
                    journal.close()

        return run_async(run())


async def _apply(run: ApplyRun) -> ApplyResult:
    journal, ui, options = run.journal, run.ui, run.options
    journal.write(
        RunStarted(
            at=now(),
            run_id=journal.run_id,
            who=run.http.auth.username,
            environment=environment_info(run.target),
            playbook=run.info,
            command=options.command,
            undoes=run.prepared.undoes,
        )
    )

    try:
        plan, recovered = await _plan_for_apply(run)
        result = ApplyResult(journal.run_id, journal.path, plan, Recap(), recovered=recovered)
        if not plan.has_changes:
            result.recap = Recap(ok=len(plan.actions))
            journal.write(RunFinished(at=now(), recap=result.recap))
            return result
        if not options.auto_approve and not ui.confirm(plan, run.target):
            raise NotApplied("apply cancelled; nothing was changed")
    except ProvenaOpsError as exc:  # stopped before any write: the journal says why, and nothing is in flight
        journal.write(RunFinished(at=now(), recap=Recap(), stopped=exc.message))
        raise
    except PromptCancelled:
        stopped = "cancelled at the approval prompt; nothing was changed"
        journal.write(RunFinished(at=now(), recap=Recap(), stopped=stopped, cancelled=True))
        raise Interrupted(stopped, hint="apply again when ready") from None
    except (asyncio.CancelledError, KeyboardInterrupt):
        stopped = "interrupted while planning; nothing was changed"
        journal.write(RunFinished(at=now(), recap=Recap(), stopped=stopped, cancelled=True))
        raise Interrupted(stopped, hint="apply again when ready") from None
    executor = Executor(
        run.http,
        plan,
        journal,
        parallelism=options.parallelism,
        fail_fast=options.fail_fast,
        job_wait=options.job_wait,
        progress=ui.executing(plan),
    )
    try:
        result.recap = await executor.run()
    except (asyncio.CancelledError, KeyboardInterrupt):
        # Writes in flight are counted as unknown, so the next run checks on them before planning.
        recap = executor.recap(in_flight_unknown=True)
        journal.write(RunFinished(at=now(), recap=recap, stopped="interrupted"))
        raise Interrupted(
            f"apply interrupted: {recap.line().removeprefix('Apply: ').rstrip('.')} "
            f"({_not_started(plan, executor)} not started); journal {journal.path}",
            hint=f"run the same command again to finish: {options.command}",
        ) from None
    except BaseException:
        journal.write(
            RunFinished(at=now(), recap=executor.recap(in_flight_unknown=True), stopped="interrupted")
        )
        raise
    result.outcomes = executor.outcomes
    result.stopped = f"--fail-fast after {executor.stopped_by} failed" if executor.stopped_by else None
    journal.write(RunFinished(at=now(), recap=result.recap, stopped=result.stopped))
    return result


def _not_started(plan: Plan, executor: Executor) -> int:
    changing = [action.key for action in plan.actions if action.outcome == "change"]
    return sum(1 for key in changing if key not in executor.outcomes and key not in executor.writing)


async def _plan_for_apply(run: ApplyRun) -> tuple[Plan, list[JobRecovered]]:
    """Jobs left in flight followed to their end, then the plan to carry out, made now. With a saved plan,
    only when nothing it read has changed and every write planned now is one the saved plan shows, so
    what is carried out (and shown) is what was reviewed, less what is already done. Refuses
    (NotApplied) a stale, altered or unappliable plan."""
    http, ui, prepared = run.http, run.ui, run.prepared
    saved = prepared.saved
    recovered = await finish_in_flight(http, run.journal, run.runs, run.options.job_wait, run.target.identity)
    for job in recovered:
        ui.note(f"followed {job.key} from interrupted run {job.from_run}: job {job.session_id} {job.status}")
    plan = await plan_with(
        http,
        run.target,
        prepared.loaded,
        prepared.playbook,
        ui.reading,
        run.runs,
        info=prepared.info,
        force=prepared.force,
        only=prepared.only,
    )
    if saved is not None:
        await _matches_saved(http, saved, plan, ui)
    run.journal.write(Planned(at=now(), plan=plan))
    ui.show(plan)
    if plan.problems:
        raise NotApplied(
            f"the plan has {len(plan.problems)} problem(s); nothing was applied",
            hint="fix them (see above) and apply again",
        )
    return plan, recovered


def _same_playbook(file: Path, saved: Plan) -> None:
    """The playbook the plan was made from, unchanged (the file is named by the saved plan: a device or
    a huge file is not read)."""
    try:
        if not file.is_file():
            raise NotApplied(
                f"the plan's playbook {file} is not a file",
                hint="apply from the directory the plan was made in, or give the playbook",
            )
        if file.stat().st_size > MAX_BYTES:
            raise NotApplied(f"{file} is larger than any playbook; it is not the plan's", hint=REMAKE)
        digest = file_digest(file)
    except OSError as exc:
        raise NotApplied(
            f"the plan's playbook {file} cannot be read: {exc.strerror or exc}",
            hint="apply from the directory the plan was made in, or give the playbook",
        ) from exc
    if digest != saved.playbook.sha256:
        if file.resolve() != Path(saved.playbook.file).resolve():
            raise NotApplied(
                f"the plan was made from {saved.playbook.file}, not {file}",
                hint="give that playbook, or none (the plan names it)",
            )
        raise NotApplied(
            f"{file} has changed since the plan was made (sha256 differs)",
            hint=REMAKE,
        )


async def _matches_saved(http: ProvenaHttp, saved: Plan, plan: Plan, ui: ApplyUI) -> None:
    """Refuses (NotApplied) unless the plan made now is the saved one, less what is done already: no
    problems, no record changed since, no write it does not show, none of its writes left out."""
    if plan.problems:  # what the saved plan did not know: a lock since, a role this user lacks
        ui.show(plan)
        raise NotApplied(
            f"applying the saved plan now would run into {len(plan.problems)} problem(s) (above); "
            "nothing was applied",
            hint="fix them and apply again, or plan again",
        )
    if plan.planned_by != saved.planned_by:
        ui.note(f"the plan was made by {saved.planned_by}; it is applied by {plan.planned_by}")
    changed = stale(saved, plan)
    if changed:
        raise NotApplied(
            f"the saved plan is stale: {len(changed)} record(s) changed since it was made: "
            + listing(changed),
            hint=REMAKE,
        )
    unreviewed = altered(saved, plan)
    if unreviewed:
        raise NotApplied(
            f"the saved plan does not say what applying it would do: {len(unreviewed)} action(s) "
            f"planned now are not in it as written: {listing(unreviewed)}",
            hint="the file was edited after `provena-ops plan` wrote it, or made by another version; "
            + REMAKE,
        )
    missing = unmatched(saved, plan)
    done = await together(*(_done(http, action) for action in missing))
    left_out = [action.key for action, finished in zip(missing, done, strict=True) if not finished]
    if left_out:
        raise NotApplied(
            f"the saved plan holds {len(left_out)} action(s) that the plan made now does not, and that "
            f"are not done: {listing(left_out)}; nothing was applied",
            hint="the file was edited after `provena-ops plan` wrote it, or the playbook now selects other "
            "records; " + REMAKE,
        )


async def _done(http: ProvenaHttp, action: Action) -> bool:
    """Whether a saved action the fresh plan does not hold has taken effect (an interrupted run did it)."""
    if action.kind in ("delete_model_run", "delete_study"):  # gone as anything, not only as its subtype
        anything = await registry.general_fetch(http, action.record_id)
        return anything.item is None and not anything.unreadable
    fetched = await registry.fetch(http, action.subtype, action.record_id)
    if action.kind in ("update", "relink") and fetched.item is not None and action.record is not None:
        return bool(normalised(fetched.item.get("record")) == normalised(action.record))
    return False
