"""The auth API's Person link service (auth-api routes/identity/user.py and admin.py, under /link):
which registry Person a username is linked to. The registry refuses edits of linked types (study,
model, templates, dataset) by a user with no link, as production does (`enforce_user_links`).

User routes take any valid token; admin routes need `sys-admin-read` or `sys-admin-write` (one role
each, no tiers). An assignment checks the Person through the registry, as the caller: the user routes
read its access settings and require the caller to own it, the admin route fetches it.

The user-group routes (routes/groups) answer from the sandbox's group memberships.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from ProvenaInterfaces import AuthAPI as auth_models
from pydantic import BaseModel, ConfigDict, Field

from provena_ops.sandbox.context import Sandbox
from provena_ops.sandbox.fetching import fetch_outcome
from provena_ops.sandbox.http import (
    Dependency,
    Pydantic1BodyRoute,
    identify,
    install_error_handlers,
    provena_error,
    require_roles,
    soft_failure,
    status,
)
from provena_ops.sandbox.items import ADMIN_ITEM_ROLES, SUBTYPES, can, item_roles
from provena_ops.sandbox.realm import SYS_ADMIN_READ, SYS_ADMIN_WRITE, Identity

NOT_LINKED = "In order to perform this operation you must link your User account to a Person in the registry."
PERSON = SUBTYPES["PERSON"]


class PersonRequest(BaseModel):
    """The user assign and validate bodies; an empty person id is a 422 (min_anystr_length = 1)."""

    model_config = ConfigDict(extra="ignore")
    person_id: str = Field(min_length=1)


class AdminAssignRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    username: str = Field(min_length=1)
    person_id: str = Field(min_length=1)
    validate_item: bool = True
    force: bool = False


def sandbox_of(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


def already_linked(username: str, person_id: str, admin: bool) -> str:
    advice = (
        "Use the force parameter to reassign."
        if admin
        else "You cannot deassign a Person ID without contacting an admin."
    )
    return f"The username {username} already has a person ID assigned, ID {person_id}. {advice}"


def ownership_problem(sandbox: Sandbox, identity: Identity, person_id: str) -> str | None:
    """auth-api helpers/registry_api_helpers.py: the Person's access settings, read as the caller
    (registry answers mapped to the auth API's 401 and 500), then `check_is_owner`."""
    item = sandbox.store.get_item(person_id)
    if item is None:
        raise provena_error(
            500,
            "Unexpected non 200 status code in Registry person auth configuration fetch. Status code: 400. "
            f"Details: Item (id={person_id!r}) was not present in the registry. Are you sure the id "
            "is correct?.",
        )
    if not can(item_roles(sandbox, identity, person_id, "PERSON"), ADMIN_ITEM_ROLES):
        raise provena_error(
            401,
            "Registry did not grant access to the auth configuration for this person. Details: You are not "
            f"authorised to view the access configuration for item id={person_id!r}..",
        )
    if item.get("item_subtype") != "PERSON":
        raise provena_error(
            500,
            "Unexpected non 200 status code in Registry person auth configuration fetch. Status code: 400. "
            f"Details: the item {person_id} is a {item.get('item_subtype')}, not a PERSON.",
        )
    auth = sandbox.store.get_auth(person_id) or {}
    if (auth.get("access_settings") or {}).get("owner") != identity.username:
        return (
            "You are not authorised to assign your identity to a Person in the Registry which you "
            "do not own. "
            f"Username: {identity.username}. Person ID: {person_id}."
        )
    return None


def user_link_refusal(sandbox: Sandbox, identity: Identity, person_id: str) -> tuple[int, str] | None:
    """Why the caller may not link themselves to `person_id` (status and text), checked in the user
    assign route's order: an existing link, then ownership of the Person."""
    existing = sandbox.store.get_link(identity.username)
    if existing:
        return 400, already_linked(identity.username, existing, admin=False)
    if problem := ownership_problem(sandbox, identity, person_id):
        return 401, problem
    return None


def build_auth_app() -> FastAPI:
    app = FastAPI(title="Provena Auth API (sandbox)")
    install_error_handlers(app)
    router = APIRouter(route_class=Pydantic1BodyRoute)
    admin_read = require_roles(SYS_ADMIN_READ)
    admin_write = require_roles(SYS_ADMIN_WRITE)

    async def any_user(request: Request) -> Identity:
        return identify(request)

    @router.get("/")
    async def health() -> dict[str, str]:
        return {"message": "Health check successful."}

    def lookup_answer(sandbox: Sandbox, username: str) -> JSONResponse:
        person_id = sandbox.store.get_link(username) or None
        return JSONResponse({"person_id": person_id, "success": person_id is not None})

    @router.get("/link/user/lookup", response_model=auth_models.UserLinkUserLookupResponse)
    async def user_lookup(
        request: Request, username: str | None = None, identity: Identity = Depends(any_user)
    ) -> JSONResponse:
        return lookup_answer(sandbox_of(request), username or identity.username)

    @router.post("/link/user/assign", response_model=auth_models.UserLinkUserAssignResponse)
    async def user_assign(
        request: Request, body: PersonRequest, identity: Identity = Depends(any_user)
    ) -> JSONResponse:
        sandbox = sandbox_of(request)
        with sandbox.store.transaction():
            if refusal := user_link_refusal(sandbox, identity, body.person_id):
                raise provena_error(*refusal)
            sandbox.store.put_link(identity.username, body.person_id)
        return JSONResponse({})

    @router.post("/link/user/validate", response_model=auth_models.UserLinkUserValidateResponse)
    async def user_validate(
        request: Request, body: PersonRequest, identity: Identity = Depends(any_user)
    ) -> JSONResponse:
        """The assign route's checks without the write; its refusals answered as soft failures."""
        if refusal := user_link_refusal(sandbox_of(request), identity, body.person_id):
            return JSONResponse({"status": status(False, refusal[1])})
        fine = "This person ID could be linked to the specified username. Validation successful."
        return JSONResponse({"status": status(True, fine)})

    @router.get("/link/admin/lookup", response_model=auth_models.AdminLinkUserLookupResponse)
    async def admin_lookup(
        request: Request, username: str = Query(...), identity: Identity = Depends(admin_read)
    ) -> JSONResponse:
        return lookup_answer(sandbox_of(request), username)

    @router.post("/link/admin/assign", response_model=auth_models.AdminLinkUserAssignResponse)
    async def admin_assign(
        request: Request, body: AdminAssignRequest, identity: Identity = Depends(admin_write)
    ) -> JSONResponse:
        sandbox = sandbox_of(request)
        with sandbox.store.transaction():
            existing = sandbox.store.get_link(body.username)
            if existing and not body.force:
                raise provena_error(400, already_linked(body.username, existing, admin=True))
            if body.validate_item:
                outcome = fetch_outcome(sandbox, identity, PERSON, body.person_id)
                if isinstance(outcome, str):
                    raise provena_error(
                        500,
                        f"Registry fetch response id={body.person_id!r} indicated status failure - details: "
                        f"{outcome}.",
                    )
            sandbox.store.put_link(body.username, body.person_id)
        return JSONResponse({})

    @router.delete("/link/admin/clear", response_model=auth_models.AdminLinkUserClearResponse)
    async def admin_clear(
        request: Request, username: str = Query(...), identity: Identity = Depends(admin_write)
    ) -> JSONResponse:
        sandbox = sandbox_of(request)
        with sandbox.store.transaction():
            sandbox.store.clear_link(username)  # whether or not there was one
        return JSONResponse({})

    @router.get("/link/admin/reverse_lookup", response_model=auth_models.UserLinkReverseLookupResponse)
    async def reverse_lookup(
        request: Request, person_id: str = Query(...), identity: Identity = Depends(admin_read)
    ) -> JSONResponse:
        return JSONResponse({"usernames": sandbox_of(request).store.usernames_linked_to(person_id)})

    add_group_routes(router, any_user, admin_read)
    app.include_router(router)
    return app


GROUP_DESCRIPTIONS = {"modellers": ("Modellers", "The sandbox's demo modelling team.")}


def group_metadata(group_id: str) -> dict[str, Any]:
    display_name, description = GROUP_DESCRIPTIONS.get(group_id, (group_id, ""))
    return {
        "id": group_id,
        "display_name": display_name,
        "description": description,
        "default_data_store_access": None,
    }


def known_groups(sandbox: Sandbox) -> list[str]:
    return sorted({*GROUP_DESCRIPTIONS, *sandbox.store.group_ids()})


def no_group(group_id: str, answer_key: str) -> JSONResponse:
    return soft_failure(f"No group with id {group_id} was found.", **{answer_key: None})


def add_group_routes(router: APIRouter, any_user: Dependency, admin_read: Dependency) -> None:
    """The user-group service (auth-api routes/groups/user.py and admin.py): the registry asks it for a
    caller's groups on every list and on access checks that the caller's ownership does not settle."""

    def membership(sandbox: Sandbox, username: str) -> JSONResponse:
        groups = [group_metadata(g) for g in known_groups(sandbox) if username in sandbox.store.members_of(g)]
        return JSONResponse(
            {"status": status(True, f"Member is part of {len(groups)} groups as listed."), "groups": groups}
        )

    @router.get("/groups/user/list_user_membership", response_model=auth_models.ListUserMembershipResponse)
    async def user_membership(request: Request, identity: Identity = Depends(any_user)) -> JSONResponse:
        return membership(sandbox_of(request), identity.username)

    @router.get("/groups/admin/list_user_membership", response_model=auth_models.ListUserMembershipResponse)
    async def admin_membership(
        request: Request, username: str = Query(...), identity: Identity = Depends(admin_read)
    ) -> JSONResponse:
        return membership(sandbox_of(request), username)

    @router.get("/groups/user/list_groups", response_model=auth_models.ListGroupsResponse)
    async def list_groups(request: Request, identity: Identity = Depends(any_user)) -> JSONResponse:
        groups = [group_metadata(g) for g in known_groups(sandbox_of(request))]
        return JSONResponse(
            {"status": status(True, f"Retrieved {len(groups)} groups successfully"), "groups": groups}
        )

    @router.get("/groups/user/describe_group", response_model=auth_models.DescribeGroupResponse)
    async def describe_group(
        request: Request, id: str = Query(...), identity: Identity = Depends(any_user)
    ) -> JSONResponse:
        if id not in known_groups(sandbox_of(request)):
            return no_group(id, "group")
        return JSONResponse(
            {"status": status(True, "Group metadata retrieved."), "group": group_metadata(id)}
        )

    @router.get("/groups/user/check_membership", response_model=auth_models.CheckMembershipResponse)
    async def check_membership(
        request: Request, group_id: str = Query(...), identity: Identity = Depends(any_user)
    ) -> JSONResponse:
        sandbox = sandbox_of(request)
        if group_id not in known_groups(sandbox):
            return no_group(group_id, "is_member")
        member = identity.username in sandbox.store.members_of(group_id)
        found = status(True, "Group was found and membership determined.")
        return JSONResponse({"status": found, "is_member": member})

    @router.get("/groups/user/list_members", response_model=auth_models.ListMembersResponse)
    async def list_members(
        request: Request, id: str = Query(...), identity: Identity = Depends(any_user)
    ) -> JSONResponse:
        sandbox = sandbox_of(request)
        if id not in known_groups(sandbox):
            return no_group(id, "group")
        members = sandbox.store.members_of(id)
        if identity.username not in members:
            return JSONResponse(
                {"status": status(False, f"You are not a member of group with id {id}."), "group": None}
            )
        users = [{"username": u, "email": None, "first_name": None, "last_name": None} for u in members]
        return JSONResponse(
            {
                "status": status(True, f"Group with {len(users)} returned."),
                "group": {**group_metadata(id), "users": users},
            }
        )


def require_link(sandbox: Sandbox, identity: Identity) -> None:
    """registry-api `enforce_user_link_check`: an edit of a linked type needs the caller's Person link."""
    if sandbox.settings.enforce_user_links and not sandbox.store.get_link(identity.username):
        raise provena_error(400, NOT_LINKED)
