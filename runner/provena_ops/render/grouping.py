"""Large plans at a glance: actions that make the same change, and problems with the same cause, are
said once with a count, so a 500-run study deletion reads in a screen; the members are listed on demand."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from provena_ops.plan.model import Action, Problem

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


def _signature(action: Action) -> str:
    """What makes two actions the same change to a reviewer: kind, fields before and after, reason,
    and what else they do (not which record, its name, or the records around it)."""
    changes = [(c.field, c.before, c.after) for c in action.changes]
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
