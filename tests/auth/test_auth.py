"""Every sign-in flow against the sandbox's realm over HTTP: device, offline token, client credentials;
expiry and renewal, revoked and invalid tokens, the cache's permissions, and Provena's 401s told apart."""

from __future__ import annotations

import asyncio
import json
import stat
import time
from pathlib import Path

import jwt
import pytest

from provena_ops.api import plan
from provena_ops.environments.file import Endpoints
from provena_ops.environments.target import TargetArgs
from provena_ops.errors import ProvenaOpsError
from provena_ops.provena import keycloak as keycloak_module
from provena_ops.provena.auth import DeviceSignIn, KeycloakSession, NotSignedIn, StaticToken
from provena_ops.provena.errors import (
    ITEM_READ_DETAIL,
    LOCKED_DETAIL,
    ROLE_DETAIL,
    NotAuthorised,
    refusal_hint,
)
from provena_ops.provena.http import ProvenaHttp
from provena_ops.provena.keycloak import Keycloak
from provena_ops.provena.retry import RetryPolicy
from provena_ops.provena.token_cache import CachedSession, load, save, session_file
from provena_ops.sandbox import RunningSandbox, SandboxSettings
from provena_ops.sandbox.context import Sandbox
from tests.auth.conftest import (
    CLIENT_SECRET,
    DELETE_RUNS,
    CliRun,
    approved_by,
    device_cli,
    environments,
    mint_offline_token,
    realm,
    refresh_grant,
    revoke,
    signed_in,
)
from tests.conftest import Api


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---- device flow -------------------------------------------------------------------------------------
def test_device_login_shows_where_to_approve_and_caches_a_session_only_its_owner_can_read(
    api: Api, tmp_path: Path, envs_file: Path, cli: CliRun
) -> None:
    done = device_cli(api, tmp_path, envs_file, "alice", "auth", "login", "staging")
    assert done.code == 0, done.output
    assert (
        f"{api.keycloak}/device?user_code=" in done.stderr and "check that it shows the code" in done.stderr
    )
    assert "staging: signed in as alice (alice@sandbox.provena.test)" in done.stdout
    assert "realm roles:   entity-registry-read, entity-registry-write" in done.stdout
    cache = session_file("staging")
    assert mode(cache) == 0o600 and mode(cache.parent) == 0o700
    assert not (tmp_path / ".provena-ops").exists() or not list((tmp_path / ".provena-ops").rglob("*.json"))

    status = cli("auth", "status", "staging")
    assert status.code == 0, status.output
    assert "signed in as alice" in status.stdout and "session:       ends" in status.stdout
    described = json.loads(cli("auth", "status", "staging", "--format", "json").stdout)
    assert described["username"] == "alice" and described["signed_in"] is True
    # JSON keeps every role of the token, Keycloak's defaults included; the text leaves those out.
    assert described["realm_roles"] == [
        "default-roles-provena",
        "entity-registry-read",
        "entity-registry-write",
        "offline_access",
        "uma_authorization",
    ]
    assert described["method"] == "device" and described["client_id"] == "client-tools"


def test_a_plan_runs_as_the_signed_in_person_and_flags_what_their_roles_cannot_do(
    api: Api, cli: CliRun
) -> None:
    signed_in(api, "alice")
    done = cli("plan", DELETE_RUNS, "-e", "staging")
    assert done.code == 1, done.output  # a plan with problems
    assert "as alice" in done.stdout
    assert "alice lacks the entity-registry-admin role needed to delete 10378.1/1690062" in done.stdout


def test_a_denied_sign_in_fails_clearly_and_caches_nothing(api: Api, tmp_path: Path, envs_file: Path) -> None:
    done = device_cli(api, tmp_path, envs_file, "alice", "auth", "login", "staging", action="deny")
    assert done.code == 1
    assert "error: the sign-in to 'staging' was denied" in done.stderr
    assert "Traceback" not in done.output
    assert not session_file("staging").exists()


def test_without_a_terminal_no_device_sign_in_is_started(cli: CliRun) -> None:
    started = time.monotonic()
    done = cli("plan", DELETE_RUNS, "-e", "staging")
    assert done.code == 1
    assert "not signed in to 'staging', and there is no terminal to sign in on" in done.stderr
    assert "provena-ops auth login staging" in done.stderr
    assert time.monotonic() - started < 30  # refused at once, not after the code's ten minutes


def test_status_without_a_session_says_so_and_exits_1(cli: CliRun) -> None:
    done = cli("auth", "status", "staging")
    assert done.code == 1
    assert "not signed in to 'staging' (no cached session)" in done.stderr
    described = cli("auth", "status", "staging", "--format", "json")
    assert described.code == 1 and json.loads(described.stdout)["signed_in"] is False


def test_logout_ends_the_session_at_keycloak_and_forgets_it(api: Api, cli: CliRun) -> None:
    signed_in(api, "bob")
    cached = load("staging")
    assert cached is not None and cached.refresh_token is not None
    done = cli("auth", "logout", "staging")
    assert done.code == 0, done.output
    assert "signed out (session ended at Keycloak and cached tokens deleted)" in done.stdout
    assert not session_file("staging").exists()
    assert refresh_grant(api, "client-tools", cached.refresh_token).json()["error"] == "invalid_grant"
    assert cli("auth", "status", "staging").code == 1
    assert "no cached session; nothing to do" in cli("auth", "logout", "staging").stdout


def test_a_client_that_polls_too_fast_slows_down_instead_of_failing(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keycloak_module, "SLOW_DOWN_STEP_S", 0.5)

    async def run() -> str:
        async with realm(api) as keycloak:
            code, _, prompt = await keycloak.start_device("client-tools")
            waiting = asyncio.create_task(keycloak.await_device("client-tools", code, 0.05, 60))
            await asyncio.sleep(0.6)  # several polls inside the sandbox's 1 s interval: slow_down
            await keycloak.approve_sandbox_device(prompt.user_code, "bob", "sandbox")
            tokens = await waiting
            return str((await keycloak.verify(tokens.access_token))["preferred_username"])

    assert asyncio.run(run()) == "bob"


# ---- expiry and renewal ------------------------------------------------------------------------------
def cache_with_access(api: Api, user: str, lifetime: int) -> CachedSession:
    """A signed-in session whose cached access token has `lifetime` seconds left."""
    signed_in(api, user)
    cached = load("staging")
    assert cached is not None
    short = CachedSession(**{**cached.__dict__, "access_token": api.token(user, lifetime=lifetime)})
    save(short)
    return short


def session_for_staging(api: Api, prompt: object = None) -> KeycloakSession:
    return KeycloakSession(
        realm(api),
        DeviceSignIn("client-tools", "staging", prompt),  # type: ignore[arg-type]
        environment="staging",
    )


def test_a_token_about_to_expire_is_renewed_by_refresh_before_it_is_used(api: Api) -> None:
    short = cache_with_access(api, "alice", lifetime=10)  # inside the 30 s margin

    async def run() -> tuple[str, int]:
        session = session_for_staging(api)  # no prompt: renewing must not need a person
        try:
            return await session.token(), session.renewals
        finally:
            await session.aclose()

    token, renewals = asyncio.run(run())
    assert renewals == 1 and token != short.access_token
    renewed = load("staging")
    assert renewed is not None and renewed.access_token == token
    assert renewed.refresh_token == short.refresh_token  # the same session, renewed


def test_a_valid_cached_token_is_used_without_asking_keycloak_for_another(api: Api) -> None:
    cached = cache_with_access(api, "alice", lifetime=600)

    async def run() -> tuple[str, int]:
        session = session_for_staging(api)
        try:
            return await session.token(), session.renewals
        finally:
            await session.aclose()

    assert asyncio.run(run()) == (cached.access_token, 0)


def test_a_session_that_ended_needs_a_new_sign_in(api: Api) -> None:
    ended = cache_with_access(api, "alice", lifetime=-60)
    assert ended.refresh_token is not None
    revoke(api, "client-tools", ended.refresh_token)

    async def run(prompt: object) -> str:
        session = session_for_staging(api, prompt)
        try:
            await session.token()
            return session.username
        finally:
            await session.aclose()

    with pytest.raises(NotSignedIn, match="not signed in to 'staging'"):
        asyncio.run(run(None))
    assert asyncio.run(run(approved_by(api, "bob"))) == "bob"


def test_a_cache_file_others_can_read_is_not_trusted(api: Api, cli: CliRun) -> None:
    signed_in(api, "alice")
    session_file("staging").chmod(0o644)
    done = cli("auth", "status", "staging")
    assert done.code == 1
    assert f"the cached session {session_file('staging')} is ignored: others can read it (mode 0644)" in (
        done.stderr
    )
    session_file("staging").write_text("garbage{")
    session_file("staging").chmod(0o600)
    described = json.loads(cli("auth", "status", "staging", "--format", "json").stdout)
    assert described["signed_in"] is False and "is damaged and is ignored" in described["reason"]


def test_the_sandbox_needs_no_sign_in_and_says_so_in_json_too(cli: CliRun) -> None:
    described = json.loads(cli("auth", "status", "sandbox", "--format", "json").stdout)
    expected = {"environment": "sandbox", "signed_in": True, "username": "admin", "method": "sandbox"}
    assert described == expected
    minted = cli("auth", "offline-token", "sandbox", "--out", "sandbox.token")
    assert minted.code == 0 and "there is no session to sign in to" in minted.stdout


def test_a_device_sign_in_is_refused_at_once_in_ci(cli: CliRun) -> None:
    """No one in CI can approve it: refused before a code is requested, not after its ten minutes."""
    for args in (("auth", "login", "staging"), ("auth", "offline-token", "ci", "--out", "ci.token")):
        started = time.monotonic()
        done = cli(*args, env={"CI": "true"})
        assert done.code == 1 and "$CI is set; nothing was started" in done.stderr, done.output
        assert "/device?user_code=" not in done.stderr and time.monotonic() - started < 30


def test_a_session_cached_for_another_realm_is_not_reused(
    api: Api, server: RunningSandbox, envs_file: Path, cli: CliRun
) -> None:
    signed_in(api, "alice")
    moved = environments(server)  # the same realm under another name: a session is kept per realm URL
    realm_url = server.endpoints["keycloak_endpoint_override"]
    moved["envs"][0]["keycloak_endpoint_override"] = realm_url.replace("127.0.0.1", "localhost")
    envs_file.write_text(json.dumps(moved))
    done = cli("plan", DELETE_RUNS, "-e", "staging")
    assert done.code == 1 and "not signed in to 'staging'" in done.stderr


# ---- offline tokens (CI) -----------------------------------------------------------------------------
def test_offline_token_is_minted_into_a_private_file_and_signs_ci_in(
    api: Api, tmp_path: Path, envs_file: Path, cli: CliRun
) -> None:
    done = device_cli(api, tmp_path, envs_file, "admin", "auth", "offline-token", "ci", "--out", "ci.token")
    assert done.code == 0, done.output
    saved = tmp_path / "ci.token"
    token = saved.read_text().strip()
    assert mode(saved) == 0o600
    assert token not in done.output
    assert "gh secret set PROVENA_OPS_OFFLINE_TOKEN --env provena-apply < ci.token" in done.stdout
    assert "It signs in as admin" in done.stdout

    status = cli("auth", "status", "ci", env={"CI_OFFLINE_TOKEN": token})
    assert status.code == 0, status.output
    assert "ci: signed in as admin" in status.stdout and "method:        offline_token" in status.stdout
    cached = load("ci")
    assert cached is not None and cached.refresh_token is None  # the offline token stays in CI's secret
    assert token not in session_file("ci").read_text()
    planned = cli("plan", DELETE_RUNS, "-e", "ci", env={"CI_OFFLINE_TOKEN": token})
    assert planned.code == 2, planned.output
    assert "Plan: 0 to update, 2 to delete" in planned.stdout

    again = cli("auth", "offline-token", "ci", "--out", "ci.token")
    assert again.code == 1 and "ci.token exists; not overwriting it" in again.stderr
    into_a_directory = cli("auth", "offline-token", "ci", "--out", ".", "--force")
    assert into_a_directory.code == 1 and "--out . is a directory" in into_a_directory.stderr


def test_a_revoked_offline_token_fails_clearly(api: Api, cli: CliRun) -> None:
    token = mint_offline_token(api, "admin")
    revoke(api, "automated-access", token)
    done = cli("plan", DELETE_RUNS, "-e", "ci", env={"CI_OFFLINE_TOKEN": token})
    assert done.code == 1
    assert "Keycloak refused to renew the offline token from $CI_OFFLINE_TOKEN for 'ci'" in done.stderr
    assert (
        "was revoked or has expired; mint a new one with `provena-ops auth offline-token ci --out FILE`"
        in done.stderr
    )
    assert "Traceback" not in done.output


def test_a_missing_offline_token_says_which_variable_to_set(cli: CliRun) -> None:
    done = cli("plan", DELETE_RUNS, "-e", "ci")
    assert done.code == 1
    assert "environment 'ci' signs in with an offline token, but $CI_OFFLINE_TOKEN is not set" in done.stderr


def test_an_offline_token_can_come_from_a_file(
    api: Api, server: RunningSandbox, tmp_path: Path, envs_file: Path, cli: CliRun
) -> None:
    (tmp_path / "offline").write_text(mint_offline_token(api, "bob") + "\n")
    envs_file.write_text(
        json.dumps(environments(server, ci={"method": "offline_token", "token_file": "offline"}))
    )
    done = cli("auth", "status", "ci")
    assert done.code == 0, done.output
    assert "ci: signed in as bob" in done.stdout


# ---- client credentials (service accounts) -----------------------------------------------------------
def test_client_credentials_sign_in_the_service_account(cli: CliRun) -> None:
    done = cli("auth", "login", "svc", env={"PROVENA_OPS_CLIENT_SECRET": CLIENT_SECRET})
    assert done.code == 0, done.output
    assert "svc: signed in as service-account-provena-ops-ci" in done.stdout
    assert CLIENT_SECRET not in session_file("svc").read_text()


def test_a_wrong_client_secret_fails_clearly(cli: CliRun) -> None:
    done = cli("auth", "status", "svc", env={"PROVENA_OPS_CLIENT_SECRET": "not-the-secret"})
    assert done.code == 1
    assert "Keycloak refused to sign in with client credentials for 'svc'" in done.stderr
    assert "secret is wrong" in done.stderr
    missing = cli("auth", "status", "svc")
    assert missing.code == 1 and "$PROVENA_OPS_CLIENT_SECRET is not set" in missing.stderr


def test_the_method_can_be_chosen_by_flag(cli: CliRun) -> None:
    done = cli(
        "auth", "status", "staging", "--auth-method", "client_credentials",
        env={"PROVENA_OPS_CLIENT_SECRET": CLIENT_SECRET},
    )  # fmt: skip
    assert done.code == 1  # staging names no client for client credentials, and says so
    assert "signs in with client credentials but names no client" in done.stderr


# ---- tokens handed over, and tokens Provena would refuse ---------------------------------------------
@pytest.mark.parametrize("kind", ["garbage", "expired", "another realm"])
def test_an_unusable_access_token_is_refused_before_any_call(
    api: Api, tmp_path: Path, envs_file: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    if kind == "garbage":
        token, expected = "not-a-token", "is not valid for 'staging': it is not a JWT"
    elif kind == "expired":
        token, expected = api.token("alice", lifetime=-60), "for 'staging' expired at"
    else:
        other = Sandbox(SandboxSettings(db_path=tmp_path / "other.db"))
        token = other.realm.mint_access_token("alice", ["entity-registry-read"])
        other.store.close()
        expected = "its signature does not match the realm's key"
    monkeypatch.setenv("PROVENA_OPS_ACCESS_TOKEN", token)
    with pytest.raises(ProvenaOpsError, match=expected) as raised:
        plan(DELETE_RUNS, TargetArgs("staging", environments_file=envs_file, cwd=tmp_path))
    assert token not in raised.value.render()


def test_a_realm_that_cannot_be_reached_is_named(
    server: RunningSandbox, tmp_path: Path, envs_file: Path, cli: CliRun
) -> None:
    moved = environments(server)
    for env in moved["envs"]:
        env["keycloak_endpoint_override"] = "http://127.0.0.1:9/auth/realms/provena"
    envs_file.write_text(json.dumps(moved))
    done = cli("auth", "status", "svc", env={"PROVENA_OPS_CLIENT_SECRET": CLIENT_SECRET})
    assert done.code == 1
    assert "the realm of 'svc' at http://127.0.0.1:9/auth/realms/provena failed" in done.stderr


# ---- Provena's 401s, told apart ----------------------------------------------------------------------
def test_every_kind_of_401_is_told_apart(api: Api) -> None:
    live, expired = api.token("reader"), api.token("reader", lifetime=-60)
    hints = {
        "no token": refusal_hint("Not authenticated", live, "prod"),
        "expired": refusal_hint("Could not validate credentials", expired, "prod"),
        "not valid": refusal_hint("Could not validate credentials", live, "prod"),
        "role": refusal_hint(ROLE_DETAIL, live, "prod"),
        "item": refusal_hint(ITEM_READ_DETAIL, live, "prod"),
        "locked": refusal_hint(LOCKED_DETAIL, live, "prod"),
    }
    assert "no access token reached the API" in hints["no token"]
    assert "the access token expired" in hints["expired"] and "auth login prod" in hints["expired"]
    assert "does not accept the token's signature" in hints["not valid"]
    assert "reader lacks a realm role" in hints["role"] and "entity-registry-read" in hints["role"]
    assert "reader has no read permission on the item" in hints["item"]
    assert "the record is locked" in hints["locked"]
    assert len(set(hints.values())) == len(hints)


def test_a_missing_realm_role_is_reported_with_the_roles_held(
    api: Api, tmp_path: Path, envs_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVENA_OPS_ACCESS_TOKEN", api.token("nobody", roles=[]))
    with pytest.raises(ProvenaOpsError) as raised:
        plan(DELETE_RUNS, TargetArgs("staging", environments_file=envs_file, cwd=tmp_path))
    rendered = raised.value.render()
    assert "was refused (401)" in rendered
    assert "nobody lacks a realm role this call needs (their realm roles: none)" in rendered


# ---- from the review: CI look-alike terminals, clocks, unwritable caches, issuers, races -------------
def test_forced_colour_in_ci_does_not_make_a_terminal(cli: CliRun) -> None:
    started = time.monotonic()
    done = cli("plan", DELETE_RUNS, "-e", "staging", env={"FORCE_COLOR": "1", "TTY_COMPATIBLE": "1"})
    assert done.code == 1 and "there is no terminal to sign in on" in done.stderr
    assert time.monotonic() - started < 30


def test_a_token_issued_a_little_in_the_future_is_accepted_as_the_apis_accept_it(api: Api) -> None:
    sandbox = api._sandbox
    token = api.token("alice")
    claims = {**jwt.decode(token, options={"verify_signature": False}), "iat": int(time.time()) + 30}
    ahead = sandbox.realm._sign(claims)

    async def run() -> str:
        async with realm(api) as keycloak:
            return str((await keycloak.verify(ahead))["preferred_username"])

    assert asyncio.run(run()) == "alice"


def test_a_cache_that_cannot_be_written_only_warns(cli: CliRun, tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    done = cli(
        "auth", "status", "svc",
        env={"PROVENA_OPS_CLIENT_SECRET": CLIENT_SECRET, "PROVENA_OPS_CACHE_DIR": str(blocked)},
    )  # fmt: skip
    assert done.code == 0, done.output
    assert "svc: signed in as service-account-provena-ops-ci" in done.stdout
    assert "warning: the session for 'svc' is not cached" in done.stderr
    assert "PROVENA_OPS_CACHE_DIR" in done.stderr


def test_logout_revokes_at_the_realm_that_issued_the_session(
    api: Api, server: RunningSandbox, envs_file: Path, cli: CliRun
) -> None:
    signed_in(api, "alice")
    cached = load("staging")
    assert cached is not None and cached.refresh_token is not None
    moved = environments(server)
    moved["envs"][0]["keycloak_endpoint_override"] = "http://127.0.0.1:9/auth/realms/elsewhere"
    envs_file.write_text(json.dumps(moved))
    done = cli("auth", "logout", "staging")
    assert done.code == 0, done.output
    assert "session ended at Keycloak" in done.stdout
    assert refresh_grant(api, "client-tools", cached.refresh_token).json()["error"] == "invalid_grant"


def test_many_requests_refused_at_once_renew_the_token_once(api: Api) -> None:
    cache_with_access(api, "alice", lifetime=600)

    async def run() -> tuple[list[bool], int]:
        session = session_for_staging(api)
        try:
            stale = await session.token()
            refreshed = await asyncio.gather(*(session.refresh(stale) for _ in range(16)))
            return list(refreshed), session.renewals
        finally:
            await session.aclose()

    refreshed, renewals = asyncio.run(run())
    assert all(refreshed) and renewals == 1


def test_sandbox_sign_in_named_for_a_deployment_is_refused(
    server: RunningSandbox, envs_file: Path, cli: CliRun
) -> None:
    envs_file.write_text(json.dumps(environments(server, staging={"method": "sandbox"})))
    done = cli("auth", "status", "staging")
    assert done.code == 1
    assert "envs[0].provena_ops.auth.method: auth method 'sandbox' is only for the embedded sandbox" in (
        done.stderr
    )


def test_login_while_an_access_token_is_given_says_the_token_wins(api: Api, cli: CliRun) -> None:
    done = cli("auth", "login", "staging", env={"PROVENA_OPS_ACCESS_TOKEN": api.token("alice")})
    assert done.code == 1
    assert "$PROVENA_OPS_ACCESS_TOKEN is set, and every command uses that token" in done.stderr


@pytest.mark.parametrize("kind", ["expired", "another realm"])
def test_provenas_own_401s_over_http_say_which_they_are(api: Api, tmp_path: Path, kind: str) -> None:
    if kind == "expired":
        token = api.token("alice", lifetime=-60)
    else:
        other = Sandbox(SandboxSettings(db_path=tmp_path / "other.db"))
        token = other.realm.mint_access_token("alice", ["entity-registry-read"])
        other.store.close()
    endpoints = Endpoints(api.registry, api.prov, api.jobs, api.search, api.keycloak, {})

    async def run() -> None:
        async with ProvenaHttp(endpoints, StaticToken(token), environment="prod", use_proxies=False) as http:
            await http.call(
                "registry", "GET", "/registry/activity/model_run/fetch", params={"id": "10378.1/1"}
            )

    with pytest.raises(NotAuthorised) as refused:
        asyncio.run(run())
    assert "was refused (401): Could not validate credentials" in refused.value.message
    expected = "the access token expired" if kind == "expired" else "does not accept the token's signature"
    assert expected in (refused.value.hint or "")


def set_realm_faults(api: Api, **faults: object) -> None:
    response = api.http.put(
        f"{api.running.base_url.rstrip('/')}/sandbox/faults", json=faults, headers=api.auth("admin")
    )
    assert response.status_code == 200, response.text


def renew_staging_token(api: Api, retry: RetryPolicy | None = None) -> str:
    async def run() -> str:
        keycloak = Keycloak(api.keycloak, environment="staging", use_proxies=False, retry=retry)
        session = KeycloakSession(
            keycloak, DeviceSignIn("client-tools", "staging", None), environment="staging"
        )
        try:
            return await session.token()
        finally:
            await session.aclose()

    return asyncio.run(run())


def test_a_realm_failing_in_passing_is_retried_until_the_token_is_renewed(api: Api) -> None:
    short = cache_with_access(api, "alice", lifetime=10)
    set_realm_faults(
        api, fault_rate=0.5, fault_kinds=["500", "502", "503", "504", "429", "drop"], fault_paths=["/token"]
    )
    quick = RetryPolicy(attempts=30, budget_s=30, base_delay_s=0.01, max_delay_s=0.05, max_retry_after_s=0.05)
    for _ in range(8):
        save(short)  # 10 s left: each call must refresh through the faulty token endpoint
        assert renew_staging_token(api, quick) != short.access_token


def test_a_realm_that_stays_down_is_reported_after_the_retry_budget(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache_with_access(api, "alice", lifetime=10)
    monkeypatch.setenv("PROVENA_OPS_RETRY_BUDGET", "1")
    set_realm_faults(api, fault_rate=1.0, fault_kinds=["503"], fault_paths=["/token"])
    started = time.monotonic()
    with pytest.raises(ProvenaOpsError) as failure:
        renew_staging_token(api)
    assert time.monotonic() - started < 10
    assert "failed" in str(failure.value) and "(HTTP 503)" in str(failure.value)
    assert "PROVENA_OPS_RETRY_BUDGET" in (failure.value.hint or "")


def test_a_device_sign_in_never_uses_the_environments_confidential_ci_client() -> None:
    from provena_ops.environments.file import AuthOptions
    from provena_ops.environments.signin import client_id_of

    ci = AuthOptions(method="client_credentials", client_id="provena-ci-bot")
    assert client_id_of(ci, "client_credentials", "example-prod") == "provena-ci-bot"
    assert client_id_of(ci, "device", "example-prod") == "client-tools"  # --auth-method device
    assert client_id_of(AuthOptions(method="device", client_id="my-tools"), "device", "x") == "my-tools"
    with pytest.raises(ProvenaOpsError, match="signs in with client credentials but names no client"):
        client_id_of(AuthOptions(method="device"), "client_credentials", "x")
