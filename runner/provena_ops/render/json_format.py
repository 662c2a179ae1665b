"""The saved plan: pydantic's JSON of `Plan`, indented and key-stable so two plans diff cleanly."""

from __future__ import annotations

from provena_ops.plan.model import Plan


def render_json(plan: Plan) -> str:
    return plan.model_dump_json(indent=2) + "\n"
