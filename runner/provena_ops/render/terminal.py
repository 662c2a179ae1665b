"""Plan for people at a terminal: grouped by operation, alike changes said once, coloured, unified diffs
for structured fields."""

from __future__ import annotations

import difflib

from rich.console import Console

from provena_ops.plan.model import Action, Plan
from provena_ops.render.common import (
    SYMBOLS,
    VERBS,
    after_text,
    groups,
    is_structured,
    pretty,
    short,
    shown,
    title,
)
from provena_ops.render.grouping import ActionGroup, ProblemGroup, group_actions, group_problems
from provena_ops.text import plural

COLOURS = {"~": "yellow", "-": "red", "+": "green"}


def render_terminal(plan: Plan, console: Console, verbose: bool = False) -> None:
    """The summary first and last; alike changes said once with a count (members on --verbose)."""
    env = plan.environment
    style = "red" if plan.problems else ("yellow" if plan.has_changes else "green")
    console.print(
        f"Plan for [bold]{shown(plan.playbook.name)}[/] ({shown(plan.playbook.file)}) on "
        f"[bold]{shown(env.name)}[/] ({shown(env.stage)}), as {shown(plan.planned_by)}"
    )
    console.print(f"[{style}]{shown(plan.summary.line())}[/]")
    by_key = {action.key: action for action in plan.actions}
    for heading, actions in groups(plan):
        console.print()
        console.print(f"[bold]{shown(heading)}[/]: {counts(actions)}")
        quiet = [a for a in actions if a.outcome == "unchanged"]
        for group in group_actions([a for a in actions if a.outcome == "change"]):
            if group.grouped:
                _group(console, group, verbose)
            else:
                _action(console, group.first, by_key)
        for action in actions:
            if action.outcome == "not_found":  # a typo is not a success: never folded away
                console.print(f"  [magenta]? {shown(title(action))}: {shown(action.why or 'not found')}[/]")
        if quiet and verbose:
            for action in quiet:
                console.print(f"  [dim]= {shown(title(action))}: {shown(action.why or action.outcome)}[/]")
        elif quiet:
            console.print(f"  [dim]= {len(quiet)} unchanged (--verbose lists them)[/]")
    for note in plan.notes:
        console.print()
        console.print(f"[dim]Note: {shown(note)}[/]")
    if plan.warnings:
        console.print()
        console.print("[bold yellow]Warnings[/]")
        for warning in plan.warnings:
            console.print(f"  [yellow]![/] {shown(warning)}")
    if plan.problems:
        console.print()
        console.print("[bold red]Problems (the plan cannot be applied)[/]")
        for problems in group_problems(plan.problems):
            _problems(console, problems, verbose)
    console.print()
    console.print(f"[bold {style}]{shown(plan.summary.line())}[/]")


LISTED = 3  # members of a group named when not --verbose


def _group(console: Console, group: ActionGroup, verbose: bool) -> None:
    first, members = group.first, group.members
    symbol = SYMBOLS[first.kind]
    noun = "model runs" if first.subtype == "MODEL_RUN" else "studies"
    console.print(f"  [{COLOURS[symbol]}]{symbol} {VERBS[first.kind]} {len(members):,} {noun}[/]")
    for change in first.changes:
        console.print(
            f"      {shown(change.field)}: [red]{shown(short(change.before))}[/] -> "
            f"[green]{shown(short(change.after))}[/]"
        )
    impacts = [member.graph for member in members if member.graph is not None]
    if impacts:
        nodes, links = sum(i.nodes_removed for i in impacts), sum(i.links_removed for i in impacts)
        shared = sum(i.node_references_removed + i.link_references_removed for i in impacts)
        console.print(
            f"      graph: {plural(nodes, 'node')} and {plural(links, 'link')} removed, "
            f"{plural(shared, 'shared element')} detached, in all"
        )
    if first.reason:
        console.print(f"      [dim]reason: {shown(first.reason)}[/]")
    for prefix, colour, texts in (
        ("note:", "dim", [m.side_effects for m in members]),
        ("!", "yellow", [m.warnings for m in members]),
    ):
        gists: dict[str, int] = {}
        for texts_of in texts:
            for gist in dict.fromkeys(_gist(text) for text in texts_of):
                gists[gist] = gists.get(gist, 0) + 1
        for gist, having in gists.items():
            alike = "" if having == len(members) else f"{having:,} of them: "
            console.print(f"      [{colour}]{prefix} {alike}{shown(gist)} (--verbose says each)[/]")
    shown_members = members if verbose else members[:LISTED]
    for member in shown_members:
        name = f"  {member.display_name}" if member.display_name else ""
        console.print(f"      {shown(member.record_id)}{shown(name)}")
        if verbose:
            for text in (*member.side_effects, *member.warnings):
                console.print(f"          [dim]{shown(text)}[/]")
    if len(members) > len(shown_members):
        console.print(
            f"      [dim]... and {len(members) - len(shown_members):,} more (--verbose lists them)[/]"
        )


def _gist(text: str) -> str:
    """What a member's note or warning says, less what is particular to it: 'changes study_id' of
    'changes study_id; records downstream of this run: ...', 'user_metadata is cleared' of '... (now {})'."""
    return text.split(";", 1)[0].split(" (", 1)[0]


def _problems(console: Console, group: ProblemGroup, verbose: bool) -> None:
    first = group.problems[0]
    where = f"operations[{first.operation}]: " if first.operation is not None else ""
    console.print(f"  [red]x[/] {shown(where + first.message)}")
    alike = group.records[1:]
    if alike:
        listed = alike if verbose else alike[:5]
        more = (
            f", ... and {len(alike) - len(listed):,} more (--verbose lists them)"
            if len(alike) > len(listed)
            else ""
        )
        console.print(f"    [red]the same for {len(alike):,} more: {shown(', '.join(listed))}{more}[/]")
    console.print(f"    [dim]hint: {shown(first.hint)}[/]")


def counts(actions: list[Action]) -> str:
    """'10 to update, 1 to delete, 2 unchanged' for one operation's actions."""
    tally = dict.fromkeys(COUNTED, 0)
    for action in actions:
        label = {"unchanged": "unchanged", "not_found": "not found"}.get(action.outcome) or (
            "to update" if action.kind == "relink" else f"to {VERBS[action.kind]}"
        )
        tally[label] += 1
    return ", ".join(f"{count:,} {label}" for label, count in tally.items() if count)


COUNTED = ("to update", "to delete", "to relodge", "to restore", "unchanged", "not found")


def _study_deletion(action: Action, by_key: dict[str, Action]) -> str:
    """'9 relinked to 10378.1/1690048, 1 unlinked': what the deletion waits for."""
    relinked: dict[str, int] = {}
    others = 0
    for key in action.depends_on:
        change = (
            next((c for c in by_key[key].changes if c.field == "study_id"), None) if key in by_key else None
        )
        if change is None:
            others += 1
        else:
            target = f"relinked to {change.after}" if change.after else "unlinked"
            relinked[target] = relinked.get(target, 0) + 1
    parts = [f"{count:,} {what}" for what, count in sorted(relinked.items(), key=lambda item: -item[1])]
    if others:
        parts.append(f"{others:,} other action{'s' if others != 1 else ''}")
    return ", ".join(parts)


DIFF_LINES = 2_000  # of a structured value, before and after: more is summed up


def _action(console: Console, action: Action, by_key: dict[str, Action]) -> None:
    symbol = SYMBOLS[action.kind]
    console.print(f"  [{COLOURS[symbol]}]{symbol} {shown(title(action))}[/]")
    for change in action.changes:
        if is_structured(change.before) or is_structured(change.after):
            console.print(f"      {shown(change.field)}:")
            before = pretty(change.before) if change.before is not None else []
            after = pretty(change.after) if change.after is not None else []
            if len(before) + len(after) > DIFF_LINES:  # a value of 300,000 keys is summed up, not diffed
                console.print(
                    f"        [dim]{len(before):,} lines -> {len(after):,} lines (the JSON plan has them)[/]"
                )
                continue
            for line in difflib.unified_diff(before, after, lineterm="", n=2):
                if line.startswith(("---", "+++", "@@")):
                    continue
                colour = "red" if line.startswith("-") else "green" if line.startswith("+") else "dim"
                console.print(f"        [{colour}]{shown(line)}[/]")
        else:
            console.print(
                f"      {shown(change.field)}: [red]{shown(short(change.before))}[/] -> "
                f"[green]{shown(short(change.after))}[/]"
            )
    if action.graph is not None:
        graph = action.graph
        shared = graph.node_references_removed + graph.link_references_removed
        removed = f"{plural(graph.nodes_removed, 'node')} and {plural(graph.links_removed, 'link')}"
        console.print(f"      graph: {removed} removed, {plural(shared, 'shared element')} detached")
    if action.reason:
        console.print(f"      [dim]reason: {shown(action.reason)}[/]")
    if action.depends_on and action.kind == "delete_study":
        console.print(f"      [dim]after: {shown(_study_deletion(action, by_key))}[/]")
    elif action.depends_on:
        console.print(f"      [dim]after: {shown(after_text(action.depends_on))}[/]")
    for effect in action.side_effects:
        console.print(f"      [dim]note: {shown(effect)}[/]")
    for warning in action.warnings:
        console.print(f"      [yellow]! {shown(warning)}[/]")
