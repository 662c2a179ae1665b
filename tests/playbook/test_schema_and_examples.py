"""The checked-in schema matches the models, and every example playbook is valid by both."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from provena_ops import api
from provena_ops.environments.file import load_environments
from provena_ops.playbook.model import OPERATION_NAMES, ModelRunChanges
from provena_ops.playbook.schema import SCHEMAS, render_schema

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "playbooks" / "examples").glob("*.yaml"))


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_checked_in_schemas_are_up_to_date(name: str) -> None:
    checked_in = (REPO / "schemas" / f"{name}.schema.json").read_text()
    assert checked_in == render_schema(name), (
        f"schemas/{name}.schema.json is stale: regenerate it with "
        f"`provena-ops schema {name} > schemas/{name}.schema.json`"
    )


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(json.loads(render_schema("playbook")))


def test_there_is_an_example_per_operation() -> None:
    """Except restore: a restore playbook is written by `undo --write-playbook` from a run's journal, for
    the registry that run changed (tests/apply/test_undo.py makes one and takes it through review)."""
    used = set()
    for example in EXAMPLES:
        used |= {operation["op"] for operation in yaml.safe_load(example.read_text())["operations"]}
    assert used == set(OPERATION_NAMES) - {"restore"}


@pytest.mark.parametrize("example", EXAMPLES, ids=[example.stem for example in EXAMPLES])
def test_example_is_valid_and_editor_ready(example: Path) -> None:
    text = example.read_text()
    assert text.startswith("# yaml-language-server: $schema=../../schemas/playbook.schema.json\n")
    [loaded] = api.validate(
        [example], environments=load_environments(REPO / "environments" / "environments.json")
    )
    assert loaded.valid and not loaded.diagnostics, [d.render() for d in loaded.diagnostics]
    schema = json.loads(render_schema("playbook"))
    jsonschema.validate(yaml.safe_load(text), schema)  # what an editor checks, before templating


@pytest.mark.parametrize(
    "document",
    [
        {"version": 1, "name": "x", "environment": "sandbox", "operations": []},
        {"version": 1, "name": "x", "environment": "sandbox", "operations": [{"op": "delete_study"}]},
        {
            "version": 1,
            "name": "x",
            "environment": "sandbox",
            "operations": [{"op": "delete_model_runs", "model_runs": ["10378.1-123"]}],
        },
        {
            "version": 1,
            "name": "x",
            "environment": "sandbox",
            "operations": [
                {
                    "op": "update_model_runs",
                    "reason": "r",
                    "model_runs": ["10378.1/1"],
                    "set": {"modeller_id": None},
                }
            ],
        },
        {
            "version": 1,
            "name": "x",
            "environment": "sandbox",
            "operations": [
                {"op": "delete_model_runs", "model_runs": [{"id": "10378.1/1", "display_name": "a"}]}
            ],
        },
    ],
)
def test_schema_rejects_what_the_models_reject(document: dict[str, object]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, json.loads(render_schema("playbook")))


def test_every_model_run_record_field_can_be_edited() -> None:
    from ProvenaInterfaces.ProvenanceModels import AssociationInfo, ModelRunRecord

    editable = set(ModelRunChanges.model_fields)
    expected = (set(ModelRunRecord.model_fields) - {"associations", "annotations"}) | set(
        AssociationInfo.model_fields
    )
    assert editable == expected  # annotations have their own key-level block


def _doc_operation_blocks() -> list[str]:
    text = (REPO / "docs" / "playbooks.md").read_text()
    blocks = [block.split("```", 1)[0] for block in text.split("```yaml\n")[1:]]
    return [block for block in blocks if block.startswith("- op:")]


@pytest.mark.parametrize("block", _doc_operation_blocks())
def test_every_operation_example_in_the_docs_is_valid(block: str, tmp_path: Path) -> None:
    indented = "".join(f"  {line}\n" for line in block.splitlines())
    path = tmp_path / "doc.yaml"
    path.write_text(f"version: 1\nname: doc\nenvironment: sandbox\noperations:\n{indented}")
    [loaded] = api.validate([path], environments=load_environments(cwd=tmp_path))
    assert loaded.valid, [d.render() for d in loaded.diagnostics]
