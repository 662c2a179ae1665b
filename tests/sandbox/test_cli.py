"""`provena-ops sandbox ...` as a user runs it: exit codes, stdout/stderr, and what ends up in the database.

Most error paths go through the real `main()` in process (same parsing, same error rendering, a
fraction of the start-up cost); everything that serves, plus one case per command, runs as a real
subprocess with `cwd=tmp_path` and an explicit `--db`.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re
import selectors
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_der_public_key

from provena_ops import __version__
from provena_ops.cli import app as cli
from provena_ops.sandbox import SandboxSettings, running_sandbox
from provena_ops.sandbox.context import Sandbox
from provena_ops.sandbox.jobs import launch_job
from provena_ops.sandbox.realm import ALL_REALM_ROLES
from provena_ops.sandbox.seed import SeedSummary
from tests.conftest import Api, SeededTemplate

DEMO_ITEMS = 113  # the default demo registry: 6 people, 3 organisations, ..., 60 model runs
DEMO_RUNS = 60
# Keycloak's default realm roles lead every token's roles (realm "provena").
DEFAULTS = ["offline_access", "default-roles-provena", "uma_authorization"]
READ = [*DEFAULTS, "entity-registry-read"]
WRITE = [*DEFAULTS, "entity-registry-read", "entity-registry-write"]
ADMIN = [*DEFAULTS, *ALL_REALM_ROLES]
SUBCOMMANDS = ("serve", "seed", "reset", "load", "token")
TOP_LEVEL = ("version", "validate", "plan", "schema", "environments", "sandbox")


# ---- running the CLI -----------------------------------------------------------------------------


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    def assert_clean_error(self, *fragments: str) -> None:
        """Exit 1, a one-shot `error: ...` on stderr (no traceback), nothing on stdout."""
        assert "Traceback" not in self.stderr, self.stderr
        assert self.code == 1, (self.code, self.stdout, self.stderr)
        assert self.stderr.startswith("error: "), self.stderr
        assert self.stdout == "", self.stdout
        for fragment in fragments:
            assert fragment in self.stderr, (fragment, self.stderr)


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "PY_COLORS", "CLICOLOR_FORCE")}
    return {**env, "NO_COLOR": "1", "COLUMNS": "200"}


def command(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "provena_ops", *map(str, args)]


def run(cwd: Path, *args: str | Path, timeout: float = 60) -> Outcome:
    """The real CLI in a real process."""
    done = subprocess.run(
        command(*args), cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=timeout, check=False
    )
    return Outcome(done.returncode, done.stdout, done.stderr)


def run_in_process(*args: str | Path) -> Outcome:
    """`provena-ops ARGS` through the console script's own `main()`, without a new interpreter.

    An exception escaping `main()` is reported the way the interpreter would: a traceback on
    stderr and exit status 1.
    """
    stdout, stderr = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["provena-ops", *map(str, args)]
    code = 0
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                cli.main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except Exception:
                traceback.print_exc()
                code = 1
    finally:
        sys.argv = argv
    return Outcome(code, stdout.getvalue(), stderr.getvalue())


@pytest.fixture
def in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in-process commands from tmp_path, so a forgotten --db cannot touch the repository."""
    monkeypatch.chdir(tmp_path)


# ---- looking at a database -----------------------------------------------------------------------

REGISTRY_TABLES = ("items", "auth", "locks")
GRAPH_TABLES = ("nodes", "node_tags", "links", "link_tags")
ALL_TABLES = (*REGISTRY_TABLES, "user_groups", *GRAPH_TABLES, "jobs", "sessions", "device_codes", "meta")


def snapshot(db: Path, tables: tuple[str, ...] = ALL_TABLES) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order: equal snapshots mean an unchanged sandbox."""
    conn = sqlite3.connect(db)
    try:
        return {
            table: sorted((tuple(row) for row in conn.execute(f"SELECT * FROM {table}")), key=repr)
            for table in tables
        }
    finally:
        conn.close()


def count(db: Path, table: str, where: str = "1") -> int:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()
        return int(row[0])
    finally:
        conn.close()


def items_by_id(db: Path) -> list[tuple[str, str, dict[str, Any]]]:
    conn = sqlite3.connect(db)
    try:
        return [
            (row[0], row[1], json.loads(row[2]))
            for row in conn.execute("SELECT id, subtype, data FROM items ORDER BY id")
        ]
    finally:
        conn.close()


def graph_of(db: Path) -> dict[str, set[tuple[Any, ...]]]:
    """The provenance graph by natural keys (row ids follow insertion order, which is not part of it)."""
    node = "n.id, n.subtype, n.category"
    link = (
        "l.source, l.source_subtype, l.source_category, "
        "l.target, l.target_subtype, l.target_category, l.relation"
    )
    queries = {
        "nodes": f"SELECT {node} FROM nodes n",
        "node_tags": f"SELECT {node}, t.record_id FROM node_tags t JOIN nodes n USING (nid)",
        "links": f"SELECT {link} FROM links l",
        "link_tags": f"SELECT {link}, t.record_id FROM link_tags t JOIN links l USING (lid)",
    }
    conn = sqlite3.connect(db)
    try:
        return {name: {tuple(row) for row in conn.execute(query)} for name, query in queries.items()}
    finally:
        conn.close()


def model_runs(db: Path) -> int:
    return count(db, "items", "subtype = 'MODEL_RUN'")


# ---- tokens --------------------------------------------------------------------------------------


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def verified_claims(token: str, public_key_b64: str) -> dict[str, Any]:
    """Check the signature with the realm JSON's `public_key` (base64 DER), as Provena's APIs do."""
    key = load_der_public_key(base64.b64decode(public_key_b64))
    assert isinstance(key, RSAPublicKey)
    claims: dict[str, Any] = jwt.decode(
        token, key, algorithms=["RS256"], options={"verify_aud": False, "require": ["exp"]}
    )
    return claims


def mint(db: Path, *options: str) -> str:
    outcome = run_in_process("sandbox", "token", "--db", db, *options)
    assert outcome.code == 0, outcome
    return outcome.stdout.strip()


def realm_public_key(keycloak_url: str) -> str:
    response = httpx.get(keycloak_url, timeout=30)
    assert response.status_code == 200, response.text
    key: str = response.json()["public_key"]
    return key


@contextlib.contextmanager
def serving(db: Path) -> Iterator[dict[str, str]]:
    """An in-thread server over `db`, for looking at the result of a command over HTTP."""
    with running_sandbox(SandboxSettings(db_path=db, random_seed=7)) as running:
        yield running.endpoints


# ---- a real `sandbox serve` process --------------------------------------------------------------


class ServeProcess:
    def __init__(self, cwd: Path, *args: str | Path) -> None:
        self.proc = subprocess.Popen(
            command("sandbox", "serve", *args),
            cwd=cwd,
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.stdout = b""
        self.stderr = ""

    def endpoints(self, timeout: float = 30) -> dict[str, str]:
        """The endpoint overrides printed on stdout, read as soon as they are complete."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if selector.select(timeout=0.2):
                    chunk = os.read(self.proc.stdout.fileno(), 65536)
                    if not chunk:
                        break
                    self.stdout += chunk
                    with contextlib.suppress(ValueError):
                        urls: dict[str, str] = json.loads(self.stdout.decode())
                        return urls
        self.stop(signal.SIGKILL)
        raise AssertionError(f"serve printed no endpoint overrides: {self.stdout!r} {self.stderr!r}")

    def stop(self, sig: int, timeout: float = 20) -> tuple[int, str, str]:
        """Signal the server and wait; returns (exit status, the rest of stdout, all of stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rest, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rest, err = self.proc.communicate()
            raise AssertionError(f"serve did not stop within {timeout}s of signal {sig}") from None
        self.stderr = err.decode()
        return self.proc.returncode, rest.decode(), self.stderr


@contextlib.contextmanager
def serve(cwd: Path, *args: str | Path) -> Iterator[ServeProcess]:
    server = ServeProcess(cwd, *args)
    try:
        yield server
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.communicate()


# ---- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def export_items(api: Api) -> list[dict[str, Any]]:
    """The demo registry as Provena's admin export returns it (a list of BundledItem)."""
    response = api.http.get(f"{api.registry}/admin/export", headers=api.auth())
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    assert len(items) == DEMO_ITEMS
    return items


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


# ==== --help ======================================================================================


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        ((), TOP_LEVEL),
        (("sandbox",), SUBCOMMANDS),
        (("version",), ("version",)),
        (("validate",), ("validate", "--format")),
        (("plan",), ("plan", "--out", "--format")),
        (("schema",), ("schema",)),
        (("environments",), ("environments",)),
        (("sandbox", "serve"), ("serve", "--port", "--db", "--seed-demo", "--allow-remote", "--fault-rate")),
        (("sandbox", "seed"), ("seed", "--scale", "--reset", "--db")),
        (("sandbox", "reset"), ("reset", "--db")),
        (("sandbox", "load"), ("load", "export", "--replace", "--no-relodge", "--db")),
        (("sandbox", "token"), ("token", "--user", "--roles", "--lifetime", "--db")),
    ],
    ids=[
        "top-level",
        "sandbox",
        *TOP_LEVEL[:-1],
        *(f"sandbox-{name}" for name in SUBCOMMANDS),
    ],
)
def test_help(in_process: None, args: tuple[str, ...], mentions: tuple[str, ...]) -> None:
    outcome = run_in_process(*args, "--help")
    assert outcome.code == 0, outcome
    assert outcome.stderr == ""
    assert re.search(
        rf"Usage: (\S*/)?provena-ops {re.escape(' '.join((*args, '')))}\[OPTIONS\]", outcome.stdout
    ), outcome.stdout
    for mention in mentions:
        assert mention in outcome.stdout, (mention, outcome.stdout)


def test_the_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("provena-ops")
    if not script.exists():
        pytest.skip("the provena-ops console script is not installed next to the interpreter")
    done = subprocess.run(
        [str(script), "version"], cwd=tmp_path, env=cli_env(), capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{__version__}\n", "")


# ==== seed ========================================================================================


def test_seed_is_deterministic(tmp_path: Path) -> None:
    """Two fresh databases seeded by separate processes hold the same registry and graph."""
    first, second = tmp_path / "a" / "sandbox.db", tmp_path / "b" / "sandbox.db"
    procs = [
        subprocess.Popen(
            command("sandbox", "seed", "--db", db),
            cwd=tmp_path,
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for db in (first, second)
    ]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    assert [err for _, err in outputs] == ["", ""]
    assert outputs[0][0].replace(str(first), "DB") == outputs[1][0].replace(str(second), "DB")
    assert re.search(r"MODEL_RUN\W+60\b", outputs[0][0]), outputs[0][0]

    items = items_by_id(first)
    assert len(items) == DEMO_ITEMS
    assert items == items_by_id(second)
    assert snapshot(first, (*REGISTRY_TABLES, "user_groups")) == snapshot(
        second, (*REGISTRY_TABLES, "user_groups")
    )
    assert graph_of(first) == graph_of(second)


def test_seed_scale_sets_the_number_of_model_runs(tmp_path: Path, in_process: None) -> None:
    db = tmp_path / "sandbox.db"
    outcome = run_in_process("sandbox", "seed", "--scale", "7", "--db", db)
    assert outcome.code == 0, outcome
    assert re.search(r"MODEL_RUN\W+7\b", outcome.stdout), outcome.stdout
    assert model_runs(db) == 7
    assert count(db, "items", "subtype = 'STUDY'") == 5  # everything else does not scale


def test_seed_refuses_a_non_empty_sandbox_and_leaves_it_alone(tmp_path: Path, sandbox_db: Path) -> None:
    before = snapshot(sandbox_db)
    outcome = run(tmp_path, "sandbox", "seed", "--scale", "7", "--db", sandbox_db)
    outcome.assert_clean_error(
        f"error: {sandbox_db}: the sandbox already holds {DEMO_ITEMS} items", "--reset", "sandbox reset"
    )
    assert snapshot(sandbox_db) == before


def test_seed_reset_reseeds_and_keeps_the_realm_key(
    tmp_path: Path, sandbox_db: Path, in_process: None
) -> None:
    token = mint(sandbox_db, "--user", "alice")
    outcome = run_in_process("sandbox", "seed", "--reset", "--scale", "7", "--db", sandbox_db)
    assert outcome.code == 0, outcome
    assert model_runs(sandbox_db) == 7
    assert count(sandbox_db, "items") < DEMO_ITEMS
    with serving(sandbox_db) as urls:
        assert verified_claims(token, realm_public_key(urls["keycloak_endpoint_override"]))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--scale", "0"), "error: --scale must be at least 1, got 0"),
        (("--scale", "-3"), "error: --scale must be at least 1, got -3"),
        (("--no-demo",), "error: nothing to seed without --demo"),
    ],
)
def test_seed_rejects_bad_options_before_touching_the_database(
    tmp_path: Path, in_process: None, args: tuple[str, ...], message: str
) -> None:
    db = tmp_path / "sandbox.db"
    run_in_process("sandbox", "seed", "--db", db, *args).assert_clean_error(message)
    assert not db.exists()


# ==== reset =======================================================================================


def test_reset_empties_the_sandbox_but_old_tokens_still_verify(tmp_path: Path, sandbox_db: Path) -> None:
    # Give the seeded sandbox a job and a login session, so there is something of each to empty.
    sandbox = Sandbox(SandboxSettings(db_path=sandbox_db))
    try:
        launch_job(sandbox, "admin", "PROV_LODGE", "MODEL_RUN_LODGE_ONLY", {"model_run_record_id": "x"})
        sandbox.realm.mint_session("alice", "client-tools", offline=False, issuer="provena-sandbox")
        key_before = sandbox.realm.public_key_b64
    finally:
        sandbox.store.close()
    assert count(sandbox_db, "jobs") == 1 and count(sandbox_db, "sessions") == 1
    assert count(sandbox_db, "nodes") > 0
    token = mint(sandbox_db, "--user", "admin")

    outcome = run(tmp_path, "sandbox", "reset", "--db", sandbox_db)

    assert (outcome.code, outcome.stderr) == (0, ""), outcome
    assert outcome.stdout == f"Sandbox {sandbox_db} is empty.\n"
    emptied = ("items", "auth", "locks", "nodes", "node_tags", "links", "link_tags", "jobs", "sessions")
    assert {table: count(sandbox_db, table) for table in emptied} == dict.fromkeys(emptied, 0)
    with serving(sandbox_db) as urls:
        public_key = realm_public_key(urls["keycloak_endpoint_override"])
        assert public_key == key_before
        assert verified_claims(token, public_key)["preferred_username"] == "admin"
        response = httpx.post(
            f"{urls['registry_api_endpoint_override']}/registry/general/list",
            json={},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        assert response.json()["items"] == []


# ==== token =======================================================================================


def test_token_prints_exactly_one_jwt_signed_by_the_realm(tmp_path: Path, sandbox_db: Path, api: Api) -> None:
    """The `server` fixture serves a copy of the same seeded database, hence the same realm key."""
    before = int(time.time())
    outcome = run(tmp_path, "sandbox", "token", "--user", "alice", "--db", sandbox_db)
    assert (outcome.code, outcome.stderr) == (0, ""), outcome
    lines = outcome.stdout.splitlines()
    assert len(lines) == 1 and outcome.stdout == lines[0] + "\n", outcome.stdout
    token = lines[0]
    assert re.fullmatch(r"[\w-]+\.[\w-]+\.[\w-]+", token), token
    assert jwt.get_unverified_header(token)["alg"] == "RS256"

    claims = claims_of(token)
    assert claims["preferred_username"] == "alice"
    assert claims["realm_access"]["roles"] == WRITE
    assert claims["email"] == "alice@sandbox.provena.test"
    # The claims a Keycloak access token carries besides, as a real realm issues them.
    assert claims["aud"] == "account" and claims["typ"] == "Bearer" and claims["acr"] == "1"
    assert claims["resource_access"] == {
        "account": {"roles": ["manage-account", "manage-account-links", "view-profile", "delete-account"]}
    }
    assert claims["session_state"] == claims["sid"] and claims["auth_time"] == claims["iat"]
    assert before + 300 <= claims["exp"] <= int(time.time()) + 300
    assert verified_claims(token, realm_public_key(api.keycloak)) == claims

    response = api.http.post(
        f"{api.registry}/registry/activity/study/list",
        json={},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["items"], "alice should see the seeded studies"


@pytest.mark.parametrize(
    ("user", "roles", "expected"),
    [
        ("admin", (), ADMIN),  # a known user's own roles by default
        ("reader", (), READ),
        ("alice", ("admin",), ADMIN),
        ("alice", ("write",), WRITE),
        ("alice", ("read",), READ),
        ("alice", ("none",), DEFAULTS),
        ("alice", ("offline_access,read",), READ),  # default roles are accepted, and listed once
        (
            "alice",
            ("entity-registry-read,job-service-read",),
            [*DEFAULTS, "entity-registry-read", "job-service-read"],
        ),
        (
            "alice",
            (" job-service-read , entity-registry-read ",),
            [*DEFAULTS, "job-service-read", "entity-registry-read"],
        ),
        ("alice", ("read", "job-service-admin"), [*DEFAULTS, "entity-registry-read", "job-service-admin"]),
        ("alice", ("read,write,admin",), ADMIN),  # presets merge without duplicates
        ("carol", ("read",), READ),  # not a realm user: fine with explicit roles
        ("alice", ("prov-api",), [*DEFAULTS, "prov-api"]),  # a Provena service's role
    ],
)
def test_token_roles(
    sandbox_db: Path, in_process: None, user: str, roles: tuple[str, ...], expected: list[str]
) -> None:
    options = [part for role in roles for part in ("--roles", role)]
    claims = claims_of(mint(sandbox_db, "--user", user, *options))
    assert claims["realm_access"]["roles"] == expected
    assert claims["preferred_username"] == user
    assert claims["email"] == f"{user}@sandbox.provena.test"


def test_token_email_and_lifetime(sandbox_db: Path, in_process: None) -> None:
    claims = claims_of(mint(sandbox_db, "--user", "bob", "--email", "bob@example.org", "--lifetime", "60"))
    assert claims["email"] == "bob@example.org"
    assert claims["exp"] - claims["iat"] == 60
    assert abs(claims["exp"] - (time.time() + 60)) < 10
    default = claims_of(mint(sandbox_db, "--user", "bob"))
    assert default["exp"] - default["iat"] == 300


@pytest.mark.parametrize(
    ("options", "fragments"),
    [
        (("--user", "alice", "--roles", "superuser"), ("error: unknown role(s): superuser", "admin, write")),
        (
            ("--user", "alice", "--roles", "entity-registry-read,,bogus-role"),
            ("error: unknown role(s): bogus-role", "entity-registry-read"),
        ),
        (("--user", "alice", "--roles", "read;write"), ("error: unknown role(s): read;write",)),
        (("--user", "alice", "--roles", "Admin"), ("error: unknown role(s): Admin",)),
        (("--user", "carol"), ("error: unknown sandbox user 'carol'", "--roles", "alice")),
        (("--user", "alice", "--lifetime", "0"), ("error: --lifetime must be at least 1 second, got 0",)),
        (("--user", "alice", "--lifetime", "-30"), ("error: --lifetime must be at least 1 second, got -30",)),
    ],
)
def test_token_errors(
    sandbox_db: Path, in_process: None, options: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    run_in_process("sandbox", "token", "--db", sandbox_db, *options).assert_clean_error(*fragments)


def test_token_unknown_preset_in_a_real_process(tmp_path: Path, sandbox_db: Path) -> None:
    outcome = run(tmp_path, "sandbox", "token", "--user", "alice", "--roles", "superuser", "--db", sandbox_db)
    outcome.assert_clean_error(
        "error: unknown role(s): superuser", "hint: use a preset (admin, write, read, none)"
    )


# ==== load ========================================================================================


def test_load_an_export_into_an_empty_sandbox(
    tmp_path: Path, export_items: list[dict[str, Any]], seeded_template: SeededTemplate
) -> None:
    """Export, load into a fresh database, export again: the same registry, and its graph rebuilt."""
    export = write_json(tmp_path / "export.json", export_items)
    db = tmp_path / "copy" / "sandbox.db"

    outcome = run(tmp_path, "sandbox", "load", export, "--db", db)

    assert (outcome.code, outcome.stderr) == (0, ""), outcome
    assert outcome.stdout == (
        f"Loaded {export}: {DEMO_ITEMS} new, 0 overwritten, 0 deleted; "
        f"registry now holds {DEMO_ITEMS} items.\n"
        f"Relodged {DEMO_RUNS} model run graphs.\n"
    )
    assert count(db, "items") == DEMO_ITEMS
    assert [item_id for item_id, _, _ in items_by_id(db)] == sorted(bundle["id"] for bundle in export_items)
    assert count(db, "nodes") > 0
    with serving(db) as urls:
        admin = mint(db, "--user", "admin")
        response = httpx.get(
            f"{urls['registry_api_endpoint_override']}/admin/export",
            headers={"Authorization": f"Bearer {admin}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        by_id = {bundle["id"]: bundle for bundle in export_items}
        assert {bundle["id"]: bundle for bundle in response.json()["items"]} == by_id


def test_load_accepts_an_export_response_and_no_relodge(
    tmp_path: Path, export_items: list[dict[str, Any]], in_process: None
) -> None:
    """The `/admin/export` response body (status + items) loads as well as the bare array."""
    export = write_json(tmp_path / "response.json", {"status": {"success": True}, "items": export_items})
    db = tmp_path / "sandbox.db"
    outcome = run_in_process("sandbox", "load", export, "--db", db, "--no-relodge")
    assert outcome.code == 0, outcome
    assert outcome.stdout.splitlines() == [
        f"Loaded {export}: {DEMO_ITEMS} new, 0 overwritten, 0 deleted; registry now holds {DEMO_ITEMS} items."
    ]
    assert count(db, "items") == DEMO_ITEMS
    assert count(db, "nodes") == 0


def people_and_organisations(export_items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    subset = [b for b in export_items if b["item_payload"]["item_subtype"] in ("PERSON", "ORGANISATION")]
    assert len(subset) == 9
    return subset


def test_load_adds_or_overwrites_and_replace_deletes_the_rest(
    tmp_path: Path, sandbox_db: Path, export_items: list[dict[str, Any]], in_process: None
) -> None:
    subset = people_and_organisations(export_items)
    subset[0]["item_payload"]["display_name"] = "Renamed in the export"
    export = write_json(tmp_path / "people.json", subset)

    kept = run_in_process("sandbox", "load", export, "--db", sandbox_db)
    assert kept.code == 0, kept
    assert f"0 new, 9 overwritten, 0 deleted; registry now holds {DEMO_ITEMS} items." in kept.stdout
    assert count(sandbox_db, "items") == DEMO_ITEMS
    renamed = count(
        sandbox_db, "items", f"id = '{subset[0]['id']}' AND display_name = 'Renamed in the export'"
    )
    assert renamed == 1

    replaced = run_in_process("sandbox", "load", export, "--replace", "--db", sandbox_db)
    assert replaced.code == 0, replaced
    assert f"0 new, 9 overwritten, {DEMO_ITEMS - 9} deleted; registry now holds 9 items." in replaced.stdout
    assert [item_id for item_id, _, _ in items_by_id(sandbox_db)] == sorted(b["id"] for b in subset)


def test_load_replace_leaves_no_graph_of_deleted_records(
    tmp_path: Path, sandbox_db: Path, export_items: list[dict[str, Any]], in_process: None
) -> None:
    subset = people_and_organisations(export_items)
    export = write_json(tmp_path / "people.json", subset)
    outcome = run_in_process("sandbox", "load", export, "--replace", "--db", sandbox_db)
    assert outcome.code == 0, outcome
    remaining = {bundle["id"] for bundle in subset}
    admin = mint(sandbox_db, "--user", "admin")
    with serving(sandbox_db) as urls:
        response = httpx.get(
            f"{urls['prov_api_endpoint_override']}/explore/downstream",
            params={"starting_id": subset[0]["id"], "depth": 1},
            headers={"Authorization": f"Bearer {admin}"},
            timeout=30,
        )
    assert response.status_code == 200, response.text
    stale = {node["id"] for node in response.json()["graph"]["nodes"]} - remaining
    assert stale == set(), f"{len(stale)} graph nodes of deleted records, e.g. {sorted(stale)[:3]}"


BAD_EXPORTS: list[tuple[str, bytes | None, str]] = [
    ("missing file", None, "cannot read the export file: No such file or directory"),
    ("not JSON", b"id,item_payload\n1,2\n", "export.json:1:1: invalid JSON"),
    ("empty file", b"", "invalid JSON"),
    (
        "duplicate key",
        b'[{"id": "10378.1/1", "id": "10378.1/2"}]',
        'export.json:1:22: [0].id: duplicate key "id"',
    ),
    ("NaN", b'[{"id": NaN}]', "export.json:1:9: [0].id: NaN and Infinity are not JSON numbers"),
    ("object without items", b'{"registry": []}', "expected a JSON array of exported items"),
    ("items not a list", b'{"items": "all of them"}', "expected a JSON array of exported items"),
    ("a string", b'"export"', "expected a JSON array of exported items"),
    ("entry missing fields", b'[{"id": "10378.1/1"}]', "item 0: item_payload: Field required"),
    ("array of numbers", b"[1, 2]", "item 0:"),
]


@pytest.mark.parametrize(
    ("content", "message"), [c[1:] for c in BAD_EXPORTS], ids=[c[0] for c in BAD_EXPORTS]
)
def test_load_rejects_a_bad_export_and_leaves_the_sandbox_unchanged(
    tmp_path: Path, sandbox_db: Path, in_process: None, content: bytes | None, message: str
) -> None:
    export = tmp_path / "export.json"
    if content is not None:
        export.write_bytes(content)
    before = snapshot(sandbox_db)
    run_in_process("sandbox", "load", export, "--db", sandbox_db).assert_clean_error(f"{export}", message)
    assert snapshot(sandbox_db) == before


def test_load_of_a_bad_export_does_not_create_the_database(tmp_path: Path) -> None:
    db = tmp_path / "new" / "sandbox.db"
    export = tmp_path / "export.json"
    export.write_text("{not json", encoding="utf-8")
    outcome = run(tmp_path, "sandbox", "load", export, "--db", db)
    outcome.assert_clean_error(f"error: {export}:1:2: invalid JSON", "hint: pass the file written by")
    assert not db.exists()


def test_load_reports_an_import_the_registry_refuses(
    tmp_path: Path, sandbox_db: Path, export_items: list[dict[str, Any]], in_process: None
) -> None:
    study = next(b for b in export_items if b["item_payload"]["item_subtype"] == "STUDY")
    del study["item_payload"]["display_name"]
    export = write_json(tmp_path / "broken.json", [study])
    before = snapshot(sandbox_db)
    run_in_process("sandbox", "load", export, "--replace", "--db", sandbox_db).assert_clean_error(
        "import refused", study["id"], "display_name"
    )
    assert snapshot(sandbox_db) == before


def test_load_of_a_binary_file_is_a_clear_error(tmp_path: Path, sandbox_db: Path) -> None:
    db = tmp_path / "target.db"
    outcome = run(tmp_path, "sandbox", "load", sandbox_db, "--db", db)
    outcome.assert_clean_error(f"error: {sandbox_db}")
    assert not db.exists()


def test_load_names_a_non_object_entry_without_an_empty_location(
    tmp_path: Path, sandbox_db: Path, in_process: None
) -> None:
    export = write_json(tmp_path / "export.json", [1])
    outcome = run_in_process("sandbox", "load", export, "--db", sandbox_db)
    outcome.assert_clean_error("item 0")
    assert ": :" not in outcome.stderr, outcome.stderr


# ==== serve =======================================================================================


def test_serve_prints_the_overrides_serves_and_exits_130_on_sigint(
    tmp_path: Path, sandbox_db: Path, demo: SeedSummary
) -> None:
    with serve(tmp_path, "--port", "0", "--db", sandbox_db) as server:
        urls = server.endpoints()
        assert set(urls) == {
            "registry_api_endpoint_override",
            "prov_api_endpoint_override",
            "jobs_service_api_endpoint_override",
            "search_api_endpoint_override",
            "auth_api_endpoint_override",
            "keycloak_endpoint_override",
        }
        base = re.fullmatch(
            r"(http://127\.0\.0\.1:(\d+))/registry-api", urls["registry_api_endpoint_override"]
        )
        assert base is not None and int(base.group(2)) > 0, urls
        assert all(url.startswith(base.group(1) + "/") for url in urls.values()), urls

        realm = httpx.get(urls["keycloak_endpoint_override"], timeout=30)
        assert realm.status_code == 200 and realm.json()["realm"] == "provena", realm.text
        token = mint(sandbox_db, "--user", "alice")
        assert verified_claims(token, realm.json()["public_key"])["preferred_username"] == "alice"
        fetched = httpx.get(
            f"{urls['registry_api_endpoint_override']}/registry/general/fetch",
            params={"id": demo.notable["locked record"]},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert fetched.status_code == 200, fetched.text
        assert fetched.json()["item"]["id"] == demo.notable["locked record"]
        unauthenticated = httpx.get(
            f"{urls['registry_api_endpoint_override']}/registry/general/fetch",
            params={"id": demo.notable["locked record"]},
            timeout=30,
        )
        assert unauthenticated.status_code == 401

        code, rest, stderr = server.stop(signal.SIGINT)

    assert code == 130, (code, stderr)  # README: "130 interrupted"
    assert rest.strip() == ""
    assert "Traceback" not in stderr, stderr
    assert stderr.startswith(f"Provena sandbox on {base.group(1)} (database {sandbox_db})"), stderr
    assert not Path(f"{sandbox_db}-wal").exists(), "the database was not closed cleanly"


def test_serve_shuts_down_gracefully_on_sigterm(tmp_path: Path, sandbox_db: Path) -> None:
    """uvicorn shuts down, then re-raises SIGTERM: the process ends *by* SIGTERM (shell status 143).

    That is the Unix convention for a terminated service; README's exit-code list does not mention it.
    """
    with serve(tmp_path, "--port", "0", "--db", sandbox_db) as server:
        urls = server.endpoints()
        assert httpx.get(urls["keycloak_endpoint_override"], timeout=30).status_code == 200
        code, rest, stderr = server.stop(signal.SIGTERM)
    assert code == -signal.SIGTERM, (code, stderr)
    assert rest.strip() == ""
    assert "Traceback" not in stderr, stderr
    assert not Path(f"{sandbox_db}-wal").exists(), "the database was not closed cleanly"


def test_serve_seed_demo_seeds_an_empty_sandbox(tmp_path: Path, demo: SeedSummary) -> None:
    db = tmp_path / "fresh" / "sandbox.db"
    with serve(tmp_path, "--port", "0", "--db", db, "--seed-demo") as server:
        urls = server.endpoints()
        token = mint(db, "--user", "admin")
        fetched = httpx.get(
            f"{urls['registry_api_endpoint_override']}/registry/general/fetch",
            params={"id": demo.notable["locked record"]},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert fetched.status_code == 200, fetched.text
        code, _, stderr = server.stop(signal.SIGINT)
    assert code == 130, stderr
    assert count(db, "items") == DEMO_ITEMS
    assert model_runs(db) == DEMO_RUNS


def test_serve_seed_demo_keeps_an_existing_registry(tmp_path: Path, in_process: None) -> None:
    db = tmp_path / "sandbox.db"
    assert run_in_process("sandbox", "seed", "--scale", "2", "--db", db).code == 0
    before = snapshot(db, REGISTRY_TABLES)
    with serve(tmp_path, "--port", "0", "--db", db, "--seed-demo") as server:
        urls = server.endpoints()
        assert httpx.get(urls["keycloak_endpoint_override"], timeout=30).status_code == 200
        code, _, stderr = server.stop(signal.SIGINT)
    assert code == 130, stderr
    assert "Traceback" not in stderr and "error" not in stderr, stderr
    assert snapshot(db, REGISTRY_TABLES) == before
    assert model_runs(db) == 2


def test_serve_refuses_a_non_loopback_host_in_a_real_process(tmp_path: Path) -> None:
    db = tmp_path / "sandbox.db"
    outcome = run(tmp_path, "sandbox", "serve", "--host", "0.0.0.0", "--port", "0", "--db", db)
    outcome.assert_clean_error(
        "error: refusing to serve the sandbox on 0.0.0.0: it listens on loopback only", "--allow-remote"
    )
    assert not db.exists()


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "example.org"])
def test_serve_refuses_non_loopback_hosts(tmp_path: Path, in_process: None, host: str) -> None:
    db = tmp_path / "sandbox.db"
    run_in_process("sandbox", "serve", "--host", host, "--port", "0", "--db", db).assert_clean_error(
        f"refusing to serve the sandbox on {host}", "--allow-remote"
    )
    assert not db.exists()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--fault-rate", "1.5", "error: --fault-rate must be between 0 and 1, got 1.5"),
        ("--fault-rate", "-0.1", "error: --fault-rate must be between 0 and 1, got -0.1"),
        ("--fault-rate", "nan", "error: --fault-rate must be between 0 and 1, got nan"),
        ("--job-fail-rate", "2", "error: --job-fail-rate must be between 0 and 1, got 2.0"),
        ("--latency-ms", "-5", "error: --latency-ms must not be negative, got -5.0"),
        ("--job-delay-ms", "-1", "error: --job-delay-ms must not be negative, got -1.0"),
        ("--job-row-delay-ms", "-0.5", "error: --job-row-delay-ms must not be negative, got -0.5"),
    ],
)
def test_serve_rejects_bad_fault_settings(
    tmp_path: Path, in_process: None, option: str, value: str, message: str
) -> None:
    db = tmp_path / "sandbox.db"
    run_in_process("sandbox", "serve", "--port", "0", "--db", db, option, value).assert_clean_error(message)
    assert not db.exists()


def test_serve_reports_a_port_in_use(tmp_path: Path, in_process: None) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        outcome = run_in_process("sandbox", "serve", "--port", str(port), "--db", tmp_path / "sandbox.db")
    outcome.assert_clean_error(f"error: cannot listen on 127.0.0.1:{port}:", "in use", "--port")


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_serve_rejects_an_out_of_range_port(tmp_path: Path, in_process: None, port: str) -> None:
    outcome = run_in_process("sandbox", "serve", "--port", port, "--db", tmp_path / "sandbox.db")
    outcome.assert_clean_error("--port")


def test_serve_on_a_foreign_address_does_not_blame_the_port(tmp_path: Path, in_process: None) -> None:
    db = tmp_path / "sandbox.db"
    outcome = run_in_process("sandbox", "serve", "--host", "192.0.2.1", "--allow-remote", "--db", db)
    outcome.assert_clean_error("error: cannot listen on 192.0.2.1")
    assert "pick another --port" not in outcome.stderr, outcome.stderr


@pytest.mark.parametrize("seed_demo", [False, True], ids=["plain", "seed-demo"])
def test_serve_with_an_unusable_database_is_a_clear_error(tmp_path: Path, seed_demo: bool) -> None:
    directory = tmp_path / "a-directory"
    directory.mkdir()
    args = ["--port", "0", "--db", str(directory), *(["--seed-demo"] if seed_demo else [])]
    outcome = run(tmp_path, "sandbox", "serve", *args, timeout=20)
    outcome.assert_clean_error(f"error: {directory}: cannot open the sandbox database")


@pytest.mark.parametrize("args", [("-h",), ("undo", "-h"), ("sandbox", "export", "-h"), ("show", "-h")])
def test_h_is_help_everywhere(in_process: None, args: tuple[str, ...]) -> None:
    outcome = run_in_process(*args)
    assert outcome.code == 0, outcome.stderr
    assert "Usage: provena-ops" in outcome.stdout and "--help" in outcome.stdout


def test_version_option_prints_the_version_alone(in_process: None) -> None:
    outcome = run_in_process("--version")
    assert (outcome.code, outcome.stdout, outcome.stderr) == (0, f"{__version__}\n", "")
