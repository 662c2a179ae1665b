"""Failures of a Provena call, in words an admin can act on (Provena says 401 for every refusal)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import jwt

from provena_ops.errors import ProvenaOpsError

KEYCLOAK_DEFAULT_ROLES = frozenset({"offline_access", "uma_authorization"})


def own_roles(roles: Iterable[str]) -> list[str]:
    """The realm roles worth showing, sorted: every Keycloak token also carries the realm's default
    roles (offline_access, uma_authorization, default-roles-<realm>), which say nothing of Provena."""
    return sorted(
        {r for r in roles if r not in KEYCLOAK_DEFAULT_ROLES and not r.startswith("default-roles-")}
    )


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


def refusal_hint(detail: str, token: str, environment: str) -> str:
    """Which of Provena's 401s this is (no token, expired, not valid here, missing realm role, no item
    permission, locked record), in words that say what to do about it."""
    claims = _claims(token)
    who = str(claims.get("preferred_username", "the signed-in user"))
    login = f"`provena-ops auth login {environment}`"
    if detail == "Not authenticated":
        return (
            "no access token reached the API (a proxy or gateway in between may drop the Authorization "
            f"header); sign in with {login} and check the endpoint URLs"
        )
    if detail == "Could not validate credentials":
        exp = claims.get("exp")
        if isinstance(exp, int | float) and exp <= time.time():
            return f"the access token expired and could not be renewed; sign in again with {login}"
        return (
            "the API does not accept the token's signature: it was issued by another realm than this "
            f"environment's API trusts, or the realm's key changed; sign in again with {login}"
        )
    if detail == "Token had incorrect structure.":
        return (
            "the token lacks the claims Provena reads (preferred_username, realm_access.roles, email); "
            "sign in through client-tools or automated-access"
        )
    if detail == ROLE_DETAIL:
        roles = (
            (claims.get("realm_access") or {}).get("roles")
            if isinstance(claims.get("realm_access"), dict)
            else []
        )
        held = ", ".join(own_roles(str(r) for r in roles or [])) or "none"
        return (
            f"{who} lacks a realm role this call needs (their realm roles: {held}); a Keycloak admin of "
            "the realm can grant it"
        )
    if detail == ITEM_READ_DETAIL:
        return f"{who} has no read permission on the item; ask its owner or a registry admin"
    if detail == LOCKED_DETAIL:
        return "the record is locked; an admin of the record can unlock it"
    return (
        "Provena answers 401 for a missing role, a missing item permission or a locked record; "
        f"signed in as {who}"
    )


NOT_LINKED_DETAIL = (
    "In order to perform this operation you must link your User account to a Person in the registry."
)


def answer_hint(detail: str, environment: str) -> str | None:
    """What to do about one of Provena's non-401 refusals that names no way out itself."""
    if detail == NOT_LINKED_DETAIL:
        return (
            f"editing studies, models and templates on {environment} needs your user linked to a Person: "
            "link it once in Provena's web UI (your profile, 'link to a Person'), or a registry admin "
            "links it with the auth API's /link/admin/assign"
        )
    return None


def _claims(token: str) -> dict[str, Any]:
    try:
        return dict(jwt.decode(token, options={"verify_signature": False}))
    except jwt.PyJWTError:
        return {}
