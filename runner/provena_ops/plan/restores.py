"""Undo as a plan: each record a run changed, put back as the run's journal says it was, or refused.

Per record, what is there now decides: as it was before the run (nothing to do, or only its graph to
relodge), as the run left it (restore it: an update job for an edit, the admin import for a deletion, a
deletion for a record the run created), or changed since (drift: refused with the three versions side
by side, unless --force names it). Restored studies come before the model runs relinked to them;
studies the undo deletes come after the model runs it moves off them.
"""

from __future__ import annotations

from typing import Any

from provena_ops.facts.model import UNREAD_FIELDS, RecordFact
from provena_ops.plan.access import needs_admin, write_access
from provena_ops.plan.edits import record_changes
from provena_ops.plan.keys import action_key
from provena_ops.plan.model import Action, ActionKind, FieldChange, OperationTargets, Restoration
from provena_ops.plan.planning import Planning
from provena_ops.plan.record_checks import missing_from_graph, normalised
from provena_ops.playbook.model import Restore, RestoreImage
from provena_ops.text import article

UNDO_REASON = "undo of run {run}: {reason}"
DELETIONS = ("delete_model_run", "delete_study")
# Parts of an item that every write changes by itself: not what drift or "as it was" is about.
BOOKKEEPING = (*UNREAD_FIELDS, "created_timestamp", "updated_timestamp")
# What Provena's update job leaves in a model run's item, whatever it held: put back after it by import.
JOB_RESETS = {"user_metadata": None, "record_status": "COMPLETE"}
FORCE_HINT = "--force {id} restores it anyway (overwriting what is there now), or leave the undo be"


def restore_actions(planning: Planning, index: int, restore: Restore, force: frozenset[str]) -> list[Action]:
    actions: list[Action] = []
    for image in restore.images:
        action = _restore_one(planning, index, restore, image, image.id in force)
        if action is not None:
            actions.append(action)
    planning.targets.append(
        OperationTargets(
            operation=index,
            op=restore.op,
            model_runs=[image.id for image in restore.images if image.subtype == "MODEL_RUN"],
            studies=[image.id for image in restore.images if image.subtype == "STUDY"],
        )
    )
    for left in restore.not_started:
        planning.warnings.append(f"left alone: {left}")
    unknown_force = sorted(force - {image.id for image in restore.images})
    if unknown_force:
        planning.problem(
            f"--force names {', '.join(map(repr, unknown_force))}, which run {restore.run} did not change",
            "name only records the undo lists",
            index,
        )
    return _ordered(planning, actions)


def _restore_one(
    planning: Planning, index: int, restore: Restore, image: RestoreImage, forced: bool
) -> Action | None:
    fact = planning.state.record(image.id)
    if fact.unreadable or (not fact.exists and fact.problem == "not read"):
        planning.problem(
            f"{image.id} cannot be read, so it cannot be restored: {fact.problem}",
            "run as a registry admin",
            index,
            image.id,
        )
        return None
    current = fact.item if fact.exists and fact.subtype == image.subtype else None
    if fact.exists and current is None:
        planning.problem(
            f"{image.id} is now {article(fact.subtype)}, not the {image.subtype.lower().replace('_', ' ')} "
            f"run {restore.run} changed; it is not touched",
            "nothing to force: the id holds another kind of record",
            index,
            image.id,
        )
        return None
    if image.before is None:
        return _created_by_run(planning, index, restore, image, fact, forced)
    if current is not None and _as_before(image, current):
        reset = _reset_fields(image, current)
        if reset:  # an undo cut short between its update job and putting the item fields back
            return _action(
                "restore",
                image,
                fact,
                index,
                outcome="change",
                changes=[FieldChange(field=k, before=current.get(k), after=v) for k, v in reset.items()],
                restoration=Restoration(fields=reset),
                side_effects=["put back with the registry admin import (overwrite-only), history kept"],
            )
        return _back_already(planning, index, image, fact)
    if image.undoes in DELETIONS or current is None:
        return _put_back(planning, index, restore, image, fact, forced)
    return _edit_back(planning, index, restore, image, fact, forced)


def _as_before(image: RestoreImage, current: dict[str, Any]) -> bool:
    """Back as it was before the run: the model-run record (an edit's undo writes only that), or the
    whole item less its bookkeeping (a restored deletion)."""
    before = image.before or {}
    if image.undoes in DELETIONS:
        return bool(_content(before) == _content(current))
    return bool(normalised(before.get("record")) == normalised(current.get("record")))


def _reset_fields(image: RestoreImage, current: dict[str, Any]) -> dict[str, Any]:
    """An edited run's item fields that differ from before the run (its update job reset them)."""
    if image.undoes in DELETIONS or image.before is None:
        return {}
    return {
        key: image.before.get(key)
        for key in JOB_RESETS
        if normalised(image.before.get(key)) != normalised(current.get(key))
    }


def _content(item: dict[str, Any]) -> Any:
    return normalised({key: value for key, value in item.items() if key not in BOOKKEEPING})


def _back_already(planning: Planning, index: int, image: RestoreImage, fact: RecordFact) -> Action:
    """Nothing to put back; a restored model run's graph may still be owed (an undo cut short after its
    import): a relodge, which only adds."""
    assert fact.item is not None
    if image.undoes == "delete_model_run":
        if image.id in planning.state.graph_read_errors:
            planning.problem(
                f"the graph around {image.id} cannot be read: {planning.state.graph_read_errors[image.id]}",
                "plan the undo again",
                index,
                image.id,
            )
        missing = missing_from_graph(fact.item, planning.state.lineage.get(image.id))
        if missing:
            return _action(
                "relodge",
                image,
                fact,
                index,
                outcome="change",
                why=None,
                changes=[FieldChange(field="graph links", before=None, after=missing)],
                side_effects=["relodged from its registry record (POST /admin/store_record)"],
            )
    kind: ActionKind = "restore" if image.undoes in DELETIONS else "update"  # the key it would have had
    return _action(kind, image, fact, index, outcome="unchanged", why="already as it was before the run")


def _created_by_run(
    planning: Planning, index: int, restore: Restore, image: RestoreImage, fact: RecordFact, forced: bool
) -> Action | None:
    """The run created the record (it was an undo that restored it): undoing it deletes it again."""
    kind: ActionKind = "delete_model_run" if image.subtype == "MODEL_RUN" else "delete_study"
    if not fact.exists:
        return _action(kind, image, fact, index, outcome="unchanged", why="absent already, as before the run")
    if _drifted(image, fact) and not forced:
        _drift_problem(planning, index, restore, image, fact)
        return None
    needs_admin(planning, index, image.id, "delete")
    if fact.locked:
        _locked(planning, index, image.id, "delete")
    return _action(
        kind,
        image,
        fact,
        index,
        outcome="change",
        changes=[FieldChange(field="(record)", before=fact.display_name, after=None)],
        warnings=[_forced(restore)] if _drifted(image, fact) else [],
    )


def _put_back(
    planning: Planning, index: int, restore: Restore, image: RestoreImage, fact: RecordFact, forced: bool
) -> Action | None:
    """A record the run deleted (or one deleted since an edit, when forced) imported back as it was."""
    before = image.before
    assert before is not None
    edited = image.undoes not in DELETIONS
    if fact.exists and not forced:
        _drift_problem(planning, index, restore, image, fact)  # its id holds another record now
        return None
    if edited and not forced:
        _drift_problem(planning, index, restore, image, fact)  # deleted after the run edited it
        return None
    if fact.exists and image.subtype == "MODEL_RUN":  # forced over a run that took the id: its update job
        said = [_forced(restore)]
        if image.access is None:
            said.append("its access settings were not journalled: they are left as they are now")
        return _update_back(planning, index, restore, image, fact, said, access=image.access)
    needs_admin(planning, index, image.id, "restore")
    warnings: list[str] = [_forced(restore)] if (fact.exists or edited) else []
    access, lock = image.access, image.lock
    if access is None:
        access = {"owner": before.get("owner_username"), "general": [], "groups": {}}
        warnings.append(
            "its access settings were not journalled (a journal from before undo existed): restored with "
            f"its owner ({access['owner']}) alone; share it again as it was"
        )
    if lock is None:
        lock = {"locked": False, "history": []}
        warnings.append("its lock history was not journalled: restored unlocked, with no lock history")
    if fact.exists and fact.locked:
        _locked(planning, index, image.id, "overwrite")
    changes = [FieldChange(field="(record)", before=fact.display_name, after=before.get("display_name"))]
    if image.access is not None:
        changes.append(FieldChange(field="access", before=None, after=_access_text(access)))
    if lock.get("history"):
        changes.append(FieldChange(field="lock", before=None, after=_lock_text(lock)))
    return _action(
        "restore",
        image,
        fact,
        index,
        outcome="change",
        changes=changes,
        restoration=Restoration(item=before, access=access, lock=lock, overwrite=fact.exists),
        warnings=warnings,
        side_effects=(
            ["its graph is relodged from the record (POST /admin/store_record)"]
            if image.subtype == "MODEL_RUN"
            else []
        ),
    )


def _edit_back(
    planning: Planning, index: int, restore: Restore, image: RestoreImage, fact: RecordFact, forced: bool
) -> Action | None:
    if _drifted(image, fact):
        if not forced:
            _drift_problem(planning, index, restore, image, fact)
            return None
        return _update_back(planning, index, restore, image, fact, [_forced(restore)])
    return _update_back(planning, index, restore, image, fact, [])


def _update_back(
    planning: Planning,
    index: int,
    restore: Restore,
    image: RestoreImage,
    fact: RecordFact,
    warnings: list[str],
    access: dict[str, Any] | None = None,
) -> Action:
    """Provena's update job with the record as it was: the registry and the graph follow it (then what
    the job resets, and for a record that took a deleted one's id, who may see and change it)."""
    assert fact.item is not None and image.before is not None
    record = image.before.get("record") or {}
    write_access(planning, fact, index, "restore")
    reset = {
        key: image.before.get(key)
        for key, left in JOB_RESETS.items()
        if normalised(image.before.get(key)) != normalised(left)
    }
    changes = record_changes(fact.item.get("record") or {}, record)
    changes += [
        FieldChange(field=key, before=fact.item.get(key), after=value)
        for key, value in reset.items()
        if normalised(fact.item.get(key)) != normalised(value)
    ]
    if access is not None:
        changes.append(FieldChange(field="access", before=None, after=_access_text(access)))
    return _action(
        "update",
        image,
        fact,
        index,
        outcome="change",
        reason=UNDO_REASON.format(run=restore.run, reason=image.reason or "no reason given"),
        changes=changes,
        record=record,
        restoration=Restoration(fields=reset, access=access) if reset or access else None,
        warnings=warnings,
        side_effects=(
            [f"then {', '.join(reset)} put back as they were (the job resets them): admin import"]
            if reset
            else []
        ),
    )


def _drifted(image: RestoreImage, fact: RecordFact) -> bool:
    """Changed since the run: not the fingerprint the run left (or, where the journal did not keep one,
    not the record the run wrote)."""
    if image.after is not None:
        return fact.fingerprint != image.after
    if image.written is not None and fact.item is not None:
        return bool(normalised(fact.item.get("record")) != normalised(image.written))
    return True  # nothing to compare with: never assume it is as the run left it


def _drift_problem(
    planning: Planning, index: int, restore: Restore, image: RestoreImage, fact: RecordFact
) -> None:
    before = image.before
    after = _as_left(image)
    now = fact.item
    if now is None:
        what = "was deleted after the run"
    elif image.undoes in DELETIONS:
        what = "exists again (created after the run deleted it)"
    else:
        what = "changed after the run"
    lines = three_way(before, after, now)
    planning.problem(
        f"{image.id} {what}; not overwritten. " + ("; ".join(lines) if lines else "(its history differs)"),
        FORCE_HINT.format(id=image.id),
        index,
        image.id,
    )


def _as_left(image: RestoreImage) -> dict[str, Any] | None:
    if image.undoes in DELETIONS:
        return None
    if image.before is not None and image.written is not None:
        return {**image.before, "record": image.written, **JOB_RESETS}
    return None  # not known: the journal kept its fingerprint, not the record


def three_way(
    before: dict[str, Any] | None, after: dict[str, Any] | None, now: dict[str, Any] | None
) -> list[str]:
    """Fields that differ between before the run, after it and now: 'field: before X / after Y / now Z'."""
    flat = [_flatten(_content(item)) if item is not None else {} for item in (before, after, now)]
    drifted: list[str] = []
    changed: list[str] = []
    for field in sorted(set().union(*flat)):
        values = [part.get(field) for part in flat]
        if len({repr(value) for value in values}) > 1:
            line = (
                f"{field}: before the run {_short(values[0])} / after it {_short(values[1])} / "
                f"now {_short(values[2])}"
            )
            # What changed since the run first; what the run itself changed after, as context.
            (drifted if repr(values[1]) != repr(values[2]) else changed).append(line)
    lines = drifted + changed
    if len(lines) > 8:
        lines = [*lines[:8], f"and {len(lines) - 8} more fields"]
    return lines


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): value}


def _short(value: Any) -> str:
    text = "(absent)" if value is None else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _access_text(access: dict[str, Any]) -> str:
    """'owner bob; everyone: metadata-read; modellers: metadata-read, metadata-write'."""
    parts = [f"owner {access.get('owner')}"]
    if access.get("general"):
        parts.append("everyone: " + ", ".join(access["general"]))
    for group, roles in sorted((access.get("groups") or {}).items()):
        parts.append(f"{group}: {', '.join(roles)}")
    return "; ".join(parts)


def _lock_text(lock: dict[str, Any]) -> str:
    history = lock.get("history") or []
    return f"{'locked' if lock.get('locked') else 'unlocked'}, {len(history)} lock event(s)"


def _locked(planning: Planning, index: int, record: str, verb: str) -> None:
    planning.problem(
        f"{record} is locked, so Provena refuses to {verb} it",
        "ask an admin of the record to unlock it, then plan the undo again",
        index,
        record,
    )


def _forced(restore: Restore) -> str:
    return f"--force: overwrites what changed after run {restore.run}"


def _action(kind: ActionKind, image: RestoreImage, fact: RecordFact, index: int, **fields: Any) -> Action:
    name = fact.display_name or (image.before or {}).get("display_name")
    return Action(
        key=action_key(kind, image.id),
        kind=kind,
        record_id=image.id,
        subtype=image.subtype,
        display_name=name,
        operations=[index],
        **fields,
    )


def _ordered(planning: Planning, actions: list[Action]) -> list[Action]:
    """Restored studies first (the runs put back link to them), studies deleted last (after the runs
    moved off them): dependencies between the actions that change something."""
    changing = {action.record_id: action for action in actions if action.outcome == "change"}
    restored_studies = {
        record
        for record, action in changing.items()
        if action.subtype == "STUDY" and action.kind == "restore"
    }
    ordered: list[Action] = []
    for action in actions:
        depends: list[str] = []
        if action.subtype == "MODEL_RUN" and action.outcome == "change":
            study = _study_after(action)
            if study in restored_studies:
                depends.append(changing[study].key)
        if action.kind == "delete_study" and action.outcome == "change":
            for other in changing.values():
                if other.subtype == "MODEL_RUN" and _study_now(planning, other.record_id) == action.record_id:
                    depends.append(other.key)
        ordered.append(action.model_copy(update={"depends_on": sorted(set(depends))}) if depends else action)
    ordered.sort(key=_stage)  # stable: the journal's order within each stage
    return ordered


def _stage(action: Action) -> int:
    if action.subtype == "STUDY":
        return 0 if action.kind == "restore" else 2
    return 1


def _study_after(action: Action) -> str | None:
    if action.record is not None:
        return action.record.get("study_id")
    if action.restoration is not None and action.restoration.item is not None:
        return (action.restoration.item.get("record") or {}).get("study_id")
    return None


def _study_now(planning: Planning, run: str) -> str | None:
    item = planning.state.record(run).item or {}
    return (item.get("record") or {}).get("study_id")
