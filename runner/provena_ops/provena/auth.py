"""Where access tokens come from: Keycloak sign-ins that renew themselves before the APIs would refuse them.

A session holds one access token, checked against the realm's key when it is obtained, and renews it
30 s before expiry (as Provena's own client does): by refresh grant while a refresh token lasts, else by
signing in again the way the environment says (device flow for people, an offline token or client
credentials for CI). Sessions for people are cached between commands (token_cache); secrets are not.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import Protocol

import jwt

from provena_ops.provena.errors import NotAuthorised
from provena_ops.provena.keycloak import (
    DevicePrompt,
    Keycloak,
    SignInRefused,
    TokenRejected,
    TokenSet,
    format_utc,
)
from provena_ops.provena.token_cache import CACHE_DIR_VARIABLE, CachedSession, credential_digest
from provena_ops.provena.token_cache import load as load_cached
from provena_ops.provena.token_cache import save as save_cached

SANDBOX_PASSWORD = "sandbox"  # every sandbox realm user's password (docs/sandbox.md)
RENEW_MARGIN_S = 30  # provenaclient treats a token expiring within 30 s as stale

DevicePromptHandler = Callable[[str, DevicePrompt], None]


class TokenSource(Protocol):
    """Gives a current access token; `refresh` is called once after a 401 that blames the token."""

    async def token(self) -> str: ...

    async def refresh(self, stale: str) -> bool: ...

    def expired(self) -> bool: ...

    @property
    def username(self) -> str: ...

    async def aclose(self) -> None: ...


def claims_of(token: str) -> dict[str, object]:
    """The token's claims, unverified: for reading who and until when, never for trusting them."""
    try:
        return dict(jwt.decode(token, options={"verify_signature": False}))
    except jwt.PyJWTError:
        return {}


def _expires_within(token: str, seconds: float) -> bool:
    exp = claims_of(token).get("exp")
    return isinstance(exp, int | float) and exp <= time.time() + seconds


class StaticToken:
    """An access token used as given, unchecked (tests and benchmarks); it cannot be renewed."""

    def __init__(self, access_token: str) -> None:
        self._token = access_token

    async def token(self) -> str:
        return self._token

    async def refresh(self, stale: str) -> bool:
        return False

    def expired(self) -> bool:
        return _expires_within(self._token, 5)

    @property
    def username(self) -> str:
        return str(claims_of(self._token).get("preferred_username", "unknown"))

    async def aclose(self) -> None:
        return None


class NotSignedIn(NotAuthorised):
    """No usable session, and no way to start one without a person."""


class SignIn(Protocol):
    """One way of obtaining tokens from the realm."""

    method: str
    client_id: str

    @property
    def credential(self) -> str: ...  # digest of the secret the tokens come from; "" when none

    @property
    def cacheable(self) -> bool: ...

    async def acquire(self, realm: Keycloak) -> TokenSet: ...


class DeviceSignIn:
    """A person approves in a browser (RFC 8628). Without a prompt (no terminal) it cannot start."""

    method = "device"

    def __init__(
        self,
        client_id: str,
        environment: str,
        prompt: DevicePromptHandler | None,
        scope: str | None = None,
    ) -> None:
        self.client_id = client_id
        self.environment = environment
        self.prompt = prompt
        self.scope = scope

    credential = ""
    cacheable = True

    async def acquire(self, realm: Keycloak) -> TokenSet:
        if self.prompt is None:
            raise NotSignedIn(
                f"not signed in to '{self.environment}', and there is no terminal to sign in on",
                hint=f"run `provena-ops auth login {self.environment}` first; for CI use an offline token "
                "or client credentials (docs/auth.md)",
            )
        device_code, interval, prompt = await realm.start_device(self.client_id, self.scope)
        self.prompt(self.environment, prompt)
        return await realm.await_device(self.client_id, device_code, interval, prompt.expires_in)


class SandboxSignIn:
    """The embedded sandbox's users sign in through the same device flow, approved by provena-ops itself
    (the sandbox's stand-in login page takes the shared sandbox password)."""

    method = "sandbox"
    credential = ""
    cacheable = False

    def __init__(self, username: str, client_id: str = "client-tools") -> None:
        self.username = username
        self.client_id = client_id

    async def acquire(self, realm: Keycloak) -> TokenSet:
        device_code, _, prompt = await realm.start_device(self.client_id)
        await realm.approve_sandbox_device(prompt.user_code, self.username, SANDBOX_PASSWORD)
        return await realm.await_device(self.client_id, device_code, 0, prompt.expires_in)


class OfflineTokenSignIn:
    """CI: a long-lived offline token (a secret) is exchanged for access tokens by the refresh grant."""

    method = "offline_token"
    cacheable = True

    def __init__(self, client_id: str, offline_token: str, source: str) -> None:
        self.client_id = client_id
        self._offline_token = offline_token
        self.source = source

    @property
    def credential(self) -> str:
        return credential_digest(self._offline_token)

    async def acquire(self, realm: Keycloak) -> TokenSet:
        tokens = await realm.refresh(
            self.client_id, self._offline_token, what=f"the offline token from {self.source}"
        )
        return TokenSet(tokens.access_token, None, None)  # the offline token stays where it came from


class ClientCredentialsSignIn:
    """A service account: client id and secret, no person and no refresh token."""

    method = "client_credentials"
    cacheable = True

    def __init__(self, client_id: str, secret: str) -> None:
        self.client_id = client_id
        self._secret = secret

    @property
    def credential(self) -> str:
        return credential_digest(self._secret)

    async def acquire(self, realm: Keycloak) -> TokenSet:
        return await realm.client_credentials(self.client_id, self._secret)


class GivenToken:
    """An access token handed over ($PROVENA_OPS_ACCESS_TOKEN): checked, used, never renewed."""

    method = "access_token"
    client_id = ""
    credential = ""
    cacheable = False

    def __init__(self, access_token: str, source: str) -> None:
        self._token = access_token
        self.source = source

    async def acquire(self, realm: Keycloak) -> TokenSet:
        return TokenSet(self._token, None, None)


class KeycloakSession:
    """A TokenSource over one realm and one way of signing in."""

    def __init__(self, realm: Keycloak, sign_in: SignIn, *, environment: str, use_cache: bool = True) -> None:
        self.realm = realm
        self.sign_in = sign_in
        self.environment = environment
        self.use_cache = use_cache and sign_in.cacheable
        self.claims: dict[str, object] = {}
        self.renewals = 0  # tokens obtained from Keycloak by this session (tests read it)
        self._access: str | None = None
        self._refresh: str | None = None
        self._refresh_expires_at: float | None = None
        self._cache_read = False
        self._lock = asyncio.Lock()

    @property
    def username(self) -> str:
        return str(self.claims.get("preferred_username", "unknown"))

    @property
    def roles(self) -> list[str]:
        realm_access = self.claims.get("realm_access")
        roles = realm_access.get("roles") if isinstance(realm_access, dict) else None
        return [str(role) for role in roles] if isinstance(roles, list) else []

    @property
    def refresh_expires_at(self) -> float | None:
        return self._refresh_expires_at

    @property
    def has_refresh_token(self) -> bool:
        return self._refresh is not None

    def _expires_within(self, seconds: float) -> bool:
        exp = self.claims.get("exp")
        return self._access is None or (isinstance(exp, int | float) and exp <= time.time() + seconds)

    def expired(self) -> bool:
        return self._expires_within(5)

    async def token(self) -> str:
        access = self._access
        if access is not None and not self._expires_within(RENEW_MARGIN_S):
            return access  # the path every request takes: no lock, no decoding
        async with self._lock:
            if not self._cache_read:
                self._cache_read = True
                await self._adopt_cached()
            if self._expires_within(RENEW_MARGIN_S):
                await self._renew()
            assert self._access is not None
            return self._access

    async def sign_in_afresh(self) -> None:
        """`auth login`: a new session whatever is cached (another user, or one about to end)."""
        async with self._lock:
            self._cache_read = True
            self._refresh = None
            await self._renew()

    async def refresh(self, stale: str) -> bool:
        """After a 401 that blames `stale`: a different token, or False when there is none to be had. When
        many requests are refused at once, the first renews and the others take its token."""
        async with self._lock:
            if self._access is not None and self._access != stale:
                return True
            await self._renew()
            return self._access != stale

    async def aclose(self) -> None:
        await self.realm.aclose()

    async def _adopt_cached(self) -> None:
        if not self.use_cache:
            return
        cached = load_cached(self.environment)
        if cached is None or not cached.matches(
            self.realm.realm_url, self.sign_in.client_id, self.sign_in.method, self.sign_in.credential
        ):
            return
        self._refresh = cached.refresh_token
        self._refresh_expires_at = cached.refresh_expires_at
        try:
            self.claims = await self.realm.verify(cached.access_token)
        except TokenRejected as exc:
            if exc.reason != "expired":  # another realm's key, or the realm's key changed: start afresh
                self._refresh = None
            return
        self._access = cached.access_token

    def _cache(self, session: CachedSession) -> None:
        """Caching spares the next command a sign-in; failing to cache must not fail this one."""
        try:
            save_cached(session)
        except OSError as exc:
            self.use_cache = False
            sys.stderr.write(
                f"warning: the session for '{self.environment}' is not cached ({exc.strerror or exc}: "
                f"{exc.filename or ''}); set {CACHE_DIR_VARIABLE} to a writable directory to keep it\n"
            )

    async def _renew(self) -> None:
        tokens: TokenSet | None = None
        if self._refresh is not None and not (
            self._refresh_expires_at is not None and self._refresh_expires_at <= time.time()
        ):
            try:
                tokens = await self.realm.refresh(self.sign_in.client_id, self._refresh)
            except SignInRefused:
                tokens = None  # the session ended (revoked, idle, or expired): sign in afresh
        self._refresh = None
        if tokens is None:
            tokens = await self.sign_in.acquire(self.realm)
        what = (
            f"the access token from {self.sign_in.source}"
            if isinstance(self.sign_in, GivenToken)
            else ("the access token Keycloak issued")
        )
        try:
            claims = await self.realm.verify(tokens.access_token, what=what)
        except TokenRejected as exc:
            if isinstance(self.sign_in, GivenToken):
                exc.hint = (
                    f"set {self.sign_in.source} to a fresh token for this environment, or unset it to sign "
                    "in the environment's own way"
                )
            raise
        self.renewals += 1
        self._access, self.claims = tokens.access_token, claims
        self._refresh, self._refresh_expires_at = tokens.refresh_token, tokens.refresh_expires_at
        if self.use_cache:
            self._cache(
                CachedSession(
                    environment=self.environment,
                    realm_url=self.realm.realm_url,
                    client_id=self.sign_in.client_id,
                    method=self.sign_in.method,
                    credential=self.sign_in.credential,
                    access_token=tokens.access_token,
                    refresh_token=tokens.refresh_token,
                    refresh_expires_at=self._refresh_expires_at,
                )
            )


def access_expiry_text(claims: dict[str, object]) -> str:
    exp = claims.get("exp")
    if not isinstance(exp, int | float):
        return "no expiry"
    left = int(exp - time.time())
    return f"{format_utc(exp)} ({'in ' + duration(left) if left > 0 else 'expired'})"


def duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 86400:
        return f"{seconds // 86400}d {seconds % 86400 // 3600}h"
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    if seconds >= 60:
        return f"{seconds // 60}m {seconds % 60}s"
    return f"{seconds}s"
