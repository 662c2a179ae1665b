"""A plan's actions are kept in a spill file while it is made: what is read back, rendered and saved is
exactly what was planned, whether the actions sit in memory or in the file."""

from __future__ import annotations

import asyncio
import copy
import io
import pickle

from rich.console import Console

from provena_ops.plan.actions import Actions, saved_json
from provena_ops.plan.model import Action, FieldChange, Plan
from provena_ops.render.json_format import render_json
from provena_ops.render.markdown import render_markdown
from provena_ops.render.terminal import render_terminal
from provena_ops.signals import run_async
from provena_ops.spill import FLUSH_BYTES
from tests.plan.test_renderings import golden_plan  # noqa: F401  (the fixture)


def edit(number: int) -> Action:
    return Action(
        key=f"update 10378.1/{number}",
        kind="update",
        record_id=f"10378.1/{number}",
        subtype="MODEL_RUN",
        display_name=f"run {number}",
        operations=[number % 3],
        outcome="change" if number % 7 else "unchanged",
        changes=[FieldChange(field="description", before=f"was {number}", after="now")],
        record={"display_name": f"run {number}", "description": "now", "notes": "x" * 3_000},
        depends_on=[f"update 10378.1/{number - 1}"] if number else [],
    )


def test_actions_come_back_as_appended_from_memory_and_from_the_file() -> None:
    planned = [edit(number) for number in range(800)]  # ~2.5 MB of JSON: most of it reaches the file
    spilled = Actions.spilled()
    for action in planned:
        spilled.append(action)
    assert sum(len(saved_json(action)) for action in planned) > 2 * FLUSH_BYTES
    assert len(spilled) == 800 and spilled == planned and list(spilled) == planned
    assert spilled[0] == planned[0] and spilled[-1] == planned[-1] and spilled[10:13] == planned[10:13]
    assert [(h.key, h.outcome, tuple(h.depends_on)) for h in spilled.heads()] == [
        (a.key, a.outcome, tuple(a.depends_on)) for a in planned
    ]
    assert list(spilled.chunks()) == list(Actions(planned).chunks())
    assert spilled.find("update 10378.1/512") == planned[512] and spilled.find("update 10378.1/x") is None
    chosen = spilled.select([700, 3])
    assert list(chosen) == [planned[700], planned[3]] and chosen.find("update 10378.1/3") == planned[3]
    changed = planned[5].model_copy(update={"depends_on": []})
    spilled.replace(5, changed)
    assert spilled[5] == changed and spilled.heads()[5].depends_on == () and chosen[1] == planned[3]
    assert "800 actions" in repr(spilled)  # not a read of every action
    assert copy.deepcopy(spilled) == list(spilled) == pickle.loads(pickle.dumps(spilled))


def test_a_plan_renders_and_saves_alike_from_memory_and_from_the_file(golden_plan: Plan) -> None:  # noqa: F811
    assert "spill file" in repr(golden_plan.actions)  # as the planner made it
    in_memory = golden_plan.model_copy(update={"actions": Actions(list(golden_plan.actions))})

    def terminal(plan: Plan, verbose: bool) -> str:
        out = io.StringIO()
        render_terminal(plan, Console(file=out, width=120, color_system=None), verbose=verbose)
        return out.getvalue()

    for render in (render_json, render_markdown, lambda p: terminal(p, False), lambda p: terminal(p, True)):
        assert render(golden_plan) == render(in_memory)
    assert render_json(golden_plan) == golden_plan.model_dump_json(indent=2) + "\n"
    assert Plan.model_validate_json(render_json(golden_plan)) == in_memory == golden_plan


def test_the_result_of_async_work_is_handed_over_without_its_repr() -> None:
    """Python 3.11's asyncio.run formatted the finished task, result and all: a 100,000-action plan."""

    formatted: list[str] = []

    class Huge:
        def __repr__(self) -> str:
            formatted.append("repr")
            return "Huge()"

    async def work() -> Huge:
        await asyncio.sleep(0)
        return Huge()

    assert isinstance(run_async(work()), Huge)
    assert formatted == []
