"""Where access tokens come from. Full Keycloak flows for real deployments are their own module (issue 6);
the embedded sandbox is signed in to over HTTP with the same device flow a person would use.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

import httpx
import jwt

from .errors import NotAuthorised, Unreachable

SANDBOX_PASSWORD = "sandbox"  # every sandbox realm user's password (docs/sandbox.md)
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class TokenSource(Protocol):
    """Gives a current access token; `refresh` is called once after a 401 with an expired token."""

    async def token(self) -> str: ...

    async def refresh(self) -> bool: ...

    def expired(self) -> bool: ...

    @property
    def username(self) -> str: ...


def claims_of(token: str) -> dict[str, object]:
    """The token's claims, unverified: the server verifies; the client only reads who and until when."""
    try:
        return dict(jwt.decode(token, options={"verify_signature": False}))
    except jwt.PyJWTError:
        return {}


class StaticToken:
    """An access token handed over as is (tests, or `--token` style use); cannot refresh."""

    def __init__(self, access_token: str) -> None:
        self._token = access_token

    async def token(self) -> str:
        return self._token

    async def refresh(self) -> bool:
        return False

    def expired(self) -> bool:
        exp = claims_of(self._token).get("exp")
        return isinstance(exp, int | float) and exp <= time.time() + 5

    @property
    def username(self) -> str:
        return str(claims_of(self._token).get("preferred_username", "unknown"))


class SandboxSignIn:
    """Signs in to the embedded sandbox as one of its users through the device flow, over HTTP."""

    def __init__(self, keycloak_url: str, username: str, client_id: str = "client-tools") -> None:
        self.keycloak_url = keycloak_url
        self._username = username
        self.client_id = client_id
        self._access: str | None = None
        self._refresh: str | None = None
        self._lock = asyncio.Lock()

    @property
    def username(self) -> str:
        return self._username

    async def token(self) -> str:
        async with self._lock:
            if self._access is None or self.expired():
                await self._sign_in()
            assert self._access is not None
            return self._access

    def expired(self) -> bool:
        if self._access is None:
            return True
        exp = claims_of(self._access).get("exp")
        return isinstance(exp, int | float) and exp <= time.time() + 5

    async def refresh(self) -> bool:
        async with self._lock:
            if self._refresh is None:
                await self._sign_in()
                return True
            response = await self._post(
                "/protocol/openid-connect/token",
                {"grant_type": "refresh_token", "refresh_token": self._refresh, "client_id": self.client_id},
            )
            if response.status_code != 200:
                await self._sign_in()
                return True
            self._store(response.json())
            return True

    async def _sign_in(self) -> None:
        started = await self._post("/protocol/openid-connect/auth/device", {"client_id": self.client_id})
        self._check(started, "start the device sign-in")
        device = started.json()
        approved = await self._post(
            "/device",
            {
                "user_code": device["user_code"],
                "username": self._username,
                "password": SANDBOX_PASSWORD,
                "action": "approve",
            },
        )
        self._check(approved, f"sign in as sandbox user '{self._username}'")
        granted = await self._post(
            "/protocol/openid-connect/token",
            {"grant_type": DEVICE_GRANT, "device_code": device["device_code"], "client_id": self.client_id},
        )
        self._check(granted, "obtain a token")
        self._store(granted.json())

    def _store(self, body: dict[str, object]) -> None:
        self._access = str(body["access_token"])
        refresh = body.get("refresh_token")
        self._refresh = str(refresh) if refresh else None

    async def _post(self, path: str, form: dict[str, str]) -> httpx.Response:
        try:
            async with httpx.AsyncClient(timeout=30, trust_env=False) as client:  # loopback: no proxy
                return await client.post(self.keycloak_url + path, data=form)
        except httpx.TransportError as exc:
            raise Unreachable(f"cannot reach the sandbox realm at {self.keycloak_url}: {exc}") from exc

    def _check(self, response: httpx.Response, what: str) -> None:
        if response.status_code != 200:
            detail = response.json().get("error_description", response.text) if response.content else ""
            raise NotAuthorised(
                f"could not {what}: {detail}",
                status=response.status_code,
                hint="the sandbox users are admin, alice, bob and reader (docs/sandbox.md)",
            )
