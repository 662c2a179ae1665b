"""`find` and `record` for people: one record per line (id, subtype, name), aligned, so that ids can be
copied into a playbook and lists read down a column."""

from __future__ import annotations

from collections.abc import Sequence

from provena_ops.facts.lookup import FindResult, Found, LinkedRun, RecordView
from provena_ops.plan.model import EnvironmentInfo

ROLE_WORDS = {
    "study_id": "study",
    "modeller_id": "modeller",
    "requesting_organisation_id": "organisation",
    "workflow_template_id": "workflow",
    "model_id": "model",
}


def _where(environment: EnvironmentInfo) -> str:
    return f"{environment.name} ({environment.stage})"


def _rows(found: Sequence[Found], indent: str = "  ") -> list[str]:
    id_width = max((len(one.id) for one in found), default=0)
    type_width = max((len(one.subtype or "?") for one in found), default=0)
    lines = []
    for one in found:
        name = one.display_name if one.display_name is not None else f"({one.problem or 'no name'})"
        lines.append(f"{indent}{one.id.ljust(id_width)}  {(one.subtype or '?').ljust(type_width)}  {name}")
    return lines


def find_lines(result: FindResult, environment: EnvironmentInfo) -> list[str]:
    where = _where(environment)
    kind = f" {result.subtype}" if result.subtype else ""
    lines: list[str] = []
    if result.exact is not None:
        lines += [f"{result.query} on {where}:", *_rows([result.exact])]
        if result.matches:
            lines += ["", "Its id also matches, in Provena's search:"]
    if result.linked_to is not None:
        head = f"{len(result.matches)} model run{'s' if len(result.matches) != 1 else ''} of study "
        lines.append(
            f"{head}{result.linked_to} on {where} match {result.query!r}" + (":" if result.matches else ".")
        )
    elif result.exact is None:
        count = len(result.matches)
        head = f"{count}{kind} record{'s' if count != 1 else ''} on {where} match {result.query!r}"
        lines.append(head + (" (Provena's search, best first):" if count else "."))
    lines += _rows(result.matches)
    if result.limited:
        lines.append(f"(the first {result.limit}: give more words, --subtype, or --limit up to 50)")
    if result.stale:
        lines.append(
            f"({len(result.stale)} more hit{'s' if len(result.stale) != 1 else ''} of the search index "
            f"no longer in the registry: {', '.join(result.stale)})"
        )
    if not result.matches and result.exact is None and result.linked_to is None:
        lines.append("Search matches words of names and descriptions; an id is fetched directly.")
    return lines


def record_lines(view: RecordView, environment: EnvironmentInfo) -> list[str]:
    name = view.display_name if view.display_name is not None else "(no name)"
    lines = [f"{view.id}  {view.subtype}  {name}  on {_where(environment)}"]
    description = view.item.get("description")
    if isinstance(description, str) and description:
        lines.append(f"  description   {description}")
    if view.record_status:
        lines.append(f"  status        {view.record_status}")
    if view.locked is not None:
        lines.append(f"  locked        {'yes' if view.locked else 'no'}")
    if view.roles:
        lines.append(f"  your roles    {', '.join(view.roles)}")
    for association in view.associations:
        [row] = _rows([association.record], indent="")
        lines.append(f"  {ROLE_WORDS.get(association.role, association.role).ljust(12)}  {row}")
    if view.linked_runs is not None:
        lines += ["", *_linked_runs(view.linked_runs)]
    listed = {run.id for run in view.linked_runs or []}
    downstream = [node for node in view.downstream if node.id not in listed]
    for direction, nodes in (("upstream", view.upstream), ("downstream", downstream)):
        if nodes:
            lines += ["", f"{direction} in the provenance graph ({len(nodes)}):", *_rows(nodes)]
    if view.graph_error:
        lines += ["", f"the provenance graph could not be read: {view.graph_error}"]
    elif not view.upstream and not view.downstream and not listed:
        lines += ["", "nothing links to it in the provenance graph"]
    return lines


def _linked_runs(runs: list[LinkedRun]) -> list[str]:
    if not runs:
        return ["no model run is linked to this study (by the registry or the graph)"]
    lines = [f"model runs linked to this study ({len(runs)}):"]
    rows = _rows([Found(id=run.id, subtype="MODEL_RUN", display_name=run.display_name) for run in runs])
    for run, row in zip(runs, rows, strict=True):
        if not run.in_graph:
            row += "  (registry only: its provenance does not show the link)"
        elif not run.in_registry:
            row += "  (graph only: its record names another study or none)"
        lines.append(row)
    return lines
