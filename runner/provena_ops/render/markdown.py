"""Plan as a pull-request comment: the summary and a count table per operation first, a picture of the
graph impact (Mermaid), problems grouped by cause, warnings, then per operation the changes: alike ones
said once with their records collapsed, the others one collapsible section per record.

GitHub refuses comments over 65,535 characters. Past that, sections are cut between records (every
section closes its own tags, so a cut never leaves HTML open), each cut list says how much it left out,
and the comment ends by saying where the full plan is.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from provena_ops.plan.model import Action, Neighbour, Plan, Summary
from provena_ops.render.common import (
    CATEGORIES,
    SYMBOLS,
    VERBS,
    after_text,
    is_structured,
    pretty,
    short,
    study_deletion,
    title,
)
from provena_ops.render.grouping import ActionGroup, ProblemGroup, group_problems
from provena_ops.render.grouping import sections as operation_sections
from provena_ops.render.mermaid import render_mermaid
from provena_ops.text import plural, visible

GITHUB_COMMENT_LIMIT = 65_535


@dataclass(frozen=True)
class _Item:
    text: str
    records: int = 0  # changing records it shows


@dataclass
class _Section:
    """Opening lines, items (each whole or not at all), closing lines; `more` words what was cut."""

    opening: list[str]
    items: list[_Item] = field(default_factory=list)
    closing: list[str] = field(default_factory=list)
    more: str = "more"

    def render(self, budget: int) -> tuple[str, int, int]:
        """The section within `budget` characters, how many items it had to leave out, and how many
        changing records the kept items show."""
        frame = len("\n".join(self.opening)) + len("\n".join(self.closing)) + 2
        kept: list[_Item] = []
        used = frame
        for number, item in enumerate(self.items):
            remaining = len(self.items) - number - 1
            reserve = len(self._cut_line(remaining)) + 1 if remaining else 0
            if used + len(item.text) + 1 + reserve > budget:
                break
            kept.append(item)
            used += len(item.text) + 1
        left_out = len(self.items) - len(kept)
        lines = [*self.opening, *(item.text for item in kept)]
        if left_out:
            lines.append(self._cut_line(left_out))
        return "\n".join([*lines, *self.closing]), left_out, sum(item.records for item in kept)

    def _cut_line(self, count: int) -> str:
        return f"- … and {count:,} {self.more} (see the full plan)"


def render_markdown(plan: Plan, full_plan_at: str | None = None, limit: int = GITHUB_COMMENT_LIMIT) -> str:
    head = [
        f"### provena-ops plan: {_code(plan.playbook.name)} on {_code(plan.environment.name)} "
        f"({_text(plan.environment.stage)})",
        "",
        f"**{plan.summary.line()}**",
        "",
        *_count_table(plan),
        "",
        *(f"> {_text(note)}" for note in plan.notes),
        *([""] if plan.notes else []),
    ]
    footer = [
        f"<sub>planned by {_text(plan.planned_by)} at {plan.created_at}; "
        f"playbook {plan.playbook.sha256[:19]}</sub>",
        "",
    ]
    sections = _sections(plan)
    full = "\n".join([*head, *(s.render(10**12)[0] for s in sections), *footer])
    if len(full) <= limit:
        return full
    changed = sum(1 for action in plan.actions.heads() if action.outcome == "change")
    budget = limit - len("\n".join([*head, *_notice(full_plan_at, changed, changed), *footer])) - 2
    body: list[str] = []
    shown = 0
    for section in sections:
        text, left_out, records = section.render(budget)
        if len(text) + 1 > budget:
            break
        body.append(text)
        shown += records
        budget -= len(text) + 1
        if left_out:
            break
    return "\n".join([*head, *body, *_notice(full_plan_at, shown, changed), *footer])


def _count_table(plan: Plan) -> list[str]:
    """Per operation, the categories the plan has (update, delete and unchanged always), as in JSON."""
    total = plan.summary
    always = ("to update", "to delete", "unchanged")
    labels = [label for key, label in CATEGORIES if label in always or getattr(total, key)]
    keys = {label: key for key, label in CATEGORIES}
    rows = [
        "| operation | " + " | ".join(labels) + " |",
        "|---|" + "---:|" * len(labels),
    ]
    for target in plan.targets:
        counts = target.summary or Summary()
        cells = [f"{getattr(counts, keys[label]):,}" for label in labels]
        rows.append(f"| `operations[{target.operation}]` {target.op} | " + " | ".join(cells) + " |")
    if len(plan.targets) != 1 or any(p.operation is None for p in plan.problems):
        cells = [f"**{getattr(total, keys[label]):,}**" for label in labels]
        rows.append("| **all** | " + " | ".join(cells) + " |")
    return rows


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
                [_Item(_problems(group)) for group in group_problems(plan.problems)],
                [""],
                more="more problems",
            )
        )
    picture = render_mermaid(plan)
    if picture is not None:
        sections.append(_Section(["#### Graph impact", "", "```mermaid", picture, "```", ""]))
    if plan.warnings:
        sections.append(
            _Section(
                [f"<details><summary>Warnings ({len(plan.warnings):,})</summary>", ""],
                [_Item(f"- {_text(warning)}") for warning in plan.warnings],
                ["", "</details>", ""],
                more="more warnings",
            )
        )
    if plan.skipped:
        sections.append(
            _Section(
                [f"<details><summary>Skipped ({len(plan.skipped):,}: left alone)</summary>", ""],
                [
                    _Item(f"- {_code(skip.record_id)} {_text(skip.display_name or '')}: {_text(skip.reason)}")
                    for skip in plan.skipped
                ],
                ["", "</details>", ""],
                more="more skipped records",
            )
        )
    for section in operation_sections(plan):
        items = [
            _Item(_group(group), group.size)
            if group.grouped
            else _Item(_action(group.first, plan.actions.find), 1)
            for group in section.changes
        ]
        items.extend(
            _Item(f"- `?` **{_text(title(a))}**: {_text(a.why or 'not found')}")
            for a in plan.actions.at(section.not_found)
        )
        if section.unchanged:
            quiet = plan.actions.at(section.unchanged)
            items.append(
                _Item(
                    f"<details><summary>{plural(len(section.unchanged), 'record')} unchanged</summary>\n\n"
                    + "\n".join(f"- `=` {_text(title(a))}: {_text(a.why or a.outcome)}" for a in quiet)
                    + "\n\n</details>"
                )
            )
        sections.append(
            _Section(
                [f"#### {section.heading}: {section.counts()}", ""],
                items,
                [""],
                more="more records of this operation",
            )
        )
    return sections


def _problems(group: ProblemGroup) -> str:
    """A cause once, with the records it holds for (a missing role, a lock, a study's links)."""
    first = group.problems[0]
    lines = [f"- :x: {_where(first.operation)}{_text(first.message)}"]
    alike = group.records[1:]
    if alike:
        listed = ", ".join(f"`{record}`" for record in alike[:LISTED_PROBLEMS])
        more = f" and {len(alike) - LISTED_PROBLEMS:,} more" if len(alike) > LISTED_PROBLEMS else ""
        lines.append(f"  the same for {len(alike):,} more: {_text(listed)}{more}")
    lines.append(f"  _hint: {_text(first.hint)}_")
    return "  \n".join(lines)


LISTED_PROBLEMS = 20  # records named per problem cause
LISTED_MEMBERS = 200  # records listed in a group's collapsed list; the JSON plan has them all


def _group(group: ActionGroup) -> str:
    """Alike changes said once; the records collapsed below, one per line."""
    first, size = group.first, group.size
    noun = "model runs" if first.subtype == "MODEL_RUN" else "studies"
    varying = group.varying()
    change = "; ".join(
        f"<code>{_html(c.field)}</code> <code>{_html(group.before_text(c.field, varying))}</code> → "
        f"<code>{_html(short(c.after))}</code>"
        for c in first.changes
    )
    summary = f"{VERBS[first.kind]} {size:,} {noun}" + (f": {change}" if change else "")
    lines = [f"{RECORD_MARK}{SYMBOLS[first.kind]}</code> {summary}</summary>", ""]
    totals = group.graph_totals()
    if totals is not None:
        nodes, links, shared = totals
        lines.append(
            f"- graph: {plural(nodes, 'node')} and {plural(links, 'link')} removed, "
            f"{plural(shared, 'shared element')} detached, in all"
        )
    if first.reason:
        lines.append(f"- reason: {_text(first.reason)}")
    for prefix, of in (("note:", "side_effects"), (":warning:", "warnings")):
        for said, having in group.gists(of):
            alike = "" if having == size else f"{having:,} of them: "
            lines.append(f"- {prefix} {alike}{_text(said)}")
    lines.extend(_downstream(group.downstream()))
    lines.append(f"- records ({size:,}):")
    for member in group.members(LISTED_MEMBERS):
        particular = [group.particular(member, varying), *(_cut(text, 100) for text in member.side_effects)]
        said = f" — {_text('; '.join(p for p in particular if p))}" if any(particular) else ""
        lines.append(f"  - `{member.record_id}` {_text(member.display_name or '')}".rstrip() + said)
    if size > LISTED_MEMBERS:
        lines.append(f"  - … and {size - LISTED_MEMBERS:,} more (the JSON plan lists them)")
    lines.extend(["", "</details>"])
    return "\n".join(lines)


def _downstream(nodes: list[Neighbour]) -> list[str]:
    if not nodes:
        return []
    lines = [
        f"- :warning: {plural(len(nodes), 'record')} downstream keep their registry records and lose this "
        "provenance:"
    ]
    for node in nodes[:LISTED_MEMBERS]:
        lines.append(f"  - `{node.id}` {node.subtype} {_text(node.name or '')}".rstrip())
    if len(nodes) > LISTED_MEMBERS:
        lines.append(f"  - … and {len(nodes) - LISTED_MEMBERS:,} more (the JSON plan lists them)")
    return lines


def _where(operation: int | None) -> str:
    return f"`operations[{operation}]` " if operation is not None else ""


def _text(text: str) -> str:
    """Plain text as Markdown that renders as written (no stray tags, emphasis or mentions)."""
    return html.escape(visible(text), quote=False).replace("@", "@\u200b")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _html(text: str) -> str:
    """Text inside an HTML element (a <summary>), where Markdown is not read: escaped, shown as written."""
    return html.escape(visible(text), quote=False).replace("@", "@\u200b")


def _code(text: str) -> str:
    """A code span that survives backticks in the value: its fence is longer than any run inside."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    return f"{fence}{text}{fence}" if not longest else f"{fence} {text} {fence}"


def _action(action: Action, find: Callable[[str], Action | None]) -> str:
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
    if action.depends_on and action.kind == "delete_study":
        lines.append(f"- after: {_text(study_deletion(action, find))}")
    elif action.depends_on:
        lines.append(f"- after: {after_text(action.depends_on)}")
    lines.extend(f"- note: {_text(effect)}" for effect in action.side_effects)
    lines.extend(f"- :warning: {_text(warning)}" for warning in action.warnings)
    lines.extend(_downstream(action.downstream))
    if len(lines) == 2:
        lines.append("- no field changes")
    lines.extend(["", "</details>"])
    return "\n".join(lines)
