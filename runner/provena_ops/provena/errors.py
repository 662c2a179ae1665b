"""Failures of a Provena call, in words an admin can act on (Provena says 401 for every refusal)."""

from __future__ import annotations

from ..errors import ProvenaOpsError


class ProvenaError(ProvenaOpsError):
    """A Provena API call failed; `status` is the HTTP status (None when no response arrived)."""

    def __init__(
        self, message: str, *, status: int | None = None, hint: str | None = None, retryable: bool = False
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.retryable = retryable


class NotAuthorised(ProvenaError):
    """Provena's 401: missing or expired token, missing role, no item permission, or a locked record."""


class Unreachable(ProvenaError):
    """No usable response after the retries: connection refused, timeouts, or repeated 5xx/429."""
