"""(Playbook, State) -> Plan. Pure: no I/O, no clock, no randomness (a test checks it imports no httpx).

Every model run the playbook touches gets at most one write action, merging what several operations ask
of it (and failing when they disagree); study deletions come after the relinks they depend on.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from provena_ops.facts.model import State
from provena_ops.plan.actions import ActionLike, Actions
from provena_ops.plan.collect import collect, links_to_deleted_studies
from provena_ops.plan.deletes import delete_actions, relodge_actions
from provena_ops.plan.edits import EDIT_SIDE_EFFECTS, edit_actions
from provena_ops.plan.impact import deletion_impact
from provena_ops.plan.keys import links_key
from provena_ops.plan.model import (
    EnvironmentInfo,
    OperationTargets,
    Plan,
    PlaybookInfo,
    Problem,
    Skipped,
    links_fingerprint,
    summarise,
)
from provena_ops.plan.planning import Planning
from provena_ops.plan.restores import restore_actions
from provena_ops.plan.studies import study_actions, study_connections
from provena_ops.playbook.model import (
    Playbook,
    Restore,
)

UNREADABLE = "unreadable"  # State.journal_digest of a journal that is here but cannot be read
SANDBOX = "sandbox:"  # how a sandbox target's registry is named (a rehearsal copy, never production)


def make_plan(
    playbook: Playbook,
    state: State,
    *,
    playbook_info: PlaybookInfo,
    environment: EnvironmentInfo,
    created_at: str,
    force: frozenset[str] = frozenset(),
    only: frozenset[str] = frozenset(),
) -> Plan:
    """`force`: records an undo may overwrite although they changed since the run it undoes. `only`:
    the --target record ids the plan is narrowed to (with what they depend on); empty: everything."""
    planning = Planning(playbook, state, only=only)
    first = playbook.operations[0]
    if isinstance(first, Restore):  # alone in its playbook (validate checks)
        rehearsal = first.registry.startswith(SANDBOX) and environment.registry.startswith(SANDBOX)
        if first.registry != environment.registry and rehearsal:
            planning.warnings.append(
                f"run {first.run} was applied to another sandbox database: this rehearses its undo here"
            )
        elif first.registry != environment.registry:
            planning.problem(
                f"run {first.run} was applied to {first.registry}, not to {environment.registry} "
                f"('{environment.name}'); its records are not restored here",
                "undo a run against the environment it was applied to",
                0,
            )
            return _plan(planning, Actions(), playbook_info, environment, created_at)
        if playbook.name != f"undo of run {first.run}":
            planning.problem(
                f"the playbook is named {playbook.name!r}, but its restore undoes run {first.run}; plans "
                "and journals name an undo by its run",
                f"write it again: provena-ops undo {first.run} --write-playbook FILE",
                0,
            )
            return _plan(planning, Actions(), playbook_info, environment, created_at)
        if state.journal_digest in ("", UNREADABLE):
            where = "cannot be read here" if state.journal_digest else "is not in this runs directory"
            planning.warnings.append(
                f"run {first.run}'s journal {where}: nothing vouches for the images but their review; "
                f"compare them with the journal's (provena-ops undo {first.run} --write-playbook -)"
            )
        elif state.journal_digest is not None and state.journal_digest != first.digest:
            planning.problem(
                f"the restore's images are not what run {first.run}'s journal holds (the playbook was "
                "rewritten since undo wrote it, digest and all)",
                f"write it again from the journal: provena-ops undo {first.run} --write-playbook FILE",
                0,
            )
            return _plan(planning, Actions(), playbook_info, environment, created_at)
        restores = Actions(restore_actions(planning, 0, first, force))
        return _plan(planning, restores, playbook_info, environment, created_at)
    if state.unreadable_runs:
        planning.warnings.append(
            f"the registry scan could not read {state.unreadable_runs} model run(s); selectors and study "
            "link discovery cannot see them"
        )
    for index, operation in enumerate(playbook.operations):
        collect(planning, index, operation)
    for study_id, (index, study, operation) in planning.study_deletes.items():
        study_connections(planning, index, study_id, study, operation)
    links_to_deleted_studies(planning)
    # Dependencies point backwards: edits, then relodges (after their run's edit), then model-run
    # deletions, then study deletions (after the relinks and run deletions that unlink them).
    actions = Actions.spilled()
    for edit in edit_actions(planning):
        actions.append(edit)
    updated = {edit.record_id for edit in actions.heads() if edit.outcome == "change"}
    for action in (*relodge_actions(planning, updated), *delete_actions(planning), *study_actions(planning)):
        actions.append(action)
    _only_real_dependencies(actions)
    return _plan(planning, actions, playbook_info, environment, created_at)


def _without_skipped(planning: Planning, actions: Actions) -> tuple[Actions, list[Skipped]]:
    """Locked records that skip_locked leaves alone, and every action that depends on one of them (a
    study deletion waits for its runs' relinks: with one of them skipped, the study stays)."""
    skipped: list[Skipped] = []
    dropped: dict[str, str] = {}  # action key -> why
    kept: list[int] = []
    for position, action in enumerate(actions.heads()):
        why = planning.skipped.get(action.record_id)
        if why is not None:
            dropped[action.key] = why[1]
        else:
            blocked = [key for key in action.depends_on if key in dropped]
            if not blocked:
                kept.append(position)
                continue
            dropped[action.key] = f"{blocked[0]} is skipped ({dropped[blocked[0]]})"
        skipped.append(
            Skipped(
                record_id=action.record_id,
                subtype=action.subtype,
                display_name=action.display_name,
                operation=action.operations[0],
                reason=dropped[action.key],
            )
        )
    return (actions if len(kept) == len(actions) else actions.select(kept)), skipped


def _narrowed(planning: Planning, actions: Actions) -> Actions:
    """Only the actions on --target records and those they depend on, as Terraform's -target keeps a
    resource's dependencies; a target that names no record of the plan is a problem (a typo, most
    likely, and a plan that does nothing would say nothing)."""
    if not planning.only:
        return actions
    heads = actions.heads()
    records = {action.record_id for action in heads} | {skip.record_id for skip in planning.skips}
    for target in sorted(planning.only - records):
        close = next(iter(difflib.get_close_matches(target, sorted(records), n=1)), None)
        planning.problem(
            f"--target {target} names no record this playbook acts on"
            + (f" (did you mean {close}?)" if close else ""),
            "give the id of a record in the plan (plan without --target lists them)",
        )
    by_key = {action.key: action for action in heads}
    wanted: set[str] = set()
    pending = [action.key for action in heads if action.record_id in planning.only]
    while pending:
        key = pending.pop()
        if key not in wanted:
            wanted.add(key)
            pending.extend(k for k in by_key[key].depends_on if k in by_key)
    kept = actions.select(position for position, action in enumerate(heads) if action.key in wanted)
    records = {action.record_id for action in kept.heads()}
    planning.problems[:] = [  # a problem of a record left out does not stop what is targeted
        problem for problem in planning.problems if problem.record_id is None or problem.record_id in records
    ]
    left = len(actions) - len(kept)
    planning.warnings.insert(
        0,
        f"resource targeting is in effect: the plan holds only the actions on --target "
        f"{', '.join(sorted(planning.only))} and what they depend on ({len(kept)} of {len(actions)} "
        f"actions; {left} left out). It may not be everything the playbook asks for: plan without "
        "--target to see the rest. Use --target for exceptional cases (fixing one record first, stepping "
        "around a broken part), not routinely.",
    )
    return kept


def _plan(
    planning: Planning,
    actions: Actions,
    playbook_info: PlaybookInfo,
    environment: EnvironmentInfo,
    created_at: str,
) -> Plan:
    state = planning.state
    planned = {action.record_id for action in actions.heads()}
    actions, planning.skips = _without_skipped(planning, actions)
    actions = _narrowed(planning, actions)
    heads = actions.heads()
    impact = deletion_impact(planning, heads)
    edits = any(a.kind in ("update", "relink") and a.outcome == "change" for a in heads)
    fingerprints = state.fingerprints()
    for study_id, links in state.connections.items():
        fingerprints[links_key(study_id)] = links_fingerprint(links.graph_ids, links.registry)
    if planning.only or planning.skips:  # what is left out cannot make the plan stale
        kept = {action.record_id for action in heads}
        for record in planned - kept:
            fingerprints.pop(record, None)
            fingerprints.pop(links_key(record), None)
    return Plan(
        playbook=playbook_info,
        environment=environment,
        planned_by=state.username,
        created_at=created_at,
        targets=_with_counts(planning.targets, heads, planning.problems, planning.skips),
        fingerprints=dict(sorted(fingerprints.items())),
        actions=actions,
        problems=planning.problems,
        skipped=planning.skips,
        targeted=sorted(planning.only),
        warnings=planning.warnings,
        notes=[EDIT_SIDE_EFFECTS] if edits else [],
        deletion_impact=impact,
        summary=summarise(heads, planning.problems, len(planning.skips)),
    )


def _with_counts(
    targets: list[OperationTargets],
    actions: Sequence[ActionLike],
    problems: list[Problem],
    skips: list[Skipped],
) -> list[OperationTargets]:
    """Each operation's counts, as every rendering gives them: an action counts for the first operation
    that asked for it."""
    return [
        target.model_copy(
            update={
                "summary": summarise(
                    [a for a in actions if a.operations[0] == target.operation],
                    [p for p in problems if p.operation == target.operation],
                    sum(1 for skip in skips if skip.operation == target.operation),
                )
            }
        )
        for target in targets
    ]


def _only_real_dependencies(actions: Actions) -> None:
    """A dependency on an action that changes nothing (a run already deleted) is no dependency."""
    changing = {action.key for action in actions.heads() if action.outcome == "change"}
    for position, head in enumerate(actions.heads()):
        if not all(key in changing for key in head.depends_on):
            action = actions[position]
            kept = [key for key in action.depends_on if key in changing]
            actions.replace(position, action.model_copy(update={"depends_on": kept}))
