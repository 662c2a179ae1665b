"""What `validate` reports: one diagnostic per problem, saying where, what was expected, and how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

KeyPath = tuple[str | int, ...]


class Diagnostic(BaseModel):
    """A problem found in a playbook or an environments file, printed as `file:line:column: ...`."""

    model_config = ConfigDict(frozen=True)

    file: str
    line: int | None
    column: int | None
    path: str  # the key path, e.g. "operations[1].studies[0].replace_with"; "" for the whole file
    message: str
    expected: str
    hint: str
    severity: Literal["error", "warning"] = "error"

    @classmethod
    def at(
        cls,
        file: str,
        position: tuple[int, int] | None,
        path: str,
        message: str,
        expected: str,
        hint: str,
        severity: Literal["error", "warning"] = "error",
    ) -> Diagnostic:
        line, column = position if position else (None, None)
        return cls(
            file=file,
            line=line,
            column=column,
            path=path,
            message=message,
            expected=expected,
            hint=hint,
            severity=severity,
        )

    @property
    def where(self) -> str:
        if self.line is None:
            return self.file
        return f"{self.file}:{self.line}:{self.column}"

    def render(self) -> str:
        subject = f"{self.path}: " if self.path else ""
        return (
            f"{self.where}: {self.severity}: {subject}{self.message}\n"
            f"  expected: {self.expected}\n"
            f"  hint: {self.hint}"
        )


class ValidationReport(BaseModel):
    """The outcome of validating one file; `--format json` prints a list of these."""

    file: str
    valid: bool
    operations: int
    diagnostics: list[Diagnostic]


def format_path(path: KeyPath) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif text:
            text += f".{part}" if _is_identifier(part) else f"[{part!r}]"
        else:
            text = part
    return text


def _is_identifier(part: str) -> bool:
    return part.replace("_", "a").isalnum()


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """The closest known spelling, when one is close enough to be what the user meant."""
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None


def one_of(choices: Sequence[str]) -> str:
    quoted = [f"'{choice}'" for choice in choices]
    if len(quoted) <= 2:
        return " or ".join(quoted)
    return ", ".join(quoted[:-1]) + f" or {quoted[-1]}"


def sort_key(diagnostic: Diagnostic) -> tuple[str, int, int]:
    return (diagnostic.file, diagnostic.line or 0, diagnostic.column or 0)
