"""The graph impact of a plan as a Mermaid flowchart, which GitHub draws in a pull-request comment.

Model runs making the same change are one node ("488 model runs"), joined to the studies and entities
they are linked to now (solid) and no longer (dotted, crossed); deleted studies and runs are drawn as
removed. The picture is bounded: the largest groups are drawn, the rest counted in one node, so a plan of
100,000 records draws as quickly and as legibly as one of ten.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from provena_ops.plan.model import Action, Plan
from provena_ops.playbook.model import HANDLE_PATTERN
from provena_ops.text import plural

MOST_GROUPS = 12  # groups of model runs drawn; the others are counted
MOST_ENDPOINTS = 24  # studies and entities drawn; links to others are counted
NAME_LENGTH = 40  # characters of a record's name in a node
_HANDLE = re.compile(HANDLE_PATTERN)
_PLAIN = re.compile(r"[A-Za-z0-9 .,:/()_+'-]")
_VERBS = {
    "update": "edited",
    "relink": "relinked",
    "delete_model_run": "deleted",
    "relodge": "relodged",
    "restore": "restored",
}
_CLASS = {"update": "changed", "relink": "changed", "delete_model_run": "removed", "relodge": "added"}


def label(text: str) -> str:
    """Text as a quoted Mermaid label that shows it as written: anything but plain characters becomes
    an entity code, so a name holding quotes, brackets, backticks or a fence cannot break the diagram
    or the comment around it."""
    return '"' + "".join(ch if _PLAIN.fullmatch(ch) else f"#{ord(ch)};" for ch in text) + '"'


def _named(record_id: str, name: str | None) -> str:
    if not name:
        return record_id
    cut = name if len(name) <= NAME_LENGTH else name[: NAME_LENGTH - 1] + "\u2026"
    return f"{record_id} {cut}"


@dataclass
class _Group:
    """Model runs making one change: the same kind, the same links gained and lost."""

    kind: str
    subtype: str
    links: tuple[tuple[str, str | None, str | None], ...]  # (field, linked before, linked after)
    size: int = 0
    first: tuple[str, str | None] = ("", None)  # record id and name, drawn when it is the only member
    downstream: set[str] = field(default_factory=set)


def _links(action: Action) -> tuple[tuple[str, str | None, str | None], ...]:
    """The changes that link the record to another (an id before or after), which the picture draws."""
    found = []
    for change in action.changes:
        before = (
            change.before if isinstance(change.before, str) and _HANDLE.fullmatch(change.before) else None
        )
        after = change.after if isinstance(change.after, str) and _HANDLE.fullmatch(change.after) else None
        if before or after:
            found.append((change.field, before, after))
    return tuple(found)


def _groups(plan: Plan) -> list[_Group]:
    groups: dict[tuple[object, ...], _Group] = {}
    for position, head in enumerate(plan.actions.heads()):
        if head.outcome != "change" or head.kind == "delete_study":
            continue
        action = plan.actions[position]
        links = _links(action)
        key = (action.kind, action.subtype, links)
        group = groups.setdefault(key, _Group(action.kind, action.subtype, links))
        if not group.size:
            group.first = (action.record_id, action.display_name)
        group.size += 1
        group.downstream.update(node.id for node in action.downstream)
    return sorted(groups.values(), key=lambda group: -group.size)


def render_mermaid(plan: Plan) -> str | None:
    """The flowchart's text, or None when the plan changes nothing worth drawing."""
    groups = _groups(plan)
    heads = plan.actions.heads()
    deleted_studies = {a.record_id for a in heads if a.kind == "delete_study" and a.outcome == "change"}
    if not groups and not deleted_studies:
        return None
    names = {a.record_id: a.display_name for a in heads if a.display_name}
    lines = ["flowchart LR"]
    nodes: dict[str, str] = {}
    left_out = 0

    def endpoint(record_id: str) -> str | None:
        nonlocal left_out
        if record_id in nodes:
            return nodes[record_id]
        if len(nodes) >= MOST_ENDPOINTS:
            left_out += 1
            return None
        node = f"r{len(nodes)}"
        nodes[record_id] = node
        text = _named(record_id, names.get(record_id))
        if record_id in deleted_studies:
            lines.append(f"  {node}[[{label('study ' + text + ' (deleted)')}]]:::removed")
        else:
            lines.append(f"  {node}[{label(text)}]")
        return node

    for study in deleted_studies:
        endpoint(study)
    drawn, rest = groups[:MOST_GROUPS], groups[MOST_GROUPS:]
    for number, group in enumerate(drawn):
        node = f"g{number}"
        noun = "model run" if group.subtype == "MODEL_RUN" else "study"
        verb = _VERBS.get(group.kind, group.kind)
        if group.kind == "relink" and all(after is None for _, _, after in group.links):
            verb = "unlinked"
        text = f"{plural(group.size, noun)} {verb}"
        if group.size == 1:
            text = f"{verb} {_named(*group.first)}"
        lines.append(f"  {node}([{label(text)}]):::{_CLASS.get(group.kind, 'added')}")
        for field_name, before, after in group.links:
            if after is not None and (target := endpoint(after)) is not None:
                lines.append(f"  {node} -->|{label(field_name)}| {target}")
            if before is not None and (source := endpoint(before)) is not None:
                lines.append(f"  {node} -.-x|{label('was ' + field_name)}| {source}")
        if group.downstream:
            lines.append(f"  {node}d[{label(plural(len(group.downstream), 'downstream record'))}]:::warned")
            lines.append(f"  {node} -->|{label('outputs used by')}| {node}d")
    if rest or left_out:
        parts = []
        if rest:
            records = sum(group.size for group in rest)
            parts.append(f"{plural(len(rest), 'more group')} ({plural(records, 'record')})")
        if left_out:
            parts.append(f"{plural(left_out, 'more link')} to records not drawn")
        lines.append(f"  more[{label('and ' + ', '.join(parts) + ': see the list below')}]")
    lines.extend(
        [
            "  classDef removed fill:#fde2e2,stroke:#c62828,stroke-dasharray:4 2",
            "  classDef changed fill:#fff4d6,stroke:#b26a00",
            "  classDef added fill:#e3f5e1,stroke:#2e7d32",
            "  classDef warned fill:#fff,stroke:#b26a00,stroke-dasharray:2 2",
        ]
    )
    return "\n".join(lines)
