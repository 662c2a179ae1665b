"""Collecting intents: each operation's records, resolved through the facts, become edits, deletions
and relodges on the shared `Planning` (one collector per operation type)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from provena_ops.facts.expand import resolve_run
from provena_ops.plan.model import (
    OperationTargets,
)
from provena_ops.plan.planning import NAMELESS_DELETE, Edit, Planning, edit_of, set_field, single_study
from provena_ops.playbook.model import (
    DeleteModelRuns,
    DeleteStudies,
    LinkStudies,
    Operation,
    OperationModel,
    RelodgeModelRuns,
    UpdateModelRuns,
)

LINK_REASON = "(bulk) linking to study {study}"


Collector = Callable[[Planning, int, Any, list[str]], list[str]]  # -> the studies it resolved


def collect(planning: Planning, index: int, operation: Operation) -> None:
    """The operation's intents, added to the shared planning by its type's collector."""
    excluded: list[str] = []
    runs = _expand_runs(planning, index, operation, excluded)
    studies = COLLECTORS[type(operation)](planning, index, operation, runs)
    planning.targets.append(
        OperationTargets(
            operation=index,
            op=operation.op,
            model_runs=runs,
            studies=studies,
            excluded=[run for run in excluded if run not in runs],
        )
    )


def _deletes(planning: Planning, index: int, operation: DeleteModelRuns, runs: list[str]) -> list[str]:
    for run in runs:
        planning.deletes.setdefault(run, []).append(index)
    return []


def _relodges(planning: Planning, index: int, operation: RelodgeModelRuns, runs: list[str]) -> list[str]:
    for run in runs:
        planning.relodges.setdefault(run, []).append(index)
    return []


def _updates(planning: Planning, index: int, operation: UpdateModelRuns, runs: list[str]) -> list[str]:
    for run in runs:
        edit = edit_of(planning, run, index, operation.reason)
        edit.explicit_update = True
        for path, value in operation.patch().items():
            set_field(planning, run, edit, path, value, index)
        annotations = operation.annotations
        if annotations.set or annotations.remove or annotations.clear:
            _annotation_conflicts(planning, run, edit, index, annotations)
            edit.annotation_ops.append((index, annotations))
    return []


def _links(planning: Planning, index: int, operation: LinkStudies, runs: list[str]) -> list[str]:
    study = single_study(planning, index, operation.study)
    if study is None:
        return []
    for run in runs:
        edit = edit_of(planning, run, index, operation.reason or LINK_REASON.format(study=study))
        edit.allow_moving_study = edit.allow_moving_study and operation.replace_existing_links
        set_field(planning, run, edit, "study_id", study, index)
    return [study]


def _study_deletions(planning: Planning, index: int, operation: DeleteStudies, runs: list[str]) -> list[str]:
    studies: list[str] = []
    for study_ref in operation.studies:
        study = single_study(planning, index, study_ref, deleting=True)
        if study is None:
            continue
        studies.append(study)
        if study in planning.study_deletes:
            planning.problem(f"study {study} is deleted twice", "list each study once", index, study)
            continue
        planning.study_deletes[study] = (index, study_ref, operation)
    return studies


# One collector per operation type (tests/plan/test_operations.py checks none is missing).
COLLECTORS: dict[type[OperationModel], Collector] = {
    DeleteModelRuns: _deletes,
    RelodgeModelRuns: _relodges,
    UpdateModelRuns: _updates,
    LinkStudies: _links,
    DeleteStudies: _study_deletions,
}


def links_to_deleted_studies(planning: Planning) -> None:
    """Ids reached through names or selectors get the check `validate` makes for ids written out."""
    for run, edit in sorted(planning.edits.items()):
        wanted = edit.fields.get("study_id")
        if wanted is None or wanted[0] is None or wanted[0] in planning.bad_studies:
            continue
        if wanted[0] in planning.study_deletes:
            planning.problem(
                f"operations[{wanted[1]}] links model run {run} to study {wanted[0]}, which operations"
                f"[{planning.study_deletes[wanted[0]][0]}] deletes",
                "link the run to a study that stays, or keep this study",
                wanted[1],
                run,
            )


def _expand_runs(planning: Planning, index: int, operation: OperationModel, excluded: list[str]) -> list[str]:
    """The runs it names, in order; `excluded` gets those its selectors' exclude left out."""
    runs: dict[str, None] = {}  # in order, each once (a list's `in` would make 100,000 runs quadratic)
    left_out = set(excluded)
    for ref in operation.run_refs():
        resolved = resolve_run(ref, planning.state)
        if not resolved.ids and not resolved.problem:
            selector = ref.model_dump(exclude_none=True)
            planning.warnings.append(f"operations[{index}]: the selector {selector} matches no model run")
        for unused in resolved.unused_exclusions:
            planning.warnings.append(
                f"operations[{index}]: exclude {unused} leaves out none of the runs its selector chose"
            )
        for run in resolved.excluded:
            if run not in left_out:
                left_out.add(run)
                excluded.append(run)
        if resolved.problem and resolved.nameless and operation.runs_are == "deleted":
            planning.warnings.append(f"operations[{index}]: {resolved.problem}: {NAMELESS_DELETE}")
        elif resolved.problem:
            planning.problem(resolved.problem, resolved.hint or "", index)
        runs.update(dict.fromkeys(resolved.ids))
    return list(runs)


def _annotation_conflicts(planning: Planning, run: str, edit: Edit, index: int, new: Any) -> None:
    """Annotation edits from different operations must agree key by key; clearing agrees with nothing."""
    for earlier, old in edit.annotation_ops:
        if earlier == index:
            continue
        clashes = []
        if old.clear or new.clear:
            clashes.append("one operation clears every annotation")
        for key in sorted(set(old.set) & set(new.set)):
            if old.set[key] != new.set[key]:
                clashes.append(f"'{key}' is set to {old.set[key]!r} and to {new.set[key]!r}")
        for key in sorted((set(old.set) & set(new.remove)) | (set(new.set) & set(old.remove))):
            clashes.append(f"'{key}' is both set and removed")
        if clashes:
            planning.problem(
                f"model run {run}: the annotation edits of operations[{earlier}] and operations[{index}] "
                f"conflict: {'; '.join(clashes)}",
                "edit this run's annotations in one operation only",
                index,
                run,
            )
