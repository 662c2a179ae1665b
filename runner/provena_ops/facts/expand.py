"""Record references -> handle ids: names through search results, selectors through the registry scan.

Pure, so the fetcher (deciding what else to read) and the planner (pinning targets in the plan) expand
the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from provena_ops.facts.model import State, name_key
from provena_ops.plan.record_checks import STRUCTURAL
from provena_ops.playbook.model import (
    ModelRunRef,
    Operation,
    Playbook,
    StudyDeletion,
    StudyRef,
    UpdateModelRuns,
)


@dataclass
class Needs:
    """What must be read before targets can be expanded."""

    names: set[tuple[str, str]] = field(default_factory=set)  # (subtype, display name)
    scan: bool = False  # a full listing of model runs
    # What an edited run feeds downstream: read only when an edit can change the run's place in the graph
    # (its study, inputs, outputs, associations or template), where the plan names what follows from it.
    edit_downstream: bool = False


@dataclass
class Resolution:
    ids: list[str]
    problem: str | None = None
    hint: str | None = None
    nameless: bool = False  # no record has the name: for a deletion, already done (or a typo)
    excluded: list[str] = field(default_factory=list)  # chosen by the selector, left out by its exclude
    unused_exclusions: list[str] = field(default_factory=list)  # exclude entries that left nothing out


def needs(playbook: Playbook) -> Needs:
    found = Needs()
    for operation in playbook.operations:
        for ref in operation.run_refs():
            if ref.display_name is not None:
                found.names.add(("MODEL_RUN", ref.display_name))
            if ref.linked_to_study is not None or ref.display_name_matches is not None:
                found.scan = True
        for study in operation.study_refs():
            if study.display_name is not None:
                found.names.add(("STUDY", study.display_name))
        if operation.deleted_studies():
            found.scan = True  # the registry side of "what links to this study"
        found.edit_downstream |= _moves_runs_in_the_graph(operation)
    return found


def _moves_runs_in_the_graph(operation: Operation) -> bool:
    """Whether the runs the operation edits may change a structural field (plan/edits.py STRUCTURAL).
    Study deletions relink their runs; only an update that sets none of them leaves the graph alone."""
    if isinstance(operation, UpdateModelRuns):
        return any(path.split(".")[0] in STRUCTURAL for path in operation.patch())
    return operation.runs_are == "edited" or bool(operation.deleted_studies())


def resolve_run(ref: ModelRunRef, state: State) -> Resolution:
    if ref.id is not None:
        return Resolution([ref.id])
    if ref.display_name is not None:
        return _by_name("MODEL_RUN", "model run", ref.display_name, state)
    index = state.run_index or []
    if ref.linked_to_study is not None:
        chosen = [run for run in index if run.study_id == ref.linked_to_study]
    else:
        assert ref.display_name_matches is not None
        pattern = ref.display_name_matches
        chosen = [run for run in index if fnmatchcase(run.display_name, pattern)]
    if not ref.exclude:
        return Resolution(sorted(run.id for run in chosen))
    kept: list[str] = []
    excluded: list[str] = []
    used: set[int] = set()
    for run in chosen:
        leaving = [
            n for n, exclusion in enumerate(ref.exclude) if exclusion.leaves_out(run.id, run.display_name)
        ]
        used.update(leaving)
        (excluded if leaving else kept).append(run.id)
    unused = [
        exclusion.model_dump(exclude_none=True, exclude_defaults=True)
        for n, exclusion in enumerate(ref.exclude)
        if n not in used
    ]
    return Resolution(sorted(kept), excluded=sorted(excluded), unused_exclusions=[str(u) for u in unused])


def resolve_study(ref: StudyRef | StudyDeletion, state: State) -> Resolution:
    if ref.id is not None:
        return Resolution([ref.id])
    assert ref.display_name is not None
    return _by_name("STUDY", "study", ref.display_name, state)


def _by_name(subtype: str, noun: str, display_name: str, state: State) -> Resolution:
    ids = state.names.get(name_key(subtype, display_name), [])
    if not ids:
        near = state.near_names.get(name_key(subtype, display_name), [])
        listed = ", ".join(f"{candidate.subtype!r} ({candidate.id})" for candidate in near)
        # A record whose name differs only in case or spacing is a typo, not a record already gone.
        almost = any(_loose(candidate.subtype) == _loose(display_name) for candidate in near)
        return Resolution(
            [],
            f"no {noun} is named exactly {display_name!r}" + (f"; search found {listed}" if near else ""),
            "names match exactly (case and spaces count); copy the name, or give the handle id",
            nameless=not almost,
        )
    if len(ids) > 1:
        return Resolution(
            [],
            f"{len(ids)} {noun}s are named {display_name!r}: {', '.join(sorted(ids))}",
            "name the record by handle id instead",
        )
    return Resolution(ids)


def _loose(name: str) -> str:
    return " ".join(name.casefold().split())
