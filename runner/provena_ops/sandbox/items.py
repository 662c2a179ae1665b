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
from pydantic import BaseModel, ValidationError

from provena_ops.sandbox.context import Sandbox
from provena_ops.sandbox.http import provena_error, unauthorised, v1_dump
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


def check_lock(sandbox: Sandbox, item_id: str) -> None:
    """Provena's lock gate before writes: unknown ids fail the lock-table lookup (400)."""
    entry = sandbox.store.get_lock(item_id)
    if entry is None:
        raise provena_error(
            400,
            f"Failed to check if locked. No access provided. Error: Could not find the given key ({item_id}) "
            "in the lock table.",
        )
    if entry["lock_information"]["locked"]:
        raise unauthorised(LOCKED)


def parse_dump(model: type[BaseModel], data: dict[str, Any]) -> str | None:
    """None when `data` parses as `model`, else pydantic-1 style text of what failed."""
    try:
        model.model_validate(data)
    except ValidationError as exc:
        return v1_dump(model.__name__, [dict(e) for e in exc.errors()])
    return None


def wrong_subtype_dump(info: SubtypeInfo, item: dict[str, Any]) -> str:
    """What Provena says when a complete item of another subtype is read through this route."""
    dump = parse_dump(info.item_model, item)
    if dump is None or item.get("item_subtype") != info.subtype:
        dump = v1_dump(
            info.item_model.__name__,
            [
                {
                    "type": "enum",
                    "loc": ("item_subtype",),
                    "msg": "",
                    "ctx": {"expected": f"'{info.subtype}'"},
                },
            ],
        )
    return dump


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
    item = info.item_model.model_validate(item).model_dump(mode="json")
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
    item = info.item_model.model_validate(item).model_dump(mode="json")
    sandbox.store.put_item(item)
    return item


def lock_change(
    sandbox: Sandbox, identity: Identity, info: SubtypeInfo, item_id: str, reason: str, lock: bool
) -> str:
    entry = sandbox.store.get_lock(item_id)
    item = sandbox.store.get_item(item_id)
    if entry is None or item is None:
        raise provena_error(400, f"Could not find the given key ({item_id}) in the lock table.")
    if item["item_subtype"] != info.subtype:
        raise provena_error(400, wrong_subtype_dump(info, item))
    if not can(item_roles(sandbox, identity, item_id, item["item_subtype"]), ADMIN_ITEM_ROLES):
        raise unauthorised("You do not have sufficient permissions to change the lock status of this item.")
    information = entry["lock_information"]
    if information["locked"] == lock:
        state = "locked" if lock else "unlocked"
        raise provena_error(400, f"Cannot {'lock' if lock else 'unlock'} an item which is already {state}.")
    information["locked"] = lock
    information["history"].append(
        {
            "action_type": "LOCK" if lock else "UNLOCK",
            "username": identity.username,
            "email": identity.email,
            "reason": reason,
            "timestamp": sandbox.now(),
        }
    )
    sandbox.store.put_lock(entry)
    return f"Successfully {'locked' if lock else 'unlocked'} item with id {item_id}."
