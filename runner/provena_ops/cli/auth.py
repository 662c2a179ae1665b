"""`provena-ops auth`: sign in to an environment, see who you are there, sign out, mint CI's offline token.

Nothing here prints a token: sessions go to the user's cache (0600), an offline token to a file the admin
names (0600), and the screen only ever shows who, which roles, and until when.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path

import typer

from provena_ops.cli.options import ENVIRONMENTS_FILE_OPTION, PARAM_OPTION, err, out
from provena_ops.environments.file import load_environments, parse_params
from provena_ops.environments.signin import (
    ACCESS_TOKEN_VARIABLE,
    OFFLINE_TOKEN_VARIABLE,
    SignInChoice,
    method_of,
    realm_of,
    session_for,
)
from provena_ops.environments.target import Target, open_target
from provena_ops.errors import ProvenaOpsError
from provena_ops.provena.auth import DeviceSignIn, KeycloakSession, access_expiry_text, claims_of, duration
from provena_ops.provena.errors import own_roles
from provena_ops.provena.keycloak import DevicePrompt, Keycloak, format_utc
from provena_ops.provena.token_cache import inspect as inspect_cached
from provena_ops.provena.token_cache import load as load_cached
from provena_ops.provena.token_cache import remove as remove_cached
from provena_ops.provena.token_cache import session_file, write_private
from provena_ops.signals import run_async

auth_app = typer.Typer(
    rich_markup_mode="markdown",
    help="Sign in to Provena environments (Keycloak), show who you are there, sign out.",
    no_args_is_help=True,
)
OFFLINE_CLIENT = "automated-access"


class AuthMethod(StrEnum):
    device = "device"
    offline_token = "offline_token"
    client_credentials = "client_credentials"


AUTH_METHOD_OPTION = typer.Option(
    None,
    "--auth-method",
    metavar="METHOD",
    help="Sign in this way instead of the environment's own (device, offline_token, client_credentials).",
)
ENVIRONMENT_ARGUMENT = typer.Argument(
    ..., metavar="ENVIRONMENT", help="The environment (as named in environments.json)."
)


def show_device_prompt(environment: str, prompt: DevicePrompt) -> None:
    """What a person does to approve a device sign-in; on stderr, so stdout stays the command's output."""
    minutes = duration(prompt.expires_in)
    if prompt.verification_uri_complete:
        err.print(
            f"To sign in to '{environment}', open this address in a browser:\n"
            f"  {prompt.verification_uri_complete}\n"
            f"and check that it shows the code {prompt.user_code}. Waiting for approval (the code expires "
            f"in {minutes})...",
            markup=False,
            highlight=False,
        )
    else:
        err.print(
            f"To sign in to '{environment}', open {prompt.verification_uri} in a browser and enter the code "
            f"{prompt.user_code}. Waiting for approval (the code expires in {minutes})...",
            markup=False,
            highlight=False,
        )


def person_at_terminal() -> bool:
    """Real terminals only: rich's is_terminal says yes to FORCE_COLOR and TTY_COMPATIBLE, which CI sets."""
    return sys.stdin.isatty() and sys.stderr.isatty() and not os.environ.get("CI")


def interactive_choice(method: AuthMethod | None) -> SignInChoice:
    """For plan and apply: a device sign-in may start only when a person is at the terminal."""
    return SignInChoice(
        method=method.value if method else None, prompt=show_device_prompt if person_at_terminal() else None
    )


@contextlib.contextmanager
def _target(
    environment: str,
    environments_file: Path | None,
    param: list[str] | None,
    choice: SignInChoice,
    output: str = "text",
) -> Iterator[Target | None]:
    """The environment's target, or None (after saying so) for the embedded sandbox's own sign-in, which
    needs nothing from anyone and starts no server."""
    env = load_environments(environments_file).get(environment)
    auth = env.provena_ops.auth if env.provena_ops and env.provena_ops.auth else None
    if env.is_sandbox and (choice.method or (auth.method if auth else "device")) == "sandbox":
        user = (auth.username if auth else None) or "admin"
        if output == "json":
            described = {"environment": env.name, "signed_in": True, "username": user, "method": "sandbox"}
            sys.stdout.write(json.dumps(described, indent=2) + "\n")
        else:
            out.print(
                f"'{env.name}' is the embedded sandbox: every command signs in by itself as sandbox user "
                f"'{user}'; there is no session to sign in to, show, end or mint a token for.",
                markup=False,
                highlight=False,
            )
        yield None
        return
    with open_target(env, parse_params(param or [])) as target:
        yield target


def _describe(session: KeycloakSession, target: Target, method: str) -> dict[str, object]:
    claims = session.claims
    refresh_at = session.refresh_expires_at
    return {
        "environment": target.name,
        "signed_in": True,
        "username": session.username,
        "email": claims.get("email"),
        "realm_roles": sorted(session.roles),
        "method": method,
        "client_id": session.sign_in.client_id or None,
        "access_token_expires_at": _iso(claims.get("exp")),
        "session_expires_at": _iso(refresh_at) if session.has_refresh_token else None,
        "cache_file": str(session_file(target.name)) if session.use_cache else None,
    }


def _iso(timestamp: object) -> str | None:
    if not isinstance(timestamp, int | float):
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def _print_identity(session: KeycloakSession, target: Target, method: str) -> None:
    roles = ", ".join(own_roles(session.roles)) or "none"
    email = session.claims.get("email")
    lines = [
        f"{target.name}: signed in as {session.username}" + (f" ({email})" if email else ""),
        f"  method:        {method}"
        + (f", client {session.sign_in.client_id}" if session.sign_in.client_id else ""),
        f"  realm roles:   {roles}",
        f"  access token:  expires {access_expiry_text(session.claims)}; renewed automatically",
    ]
    if session.has_refresh_token:
        ends = session.refresh_expires_at
        lines.append(
            "  session:       "
            + (f"ends {format_utc(ends)} (in {duration(ends - time.time())})" if ends else "does not expire")
        )
    if session.use_cache:
        lines.append(f"  cached in:     {session_file(target.name)} (readable only by you)")
    out.print("\n".join(lines), markup=False, highlight=False)


@auth_app.command()
def login(
    environment: str = ENVIRONMENT_ARGUMENT,
    auth_method: AuthMethod | None = AUTH_METHOD_OPTION,
    environments_file: Path | None = ENVIRONMENTS_FILE_OPTION,
    param: list[str] | None = PARAM_OPTION,
) -> None:
    """Sign in to ENVIRONMENT the way it says (device flow unless set otherwise) and cache the session.

    With the device flow you approve in a browser; with an offline token or client credentials this checks
    that the secret works and shows who it signs in as.
    """
    if os.environ.get(ACCESS_TOKEN_VARIABLE, "").strip():
        raise ProvenaOpsError(
            f"${ACCESS_TOKEN_VARIABLE} is set, and every command uses that token instead of a sign-in",
            hint=f"unset {ACCESS_TOKEN_VARIABLE} to sign in",
        )
    choice = SignInChoice(method=auth_method.value if auth_method else None, prompt=show_device_prompt)
    with _target(environment, environments_file, param, choice) as target:
        if target is None:
            return
        if method_of(target, choice) == "device":
            _refuse_device_flow_in_ci(f"run `provena-ops auth login {target.name}` on your own machine")

        async def run() -> KeycloakSession:
            session = session_for(target, choice)
            try:
                await session.sign_in_afresh()
            finally:
                await session.aclose()
            return session

        session = run_async(run())
        _print_identity(session, target, session.sign_in.method)


@auth_app.command()
def status(
    environment: str = ENVIRONMENT_ARGUMENT,
    auth_method: AuthMethod | None = AUTH_METHOD_OPTION,
    output: str = typer.Option("text", "--format", help="text or json."),
    environments_file: Path | None = ENVIRONMENTS_FILE_OPTION,
    param: list[str] | None = PARAM_OPTION,
) -> None:
    """Who you are on ENVIRONMENT: user, realm roles, when the token and the session end.

    Exit status 0 when signed in (or able to sign in without a person), 1 when not.
    """
    if output not in ("text", "json"):
        raise ProvenaOpsError(f"unknown --format '{output}'", hint="use text or json")
    choice = SignInChoice(method=auth_method.value if auth_method else None, prompt=None)
    with _target(environment, environments_file, param, choice, output) as target:
        if target is None:
            return
        if method_of(target, choice) == "device" and not os.environ.get("PROVENA_OPS_ACCESS_TOKEN"):
            cached, why_not = inspect_cached(target.name)
            if cached is None:
                _not_signed_in(target, output, why_not)

        async def run() -> KeycloakSession:
            session = session_for(target, choice)
            try:
                await session.token()
            finally:
                await session.aclose()
            return session

        try:
            session = run_async(run())
        except ProvenaOpsError as exc:
            if output == "json":
                _not_signed_in(target, output, exc.message)
            raise
        if output == "json":
            sys.stdout.write(json.dumps(_describe(session, target, session.sign_in.method), indent=2) + "\n")
        else:
            _print_identity(session, target, session.sign_in.method)


def _refuse_device_flow_in_ci(elsewhere: str) -> None:
    """CI has no one to approve a browser sign-in: refuse now rather than wait out the code's lifetime."""
    if os.environ.get("CI"):
        raise ProvenaOpsError(
            "a device sign-in needs a person to approve it in a browser, and $CI is set; nothing was started",
            hint=f"{elsewhere}; CI itself signs in with an offline token or client credentials "
            "(docs/auth.md)",
        )


def _not_signed_in(target: Target, output: str, why: str) -> None:
    if output == "json":
        sys.stdout.write(
            json.dumps({"environment": target.name, "signed_in": False, "reason": why}, indent=2) + "\n"
        )
        raise typer.Exit(1)
    raise ProvenaOpsError(
        f"not signed in to '{target.name}' ({why})", hint=f"run `provena-ops auth login {target.name}`"
    )


@auth_app.command()
def logout(
    environment: str = ENVIRONMENT_ARGUMENT,
    environments_file: Path | None = ENVIRONMENTS_FILE_OPTION,
    param: list[str] | None = PARAM_OPTION,
) -> None:
    """End the cached session of ENVIRONMENT at Keycloak and delete it from the cache."""
    with _target(environment, environments_file, param, SignInChoice()) as target:
        if target is None:
            return
        cached = load_cached(target.name)
        revoked = False
        if cached is not None and cached.refresh_token:

            async def run() -> bool:
                # Where the session came from, whatever the environment names now: a token is only
                # ever sent to the realm that issued it.
                issuer = Keycloak(
                    cached.realm_url, environment=target.name, use_proxies=target.sandbox_db is None
                )
                async with issuer:
                    return await issuer.revoke(cached.client_id, cached.refresh_token or "")

            revoked = run_async(run())
        removed = remove_cached(target.name)
        if not removed:
            out.print(f"{target.name}: no cached session; nothing to do.", markup=False, highlight=False)
        elif cached is not None and cached.refresh_token and not revoked:
            out.print(
                f"{target.name}: cached session deleted, but Keycloak could not be told to end it; it ends "
                "by itself when it expires.",
                markup=False,
                highlight=False,
            )
        else:
            ended = "session ended at Keycloak and " if revoked else ""
            out.print(
                f"{target.name}: signed out ({ended}cached tokens deleted).", markup=False, highlight=False
            )
        if method_of(target, SignInChoice()) == "offline_token":
            out.print(
                "The offline token CI uses is not affected; revoke it in Keycloak's account console "
                "(Applications) if it should stop working.",
                markup=False,
                highlight=False,
            )


@auth_app.command("offline-token")
def offline_token(
    environment: str = ENVIRONMENT_ARGUMENT,
    save: Path = typer.Option(..., "--out", help="File to write the offline token to (created 0600)."),
    client_id: str = typer.Option(OFFLINE_CLIENT, "--client-id", help="Keycloak client of the token."),
    force: bool = typer.Option(False, "--force", help="Replace the file if it exists."),
    environments_file: Path | None = ENVIRONMENTS_FILE_OPTION,
    param: list[str] | None = PARAM_OPTION,
) -> None:
    """Mint an offline token for CI: approve once in a browser; CI then signs in as you until it is revoked.

    The token is written to --out only (never printed); store it as a CI secret, then delete the file.
    """
    if save.is_dir():
        raise ProvenaOpsError(
            f"--out {save} is a directory", hint=f"give a file name, e.g. --out {save / 'ci.token'}"
        )
    if save.exists() and not force:
        raise ProvenaOpsError(
            f"{save} exists; not overwriting it", hint="pass --force to replace it, or choose another --out"
        )
    if not save.parent.is_dir():
        raise ProvenaOpsError(f"cannot write {save}: {save.parent} is not a directory")
    with _target(environment, environments_file, param, SignInChoice()) as target:
        if target is None:
            return
        _refuse_device_flow_in_ci(
            f"run `provena-ops auth offline-token {target.name} --out FILE` on your own machine"
        )
        err.print(
            f"An offline token lets CI sign in to '{target.name}' as you, without a browser, until it is "
            f"revoked. Sign in with the account CI should act as (client {client_id}).",
            markup=False,
            highlight=False,
        )

        async def run() -> tuple[str, dict[str, object]]:
            async with realm_of(target) as realm:
                sign_in = DeviceSignIn(client_id, target.name, show_device_prompt, scope="offline_access")
                tokens = await sign_in.acquire(realm)
                offline = tokens.refresh_token
                if not offline or claims_of(offline).get("typ") not in (None, "Offline"):
                    raise ProvenaOpsError(
                        f"the realm of '{target.name}' gave client '{client_id}' no offline token",
                        hint="the client needs the offline_access scope; Provena's automated-access has it",
                    )
                proof = await realm.refresh(client_id, offline, what="the new offline token")
                return offline, await realm.verify(proof.access_token)

        token, claims = run_async(run())
        _write_secret(save, token)
    roles = claims.get("realm_access")
    held = ", ".join(own_roles(map(str, roles.get("roles", [])))) if isinstance(roles, dict) else "none"
    out.print(
        f"Wrote an offline token for '{target.name}' to {save} (readable only by you).\n"
        f"It signs in as {claims.get('preferred_username')} with realm roles: {held or 'none'}.\n"
        "Next:\n"
        "  1. store it as a CI secret; one that can write only in a GitHub Environment limited to main,\n"
        f"     e.g. `gh secret set {OFFLINE_TOKEN_VARIABLE} --env provena-apply < {save}`\n"
        f"  2. delete the file: `rm {save}`\n"
        f'  3. in environments.json, give \'{target.name}\' "provena_ops": {{"auth": {{"method": '
        f'"offline_token", "client_id": "{client_id}", "token_env": "{OFFLINE_TOKEN_VARIABLE}"}}}}\n'
        "Revoke it in Keycloak's account console (Applications) when CI no longer needs it.",
        markup=False,
        highlight=False,
    )


def _write_secret(path: Path, secret: str) -> None:
    try:
        write_private(path, secret + "\n")
    except OSError as exc:
        raise ProvenaOpsError(
            f"cannot write the offline token to {path}: {exc.strerror}",
            hint="the token was minted but not saved; revoke it in Keycloak's account console (Applications) "
            "and run again with a writable --out",
        ) from None
