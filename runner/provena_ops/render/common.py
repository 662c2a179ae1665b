"""What every rendering shares: grouping by operation, symbols, and short value formatting."""

from __future__ import annotations

import json
from typing import Any

from rich.markup import escape

from provena_ops.plan.keys import key_verb
from provena_ops.plan.model import Action, Plan
from provena_ops.text import visible

SYMBOLS = {
    "update": "~",
    "relink": "~",
    "delete_model_run": "-",
    "delete_study": "-",
    "relodge": "+",
    "restore": "+",
}
VERBS = {
    "update": "update",
    "relink": "relink",
    "delete_model_run": "delete",
    "delete_study": "delete",
    "relodge": "relodge",
    "restore": "restore",
}


def groups(plan: Plan) -> list[tuple[str, list[Action]]]:
    """Actions grouped under the first operation that asked for them, in playbook order."""
    titles = {target.operation: f"operations[{target.operation}] {target.op}" for target in plan.targets}
    grouped: dict[int, list[Action]] = {}
    for action in plan.actions:
        grouped.setdefault(action.operations[0], []).append(action)
    return [(titles.get(index, f"operations[{index}]"), grouped[index]) for index in sorted(grouped)]


def short(value: Any, limit: int = 80) -> str:
    if value is None:
        return "(absent)"
    text = (
        json.dumps(value, ensure_ascii=False, sort_keys=True) if not isinstance(value, str) else repr(value)
    )
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_structured(value: Any) -> bool:
    return isinstance(value, list | dict)


def pretty(value: Any) -> list[str]:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, indent=2).splitlines()


def after_text(keys: list[str], listed: int = 3) -> str:
    """Dependencies, listed when few and counted when many."""
    if len(keys) <= listed:
        return ", ".join(keys)
    kinds: dict[str, int] = {}
    for key in keys:
        verb = key_verb(key)
        kinds[verb] = kinds.get(verb, 0) + 1
    return ", ".join(f"{count} {verb}s" if count != 1 else f"1 {verb}" for verb, count in kinds.items())


def title(action: Action) -> str:
    name = f"  {action.display_name}" if action.display_name else ""
    return f"{VERBS[action.kind]} {action.record_id}{name}"


SHOWN_AT_MOST = 2000  # characters of one value on a terminal (rich wraps a long word in quadratic time)


def shown(text: str) -> str:
    """Text from a file or a server, ready for rich: markup escaped, hidden or controlling characters
    written as escapes (a display name holding ESC[2J must not clear a reviewer's screen), and cut to
    SHOWN_AT_MOST characters (the JSON and Markdown plans hold it all)."""
    if len(text) > SHOWN_AT_MOST:
        more = len(text) - SHOWN_AT_MOST
        text = f"{text[:SHOWN_AT_MOST]}... ({more:,} more characters: --format json shows them)"
    return escape(visible(text))
