"""Pre-flight of Provena's model-run record validation (contract 5.2), so a job that would FAIL is caught
at plan time. Pure: it reads the entities the fetcher already gathered; unlike Provena it reports every
problem, not the first.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ProvenaInterfaces.ProvenanceModels import ModelRunRecord
from pydantic import ValidationError

from provena_ops.facts.model import State
from provena_ops.text import article

# Record fields whose change moves a model run in the provenance graph (its edges are built from them).
STRUCTURAL = ("study_id", "inputs", "outputs", "associations", "workflow_template_id")


def record_problems(record: dict[str, Any], state: State) -> list[str]:
    try:
        parsed = ModelRunRecord.model_validate(record)
    except ValidationError as exc:
        problems = []
        start, end = record.get("start_time"), record.get("end_time")
        if isinstance(start, int) and isinstance(end, int) and start > end:
            problems.append(f"start_time {start} is after end_time {end}")
        problems.extend(
            f"{'.'.join(str(part) for part in error['loc']) or 'record'}: {error['msg']}"
            for error in exc.errors(include_url=False)
            if "start_time" not in error["msg"]
        )
        return problems
    return list(_problems(parsed, state))


def referenced_ids(record: dict[str, Any]) -> set[str]:
    """Every entity a record points at directly (the workflow template's own references come second)."""
    ids = {record.get("workflow_template_id"), record.get("study_id")}
    associations = record.get("associations") or {}
    ids |= {associations.get("modeller_id"), associations.get("requesting_organisation_id")}
    for dataset in [*(record.get("inputs") or []), *(record.get("outputs") or [])]:
        ids |= {dataset.get("dataset_id"), dataset.get("dataset_template_id")}
    return {str(value) for value in ids if value}


def template_references(template: dict[str, Any]) -> set[str]:
    ids = {str(template.get("software_id") or "")}
    for side in ("input_templates", "output_templates"):
        ids |= {str(entry.get("template_id")) for entry in template.get(side) or []}
    return {value for value in ids if value}


def _problems(record: ModelRunRecord, state: State) -> Iterator[str]:
    if record.start_time > record.end_time:
        yield f"start_time {record.start_time} is after end_time {record.end_time}"
    if record.study_id:
        yield from _complete(state, record.study_id, "STUDY", "study")
    template_problems = list(
        _complete(state, record.workflow_template_id, "MODEL_RUN_WORKFLOW_TEMPLATE", "workflow template")
    )
    yield from template_problems
    yield from _complete(state, record.associations.modeller_id, "PERSON", "modeller")
    if record.associations.requesting_organisation_id:
        yield from _complete(
            state, record.associations.requesting_organisation_id, "ORGANISATION", "requesting organisation"
        )
    if template_problems:
        return
    template = state.record(record.workflow_template_id).item or {}
    yield from _complete(state, str(template.get("software_id")), "MODEL", "model of the workflow template")
    for side, supplied in (("input", record.inputs), ("output", record.outputs)):
        allowed = {entry["template_id"]: entry for entry in template.get(f"{side}_templates") or []}
        given = {dataset.dataset_template_id for dataset in supplied}
        for template_id, entry in allowed.items():
            yield from _complete(state, template_id, "DATASET_TEMPLATE", f"{side} dataset template")
            if not entry.get("optional") and template_id not in given:
                yield f"the workflow template requires an {side} dataset of template {template_id}"
        for dataset in supplied:
            if dataset.dataset_template_id not in allowed:
                yield (
                    f"{side} dataset {dataset.dataset_id} uses template {dataset.dataset_template_id}, "
                    f"which is not one of the workflow template's {side} templates"
                )
                continue
            yield from _complete(state, dataset.dataset_id, "DATASET", f"{side} dataset")
            yield from _resources(
                state, dataset.dataset_template_id, dataset.resources or {}, dataset.dataset_id
            )
    required = list((template.get("annotations") or {}).get("required") or [])
    missing = [key for key in required if key not in (record.annotations or {})]
    if missing:
        yield f"the workflow template requires annotation(s) {', '.join(missing)}"


def _complete(state: State, item_id: str, subtype: str, role: str) -> Iterator[str]:
    fact = state.standing(item_id)
    if not fact.exists:
        yield f"{role} {item_id} does not exist (or cannot be read)"
    elif fact.subtype != subtype:
        yield f"{role} {item_id} is {article(fact.subtype)}, not {article(subtype)}"
    elif not fact.complete:
        yield f"{role} {item_id} is an incomplete (seed) record"


def _resources(state: State, template_id: str, resources: dict[str, str], dataset_id: str) -> Iterator[str]:
    template = state.record(template_id).item or {}
    deferred = {entry["key"]: entry for entry in template.get("deferred_resources") or []}
    unknown = sorted(set(resources) - set(deferred))
    if unknown:
        listed = ", ".join(unknown)
        yield f"dataset {dataset_id} supplies resources {listed} unknown to template {template_id}"
    missing = sorted(
        key for key, entry in deferred.items() if not entry.get("optional") and key not in resources
    )
    if missing:
        yield f"dataset {dataset_id} lacks required resources {', '.join(missing)} of template {template_id}"


def missing_from_graph(item: dict[str, Any], lineage: dict[str, list[str]] | None) -> list[str]:
    """Record references the graph lacks around a model run (all of them when the run is not in the
    graph): what a relodge would add. `lineage` is the run's depth-1 neighbours, up and down."""
    record = item.get("record") or {}
    associations = record.get("associations") or {}
    upstream = {
        record.get("study_id"),
        record.get("workflow_template_id"),
        associations.get("modeller_id"),
        associations.get("requesting_organisation_id"),
        *(dataset.get("dataset_id") for dataset in record.get("inputs") or []),
    } - {None}
    downstream = {dataset.get("dataset_id") for dataset in record.get("outputs") or []} - {None}
    if lineage is None:
        return sorted(str(i) for i in upstream | downstream)
    missing = (upstream - set(lineage.get("upstream", []))) | (
        downstream - set(lineage.get("downstream", []))
    )
    return sorted(str(i) for i in missing)


def normalised(value: Any) -> Any:
    """A record as compared: absent and null are the same (Provena stores what it was sent, nulls and
    all, while a playbook's values leave unset fields out)."""
    if isinstance(value, dict):
        return {key: normalised(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [normalised(item) for item in value]
    return value
