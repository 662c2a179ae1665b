"""Plan for people at a terminal: grouped by operation, coloured, unified diffs for structured fields."""

from __future__ import annotations

import difflib

from rich.console import Console

from provena_ops.plan.model import Action, Plan
from provena_ops.render.common import SYMBOLS, after_text, groups, is_structured, pretty, short, shown, title
from provena_ops.text import plural

COLOURS = {"~": "yellow", "-": "red", "+": "green"}


def render_terminal(plan: Plan, console: Console, verbose: bool = False) -> None:
    env = plan.environment
    console.print(
        f"Plan for [bold]{shown(plan.playbook.name)}[/] ({shown(plan.playbook.file)}) on "
        f"[bold]{shown(env.name)}[/] ({shown(env.stage)}), as {shown(plan.planned_by)}"
    )
    for heading, actions in groups(plan):
        console.print()
        console.print(f"[bold]{shown(heading)}[/]")
        quiet = [a for a in actions if a.outcome == "unchanged"]
        for action in actions:
            if action.outcome == "change":
                _action(console, action)
            elif action.outcome == "not_found":  # a typo is not a success: never folded away
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
        for problem in plan.problems:
            where = f"operations[{problem.operation}]: " if problem.operation is not None else ""
            console.print(f"  [red]x[/] {shown(where + problem.message)}")
            console.print(f"    [dim]hint: {shown(problem.hint)}[/]")
    console.print()
    style = "red" if plan.problems else ("yellow" if plan.has_changes else "green")
    console.print(f"[bold {style}]{shown(plan.summary.line())}[/]")


DIFF_LINES = 2_000  # of a structured value, before and after: more is summed up


def _action(console: Console, action: Action) -> None:
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
    if action.depends_on:
        console.print(f"      [dim]after: {shown(after_text(action.depends_on))}[/]")
    for effect in action.side_effects:
        console.print(f"      [dim]note: {shown(effect)}[/]")
    for warning in action.warnings:
        console.print(f"      [yellow]! {shown(warning)}[/]")
