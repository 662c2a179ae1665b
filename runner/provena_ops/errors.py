"""The one error family the CLI knows how to print: what went wrong, where, and how to fix it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class ProvenaOpsError(Exception):
    """A user-facing failure. The CLI prints it without a traceback and exits 1."""

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def render(self) -> str:
        lines = [f"error: {self.where}: {self.message}" if self.where else f"error: {self.message}"]
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)


class Interrupted(ProvenaOpsError):
    """Ctrl-C or SIGTERM: the command stopped where it was, and says what that leaves (exit 130)."""


class PromptCancelled(KeyboardInterrupt):
    """Ctrl-C or SIGTERM while a question is on the screen: an answer, not an accident."""


def first_problem(exc: ValidationError, within: str | None = None) -> str:
    """The first of pydantic's errors as a located line, 'images.0.id: String should match pattern',
    its path under `within` when given: inputs from outside are refused on their first problem."""
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in ([within] if within else []) + list(first["loc"]))
    return f"{where + ': ' if where else ''}{first['msg']}"
