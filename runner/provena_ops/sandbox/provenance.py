"""Model-run validation and the graph operations built on `graph.py`: update-diff, delete, relodge,
explore. Used by the prov routes and the MODEL_RUN_UPDATE job alike, so both behave the same."""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from fastapi import HTTPException
from ProvenaInterfaces.ProvenanceModels import ModelRunRecord, TemplatedDataset

from provena_ops.sandbox.context import Sandbox
from provena_ops.sandbox.fetching import fetch_outcome
from provena_ops.sandbox.graph import DiffAction, RecordGraph, diff_graphs, model_run_graph
from provena_ops.sandbox.http import provena_error
from provena_ops.sandbox.items import SUBTYPES
from provena_ops.sandbox.realm import REGISTRY_ADMIN, REGISTRY_READ, REGISTRY_WRITE, Identity

VALIDATION_PREFIX = "Failed to validate an entity's ID in the record, error: "


class RecordInvalid(Exception):
    """The record would be refused by Provena's validate_model_run_record; `message` is its text."""

    def __init__(self, message: str, direct: bool = False) -> None:
        super().__init__(message)
        self.message = message
        # Provena raises some failures (dataset template not in the workflow) as a direct 400.
        self.direct = direct


SERVICE_ACCOUNT = Identity(
    username="service-account-prov-api",
    email="",
    roles=[REGISTRY_READ, REGISTRY_WRITE, REGISTRY_ADMIN],
    token="",
)


def _entity_problem(sandbox: Sandbox, identity: Identity, item_id: str, subtype: str) -> str | None:
    """prov-api helpers/entity_validators.py `validate_by_id`: the registry's typed fetch of the id;
    its soft failure becomes the error text, and a 401 is raised as prov-api raises it."""
    try:
        outcome = fetch_outcome(sandbox, identity, SUBTYPES[subtype], item_id)
    except HTTPException as exc:
        if exc.status_code == 401:
            raise provena_error(
                401, f"Registry API denied access to resource: 401. Error: {exc.detail}"
            ) from exc
        raise provena_error(
            500, f"Registry API responded with non 200 code: {exc.status_code}. Error: {exc.detail}"
        ) from exc
    if isinstance(outcome, str):
        return f"Failed to retrieve item with details: {outcome}."
    return None


def validate_record(sandbox: Sandbox, record: ModelRunRecord, identity: Identity | None) -> dict[str, Any]:
    """prov-api helpers/validate_model_run_record.py `validate_model_run_record`, in its order and
    words; returns the workflow template item. `identity` is the caller (their read permissions
    apply); None means the prov service account."""
    caller = identity or SERVICE_ACCOUNT
    if record.end_time < record.start_time:
        raise RecordInvalid("The end time cannot be before the start time of a model run")
    if record.display_name == "":
        raise RecordInvalid("Display name cannot be empty string")
    if record.description == "":
        raise RecordInvalid("Description cannot be empty string")
    # Provena's message for a bad study names the workflow definition; kept for fidelity.
    if record.study_id is not None and (
        problem := _entity_problem(sandbox, caller, record.study_id, "STUDY")
    ):
        raise RecordInvalid(
            f"Provided model run workflow definition with id {record.study_id} was not a valid "
            "id, error: "
            f"{problem}"
        )
    template_id = record.workflow_template_id
    if problem := _entity_problem(sandbox, caller, template_id, "MODEL_RUN_WORKFLOW_TEMPLATE"):
        raise RecordInvalid(
            f"Provided model run workflow definition with id {template_id} was not a valid id, "
            f"error: {problem}"
        )
    template = sandbox.store.get_item(template_id) or {}
    resources = [*(template.get("input_templates") or []), *(template.get("output_templates") or [])]
    dataset_templates: dict[str, dict[str, Any]] = {}
    for resource in resources:
        dataset_template_id = str(resource["template_id"])
        if problem := _entity_problem(sandbox, caller, dataset_template_id, "DATASET_TEMPLATE"):
            raise RecordInvalid(
                f"Provided dataset template with id {dataset_template_id} (associated with the "
                "workflow def.) "
                f"was not a valid id, error: {problem}"
            )
        dataset_templates[dataset_template_id] = sandbox.store.get_item(dataset_template_id) or {}
    for side, supplied, expected in (
        ("inputs", record.inputs, template.get("input_templates") or []),
        ("outputs", record.outputs, template.get("output_templates") or []),
    ):
        present = {dataset.dataset_template_id for dataset in supplied}
        for resource in expected:
            if not resource.get("optional") and resource["template_id"] not in present:
                raise RecordInvalid(
                    "The workflow definition expects dataset with template ID "
                    f"{resource['template_id']} but it "
                    f"was not present in the {side}."
                )
    for side, supplied in (("input", record.inputs), ("output", record.outputs)):
        for dataset in supplied:
            dataset_template = dataset_templates.get(dataset.dataset_template_id)
            if dataset_template is None:
                raise RecordInvalid(
                    f"An {side} template in the payload (id: {dataset.dataset_template_id}) does "
                    "not exist in "
                    f"the workflow definition's list of expected/required {side} dataset templates. "
                    "Check your "
                    f"workflow definition and provided {side} dataset templates are correct.",
                    direct=True,
                )
            if reason := _dataset_problem(sandbox, caller, dataset, dataset_template):
                raise RecordInvalid(
                    f"An {side} dataset validation process failed, type "
                    f"DatasetType.{dataset.dataset_type.name}, "
                    f"template id {dataset.dataset_template_id}, reason {reason}."
                )
    software_id = str(template.get("software_id"))
    if problem := _entity_problem(sandbox, caller, software_id, "MODEL"):
        raise RecordInvalid(
            f"Model with id {software_id} (associated with workflow definition) was not a valid "
            "model, error: "
            f"{problem}."
        )
    modeller = record.associations.modeller_id
    if problem := _entity_problem(sandbox, caller, modeller, "PERSON"):
        raise RecordInvalid(f"Modeller with id {modeller} was not a valid person, error: {problem}.")
    organisation = record.associations.requesting_organisation_id
    if organisation and (problem := _entity_problem(sandbox, caller, organisation, "ORGANISATION")):
        raise RecordInvalid(
            f"Organisation with id {organisation} was not a valid organisation, error: {problem}."
        )
    required = list((template.get("annotations") or {}).get("required") or [])
    missing = [key for key in dict.fromkeys(required) if key not in (record.annotations or {})]
    if missing:
        raise RecordInvalid(f"Missing required annotations with keys: ({','.join(missing)}).")
    return template


def _dataset_problem(
    sandbox: Sandbox, caller: Identity, dataset: TemplatedDataset, template: dict[str, Any]
) -> str | None:
    """validate_datastore_resource: the dataset exists, and its deferred resources match the template."""
    if problem := _entity_problem(sandbox, caller, dataset.dataset_id, "DATASET"):
        # Provena says "Input" for outputs too.
        return f"Input dataset with id {dataset.dataset_id} was not a valid id, error: {problem}"
    deferred = list(template.get("deferred_resources") or [])
    mandatory = [r["key"] for r in deferred if not r.get("optional")]
    provided = set(dataset.resources or {})
    missing = [key for key in mandatory if key not in provided]
    what = (
        f"The provided templated dataset with id {dataset.dataset_template_id} and dataset id "
        f"{dataset.dataset_id}"
    )
    if missing:
        return (
            f"{what} was missing deferred resource paths for the following required resource keys "
            f"({','.join(missing)})."
        )
    extra = [key for key in (dataset.resources or {}) if key not in {r["key"] for r in deferred}]
    if extra:
        return (
            f"{what} provided unexpected deferred resource paths for the following unexpected resource keys "
            f"({','.join(extra)})."
        )
    return None


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
