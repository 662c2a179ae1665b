"""A Keycloak-compatible realm (contract section 3): realm JSON with `public_key`, device
authorisation, and the token endpoint's device-code, refresh/offline and client-credentials grants.

`GET/POST {realm}/device` is the sandbox's stand-in for Keycloak's login page: it approves or
denies a pending user code for one of the realm's users (password `sandbox`).
"""

import html
import time
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

from provena_ops.sandbox.context import Sandbox
from provena_ops.sandbox.realm import DEFAULT_PASSWORD, TokenError

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
POLL_INTERVAL_S = 1
POLL_TOLERANCE_S = 0.25  # timers are not exact: a poll a little early is not "too fast"
INVALID_CLIENT = {
    "error": "invalid_client",
    "error_description": "Invalid client or Invalid client credentials",
}


def oauth_error(code: str, description: str, status_code: int = 400) -> JSONResponse:
    return JSONResponse({"error": code, "error_description": description}, status_code=status_code)


async def form_of(request: Request) -> dict[str, str]:
    parsed = parse_qs((await request.body()).decode(), keep_blank_values=True)
    return {key: values[-1] for key, values in parsed.items()}


def build_keycloak_app(realm_name: str) -> FastAPI:
    app = FastAPI(title="Keycloak realm (sandbox)")

    def sandbox_of(request: Request) -> Sandbox:
        sandbox: Sandbox = request.app.state.sandbox
        return sandbox

    def realm_url(request: Request) -> str:
        return realm_url_of(request, realm_name)

    @app.get("/")
    async def realm_info(request: Request) -> dict[str, Any]:
        return realm_json(request, realm_name)

    @app.get("/.well-known/openid-configuration")
    async def discovery(request: Request) -> dict[str, Any]:
        base = realm_url(request)
        return {
            "issuer": base,
            "token_endpoint": f"{base}/protocol/openid-connect/token",
            "device_authorization_endpoint": f"{base}/protocol/openid-connect/auth/device",
            "revocation_endpoint": f"{base}/protocol/openid-connect/revoke",
            "grant_types_supported": ["refresh_token", "client_credentials", DEVICE_GRANT],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    @app.post("/protocol/openid-connect/auth/device")
    async def device_authorization(request: Request) -> JSONResponse:
        form = await form_of(request)
        client_id = form.get("client_id", "")
        if client_id not in sandbox_of(request).realm.clients():
            return JSONResponse(INVALID_CLIENT, status_code=401)
        scope = form.get("scope", form.get("scopes", ""))
        device_code, user_code = sandbox_of(request).realm.new_device_code(client_id, scope)
        base = realm_url(request)
        return JSONResponse(
            {
                "device_code": device_code,
                "user_code": user_code,
                "verification_uri": f"{base}/device",
                "verification_uri_complete": f"{base}/device?user_code={user_code}",
                "expires_in": 600,
                "interval": POLL_INTERVAL_S,
            }
        )

    @app.post("/protocol/openid-connect/token")
    async def token(request: Request) -> JSONResponse:
        sandbox = sandbox_of(request)
        realm = sandbox.realm
        form = await form_of(request)
        grant = form.get("grant_type", "")
        client_id = form.get("client_id", "")
        client = realm.clients().get(client_id)
        issuer = realm_url(request)
        if client is None:
            return JSONResponse(INVALID_CLIENT, status_code=401)
        if grant == DEVICE_GRANT:
            pending = sandbox.store.get_device_code(device_code=form.get("device_code", ""))
            if pending is None or pending["client_id"] != client_id:
                return oauth_error("invalid_grant", "Device code not valid")
            if pending["expires_at"] < time.time():
                return oauth_error("expired_token", "Device code is expired")
            if pending["denied"]:
                return oauth_error("access_denied", "The end user denied the authorization request")
            if pending["username"] is None:
                # Keycloak answers slow_down to a client that polls faster than the interval (RFC 8628 3.5)
                too_soon = time.time() - pending.get("last_poll", 0.0) < POLL_INTERVAL_S - POLL_TOLERANCE_S
                pending["last_poll"] = time.time()
                with sandbox.store.transaction():
                    sandbox.store.put_device_code(
                        form["device_code"], sandbox.store.user_code_of(form["device_code"]), pending
                    )
                if too_soon:
                    return oauth_error("slow_down", "Client is polling too fast")
                return oauth_error("authorization_pending", "The authorization request is still pending")
            with sandbox.store.transaction():
                pending["expires_at"] = 0
                sandbox.store.put_device_code(form["device_code"], "consumed-" + form["device_code"], pending)
                offline = "offline_access" in pending["scope"].split()
                return JSONResponse(realm.mint_session(pending["username"], client_id, offline, issuer))
        if grant == "refresh_token":
            try:
                with sandbox.store.transaction():
                    return JSONResponse(realm.refresh(form.get("refresh_token", ""), client_id, issuer))
            except TokenError as exc:
                return oauth_error("invalid_grant", exc.detail)
        if grant == "client_credentials":
            account = client.get("service_account")
            if client.get("public") or account is None or form.get("client_secret") != client.get("secret"):
                return oauth_error("unauthorized_client", "Invalid client or Invalid client credentials", 401)
            access = realm.mint_access_token(
                account["username"], list(account["roles"]), client_id=client_id, issuer=issuer
            )
            return JSONResponse(
                {
                    "access_token": access,
                    "expires_in": 300,
                    "refresh_expires_in": 0,
                    "token_type": "Bearer",
                    "not-before-policy": 0,
                    "scope": "profile email",
                }
            )
        return oauth_error("unsupported_grant_type", f"Unsupported grant_type {grant!r}")

    @app.post("/protocol/openid-connect/revoke")
    async def revoke(request: Request) -> JSONResponse:
        sandbox = sandbox_of(request)
        form = await form_of(request)
        try:
            claims = sandbox.realm.peek(form.get("token", ""))
        except TokenError:
            return JSONResponse({})
        with sandbox.store.transaction():
            sandbox.store.revoke_session(str(claims.get("jti", "")))
        return JSONResponse({})

    @app.get("/device", response_class=HTMLResponse)
    async def device_page(user_code: str = "") -> str:
        code = html.escape(user_code)
        return (
            f"<html><body><h1>Provena sandbox sign-in</h1><form method='post'>"
            f"<input name='user_code' value='{code}'><input name='username'>"
            f"<input name='password' type='password'><button name='action' value='approve'>Sign in</button>"
            f"<button name='action' value='deny'>Deny</button></form></body></html>"
        )

    @app.post("/device")
    async def device_approve(request: Request) -> JSONResponse:
        sandbox = sandbox_of(request)
        form = await form_of(request)
        user_code = form.get("user_code", "").strip().upper()
        pending = sandbox.store.get_device_code(user_code=user_code)
        if pending is None or pending["expires_at"] < time.time():
            return oauth_error("invalid_grant", "Unknown or expired user code")
        username = form.get("username", "")
        if username not in sandbox.realm.users() or form.get("password") != DEFAULT_PASSWORD:
            return oauth_error("invalid_grant", "Invalid user credentials", 401)
        pending["username"] = username
        pending["denied"] = form.get("action") == "deny"
        device_code = _device_code_for(sandbox, user_code)
        with sandbox.store.transaction():
            sandbox.store.put_device_code(device_code, user_code, pending)
        return JSONResponse({"approved": not pending["denied"], "username": username})

    return app


def realm_url_of(request: Request, realm_name: str) -> str:
    """The realm's public URL, whether the request reached the mounted app or the bare realm path."""
    return f"{request.url.scheme}://{request.url.netloc}/auth/realms/{realm_name}"


def realm_json(request: Request, realm_name: str) -> dict[str, Any]:
    """`GET {realm}`: what clients fetch the public key from (base64 DER, no PEM armour)."""
    sandbox: Sandbox = request.app.state.sandbox
    base = realm_url_of(request, realm_name)
    return {
        "realm": realm_name,
        "public_key": sandbox.realm.public_key_b64,
        "token-service": f"{base}/protocol/openid-connect",
        "account-service": f"{base}/account",
        "tokens-not-before": 0,
    }


def _device_code_for(sandbox: Sandbox, user_code: str) -> str:
    return sandbox.store.device_code_of(user_code)
