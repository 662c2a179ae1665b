"""Plan as a pull-request comment: a count table first, then problems, warnings, and per operation one
collapsible section per changed record.

GitHub refuses comments over 65,535 characters. Past that, sections are cut between records (every
section closes its own tags, so a cut never leaves HTML open), each cut list says how much it left out,
and the comment ends by saying where the full plan is.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from provena_ops.plan.model import Action, Plan
from provena_ops.render.common import SYMBOLS, after_text, groups, is_structured, pretty, short, title
from provena_ops.text import plural, visible

GITHUB_COMMENT_LIMIT = 65_535


@dataclass
class _Section:
    """Opening lines, items (each whole or not at all), closing lines; `more` words what was cut."""

    opening: list[str]
    items: list[str] = field(default_factory=list)
    closing: list[str] = field(default_factory=list)
    more: str = "more"

    def render(self, budget: int) -> tuple[str, int]:
        """The section within `budget` characters, and how many items it had to leave out."""
        frame = len("\n".join(self.opening)) + len("\n".join(self.closing)) + 2
        kept: list[str] = []
        used = frame
        for number, item in enumerate(self.items):
            remaining = len(self.items) - number - 1
            reserve = len(self._cut_line(remaining)) + 1 if remaining else 0
            if used + len(item) + 1 + reserve > budget:
                break
            kept.append(item)
            used += len(item) + 1
        left_out = len(self.items) - len(kept)
        lines = [*self.opening, *kept]
        if left_out:
            lines.append(self._cut_line(left_out))
        return "\n".join([*lines, *self.closing]), left_out

    def _cut_line(self, count: int) -> str:
        return f"- … and {count:,} {self.more} (see the full plan)"


def render_markdown(plan: Plan, full_plan_at: str | None = None, limit: int = GITHUB_COMMENT_LIMIT) -> str:
    summary = plan.summary
    head = [
        f"### provena-ops plan: `{plan.playbook.name}` on `{plan.environment.name}` "
        f"({plan.environment.stage})",
        "",
        "| | records |",
        "|---|---:|",
        f"| to update | {summary.update + summary.relink} |",
        f"| to delete | {summary.delete} |",
        f"| to relodge | {summary.relodge} |",
        *([f"| to restore | {summary.restore} |"] if summary.restore else []),
        f"| unchanged | {summary.unchanged} |",
        f"| not found | {summary.not_found} |",
        f"| problems | {summary.problems} |",
        "",
        f"**{summary.line()}**",
        "",
        *(f"> {note}" for note in plan.notes),
        *([""] if plan.notes else []),
    ]
    footer = [
        f"<sub>planned by {html.escape(plan.planned_by)} at {plan.created_at}; "
        f"playbook {plan.playbook.sha256[:19]}</sub>",
        "",
    ]
    sections = _sections(plan)
    full = "\n".join([*head, *(s.render(10**12)[0] for s in sections), *footer])
    if len(full) <= limit:
        return full
    changed = sum(1 for action in plan.actions if action.outcome == "change")
    budget = limit - len("\n".join([*head, *_notice(full_plan_at, changed, changed), *footer])) - 2
    body: list[str] = []
    for section in sections:
        text, left_out = section.render(budget)
        if len(text) + 1 > budget:
            break
        body.append(text)
        budget -= len(text) + 1
        if left_out:
            break
    shown = sum(part.count(RECORD_MARK) for part in body)
    return "\n".join([*head, *body, *_notice(full_plan_at, shown, changed), *footer])


RECORD_MARK = "<details><summary><code>"


def _notice(full_plan_at: str | None, shown: int, changed: int) -> list[str]:
    where = (
        f"The full plan is in `{full_plan_at}`."
        if full_plan_at
        else "The full plan was not saved: run `provena-ops plan` with `--out plan.json` to keep it."
    )
    return [
        "> :scissors: **Truncated**: the plan is longer than a GitHub comment allows (65,535 characters); "
        f"this comment shows {shown:,} of the {changed:,} records that change. {where}",
        "",
    ]


def _sections(plan: Plan) -> list[_Section]:
    sections: list[_Section] = []
    if plan.problems:
        sections.append(
            _Section(
                ["#### Problems", ""],
                [
                    f"- :x: {_where(p.operation)}{_text(p.message)}  \n  _hint: {_text(p.hint)}_"
                    for p in plan.problems
                ],
                [""],
                more="more problems",
            )
        )
    if plan.warnings:
        sections.append(
            _Section(
                [f"<details><summary>Warnings ({len(plan.warnings):,})</summary>", ""],
                [f"- {_text(warning)}" for warning in plan.warnings],
                ["", "</details>", ""],
                more="more warnings",
            )
        )
    for heading, actions in groups(plan):
        changing = [a for a in actions if a.outcome == "change"]
        quiet = [a for a in actions if a.outcome == "unchanged"]
        items = [_action(action) for action in changing]
        items.extend(
            f"- `?` **{_text(title(a))}**: {_text(a.why or 'not found')}"
            for a in actions
            if a.outcome == "not_found"
        )
        if quiet:
            items.append(
                f"<details><summary>{plural(len(quiet), 'record')} unchanged</summary>\n\n"
                + "\n".join(f"- `=` {_text(title(a))}: {_text(a.why or a.outcome)}" for a in quiet)
                + "\n\n</details>"
            )
        sections.append(
            _Section(
                [f"#### {heading}: {_counts(changing, quiet, actions)}", ""],
                items,
                [""],
                more="more records of this operation",
            )
        )
    return sections


def _where(operation: int | None) -> str:
    return f"`operations[{operation}]` " if operation is not None else ""


def _counts(changing: list[Action], quiet: list[Action], actions: list[Action]) -> str:
    missing = sum(1 for action in actions if action.outcome == "not_found")
    parts = [f"{len(changing):,} to change"]
    if quiet or not missing:
        parts.append(f"{len(quiet):,} unchanged")
    if missing:
        parts.append(f"{missing:,} not found")
    return ", ".join(parts)


def _text(text: str) -> str:
    """Plain text as Markdown that renders as written (no stray tags, emphasis or mentions)."""
    return html.escape(visible(text), quote=False).replace("@", "@\u200b")


def _code(text: str) -> str:
    """A code span that survives backticks in the value: its fence is longer than any run inside."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    return f"{fence}{text}{fence}" if not longest else f"{fence} {text} {fence}"


def _action(action: Action) -> str:
    """One changed record as a collapsible block: the title always visible, the details on click."""
    lines = [f"{RECORD_MARK}{SYMBOLS[action.kind]}</code> {_text(title(action))}</summary>", ""]
    for change in action.changes:
        if is_structured(change.before) or is_structured(change.after):
            lines.append(f"- `{change.field}`:")
            lines.append("  ```diff")
            lines.extend(
                f"  - {line}" for line in (pretty(change.before) if change.before is not None else [])
            )
            lines.extend(f"  + {line}" for line in (pretty(change.after) if change.after is not None else []))
            lines.append("  ```")
        else:
            lines.append(f"- `{change.field}`: {_code(short(change.before))} → {_code(short(change.after))}")
    if action.graph is not None:
        graph = action.graph
        shared = graph.node_references_removed + graph.link_references_removed
        lines.append(
            f"- graph: {plural(graph.nodes_removed, 'node')} and {plural(graph.links_removed, 'link')} "
            f"removed, {plural(shared, 'shared element')} detached"
        )
    if action.reason:
        lines.append(f"- reason: {_text(action.reason)}")
    if action.depends_on:
        lines.append(f"- after: {after_text(action.depends_on)}")
    lines.extend(f"- note: {_text(effect)}" for effect in action.side_effects)
    lines.extend(f"- :warning: {_text(warning)}" for warning in action.warnings)
    if len(lines) == 2:
        lines.append("- no field changes")
    lines.extend(["", "</details>"])
    return "\n".join(lines)
