"""Study deletions: what links to each study, what the playbook's strategy does to each linked model
run (remove, replace, abort), and the study deletion actions that wait for those relinks."""

from __future__ import annotations

from typing import Any

from provena_ops.plan.access import needs_admin
from provena_ops.plan.deletes import _not_found
from provena_ops.plan.keys import action_key
from provena_ops.plan.model import (
    Action,
)
from provena_ops.plan.planning import (
    UNREADABLE_HINT,
    Planning,
    absence,
    edit_of,
    new_action,
    set_field,
    single_study,
)
from provena_ops.playbook.model import (
    ConnectionStrategy,
    DeleteStudies,
    StudyDeletion,
)
from provena_ops.text import article, plural

REMOVE_REASON = "Removing study reference due to study {study} deletion"


REPLACE_REASON = "Replacing study reference to {replacement} due to study {study} deletion"


STALE_REASON = "Removing the stale provenance link to study {study} before its deletion"


def study_connections(
    planning: Planning, index: int, study_id: str, study: StudyDeletion, operation: DeleteStudies
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
        target = single_study(planning, index, replacement)
        if target is not None:
            _check_replacement(planning, index, study_id, target)
    dependencies: list[str] = []
    overridden: list[str] = []
    for run in sorted(graph_runs | registry_runs):
        if run in planning.deletes:
            dependencies.append(action_key("delete_model_run", run))
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
            target = single_study(planning, index, replacement) if replacement is not None else None
            if target is None:
                continue
            _check_replacement(planning, index, study_id, target)
            reason = operation.reason or REPLACE_REASON.format(replacement=target, study=study_id)
        else:
            reason = operation.reason or REMOVE_REASON.format(study=study_id)
        if run not in registry_runs:
            reason = operation.reason or STALE_REASON.format(study=study_id)
        edit = edit_of(planning, run, index, reason)
        if run not in registry_runs:
            edit.stale_graph_link = study_id
        if run in registry_runs:
            set_field(planning, run, edit, "study_id", target, index)
        dependencies.append(action_key("update", run))
        if run in study.model_run_overrides:
            overridden.append(run)
    planning.study_dependencies[study_id] = dependencies
    planning.study_overrides[study_id] = overridden


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


def _check_replacement(planning: Planning, index: int, study_id: str, replacement: str) -> None:
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
            f"replacement study {replacement} {absence(fact) if fact.unreadable else 'does not exist'}"
            if not fact.exists
            else f"replacement {replacement} is {article(fact.subtype)}, not a study",
            "name an existing study in replace_with",
            index,
            replacement,
        )


def study_actions(planning: Planning) -> list[Action]:
    actions: list[Action] = []
    for study_id, (index, _, _) in planning.study_deletes.items():
        fact = planning.state.record(study_id)
        if fact.unreadable:
            planning.problem(f"study {study_id} {absence(fact)}", UNREADABLE_HINT, index, study_id)
            continue
        if not fact.exists:
            actions.append(
                new_action(
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
        needs_admin(planning, index, study_id, "delete")
        if fact.locked:
            planning.problem(
                f"study {study_id} is locked, so Provena refuses to delete it",
                "unlock it first and plan again, or set skip_locked: true",
                index,
                study_id,
                locked=True,
            )
        dependencies = planning.study_dependencies.get(study_id, [])
        actions.append(
            new_action(
                "delete_study",
                fact,
                [index],
                outcome="change",
                depends_on=dependencies,
                overridden=planning.study_overrides.get(study_id, []),
            )
        )
    return actions
