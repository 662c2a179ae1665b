"""Turn pydantic's validation errors into diagnostics that point at the user's file, in the user's words.

Pydantic reports locations in model terms (union tags, `[key]` markers, fields under a string that a
validator expanded); this module walks each location through the actual data to find the key path and
position the user wrote, and through the model types to know which keys would have been accepted.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Collection
from enum import Enum
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from .diagnostics import Diagnostic, Path, did_you_mean, format_path, one_of
from .model import HANDLE_EXAMPLE, HANDLE_PATTERN, OPERATION_NAMES
from .yaml_source import Position, SourceMap

_TYPE_NAMES = {
    "string_type": "a string",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
}


def diagnostics_from(
    error: ValidationError,
    root: type[BaseModel],
    data: Any,
    source: SourceMap,
    skip: Collection[Path] = (),
) -> list[Diagnostic]:
    """One diagnostic per pydantic error, deduplicated, skipping paths already reported elsewhere."""
    seen: set[tuple[str, str]] = set()
    found: list[Diagnostic] = []
    for details in error.errors(include_url=False):
        diagnostic = _diagnostic(details, root, data, source)
        if diagnostic is None or any(_within(_path_of(details, data), bad) for bad in skip):
            continue
        key = (diagnostic.path, diagnostic.message)
        if key not in seen:
            seen.add(key)
            found.append(diagnostic)
    return found


def _within(path: Path, ancestor: Path) -> bool:
    return path[: len(ancestor)] == ancestor


def _path_of(details: ErrorDetails, data: Any) -> Path:
    return _walk(details["loc"], data)[0]


def _walk(loc: tuple[int | str, ...], data: Any) -> tuple[Path, Any, tuple[int | str, ...]]:
    """Follow a pydantic location through the data: (user path, value reached, unconsumed parts)."""
    path: list[str | int] = []
    current = data
    for index, part in enumerate(loc):
        if _has(current, part):
            path.append(part)
            current = current[part]
        elif isinstance(current, dict) and (part == current.get("op") or part == "[key]"):
            continue  # a union tag or pydantic's marker for a dict key: no node in the file
        else:
            return tuple(path), current, tuple(loc[index:])
    return tuple(path), current, ()


def _has(container: Any, part: int | str) -> bool:
    if isinstance(container, dict):
        return isinstance(part, str) and part in container
    return isinstance(container, list) and isinstance(part, int) and 0 <= part < len(container)


def _diagnostic(
    details: ErrorDetails, root: type[BaseModel], data: Any, source: SourceMap
) -> Diagnostic | None:
    kind = details["type"]
    loc = details["loc"]
    path, value, rest = _walk(loc, data)
    position = source.locate(path)
    ctx = details.get("ctx", {})

    def make(
        message: str, expected: str, hint: str, at: Path = path, where: Position | None = None
    ) -> Diagnostic:
        spot = where or position
        return Diagnostic(
            file=source.file,
            line=spot.line if spot else None,
            column=spot.column if spot else None,
            path=format_path(at),
            message=message,
            expected=expected,
            hint=hint,
        )

    if kind == "extra_forbidden":
        key = str(path[-1]) if path else str(loc[-1])
        allowed = _allowed_keys(root, loc[:-1])
        suggestion = did_you_mean(key, allowed)
        return make(
            f"unknown key '{key}'",
            f"one of the keys {one_of(allowed)}" if allowed else "no further keys",
            f"did you mean '{suggestion}'?"
            if suggestion
            else "remove it, or check the documentation in docs/playbooks.md",
            where=source.locate_key(path),
        )
    if kind == "missing":
        missing = str(rest[-1]) if rest else str(loc[-1])
        description = _field_description(root, loc)
        return make(
            f"missing required key '{missing}'",
            f"`{missing}:` here" + (f" ({description})" if description else ""),
            f"add `{missing}: ...` to this mapping",
            at=(*path, missing),
        )
    if kind == "union_tag_invalid":
        tag = str(ctx.get("tag", value.get("op") if isinstance(value, dict) else ""))
        suggestion = did_you_mean(tag, OPERATION_NAMES)
        return make(
            f"unknown operation '{tag}'",
            f"op: {one_of(OPERATION_NAMES)}",
            f"did you mean '{suggestion}'?"
            if suggestion
            else "see docs/playbooks.md for what each operation does",
            at=(*path, "op"),
            where=source.locate((*path, "op")),
        )
    if kind == "union_tag_not_found":
        return make(
            "this operation has no 'op' key saying what it does",
            f"op: {one_of(OPERATION_NAMES)}",
            "start each operation with `- op: <operation>`",
        )
    if kind == "literal_error" and loc == ("version",):
        return make(
            f"unsupported playbook version {value!r}",
            "version: 1",
            "this provena-ops reads playbook format version 1; write `version: 1`",
        )
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == HANDLE_PATTERN:
        return make(
            f"{value!r} is not a Provena handle id",
            f"a handle id such as {HANDLE_EXAMPLE}",
            "copy the id from the record's page in Provena; to name a record by title use `display_name:`",
        )
    if kind == "enum":
        allowed = [item.strip("'") for item in str(ctx.get("expected", "")).replace(" or ", ", ").split(", ")]
        suggestion = did_you_mean(str(value), allowed)
        return make(
            f"{value!r} is not one of the allowed values",
            one_of(allowed),
            f"did you mean '{suggestion}'?" if suggestion else f"use one of {one_of(allowed)}",
        )
    if kind == "value_error":
        message = str(ctx.get("error", details["msg"]))
        if "exactly one way" in message:
            ways = message.partition("(")[2].partition(")")[0]
            return make(message, f"a handle id, or a mapping with one of: {ways}", _value_hint(message))
        return make(message, _field_description(root, loc) or "a valid value", _value_hint(message))
    if kind in ("too_short", "string_too_short"):
        what = "list" if kind == "too_short" else "text"
        return make(
            f"this {what} must not be empty",
            "at least one item" if what == "list" else "non-empty text",
            "fill it in, or remove the key if it is optional",
        )
    if kind in _TYPE_NAMES:
        expected = _TYPE_NAMES[kind]
        hint = "change the value to " + expected
        written = source.plain_non_strings.get(path)
        if written is not None and kind == "string_type":
            hint = f'quote it ("{written}"): YAML reads an unquoted {written} as {_describe(value)}'

        return make(f"expected {expected}, found {_describe(value)}", expected, hint)
    return make(details["msg"], _field_description(root, loc) or "a valid value", "see docs/playbooks.md")


def _value_hint(message: str) -> str:
    if "exactly one way" in message:
        return "write a handle id, or a mapping with one key such as `display_name: ...`"
    if "replaced but not removed" in message:
        return (
            "give another record's handle id instead of null, or leave the key out to keep the current value"
        )
    return "correct the value as described"


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if value is None:
        return "nothing (null)"
    return f"the {type(value).__name__} {value!r}"


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is typing.Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            options = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(options) != 1:
                return annotation
            annotation = options[0]
        else:
            return annotation


def _type_at(root: type[BaseModel], loc: tuple[int | str, ...]) -> Any:
    current: Any = root
    for part in loc:
        current = _unwrap(current)
        origin = get_origin(current)
        if origin in (typing.Union, types.UnionType):
            members = [member for member in get_args(current) if _op_of(member) == part]
            if members:
                current = members[0]
                continue
            return None
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        elif origin is list and isinstance(part, int):
            current = get_args(current)[0]
        elif origin is dict:
            current = get_args(current)[0 if part == "[key]" else 1]
        else:
            return None
    return _unwrap(current)


def _op_of(member: Any) -> str | None:
    if isinstance(member, type) and issubclass(member, BaseModel) and "op" in member.model_fields:
        args = get_args(member.model_fields["op"].annotation)
        return str(args[0]) if args else None
    return None


def _allowed_keys(root: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    model = _type_at(root, loc)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _field_description(root: type[BaseModel], loc: tuple[int | str, ...]) -> str | None:
    if not loc:
        return None
    parent = _type_at(root, loc[:-1])
    if isinstance(parent, type) and issubclass(parent, BaseModel):
        field = parent.model_fields.get(str(loc[-1]))
        if field is not None:
            if field.description:
                return field.description.rstrip(".")
            annotation = _unwrap(field.annotation)
            if isinstance(annotation, type) and issubclass(annotation, Enum):
                return one_of([str(item.value) for item in annotation])
            if get_origin(annotation) is Literal:
                return one_of([str(arg) for arg in get_args(annotation)])
    return None
