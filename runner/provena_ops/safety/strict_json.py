"""JSON that comes from outside (saved plans, environments files, journals), read strictly and under budgets.

The json module accepts what a careful reader would not: a key given twice (the last silently wins, which
is how a duplicated `stage` turned PROD into DEV), NaN and Infinity, integers of any length, and nesting
deep enough to raise RecursionError. Here each of those is refused, at its line and column. The fast
path is the C parser with hooks that only detect; the position of a refusal is then found by a second,
iterative pass over the text, so correct files cost one C parse and nothing recurses.
"""

from __future__ import annotations

import bisect
import json
import math
import re
from dataclasses import dataclass
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import Any

MAX_DEPTH = 64  # nothing provena-ops reads nests deeper than about 12
MAX_INT_DIGITS = 19  # every integer provena-ops reads fits in 64 bits
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"(-?(?:0|[1-9][0-9]*))(\.[0-9]+)?([eE][-+]?[0-9]+)?")
# "\ud800" is valid JSON but not text: a lone surrogate cannot be printed or encoded, so it would crash
# whatever shows it.
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class JsonProblem(Exception):
    """Why a JSON text is refused, and where: 1-based line and column (None when the whole text)."""

    message: str
    expected: str
    hint: str
    line: int | None = None
    column: int | None = None
    path: str = ""

    def __str__(self) -> str:
        return self.message


class _Refused(Exception):
    """Raised by the C parser's hooks: something was refused; the locating pass says where."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _Refused
    return result


def _constant(_: str) -> Any:
    raise _Refused


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _Refused
    return int(text)


def _real(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused
    return value


def loads(text: str, *, max_depth: int = MAX_DEPTH, hints: dict[str, str] | None = None) -> Any:
    """The value of a JSON text, or JsonProblem with its position. `hints` may reword the hint of a
    syntax error ('syntax') for the kind of file it is."""
    try:
        value = json.loads(
            text, object_pairs_hook=_pairs, parse_constant=_constant, parse_int=_integer, parse_float=_real
        )
    except json.JSONDecodeError as exc:
        raise JsonProblem(
            f"invalid JSON: {exc.msg}",
            "a JSON document",
            (hints or {}).get("syntax", "check for a missing comma or quote, or a trailing comma, near here"),
            exc.lineno,
            exc.colno,
        ) from None
    except (_Refused, RecursionError, ValueError):  # ValueError: int() refusing thousands of digits
        raise _locate(text, max_depth) from None
    if _depth_and_text(value) > max_depth:
        raise _locate(text, max_depth)
    return value


def _depth_and_text(value: Any) -> int:
    """Nesting depth of a parsed value, without recursion; past any limit when a string (or a key) holds
    a lone surrogate, so that the locating pass names it."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        current, level = stack.pop()
        if isinstance(current, str):
            if _SURROGATE.search(current):
                return 1 << 30
            continue
        if isinstance(current, dict):
            if any(_SURROGATE.search(key) for key in current):
                return 1 << 30
            children: Any = current.values()
        elif isinstance(current, list):
            children = current
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


@dataclass
class _Frame:
    is_object: bool
    keys: set[str]
    key: str | int = 0


class _Locator:
    """An iterative walk over a JSON text to the first thing the fast path refused: a duplicate key, too
    deep a nesting, NaN or Infinity, an integer too long. Syntax is the fast path's to report."""

    def __init__(self, text: str, max_depth: int, record: bool = False) -> None:
        self.text = text
        self.max_depth = max_depth
        self.stack: list[_Frame] = []
        self.found: JsonProblem | None = None
        # With `record`: the offset where each value (and each object key) starts, by key path.
        self.values: dict[tuple[str | int, ...], int] | None = {} if record else None
        self.keys: dict[tuple[str | int, ...], int] = {}

    def path(self) -> tuple[str | int, ...]:
        return tuple(frame.key for frame in self.stack)

    def skip(self, index: int) -> int:
        return _WHITESPACE.match(self.text, index).end()  # type: ignore[union-attr]

    def problem(self, at: int, message: str, expected: str, hint: str) -> JsonProblem:
        line, column = _position(self.text, at)
        return JsonProblem(message, expected, hint, line, column, _path(self.stack))

    def run(self) -> JsonProblem | None:
        text = self.text
        index = self.skip(0)
        while True:  # a value starts at index
            if self.values is not None:
                self.values[self.path()] = index
            char = text[index : index + 1]
            if char in ("{", "["):
                if len(self.stack) >= self.max_depth:
                    return self.problem(
                        index,
                        f"nested deeper than {self.max_depth} levels",
                        f"at most {self.max_depth} levels of objects and arrays",
                        "no file provena-ops reads nests this deep; check what this file is",
                    )
                frame = _Frame(char == "{", set())
                self.stack.append(frame)
                index = self.skip(index + 1)
                if text[index : index + 1] == ("}" if frame.is_object else "]"):
                    self.stack.pop()
                    index += 1
                elif frame.is_object:
                    index = self.key(index)
                    if index < 0:
                        return self.found
                    continue
                else:
                    continue
            else:
                end = self.scalar(index)
                if end < 0:
                    return self.found
                index = end
            while True:  # after a complete value
                index = self.skip(index)
                if not self.stack:
                    return None
                frame = self.stack[-1]
                char = text[index : index + 1]
                if char == ",":
                    index = self.skip(index + 1)
                    if frame.is_object:
                        index = self.key(index)
                        if index < 0:
                            return self.found
                    else:
                        assert isinstance(frame.key, int)
                        frame.key += 1
                    break
                if char in ("}", "]"):
                    self.stack.pop()
                    index += 1
                    continue
                return None  # a syntax error: the fast path names those

    def key(self, index: int) -> int:
        """Read `"key" :` at index into the current object; -1 when refused (or not JSON)."""
        if self.text[index : index + 1] != '"':
            return -1
        key, end = scanstring(self.text, index + 1)
        frame = self.stack[-1]
        frame.key = key
        if _SURROGATE.search(key):
            self.found = self._surrogate(index, key)
            return -1
        if key in frame.keys:
            self.found = self.problem(
                index,
                f"duplicate key {json.dumps(key)}",
                "each key once per object",
                "remove one of the two: JSON readers disagree on which one counts",
            )
            return -1
        frame.keys.add(key)
        if self.values is not None:
            self.keys[self.path()] = index
        end = self.skip(end)
        if self.text[end : end + 1] != ":":
            return -1
        return self.skip(end + 1)

    def scalar(self, index: int) -> int:
        text = self.text
        if text.startswith('"', index):
            value, end = scanstring(text, index + 1)
            if _SURROGATE.search(value):
                self.found = self._surrogate(index, value)
                return -1
            return int(end)
        for word in ("true", "false", "null"):
            if text.startswith(word, index):
                return index + len(word)
        if text.startswith(("NaN", "Infinity", "-Infinity"), index):
            self.found = self.problem(
                index, "NaN and Infinity are not JSON numbers", "a finite number", "write a number, or null"
            )
            return -1
        number = _NUMBER.match(text, index)
        if number is None:
            return -1
        digits = number.group(1).lstrip("-")
        if number.group(2) is None and number.group(3) is None and len(digits) > MAX_INT_DIGITS:
            self.found = self.problem(
                index,
                f"an integer of {len(digits)} digits",
                f"an integer of at most {MAX_INT_DIGITS} digits",
                "no number provena-ops reads is that large; check the value",
            )
            return -1
        if not math.isfinite(float(number.group(0))):
            self.found = self.problem(
                index, "a number too large to represent", "a finite number", "check the value"
            )
            return -1
        return number.end()

    def _surrogate(self, index: int, value: str) -> JsonProblem:
        code = ord(_SURROGATE.search(value).group())  # type: ignore[union-attr]
        return self.problem(
            index,
            f"the text holds a lone surrogate (\\u{code:04x}), which is not a character",
            "text of characters",
            "remove the \\u escape: it cannot be shown or stored",
        )


def _path(stack: list[_Frame]) -> str:
    text = ""
    for frame in stack[:8]:
        if isinstance(frame.key, int) and not frame.is_object:
            text += f"[{frame.key}]"
        else:
            text += f".{frame.key}" if text else str(frame.key)
    text += "..." if len(stack) > 8 else ""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")  # a surrogate key, shown escaped


Positions = dict[tuple[str | int, ...], tuple[int, int]]


def positions(text: str) -> tuple[Positions, Positions]:
    """(values, keys): the line and column where each value and each object key of a valid JSON text
    starts, by key path (as a playbook's source map has them). One linear pass, for error reports."""
    locator = _Locator(text, max_depth=1 << 30, record=True)
    locator.run()
    starts = [0, *(match.end() for match in re.finditer("\n", text))]

    def place(offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(starts, offset)
        return line, offset - starts[line - 1] + 1

    assert locator.values is not None
    return (
        {path: place(offset) for path, offset in locator.values.items()},
        {path: place(offset) for path, offset in locator.keys.items()},
    )


def _locate(text: str, max_depth: int) -> JsonProblem:
    found = _Locator(text, max_depth).run()
    return found or JsonProblem("the JSON cannot be read", "a JSON document", "check the file")
