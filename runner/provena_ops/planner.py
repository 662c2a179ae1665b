"""(Playbook, State) -> Plan. Pure: no I/O, no clock, no randomness (a test checks it imports no httpx).

Every model run the playbook touches gets at most one write action, merging what several operations ask
of it (and failing when they disagree); study deletions come after the relinks they depend on.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from .expand import resolve_run, resolve_study, run_refs
from .facts import ADMIN_ROLE, ADMIN_TIER, WRITE_TIER, RecordFact, State
from .plan import (
    Action,
    ActionKind,
    DeletionImpact,
    EnvironmentInfo,
    FieldChange,
    OperationTargets,
    Outlier,
    Plan,
    PlaybookInfo,
    Problem,
    action_key,
    links_fingerprint,
    links_key,
    summarise,
)
from .playbook.model import (
    ConnectionStrategy,
    DeleteModelRuns,
    DeleteStudies,
    LinkStudies,
    Playbook,
    RelodgeModelRuns,
    StudyDeletion,
    UpdateModelRuns,
)
from .record_checks import missing_from_graph, normalised, record_problems
from .text import article, plural

ITEM_WRITE_ROLES = ("metadata-write", "admin")
STRUCTURAL = ("study_id", "inputs", "outputs", "associations", "workflow_template_id")
REMOVE_REASON = "Removing study reference due to study {study} deletion"
REPLACE_REASON = "Replacing study reference to {replacement} due to study {study} deletion"
LINK_REASON = "(bulk) linking to study {study}"
STALE_REASON = "Removing the stale provenance link to study {study} before its deletion"


@dataclass
class _Edit:
    """What the playbook asks of one model run, merged across operations."""

    operations: list[int] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    fields: dict[str, tuple[Any, int]] = field(default_factory=dict)  # path -> (value, operation)
    annotation_ops: list[tuple[int, Any]] = field(default_factory=list)
    explicit_update: bool = False
    stale_graph_link: str | None = None  # study the graph (but not the record) links this run to
    allow_moving_study: bool = True


@dataclass
class _Planning:
    playbook: Playbook
    state: State
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    targets: list[OperationTargets] = field(default_factory=list)
    edits: dict[str, _Edit] = field(default_factory=dict)
    deletes: dict[str, list[int]] = field(default_factory=dict)
    relodges: dict[str, list[int]] = field(default_factory=dict)
    study_deletes: dict[str, tuple[int, StudyDeletion, DeleteStudies]] = field(default_factory=dict)
    study_dependencies: dict[str, list[str]] = field(default_factory=dict)
    checked_replacements: set[tuple[str, str]] = field(default_factory=set)
    bad_studies: set[str] = field(default_factory=set)  # already reported; runs pointing at them stay quiet
    reported: set[tuple[str, int | None, str | None]] = field(default_factory=set)

    def problem(
        self, message: str, hint: str, operation: int | None = None, record: str | None = None
    ) -> None:
        """Each problem once, however many runs or references run into it."""
        if (message, operation, record) not in self.reported:
            self.reported.add((message, operation, record))
            self.problems.append(Problem(message=message, hint=hint, operation=operation, record_id=record))


def make_plan(
    playbook: Playbook,
    state: State,
    *,
    playbook_info: PlaybookInfo,
    environment: EnvironmentInfo,
    created_at: str,
) -> Plan:
    planning = _Planning(playbook, state)
    if state.unreadable_runs:
        planning.warnings.append(
            f"the registry scan could not read {state.unreadable_runs} model run(s); selectors and study "
            "link discovery cannot see them"
        )
    for index, operation in enumerate(playbook.operations):
        _collect(planning, index, operation)
    for study_id, (index, study, operation) in planning.study_deletes.items():
        _connections(planning, index, study_id, study, operation)
    _links_to_deleted_studies(planning)
    edit_actions = _edit_actions(planning)
    updated = {action.record_id for action in edit_actions if action.outcome == "change"}
    # Dependencies point backwards: edits, then relodges (after their run's edit), then model-run
    # deletions, then study deletions (after the relinks and run deletions that unlink them).
    actions = _only_real_dependencies(
        [
            *edit_actions,
            *_relodge_actions(planning, updated),
            *_delete_actions(planning),
            *_study_actions(planning),
        ]
    )
    impact = _deletion_impact(planning, actions)
    edits = any(a.kind in ("update", "relink") and a.outcome == "change" for a in actions)
    fingerprints = {record_id: fact.fingerprint for record_id, fact in state.records.items()}
    for study_id, links in state.connections.items():
        fingerprints[links_key(study_id)] = links_fingerprint(links.graph_ids, links.registry)
    return Plan(
        playbook=playbook_info,
        environment=environment,
        planned_by=state.username,
        created_at=created_at,
        targets=planning.targets,
        fingerprints=dict(sorted(fingerprints.items())),
        actions=actions,
        problems=planning.problems,
        warnings=planning.warnings,
        notes=[EDIT_SIDE_EFFECTS] if edits else [],
        deletion_impact=impact,
        summary=summarise(actions, planning.problems),
    )


def _only_real_dependencies(actions: list[Action]) -> list[Action]:
    """A dependency on an action that changes nothing (a run already deleted) is no dependency."""
    changing = {action.key for action in actions if action.outcome == "change"}
    return [
        action
        if all(key in changing for key in action.depends_on)
        else action.model_copy(update={"depends_on": [k for k in action.depends_on if k in changing]})
        for action in actions
    ]


# -- collecting intents ---------------------------------------------------------------------------------


def _collect(planning: _Planning, index: int, operation: object) -> None:
    runs = _expand_runs(planning, index, operation)
    studies: list[str] = []
    if isinstance(operation, DeleteModelRuns):
        for run in runs:
            planning.deletes.setdefault(run, []).append(index)
    elif isinstance(operation, RelodgeModelRuns):
        for run in runs:
            planning.relodges.setdefault(run, []).append(index)
    elif isinstance(operation, UpdateModelRuns):
        for run in runs:
            edit = _edit(planning, run, index, operation.reason)
            edit.explicit_update = True
            for name, value in operation.set.given().items():
                path = (
                    f"associations.{name}" if name in ("modeller_id", "requesting_organisation_id") else name
                )
                if isinstance(value, list):
                    value = [item.model_dump(mode="json", exclude_none=True) for item in value]
                _set_field(planning, run, edit, path, value, index)
            annotations = operation.annotations
            if annotations.set or annotations.remove or annotations.clear:
                _annotation_conflicts(planning, run, edit, index, annotations)
                edit.annotation_ops.append((index, annotations))
    elif isinstance(operation, LinkStudies):
        study = _single_study(planning, index, operation.study)
        if study is not None:
            studies.append(study)
            for run in runs:
                edit = _edit(planning, run, index, operation.reason or LINK_REASON.format(study=study))
                edit.allow_moving_study = edit.allow_moving_study and operation.replace_existing_links
                _set_field(planning, run, edit, "study_id", study, index)
    elif isinstance(operation, DeleteStudies):
        for study_ref in operation.studies:
            study = _single_study(planning, index, study_ref, deleting=True)
            if study is None:
                continue
            studies.append(study)
            if study in planning.study_deletes:
                planning.problem(f"study {study} is deleted twice", "list each study once", index, study)
                continue
            planning.study_deletes[study] = (index, study_ref, operation)
    planning.targets.append(
        OperationTargets(
            operation=index, op=str(getattr(operation, "op", "")), model_runs=runs, studies=studies
        )
    )


def _links_to_deleted_studies(planning: _Planning) -> None:
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


def _expand_runs(planning: _Planning, index: int, operation: object) -> list[str]:
    runs: list[str] = []
    for ref in run_refs(operation):
        resolved = resolve_run(ref, planning.state)
        if not resolved.ids and not resolved.problem:
            selector = ref.model_dump(exclude_none=True)
            planning.warnings.append(f"operations[{index}]: the selector {selector} matches no model run")
        if resolved.problem and resolved.nameless and isinstance(operation, DeleteModelRuns):
            planning.warnings.append(f"operations[{index}]: {resolved.problem}: {NAMELESS_DELETE}")
        elif resolved.problem:
            planning.problem(resolved.problem, resolved.hint or "", index)
        for run in resolved.ids:
            if run not in runs:
                runs.append(run)
    return runs


NAMELESS_DELETE = (
    "nothing to delete (already deleted, if an earlier apply deleted it; otherwise check the name)"
)


def _single_study(planning: _Planning, index: int, ref: Any, *, deleting: bool = False) -> str | None:
    resolved = resolve_study(ref, planning.state)
    if resolved.problem and resolved.nameless and deleting:
        planning.warnings.append(f"operations[{index}]: {resolved.problem}: {NAMELESS_DELETE}")
        return None
    if resolved.problem:
        planning.problem(resolved.problem, resolved.hint or "", index)
        return None
    return resolved.ids[0]


def _edit(planning: _Planning, run: str, index: int, reason: str) -> _Edit:
    edit = planning.edits.setdefault(run, _Edit())
    if index not in edit.operations:
        edit.operations.append(index)
    if reason not in edit.reasons:
        edit.reasons.append(reason)
    return edit


def _set_field(planning: _Planning, run: str, edit: _Edit, path: str, value: Any, index: int) -> None:
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


def _annotation_conflicts(planning: _Planning, run: str, edit: _Edit, index: int, new: Any) -> None:
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


def _show(value: Any) -> str:
    return "nothing" if value is None else repr(value)


# -- study deletions: what links to them, and what happens to it ----------------------------------------


def _connections(
    planning: _Planning, index: int, study_id: str, study: StudyDeletion, operation: DeleteStudies
) -> None:
    state = planning.state
    fact = state.record(study_id)
    if fact.exists and fact.subtype != "STUDY":
        planning.problem(
            f"{study_id} is {article(fact.subtype)}, not a study",
            "check the id in delete_studies",
            index,
            study_id,
        )
        return
    links = state.connections.get(study_id)
    if links is None:
        return
    if links.graph_error:
        planning.problem(
            f"study {study_id}: the provenance graph could not be explored ({links.graph_error}), so records "
            "other than model runs that link to it cannot be ruled out",
            "plan again when the prov API answers; deleting a study something still links to orphans it",
            index,
            study_id,
        )
    others = [node for node in links.graph if node.subtype != "MODEL_RUN"]
    for node in others:
        planning.problem(
            f"study {study_id} is linked to {node.id}, a {node.subtype} (not a model run)",
            "provena-ops only reconnects model runs; unlink that record first, or keep the study",
            index,
            study_id,
        )
    graph_runs = {node.id for node in links.graph if node.subtype == "MODEL_RUN"}
    registry_runs = set(links.registry)
    if not fact.exists and registry_runs:
        planning.warnings.append(
            f"study {study_id} is already deleted but {plural(len(registry_runs), 'model run')} still "
            "name it (an earlier deletion did not finish); the playbook's strategy deals with them"
        )
    # Once the study is gone with nothing left naming it, the overrides have done their work: no noise.
    finished = not fact.exists and not graph_runs and not registry_runs
    for run in [] if finished else sorted(set(study.model_run_overrides) - graph_runs - registry_runs):
        # A warning, not a problem: after an apply (or part of one) the run is relinked already.
        planning.warnings.append(
            f"operations[{index}]: model_run_overrides names {run}, which is not linked to study "
            f"{study_id} (relinked already, or a typo that leaves the intended run to the default strategy)"
        )
    for run in sorted(graph_runs - registry_runs):
        planning.warnings.append(
            f"study {study_id}: the graph links model run {run} to it but the run's registry record does not "
            "(stale graph); the relink re-submits the record, which removes the stale link"
        )
    for run in sorted(registry_runs - graph_runs):
        planning.warnings.append(
            f"study {study_id}: model run {run} names it in its registry record but the graph has no such "
            "link (missing or stale graph)"
        )
    for replacement in _replacements(study, operation):
        target = _single_study(planning, index, replacement)
        if target is not None:
            _check_replacement(planning, index, study_id, target)
    dependencies: list[str] = []
    for run in sorted(graph_runs | registry_runs):
        if run in planning.deletes:
            dependencies.append(f"delete {run}")
            continue
        strategy, replacement = _strategy(study, operation, run)
        if strategy is ConnectionStrategy.ABORT:
            planning.problem(
                f"study {study_id} is linked to model run {run} and the strategy for it is 'abort'",
                "choose `linked_model_runs: remove` or `replace` (for the study, or this run in "
                "model_run_overrides), or unlink the run first",
                index,
                run,
            )
            continue
        target = None
        if strategy is ConnectionStrategy.REPLACE:
            target = _single_study(planning, index, replacement) if replacement is not None else None
            if target is None:
                continue
            _check_replacement(planning, index, study_id, target)
            reason = operation.reason or REPLACE_REASON.format(replacement=target, study=study_id)
        else:
            reason = operation.reason or REMOVE_REASON.format(study=study_id)
        if run not in registry_runs:
            reason = operation.reason or STALE_REASON.format(study=study_id)
        edit = _edit(planning, run, index, reason)
        if run not in registry_runs:
            edit.stale_graph_link = study_id
        if run in registry_runs:
            _set_field(planning, run, edit, "study_id", target, index)
        dependencies.append(f"update {run}")
    planning.study_dependencies[study_id] = dependencies


def _strategy(study: StudyDeletion, operation: DeleteStudies, run: str) -> tuple[ConnectionStrategy, Any]:
    replacement = study.replace_with or operation.replace_with
    override = study.model_run_overrides.get(run)
    if override is not None:
        return override.strategy, override.replace_with or replacement
    return study.linked_model_runs or operation.linked_model_runs, replacement


def _replacements(study: StudyDeletion, operation: DeleteStudies) -> list[Any]:
    """Every replacement a study deletion names, whether or not a linked run ends up using it."""
    refs = [study.replace_with, operation.replace_with]
    refs += [override.replace_with for override in study.model_run_overrides.values()]
    return [ref for ref in refs if ref is not None]


def _check_replacement(planning: _Planning, index: int, study_id: str, replacement: str) -> None:
    """Checked once per (study, replacement) pair, however many runs it relinks."""
    if (study_id, replacement) in planning.checked_replacements:
        return
    planning.checked_replacements.add((study_id, replacement))
    fact = planning.state.record(replacement)
    if (
        replacement == study_id
        or replacement in planning.study_deletes
        or not fact.exists
        or fact.subtype != "STUDY"
    ):
        planning.bad_studies.add(replacement)
    if replacement == study_id:
        planning.problem(
            f"study {study_id} cannot be replaced by itself", "name another study", index, study_id
        )
    elif replacement in planning.study_deletes:
        planning.problem(
            f"replacement study {replacement} is deleted by this playbook",
            "name a study that stays",
            index,
            replacement,
        )
    elif not fact.exists or fact.subtype != "STUDY":
        planning.problem(
            f"replacement study {replacement} {_absence(fact) if fact.unreadable else 'does not exist'}"
            if not fact.exists
            else f"replacement {replacement} is {article(fact.subtype)}, not a study",
            "name an existing study in replace_with",
            index,
            replacement,
        )


def _action(kind: ActionKind, fact: RecordFact, operations: list[int], **fields: Any) -> Action:
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


# -- actions --------------------------------------------------------------------------------------------


def _edit_actions(planning: _Planning) -> list[Action]:
    actions: list[Action] = []
    for run, edit in sorted(planning.edits.items(), key=lambda pair: (min(pair[1].operations), pair[0])):
        if run in planning.deletes:
            planning.problem(
                f"model run {run} is deleted by operations[{planning.deletes[run][0]}] and also changed by "
                f"operations[{edit.operations[0]}]",
                "remove it from one of the two operations",
                edit.operations[0],
                run,
            )
            continue
        action = _edit_action(planning, run, edit)
        if action is not None:
            actions.append(action)
    return actions


UNREADABLE_HINT = "ask the record's owner for access, or run as a registry admin"


def _absence(fact: RecordFact) -> str:
    """Why a record is not there: gone, or there but hidden from the signed-in user."""
    if fact.unreadable:
        return f"cannot be read: {fact.problem}"
    return f"does not exist: {fact.problem or 'not found'}"


def _edit_action(planning: _Planning, run: str, edit: _Edit) -> Action | None:
    fact = planning.state.record(run)
    kind: ActionKind = "update" if edit.explicit_update else "relink"
    if not fact.exists:
        planning.problem(
            f"model run {run} {_absence(fact)}",
            UNREADABLE_HINT if fact.unreadable else "check the id; a deleted run cannot be edited",
            edit.operations[0],
            run,
        )
        return None
    if fact.subtype != "MODEL_RUN":
        planning.problem(
            f"{run} is {article(fact.subtype)}, not a model run", "check the id", edit.operations[0], run
        )
        return None
    assert fact.item is not None
    current = fact.item.get("record") or {}
    desired = _apply_edit(current, edit)
    current_study = current.get("study_id")
    wanted_study = desired.get("study_id")
    if current_study and wanted_study and current_study != wanted_study and not edit.allow_moving_study:
        planning.problem(
            f"model run {run} is linked to study {current_study}; linking it to {wanted_study} would replace "
            "that link",
            "set `replace_existing_links: true` on the link_studies operation to move it",
            edit.operations[0],
            run,
        )
    changes = _changes(current, desired)
    reason = "; ".join(edit.reasons)
    if not changes and edit.stale_graph_link is None:
        return _action(
            kind,
            fact,
            edit.operations,
            outcome="unchanged",
            why="the record already holds every requested value",
        )
    for message in record_problems(desired, planning.state):
        if any(message.startswith(f"study {bad} ") for bad in planning.bad_studies):
            continue
        planning.problem(
            f"model run {run}: Provena's update job would fail: {message}",
            "fix the record's references (or the playbook) first; the job validates every referenced entity",
            edit.operations[0],
            run,
        )
    _write_access(planning, fact, edit.operations[0], "edit")
    warnings = []
    if edit.stale_graph_link and not changes:
        warnings.append(
            f"only the graph links this run to study {edit.stale_graph_link}; re-submitting the unchanged "
            "record makes Provena's update job remove the stale link"
        )
    structural = [change.field for change in changes if change.field.split(".")[0] in STRUCTURAL]
    downstream = planning.state.downstream.get(run, [])
    unread = planning.state.graph_read_errors.get(run)
    if structural and unread:
        warnings.append(
            f"changes {', '.join(structural)}; the records downstream of this run could not be read "
            f"({unread})"
        )
    elif structural and downstream:
        names = ", ".join(f"{node.id} ({node.subtype})" for node in downstream[:5])
        if len(downstream) > 5:
            names += f" and {len(downstream) - 5} more"
        warnings.append(f"changes {', '.join(structural)}; records downstream of this run: {names}")
    return _action(
        kind,
        fact,
        edit.operations,
        outcome="change",
        reason=reason,
        changes=changes,
        record=desired,
        stale_link_to=edit.stale_graph_link,
        warnings=warnings,
        side_effects=_side_effects(fact),
    )


def _apply_edit(current: dict[str, Any], edit: _Edit) -> dict[str, Any]:
    """The record after the edit. Copy-on-write: only the mappings it changes are copied (values are
    replaced, never mutated), so planning 10,000 edits does not hold two full copies of each record."""
    desired = dict(current)
    for path, (value, _) in edit.fields.items():
        container = desired
        *parents, leaf = path.split(".")
        for parent in parents:
            container[parent] = dict(container.get(parent) or {})
            container = container[parent]
        if value is None:
            container.pop(leaf, None)
        else:
            container[leaf] = value
    for _, changes in edit.annotation_ops:
        values: dict[str, str] = {} if changes.clear else dict(desired.get("annotations") or {})
        for key in changes.remove:
            values.pop(key, None)
        values.update(changes.set)
        desired["annotations"] = values or None
    for optional in ("annotations", "study_id", "model_version"):
        if desired.get(optional) is None:
            desired.pop(optional, None)
    associations = desired.get("associations") or {}
    if "requesting_organisation_id" in associations and associations["requesting_organisation_id"] is None:
        desired["associations"] = {k: v for k, v in associations.items() if k != "requesting_organisation_id"}
    return desired


def _changes(current: dict[str, Any], desired: dict[str, Any]) -> list[FieldChange]:
    changes: list[FieldChange] = []
    for name in sorted(set(current) | set(desired)):
        before, after = current.get(name), desired.get(name)
        if name == "associations" and isinstance(before, dict) and isinstance(after, dict):
            for sub in sorted(set(before) | set(after)):
                if before.get(sub) != after.get(sub):
                    changes.append(
                        FieldChange(field=f"associations.{sub}", before=before.get(sub), after=after.get(sub))
                    )
        elif name == "annotations":
            old, new = dict(before or {}), dict(after or {})
            for key in sorted(set(old) | set(new)):
                if old.get(key) != new.get(key):
                    changes.append(
                        FieldChange(field=f"annotations.{key}", before=old.get(key), after=new.get(key))
                    )
        elif normalised(before) != normalised(after):  # inputs stored with null fields, set without
            changes.append(FieldChange(field=name, before=before, after=after))
    return changes


EDIT_SIDE_EFFECTS = (
    "Provena's update job adds two history entries to every edited model run (the edit, then the "
    "provenance lodge), leaves its record_status COMPLETE, and clears its user_metadata"
)


def _side_effects(fact: RecordFact) -> list[str]:
    """The side effect that loses data, per record; the rest are stated once for the whole plan."""
    metadata = (fact.item or {}).get("user_metadata")
    return [f"user_metadata is cleared (now {metadata!r})"] if metadata else []


def _write_access(planning: _Planning, fact: RecordFact, operation: int, verb: str) -> None:
    missing = planning.state.missing_roles(WRITE_TIER)
    if missing:
        planning.problem(
            f"{planning.state.username} lacks the {_roles(missing)} Provena's model-run update needs, "
            f"so it cannot {verb} {fact.id}",
            "run as a user with registry write access (the roles are granted in Keycloak)",
            operation,
            fact.id,
        )
    if fact.locked:
        planning.problem(
            f"{fact.id} is locked, so Provena refuses to {verb} it",
            "ask an admin of the record to unlock it (registry locks/unlock), then plan again",
            operation,
            fact.id,
        )
    elif not set(ITEM_WRITE_ROLES) & set(fact.roles) and ADMIN_ROLE not in planning.state.realm_roles:
        planning.problem(
            f"{planning.state.username} may not {verb} {fact.id}: no metadata-write permission on it "
            f"(has: {', '.join(fact.roles) or 'none'})",
            "ask the record's owner to grant metadata-write, or run as a registry admin",
            operation,
            fact.id,
        )


def _roles(missing: list[str]) -> str:
    return " and ".join(missing) + (" roles" if len(missing) > 1 else " role")


def _needs_admin(planning: _Planning, operation: int, record: str, verb: str) -> None:
    """Provena's admin routes need every registry role, not only the admin one (contract 2.1)."""
    missing = planning.state.missing_roles(ADMIN_TIER)
    if missing:
        planning.problem(
            f"{planning.state.username} lacks the {_roles(missing)} needed to {verb} {record}",
            "run as a registry admin (the roles are granted in Keycloak)",
            operation,
            record,
        )


def _relodge_actions(planning: _Planning, updated: set[str]) -> list[Action]:
    actions: list[Action] = []
    for run, operations in sorted(planning.relodges.items(), key=lambda pair: (pair[1][0], pair[0])):
        fact = planning.state.record(run)
        if run in planning.deletes:
            planning.problem(
                f"model run {run} is both deleted and relodged",
                "remove it from one operation",
                operations[0],
                run,
            )
            continue
        if not fact.exists or fact.subtype != "MODEL_RUN":
            planning.problem(
                f"model run {run} cannot be relodged: "
                + (fact.problem or "not found" if not fact.exists else f"it is {article(fact.subtype)}"),
                "relodging rebuilds the graph from the registry record, which must exist",
                operations[0],
                run,
            )
            continue
        later_update = run in updated
        unread = planning.state.graph_read_errors.get(run)
        missing = [] if unread else missing_from_graph(fact.item or {}, planning.state.lineage.get(run))
        if not later_update and not missing and not unread:
            actions.append(
                _action(
                    "relodge",
                    fact,
                    operations,
                    outcome="unchanged",
                    why="the graph already holds every link of the registry record",
                )
            )
            continue
        _needs_admin(planning, operations[0], run, "relodge")
        actions.append(
            _action(
                "relodge",
                fact,
                operations,
                outcome="change",
                depends_on=[f"update {run}"] if later_update else [],
                changes=[FieldChange(field="graph lacks links to", after=missing)] if missing else [],
                warnings=[
                    *(
                        [
                            f"the graph around this run could not be read ({unread}); relodging only adds "
                            "what the registry record implies, so it is planned anyway"
                        ]
                        if unread
                        else []
                    ),
                    "relodging only adds to the graph; it never removes stale links",
                ],
            )
        )
    return actions


def _study_actions(planning: _Planning) -> list[Action]:
    actions: list[Action] = []
    for study_id, (index, _, _) in planning.study_deletes.items():
        fact = planning.state.record(study_id)
        if fact.unreadable:
            planning.problem(f"study {study_id} {_absence(fact)}", UNREADABLE_HINT, index, study_id)
            continue
        if not fact.exists:
            actions.append(
                _action(
                    "delete_study",
                    fact,
                    [index],
                    outcome="not_found",
                    why=_not_found(planning, study_id, "study"),
                )
            )
            continue
        if fact.subtype != "STUDY":
            continue  # reported while reading its connections
        _needs_admin(planning, index, study_id, "delete")
        if fact.locked:
            planning.problem(
                f"study {study_id} is locked, so Provena refuses to delete it",
                "unlock it first, then plan again",
                index,
                study_id,
            )
        dependencies = planning.study_dependencies.get(study_id, [])
        actions.append(
            _action(
                "delete_study",
                fact,
                [index],
                outcome="change",
                depends_on=dependencies,
            )
        )
    return actions


def _delete_actions(planning: _Planning) -> list[Action]:
    actions: list[Action] = []
    for run, operations in sorted(planning.deletes.items(), key=lambda pair: (pair[1][0], pair[0])):
        fact = planning.state.record(run)
        if fact.unreadable:
            planning.problem(f"model run {run} {_absence(fact)}", UNREADABLE_HINT, operations[0], run)
            continue
        if not fact.exists:
            actions.append(
                _action(
                    "delete_model_run",
                    fact,
                    operations,
                    outcome="not_found",
                    why=_not_found(planning, run, "model run"),
                )
            )
            continue
        if fact.subtype != "MODEL_RUN":
            planning.problem(
                f"{run} is {article(fact.subtype)}, not a model run",
                "check the id in delete_model_runs",
                operations[0],
                run,
            )
            continue
        _needs_admin(planning, operations[0], run, "delete")
        if fact.locked:
            planning.problem(
                f"model run {run} is locked, so Provena refuses to delete its registry record",
                "unlock it first, then plan again",
                operations[0],
                run,
            )
        impact = planning.state.delete_impact.get(run)
        error = planning.state.delete_errors.get(run)
        warnings = []
        if error:
            planning.problem(
                f"model run {run}: the trial delete failed: {error}",
                "see Provena's message",
                operations[0],
                run,
            )
        elif (
            impact is not None
            and impact.nodes_removed + impact.links_removed + impact.node_references_removed == 0
        ):
            warnings.append(
                "the graph holds nothing of this run (never lodged, or a previous delete removed it): "
                "only the registry record is deleted"
            )
        actions.append(
            _action(
                "delete_model_run",
                fact,
                operations,
                outcome="change",
                graph=impact,
                warnings=warnings,
            )
        )
    return actions


def _not_found(planning: _Planning, record: str, what: str) -> str:
    """A deletion target that is not there: done earlier (a journal here says by which run), or a typo."""
    run = planning.state.deleted_by.get(record)
    if run is not None:
        return f"not found: deleted by run {run}"
    return f"not found: no {what} with this id in the registry, and no run here deleted it (a typo?)"


def _deletion_impact(planning: _Planning, actions: list[Action]) -> DeletionImpact | None:
    """Totals, averages and outliers (> 2 standard deviations) of the graph impact of the model-run
    deletions, as Provena's delete-model-runs script reports them before asking to confirm."""
    impacts = [
        (a.record_id, a.graph)
        for a in actions
        if a.kind == "delete_model_run"
        and a.graph is not None
        and a.graph.nodes_removed + a.graph.links_removed
    ]
    if len(impacts) < 2:
        return None
    nodes = [impact.nodes_removed for _, impact in impacts]
    links = [impact.links_removed for _, impact in impacts]
    outliers: list[Outlier] = []
    for name, values in (("nodes", nodes), ("links", links)):
        mean, spread = statistics.fmean(values), statistics.pstdev(values)
        for (record, _), value in zip(impacts, values, strict=True):
            if spread and value > mean + 2 * spread:
                outliers.append(Outlier(record_id=record, measure=name, value=value, average=round(mean, 1)))
    impact = DeletionImpact(
        runs=len(impacts),
        nodes_removed=sum(nodes),
        links_removed=sum(links),
        average_nodes=round(statistics.fmean(nodes), 1),
        average_links=round(statistics.fmean(links), 1),
        outliers=outliers,
    )
    planning.warnings.append(
        f"{impact.runs} model run deletions (of runs with a graph) remove "
        f"{plural(impact.nodes_removed, 'node')} and {plural(impact.links_removed, 'link')} in total "
        f"(average {impact.average_nodes:.1f} nodes, {impact.average_links:.1f} links per run)"
    )
    planning.warnings.extend(
        f"outlier: deleting {o.record_id} removes {o.value} {o.measure} (average {o.average:.1f}); "
        "check it is the right run"
        for o in outliers
    )
    return impact
