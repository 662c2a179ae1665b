"""Large plans at a glance: actions that make the same change, and problems with the same cause, are
said once with a count, so a 500-run study deletion reads in a screen; the members are listed on demand."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

from provena_ops.plan.actions import ActionLike, Actions
from provena_ops.plan.model import Action, Neighbour, Plan, Problem, summarise
from provena_ops.render.common import category_counts, gist, short

GROUP_AT_LEAST = 3  # fewer alike actions are shown one by one


@dataclass
class ActionGroup:
    """Actions of one kind making the same field changes for the same reason: what is said of them all,
    gathered as they are read. A plan keeps its actions out of memory (100,000 of them are ~700 MB as
    objects), so a group holds where its members are and reads them back only to list them."""

    source: Actions
    positions: list[int] = field(default_factory=list)
    _before: dict[str, str] = field(default_factory=dict)  # per field, the first member's value before
    _varying: set[str] = field(default_factory=set)
    _graph: list[int] | None = None
    _gists: dict[str, dict[str, int]] = field(default_factory=lambda: {"side_effects": {}, "warnings": {}})
    _downstream: dict[str, Neighbour] = field(default_factory=dict)

    def add(self, position: int, member: Action) -> None:
        self.positions.append(position)
        for change in member.changes:
            before = json.dumps(change.before, sort_keys=True, default=str)
            if self._before.setdefault(change.field, before) != before:
                self._varying.add(change.field)
        if member.graph is not None:
            impact = member.graph
            shared = impact.node_references_removed + impact.link_references_removed
            totals = self._graph or [0, 0, 0]
            self._graph = [
                totals[0] + impact.nodes_removed,
                totals[1] + impact.links_removed,
                totals[2] + shared,
            ]
        for of, having in self._gists.items():
            for said in dict.fromkeys(gist(text) for text in getattr(member, of)):
                having[said] = having.get(said, 0) + 1
        for node in member.downstream:
            self._downstream.setdefault(node.id, node)

    @property
    def size(self) -> int:
        return len(self.positions)

    @property
    def first(self) -> Action:
        return self.source[self.positions[0]]

    @property
    def grouped(self) -> bool:
        return self.size >= GROUP_AT_LEAST

    def members(self, at_most: int | None = None) -> Iterator[Action]:
        """The members, read back in plan order (the first `at_most` of them)."""
        return self.source.at(self.positions[:at_most])

    def gists(self, of: str) -> list[tuple[str, int]]:
        """What the members' notes (`side_effects`) or `warnings` say, less what is particular to each
        member, with how many members say it."""
        return list(self._gists[of].items())

    def graph_totals(self) -> tuple[int, int, int] | None:
        """Nodes removed, links removed and shared elements detached by the members, in all."""
        return None if self._graph is None else (self._graph[0], self._graph[1], self._graph[2])

    def varying(self) -> set[str]:
        """The fields whose values before differ between members (each member then says its own)."""
        return set(self._varying)

    def before_text(self, field: str, varying: set[str]) -> str:
        if field not in varying:
            return short(json.loads(self._before[field]))
        return "(values vary: each record's is listed)"

    def particular(self, member: Action, varying: set[str]) -> str:
        """What a member had before, where members differ: 'description was 'Demo model run 7''."""
        return "; ".join(f"{c.field} was {short(c.before, 60)}" for c in member.changes if c.field in varying)

    def downstream(self) -> list[Neighbour]:
        """The records downstream of the members, each once."""
        return list(self._downstream.values())


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


@dataclass
class Section:
    """One operation's actions (those it was the first to ask for): the changes grouped, and where the
    unchanged and not-found ones are."""

    heading: str
    heads: list[ActionLike] = field(default_factory=list)
    changes: list[ActionGroup] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)
    not_found: list[int] = field(default_factory=list)

    def counts(self) -> str:
        """'10 to update, 1 to delete, 2 unchanged'."""
        tally = category_counts(summarise(self.heads, []))
        return ", ".join(f"{count:,} {label}" for label, count in tally) or "nothing"


def sections(plan: Plan) -> list[Section]:
    """The plan's actions under the first operation that asked for them, in playbook order, in one read
    of the actions: change actions grouped by signature, each group where its first member comes.
    Deletions of model runs are alike whatever their graph impact (summed per group)."""
    titles = {target.operation: f"operations[{target.operation}] {target.op}" for target in plan.targets}
    found: dict[int, Section] = {}
    alike: dict[int, dict[str, ActionGroup]] = {}
    source = plan.actions
    for position, head in enumerate(source.heads()):
        index = head.operations[0]
        section = found.get(index)
        if section is None:
            section = found[index] = Section(titles.get(index, f"operations[{index}]"))
            alike[index] = {}
        section.heads.append(head)
        if head.outcome == "unchanged":
            section.unchanged.append(position)
        elif head.outcome == "not_found":
            section.not_found.append(position)
        else:
            action = source[position]
            key = action.kind if action.kind == "delete_model_run" else _signature(action)
            alike[index].setdefault(key, ActionGroup(source)).add(position, action)
    for index, section in found.items():
        for group in alike[index].values():
            if group.grouped:
                section.changes.append(group)
            else:
                section.changes.extend(ActionGroup(source, [position]) for position in group.positions)
        section.changes.sort(key=lambda group: group.positions[0])
    return [found[index] for index in sorted(found)]


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
