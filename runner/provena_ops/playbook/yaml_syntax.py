"""Where a YAML file went wrong, told as a person would fix it: positions, tab indentation, and PyYAML's
syntax errors reworded (which line opened the block, what the indentation should be)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

import yaml

from provena_ops.playbook.diagnostics import Diagnostic, did_you_mean

QUOTING_HINT = (
    "check the indentation and quoting here; values that contain ': ' or ' #', or start with "
    "'*', '&', '!', '%', '@', '{' or '[', need quotes"
)


class Position(NamedTuple):
    line: int  # 1-based, as editors count
    column: int  # 1-based


def tab_indentation(file: str, text: str) -> Iterator[Diagnostic]:
    for number, line in enumerate(text.splitlines(), start=1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent:
            yield diag(
                file,
                Position(number, indent.index("\t") + 1),
                "a tab character in the indentation",
                "indentation with spaces",
                "YAML indents with spaces only: replace the tab with spaces (two per level is usual)",
            )


_INDENTATION_PROBLEMS = (
    "did not find expected '-' indicator",
    "did not find expected key",
    "expected <block end>",
)


def syntax_diagnostic(file: str, text: str, exc: yaml.MarkedYAMLError, max_depth: int) -> Diagnostic:
    """libyaml's messages in an admin's words, at the place the mistake was made."""
    problem = exc.problem or "invalid YAML"
    context = exc.context or ""
    mark = exc.problem_mark or exc.context_mark
    position = Position(mark.line + 1, mark.column + 1) if mark is not None else None
    started = exc.context_mark
    start = Position(started.line + 1, started.column + 1) if started is not None else position
    if problem.startswith("found undefined alias"):
        alias = _word_at(text, mark.index + 1) if mark is not None else ""
        anchors = sorted(set(re.findall(r"&([A-Za-z0-9_-]+)", text)))
        suggestion = did_you_mean(alias, anchors)
        return diag(
            file,
            position,
            f"the alias *{alias} refers to an anchor that is not defined",
            f"an anchor `&{alias}` earlier in the file"
            + (f" (anchors defined: {', '.join('&' + a for a in anchors)})" if anchors else ""),
            f"did you mean *{suggestion}?"
            if suggestion
            else f"define `&{alias}` on the value to reuse before using `*{alias}`, or write the value out",
        )
    if "exceeded maximum nesting depth" in problem:
        return diag(
            file,
            position,
            f"nested deeper than {max_depth} levels",
            f"at most {max_depth} levels of mappings and lists",
            "flatten the structure: no playbook needs this depth",
        )
    if "expected a single document" in context:
        return diag(
            file,
            position,
            "the file holds more than one YAML document",
            "one playbook per file",
            "split the documents into separate playbook files",
        )
    if "while scanning a quoted scalar" in context:
        return diag(
            file,
            start,
            "the quoted string starting here is never closed",
            "a closing quote on the same value",
            "add the closing quote; inside the text write '' (single quotes) or \\\" (double quotes)",
        )
    if "could not find expected ':'" in problem and "simple key" in context:
        return diag(
            file,
            start,
            "this line has a key but no ':' after it",
            "`key: value`",
            "add ': ' between the key and its value",
        )
    if problem.startswith("mapping values are not allowed here"):
        return diag(
            file,
            position,
            "unexpected ': ' here: a value contains ': ' without quotes, or a key is indented too far",
            "`key: value`, with values containing ': ' in quotes",
            "put the value in quotes, or align the key with the keys above it",
        )
    if problem.startswith(_INDENTATION_PROBLEMS) and position is not None:
        return diag(
            file,
            position,
            _indentation_message(text, position.line),
            "the keys of one mapping (and the items of one list) at the same indentation",
            "align this line with its siblings; YAML nests by indentation alone",
        )
    detail = f" ({context})" if context else ""
    return diag(file, position, f"YAML syntax error: {problem}{detail}", "valid YAML", QUOTING_HINT)


def _indentation_message(text: str, line: int) -> str:
    lines = text.splitlines()
    if not 1 <= line <= len(lines):
        return "the indentation here does not line up with the lines around it"
    indent = _indent(lines[line - 1])
    for previous in range(line - 1, 0, -1):
        above = lines[previous - 1]
        if above.strip() and not above.lstrip().startswith("#"):
            return (
                f"this line is indented {indent} spaces, which matches no enclosing level "
                f"(line {previous} is indented {_indent(above)})"
            )
    return f"this line is indented {indent} spaces, which matches no enclosing level"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _word_at(text: str, index: int) -> str:
    match = re.match(r"[^\s,\[\]{}]+", text[index:])
    return match.group(0) if match else ""


def diag(
    file: str, position: Position | None, message: str, expected: str, hint: str, path: str = ""
) -> Diagnostic:
    return Diagnostic.at(file, position, path, message, expected, hint)


def position_of_index(text: str, index: int) -> Position:
    line_start = text.rfind("\n", 0, index) + 1
    return Position(text.count("\n", 0, index) + 1, index - line_start + 1)
