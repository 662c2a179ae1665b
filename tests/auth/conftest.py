"""Signing in to the sandbox's Keycloak-compatible realm over HTTP, as to a real deployment's realm.

The environments file names the served sandbox like a remote deployment (endpoint overrides, no
`sandbox` section), one environment per sign-in method, so every flow runs exactly as it would for real.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from provena_ops.provena.auth import DeviceSignIn, KeycloakSession
from provena_ops.provena.keycloak import DevicePrompt, Keycloak
from provena_ops.sandbox import RunningSandbox
from tests.conftest import Api

EXAMPLES = Path(__file__).parents[2] / "playbooks" / "examples"
DELETE_RUNS = EXAMPLES / "delete-model-runs.yaml"
CLIENT_SECRET = "sandbox-client-secret"  # the sandbox's confidential client provena-ops-ci (docs/sandbox.md)
USER_CODE = re.compile(r"user_code=([A-Z]{4}-[A-Z]{4})")


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def environments(server: RunningSandbox, **overrides: dict[str, Any]) -> dict[str, Any]:
    auths: dict[str, dict[str, Any]] = {
        "staging": {"method": "device"},
        "ci": {"method": "offline_token", "token_env": "CI_OFFLINE_TOKEN"},
        "svc": {"method": "client_credentials", "client_id": "provena-ops-ci"},
        **overrides,
    }
    base = {"stage": "DEV", "domain": "sandbox.invalid", "realm_name": "provena", **server.endpoints}
    return {"envs": [{"name": name, **base, "provena_ops": {"auth": auth}} for name, auth in auths.items()]}


@pytest.fixture
def envs_file(server: RunningSandbox, tmp_path: Path) -> Path:
    path = tmp_path / "environments.json"
    path.write_text(json.dumps(environments(server)))
    return path


def cli_env(**extra: str) -> dict[str, str]:
    ci = ("FORCE_COLOR", "PY_COLORS", "CLICOLOR_FORCE", "CI")  # as on a person's machine, CI or not
    env = {k: v for k, v in os.environ.items() if k not in ci}
    return {**env, "NO_COLOR": "1", "COLUMNS": "200", **extra}


def command(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "provena_ops", *map(str, args)]


CliRun = Callable[..., Outcome]


@pytest.fixture
def cli(tmp_path: Path, envs_file: Path) -> CliRun:
    """cli(*args, env={...}) runs the real CLI in a real process in tmp_path, against envs_file."""

    def run(*args: str | Path, env: dict[str, str] | None = None, timeout: float = 90) -> Outcome:
        done = subprocess.run(
            command(*args, "--environments", envs_file),
            cwd=tmp_path,
            env=cli_env(PROVENA_OPS_LOCK_DIR=str(tmp_path / "locks"), **(env or {})),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Outcome(done.returncode, done.stdout, done.stderr)

    return run


def approve(api: Api, user_code: str, user: str, action: str = "approve") -> None:
    """The person at the browser: signs in on the realm's device page (the sandbox's stand-in login)."""
    form = {"user_code": user_code, "username": user, "password": "sandbox", "action": action}
    response = httpx.post(f"{api.keycloak}/device", data=form, timeout=30)
    assert response.status_code == 200, response.text


def approved_by(
    api: Api, user: str, seen: list[DevicePrompt] | None = None
) -> Callable[[str, DevicePrompt], None]:
    def prompt(environment: str, device: DevicePrompt) -> None:
        if seen is not None:
            seen.append(device)
        approve(api, device.user_code, user)

    return prompt


def device_cli(
    api: Api, tmp_path: Path, envs_file: Path, user: str, *args: str, action: str = "approve"
) -> Outcome:
    """Runs a CLI command that starts a device sign-in, approves it as `user` once the code is shown."""
    proc = subprocess.Popen(
        command(*args, "--environments", envs_file),
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    seen = ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen += line
        found = USER_CODE.search(line)
        if found:
            approve(api, found.group(1), user, action)
            break
    assert proc.stdout is not None
    stderr = proc.stderr.read()  # through the same buffered reader: what readline buffered is not lost
    stdout = proc.stdout.read()  # (outputs are a few lines: neither pipe fills while the other is read)
    return Outcome(proc.wait(timeout=60), stdout, seen + stderr)


def realm(api: Api, environment: str = "staging") -> Keycloak:
    return Keycloak(api.keycloak, environment=environment, use_proxies=False)


def signed_in(api: Api, user: str, environment: str = "staging") -> KeycloakSession:
    """A device sign-in done in-process (as `auth login` does), cached for `environment`."""

    async def run() -> KeycloakSession:
        session = KeycloakSession(
            realm(api, environment),
            DeviceSignIn("client-tools", environment, approved_by(api, user)),
            environment=environment,
        )
        try:
            await session.sign_in_afresh()
        finally:
            await session.aclose()
        return session

    return asyncio.run(run())


def mint_offline_token(api: Api, user: str) -> str:
    async def run() -> str:
        async with realm(api, "ci") as keycloak:
            tokens = await DeviceSignIn(
                "automated-access", "ci", approved_by(api, user), scope="offline_access"
            ).acquire(keycloak)
            assert tokens.refresh_token is not None
            return tokens.refresh_token

    return asyncio.run(run())


def revoke(api: Api, client_id: str, token: str) -> None:
    response = httpx.post(
        f"{api.keycloak}/protocol/openid-connect/revoke", data={"client_id": client_id, "token": token}
    )
    assert response.status_code == 200


def refresh_grant(api: Api, client_id: str, refresh_token: str) -> httpx.Response:
    return httpx.post(
        f"{api.keycloak}/protocol/openid-connect/token",
        data={"grant_type": "refresh_token", "client_id": client_id, "refresh_token": refresh_token},
    )
