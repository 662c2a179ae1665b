"""No token, secret or authorization header in anything a full run leaves behind, even at debug verbosity."""

from __future__ import annotations

import json
from pathlib import Path

from provena_ops.provena.token_cache import cache_dir
from provena_ops.safety.redaction import scrub
from tests.auth.conftest import (
    CLIENT_SECRET,
    DELETE_RUNS,
    CliRun,
    Outcome,
    mint_offline_token,
    revoke,
    signed_in,
)
from tests.conftest import Api


def test_a_full_run_leaves_no_secret_in_any_output_or_file(api: Api, tmp_path: Path, cli: CliRun) -> None:
    offline = mint_offline_token(api, "admin")
    expired = api.token(lifetime=-60)
    signed_in(api, "alice")  # a cached device session, refreshed and used below
    debug = {"PROVENA_OPS_DEBUG": "1"}
    ci = {**debug, "CI_OFFLINE_TOKEN": offline}
    svc = {**debug, "PROVENA_OPS_CLIENT_SECRET": CLIENT_SECRET}
    outcomes: list[Outcome] = [
        cli("auth", "login", "ci", env=ci),
        cli("auth", "status", "ci", env=ci),
        cli("auth", "status", "ci", "--format", "json", env=ci),
        cli("auth", "status", "staging", env=debug),
        cli("plan", DELETE_RUNS, "-e", "staging", env=debug),  # alice: a plan with problems
        cli("plan", DELETE_RUNS, "-e", "ci", "--out", "plan.json", env=ci),
        cli("plan", DELETE_RUNS, "-e", "ci", "--format", "json", env=ci),
        cli("plan", DELETE_RUNS, "-e", "ci", "--format", "markdown", env=ci),
        cli("apply", "--plan", "plan.json", "-e", "ci", "--auto-approve", env=ci),
        cli("log", "list"),
        cli("auth", "login", "svc", env=svc),
        cli("auth", "status", "svc", "--format", "json", env=svc),
        cli("auth", "status", "svc", env={**debug, "PROVENA_OPS_CLIENT_SECRET": CLIENT_SECRET + "-wrong"}),
        cli("plan", DELETE_RUNS, "-e", "ci", env={**debug, "PROVENA_OPS_ACCESS_TOKEN": expired}),
    ]
    [journal] = (tmp_path / ".provena-ops" / "runs").glob("*.jsonl")
    outcomes.append(cli("log", "show", journal.stem))
    cached = {path.name: json.loads(path.read_text()) for path in (cache_dir() / "tokens").glob("*.json")}
    revoke(api, "automated-access", offline)
    outcomes.append(cli("auth", "login", "ci", env=ci))  # refused: the error path, with a traceback
    outcomes.append(cli("auth", "logout", "staging", env=debug))

    assert [o.code for o in outcomes[:4]] == [0, 0, 0, 0], [o.output for o in outcomes[:4]]
    assert outcomes[8].code == 0, outcomes[8].output  # the apply
    assert outcomes[-2].code == 1 and "Traceback" in outcomes[-2].stderr  # debug verbosity was on
    secrets = {
        "offline token": offline,
        "client secret": CLIENT_SECRET,
        "expired access token": expired,
    }
    for name, session in cached.items():
        secrets[f"access token cached in {name}"] = session["access_token"]
        if session.get("refresh_token"):
            secrets[f"refresh token cached in {name}"] = session["refresh_token"]
    assert len(secrets) == 7  # offline, secret, expired, three cached access tokens, alice's refresh token

    artefacts = {f"output of command {i}": o.output for i, o in enumerate(outcomes)}
    for path in tmp_path.rglob("*"):
        if path.is_file():
            artefacts[str(path.relative_to(tmp_path))] = path.read_text(errors="replace")
    assert any(name.startswith(".provena-ops/runs/") for name in artefacts)  # the journal was scanned
    for where, text in artefacts.items():
        for name, value in secrets.items():
            assert value not in text, f"the {name} appears in {where}"
        assert "Bearer " not in text and "eyJ" not in text, where
        # The last-resort filter never had to act: secrets were kept out where messages are made.
        assert "<token>" not in text and "<secret>" not in text, where
    for name, session in cached.items():  # the cache holds sessions, never the secrets they came from
        text = json.dumps(session)
        assert offline not in text and CLIENT_SECRET not in text, name


def test_scrub_removes_tokens_and_secrets_from_any_text() -> None:
    jwt_like = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl"
    assert scrub(f"header Authorization: Bearer {jwt_like} end") == "header Authorization: Bearer <token> end"
    assert scrub("Authorization: bearer opaque-token-value") == "Authorization: bearer <token>"
