"""What every rendering shares: grouping by operation, symbols, and short value formatting."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from rich.markup import escape

from provena_ops.plan.keys import key_verb
from provena_ops.plan.model import Action, Summary
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


def study_deletion(action: Action, find: Callable[[str], Action | None]) -> str:
    """'488 relinked to 10378.1/1690048, 12 unlinked, 12 by override': what the deletion waits for."""
    fates: dict[str, int] = {}
    for key in action.depends_on:
        step = find(key)
        change = next((c for c in step.changes if c.field == "study_id"), None) if step else None
        if step is not None and step.kind == "delete_model_run":
            fate = "deleted"
        elif change is None:
            fate = "stale graph link removed" if step and step.stale_link_to else "other"
        else:
            fate = f"relinked to {change.after}" if change.after else "unlinked"
        fates[fate] = fates.get(fate, 0) + 1
    parts = [f"{count:,} {fate}" for fate, count in sorted(fates.items(), key=lambda item: -item[1])]
    if action.overridden:
        parts.append(f"{len(action.overridden):,} by override")
    return ", ".join(parts)


def gist(text: str) -> str:
    """What a member's note or warning says, less what is particular to it: 'changes study_id' of
    'changes study_id; records downstream of this run: ...', 'user_metadata is cleared' of '... (now {})'."""
    return text.split(";", 1)[0].split(" (", 1)[0]


# The plan's categories, named alike in every format: the JSON summary's keys, in its order.
CATEGORIES = (
    ("update", "to update"),
    ("relink", "to relink"),
    ("delete", "to delete"),
    ("relodge", "to relodge"),
    ("restore", "to restore"),
    ("unchanged", "unchanged"),
    ("not_found", "not found"),
    ("problems", "problems"),
)


def category_counts(summary: Summary) -> list[tuple[str, int]]:
    """The categories with something in them, as '(label, count)'."""
    return [(label, getattr(summary, key)) for key, label in CATEGORIES if getattr(summary, key)]
