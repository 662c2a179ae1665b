"""Turn pydantic's validation errors into diagnostics that point at the user's file, in the user's words.

Pydantic reports locations in model terms (union tags, `[key]` markers, fields under a string that a
validator expanded); this module walks each location through the actual data to find the key path and
position the user wrote, and through the model types to know which keys would have been accepted.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Literal, NamedTuple, Protocol, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from provena_ops.playbook.diagnostics import Diagnostic, KeyPath, did_you_mean, format_path, one_of
from provena_ops.playbook.model import (
    HANDLE_EXAMPLE,
    HANDLE_PATTERN,
    OPERATION_NAMES,
    REQUIRED_FIELD_REMOVED,
    Named,
)
from provena_ops.playbook.yaml_source import SourceMap
from provena_ops.playbook.yaml_syntax import Position
from provena_ops.safety.scalars import BLANK, EXACT_NUMBER, LATEST_TIME

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
    skip: Collection[KeyPath] = (),
    templated: Mapping[KeyPath, str] | None = None,
    dialect: Literal["yaml", "json"] = "yaml",
) -> list[Diagnostic]:
    """One diagnostic per pydantic error, deduplicated, skipping paths already reported elsewhere.

    `templated` maps paths whose whole-string template produced a list, mapping or number to the
    template text: errors inside such a value are reported at the template, where the user can act.
    """
    errors = error.errors(include_url=False)
    missing = {(_walk(e["loc"], data).path, str(e["loc"][-1])) for e in errors if e["type"] == "missing"}
    misspelt: set[tuple[KeyPath, str]] = set()
    found: list[Diagnostic] = []
    seen: set[tuple[str, str]] = set()
    for details in errors:
        if details["type"] == "string_unicode":
            continue  # a lone surrogate: the text checks name it, and where it is
        walked = _walk(details["loc"], data)
        if any(_within(walked.path, bad) for bad in skip):
            continue
        diagnostic = _diagnostic(details, walked, root, source, missing, misspelt, dialect == "json")
        for origin, template in (templated or {}).items():
            if _within(walked.path, origin):
                diagnostic = _at_template(diagnostic, origin, template, source, walked.path == origin)
                break
        key = (diagnostic.path, diagnostic.message)
        if key not in seen:
            seen.add(key)
            found.append(diagnostic)
    # A misspelt required key already says "did you mean 'operations'?": its "missing" twin is noise.
    return [d for d in found if not (d.message.startswith("missing required key") and _twin(d, misspelt))]


def _twin(diagnostic: Diagnostic, misspelt: set[tuple[KeyPath, str]]) -> bool:
    return any(format_path((*parent, key)) == diagnostic.path for parent, key in misspelt)


def _at_template(
    diagnostic: Diagnostic, origin: KeyPath, template: str, source: SourceMap, whole: bool
) -> Diagnostic:
    position = source.locate(origin)
    hint = diagnostic.hint
    if whole:
        hint = (
            f"{template} is the whole value, so it keeps the variable's type; "
            "use {{ name | string }} for text, or check the variable's value under vars:"
        )
    return diagnostic.model_copy(
        update={
            "line": position.line if position else None,
            "column": position.column if position else None,
            "path": format_path(origin),
            "message": f"{diagnostic.message} (in the value of {template})",
            "hint": hint,
        }
    )


def _within(path: KeyPath, ancestor: KeyPath) -> bool:
    return path[: len(ancestor)] == ancestor


class _Make(Protocol):
    def __call__(self, message: str, expected: str, hint: str) -> Diagnostic: ...


class _Walked(NamedTuple):
    path: KeyPath  # the key path as written in the file
    value: Any  # the value found there
    rest: tuple[int | str, ...]  # location parts with no node in the file (a missing key)
    is_key: bool  # the error is about a mapping key, not its value


def _walk(loc: tuple[int | str, ...], data: Any) -> _Walked:
    """Follow a pydantic location through the data to the node the user wrote."""
    path: list[str | int] = []
    current = data
    for index, part in enumerate(loc):
        if part == "[key]" and path:
            return _Walked(tuple(path), path[-1], tuple(loc[index + 1 :]), True)
        if _has(current, part):
            path.append(part)
            current = current[part]
        elif isinstance(current, dict) and part == current.get("op"):
            continue  # a union tag: no node in the file
        else:
            return _Walked(tuple(path), current, tuple(loc[index:]), False)
    return _Walked(tuple(path), current, (), False)


def _has(container: Any, part: int | str) -> bool:
    if isinstance(container, dict):
        return isinstance(part, str) and part in container
    return isinstance(container, list) and isinstance(part, int) and 0 <= part < len(container)


# What a required ModelRunRecord field takes, when a playbook tries to null it.
_REPLACEMENTS = {
    "display_name": "a new display name",
    "description": "a new description",
    "modeller_id": f"a person's handle id, e.g. {HANDLE_EXAMPLE}",
    "workflow_template_id": "a workflow template's handle id",
    "inputs": "a list of input datasets ([] for none)",
    "outputs": "a list of output datasets ([] for none)",
    "start_time": "a start time in Unix seconds",
    "end_time": "an end time in Unix seconds",
}


def _diagnostic(
    details: ErrorDetails,
    walked: _Walked,
    root: type[BaseModel],
    source: SourceMap,
    missing: set[tuple[KeyPath, str]],
    misspelt: set[tuple[KeyPath, str]],
    in_json: bool = False,
) -> Diagnostic:
    kind = details["type"]
    loc = details["loc"]
    path, value = walked.path, walked.value
    position = source.locate_key(path) if walked.is_key else source.locate(path)
    ctx = details.get("ctx", {})
    written = source.plain_non_strings.get(path)

    def make(
        message: str, expected: str, hint: str, at: KeyPath = path, where: Position | None = None
    ) -> Diagnostic:
        return source.diagnostic(at, message, expected, hint, position=where or position)

    if kind == "extra_forbidden":
        key = str(path[-1]) if path else str(loc[-1])
        allowed = _allowed_keys(root, loc[:-1])
        suggestion = _closest_key(key, allowed)
        parent = path[:-1]
        if suggestion and (parent, suggestion) in missing:
            misspelt.add((parent, suggestion))
            return make(
                f"unknown key '{key}'",
                f"the required key '{suggestion}'",
                f"did you mean '{suggestion}'?",
                where=source.locate_key(path),
            )
        return make(
            f"unknown key '{key}'",
            f"one of the keys {one_of(allowed)}" if allowed else "no further keys",
            f"did you mean '{suggestion}'?"
            if suggestion
            else "remove it; docs/playbooks.md lists every key"
            + (" (section Environments)" if in_json else ""),
            where=source.locate_key(path),
        )
    if kind == "missing":
        name = str(walked.rest[-1]) if walked.rest else str(loc[-1])
        description = _field_description(root, loc)
        return make(
            f"missing required key '{name}'",
            (f'"{name}": ... here' if in_json else f"`{name}:` here")
            + (f" ({description})" if description else ""),
            f'add "{name}": ... to this object' if in_json else f"add `{name}: ...` to this mapping",
            at=(*path, name),
        )
    if kind == "union_tag_invalid":
        tag = str(ctx.get("tag", value.get("op") if isinstance(value, dict) else ""))
        suggestion = did_you_mean(tag, OPERATION_NAMES)
        return make(
            f"unknown operation '{tag}'",
            f"op: {one_of(OPERATION_NAMES)}",
            f"did you mean '{suggestion}'?" if suggestion else "docs/playbooks.md describes each operation",
            at=(*path, "op"),
            where=source.locate((*path, "op")),
        )
    if kind == "union_tag_not_found":
        return make(
            "this operation has no 'op' key saying what it does",
            f"op: {one_of(OPERATION_NAMES)}",
            "start each operation with `- op: <operation>`",
        )
    if kind == EXACT_NUMBER and loc == ("version",):
        if isinstance(value, bool) and written is not None:
            return make(
                f"version must be the number 1, not {written!r} (YAML reads an unquoted {written} as "
                f"{str(value).lower()})",
                "version: 1",
                "write `version: 1`",
            )
        if isinstance(value, str) and value.strip() == "1":
            return make(
                f"version must be the number 1, not {_describe(value)}",
                "version: 1",
                "remove the quotes around 1",
            )
        if value == 1:
            return make(
                f"version must be the number 1, not {_describe(value)}",
                "version: 1",
                "write `version: 1`",
            )
        return make(
            f"unsupported playbook version {value!r}",
            "version: 1",
            "this provena-ops reads playbook format version 1; write `version: 1`",
        )
    if kind == "literal_error" and loc == ("version",):
        if str(value).strip() == "1":
            return make(
                f"version must be the number 1, not the text {value!r}",
                "version: 1",
                "remove the quotes around 1",
            )
        return make(
            f"unsupported playbook version {value!r}",
            "version: 1",
            "this provena-ops reads playbook format version 1; write `version: 1`",
        )
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == BLANK:
        return make(
            "this text is blank (only whitespace)",
            "text with at least one visible character",
            "write the text, or remove the key",
        )
    if kind in ("greater_than_equal", "less_than_equal") and str(loc[-1]).endswith("_time"):
        return make(
            f"{value!r} is not a time Provena can store",
            f"Unix seconds between 0 (1970) and {LATEST_TIME} (9999)",
            "write the time in Unix seconds, e.g. 1700000000 for 2023-11-14",
        )
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == HANDLE_PATTERN:
        return make(
            f"{value!r} is not a Provena handle id",
            f"a handle id such as {HANDLE_EXAMPLE}",
            "copy the id from the record's page in Provena; to name a record by title use `display_name:`",
        )
    if kind == "enum":
        allowed = [item.strip("'") for item in str(ctx.get("expected", "")).replace(" or ", ", ").split(", ")]
        folded = {choice.lower(): choice for choice in allowed}
        suggestion = folded.get(str(value).lower()) or did_you_mean(str(value), allowed)
        return make(
            f"{value!r} is not one of the allowed values",
            one_of(allowed),
            f"did you mean '{suggestion}'?" if suggestion else f"use one of {one_of(allowed)}",
        )
    if kind == "value_error":
        message = str(ctx.get("error", details["msg"]))
        if message.startswith(REQUIRED_FIELD_REMOVED):
            field = str(loc[-1])
            return make(
                message,
                _REPLACEMENTS.get(field, "a new value"),
                "give a new value, or leave the key out to keep the current one",
            )
        if "exactly one way" in message:
            ways = message.partition("(")[2].partition(")")[0]
            return make(
                message,
                f"a handle id, or a mapping with one of: {ways}",
                "keep one of the keys; write other records as separate list items",
            )
        return make(
            message, _field_description(root, loc) or "a valid value", "correct the value as described"
        )
    if kind == "too_short":
        return make(
            "this list is empty",
            "at least one item",
            "list at least one item, or remove the operation if there is nothing to do",
        )
    if kind == "string_too_short":
        return make("this text is empty", "non-empty text", "write the text after the colon")
    if kind == "string_too_long":
        limit = int(ctx.get("max_length", 0))
        return make(
            f"this text is {len(value) if isinstance(value, str) else '?':,} characters long, more than "
            f"the {limit:,} it may have",
            f"at most {limit:,} characters",
            "shorten it: a name or a reason is read at a glance, and Provena stores every edit's text",
        )
    if kind in _TYPE_NAMES:
        if in_json:
            return _json_type_error(kind, value, make)
        return _type_error(kind, value, written, _type_at(root, loc), make)
    return make(details["msg"], _field_description(root, loc) or "a valid value", "see docs/playbooks.md")


def _type_error(kind: str, value: Any, written: str | None, target: Any, make: _Make) -> Diagnostic:
    expected = _TYPE_NAMES[kind]
    if isinstance(target, type) and issubclass(target, Named):
        return _bad_reference(value, make)
    if value is None and written == "":
        return make("no value given", expected, "write the value after the colon, or remove the key")
    found = f"expected {expected}, found {_describe(value)}"
    if written is not None and kind == "string_type":
        return make(
            found, expected, f'quote it ("{written}"): YAML reads an unquoted {written} as {_describe(value)}'
        )
    if kind in ("int_type", "int_parsing") and isinstance(value, str):
        seconds = _unix_seconds(value)
        if seconds is not None:
            return make(
                found, "Unix seconds (a whole number)", f"write {seconds} (that time in Unix seconds)"
            )
        return make(found, expected, "write the number without quotes or units")
    if kind == "list_type" and isinstance(value, dict) and "op" in value:
        return make(found, expected, "write each operation as a list item: `- op: ...`")
    if kind == "list_type" and value is not None and not isinstance(value, list | dict):
        return make(found, expected, f"write it as a list: [{value}]")
    if kind in ("model_type", "model_attributes_type", "dict_type") and isinstance(value, list):
        return make(found, expected, "drop the '- ' in front of the keys: this is one mapping, not a list")
    return make(found, expected, f"change the value to {expected}")


def _json_type_error(kind: str, value: Any, make: _Make) -> Diagnostic:
    """A wrong type in a JSON file, in JSON's words (objects and arrays, double quotes)."""
    expected = _JSON_TYPE_NAMES.get(kind, _TYPE_NAMES[kind])
    found = f"expected {expected}, found {_describe(value, in_json=True)}"
    if kind == "string_type" and not isinstance(value, dict | list) and value is not None:
        return make(found, expected, f'write it as a JSON string, in double quotes: "{_json_text(value)}"')
    if kind in ("model_type", "model_attributes_type", "dict_type") and isinstance(value, list):
        return make(found, expected, "write one object {...} here, not an array [...]")
    if kind == "list_type" and isinstance(value, dict):
        return make(found, expected, "write an array [...] of objects here, not one object")
    if kind in ("bool_type", "bool_parsing"):
        return make(found, expected, "write true or false, without quotes")
    return make(found, expected, f"change the value to {expected}")


_JSON_TYPE_NAMES = {
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "an array",
}


def _json_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _bad_reference(value: Any, make: _Make) -> Diagnostic:
    expected = f"a handle id such as {HANDLE_EXAMPLE}, or a mapping such as `display_name: ...`"
    if value is None:
        return make("this entry is empty", expected, "write a handle id here, or remove the entry")
    if isinstance(value, int | float) and not isinstance(value, bool):
        prefix = HANDLE_EXAMPLE.split("/")[0]
        return make(
            f"{value} is not a handle id",
            expected,
            f"handle ids include their prefix: did you mean {prefix}/{value}?",
        )
    return make(f"{_describe(value)} is not a record reference", expected, "write a handle id")


def _unix_seconds(text: str) -> int | None:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def _closest_key(key: str, allowed: list[str]) -> str | None:
    suggestion = did_you_mean(key, allowed)
    if suggestion:
        return suggestion
    containing = [choice for choice in allowed if key in choice or choice in key]
    return containing[0] if len(containing) == 1 else None


def _describe(value: Any, in_json: bool = False) -> str:
    """A value in the words of its file: YAML's mappings and lists, JSON's objects and arrays."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "an object" if in_json else "a mapping"
    if isinstance(value, list):
        return "an array" if in_json else "a list"
    if isinstance(value, str):
        return f"the {'string' if in_json else 'text'} {value!r}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    return f"a {type(value).__name__} (what the template gave)"


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
