"""A plan's actions, in memory or kept in a spill file as the JSON the saved plan holds.

An edit of 100,000 model runs is 100,000 actions of ~7 KB each as objects (the record apply submits is
most of it): held in memory, the plan would need ~700 MB. The planner keeps each action as JSON and only
its head (key, kind, outcome, what it waits for), which is all that its later passes and the counts read;
renderers read the actions back one at a time, and the saved plan is written from the stored JSON.
A plan read from a file keeps its actions in memory (pydantic validated them there).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, overload

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from provena_ops.spill import Spill

if TYPE_CHECKING:  # plan.model holds a Plan of these: Action is looked up when first needed
    from provena_ops.plan.model import Action, ActionKind, GraphImpact, Outcome

_INDENT = "    "  # of an action inside the saved plan's "actions" list


class ActionLike(Protocol):
    """What the planner's passes and the counts read of an action: an Action or its head."""

    @property
    def key(self) -> str: ...
    @property
    def kind(self) -> ActionKind: ...
    @property
    def record_id(self) -> str: ...
    @property
    def subtype(self) -> Any: ...
    @property
    def display_name(self) -> str | None: ...
    @property
    def operations(self) -> Sequence[int]: ...
    @property
    def outcome(self) -> Outcome: ...
    @property
    def depends_on(self) -> Sequence[str]: ...
    @property
    def graph(self) -> GraphImpact | None: ...


@dataclass(frozen=True, slots=True)
class ActionHead:
    key: str
    kind: ActionKind
    record_id: str
    subtype: Any
    display_name: str | None
    operations: tuple[int, ...]
    outcome: Outcome
    depends_on: tuple[str, ...]
    graph: GraphImpact | None

    @classmethod
    def of(cls, action: Action) -> ActionHead:
        return cls(
            action.key,
            action.kind,
            action.record_id,
            action.subtype,
            action.display_name,
            tuple(action.operations),
            action.outcome,
            tuple(action.depends_on),
            action.graph,
        )


def saved_json(action: Action) -> str:
    """The action as the saved plan holds it: indented inside the actions list (JSON strings hold no
    newline, so every newline is a line break of the layout)."""
    return _INDENT + action.model_dump_json(indent=2).replace("\n", "\n" + _INDENT)


def _action_model() -> type[Action]:
    from provena_ops.plan.model import Action

    return Action


class Actions(Sequence["Action"]):
    """The actions of a plan, in order. `spilled()` makes an empty one that keeps what is appended out of
    memory; `Actions(list)` holds its actions as they are."""

    def __init__(self, actions: Iterable[Action] = ()) -> None:
        self._items: list[Action] | None = list(actions)
        self._spill: Spill | None = None
        self._where: list[int] = []  # spilled: each action's position in the spill
        self._heads: list[ActionHead] = []
        self._keys: dict[str, int] | None = None

    @classmethod
    def spilled(cls) -> Actions:
        made = cls()
        made._items, made._spill = None, Spill()
        return made

    def append(self, action: Action) -> None:
        self._keys = None
        if self._items is not None:
            self._items.append(action)
            return
        assert self._spill is not None
        self._where.append(self._spill.put(saved_json(action).encode()))
        self._heads.append(ActionHead.of(action))

    def heads(self) -> Sequence[ActionLike]:
        """Every action's head, without reading an action back."""
        return self._items if self._items is not None else self._heads

    def chunks(self) -> Iterator[str]:
        """Each action as `saved_json` gives it."""
        if self._items is not None:
            yield from (saved_json(action) for action in self._items)
            return
        assert self._spill is not None
        for where in self._where:
            yield self._spill.get(where).decode()

    def select(self, positions: Iterable[int]) -> Actions:
        """These actions only (by position), in the order given; a spilled selection shares the file."""
        if self._items is not None:
            return Actions(self._items[position] for position in positions)
        chosen = list(positions)
        made = Actions.spilled()
        made._spill = self._spill
        made._where = [self._where[position] for position in chosen]
        made._heads = [self._heads[position] for position in chosen]
        return made

    def replace(self, position: int, action: Action) -> None:
        """`action` at `position` instead of what is there (same key)."""
        if self._items is not None:
            self._items[position] = action
            return
        assert self._spill is not None
        self._where[position] = self._spill.put(saved_json(action).encode())
        self._heads[position] = ActionHead.of(action)

    def position(self, key: str) -> int | None:
        if self._keys is None:
            self._keys = {head.key: index for index, head in enumerate(self.heads())}
        return self._keys.get(key)

    def find(self, key: str) -> Action | None:
        """The action with this key, if the plan has it."""
        position = self.position(key)
        return None if position is None else self[position]

    def at(self, positions: Iterable[int]) -> Iterator[Action]:
        return (self[position] for position in positions)

    def __len__(self) -> int:
        return len(self._items) if self._items is not None else len(self._where)

    @overload
    def __getitem__(self, index: int) -> Action: ...
    @overload
    def __getitem__(self, index: slice) -> list[Action]: ...
    def __getitem__(self, index: int | slice) -> Action | list[Action]:
        if isinstance(index, slice):
            return [self[position] for position in range(len(self))[index]]
        if self._items is not None:
            return self._items[index]
        assert self._spill is not None
        return _action_model().model_validate_json(self._spill.get(self._where[index]))

    def __iter__(self) -> Iterator[Action]:
        return (self[position] for position in range(len(self)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # (mutable, as a list)

    def __reduce__(self) -> tuple[type[Actions], tuple[list[Action]]]:
        """Copied or pickled as the actions themselves (a spill file cannot be)."""
        return Actions, (list(self),)

    def __repr__(self) -> str:
        if self._items is not None:
            return f"Actions({self._items!r})"
        return f"<{len(self):,} actions, kept in a spill file>"  # (a repr of all would read them all)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> Any:
        """Validated as a list of Action (a saved plan is hostile input); serialized as that list."""
        as_list = handler.generate_schema(list[_action_model()])  # type: ignore[misc]
        from_list = core_schema.no_info_after_validator_function(cls, as_list)
        return core_schema.json_or_python_schema(
            json_schema=from_list,
            python_schema=core_schema.union_schema([core_schema.is_instance_schema(cls), from_list]),
            serialization=core_schema.plain_serializer_function_ser_schema(list, return_schema=as_list),
        )
