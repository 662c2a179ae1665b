"""The JSON documents commands write for scripts (`--format json`): pydantic models, so that each has a
checked-in JSON Schema (schemas/NAME.schema.json, from `provena-ops schema NAME`) a script can rely on.

Each is built from what the command already holds (an apply's result, a run's journal, the environments
file); none is a raw dump of its source.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from provena_ops.apply.journal import Event, Recap
from provena_ops.facts.lookup import FindResult, RecordView
from provena_ops.plan.model import ActionKind, EnvironmentInfo, FieldChange, Outcome, PlaybookInfo, Summary

if TYPE_CHECKING:
    from provena_ops.apply.run import ApplyResult

OUTPUT_FORMAT: Literal[1] = 1

RunResult = Literal["succeeded", "failed", "refused", "cancelled", "interrupted"]
RUN_RESULTS: tuple[RunResult, ...] = ("succeeded", "failed", "refused", "cancelled", "interrupted")
ActionStatus = Literal["changed", "ok", "failed", "skipped", "unknown", "unfinished", "not_started"]


class OutputFormat(StrEnum):
    """For the commands whose output is either for people or for scripts."""

    text = "text"
    json = "json"


class _Output(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Document(_Output):
    output_format: Literal[1] = Field(
        OUTPUT_FORMAT, description="The shape of this document; a new number only for an incompatible change."
    )


def dump(document: _Document) -> str:
    return document.model_dump_json(indent=2) + "\n"


class RecoveredJob(_Output):
    """A job an earlier, interrupted run left in flight, followed to its end before planning."""

    from_run: str
    key: str
    session_id: str
    status: str


# -- apply (and undo) ------------------------------------------------------------------------------


class AppliedAction(_Output):
    key: str
    kind: ActionKind
    record_id: str
    display_name: str | None = None
    planned: Outcome = Field(
        description="What the plan said: change, unchanged (already as planned) or not_found."
    )
    result: ActionStatus
    detail: str


class ApplyResultDocument(_Document):
    """What `apply --format json` (and `undo --format json`) writes on stdout once the run has ended."""

    model_config = ConfigDict(extra="forbid", title="provena-ops apply result")

    run_id: str
    journal: str = Field(description="The run's journal file (`provena-ops log show RUN` reads it).")
    environment: EnvironmentInfo
    playbook: PlaybookInfo
    succeeded: bool = Field(description="Every action changed or ok: exit status 0.")
    recap: Recap
    stopped: str | None = Field(None, description="Why no new action was started (--fail-fast).")
    plan: Summary = Field(description="The counts of the plan carried out.")
    recovered: list[RecoveredJob] = Field(default_factory=list)
    actions: list[AppliedAction] = Field(description="Every action of the plan, in its order.")


def apply_document(result: ApplyResult) -> ApplyResultDocument:
    actions = []
    for action in result.plan.actions:
        outcome = result.outcomes.get(action.key)
        status: ActionStatus
        if outcome is not None:
            status, detail = outcome.result, outcome.detail
        elif action.outcome != "change":  # a plan with nothing to do is not carried out: all ok
            status, detail = "ok", action.why or action.outcome
        else:
            status, detail = "not_started", "not started"
        actions.append(
            AppliedAction(
                key=action.key,
                kind=action.kind,
                record_id=action.record_id,
                display_name=action.display_name,
                planned=action.outcome,
                result=status,
                detail=detail,
            )
        )
    return ApplyResultDocument(
        run_id=result.run_id,
        journal=str(result.journal),
        environment=result.plan.environment,
        playbook=result.plan.playbook,
        succeeded=result.recap.succeeded,
        recap=result.recap,
        stopped=result.stopped,
        plan=result.plan.summary,
        recovered=[
            RecoveredJob(from_run=job.from_run, key=job.key, session_id=job.session_id, status=job.status)
            for job in result.recovered
        ],
        actions=actions,
    )


# -- log list and log show -------------------------------------------------------------------------


class RunHeader(_Output):
    """A run as `log list` lists it: where, what, by whom, and how it ended."""

    run_id: str
    journal: str
    started_at: str
    who: str
    environment: EnvironmentInfo
    playbook: PlaybookInfo
    command: str
    undoes: str | None = Field(None, description="The run this one undoes (`provena-ops undo`).")
    result: RunResult = Field(
        description="succeeded (every action changed or ok), failed (one failed, was skipped or left "
        "unknown), refused (nothing applied: problems in the plan, a stale saved plan, no way to ask "
        "for approval), cancelled (by the user, before any write), interrupted (stopped while "
        "writing, or no end recorded: killed, or still going on)."
    )
    ending: str = Field(description="How it ended, in words, as `log list` shows it.")
    finished_at: str | None = Field(None, description="When it ended (None: no end recorded).")
    recap: Recap | None = Field(None, description="The counts at its end (None: no end recorded).")
    stopped: str | None = None
    resumed_by: str | None = Field(
        None, description="The later run that followed this run's unfinished jobs to their end."
    )
    actions_started: int = Field(description="Actions that began writing (0: the run never wrote anything).")


class Unreadable(_Output):
    journal: str
    problem: str


class LogFilters(_Output):
    environments: list[str] = Field(default_factory=list, description="Any of these (none: any).")
    since: str | None = Field(None, description="Started at or after this moment (ISO 8601, UTC).")
    results: list[RunResult] = Field(default_factory=list, description="Any of these (none: any).")


class LogListDocument(_Document):
    """`log list --format json`: the runs that match, oldest first."""

    model_config = ConfigDict(extra="forbid", title="provena-ops log list")

    runs_dir: str
    filters: LogFilters
    runs: list[RunHeader]
    unreadable: list[Unreadable] = Field(
        default_factory=list,
        description="Journals whose first line is not a run_started event (listed whatever the filters).",
    )


class Request(_Output):
    at: str
    request: str
    session_id: str | None = None
    detail: str | None = None


class RunAction(_Output):
    """One action of the run: the plan's field changes (before and after) beside what became of it."""

    key: str
    kind: str = Field(description="An action kind (a journal's own word when the action is not planned).")
    record_id: str | None
    display_name: str | None = None
    planned: Outcome | None = Field(
        description="What the plan said (change, unchanged, not_found); None: not in the run's plan."
    )
    reason: str | None = None
    changes: list[FieldChange] = Field(default_factory=list)
    result: ActionStatus = Field(
        description="How it ended; unfinished: started writing and no end recorded (the next apply "
        "checks it); not_started: planned, never begun."
    )
    detail: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    before_kept: bool = Field(
        False, description="The journal holds the record as it was before the first write (undo uses it)."
    )
    after: str | None = Field(
        None, description="Fingerprint of the record as the run left it ('absent' once deleted)."
    )
    requests: list[Request] = Field(default_factory=list)
    job_status: str | None = Field(None, description="The last status seen of the action's job.")


class LogRunDocument(_Document):
    """`log show RUN --format json`: one run, action by action; its events with --events."""

    model_config = ConfigDict(extra="forbid", title="provena-ops log run")

    run: RunHeader
    plan: Summary | None = Field(None, description="The counts of the plan (None: it never planned).")
    recovered: list[RecoveredJob] = Field(default_factory=list)
    actions: list[RunAction]
    events: list[Event] | None = Field(None, description="Every journal event, in order (--events).")


# -- environments ----------------------------------------------------------------------------------


class Endpoints(_Output):
    registry: str
    prov: str
    jobs: str
    search: str
    keycloak: str
    others: dict[str, str] = Field(default_factory=dict)


class SandboxInfo(_Output):
    db: str = Field(description="Its state file, relative to the working directory.")
    seed: str


class EnvironmentEntry(_Output):
    name: str
    stage: str
    domain: str
    production: bool = Field(description="apply and undo need --confirm-environment NAME.")
    auth_method: str | None = Field(None, description="How provena-ops signs in, when the file says.")
    sandbox: SandboxInfo | None = Field(None, description="The embedded sandbox, started on demand.")
    needs_params: list[str] = Field(
        default_factory=list, description="Replacements still to give as --param ID:VALUE."
    )
    endpoints: Endpoints | None = Field(
        None, description="Where its APIs are (None: a sandbox, or values still needed)."
    )


class EnvironmentsDocument(_Document):
    """`environments [NAME] --format json`: every environment, or the one named."""

    model_config = ConfigDict(extra="forbid", title="provena-ops environments")

    source: str = Field(description="The environments file read, or 'built-in'.")
    environments: list[EnvironmentEntry]


# -- find and record -------------------------------------------------------------------------------


class FindDocument(FindResult, _Document):
    """`find --format json`: records matching an id or words, each confirmed by a fetch."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="provena-ops find")

    environment: EnvironmentInfo


class RecordDocument(RecordView, _Document):
    """`record ID --format json`: one record, what it names, its graph neighbours, a study's runs."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="provena-ops record")

    environment: EnvironmentInfo
