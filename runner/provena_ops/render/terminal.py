"""Plan for people at a terminal: grouped by operation, alike changes said once, coloured, unified diffs
for structured fields."""

from __future__ import annotations

import difflib
from collections.abc import Callable

from rich.console import Console

from provena_ops.plan.model import Action, Neighbour, Plan
from provena_ops.render.common import (
    SYMBOLS,
    VERBS,
    after_text,
    is_structured,
    pretty,
    short,
    shown,
    study_deletion,
    title,
)
from provena_ops.render.grouping import ActionGroup, ProblemGroup, group_problems, sections
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
    for section in sections(plan):
        console.print()
        console.print(f"[bold]{shown(section.heading)}[/]: {section.counts()}")
        for group in section.changes:
            if group.grouped:
                _group(console, group, verbose)
            else:
                _action(console, group.first, plan.actions.find, verbose)
        for action in plan.actions.at(section.not_found):  # a typo is not a success: never folded away
            console.print(f"  [magenta]? {shown(title(action))}: {shown(action.why or 'not found')}[/]")
        if section.unchanged and verbose:
            for action in plan.actions.at(section.unchanged):
                console.print(f"  [dim]= {shown(title(action))}: {shown(action.why or action.outcome)}[/]")
        elif section.unchanged:
            console.print(f"  [dim]= {len(section.unchanged)} unchanged (--verbose lists them)[/]")
    for note in plan.notes:
        console.print()
        console.print(f"[dim]Note: {shown(note)}[/]")
    if plan.warnings:
        console.print()
        console.print("[bold yellow]Warnings[/]")
        for warning in plan.warnings:
            console.print(f"  [yellow]![/] {shown(warning)}")
    if plan.skipped:
        console.print()
        console.print(f"[bold]Skipped[/] ({len(plan.skipped):,}: left alone, not changed)")
        for skip in plan.skipped if verbose else plan.skipped[:SKIPS_LISTED]:
            name = f"  {skip.display_name}" if skip.display_name else ""
            console.print(f"  [cyan]-[/] {shown(skip.record_id)}{shown(name)}: {shown(skip.reason)}")
        if not verbose and len(plan.skipped) > SKIPS_LISTED:
            console.print(f"  [dim]and {len(plan.skipped) - SKIPS_LISTED:,} more (--verbose lists them)[/]")
    if plan.problems:
        console.print()
        console.print("[bold red]Problems (the plan cannot be applied)[/]")
        for problems in group_problems(plan.problems):
            _problems(console, problems, verbose)
    console.print()
    console.print(f"[bold {style}]{shown(plan.summary.line())}[/]")


LISTED = 3  # members of a group named when not --verbose
SKIPS_LISTED = 10


def _group(console: Console, group: ActionGroup, verbose: bool) -> None:
    first, size = group.first, group.size
    symbol = SYMBOLS[first.kind]
    noun = "model runs" if first.subtype == "MODEL_RUN" else "studies"
    console.print(f"  [{COLOURS[symbol]}]{symbol} {VERBS[first.kind]} {size:,} {noun}[/]")
    varying = group.varying()
    for change in first.changes:
        console.print(
            f"      {shown(change.field)}: [red]{shown(group.before_text(change.field, varying))}[/] -> "
            f"[green]{shown(short(change.after))}[/]"
        )
    totals = group.graph_totals()
    if totals is not None:
        nodes, links, shared = totals
        console.print(
            f"      graph: {plural(nodes, 'node')} and {plural(links, 'link')} removed, "
            f"{plural(shared, 'shared element')} detached, in all"
        )
    if first.reason:
        console.print(f"      [dim]reason: {shown(first.reason)}[/]")
    for prefix, colour, of in (("note:", "dim", "side_effects"), ("!", "yellow", "warnings")):
        for said, having in group.gists(of):
            alike = "" if having == size else f"{having:,} of them: "
            console.print(f"      [{colour}]{prefix} {alike}{shown(said)} (--verbose says each)[/]")
    _downstream(console, group.downstream(), verbose, "      ")
    listed = size if verbose else min(size, LISTED)
    for member in group.members(listed):
        name = f"  {member.display_name}" if member.display_name else ""
        was = group.particular(member, varying) if verbose else ""
        console.print(
            f"      {shown(member.record_id)}{shown(name)}" + (f"  [dim]({shown(was)})[/]" if was else "")
        )
        if verbose:
            for text in (*member.side_effects, *member.warnings):
                console.print(f"          [dim]{shown(text)}[/]")
    if size > listed:
        console.print(f"      [dim]... and {size - listed:,} more (--verbose lists them)[/]")


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


DIFF_LINES = 2_000  # of a structured value, before and after: more is summed up


def _action(console: Console, action: Action, find: Callable[[str], Action | None], verbose: bool) -> None:
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
        console.print(f"      [dim]after: {shown(study_deletion(action, find))}[/]")
    elif action.depends_on:
        console.print(f"      [dim]after: {shown(after_text(action.depends_on))}[/]")
    for effect in action.side_effects:
        console.print(f"      [dim]note: {shown(effect)}[/]")
    for warning in action.warnings:
        console.print(f"      [yellow]! {shown(warning)}[/]")
    _downstream(console, action.downstream, verbose, "      ")


DOWNSTREAM_LISTED = 5  # downstream records named when not --verbose


def _downstream(console: Console, nodes: list[Neighbour], verbose: bool, indent: str) -> None:
    """The records that used what is deleted, one per line: they stay, and lose that provenance."""
    if not nodes:
        return
    console.print(
        f"{indent}[yellow]! {plural(len(nodes), 'record')} downstream keep their registry records and "
        "lose this provenance:[/]"
    )
    listed = nodes if verbose else nodes[:DOWNSTREAM_LISTED]
    for node in listed:
        name = f"  {node.name}" if node.name else ""
        console.print(f"{indent}    {shown(node.id)}  {shown(node.subtype)}{shown(name)}")
    if len(nodes) > len(listed):
        console.print(f"{indent}    [dim]... and {len(nodes) - len(listed):,} more (--verbose lists them)[/]")
