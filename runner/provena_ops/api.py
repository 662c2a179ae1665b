"""Plain functions behind the CLI commands, callable from tests and scripts without typer."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from provena_ops.apply.journal import DEFAULT_RUNS_DIR, deleted_by
from provena_ops.environments.file import Environments, load_environments
from provena_ops.environments.signin import SignInChoice, session_for
from provena_ops.environments.target import Target, TargetArgs, open_target
from provena_ops.errors import ProvenaOpsError
from provena_ops.facts.reader import ReadingProgress, read_state
from provena_ops.facts.restore_reader import read_restore_state
from provena_ops.plan.model import EnvironmentInfo, Plan, PlaybookInfo
from provena_ops.plan.planner import UNREADABLE, make_plan
from provena_ops.playbook.diagnostics import ValidationReport
from provena_ops.playbook.loader import LoadedPlaybook, is_saved_plan, load_playbook
from provena_ops.playbook.model import Playbook, Restore
from provena_ops.provena.http import ProvenaHttp
from provena_ops.signals import run_async

T = TypeVar("T")


def validate(
    files: Sequence[Path], where: TargetArgs = TargetArgs(), environments: Environments | None = None
) -> list[LoadedPlaybook]:
    """Validate playbooks offline: structure, values, cross-operation rules, environment and params."""
    refuse_empty_environment(where.environment)
    known = environments or load_environments(where.environments_file)
    return [
        load_playbook(
            file,
            environments=known,
            environment=where.environment,
            params=where.params,
            variables=where.variables,
        )
        for file in files
    ]


def refuse_empty_environment(environment: str | None) -> None:
    """`-e ""` names no environment; taking the playbook's own instead would be a guess."""
    if environment is not None and not environment.strip():
        raise ProvenaOpsError("-e/--environment is empty", hint="name an environment, or leave -e out")


def report(loaded: LoadedPlaybook) -> ValidationReport:
    operations = len(loaded.playbook.operations) if loaded.playbook else 0
    return ValidationReport(
        file=loaded.file, valid=loaded.valid, operations=operations, diagnostics=loaded.diagnostics
    )


class PlaybookInvalid(ProvenaOpsError):
    """Planning needs a valid playbook; the diagnostics say why this one is not."""

    def __init__(self, loaded: LoadedPlaybook) -> None:
        super().__init__(f"{loaded.file} is not a valid playbook", hint="run `provena-ops validate` on it")
        self.loaded = loaded

    def render(self) -> str:
        lines = [d.render() for d in self.loaded.diagnostics]
        return "\n".join([*lines, f"error: {self.message}", f"hint: {self.hint}"])


def load_valid(file: Path, where: TargetArgs) -> tuple[LoadedPlaybook, Playbook, Environments]:
    if is_saved_plan(file):
        raise ProvenaOpsError(
            f"{file} is a saved plan, not a playbook",
            hint=f"apply a saved plan with: provena-ops apply --plan {file}",
        )
    known = load_environments(where.environments_file)
    [loaded] = validate([file], where, environments=known)
    if not loaded.valid or loaded.playbook is None:
        raise PlaybookInvalid(loaded)
    return loaded, loaded.playbook, known


@dataclass(frozen=True)
class PlanOptions:
    concurrency: int = 16  # reads in flight
    progress: ReadingProgress | None = None  # told of each read, for a progress bar
    sign_in: SignInChoice | None = None  # None: as the environment's auth settings say
    only: frozenset[str] = frozenset()  # --target ids: the plan narrowed to them


def plan(file: Path, where: TargetArgs = TargetArgs(), options: PlanOptions = PlanOptions()) -> Plan:
    """Read live state for the playbook and plan it; nothing is written anywhere."""
    loaded, playbook, known = load_valid(file, where)
    assert loaded.environment is not None
    env = known.get(loaded.environment)
    with open_target(env, loaded.params, cwd=where.cwd) as target:
        return run_async(_plan(target, loaded, playbook, options))


async def _plan(target: Target, loaded: LoadedPlaybook, playbook: Playbook, options: PlanOptions) -> Plan:
    async with client_for(target, options.concurrency, options.sign_in) as http:
        return await plan_with(http, target, loaded, playbook, options.progress, only=options.only)


def client_for(target: Target, concurrency: int, sign_in: SignInChoice | None = None) -> ProvenaHttp:
    return ProvenaHttp(
        target.endpoints,
        session_for(target, sign_in),
        environment=target.name,
        concurrency=concurrency,
        use_proxies=target.sandbox_db is None,  # the embedded sandbox is on loopback, never behind one
    )


async def plan_with(
    http: ProvenaHttp,
    target: Target,
    loaded: LoadedPlaybook,
    playbook: Playbook,
    progress: ReadingProgress | None,
    runs_dir: Path | None = None,
    *,
    info: PlaybookInfo | None = None,
    force: frozenset[str] = frozenset(),
    only: frozenset[str] = frozenset(),
) -> Plan:
    """`info` names a playbook that is not a file (an undo's, made from a journal); `only`, the
    --target ids."""
    first = playbook.operations[0]
    runs = runs_dir or Path.cwd() / DEFAULT_RUNS_DIR
    if isinstance(first, Restore):
        state = await read_restore_state(http, first)
        state.journal_digest = first.digest if info is not None else journal_digest(runs, first.run)
    else:
        state = await read_state(http, playbook, progress)
        state.deleted_by = deleted_by(runs, target.identity)
    made = make_plan(
        playbook,
        state,
        playbook_info=info or playbook_info(loaded, playbook),
        environment=environment_info(target),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        force=force,
        only=only,
    )
    return made.model_copy(update={"variables": loaded.variables}) if loaded.variables else made


def journal_digest(runs: Path, run: str) -> str:
    """The digest of the images this machine's journal of `run` gives ("" when it is not here), so a
    restore playbook rewritten digest and all is caught where the journal is at hand."""
    from provena_ops.apply.undo import read_run

    path = runs / f"{run}.jsonl"
    if not path.is_file():
        return ""
    try:
        return read_run(path).restore.digest
    except ProvenaOpsError:
        return UNREADABLE


def playbook_info(loaded: LoadedPlaybook, playbook: Playbook) -> PlaybookInfo:
    return PlaybookInfo(file=loaded.file, name=playbook.name, sha256=file_digest(Path(loaded.file)))


def environment_info(target: Target) -> EnvironmentInfo:
    return EnvironmentInfo(name=target.name, stage=target.stage, registry=target.identity)


def file_digest(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def look_up(
    where: TargetArgs,
    read: Callable[[ProvenaHttp], Coroutine[Any, Any, T]],
    *,
    concurrency: int = 16,
    sign_in: SignInChoice | None = None,
) -> tuple[T, EnvironmentInfo]:
    """A read-only look-up on an environment (-e, or the embedded sandbox), with what it was read on."""
    from provena_ops.environments.file import SANDBOX

    env = load_environments(where.environments_file).get(where.environment or SANDBOX)
    with open_target(env, where.params, cwd=where.cwd) as target:

        async def reading() -> T:
            async with client_for(target, concurrency, sign_in) as http:
                return await read(http)

        return run_async(reading()), environment_info(target)
