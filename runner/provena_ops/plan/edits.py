"""Model-run edits as actions: the record after the edit, its field-by-field changes, and the checks
that Provena's update job would make."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from provena_ops.facts.model import RecordFact
from provena_ops.plan.access import write_access
from provena_ops.plan.model import (
    Action,
    ActionKind,
    FieldChange,
)
from provena_ops.plan.planning import UNREADABLE_HINT, Edit, Planning, absence, new_action
from provena_ops.plan.record_checks import STRUCTURAL, normalised, record_problems
from provena_ops.text import article


def edit_actions(planning: Planning) -> Iterator[Action]:
    """One at a time: the planner keeps each out of memory before the next is made."""
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
            yield action


def _edit_action(planning: Planning, run: str, edit: Edit) -> Action | None:
    fact = planning.state.record(run)
    kind: ActionKind = "update" if edit.explicit_update else "relink"
    if not fact.exists:
        planning.problem(
            f"model run {run} {absence(fact)}",
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
    changes = record_changes(current, desired)
    reason = "; ".join(edit.reasons)
    if not changes and edit.stale_graph_link is None:
        return new_action(
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
    write_access(planning, fact, edit.operations[0], "edit")
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
    return new_action(
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


def _apply_edit(current: dict[str, Any], edit: Edit) -> dict[str, Any]:
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


def record_changes(current: dict[str, Any], desired: dict[str, Any]) -> list[FieldChange]:
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
