"""The planner's working state: what the playbook asks of each record, merged across operations,
and the problems found on the way (each reported once)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provena_ops.facts.expand import resolve_study
from provena_ops.facts.model import RecordFact, State
from provena_ops.plan.keys import action_key
from provena_ops.plan.model import (
    Action,
    ActionKind,
    OperationTargets,
    Problem,
    Skipped,
)
from provena_ops.playbook.model import (
    DeleteStudies,
    Playbook,
    StudyDeletion,
)


@dataclass(slots=True)  # one per model run edited: 100,000 of them in an edit of every run
class Edit:
    """What the playbook asks of one model run, merged across operations."""

    operations: list[int] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    fields: dict[str, tuple[Any, int]] = field(default_factory=dict)  # path -> (value, operation)
    annotation_ops: list[tuple[int, Any]] = field(default_factory=list)
    explicit_update: bool = False
    stale_graph_link: str | None = None  # study the graph (but not the record) links this run to
    allow_moving_study: bool = True


@dataclass
class Planning:
    playbook: Playbook
    state: State
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    targets: list[OperationTargets] = field(default_factory=list)
    edits: dict[str, Edit] = field(default_factory=dict)
    deletes: dict[str, list[int]] = field(default_factory=dict)
    relodges: dict[str, list[int]] = field(default_factory=dict)
    study_deletes: dict[str, tuple[int, StudyDeletion, DeleteStudies]] = field(default_factory=dict)
    study_dependencies: dict[str, list[str]] = field(default_factory=dict)
    study_overrides: dict[str, list[str]] = field(default_factory=dict)  # runs model_run_overrides decided
    checked_replacements: set[tuple[str, str]] = field(default_factory=set)
    bad_studies: set[str] = field(default_factory=set)  # already reported; runs pointing at them stay quiet
    reported: set[tuple[str, int | None, str | None]] = field(default_factory=set)
    skipped: dict[str, tuple[int, str]] = field(default_factory=dict)  # record -> (operation, why)
    skips: list[Skipped] = field(default_factory=list)  # the plan's `skipped`, once actions are made
    only: frozenset[str] = frozenset()  # --target ids

    def problem(
        self,
        message: str,
        hint: str,
        operation: int | None = None,
        record: str | None = None,
        *,
        locked: bool = False,
    ) -> None:
        """Each problem once, however many runs or references run into it. A locked record in an
        operation with `skip_locked: true` is a skip, not a problem."""
        skips = operation is not None and self.playbook.operations[operation].skips_locked()
        if locked and record is not None and operation is not None and skips:
            self.skipped.setdefault(record, (operation, message))
            return
        if (message, operation, record) not in self.reported:
            self.reported.add((message, operation, record))
            self.problems.append(Problem(message=message, hint=hint, operation=operation, record_id=record))


NAMELESS_DELETE = (
    "nothing to delete (already deleted, if an earlier apply deleted it; otherwise check the name)"
)


def single_study(planning: Planning, index: int, ref: Any, *, deleting: bool = False) -> str | None:
    resolved = resolve_study(ref, planning.state)
    if resolved.problem and resolved.nameless and deleting:
        planning.warnings.append(f"operations[{index}]: {resolved.problem}: {NAMELESS_DELETE}")
        return None
    if resolved.problem:
        planning.problem(resolved.problem, resolved.hint or "", index)
        return None
    return resolved.ids[0]


def edit_of(planning: Planning, run: str, index: int, reason: str) -> Edit:
    edit = planning.edits.setdefault(run, Edit())
    if index not in edit.operations:
        edit.operations.append(index)
    if reason not in edit.reasons:
        edit.reasons.append(reason)
    return edit


def set_field(planning: Planning, run: str, edit: Edit, path: str, value: Any, index: int) -> None:
    previous = edit.fields.get(path)
    if previous is not None and previous[0] != value:
        planning.problem(
            f"model run {run}: operations[{previous[1]}] sets {path} to {_show(previous[0])} but "
            f"operations[{index}] sets it to {_show(value)}",
            "make the operations agree, or change this field in one of them only",
            index,
            run,
        )
        return
    edit.fields[path] = (value, index)


def _show(value: Any) -> str:
    return "nothing" if value is None else repr(value)


def new_action(kind: ActionKind, fact: RecordFact, operations: list[int], **fields: Any) -> Action:
    """An action on one record; its key is how other actions depend on it ('update X', 'delete X')."""
    return Action(
        key=action_key(kind, fact.id),
        kind=kind,
        record_id=fact.id,
        subtype="STUDY" if kind == "delete_study" else "MODEL_RUN",
        display_name=fact.display_name,
        operations=sorted(operations),
        **fields,
    )


UNREADABLE_HINT = "ask the record's owner for access, or run as a registry admin"


def absence(fact: RecordFact) -> str:
    """Why a record is not there: gone, or there but hidden from the signed-in user."""
    if fact.unreadable:
        return f"cannot be read: {fact.problem}"
    return f"does not exist: {fact.problem or 'not found'}"
