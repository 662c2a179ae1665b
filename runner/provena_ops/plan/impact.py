"""The deletion impact summary: totals, averages and outliers, as Provena's admin script reports them."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from provena_ops.plan.actions import ActionLike
from provena_ops.plan.model import (
    DeletionImpact,
    Outlier,
)
from provena_ops.plan.planning import Planning
from provena_ops.text import plural


def deletion_impact(planning: Planning, actions: Sequence[ActionLike]) -> DeletionImpact | None:
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
