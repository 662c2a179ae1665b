"""`apply`: plan (or take a saved plan), show it, have it approved, carry it out, journal every step.

The order is what keeps it safe: the PROD confirmation before anything is contacted; the environment lock
before anything is read; jobs an interrupted run left in flight followed to their end before planning
(so nothing is submitted twice); a saved plan refused when any record it read has changed; the journal
written ahead of every write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pydantic import ValidationError

from .api import client_for, environment_info, file_digest, load_valid, plan_with, playbook_info
from .errors import ProvenaOpsError
from .executor import Executor, JobWait, Outcome
from .journal import (
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
from .lock import default_lock_dir, environment_lock
from .plan import Action, Plan
from .playbook.loader import LoadedPlaybook
from .playbook.model import Playbook
from .provena.http import ProvenaHttp
from .recovery import finish_in_flight
from .signin import SignInChoice
from .state import Progress
from .targets import Target, open_target


class ApplyUI(Protocol):
    """What apply needs from whoever runs it (the CLI, a test): to show, to ask, to report progress."""

    def note(self, text: str) -> None: ...

    def show(self, plan: Plan) -> None: ...

    def confirm(self, plan: Plan, target: Target) -> bool: ...

    @property
    def reading(self) -> Progress | None: ...

    def executing(self, plan: Plan) -> Callable[[Action, Result], None] | None: ...


@dataclass
class ApplyResult:
    run_id: str
    journal: Path
    plan: Plan
    recap: Recap
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    recovered: list[JobRecovered] = field(default_factory=list)
    stopped: str | None = None


class NotApplied(ProvenaOpsError):
    """Apply stopped before writing anything: problems, a stale plan, no confirmation."""


def apply(
    file: Path | None,
    ui: ApplyUI,
    *,
    plan_file: Path | None = None,
    environment: str | None = None,
    params: dict[str, str] | None = None,
    environments_file: Path | None = None,
    auto_approve: bool = False,
    confirm_environment: str | None = None,
    parallelism: int = 8,
    concurrency: int = 16,
    fail_fast: bool = False,
    command: str = "provena-ops apply",
    cwd: Path | None = None,
    runs_dir: Path | None = None,
    job_wait: JobWait | None = None,
    sign_in: SignInChoice | None = None,
) -> ApplyResult:
    base = cwd or Path.cwd()
    runs = runs_dir or base / DEFAULT_RUNS_DIR
    saved = _saved_plan(plan_file) if plan_file is not None else None
    if file is None:
        if saved is None:
            raise ProvenaOpsError("apply needs a playbook or --plan", hint="provena-ops apply PLAYBOOK")
        file = Path(saved.playbook.file)
    if saved is not None:
        if environment is not None and environment != saved.environment.name:
            raise NotApplied(
                f"the plan was made for '{saved.environment.name}', not '{environment}'",
                hint="plan again for that environment",
            )
        environment = saved.environment.name
        _same_playbook(file, saved)
    loaded, playbook, known = load_valid(
        file, environment=environment, params=params, environments_file=environments_file
    )
    assert loaded.environment is not None
    env = known.get(loaded.environment)
    if confirm_environment is not None and confirm_environment != env.name:
        raise NotApplied(  # a confirmation meant for another environment confirms nothing
            f"--confirm-environment {confirm_environment} does not name the target environment "
            f"'{env.name}'; nothing was contacted",
            hint=f"check the playbook's environment (and -e); to apply to '{env.name}', "
            f"confirm it: --confirm-environment {env.name}",
        )
    if env.stage.strip().upper() == "PROD" and confirm_environment != env.name:
        raise NotApplied(
            f"'{env.name}' is a production environment; nothing was contacted",
            hint=f"add --confirm-environment {env.name} to apply there",
        )
    with (
        open_target(env, loaded.params, cwd=cwd) as target,
        environment_lock(default_lock_dir(), target.name, target.identity, command) as took_over,
    ):
        if took_over:
            ui.note(took_over)

        async def run() -> ApplyResult:
            async with client_for(target, concurrency, sign_in) as http:
                await (
                    http.auth.token()
                )  # signed in first: the journal names who; a refused sign-in leaves none
                journal = Journal(runs, new_run_id())
                try:
                    return await _apply(
                        http, target, journal, runs, loaded, playbook, saved=saved, ui=ui,
                        auto_approve=auto_approve, parallelism=parallelism, fail_fast=fail_fast,
                        command=command, job_wait=job_wait or JobWait(),
                    )  # fmt: skip
                finally:
                    journal.close()

        return asyncio.run(run())


async def _apply(
    http: ProvenaHttp,
    target: Target,
    journal: Journal,
    runs: Path,
    loaded: LoadedPlaybook,
    playbook: Playbook,
    *,
    saved: Plan | None,
    ui: ApplyUI,
    auto_approve: bool,
    parallelism: int,
    fail_fast: bool,
    command: str,
    job_wait: JobWait,
) -> ApplyResult:
    journal.write(
        RunStarted(
            at=now(),
            run_id=journal.run_id,
            who=http.auth.username,
            environment=environment_info(target),
            playbook=playbook_info(loaded, playbook),
            command=command,
        )
    )

    try:
        plan, recovered = await _plan_for_apply(
            http, target, journal, runs, loaded, playbook, saved, ui, job_wait
        )
        result = ApplyResult(journal.run_id, journal.path, plan, Recap(), recovered=recovered)
        if not plan.has_changes:
            result.recap = Recap(ok=len(plan.actions))
            journal.write(RunFinished(at=now(), recap=result.recap))
            return result
        if not auto_approve and not ui.confirm(plan, target):
            raise NotApplied("apply cancelled; nothing was changed")
    except ProvenaOpsError as exc:  # stopped before any write: the journal says why, and nothing is in flight
        journal.write(RunFinished(at=now(), recap=Recap(), stopped=exc.message))
        raise
    executor = Executor(
        http,
        plan,
        journal,
        parallelism=parallelism,
        fail_fast=fail_fast,
        job_wait=job_wait,
        progress=ui.executing(plan),
    )
    try:
        result.recap = await executor.run()
    except BaseException:
        # Interrupted (Ctrl-C) or failed with writes possibly in flight: they are counted as unknown,
        # so the next run checks on them before planning.
        journal.write(
            RunFinished(at=now(), recap=executor.recap(in_flight_unknown=True), stopped="interrupted")
        )
        raise
    result.outcomes = executor.outcomes
    result.stopped = f"--fail-fast after {executor.stopped_by} failed" if executor.stopped_by else None
    journal.write(RunFinished(at=now(), recap=result.recap, stopped=result.stopped))
    return result


async def _plan_for_apply(
    http: ProvenaHttp,
    target: Target,
    journal: Journal,
    runs: Path,
    loaded: LoadedPlaybook,
    playbook: Playbook,
    saved: Plan | None,
    ui: ApplyUI,
    job_wait: JobWait,
) -> tuple[Plan, list[JobRecovered]]:
    """Jobs left in flight followed to their end, then the plan to carry out, made now. With a saved plan,
    only when nothing it read has changed and every write planned now is one the saved plan shows, so
    what is carried out (and shown) is what was reviewed, less what is already done. Refuses
    (NotApplied) a stale, altered or unappliable plan."""
    recovered = await finish_in_flight(http, journal, runs, job_wait, target.identity)
    for job in recovered:
        ui.note(f"followed {job.key} from interrupted run {job.from_run}: job {job.session_id} {job.status}")
    plan = await plan_with(http, target, loaded, playbook, ui.reading)
    if saved is not None:
        if plan.problems:  # what the saved plan did not know: a lock since, a role this user lacks
            ui.show(plan)
            raise NotApplied(
                f"applying the saved plan now would run into {len(plan.problems)} problem(s) (above); "
                "nothing was applied",
                hint="fix them and apply again, or plan again",
            )
        if plan.planned_by != saved.planned_by:
            ui.note(f"the plan was made by {saved.planned_by}; it is applied by {plan.planned_by}")
        stale = _stale(saved, plan)
        if stale:
            raise NotApplied(
                f"the saved plan is stale: {len(stale)} record(s) changed since it was made: "
                + ", ".join(stale[:10])
                + (f" and {len(stale) - 10} more" if len(stale) > 10 else ""),
                hint="plan again, review, and apply the new plan",
            )
        unreviewed = _unreviewed(saved, plan)
        if unreviewed:
            raise NotApplied(
                f"the saved plan does not say what applying it would do: {len(unreviewed)} action(s) "
                "planned now are not in it as written: "
                + ", ".join(unreviewed[:10])
                + (f" and {len(unreviewed) - 10} more" if len(unreviewed) > 10 else ""),
                hint="the file was edited after `provena-ops plan` wrote it, or made by another version; "
                "plan again, review, and apply the new plan",
            )
    journal.write(Planned(at=now(), plan=plan))
    ui.show(plan)
    if plan.problems:
        raise NotApplied(
            f"the plan has {len(plan.problems)} problem(s); nothing was applied",
            hint="fix them (see above) and apply again",
        )
    return plan, recovered


def _saved_plan(path: Path) -> Plan:
    try:
        return Plan.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise ProvenaOpsError(f"cannot read the plan {path}: {exc.strerror or exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ProvenaOpsError(
            f"{path} is not a provena-ops plan: "
            + (f"{where}: {first['msg']}" if where else first["msg"])
            + (f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""),
            hint="save plans with `provena-ops plan PLAYBOOK --out plan.json`, and apply them as saved "
            "(a file cut short or edited by hand is not applied)",
        ) from exc


def _same_playbook(file: Path, saved: Plan) -> None:
    try:
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
            hint="plan again, review, and apply the new plan",
        )


def _stale(saved: Plan, fresh: Plan) -> list[str]:
    """What changed since the saved plan was made, other than by carrying it out (a run of this plan
    that was interrupted must be finishable by the same command): records and study links whose
    fingerprint differs, unless the fresh plan finds the saved plan's action on them already done, or
    the only change to a study's links is runs that no longer link to it."""
    if saved.environment.registry != fresh.environment.registry:
        return [f"the environment ({saved.environment.registry} -> {fresh.environment.registry})"]
    done = {a.record_id for a in fresh.actions if a.outcome != "change"} & {
        a.record_id for a in saved.actions if a.outcome == "change"
    }
    changed = []
    for key in sorted(set(saved.fingerprints) | set(fresh.fingerprints)):
        before, now_ = saved.fingerprints.get(key), fresh.fingerprints.get(key)
        if before == now_ or now_ is None or key in done:
            continue  # unchanged, no longer read (its action needs nothing now), or carried out already
        if key.endswith(LINKS_SUFFIX) and _linked(fresh, key) <= _linked(saved, key):
            continue  # only relinks or deletions since: what this plan does
        changed.append(key)
    return changed


# What an action writes; the rest of it (diff, graph impact, warnings) is what it shows.
EFFECT = ("kind", "record_id", "subtype", "reason", "record", "stale_link_to")


def _unreviewed(saved: Plan, fresh: Plan) -> list[str]:
    """Writes planned now that the saved plan does not show exactly: it was edited by hand, or made by
    another version. Its actions that are done by now are absent from, or unchanged in, the fresh plan."""
    reviewed = {action.key: action for action in saved.actions if action.outcome == "change"}
    return [
        action.key
        for action in fresh.actions
        if action.outcome == "change"
        and (
            action.key not in reviewed
            or any(getattr(action, field) != getattr(reviewed[action.key], field) for field in EFFECT)
        )
    ]


LINKS_SUFFIX = "#links"


def _linked(plan: Plan, links_key: str) -> set[str]:
    """The runs a plan found linked to a study it deletes: the records its deletion waits for."""
    study = links_key.removesuffix(LINKS_SUFFIX)
    return {
        key.split(" ", 1)[1]
        for action in plan.actions
        if action.kind == "delete_study" and action.record_id == study
        for key in action.depends_on
    }
