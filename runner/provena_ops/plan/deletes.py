"""Model-run deletions and relodges as actions (with the graph impact of a trial delete)."""

from __future__ import annotations

from provena_ops.plan.access import needs_admin
from provena_ops.plan.keys import action_key
from provena_ops.plan.model import (
    Action,
    FieldChange,
    Neighbour,
)
from provena_ops.plan.planning import UNREADABLE_HINT, Planning, absence, new_action
from provena_ops.plan.record_checks import missing_from_graph
from provena_ops.text import article


def relodge_actions(planning: Planning, updated: set[str]) -> list[Action]:
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
                new_action(
                    "relodge",
                    fact,
                    operations,
                    outcome="unchanged",
                    why="the graph already holds every link of the registry record",
                )
            )
            continue
        needs_admin(planning, operations[0], run, "relodge")
        actions.append(
            new_action(
                "relodge",
                fact,
                operations,
                outcome="change",
                depends_on=[action_key("update", run)] if later_update else [],
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


def delete_actions(planning: Planning) -> list[Action]:
    actions: list[Action] = []
    for run, operations in sorted(planning.deletes.items(), key=lambda pair: (pair[1][0], pair[0])):
        fact = planning.state.record(run)
        if fact.unreadable:
            planning.problem(f"model run {run} {absence(fact)}", UNREADABLE_HINT, operations[0], run)
            continue
        if not fact.exists:
            actions.append(
                new_action(
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
        needs_admin(planning, operations[0], run, "delete")
        if fact.locked:
            planning.problem(
                f"model run {run} is locked, so Provena refuses to delete its registry record",
                "unlock it first and plan again, or set skip_locked: true",
                operations[0],
                run,
                locked=True,
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
        unread = planning.state.graph_read_errors.get(run)
        if unread:
            warnings.append(f"the records downstream of this run could not be read ({unread})")
        actions.append(
            new_action(
                "delete_model_run",
                fact,
                operations,
                outcome="change",
                graph=impact,
                warnings=warnings,
                downstream=_downstream(planning, run),
            )
        )
    return actions


def _downstream(planning: Planning, run: str) -> list[Neighbour]:
    """What used the run's outputs and stays: it keeps its registry record but loses that provenance."""
    names = planning.state.downstream_names
    return [
        Neighbour(id=node.id, subtype=node.subtype, name=names.get(node.id))
        for node in planning.state.downstream.get(run, [])
        if node.id not in planning.deletes
    ]


def _not_found(planning: Planning, record: str, what: str) -> str:
    """A deletion target that is not there: done earlier (a journal here says by which run), or a typo."""
    run = planning.state.deleted_by.get(record)
    if run is not None:
        return f"not found: deleted by run {run}"
    return f"not found: no {what} with this id in the registry, and no run here deleted it (a typo?)"
