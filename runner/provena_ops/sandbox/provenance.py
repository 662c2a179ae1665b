"""Model-run validation and the graph operations built on `graph.py`: update-diff, delete, relodge,
explore. Used by the prov routes and the MODEL_RUN_UPDATE job alike, so both behave the same."""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from ProvenaInterfaces.ProvenanceModels import ModelRunRecord

from provena_ops.sandbox.context import Sandbox
from provena_ops.sandbox.graph import DiffAction, RecordGraph, diff_graphs, model_run_graph
from provena_ops.sandbox.http import unauthorised
from provena_ops.sandbox.items import READ_ROLES, can, item_roles
from provena_ops.sandbox.realm import Identity

VALIDATION_PREFIX = "Failed to validate an entity's ID in the record, error: "


class RecordInvalid(Exception):
    """The record would be refused by Provena's validate_model_run_record; `message` is its text."""

    def __init__(self, message: str, direct: bool = False) -> None:
        super().__init__(message)
        self.message = message
        # Provena raises some failures (dataset template not in the workflow) as a direct 400.
        self.direct = direct


def _complete(
    sandbox: Sandbox, identity: Identity | None, item_id: str, subtype: str, what: str
) -> dict[str, Any]:
    item = sandbox.store.get_item(item_id)
    if item is None:
        raise RecordInvalid(f"The {what} with id {item_id} could not be found in the registry.")
    if identity is not None and not can(
        item_roles(sandbox, identity, item_id, item["item_subtype"]), READ_ROLES
    ):
        raise unauthorised("You are not authorised to fetch this item.")
    if item["record_type"] != "COMPLETE_ITEM":
        raise RecordInvalid(f"The {what} with id {item_id} is a seed item, not a complete item.")
    if item["item_subtype"] != subtype:
        raise RecordInvalid(f"The {what} with id {item_id} is a {item['item_subtype']}, expected {subtype}.")
    return item


def validate_record(sandbox: Sandbox, record: ModelRunRecord, identity: Identity | None) -> dict[str, Any]:
    """Provena's validate_model_run_record (contract 5.2); returns the workflow template item.

    `identity` is the caller (their read permissions apply); None means the prov service account.
    """
    if record.study_id:
        # Provena's message for a bad study wrongly names the workflow definition; kept for fidelity.
        try:
            _complete(sandbox, identity, record.study_id, "STUDY", "study")
        except RecordInvalid as exc:
            raise RecordInvalid(
                f"Invalid model run workflow definition (study {record.study_id}): {exc.message}"
            ) from exc
    template = _complete(
        sandbox,
        identity,
        record.workflow_template_id,
        "MODEL_RUN_WORKFLOW_TEMPLATE",
        "model run workflow template",
    )
    inputs_allowed = {t["template_id"]: t for t in template.get("input_templates") or []}
    outputs_allowed = {t["template_id"]: t for t in template.get("output_templates") or []}
    dataset_templates: dict[str, dict[str, Any]] = {}
    for template_id in [*inputs_allowed, *outputs_allowed]:
        dataset_templates[template_id] = _complete(
            sandbox, identity, template_id, "DATASET_TEMPLATE", "dataset template"
        )
    for side, supplied, allowed in (
        ("input", record.inputs, inputs_allowed),
        ("output", record.outputs, outputs_allowed),
    ):
        supplied_templates = {d.dataset_template_id for d in supplied}
        for template_id, resource in allowed.items():
            if not resource.get("optional") and template_id not in supplied_templates:
                raise RecordInvalid(
                    f"The workflow template requires an {side} dataset for template "
                    f"{template_id}, but none was supplied."
                )
        for dataset in supplied:
            if dataset.dataset_template_id not in allowed:
                raise RecordInvalid(
                    f"The {side} dataset {dataset.dataset_id} uses template {dataset.dataset_template_id}, "
                    f"which is not one of the workflow template's {side} templates.",
                    direct=True,
                )
            _complete(sandbox, identity, dataset.dataset_id, "DATASET", f"{side} dataset")
            _check_resources(
                dataset_templates[dataset.dataset_template_id], dataset.resources or {}, dataset.dataset_id
            )
    _complete(sandbox, identity, str(template["software_id"]), "MODEL", "model")
    _complete(sandbox, identity, record.associations.modeller_id, "PERSON", "modeller")
    if record.associations.requesting_organisation_id:
        _complete(
            sandbox,
            identity,
            record.associations.requesting_organisation_id,
            "ORGANISATION",
            "requesting organisation",
        )
    required = list((template.get("annotations") or {}).get("required") or [])
    missing = [key for key in required if key not in (record.annotations or {})]
    if missing:
        raise RecordInvalid(f"The workflow template requires annotations {missing} which were not provided.")
    return template


def _check_resources(template: dict[str, Any], resources: dict[str, str], dataset_id: str) -> None:
    deferred = {r["key"]: r for r in template.get("deferred_resources") or []}
    unknown = sorted(set(resources) - set(deferred))
    if unknown:
        raise RecordInvalid(
            f"Dataset {dataset_id} supplies resources {unknown} not defined by template {template['id']}."
        )
    missing = sorted(key for key, r in deferred.items() if not r.get("optional") and key not in resources)
    if missing:
        raise RecordInvalid(
            f"Dataset {dataset_id} is missing required deferred resources {missing} of template "
            f"{template['id']}."
        )


def graph_for(sandbox: Sandbox, run_id: str, record: ModelRunRecord) -> RecordGraph:
    template = sandbox.store.get_item(record.workflow_template_id)
    if template is None:
        raise RecordInvalid(
            f"The model run workflow template with id {record.workflow_template_id} could not "
            "be found in the registry."
        )
    return model_run_graph(run_id, record, str(template["software_id"]))


def relodge_diff(sandbox: Sandbox, run_id: str, record: ModelRunRecord) -> list[DiffAction]:
    """The update job's graph step: diff the record's stored graph against its fresh one."""
    return diff_graphs(run_id, sandbox.store.record_graph(run_id), graph_for(sandbox, run_id, record))


def delete_diff(sandbox: Sandbox, run_id: str) -> list[DiffAction]:
    return diff_graphs(run_id, sandbox.store.record_graph(run_id), RecordGraph())


def merge_additively(sandbox: Sandbox, run_id: str, record: ModelRunRecord) -> None:
    """Relodge and link_to_study lodging: upsert and tag, never remove (contract 6.6)."""
    graph = graph_for(sandbox, run_id, record)
    with sandbox.store.transaction():
        for node in graph.nodes:
            sandbox.store.tag_node(node, run_id)
        for link in graph.links.values():
            sandbox.store.tag_link(link, run_id)


def prov_serialisation(run_id: str, graph: RecordGraph) -> str:
    """A PROV-JSON document of the record's graph, stored in the item as Provena does."""
    document: dict[str, dict[str, Any]] = {"prefix": {"default": "http://hdl.handle.net/"}}
    kinds = {"ACTIVITY": "activity", "AGENT": "agent", "ENTITY": "entity"}
    for node in sorted(graph.nodes):
        document.setdefault(kinds[node.category], {})[node.id] = {"item_subtype": node.subtype}
    for index, link in enumerate(sorted(graph.links.values())):
        document.setdefault(link.relation, {})[f"_:id{index}"] = {
            "source": link.source.id,
            "target": link.target.id,
        }
    return json.dumps(document, sort_keys=True)


def explore(sandbox: Sandbox, start: str, depth: int, upstream: bool) -> dict[str, Any]:
    """Node-link JSON of every path of length 1..depth leaving (upstream) or reaching (downstream) start."""
    nodes: dict[str, dict[str, str]] = {}
    links: dict[tuple[str, str], str] = {}
    distance = {start: 0}
    queue = deque([start])
    while queue:
        current = queue.popleft()
        if distance[current] >= depth:
            continue
        for source, target, relation, subtype, category in sandbox.store.neighbours(
            current, outgoing=upstream
        ):
            other = target if upstream else source
            if not nodes:
                kinds = sandbox.store.node_kinds(start)
                if kinds:
                    nodes[start] = {"item_category": kinds[0][1], "item_subtype": kinds[0][0], "id": start}
            nodes.setdefault(other, {"item_category": category, "item_subtype": subtype, "id": other})
            links.setdefault((source, target), relation)
            if other not in distance:
                distance[other] = distance[current] + 1
                queue.append(other)
    return {
        "directed": True,
        "multigraph": False,
        "graph": {},
        "nodes": list(nodes.values()),
        "links": [{"type": relation, "source": s, "target": t} for (s, t), relation in links.items()],
    }
