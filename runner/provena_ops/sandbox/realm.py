"""The sandbox's Keycloak-compatible realm: signing key, users, clients, token minting and checking.

The signing key lives in the sandbox database, so tokens minted by `provena-ops sandbox token`
in one process verify in the server of another, and survive a restart.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from provena_ops.sandbox.store import Store

ACCESS_TOKEN_SECONDS = 300
REFRESH_TOKEN_SECONDS = 1800
OFFLINE_TOKEN_SECONDS = 60 * 60 * 24 * 30

REGISTRY_READ = "entity-registry-read"
REGISTRY_WRITE = "entity-registry-write"
REGISTRY_ADMIN = "entity-registry-admin"
JOB_READ = "job-service-read"
JOB_WRITE = "job-service-write"
JOB_ADMIN = "job-service-admin"
SYS_ADMIN_READ = "sys-admin-read"
SYS_ADMIN_WRITE = "sys-admin-write"
SYS_ADMIN_ADMIN = "sys-admin-admin"
ALL_REALM_ROLES = [
    REGISTRY_READ,
    REGISTRY_WRITE,
    REGISTRY_ADMIN,
    JOB_READ,
    JOB_WRITE,
    JOB_ADMIN,
    SYS_ADMIN_READ,
    SYS_ADMIN_WRITE,
    SYS_ADMIN_ADMIN,
]
# Roles of Provena's own services (registry /proxy routes), never of a person.
SERVICE_ROLES = ["prov-api", "data-store-api"]
# The account client's roles Keycloak grants every user through the realm's default roles.
ACCOUNT_ROLES = ["manage-account", "manage-account-links", "view-profile", "delete-account"]


def default_realm_roles(realm_name: str) -> list[str]:
    """What Keycloak (12+) puts in every user's token: the realm's default-roles composite and the
    two roles it holds."""
    return ["offline_access", f"default-roles-{realm_name.lower()}", "uma_authorization"]


def token_roles(realm_name: str, roles: list[str]) -> list[str]:
    """`realm_access.roles` of a token: the default realm roles, then the user's own."""
    defaults = default_realm_roles(realm_name)
    return [*defaults, *(role for role in dict.fromkeys(roles) if role not in defaults)]


def known_realm_roles(realm_name: str) -> list[str]:
    return [*ALL_REALM_ROLES, *SERVICE_ROLES, *default_realm_roles(realm_name)]


ROLE_PRESETS: dict[str, list[str]] = {
    "admin": ALL_REALM_ROLES,
    "write": [REGISTRY_READ, REGISTRY_WRITE],
    "read": [REGISTRY_READ],
    "none": [],
}

DEFAULT_PASSWORD = "sandbox"
DEFAULT_USERS: dict[str, dict[str, Any]] = {
    "admin": {"email": "admin@sandbox.provena.test", "roles": ROLE_PRESETS["admin"]},
    "alice": {"email": "alice@sandbox.provena.test", "roles": ROLE_PRESETS["write"]},
    "bob": {"email": "bob@sandbox.provena.test", "roles": ROLE_PRESETS["write"]},
    "reader": {"email": "reader@sandbox.provena.test", "roles": ROLE_PRESETS["read"]},
}
# Public clients of Provena (client-tools, automated-access) plus one confidential service account.
DEFAULT_CLIENTS: dict[str, dict[str, Any]] = {
    "client-tools": {"public": True},
    "automated-access": {"public": True},
    "provena-ops-ci": {
        "public": False,
        "secret": "sandbox-client-secret",
        "service_account": {"username": "service-account-provena-ops-ci", "roles": ROLE_PRESETS["admin"]},
    },
}


@dataclass
class Identity:
    """Who a validated token speaks for."""

    username: str
    email: str
    roles: list[str]
    token: str = field(repr=False)


class TokenError(Exception):
    """A token that cannot be used; `detail` is Provena's exact 401 text."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


NOT_AUTHENTICATED = "Not authenticated"
BAD_CREDENTIALS = "Could not validate credentials"
BAD_STRUCTURE = "Token had incorrect structure."
MISSING_ROLE = "You are not authorised to access this resource as you don't have the correct role."


class Realm:
    def __init__(self, store: Store, name: str = "provena") -> None:
        self.store = store
        self.name = name
        private_pem, self.public_pem = self._load_or_create_key()
        # Loaded once: loading (and checking) a 2048-bit key costs ~30 ms, which PyJWT would otherwise
        # pay on every token it signs from the PEM.
        signing_key = serialization.load_pem_private_key(private_pem, password=None)
        assert isinstance(signing_key, rsa.RSAPrivateKey)
        self._signing_key = signing_key
        self._verified: dict[str, dict[str, Any]] = {}

    def _load_or_create_key(self) -> tuple[bytes, bytes]:
        with self.store.transaction():
            stored = self.store.get_meta("realm.private_key")
            if stored is None:
                key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                stored = key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ).decode()
                self.store.set_meta("realm.private_key", stored)
        private_key = serialization.load_pem_private_key(stored.encode(), password=None)
        public_pem = private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return stored.encode(), public_pem

    @property
    def public_key_b64(self) -> str:
        """The realm JSON's `public_key`: base64 DER without PEM armour, as Keycloak publishes it."""
        body = b"".join(line for line in self.public_pem.splitlines() if b"-----" not in line)
        return body.decode()

    # ---- users and clients -------------------------------------------------------------------
    def users(self) -> dict[str, dict[str, Any]]:
        stored = self.store.get_meta("realm.users")
        return dict(json.loads(stored)) if stored else dict(DEFAULT_USERS)

    def clients(self) -> dict[str, dict[str, Any]]:
        return DEFAULT_CLIENTS

    # ---- minting -----------------------------------------------------------------------------
    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._signing_key, algorithm="RS256", headers={"kid": "sandbox"})

    def mint_access_token(
        self,
        username: str,
        roles: list[str],
        email: str | None = None,
        client_id: str = "client-tools",
        lifetime: int = ACCESS_TOKEN_SECONDS,
        issuer: str = "provena-sandbox",
        session_id: str | None = None,
    ) -> str:
        now = int(time.time())
        session = session_id or str(uuid.uuid4())
        claims = {
            "exp": now + lifetime,
            "iat": now,
            "auth_time": now,
            "jti": str(uuid.uuid4()),
            "iss": issuer,
            "aud": "account",
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"provena-sandbox/{username}")),
            "typ": "Bearer",
            "azp": client_id,
            "session_state": session,
            "acr": "1",
            "realm_access": {"roles": token_roles(self.name, list(roles))},
            "resource_access": {"account": {"roles": list(ACCOUNT_ROLES)}},
            "scope": "openid profile email",
            "sid": session,
            "email_verified": True,
            "preferred_username": username,
            "email": email or f"{username}@sandbox.provena.test",
        }
        return self._sign(claims)

    def mint_session(self, username: str, client_id: str, offline: bool, issuer: str) -> dict[str, Any]:
        """A token response (access + refresh) for a fresh login session of `username`."""
        user = self.users().get(username) or self._service_account(username)
        if user is None:
            raise TokenError(f"unknown user {username}")
        token_id = str(uuid.uuid4())
        lifetime = OFFLINE_TOKEN_SECONDS if offline else REFRESH_TOKEN_SECONDS
        now = int(time.time())
        refresh_claims = {
            "exp": now + lifetime,
            "iat": now,
            "jti": token_id,
            "iss": issuer,
            "typ": "Offline" if offline else "Refresh",
            "azp": client_id,
            "sid": token_id,
            "preferred_username": username,
        }
        self.store.put_session(token_id, username, client_id, {"offline": offline, "exp": now + lifetime})
        access = self.mint_access_token(
            username, list(user["roles"]), user.get("email"), client_id, issuer=issuer, session_id=token_id
        )
        return {
            "access_token": access,
            "expires_in": ACCESS_TOKEN_SECONDS,
            "refresh_expires_in": 0 if offline else lifetime,
            "refresh_token": self._sign(refresh_claims),
            "token_type": "Bearer",
            "not-before-policy": 0,
            "session_state": token_id,
            "scope": "openid offline_access profile email" if offline else "openid profile email",
        }

    def _service_account(self, username: str) -> dict[str, Any] | None:
        for client in self.clients().values():
            account = client.get("service_account")
            if account and account["username"] == username:
                return {"email": f"{username}@sandbox.provena.test", "roles": account["roles"]}
        return None

    def refresh(self, refresh_token: str, client_id: str, issuer: str) -> dict[str, Any]:
        """Refresh or offline grant. Raises TokenError with Keycloak's error_description."""
        try:
            claims = jwt.decode(
                refresh_token, self.public_pem, algorithms=["RS256"], options={"verify_aud": False}
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("Token is not active") from exc
        except jwt.PyJWTError as exc:
            raise TokenError("Invalid refresh token") from exc
        if claims.get("typ") not in ("Refresh", "Offline"):
            raise TokenError("Invalid refresh token")
        if claims.get("azp") != client_id:
            raise TokenError("Token client and authorized client don't match")
        session = self.store.get_session(str(claims.get("jti")))
        if session is None or session[1]:
            raise TokenError("Session not active" if session is None else "Token is not active")
        username = str(claims["preferred_username"])
        user = self.users().get(username) or self._service_account(username)
        if user is None:
            raise TokenError("User not found")
        response = {
            "access_token": self.mint_access_token(
                username,
                list(user["roles"]),
                user.get("email"),
                client_id,
                issuer=issuer,
                session_id=str(claims["jti"]),
            ),
            "expires_in": ACCESS_TOKEN_SECONDS,
            "refresh_expires_in": 0 if claims["typ"] == "Offline" else int(claims["exp"]) - int(time.time()),
            "refresh_token": refresh_token,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "session_state": claims["jti"],
            "scope": "openid offline_access profile email"
            if claims["typ"] == "Offline"
            else "openid profile email",
        }
        return response

    def peek(self, token: str) -> dict[str, Any]:
        """Claims of a token signed by this realm, expired or not (for revocation)."""
        try:
            return dict(
                jwt.decode(
                    token,
                    self.public_pem,
                    algorithms=["RS256"],
                    options={"verify_aud": False, "verify_exp": False},
                )
            )
        except jwt.PyJWTError as exc:
            raise TokenError("Invalid token") from exc

    def new_device_code(self, client_id: str, scope: str) -> tuple[str, str]:
        device_code = secrets.token_urlsafe(32)
        alphabet = "BCDFGHJKLMNPQRSTVWXZ"
        user_code = "".join(secrets.choice(alphabet) for _ in range(8))
        user_code = f"{user_code[:4]}-{user_code[4:]}"
        self.store.put_device_code(
            device_code,
            user_code,
            {
                "client_id": client_id,
                "scope": scope,
                "username": None,
                "denied": False,
                "expires_at": time.time() + 600,
                "last_poll": 0.0,
            },
        )
        return device_code, user_code

    # ---- checking ----------------------------------------------------------------------------
    def verify(self, token: str) -> Identity:
        """Validate an access token as Provena's APIs do: RS256, expiry enforced, audience ignored."""
        claims = self._verified.get(token)
        if claims is not None and claims["exp"] <= time.time():
            self._verified.pop(token, None)
            claims = None
        if claims is None:
            try:
                claims = jwt.decode(
                    token,
                    self.public_pem,
                    algorithms=["RS256"],
                    options={"verify_aud": False, "require": ["exp"]},
                )
            except jwt.PyJWTError as exc:
                raise TokenError(BAD_CREDENTIALS) from exc
            if len(self._verified) > 4096:
                self._verified.clear()
            self._verified[token] = claims
        try:
            username = claims["preferred_username"]
            roles = claims["realm_access"]["roles"]
            email = claims["email"]
        except (KeyError, TypeError) as exc:
            raise TokenError(BAD_STRUCTURE) from exc
        if not isinstance(username, str) or not isinstance(roles, list):
            raise TokenError(BAD_STRUCTURE)
        return Identity(username=username, email=str(email), roles=[str(r) for r in roles], token=token)
