"""Registry semantics shared by the registry routes, the prov job worker and the seeder.

Failures are raised as `HTTPException` (hard errors, Provena's status and detail) or `SoftFailure`
(HTTP 200 with status.success=false), because the sandbox's whole purpose is to reproduce
Provena's wire behaviour; the job worker turns both into FAILED job info.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ProvenaInterfaces import RegistryAPI as api
from ProvenaInterfaces import RegistryModels as models
from pydantic import ValidationError

from provena_ops.sandbox.context import Sandbox
from provena_ops.sandbox.http import InternalError, provena_error, unauthorised, v1_dump
from provena_ops.sandbox.realm import REGISTRY_ADMIN, Identity


class SoftFailure(Exception):
    """Provena's HTTP 200 answer with status.success=false."""

    def __init__(self, details: str) -> None:
        super().__init__(details)
        self.details = details


class ActionSet(StrEnum):
    STANDARD = "STANDARD"
    SERVICE_PROXY = "SERVICE_PROXY"
    READ_ONLY = "READ_ONLY"


@dataclass(frozen=True)
class SubtypeInfo:
    subtype: str
    category: str
    prefix: str
    item_model: type[models.ItemBase]
    domain_model: type[models.DomainInfoBase]
    fetch_response: type[api.GenericFetchResponse]
    list_response: type[api.GenericListResponse]
    actions: ActionSet
    versioned: bool = False


M = models
SUBTYPES: dict[str, SubtypeInfo] = {
    info.subtype: info
    for info in [
        SubtypeInfo(
            "MODEL_RUN",
            "ACTIVITY",
            "/registry/activity/model_run",
            M.ItemModelRun,
            M.ModelRunDomainInfo,
            api.ModelRunFetchResponse,
            api.ModelRunListResponse,
            ActionSet.SERVICE_PROXY,
        ),
        SubtypeInfo(
            "STUDY",
            "ACTIVITY",
            "/registry/activity/study",
            M.ItemStudy,
            M.StudyDomainInfo,
            api.StudyFetchResponse,
            api.StudyListResponse,
            ActionSet.STANDARD,
        ),
        SubtypeInfo(
            "CREATE",
            "ACTIVITY",
            "/registry/activity/create",
            M.ItemCreate,
            M.CreateDomainInfo,
            api.CreateFetchResponse,
            api.CreateListResponse,
            ActionSet.READ_ONLY,
        ),
        SubtypeInfo(
            "VERSION",
            "ACTIVITY",
            "/registry/activity/version",
            M.ItemVersion,
            M.VersionDomainInfo,
            api.VersionFetchResponse,
            api.VersionListResponse,
            ActionSet.READ_ONLY,
        ),
        SubtypeInfo(
            "PERSON",
            "AGENT",
            "/registry/agent/person",
            M.ItemPerson,
            M.PersonDomainInfo,
            api.PersonFetchResponse,
            api.PersonListResponse,
            ActionSet.STANDARD,
        ),
        SubtypeInfo(
            "ORGANISATION",
            "AGENT",
            "/registry/agent/organisation",
            M.ItemOrganisation,
            M.OrganisationDomainInfo,
            api.OrganisationFetchResponse,
            api.OrganisationListResponse,
            ActionSet.STANDARD,
        ),
        SubtypeInfo(
            "MODEL",
            "ENTITY",
            "/registry/entity/model",
            M.ItemModel,
            M.ModelDomainInfo,
            api.ModelFetchResponse,
            api.ModelListResponse,
            ActionSet.STANDARD,
            versioned=True,
        ),
        SubtypeInfo(
            "MODEL_RUN_WORKFLOW_TEMPLATE",
            "ENTITY",
            "/registry/entity/model_run_workflow",
            M.ItemModelRunWorkflowTemplate,
            M.ModelRunWorkflowTemplateDomainInfo,
            api.ModelRunWorkflowTemplateFetchResponse,
            api.ModelRunWorkflowTemplateListResponse,
            ActionSet.STANDARD,
            versioned=True,
        ),
        SubtypeInfo(
            "DATASET_TEMPLATE",
            "ENTITY",
            "/registry/entity/dataset_template",
            M.ItemDatasetTemplate,
            M.DatasetTemplateDomainInfo,
            api.DatasetTemplateFetchResponse,
            api.DatasetTemplateListResponse,
            ActionSet.STANDARD,
            versioned=True,
        ),
        SubtypeInfo(
            "DATASET",
            "ENTITY",
            "/registry/entity/dataset",
            M.ItemDataset,
            M.DatasetDomainInfo,
            api.DatasetFetchResponse,
            api.DatasetListResponse,
            ActionSet.SERVICE_PROXY,
            versioned=True,
        ),
    ]
}

ENTITY_ROLES = list(models.ENTITY_BASE_ROLE_LIST)
DATASET_ROLES = list(models.DATASET_ROLE_LIST)
READ_ROLES = {models.METADATA_READ_ROLE, models.METADATA_WRITE_ROLE, models.ADMIN_ROLE}
WRITE_ROLES = {models.METADATA_WRITE_ROLE, models.ADMIN_ROLE}
ADMIN_ITEM_ROLES = {models.ADMIN_ROLE}

LOCKED = "Cannot perform this action as the resource is locked."


def available_roles(subtype: str) -> list[str]:
    return DATASET_ROLES if subtype == "DATASET" else ENTITY_ROLES


def item_roles(sandbox: Sandbox, identity: Identity, item_id: str, subtype: str) -> list[str]:
    """Resolution order of Provena's registry auth: realm admin, owner, then general + group roles."""
    if REGISTRY_ADMIN in identity.roles:
        return available_roles(subtype)
    auth = sandbox.store.get_auth(item_id)
    if auth is None:
        return []
    settings = auth["access_settings"]
    if settings.get("owner") == identity.username:
        return available_roles(subtype)
    roles: list[str] = list(settings.get("general") or [])
    member_of = sandbox.store.groups_of(identity.username)
    for group_id, group_roles in (settings.get("groups") or {}).items():
        if group_id in member_of:
            roles.extend(r for r in group_roles if r not in roles)
    return roles


def can(roles: list[str], needed: set[str]) -> bool:
    return bool(needed.intersection(roles))


def is_locked(sandbox: Sandbox, item_id: str) -> bool:
    entry = sandbox.store.get_lock(item_id)
    return bool(entry and entry["lock_information"]["locked"])


def key_error(item_id: str) -> str:
    """How Provena's f-strings render the KeyError its registry read raises for a missing id: the
    repr of the message (registry-api helpers/dynamo_helpers.py, get_entry_raw)."""
    return repr(f"Failed to find item. Is the ID ('{item_id}') correct and in the database?")


def enum_text(kind: str, value: str) -> str:
    """A str-Enum member inside an f-string on Python 3.11, where Provena's services run."""
    return f"{kind}.{value}"


def no_lock_row(item_id: str) -> str:
    """registry-api helpers/lock_helpers.py, get_item_from_lock_table."""
    return f"Failed to retrieve ID {item_id} from the lock table, are you sure it exists?"


def check_lock(sandbox: Sandbox, item_id: str) -> None:
    """`locked_check` (registry-api helpers/item_type_route_generator.py), the gate before every
    write: an unknown id has no lock row, so it fails here with a 400 before any existence check."""
    entry = sandbox.store.get_lock(item_id)
    if entry is None:
        raise provena_error(
            400, f"Failed to check if locked. No access provided. Error: {no_lock_row(item_id)}."
        )
    if entry["lock_information"]["locked"]:
        raise unauthorised(LOCKED)


def v1_item_errors(info: SubtypeInfo, data: dict[str, Any]) -> list[dict[str, Any]]:
    """The errors pydantic 1 reports parsing `data` as the route's item model, in its order: the
    item's own fields, then its history entries, then the category and subtype validators (which
    the pydantic-2 port of the models leaves out). Checked against provena-interfaces 2.10.3 on
    pydantic 1.10.17 (tests/sandbox/data/v1_cross_parse.json)."""
    try:
        info.item_model.model_validate(data)
    except ValidationError as exc:
        return _in_v1_order(info, data, [dict(e) for e in exc.errors()])
    return _in_v1_order(info, data, [])


def _in_v1_order(
    info: SubtypeInfo, data: dict[str, Any], errors: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    own = [e for e in errors if tuple(e.get("loc", ()))[:1] != ("history",)]
    history = [e for e in errors if tuple(e.get("loc", ()))[:1] == ("history",)]
    checks: list[dict[str, Any]] = []
    if data.get("item_category") != info.category:
        checks.append(
            {
                "type": "assertion_error",
                "loc": ("item_category",),
                "msg": "Incorrect item_category provided. The required category is "
                f"{enum_text('ItemCategory', info.category)}.",
            }
        )
    if data.get("item_subtype") != info.subtype:
        checks.append(
            {
                "type": "assertion_error",
                "loc": ("item_subtype",),
                "msg": "Incorrect item_subtype provided. The required type is "
                f"{enum_text('ItemSubType', info.subtype)}.",
            }
        )
    return [*own, *history, *checks]


def v1_item_dump(info: SubtypeInfo, data: dict[str, Any]) -> str | None:
    """str(ValidationError) of pydantic 1 for `data` as the route's item model; None if it parses."""
    errors = v1_item_errors(info, data)
    return v1_dump(info.item_model, errors) if errors else None


def parsed_item(info: SubtypeInfo, stored: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """A complete stored item parsed once for a typed answer: its typed view, or pydantic 1's dump
    when it is not an item of the route's subtype."""
    try:
        model = info.item_model.model_validate(stored)
    except ValidationError as exc:
        errors = _in_v1_order(info, stored, [dict(e) for e in exc.errors()])
    else:
        errors = _in_v1_order(info, stored, [])
        if not errors:
            return model.model_dump(mode="json"), None
    return None, v1_dump(info.item_model, errors)


def typed_view(info: SubtypeInfo, stored: dict[str, Any]) -> dict[str, Any]:
    """A stored item as typed routes answer it: parsed into the model, so every optional field is
    there (null when unset), where the stored form leaves them out."""
    if stored.get("record_type") == "SEED_ITEM":
        return models.SeededItem.model_validate(stored).model_dump(mode="json")
    return info.item_model.model_validate(stored).model_dump(mode="json")


def stored_form(info: SubtypeInfo, item: dict[str, Any]) -> dict[str, Any]:
    """What Provena writes: `py_to_dict`, i.e. the model's JSON with every None left out."""
    return info.item_model.model_validate(item).model_dump(mode="json", exclude_none=True)


def check_raw_item_subtype(info: SubtypeInfo, item_id: str, item: dict[str, Any]) -> None:
    """registry-api helpers/action_helpers.py `check_raw_item_subtype`: lock, unlock and the access
    settings routes parse the stored item with the route's model before acting."""
    expected = enum_text("ItemSubType", info.subtype)
    stored = str(item.get("item_subtype"))
    if item.get("record_type") == "SEED_ITEM":
        if stored != info.subtype:
            raise provena_error(
                400,
                f"Fetched item with handle {item_id} has item subtype of {enum_text('ItemSubType', stored)} "
                f"but expected {expected}. Are you using the correct endpoint route for "
                f"{enum_text('ItemSubType', stored)}'s?.",
            )
        return
    dump = v1_item_dump(info, item)
    if dump is None:
        return
    if stored == info.subtype:
        raise provena_error(
            500,
            f"Failed to parse item of subtype {stored} with the associated route's subtype pydanctic "
            f"model of {expected}. Does the stored item have an old format? Error: {dump}.",
        )
    raise provena_error(
        400,
        f"Failed to parse item with the associated route's subtype model of {expected}. Are you using the "
        f"correct endpoint route for id {item_id} pointing to an item subtype of {stored}? Error: {dump}.",
    )


def new_item(
    sandbox: Sandbox,
    info: SubtypeInfo,
    item_id: str,
    owner: str,
    domain: dict[str, Any],
    timestamp: int,
    general_roles: list[str] | None = None,
) -> dict[str, Any]:
    """A complete item with its auth and (unlocked) lock entries, as registry create leaves it."""
    item = {
        "id": item_id,
        "owner_username": owner,
        "created_timestamp": timestamp,
        "updated_timestamp": timestamp,
        "item_category": info.category,
        "item_subtype": info.subtype,
        "record_type": "COMPLETE_ITEM",
        "workflow_links": None,
        "versioning_info": {"previous_version": None, "version": 1, "reason": None, "next_version": None}
        if info.versioned
        else None,
        **domain,
        "history": [
            {
                "id": 0,
                "timestamp": timestamp,
                "reason": "Initial record creation",
                "username": owner,
                "item": domain,
            }
        ],
    }
    item = stored_form(info, item)
    with sandbox.store.transaction():
        sandbox.store.put_item(item)
        sandbox.store.put_auth(
            {
                "id": item_id,
                "access_settings": {
                    "owner": owner,
                    "general": general_roles if general_roles is not None else [models.METADATA_READ_ROLE],
                    "groups": {},
                },
            }
        )
        sandbox.store.put_lock({"id": item_id, "lock_information": {"locked": False, "history": []}})
    return item


def write_update(
    sandbox: Sandbox,
    info: SubtypeInfo,
    existing: dict[str, Any],
    domain: dict[str, Any],
    reason: str,
    username: str,
) -> dict[str, Any]:
    """Replace the domain info, keep identity and versioning, prepend history (id = max + 1)."""
    history = list(existing.get("history") or [])
    next_id = max((int(entry["id"]) for entry in history), default=-1) + 1
    now = sandbox.now()
    keep = {
        key: existing.get(key)
        for key in (
            "id",
            "owner_username",
            "created_timestamp",
            "item_category",
            "item_subtype",
            "workflow_links",
            "versioning_info",
        )
    }
    item = {
        **keep,
        "updated_timestamp": max(now, int(existing.get("updated_timestamp") or 0)),
        "record_type": "COMPLETE_ITEM",
        **domain,
        "history": [
            {"id": next_id, "timestamp": now, "reason": reason, "username": username, "item": domain},
            *history,
        ],
    }
    item = stored_form(info, item)
    sandbox.store.put_item(item)
    return item


def lock_change(
    sandbox: Sandbox, identity: Identity, info: SubtypeInfo, item_id: str, reason: str, lock: bool
) -> str:
    """registry-api helpers/action_helpers.py lock_resource_route_helper / unlock_resource_route_helper
    and helpers/lock_helpers.py apply_lock / apply_unlock, in their order of checks."""
    entry = sandbox.store.get_lock(item_id)
    if entry is None:
        raise provena_error(400, no_lock_row(item_id))
    # Provena's unlock reuses the lock text.
    if not can(item_roles(sandbox, identity, item_id, info.subtype), ADMIN_ITEM_ROLES):
        raise unauthorised("You are not authorised to lock this item.")
    item = sandbox.store.get_item(item_id)
    if item is None:
        raise InternalError(f"lock row without a registry item: {item_id}")  # an uncaught KeyError
    check_raw_item_subtype(info, item_id, item)
    information = entry["lock_information"]
    if information["locked"] == lock:
        raise provena_error(
            400, "Resource is already locked." if lock else "Cannot unlock already unlocked resource."
        )
    information["locked"] = lock
    event = {
        "action_type": "LOCK" if lock else "UNLOCK",
        "username": identity.username,
        "email": identity.email,
        "reason": reason,
        "timestamp": sandbox.now(),
    }
    information["history"].append({key: value for key, value in event.items() if value is not None})
    sandbox.store.put_lock(entry)
    return "Resource locked successfully." if lock else "Resource unlocked successfully."
