"""Keycloak's OpenID Connect endpoints for one realm (contract section 3), in an admin's words.

Tokens are checked here as Provena's APIs check them (RS256 against the realm's published key, expiry
enforced, audience ignored), so a token the APIs would refuse is caught before the first call, with a
reason, instead of coming back as a bare 401.
"""

from __future__ import annotations

import asyncio
import random
import textwrap
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from provena_ops.provena.errors import NotAuthorised, Unexpected, Unreachable
from provena_ops.provena.retry import RETRY_BUDGET_VARIABLE, TRANSIENT_STATUS, RetryPolicy
from provena_ops.provena.retry import retry_after as http_retry_after

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
TOKEN_PATH = "/protocol/openid-connect/token"
DEVICE_PATH = "/protocol/openid-connect/auth/device"
REVOKE_PATH = "/protocol/openid-connect/revoke"
SLOW_DOWN_STEP_S = 5  # RFC 8628 3.5: a `slow_down` answer adds five seconds to the polling interval


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str | None
    refresh_expires_at: float | None  # None: no refresh token, or an offline token that does not expire


@dataclass(frozen=True)
class DevicePrompt:
    """What a person must do to approve a device sign-in."""

    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: int


class SignInRefused(NotAuthorised):
    """Keycloak said no: a bad or revoked token, wrong client, wrong secret, denied or expired sign-in.
    `error` is Keycloak's OAuth error code (invalid_grant, unauthorized_client, access_denied, ...)."""

    def __init__(self, message: str, *, error: str, hint: str | None = None) -> None:
        super().__init__(message, status=400, detail=error, hint=hint)
        self.error = error


class TokenRejected(NotAuthorised):
    """A token that Provena's APIs would refuse; `reason` is expired, signature or structure."""

    def __init__(self, message: str, *, reason: str, hint: str | None = None) -> None:
        super().__init__(message, status=401, detail=reason, hint=hint)
        self.reason = reason


class Keycloak:
    """One realm of one environment. Use as an async context manager."""

    def __init__(
        self,
        realm_url: str,
        *,
        environment: str,
        use_proxies: bool = True,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.realm_url = realm_url.rstrip("/")
        self.environment = environment
        self._client = httpx.AsyncClient(
            timeout=timeout_s, trust_env=use_proxies, headers={"Accept": "application/json"}
        )
        self._retry = retry or RetryPolicy()
        self._public_key: str | None = None
        self._rng = random.Random()

    async def __aenter__(self) -> Keycloak:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    # ---- the realm's key and token checks ------------------------------------------------------------
    async def public_key(self) -> str:
        """The realm's RS256 key as PEM (Keycloak publishes base64 DER without the armour)."""
        if self._public_key is None:
            response = await self._send("GET", "", None, "read the realm's public key")
            if response.status_code != 200:
                raise Unexpected(
                    f"the realm of '{self.environment}' answered {response.status_code} at {self.realm_url}",
                    hint="check keycloak_endpoint_override (the full realm URL) or domain and realm_name",
                )
            body = self._json(response, "the realm description")
            key = body.get("public_key")
            if not isinstance(key, str) or not key:
                raise Unexpected(
                    f"{self.realm_url} does not publish a public_key: it is not a Keycloak realm",
                    hint="check keycloak_endpoint_override (the full realm URL) or domain and realm_name",
                )
            lines = "\n".join(textwrap.wrap(key, 64))
            self._public_key = f"-----BEGIN PUBLIC KEY-----\n{lines}\n-----END PUBLIC KEY-----\n"
        return self._public_key

    async def verify(self, token: str, *, what: str = "the access token") -> dict[str, Any]:
        """The token's claims, if Provena's APIs would accept it; TokenRejected saying why not."""
        key = await self.public_key()
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                # As Provena's APIs: expiry enforced; audience and issued-at not checked (a client clock a
                # little behind Keycloak's must not refuse a token the APIs accept).
                options={"verify_aud": False, "verify_iat": False, "require": ["exp"]},
            )
        except jwt.ExpiredSignatureError:
            expired_at = expiry_of(token)
            when = f" at {format_utc(expired_at)}" if expired_at else ""
            raise TokenRejected(f"{what} for '{self.environment}' expired{when}", reason="expired") from None
        except (jwt.InvalidKeyError, ValueError) as exc:
            raise Unexpected(
                f"the realm of '{self.environment}' publishes a key that cannot be used: {exc}"
            ) from None
        except jwt.PyJWTError as exc:
            reason = (
                "its signature does not match the realm's key"
                if isinstance(exc, jwt.InvalidSignatureError)
                else "it is not a JWT"
                if isinstance(exc, jwt.DecodeError)
                else str(exc)
            )
            raise TokenRejected(
                f"{what} is not valid for '{self.environment}': {reason}",
                reason="signature",
                hint=f"it was not issued by the realm at {self.realm_url} (another environment's token?)",
            ) from None
        roles = (claims.get("realm_access") or {}).get("roles") if isinstance(claims, dict) else None
        if not isinstance(claims.get("preferred_username"), str) or not isinstance(roles, list):
            raise TokenRejected(
                f"{what} for '{self.environment}' lacks the claims Provena reads (preferred_username, "
                "realm_access.roles)",
                reason="structure",
                hint="sign in through one of Provena's clients (client-tools, automated-access)",
            )
        return dict(claims)

    # ---- grants --------------------------------------------------------------------------------------
    async def start_device(self, client_id: str, scope: str | None = None) -> tuple[str, float, DevicePrompt]:
        """(device_code, polling interval, what the person must do)."""
        form = {"client_id": client_id, **({"scope": scope} if scope else {})}
        body = await self._grant(DEVICE_PATH, form, "start a device sign-in", client_id)
        try:
            prompt = DevicePrompt(
                user_code=str(body["user_code"]),
                verification_uri=str(body["verification_uri"]),
                verification_uri_complete=(
                    str(body["verification_uri_complete"]) if body.get("verification_uri_complete") else None
                ),
                expires_in=int(body.get("expires_in", 600)),
            )
            return str(body["device_code"]), float(body.get("interval", 5)), prompt
        except (KeyError, TypeError, ValueError) as exc:
            raise Unexpected(f"the device sign-in answer of '{self.environment}' lacks {exc}") from None

    async def await_device(
        self, client_id: str, device_code: str, interval: float, expires_in: int
    ) -> TokenSet:
        """Poll until the person approves, denies, or the code expires (RFC 8628)."""
        deadline = time.monotonic() + expires_in
        while True:
            await asyncio.sleep(interval)
            form = {"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": client_id}
            response = await self._send("POST", TOKEN_PATH, form, "poll the device sign-in")
            if response.status_code == 200:
                return self._token_set(response)
            error, description = self._oauth_error(response)
            if error == "authorization_pending" and time.monotonic() < deadline:
                continue
            if error == "slow_down" and time.monotonic() < deadline:
                interval += SLOW_DOWN_STEP_S
                continue
            if error == "access_denied":
                raise SignInRefused(f"the sign-in to '{self.environment}' was denied", error=error)
            if error in ("expired_token", "authorization_pending", "slow_down"):
                raise SignInRefused(
                    f"the sign-in code for '{self.environment}' expired before it was approved",
                    error="expired_token",
                    hint="run the command again and approve within the time shown",
                )
            raise SignInRefused(
                f"Keycloak ended the sign-in to '{self.environment}': {error} ({description})", error=error
            )

    async def approve_sandbox_device(self, user_code: str, username: str, password: str) -> None:
        """The embedded sandbox's stand-in for Keycloak's login page (docs/sandbox.md); no realm has it."""
        form = {"user_code": user_code, "username": username, "password": password, "action": "approve"}
        response = await self._send("POST", "/device", form, f"sign in as sandbox user '{username}'")
        if response.status_code != 200:
            error, description = self._oauth_error(response)
            raise SignInRefused(
                f"could not sign in to '{self.environment}' as sandbox user '{username}': {description}",
                error=error,
                hint="the sandbox users are admin, alice, bob and reader (docs/sandbox.md)",
            )

    async def refresh(self, client_id: str, refresh_token: str, *, what: str = "the session") -> TokenSet:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
        return self._token_set_of(await self._grant(TOKEN_PATH, form, f"renew {what}", client_id, what))

    async def client_credentials(self, client_id: str, secret: str) -> TokenSet:
        form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
        return self._token_set_of(
            await self._grant(TOKEN_PATH, form, "sign in with client credentials", client_id)
        )

    async def revoke(self, client_id: str, token: str) -> bool:
        """End the session a refresh or offline token belongs to; False if Keycloak could not be told."""
        form = {"client_id": client_id, "token": token, "token_type_hint": "refresh_token"}
        try:
            response = await self._send("POST", REVOKE_PATH, form, "revoke the session")
        except Unreachable:
            return False
        return response.status_code == 200

    # ---- plumbing ------------------------------------------------------------------------------------
    async def _grant(
        self, path: str, form: Mapping[str, str], purpose: str, client_id: str, what: str = "the session"
    ) -> dict[str, Any]:
        response = await self._send("POST", path, form, purpose)
        if response.status_code == 200:
            return self._json(response, "the token answer")
        error, description = self._oauth_error(response)
        raise SignInRefused(
            f"Keycloak refused to {purpose} for '{self.environment}': {error} ({description})",
            error=error,
            hint=_grant_hint(error, description, client_id, what, self.environment),
        )

    async def _send(
        self, method: str, path: str, form: Mapping[str, str] | None, purpose: str
    ) -> httpx.Response:
        """Keycloak's grants are safe to repeat: a retried refresh or poll at worst asks twice.

        Retried under the same time budget as Provena's reads, so a realm restarting during a long
        apply costs a wait, not the run.
        """
        url = self.realm_url + path
        started = time.monotonic()
        attempt = 0
        while True:
            retry_after: float | None = None
            try:
                response = await self._client.request(method, url, data=form)
            except httpx.HTTPError as exc:
                failure = f"{type(exc).__name__} {exc}".strip()
            else:
                if response.status_code not in TRANSIENT_STATUS:
                    return response
                failure = f"HTTP {response.status_code}"
                retry_after = http_retry_after(response)
            if self._retry.exhausted(attempt, started):
                break
            delay = self._retry.delay(attempt, retry_after, self._rng)
            await asyncio.sleep(self._retry.wait(delay, started))
            attempt += 1
        raise Unreachable(
            f"could not {purpose}: the realm of '{self.environment}' at {self.realm_url} failed "
            f"{attempt + 1} times in {time.monotonic() - started:.0f} s ({failure})",
            hint="check the network and keycloak_endpoint_override (or domain and realm_name); "
            f"${RETRY_BUDGET_VARIABLE} sets how long to keep trying",
        )

    def _json(self, response: httpx.Response, what: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise Unexpected(f"{what} from {self.realm_url} is not a JSON object: is it a Keycloak realm?")
        return body

    def _token_set(self, response: httpx.Response) -> TokenSet:
        return self._token_set_of(self._json(response, "the token answer"))

    def _token_set_of(self, body: dict[str, Any]) -> TokenSet:
        access = body.get("access_token")
        if not isinstance(access, str) or not access:
            raise Unexpected(f"the realm of '{self.environment}' answered a grant without an access_token")
        refresh = body.get("refresh_token")
        lifetime = body.get("refresh_expires_in")
        expires_at = time.time() + lifetime if isinstance(lifetime, int | float) and lifetime > 0 else None
        return TokenSet(access, refresh if isinstance(refresh, str) and refresh else None, expires_at)

    @staticmethod
    def _oauth_error(response: httpx.Response) -> tuple[str, str]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and "error" in body:
            return str(body["error"]), str(body.get("error_description", "no description"))
        return f"HTTP {response.status_code}", "not an OAuth answer: is this the realm's URL?"


def _grant_hint(error: str, description: str, client_id: str, what: str, environment: str) -> str:
    if error.startswith("HTTP "):
        return "check keycloak_endpoint_override (the full realm URL), or domain and realm_name"
    if error == "invalid_client" or error == "unauthorized_client":
        return (
            f"client '{client_id}' is unknown to the realm or its secret is wrong; check client_id and the "
            "secret's variable in environments.json"
        )
    if error == "invalid_grant" and "offline token" in what:
        return (
            f"{what} was revoked or has expired; mint a new one with `provena-ops auth offline-token "
            f"{environment} --out FILE` and replace the CI secret"
        )
    if error == "invalid_grant":
        return f"{what} was revoked or has expired; sign in again with `provena-ops auth login {environment}`"
    return f"Keycloak's own words: {description}"


def expiry_of(token: str) -> float | None:
    """`exp` read without verifying: for saying when a token expired, never for trusting it."""
    try:
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    except jwt.PyJWTError:
        return None
    return float(exp) if isinstance(exp, int | float) else None


def format_utc(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))
