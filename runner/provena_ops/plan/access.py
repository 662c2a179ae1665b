"""Whether the signed-in user may make each write: realm roles, the record's own roles, locks."""

from __future__ import annotations

from provena_ops.facts.model import ADMIN_ROLE, ADMIN_TIER, WRITE_TIER, RecordFact
from provena_ops.plan.planning import Planning

ITEM_WRITE_ROLES = ("metadata-write", "admin")


def write_access(planning: Planning, fact: RecordFact, operation: int, verb: str) -> None:
    missing = planning.state.missing_roles(WRITE_TIER)
    if missing:
        planning.problem(
            f"{planning.state.username} lacks the {_roles(missing)} Provena's model-run update needs, "
            f"so it cannot {verb} {fact.id}",
            "run as a user with registry write access (the roles are granted in Keycloak)",
            operation,
            fact.id,
        )
    if fact.locked:
        planning.problem(
            f"{fact.id} is locked, so Provena refuses to {verb} it",
            "have it unlocked (registry locks/unlock) and plan again, or set skip_locked: true",
            operation,
            fact.id,
            locked=True,
        )
    elif not set(ITEM_WRITE_ROLES) & set(fact.roles) and ADMIN_ROLE not in planning.state.realm_roles:
        planning.problem(
            f"{planning.state.username} may not {verb} {fact.id}: no metadata-write permission on it "
            f"(has: {', '.join(fact.roles) or 'none'})",
            "ask the record's owner to grant metadata-write, or run as a registry admin",
            operation,
            fact.id,
        )


def _roles(missing: list[str]) -> str:
    return " and ".join(missing) + (" roles" if len(missing) > 1 else " role")


def needs_admin(planning: Planning, operation: int, record: str, verb: str) -> None:
    """Provena's admin routes need every registry role, not only the admin one (contract 2.1)."""
    missing = planning.state.missing_roles(ADMIN_TIER)
    if missing:
        planning.problem(
            f"{planning.state.username} lacks the {_roles(missing)} needed to {verb} {record}",
            "run as a registry admin (the roles are granted in Keycloak)",
            operation,
            record,
        )
