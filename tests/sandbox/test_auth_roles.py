"""Authentication and authorisation on the sandbox's registry, prov and job APIs (contract 2, 2.0, 2.1, 3).

Provena answers every auth failure with 401 (never 403), with fixed `detail` texts and a
`WWW-Authenticate: Bearer` header; clients decide whether to refresh by that text, so it must match.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from provena_ops.sandbox.seed import SeedSummary
from tests.conftest import Api

NOT_AUTHENTICATED = "Not authenticated"
BAD_CREDENTIALS = "Could not validate credentials"
BAD_STRUCTURE = "Token had incorrect structure."
MISSING_ROLE = "You are not authorised to access this resource as you don't have the correct role."
LOCKED = "Cannot perform this action as the resource is locked."
FULL_ITEM_ROLES = ["metadata-read", "metadata-write", "admin"]

R_READ, R_WRITE, R_ADMIN = "entity-registry-read", "entity-registry-write", "entity-registry-admin"
J_READ, J_WRITE, J_ADMIN = "job-service-read", "job-service-write", "job-service-admin"
SERVICES = ("registry", "prov", "jobs")
STUDY = "/registry/activity/study"

# A key the realm never saw: tokens it signs must fail signature checks.
FOREIGN_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


# ---- helpers ------------------------------------------------------------------------------------
def base(api: Api, service: str) -> str:
    return {"registry": api.registry, "prov": api.prov, "jobs": api.jobs}[service]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def with_roles(api: Api, roles: list[str], user: str = "alice") -> dict[str, str]:
    return bearer(api.token(user, roles))


def claims(user: str = "alice", roles: list[str] | None = None, lifetime: int = 300) -> dict[str, Any]:
    now = int(time.time())
    return {
        "exp": now + lifetime,
        "iat": now,
        "jti": str(uuid.uuid4()),
        "typ": "Bearer",
        "azp": "client-tools",
        "preferred_username": user,
        "email": f"{user}@sandbox.provena.test",
        "realm_access": {"roles": roles if roles is not None else [R_READ, R_WRITE]},
    }


def realm_signed(api: Api, payload: dict[str, Any]) -> str:
    """Sign arbitrary claims with the realm's own key, to craft structurally odd but genuine tokens."""
    private_pem = api._sandbox.store.get_meta("realm.private_key")
    assert private_pem is not None
    return jwt.encode(payload, private_pem, algorithm="RS256", headers={"kid": "sandbox"})


def foreign_signed(payload: dict[str, Any]) -> str:
    pem = FOREIGN_KEY.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return jwt.encode(payload, pem, algorithm="RS256", headers={"kid": "sandbox"})


def assert_401(response: httpx.Response, detail: str) -> None:
    assert response.status_code == 401, response.text
    assert response.json() == {"detail": detail}
    assert response.headers.get("www-authenticate") == "Bearer"


def first_id(api: Api, prefix: str, **where: str) -> str:
    """Id of the first complete item of a subtype (optionally with matching top-level fields)."""
    body = api.http.post(f"{api.registry}{prefix}/list", json={"page_size": 100}, headers=api.auth()).json()
    for item in body["items"]:
        if all(item.get(key) == value for key, value in where.items()):
            return str(item["id"])
    raise AssertionError(f"no {prefix} item matching {where}")


def study_owned_by(api: Api, demo: SeedSummary, owner: str) -> str:
    for study_id in (s.strip() for s in demo.notable["studies"].split(",")):
        item = fetch(api, STUDY, study_id, api.auth())["item"]
        if item["owner_username"] == owner:
            return study_id
    raise AssertionError(f"no seeded study owned by {owner}")


def fetch(api: Api, prefix: str, item_id: str, headers: dict[str, str]) -> dict[str, Any]:
    response = api.http.get(f"{api.registry}{prefix}/fetch", params={"id": item_id}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def study_domain(item: dict[str, Any]) -> dict[str, Any]:
    keys = ("display_name", "user_metadata", "title", "description", "study_alternative_id")
    return {key: item[key] for key in keys}


def update_study(
    api: Api, study_id: str, headers: dict[str, str], title: str = "Renamed by a test"
) -> httpx.Response:
    domain = study_domain(fetch(api, STUDY, study_id, api.auth())["item"]) | {"title": title}
    return api.http.put(
        f"{api.registry}{STUDY}/update",
        params={"id": study_id, "reason": "auth test"},
        json=domain,
        headers=headers,
    )


def lock(api: Api, prefix: str, item_id: str) -> None:
    response = api.http.put(
        f"{api.registry}{prefix}/locks/lock", json={"id": item_id, "reason": "auth test"}, headers=api.auth()
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"]["success"] is True


# A representative real route per service: (method, path, query, json body).
Route = tuple[str, str, dict[str, str], Any]


def real_route(service: str, demo: SeedSummary) -> Route:
    run_id = demo.notable["model run with annotations"]
    return {
        "registry": ("GET", "/registry/activity/model_run/fetch", {"id": run_id}, None),
        "prov": ("GET", "/explore/upstream", {"starting_id": run_id}, None),
        "jobs": ("POST", "/jobs/user/list", {}, {}),
    }[service]


def call(api: Api, service: str, route: Route, headers: dict[str, str]) -> httpx.Response:
    method, path, params, body = route
    return api.http.request(method, base(api, service) + path, params=params, json=body, headers=headers)


def check_access(api: Api, service: str, level: str, headers: dict[str, str]) -> httpx.Response:
    return api.http.get(f"{base(api, service)}/check-access/check-{level}-access", headers=headers)


# ---- token failures: 401 with the exact texts ----------------------------------------------------
BAD_TOKENS: list[tuple[str, str]] = [
    ("no header", NOT_AUTHENTICATED),
    ("basic scheme", NOT_AUTHENTICATED),
    ("bearer without token", NOT_AUTHENTICATED),
    ("garbage", BAD_CREDENTIALS),
    ("foreign signature", BAD_CREDENTIALS),
    ("expired", BAD_CREDENTIALS),
    ("no realm_access", BAD_STRUCTURE),
    ("no preferred_username", BAD_STRUCTURE),
]


def bad_headers(api: Api, case: str) -> dict[str, str]:
    if case == "no header":
        return {}
    if case == "basic scheme":
        return {"Authorization": "Basic YWRtaW46c2FuZGJveA=="}
    if case == "bearer without token":
        return {"Authorization": "Bearer"}
    if case == "garbage":
        return bearer("not.a.jwt")
    if case == "foreign signature":
        return bearer(foreign_signed(claims("admin", [R_READ, R_WRITE, R_ADMIN])))
    if case == "expired":
        return bearer(api.token("admin", lifetime=-30))
    if case == "no realm_access":
        payload = claims("admin")
        del payload["realm_access"]
        return bearer(realm_signed(api, payload))
    if case == "no preferred_username":
        payload = claims("admin", [R_READ, R_WRITE, R_ADMIN, J_READ, J_WRITE, J_ADMIN])
        del payload["preferred_username"]
        return bearer(realm_signed(api, payload))
    raise AssertionError(case)


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize(("case", "detail"), BAD_TOKENS)
def test_bad_tokens_get_401_with_exact_detail(
    api: Api, demo: SeedSummary, service: str, case: str, detail: str
) -> None:
    """Both the check-access route and a real data route reject the token the same way."""
    headers = bad_headers(api, case)
    assert_401(check_access(api, service, "general", headers), detail)
    assert_401(call(api, service, real_route(service, demo), headers), detail)


def test_realm_signed_token_is_accepted_and_audience_ignored(api: Api) -> None:
    """Control for the crafted tokens above: the same claims, intact, are accepted, whatever `aud` says."""
    token = realm_signed(api, claims("alice", [R_READ]) | {"aud": "some-other-client"})
    response = check_access(api, "registry", "read", bearer(token))
    assert response.status_code == 200, response.text
    assert response.json()["username"] == "alice"


def test_missing_email_claim_is_incorrect_structure(api: Api) -> None:
    """`email` is one of the three consumed claims (contract 3)."""
    payload = claims("alice", [R_READ])
    del payload["email"]
    assert_401(check_access(api, "registry", "read", bearer(realm_signed(api, payload))), BAD_STRUCTURE)


# ---- realm-role tiers -----------------------------------------------------------------------------
REGISTRY_TIERS: list[tuple[str, list[str], bool]] = [
    ("general", [], True),
    ("read", [R_READ], True),
    ("read", [], False),
    ("read", [R_WRITE, R_ADMIN], False),
    ("write", [R_READ, R_WRITE], True),
    ("write", [R_WRITE], False),
    ("write", [R_READ, R_ADMIN], False),
    ("admin", [R_READ, R_WRITE, R_ADMIN], True),
    ("admin", [R_WRITE, R_ADMIN], False),
    ("admin", [R_READ, R_ADMIN], False),
    ("admin", [R_READ, R_WRITE], False),
    ("admin", [J_READ, J_WRITE, J_ADMIN], False),
]
JOB_TIERS: list[tuple[str, list[str], bool]] = [
    ("general", [], True),
    ("read", [J_READ], True),
    ("read", [R_READ, R_WRITE, R_ADMIN], False),
    ("write", [J_READ, J_WRITE], True),
    ("write", [J_WRITE], False),
    ("admin", [J_READ, J_WRITE, J_ADMIN], True),
    ("admin", [J_WRITE, J_ADMIN], False),
    ("admin", [J_READ, J_WRITE], False),
]
DEFAULT_ROLES = ["offline_access", "default-roles-provena", "uma_authorization"]
TIER_CASES = [
    pytest.param(service, level, roles, ok, id=f"{service}-{level}-{'+'.join(roles) or 'none'}")
    for service in ("registry", "prov")
    for level, roles, ok in REGISTRY_TIERS
] + [
    pytest.param("jobs", level, roles, ok, id=f"jobs-{level}-{'+'.join(roles) or 'none'}")
    for level, roles, ok in JOB_TIERS
]


@pytest.mark.parametrize(("service", "level", "roles", "ok"), TIER_CASES)
def test_check_access_tiers(api: Api, service: str, level: str, roles: list[str], ok: bool) -> None:
    """Each level needs *all* lower roles too; success answers the caller as Provena's `User`."""
    token = api.token("bob", roles)
    response = check_access(api, service, level, bearer(token))
    if not ok:
        assert_401(response, MISSING_ROLE)
        return
    assert response.status_code == 200, response.text
    assert response.json() == {
        "username": "bob",
        "email": "bob@sandbox.provena.test",
        "roles": [*DEFAULT_ROLES, *roles],  # Keycloak's default realm roles ride in every token
        "access_token": token,
    }


USER_ROLES = {
    "admin": [
        R_READ,
        R_WRITE,
        R_ADMIN,
        J_READ,
        J_WRITE,
        J_ADMIN,
        "sys-admin-read",
        "sys-admin-write",
        "sys-admin-admin",
    ],
    "alice": [R_READ, R_WRITE],
    "reader": [R_READ],
}


@pytest.mark.parametrize("service", SERVICES)
def test_default_users_on_check_access(api: Api, service: str) -> None:
    """Seeded users: reader reads, alice writes, only admin administers (and only admin has job roles)."""
    for user, level, ok in [
        ("admin", "admin", True),
        ("reader", "read", service != "jobs"),
        ("reader", "write", False),
        ("alice", "write", service != "jobs"),
        ("alice", "admin", False),
    ]:
        response = check_access(api, service, level, api.auth(user))
        if ok:
            assert response.status_code == 200, (user, level, response.text)
            assert response.json()["username"] == user
            assert response.json()["roles"] == [*DEFAULT_ROLES, *USER_ROLES[user]]
        else:
            assert_401(response, MISSING_ROLE)


def test_registry_write_route_rejects_write_role_without_read(api: Api, demo: SeedSummary) -> None:
    study_id = study_owned_by(api, demo, "alice")
    assert_401(update_study(api, study_id, with_roles(api, [R_WRITE])), MISSING_ROLE)
    assert fetch(api, STUDY, study_id, api.auth())["item"]["title"] != "Renamed by a test"


def test_registry_admin_route_rejects_write_admin_without_read(api: Api, demo: SeedSummary) -> None:
    study_id = study_owned_by(api, demo, "bob")
    response = api.http.delete(
        f"{api.registry}{STUDY}/delete", params={"id": study_id}, headers=with_roles(api, [R_WRITE, R_ADMIN])
    )
    assert_401(response, MISSING_ROLE)
    assert fetch(api, STUDY, study_id, api.auth())["status"]["success"] is True


def test_prov_routes_enforce_tiers(api: Api, demo: SeedSummary) -> None:
    run_id = demo.notable["model run with annotations"]
    explore = api.http.get(
        f"{api.prov}/explore/upstream", params={"starting_id": run_id}, headers=api.auth("reader")
    )
    assert explore.status_code == 200, explore.text
    delete = api.http.post(
        f"{api.prov}/model_run/delete",
        json={"record_id": run_id, "trial_mode": True},
        headers=with_roles(api, [R_WRITE, R_ADMIN], "admin"),
    )
    assert_401(delete, MISSING_ROLE)
    update = api.http.post(f"{api.prov}/model_run/update", json={}, headers=with_roles(api, [R_WRITE]))
    assert_401(update, MISSING_ROLE)


def test_job_routes_enforce_tiers(api: Api) -> None:
    """User routes take any valid token; admin routes need job-service roles, not registry ones."""
    no_roles = with_roles(api, [])
    listed = api.http.post(f"{api.jobs}/jobs/user/list", json={}, headers=no_roles)
    assert listed.status_code == 200, listed.text
    assert listed.json()["jobs"] == []
    registry_admin = with_roles(api, [R_READ, R_WRITE, R_ADMIN], "admin")
    assert_401(api.http.post(f"{api.jobs}/jobs/admin/list", json={}, headers=registry_admin), MISSING_ROLE)
    launch = {
        "username": "alice",
        "job_type": "EMAIL",
        "job_sub_type": "SEND_EMAIL",
        "job_payload": {},
    }
    write_only = with_roles(api, [J_WRITE], "admin")
    assert_401(api.http.post(f"{api.jobs}/jobs/admin/launch", json=launch, headers=write_only), MISSING_ROLE)
    admin_list = api.http.post(f"{api.jobs}/jobs/admin/list", json={}, headers=with_roles(api, [J_READ]))
    assert admin_list.status_code == 200, admin_list.text


# ---- authentication before request validation (contract 2.0) ------------------------------------
def test_missing_token_beats_missing_query_param(api: Api) -> None:
    assert_401(api.http.get(f"{api.registry}{STUDY}/fetch"), NOT_AUTHENTICATED)
    assert_401(api.http.get(f"{api.prov}/explore/upstream"), NOT_AUTHENTICATED)
    assert_401(api.http.get(f"{api.jobs}/jobs/user/fetch"), NOT_AUTHENTICATED)


def test_missing_role_beats_malformed_body(api: Api) -> None:
    """A non-admin never learns what a valid admin body looks like: 401, not 422."""
    alice = api.auth("alice")
    for body in ({"import_mode": "NOPE"}, {}, {"import_mode": "ADD_ONLY", "items": "not a list"}):
        assert_401(api.http.post(f"{api.registry}/admin/import", json=body, headers=alice), MISSING_ROLE)
    reader = api.auth("reader")
    update = api.http.put(f"{api.registry}{STUDY}/update", json={"title": 5}, headers=reader)
    assert_401(update, MISSING_ROLE)
    assert_401(api.http.post(f"{api.prov}/model_run/update", json=[], headers=reader), MISSING_ROLE)
    assert_401(api.http.get(f"{api.jobs}/jobs/admin/fetch", headers=alice), MISSING_ROLE)


def test_valid_token_with_missing_param_is_422(api: Api) -> None:
    """Control for the two tests above: with auth satisfied, validation does run."""
    response = api.http.get(f"{api.registry}{STUDY}/fetch", headers=api.auth("reader"))
    assert response.status_code == 422, response.text


# ---- item-level permissions -----------------------------------------------------------------------
def test_general_read_lets_others_fetch_but_not_update(api: Api, demo: SeedSummary) -> None:
    study_id = study_owned_by(api, demo, "bob")
    before = fetch(api, STUDY, study_id, api.auth())["item"]
    as_alice = fetch(api, STUDY, study_id, api.auth("alice"))
    assert as_alice["status"]["success"] is True
    assert as_alice["roles"] == ["metadata-read"]
    response = update_study(api, study_id, api.auth("alice"))
    assert response.status_code == 401, response.text
    assert response.json()["detail"]
    assert fetch(api, STUDY, study_id, api.auth())["item"] == before


def test_admin_owned_item_is_readable_by_writers(api: Api) -> None:
    person_id = first_id(api, "/registry/agent/person", owner_username="admin")
    body = fetch(api, "/registry/agent/person", person_id, api.auth("alice"))
    assert body["status"]["success"] is True
    assert body["roles"] == ["metadata-read"]


def test_owner_and_admin_get_all_item_roles(api: Api, demo: SeedSummary) -> None:
    study_id = study_owned_by(api, demo, "bob")
    assert fetch(api, STUDY, study_id, api.auth("bob"))["roles"] == FULL_ITEM_ROLES
    assert fetch(api, STUDY, study_id, api.auth("admin"))["roles"] == FULL_ITEM_ROLES
    response = update_study(api, study_id, api.auth("bob"), title="Renamed by its owner")
    assert response.status_code == 200, response.text
    assert response.json()["status"]["success"] is True
    assert fetch(api, STUDY, study_id, api.auth())["item"]["title"] == "Renamed by its owner"


def test_realm_admin_gets_all_roles_on_items_it_does_not_own(api: Api, demo: SeedSummary) -> None:
    run_id = demo.notable["model run with annotations"]
    body = fetch(api, "/registry/activity/model_run", run_id, api.auth("admin"))
    assert body["item"]["owner_username"] != "admin"
    assert body["roles"] == FULL_ITEM_ROLES


def test_reader_can_fetch(api: Api, demo: SeedSummary) -> None:
    study_id = study_owned_by(api, demo, "alice")
    body = fetch(api, STUDY, study_id, api.auth("reader"))
    assert body["status"]["success"] is True
    assert body["item"]["id"] == study_id
    assert body["roles"] == ["metadata-read"]


def test_group_roles_add_to_general_roles(api: Api) -> None:
    """alice is in the seeded `modellers` group, which has write on bob's runs; dropping the group
    entry leaves her with the general metadata-read only."""
    prefix = "/registry/activity/model_run"
    run_id = first_id(api, prefix, owner_username="bob")
    config_url = f"{api.registry}{prefix}/auth/configuration"
    config = api.http.get(config_url, params={"id": run_id}, headers=api.auth()).json()
    assert config["groups"] == {"modellers": ["metadata-read", "metadata-write"]}
    assert fetch(api, prefix, run_id, api.auth("alice"))["roles"] == ["metadata-read", "metadata-write"]
    assert fetch(api, prefix, run_id, api.auth("reader"))["roles"] == ["metadata-read"]
    cleared = config | {"groups": {}}
    response = api.http.put(config_url, params={"id": run_id}, json=cleared, headers=api.auth())
    assert response.status_code == 200, response.text
    assert fetch(api, prefix, run_id, api.auth("alice"))["roles"] == ["metadata-read"]


def test_no_item_read_gives_401_on_fetch(api: Api, demo: SeedSummary) -> None:
    study_id = study_owned_by(api, demo, "bob")
    settings = {"owner": "bob", "general": [], "groups": {}}
    url = f"{api.registry}{STUDY}/auth/configuration"
    response = api.http.put(url, params={"id": study_id}, json=settings, headers=api.auth())
    assert response.status_code == 200, response.text
    denied = api.http.get(f"{api.registry}{STUDY}/fetch", params={"id": study_id}, headers=api.auth("alice"))
    assert denied.status_code == 401, denied.text
    assert denied.json() == {"detail": "You are not authorised to fetch this item."}
    assert fetch(api, STUDY, study_id, api.auth("bob"))["status"]["success"] is True


def test_locked_study_rejects_update_even_for_owner_and_admin(api: Api, demo: SeedSummary) -> None:
    study_id = study_owned_by(api, demo, "alice")
    lock(api, STUDY, study_id)
    assert fetch(api, STUDY, study_id, api.auth("alice"))["locked"] is True
    for user in ("alice", "admin"):
        response = update_study(api, study_id, api.auth(user))
        assert response.status_code == 401, response.text
        assert response.json() == {"detail": LOCKED}
    assert fetch(api, STUDY, study_id, api.auth())["item"]["title"] != "Renamed by a test"


def test_lock_check_precedes_item_permission(api: Api, demo: SeedSummary) -> None:
    """Contract 4.4 order: a non-owner on a locked study hears about the lock, not about permissions."""
    study_id = study_owned_by(api, demo, "bob")
    lock(api, STUDY, study_id)
    response = update_study(api, study_id, api.auth("alice"))
    assert response.status_code == 401, response.text
    assert response.json() == {"detail": LOCKED}


def test_non_owner_cannot_lock(api: Api, demo: SeedSummary) -> None:
    """Lock needs item admin: alice has only metadata-read on bob's study."""
    study_id = study_owned_by(api, demo, "bob")
    response = api.http.put(
        f"{api.registry}{STUDY}/locks/lock", json={"id": study_id, "reason": "no"}, headers=api.auth("alice")
    )
    assert response.status_code == 401, response.text
    assert fetch(api, STUDY, study_id, api.auth())["locked"] is False
