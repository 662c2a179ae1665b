"""JSON Schemas generated from the pydantic models, for editors (yaml-language-server) and other tools.

The checked-in copies under schemas/ are kept identical to these by a test; regenerate them with
`provena-ops schema NAME > schemas/NAME.schema.json` for each name in SCHEMAS.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import CoreSchema

from provena_ops.playbook.model import HANDLE_PATTERN, Playbook

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# Editors see the file before templating, so a handle field may also hold a `{{ ... }}` expression.
TEMPLATED_HANDLE_PATTERN = "^(?:" + HANDLE_PATTERN[1:-1] + r"|.*\{\{.*\}\}.*)$"


class _EditorSchema(GenerateJsonSchema):
    def str_schema(self, schema: CoreSchema) -> JsonSchemaValue:
        generated = super().str_schema(schema)  # type: ignore[arg-type]
        if generated.get("pattern") == HANDLE_PATTERN:
            generated["pattern"] = TEMPLATED_HANDLE_PATTERN
        return generated


def _widen_patterns(value: Any) -> Any:
    """Patterns written into hand-made schema fragments get the same templating allowance."""
    if isinstance(value, dict):
        return {
            key: TEMPLATED_HANDLE_PATTERN
            if key == "pattern" and item == HANDLE_PATTERN
            else _widen_patterns(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_widen_patterns(item) for item in value]
    return value


def model_schema(model: type[BaseModel], schema_id: str) -> dict[str, Any]:
    generated = _widen_patterns(model.model_json_schema(schema_generator=_EditorSchema))
    return {"$schema": SCHEMA_DIALECT, "$id": schema_id, **generated}


def playbook_schema() -> dict[str, Any]:
    return model_schema(Playbook, "https://provena-ops.local/schemas/playbook.schema.json")


def plan_schema() -> dict[str, Any]:
    from provena_ops.plan.model import Plan

    return model_schema(Plan, "https://provena-ops.local/schemas/plan.schema.json")


def journal_schema() -> dict[str, Any]:
    """One line of a run journal (.provena-ops/runs/*.jsonl): any of the journal's events."""
    from provena_ops.apply.journal import EVENT

    generated = EVENT.json_schema(schema_generator=_EditorSchema)
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": "https://provena-ops.local/schemas/journal-event.schema.json",
        "title": "provena-ops journal event",
        **generated,
    }


def _output(model_name: str, schema_name: str) -> Callable[[], dict[str, Any]]:
    """The schema of a command's --format json document (render/outputs.py), imported when asked for."""

    def generate() -> dict[str, Any]:
        from provena_ops.render import outputs

        model = getattr(outputs, model_name)
        return model_schema(model, f"https://provena-ops.local/schemas/{schema_name}.schema.json")

    return generate


SCHEMAS = {"playbook": playbook_schema, "plan": plan_schema, "journal-event": journal_schema}
SCHEMAS["apply-result"] = _output("ApplyResultDocument", "apply-result")
SCHEMAS["log-list"] = _output("LogListDocument", "log-list")
SCHEMAS["log-run"] = _output("LogRunDocument", "log-run")
SCHEMAS["environments"] = _output("EnvironmentsDocument", "environments")
SCHEMAS["find"] = _output("FindDocument", "find")
SCHEMAS["record"] = _output("RecordDocument", "record")


def render_schema(name: str) -> str:
    """The schema as checked in: sorted keys are not used, so the file reads in model order."""
    return json.dumps(SCHEMAS[name](), indent=2, ensure_ascii=False) + "\n"
