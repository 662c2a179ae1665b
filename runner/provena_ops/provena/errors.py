"""Failures of a Provena call, in words an admin can act on (Provena says 401 for every refusal)."""

from __future__ import annotations

from ..errors import ProvenaOpsError

# Provena's 401 details (contract 2.2, 4.3, 4.8), which say what kind of refusal a 401 is.
TOKEN_DETAILS = ("Not authenticated", "Could not validate credentials", "Token had incorrect structure.")
ROLE_DETAIL = "You are not authorised to access this resource as you don't have the correct role."
ITEM_READ_DETAIL = "You are not authorised to fetch this item."
LOCKED_DETAIL = "Cannot perform this action as the resource is locked."


class ProvenaError(ProvenaOpsError):
    """A Provena API call failed; `status` is the HTTP status (None when no response arrived) and
    `detail` Provena's own text, so callers can tell one kind of refusal from another."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        detail: str | None = None,
        hint: str | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.detail = detail
        self.retryable = retryable


class NotAuthorised(ProvenaError):
    """Provena's 401: missing or expired token, missing role, no item permission, or a locked record."""

    @property
    def token_problem(self) -> bool:
        return self.detail in TOKEN_DETAILS

    @property
    def item_unreadable(self) -> bool:
        return self.detail == ITEM_READ_DETAIL


class Unreachable(ProvenaError):
    """No usable response after the retries: connection refused, timeouts, or repeated 5xx/429.
    `maybe_sent`: the request may have reached Provena and been acted on."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        hint: str | None = None,
        retryable: bool = True,
        maybe_sent: bool = True,
    ) -> None:
        super().__init__(message, status=status, hint=hint, retryable=retryable)
        self.maybe_sent = maybe_sent


class Unexpected(ProvenaError):
    """A response that is not what Provena's published models describe (wrong service, wrong version)."""


def refusal_hint(detail: str, username: str) -> str:
    """What to do about a 401, by Provena's detail text."""
    if detail in TOKEN_DETAILS:
        return (
            "the access token is missing, expired or not valid for this environment; sign in again "
            "(or set PROVENA_OPS_ACCESS_TOKEN to a fresh token)"
        )
    if detail == ROLE_DETAIL:
        return f"{username} lacks a realm role this call needs (granted in Keycloak)"
    if detail == ITEM_READ_DETAIL:
        return f"{username} has no read permission on the item; ask its owner or a registry admin"
    if detail == LOCKED_DETAIL:
        return "the record is locked; an admin of the record can unlock it"
    return (
        f"Provena answers 401 for a missing role, a missing item permission or a locked record; "
        f"signed in as {username}"
    )
