"""The saved plan: pydantic's JSON of `Plan`, indented and key-stable so two plans diff cleanly.

Written a piece at a time: the plan of an edit of 100,000 model runs is ~200 MB of JSON, which as one
string (and pydantic's buffer behind it) would triple the plan's memory.
"""

from __future__ import annotations

from collections.abc import Iterator

from provena_ops.plan.actions import Actions
from provena_ops.plan.model import Plan

_ACTIONS = '\n  "actions": [],\n'  # JSON strings cannot hold a newline: only the top-level key matches


def render_json(plan: Plan) -> str:
    return "".join(json_chunks(plan))


def json_chunks(plan: Plan) -> Iterator[str]:
    """`plan.model_dump_json(indent=2)` and a newline, in pieces of one action each."""
    if not plan.actions:
        yield plan.model_dump_json(indent=2) + "\n"
        return
    head, tail = plan.model_copy(update={"actions": Actions()}).model_dump_json(indent=2).split(_ACTIONS)
    yield head + '\n  "actions": [\n'
    for index, action in enumerate(plan.actions.chunks()):
        yield (",\n" if index else "") + action
    yield "\n  ],\n" + tail + "\n"
