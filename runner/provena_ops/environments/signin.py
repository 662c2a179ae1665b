"""How a command signs in to its target: the environment's auth settings (or a flag) made into a session.

Precedence: $PROVENA_OPS_ACCESS_TOKEN (a token handed over, checked and used as is), then the method the
command line names, then the environment's `provena_ops.auth.method` (device when unset). Secrets are read
from the variables or files the environment names, never from the environments file itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from provena_ops.environments.file import AuthOptions
from provena_ops.environments.target import Target
from provena_ops.errors import ProvenaOpsError
from provena_ops.provena.auth import (
    ClientCredentialsSignIn,
    DevicePromptHandler,
    DeviceSignIn,
    GivenToken,
    KeycloakSession,
    OfflineTokenSignIn,
    SandboxSignIn,
    SignIn,
)
from provena_ops.provena.keycloak import Keycloak
from provena_ops.safety.redaction import register

ACCESS_TOKEN_VARIABLE = "PROVENA_OPS_ACCESS_TOKEN"
OFFLINE_TOKEN_VARIABLE = "PROVENA_OPS_OFFLINE_TOKEN"
CLIENT_SECRET_VARIABLE = "PROVENA_OPS_CLIENT_SECRET"
DEFAULT_CLIENTS = {"device": "client-tools", "offline_token": "automated-access", "sandbox": "client-tools"}
METHODS = ("device", "offline_token", "client_credentials")


@dataclass(frozen=True)
class SignInChoice:
    """What the command line adds to the environment's auth settings."""

    method: str | None = None  # overrides the environment's method
    prompt: DevicePromptHandler | None = None  # shows a device sign-in; None: no person to approve one
    use_cache: bool = True


def realm_of(target: Target) -> Keycloak:
    return Keycloak(target.endpoints.keycloak, environment=target.name, use_proxies=target.sandbox_db is None)


def session_for(target: Target, choice: SignInChoice | None = None) -> KeycloakSession:
    choice = choice or SignInChoice()
    given = os.environ.get(ACCESS_TOKEN_VARIABLE)
    register(given)
    sign_in = (
        GivenToken(given.strip(), f"${ACCESS_TOKEN_VARIABLE}")
        if given and given.strip()
        else sign_in_for(target, choice)
    )
    return KeycloakSession(realm_of(target), sign_in, environment=target.name, use_cache=choice.use_cache)


def method_of(target: Target, choice: SignInChoice) -> str:
    return choice.method or target.auth.method


def sign_in_for(target: Target, choice: SignInChoice) -> SignIn:
    auth = target.auth
    method = method_of(target, choice)
    client_id = client_id_of(auth, method, target.name)
    if method == "sandbox":
        if target.sandbox_db is None:
            raise ProvenaOpsError(
                f"environment '{target.name}' uses auth method 'sandbox', which only the embedded "
                "sandbox has",
                hint="use device, offline_token or client_credentials for a real deployment",
            )
        return SandboxSignIn(auth.username or "admin", client_id)
    if method == "device":
        return DeviceSignIn(client_id, target.name, choice.prompt)
    if method == "offline_token":
        token, source = offline_token_of(auth, target.name)
        register(token)
        return OfflineTokenSignIn(client_id, token, source)
    if method == "client_credentials":
        variable = auth.client_secret_env or CLIENT_SECRET_VARIABLE
        secret = os.environ.get(variable, "").strip()
        if not secret:
            raise ProvenaOpsError(
                f"environment '{target.name}' signs in with client credentials, but ${variable} is not set",
                hint=f"set ${variable} to the secret of Keycloak client '{client_id}' (a CI secret)",
            )
        register(secret)
        return ClientCredentialsSignIn(client_id, secret)
    raise ProvenaOpsError(
        f"unknown sign-in method '{method}' for '{target.name}'", hint=f"use one of {', '.join(METHODS)}"
    )


def client_id_of(auth: AuthOptions, method: str, environment: str) -> str:
    """The environment's client_id is its own sign-in method's client: a device sign-in asked for with
    --auth-method on an environment that CI signs in to with client credentials uses Provena's public
    client-tools, never CI's confidential client."""
    if auth.client_id and method == auth.method:
        return auth.client_id
    if method in DEFAULT_CLIENTS:
        return DEFAULT_CLIENTS[method]
    raise ProvenaOpsError(
        f"environment '{environment}' signs in with client credentials but names no client",
        hint='add "client_id": "<the service account\'s client>" to its provena_ops.auth',
    )


def offline_token_of(auth: AuthOptions, environment: str) -> tuple[str, str]:
    """(the offline token, where it came from, for messages)."""
    mint = (
        f"mint one with `provena-ops auth offline-token {environment} --out FILE` and keep it as a CI secret"
    )
    if auth.token_file:
        path = Path(auth.token_file).expanduser()
        try:
            token = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not a text file"
            raise ProvenaOpsError(
                f"cannot read the offline token for '{environment}' from {path}: {reason}", hint=mint
            ) from None
        if not token:
            raise ProvenaOpsError(f"the offline token file {path} for '{environment}' is empty", hint=mint)
        return token, str(path)
    variable = auth.token_env or OFFLINE_TOKEN_VARIABLE
    token = os.environ.get(variable, "").strip()
    if not token:
        raise ProvenaOpsError(
            f"environment '{environment}' signs in with an offline token, but ${variable} is not set",
            hint=mint,
        )
    return token, f"${variable}"
