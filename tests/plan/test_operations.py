"""Each operation type has one home: its model says what it names and what it plans, `COLLECTORS` plans
it, `Executor.steps` carries out each action kind. A new operation missing from any of them fails here."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

from provena_ops.apply.executor import Executor
from provena_ops.plan.collect import COLLECTORS
from provena_ops.plan.model import ActionKind, Plan
from provena_ops.playbook.model import OPERATION_NAMES, Operation, OperationModel, Restore
from provena_ops.render.common import SYMBOLS, VERBS

OPERATION_TYPES: tuple[type[OperationModel], ...] = get_args(get_args(Operation)[0])
ACTION_KINDS = set(get_args(ActionKind))
GOLDEN = Path(__file__).parent / "golden"


def test_every_operation_type_is_planned_by_its_own_collector() -> None:
    """A restore is planned on its own (plan/restores.py): it is alone in its playbook, and restores
    records to images rather than collecting edits to merge."""
    assert set(COLLECTORS) == set(OPERATION_TYPES) - {Restore}
    assert len(set(COLLECTORS.values())) == len(COLLECTORS)


def test_every_operation_names_its_op_and_plans_known_action_kinds() -> None:
    ops: list[Any] = [model.model_fields["op"].annotation for model in OPERATION_TYPES]
    assert [get_args(op)[0] for op in ops] == list(OPERATION_NAMES)
    for model in OPERATION_TYPES:
        assert model.plans and set(model.plans) <= ACTION_KINDS, model.__name__
    assert set().union(*(model.plans for model in OPERATION_TYPES)) == ACTION_KINDS


def test_every_action_kind_has_an_execution_step_and_a_rendering() -> None:
    # The steps table is built per executor (bound methods); one without a connection is enough to read it.
    plan = Plan.model_validate_json((GOLDEN / "what-is-already-so-is-unchanged" / "plan.json").read_text())
    executor = Executor(None, plan, None)  # type: ignore[arg-type]
    assert set(executor.steps) == ACTION_KINDS
    assert set(SYMBOLS) == ACTION_KINDS and set(VERBS) == ACTION_KINDS
