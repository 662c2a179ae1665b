"""Plan as a pull-request comment: a count table first, then collapsible per-operation details.

GitHub refuses comments over 65,535 characters; past that the details are cut at an action boundary
and the comment says so, and where the full plan is.
"""

from __future__ import annotations

from ..plan import Action, Plan
from .common import SYMBOLS, after_text, groups, is_structured, pretty, short, title

GITHUB_COMMENT_LIMIT = 65_535


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
        f"| unchanged | {summary.unchanged + summary.already_absent} |",
        f"| problems | {summary.problems} |",
        "",
        f"**{summary.line()}**",
        "",
    ]
    if plan.problems:
        head.append("#### Problems")
        head.extend(f"- :x: {_where(p.operation)}{p.message}  \n  _hint: {p.hint}_" for p in plan.problems)
        head.append("")
    if plan.warnings:
        head.append(f"<details><summary>Warnings ({len(plan.warnings)})</summary>\n")
        head.extend(f"- {warning}" for warning in plan.warnings)
        head.extend(["", "</details>", ""])
    body: list[str] = []
    for heading, actions in groups(plan):
        changing = [a for a in actions if a.outcome == "change"]
        body.append(
            f"<details><summary>{heading}: {len(changing)} change(s), "
            f"{len(actions) - len(changing)} unchanged</summary>\n"
        )
        for action in actions:
            body.extend(_action(action))
        body.extend(["", "</details>", ""])
    footer = [
        f"<sub>planned by {plan.planned_by} at {plan.created_at}; playbook {plan.playbook.sha256[:19]}</sub>",
        "",
    ]
    return _fit(head, body, footer, full_plan_at, limit)


def _where(operation: int | None) -> str:
    return f"`operations[{operation}]` " if operation is not None else ""


def _action(action: Action) -> list[str]:
    if action.outcome != "change":
        return [f"- `=` {title(action)}: {action.why or action.outcome}"]
    lines = [f"- `{SYMBOLS[action.kind]}` **{title(action)}**"]
    for change in action.changes:
        if is_structured(change.before) or is_structured(change.after):
            lines.append(f"  - `{change.field}`:")
            lines.append("    ```diff")
            lines.extend(
                f"    - {line}" for line in (pretty(change.before) if change.before is not None else [])
            )
            lines.extend(
                f"    + {line}" for line in (pretty(change.after) if change.after is not None else [])
            )
            lines.append("    ```")
        else:
            lines.append(f"  - `{change.field}`: `{short(change.before)}` → `{short(change.after)}`")
    if action.graph is not None:
        lines.append(
            f"  - graph: {action.graph.nodes_removed} nodes, {action.graph.links_removed} links removed"
        )
    if action.reason:
        lines.append(f"  - reason: {action.reason}")
    if action.depends_on:
        lines.append(f"  - after: {after_text(action.depends_on)}")
    lines.extend(f"  - :warning: {warning}" for warning in action.warnings)
    return lines


def _fit(head: list[str], body: list[str], footer: list[str], full_plan_at: str | None, limit: int) -> str:
    text = "\n".join([*head, *body, *footer])
    if len(text) <= limit:
        return text
    where = f"`{full_plan_at}`" if full_plan_at else "the plan saved with `provena-ops plan --out`"
    notice = [
        "",
        "</details>",
        "",
        f"> :scissors: **Truncated**: the plan is longer than a GitHub comment allows. "
        f"The full plan is in {where}.",
        "",
    ]
    budget = limit - len("\n".join([*head, *notice, *footer])) - 2
    kept: list[str] = []
    used = 0
    for line in body:
        if used + len(line) + 1 > budget:
            break
        kept.append(line)
        used += len(line) + 1
    while kept and kept[-1].startswith("  "):  # never end inside an action's details
        kept.pop()
    return "\n".join([*head, *kept, *notice, *footer])
