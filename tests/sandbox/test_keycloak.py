"""The sandbox's Keycloak realm as provenaclient and Provena's services use it (contract 3).

Flows are driven over HTTP the way provenaclient does: the realm JSON's bare `public_key`, the
device flow with `scopes` (sic), refresh and offline grants, plus client credentials for services.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.serialization import load_der_public_key

from tests.conftest import Api

CI_CLIENT = "provena-ops-ci"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
ADMIN_ROLES = [
    "entity-registry-read",
    "entity-registry-write",
    "entity-registry-admin",
    "job-service-read",
    "job-service-write",
    "job-service-admin",
]


# ---- helpers ------------------------------------------------------------------------------------
def post_form(api: Api, path: str, data: dict[str, str]) -> httpx.Response:
    return api.http.post(f"{api.keycloak}{path}", data=data)


def token_request(api: Api, **form: str) -> httpx.Response:
    return post_form(api, "/protocol/openid-connect/token", form)


def start_device(api: Api, client_id: str = "client-tools", **extra: str) -> dict[str, Any]:
    """provenaclient's device request: `client_id` plus a (misnamed) empty `scopes` field."""
    response = post_form(api, "/protocol/openid-connect/auth/device", {"client_id": client_id, **extra})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def poll(api: Api, device: dict[str, Any], client_id: str = "client-tools") -> httpx.Response:
    return token_request(api, grant_type=DEVICE_GRANT, device_code=device["device_code"], client_id=client_id)


def sign_in(api: Api, user_code: str, username: str, action: str = "approve") -> httpx.Response:
    """The sandbox's stand-in for Keycloak's browser login page."""
    form = {"user_code": user_code, "username": username, "password": "sandbox", "action": action}
    return post_form(api, "/device", form)


def device_login(api: Api, username: str, client_id: str = "client-tools", **extra: str) -> dict[str, Any]:
    device = start_device(api, client_id, **(extra or {"scopes": ""}))
    assert sign_in(api, device["user_code"], username).status_code == 200
    response = poll(api, device, client_id)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def refresh(api: Api, refresh_token: str, client_id: str = "client-tools") -> httpx.Response:
    return token_request(api, grant_type="refresh_token", client_id=client_id, refresh_token=refresh_token)


def realm_pem(api: Api) -> str:
    """Exactly how provenaclient and KeycloakFastAPI turn the realm's bare key into PEM."""
    response = api.http.get(api.keycloak)
    assert response.status_code == 200, (response.status_code, response.headers, response.text)
    key = response.json()["public_key"]
    return f"-----BEGIN PUBLIC KEY-----\r\n{key}\r\n-----END PUBLIC KEY-----"


def verify(api: Api, token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(
        token, realm_pem(api), algorithms=["RS256"], options={"verify_aud": False}
    )
    return claims


def assert_oauth_error(response: httpx.Response, status_code: int, error: str) -> None:
    assert response.status_code == status_code, response.text
    assert response.json()["error"] == error
    assert "access_token" not in response.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def check_access(api: Api, base_url: str, level: str, token: str) -> httpx.Response:
    return api.http.get(f"{base_url}/check-access/check-{level}-access", headers=bearer(token))


def revoke(api: Api, token: str, client_id: str = "client-tools") -> httpx.Response:
    return post_form(api, "/protocol/openid-connect/revoke", {"token": token, "client_id": client_id})


# ---- realm info and token format -------------------------------------------------------------------
def test_realm_json_publishes_bare_der_public_key(api: Api) -> None:
    response = api.http.get(api.keycloak)
    assert response.status_code == 200, (response.status_code, response.headers, response.text)
    key = response.json()["public_key"]
    assert isinstance(key, str)
    assert "-----" not in key and "\n" not in key
    load_der_public_key(base64.b64decode(key, validate=True))


def test_public_key_verifies_tokens_as_provenaclient_does(api: Api) -> None:
    token = device_login(api, "alice")["access_token"]
    claims = verify(api, token)
    assert claims["preferred_username"] == "alice"
    assert claims["email"] == "alice@sandbox.provena.test"
    assert claims["realm_access"]["roles"] == [
        "offline_access",  # Keycloak's default realm roles come first, in every token
        "default-roles-provena",
        "uma_authorization",
        "entity-registry-read",
        "entity-registry-write",
    ]
    assert isinstance(claims["exp"], int) and claims["exp"] > time.time()
    assert jwt.get_unverified_header(token)["alg"] == "RS256"


def test_public_key_rejects_tampered_token(api: Api) -> None:
    """The key must actually be the signing key: a token with altered claims fails verification."""
    token = device_login(api, "reader")["access_token"]
    header, _, signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    claims["realm_access"]["roles"] = ADMIN_ROLES
    forged_payload = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    with pytest.raises(jwt.InvalidSignatureError):
        verify(api, f"{header}.{forged_payload}.{signature}")


# ---- device flow ---------------------------------------------------------------------------------
def test_device_authorisation_response_shape(api: Api) -> None:
    device = start_device(api, scopes="")
    assert {
        "device_code",
        "user_code",
        "verification_uri",
        "verification_uri_complete",
        "interval",
        "expires_in",
    } <= device.keys()
    assert device["verification_uri"].startswith(api.keycloak + "/")
    assert device["user_code"] in device["verification_uri_complete"]
    assert device["verification_uri_complete"].startswith(device["verification_uri"])
    assert isinstance(device["interval"], int) and device["interval"] >= 1
    assert isinstance(device["expires_in"], int) and device["expires_in"] > 0


def test_device_flow_pending_then_approved(api: Api) -> None:
    device = start_device(api, scopes="")
    assert_oauth_error(poll(api, device), 400, "authorization_pending")
    assert_oauth_error(poll(api, device), 400, "slow_down")  # polled again before the interval, as Keycloak
    time.sleep(device["interval"])
    assert_oauth_error(poll(api, device), 400, "authorization_pending")
    assert sign_in(api, device["user_code"], "bob").status_code == 200
    response = poll(api, device)
    assert response.status_code == 200, response.text
    body = response.json()
    assert {"access_token", "refresh_token", "expires_in", "refresh_expires_in", "token_type"} <= body.keys()
    assert body["token_type"].lower() == "bearer"
    assert verify(api, body["access_token"])["preferred_username"] == "bob"


def test_device_flow_denied(api: Api) -> None:
    device = start_device(api, scopes="")
    assert sign_in(api, device["user_code"], "alice", action="deny").status_code == 200
    assert_oauth_error(poll(api, device), 400, "access_denied")


def test_device_code_cannot_be_reused(api: Api) -> None:
    device = start_device(api, scopes="")
    sign_in(api, device["user_code"], "alice")
    assert poll(api, device).status_code == 200
    again = poll(api, device)
    assert again.status_code == 400, again.text
    assert again.json()["error"] != "authorization_pending"
    assert "access_token" not in again.json()


def test_device_code_is_bound_to_its_client(api: Api) -> None:
    device = start_device(api, scopes="")
    sign_in(api, device["user_code"], "alice")
    response = poll(api, device, client_id="automated-access")
    assert response.status_code == 400, response.text
    assert "access_token" not in response.json()


def test_sign_in_with_wrong_password_does_not_approve(api: Api) -> None:
    device = start_device(api, scopes="")
    form = {"user_code": device["user_code"], "username": "alice", "password": "wrong", "action": "approve"}
    assert post_form(api, "/device", form).status_code >= 400
    assert_oauth_error(poll(api, device), 400, "authorization_pending")


# ---- refresh, offline and revocation -----------------------------------------------------------------
def test_refresh_grant_issues_a_new_access_token(api: Api) -> None:
    tokens = device_login(api, "alice")
    response = refresh(api, tokens["refresh_token"])
    assert response.status_code == 200, response.text
    access = response.json()["access_token"]
    assert access != tokens["access_token"]
    assert verify(api, access)["preferred_username"] == "alice"
    assert check_access(api, api.registry, "write", access).status_code == 200


def test_offline_token_refreshes_repeatedly(api: Api) -> None:
    tokens = device_login(api, "alice", "automated-access", scope="offline_access")
    offline = tokens["refresh_token"]
    assert jwt.decode(offline, options={"verify_signature": False})["typ"] == "Offline"
    assert "offline_access" in tokens["scope"].split()
    for _ in range(3):
        response = refresh(api, offline, client_id="automated-access")
        assert response.status_code == 200, response.text
        assert verify(api, response.json()["access_token"])["preferred_username"] == "alice"


def test_refresh_with_other_client_is_invalid_grant(api: Api) -> None:
    tokens = device_login(api, "alice")
    response = refresh(api, tokens["refresh_token"], client_id="automated-access")
    assert_oauth_error(response, 400, "invalid_grant")


def test_refresh_with_garbage_token_is_400(api: Api) -> None:
    assert_oauth_error(refresh(api, "not-a-refresh-token"), 400, "invalid_grant")


def test_access_token_is_not_a_refresh_token(api: Api) -> None:
    tokens = device_login(api, "alice")
    assert_oauth_error(refresh(api, tokens["access_token"]), 400, "invalid_grant")


def test_revoked_refresh_token_stops_refreshing(api: Api) -> None:
    tokens = device_login(api, "alice")
    revoked = revoke(api, tokens["refresh_token"])
    assert revoked.status_code == 200, revoked.text
    assert_oauth_error(refresh(api, tokens["refresh_token"]), 400, "invalid_grant")
    # The APIs validate access tokens locally (signature + exp), so it stays usable until it expires.
    assert check_access(api, api.registry, "read", tokens["access_token"]).status_code == 200


def test_revoking_one_session_leaves_others(api: Api) -> None:
    first, second = device_login(api, "alice"), device_login(api, "alice")
    assert revoke(api, first["refresh_token"]).status_code == 200
    assert refresh(api, second["refresh_token"]).status_code == 200


# ---- client credentials and client errors ----------------------------------------------------------
def test_client_credentials_gives_service_account_admin_token(api: Api) -> None:
    response = token_request(
        api, grant_type="client_credentials", client_id=CI_CLIENT, client_secret="sandbox-client-secret"
    )
    assert response.status_code == 200, response.text
    access = response.json()["access_token"]
    claims = verify(api, access)
    assert claims["preferred_username"] == "service-account-provena-ops-ci"
    assert set(ADMIN_ROLES) <= set(claims["realm_access"]["roles"])
    checked = check_access(api, api.registry, "admin", access)
    assert checked.status_code == 200, checked.text
    assert checked.json()["username"] == "service-account-provena-ops-ci"


def test_client_credentials_with_wrong_secret_is_401(api: Api) -> None:
    response = token_request(api, grant_type="client_credentials", client_id=CI_CLIENT, client_secret="wrong")
    assert response.status_code == 401, response.text
    assert "error" in response.json() and "access_token" not in response.json()


def test_client_credentials_refused_for_public_client(api: Api) -> None:
    response = token_request(api, grant_type="client_credentials", client_id="client-tools")
    assert response.status_code in (400, 401), response.text
    assert "error" in response.json() and "access_token" not in response.json()


@pytest.mark.parametrize(
    "path",
    ["/protocol/openid-connect/token", "/protocol/openid-connect/auth/device"],
)
def test_unknown_client_is_invalid_client(api: Api, path: str) -> None:
    form = {"client_id": "no-such-client", "grant_type": "refresh_token", "refresh_token": "x"}
    assert_oauth_error(post_form(api, path, form), 401, "invalid_client")


def test_unsupported_grant_type(api: Api) -> None:
    response = token_request(api, grant_type="urn:example:not-a-grant", client_id="client-tools")
    assert_oauth_error(response, 400, "unsupported_grant_type")


# ---- realm tokens on the services --------------------------------------------------------------------
def test_realm_tokens_work_on_all_apis(api: Api) -> None:
    access = device_login(api, "admin")["access_token"]
    for base_url in (api.registry, api.prov, api.jobs):
        response = check_access(api, base_url, "admin", access)
        assert response.status_code == 200, (base_url, response.text)
        assert response.json()["username"] == "admin"
        assert response.json()["access_token"] == access
    offline = device_login(api, "alice", "automated-access", scope="offline_access")["refresh_token"]
    access = refresh(api, offline, client_id="automated-access").json()["access_token"]
    assert check_access(api, api.registry, "write", access).status_code == 200
    listed = api.http.post(f"{api.jobs}/jobs/user/list", json={}, headers=bearer(access))
    assert listed.status_code == 200, listed.text
