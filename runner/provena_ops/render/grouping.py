"""Large plans at a glance: actions that make the same change, and problems with the same cause, are
said once with a count, so a 500-run study deletion reads in a screen; the members are listed on demand."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from provena_ops.plan.model import Action, Neighbour, Problem
from provena_ops.render.common import gist, short

GROUP_AT_LEAST = 3  # fewer alike actions are shown one by one


@dataclass
class ActionGroup:
    """Actions of one kind making the same field changes for the same reason."""

    members: list[Action] = field(default_factory=list)

    @property
    def first(self) -> Action:
        return self.members[0]

    @property
    def grouped(self) -> bool:
        return len(self.members) >= GROUP_AT_LEAST

    def gists(self, of: str) -> list[tuple[str, int]]:
        """What the members' notes (`side_effects`) or `warnings` say, less what is particular to each
        member, with how many members say it."""
        having: dict[str, int] = {}
        for member in self.members:
            for said in dict.fromkeys(gist(text) for text in getattr(member, of)):
                having[said] = having.get(said, 0) + 1
        return list(having.items())

    def graph_totals(self) -> tuple[int, int, int] | None:
        """Nodes removed, links removed and shared elements detached by the members, in all."""
        impacts = [member.graph for member in self.members if member.graph is not None]
        if not impacts:
            return None
        return (
            sum(i.nodes_removed for i in impacts),
            sum(i.links_removed for i in impacts),
            sum(i.node_references_removed + i.link_references_removed for i in impacts),
        )

    def varying(self) -> set[str]:
        """The fields whose values before differ between members (each member then says its own)."""
        values: dict[str, set[str]] = {}
        for member in self.members:
            for change in member.changes:
                values.setdefault(change.field, set()).add(
                    json.dumps(change.before, sort_keys=True, default=str)
                )
        return {name for name, seen in values.items() if len(seen) > 1}

    def before_text(self, field: str, varying: set[str]) -> str:
        if field not in varying:
            return short(next(c.before for c in self.first.changes if c.field == field))
        return "(values vary: each record's is listed)"

    def particular(self, member: Action, varying: set[str]) -> str:
        """What a member had before, where members differ: 'description was 'Demo model run 7''."""
        return "; ".join(f"{c.field} was {short(c.before, 60)}" for c in member.changes if c.field in varying)

    def downstream(self) -> list[Neighbour]:
        """The records downstream of the members, each once."""
        return list({node.id: node for member in self.members for node in member.downstream}.values())


def _signature(action: Action) -> str:
    """What makes two actions the same change to a reviewer: kind, the fields and the values they get,
    reason, and what else they do (not which record, its name, the values it had, or the records around
    it: 368 descriptions set to one text are one change, whatever each said before)."""
    changes = [(c.field, c.after) for c in action.changes]
    return json.dumps(
        [
            action.kind,
            changes,
            action.reason,
            action.stale_link_to,
            action.depends_on and len(action.depends_on),
        ],
        sort_keys=True,
        default=str,
    )


def group_actions(actions: list[Action]) -> list[ActionGroup]:
    """Change actions grouped by signature, in the order each group's first member comes. Deletions of
    model runs are alike whatever their graph impact (summed per group)."""
    groups: dict[str, ActionGroup] = {}
    for action in actions:
        key = action.kind if action.kind == "delete_model_run" else _signature(action)
        groups.setdefault(key, ActionGroup()).members.append(action)
    ordered: list[ActionGroup] = []
    for group in groups.values():
        if group.grouped:
            ordered.append(group)
        else:
            ordered.extend(ActionGroup([member]) for member in group.members)
    position = {action.key: index for index, action in enumerate(actions)}
    return sorted(ordered, key=lambda group: position[group.first.key])


@dataclass
class ProblemGroup:
    """Problems saying the same thing of different records (a missing role, a lock, one study's links)."""

    problems: list[Problem] = field(default_factory=list)

    @property
    def records(self) -> list[str]:
        return [problem.record_id for problem in self.problems if problem.record_id]


def group_problems(problems: list[Problem]) -> list[ProblemGroup]:
    groups: dict[tuple[int | None, str, str], ProblemGroup] = {}
    for problem in problems:
        cause = (
            problem.message.replace(problem.record_id, "<record>") if problem.record_id else problem.message
        )
        groups.setdefault((problem.operation, cause, problem.hint), ProblemGroup()).problems.append(problem)
    return list(groups.values())
