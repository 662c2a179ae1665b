"""What a plan says when reading fails: a record hidden from the user, a graph that cannot be explored,
an unreachable or foreign service, a rejected token, an unusable --out. Never a traceback, never a plan
that looks safe because something could not be read."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from provena_ops import api as ops
from provena_ops.environments.target import TargetArgs
from provena_ops.provena.errors import NotAuthorised, Unexpected, Unreachable
from provena_ops.render.json_format import render_json
from provena_ops.sandbox import RunningSandbox
from tests.conftest import Api
from tests.local_servers import read_terminal, serving
from tests.plan.conftest import PlanOn, playbook
from tests.plan.test_plan_rules import CREATED_AT, REEF_010, RUN_ROUTE, STUDY_51, STUDY_52, messages

WRITER = ["entity-registry-read", "entity-registry-write"]


def environments_with(tmp_path: Path, server: RunningSandbox, **overrides: str) -> Path:
    endpoints = {**server.endpoints, **overrides}
    path = tmp_path / "environments.json"
    env = {"name": "rehearsal", "stage": "DEV", "domain": "sandbox.invalid", "realm_name": "provena"}
    path.write_text(json.dumps({"envs": [{**env, **endpoints}]}))
    return path


def plan_with(
    tmp_path: Path, environments: Path, text: str, monkeypatch: pytest.MonkeyPatch, token: str
) -> Any:
    monkeypatch.setenv("PROVENA_OPS_ACCESS_TOKEN", token)
    path = tmp_path / "playbook.yaml"
    path.write_text(text)
    return ops.plan(path, TargetArgs("rehearsal", environments_file=environments))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_record_the_user_may_not_read_is_a_problem_naming_it(plan_on: PlanOn, api: Api) -> None:
    hidden = api.http.put(
        f"{api.registry}{RUN_ROUTE}/auth/configuration",
        params={"id": REEF_010},
        json={"owner": "bob", "general": [], "groups": {}},
        headers=api.auth(),
    )
    assert hidden.status_code == 200, hidden.text
    edit = plan_on(
        playbook(f"op: update_model_runs\nreason: r\nmodel_runs: [{REEF_010}]\nset: {{description: x}}"),
        user="alice",
        roles=WRITER,
    )
    unreadable = f"model run {REEF_010} cannot be read: alice may not read it (Provena answered 401: no read"
    assert any(m.startswith(unreadable) for m in messages(edit)), edit.problems
    delete = plan_on(playbook(f"op: delete_model_runs\nmodel_runs: [{REEF_010}]"), user="alice")
    assert any(m.startswith(unreadable) for m in messages(delete)), delete.problems
    assert not [a for a in delete.actions if a.outcome == "not_found"]  # hidden is not gone


def test_a_study_whose_graph_cannot_be_explored_cannot_be_deleted(
    server: RunningSandbox, api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the graph, a link from something other than a model run (study 52's CREATE) is invisible."""
    base = server.base_url.rstrip("/")
    environments = environments_with(tmp_path, server, prov_api_endpoint_override=f"{base}/no-prov-here")
    made = plan_with(
        tmp_path,
        environments,
        playbook(f"op: delete_studies\nlinked_model_runs: remove\nstudies: [{STUDY_52}]"),
        monkeypatch,
        api.token(),
    )
    [problem] = [p for p in made.problems if p.record_id == STUDY_52]
    assert problem.message.startswith(f"study {STUDY_52}: the provenance graph could not be explored (")
    assert "records other than model runs that link to it cannot be ruled out" in problem.message


def test_an_unreachable_service_ends_the_plan_with_an_error_naming_the_call(
    server: RunningSandbox, api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    environments = environments_with(
        tmp_path, server, prov_api_endpoint_override=f"http://127.0.0.1:{closed_port()}/prov"
    )
    monkeypatch.setenv("PROVENA_OPS_RETRY_BUDGET", "2")  # retried for 2 s, not the default minute
    started = time.monotonic()
    with pytest.raises(Unreachable) as failure:
        plan_with(
            tmp_path,
            environments,
            playbook(f"op: delete_studies\nlinked_model_runs: remove\nstudies: [{STUDY_51}]"),
            monkeypatch,
            api.token(),
        )
    assert 1.5 < time.monotonic() - started < 30
    assert re.search(
        r"on the prov API of 'rehearsal' failed after \d+ attempts over 2 s: ConnectError",
        failure.value.message,
    ), failure.value.message
    assert "the call was retried" in (failure.value.hint or "")


class _Foreign(BaseHTTPRequestHandler):
    """A service that is not Provena: a JSON list for every request."""

    def do_GET(self) -> None:
        body = b"[]"
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *_: object) -> None:
        return


@pytest.fixture
def foreign_service() -> Iterator[str]:
    with serving(_Foreign) as url:
        yield url


def test_a_service_that_does_not_answer_like_provena_is_named(
    server: RunningSandbox, api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, foreign_service: str
) -> None:
    environments = environments_with(tmp_path, server, registry_api_endpoint_override=foreign_service)
    with pytest.raises(Unexpected) as failure:
        plan_with(
            tmp_path,
            environments,
            playbook(f"op: delete_model_runs\nmodel_runs: [{REEF_010}]"),
            monkeypatch,
            api.token(),
        )
    assert failure.value.message == (
        f"GET /registry/activity/model_run/fetch?id={REEF_010}&seed_allowed=false on the registry API of "
        "'rehearsal' answered a body that "
        "does not match Provena's ModelRunFetchResponse: a JSON list, not an object"
    )
    assert "provena-interfaces-v2" in (failure.value.hint or "")


def test_a_token_provena_rejects_says_to_sign_in_again(
    api: Api, remote_environments: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(NotAuthorised) as failure:
        plan_with(
            tmp_path,
            remote_environments,
            playbook(f"op: delete_model_runs\nmodel_runs: [{REEF_010}]"),
            monkeypatch,
            "not-a-token",
        )
    # Checked against the realm's key before the first call, as Provena's APIs would check it.
    assert (
        "the access token from $PROVENA_OPS_ACCESS_TOKEN is not valid for 'rehearsal'"
        in failure.value.message
    )
    assert (failure.value.hint or "").startswith("set $PROVENA_OPS_ACCESS_TOKEN to a fresh token")
    assert "not-a-token" not in failure.value.render()


def cli_plan(api: Api, environments: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PROVENA_OPS_ACCESS_TOKEN": api.token("admin", lifetime=600)}
    command = [sys.executable, "-m", "provena_ops", "plan", *args]
    command += ["--environments", str(environments), "-e", "rehearsal"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("out", "said"),
    [("{tmp}", "is a directory"), ("/dev/null/plan.json", "cannot write the plan to /dev/null/plan.json")],
)
def test_an_unusable_out_path_is_refused_before_anything_is_read(
    api: Api, remote_environments: Path, tmp_path: Path, out: str, said: str
) -> None:
    path = tmp_path / "playbook.yaml"
    path.write_text(playbook(f"op: delete_model_runs\nmodel_runs: [{REEF_010}]"))
    result = cli_plan(api, remote_environments, str(path), "--out", out.format(tmp=tmp_path))
    assert result.returncode == 1
    assert said in result.stderr and "hint:" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert not list(tmp_path.glob(".*partial")) and not list(tmp_path.parent.glob(".*partial"))


def test_plans_of_the_embedded_sandbox_are_repeatable(tmp_path: Path) -> None:
    """Every command serves the sandbox on a new port: the plan names its database, not the port."""
    path = tmp_path / "playbook.yaml"
    path.write_text(
        f"version: 1\nname: t\nenvironment: sandbox\noperations:\n"
        f"  - op: delete_studies\n    linked_model_runs: remove\n    studies: [{STUDY_51}]\n"
    )
    first, second = (ops.plan(path, TargetArgs(cwd=tmp_path)) for _ in range(2))
    assert first.environment.registry == f"sandbox:{tmp_path / '.provena-ops' / 'sandbox.db'}"
    assert CREATED_AT.sub("", render_json(first)) == CREATED_AT.sub("", render_json(second))


def test_progress_is_shown_on_a_terminal_and_only_there(
    api: Api, remote_environments: Path, tmp_path: Path
) -> None:
    import pty

    path = tmp_path / "playbook.yaml"
    path.write_text(playbook(f"op: delete_studies\nlinked_model_runs: remove\nstudies: [{STUDY_51}]"))
    env = {**os.environ, "PROVENA_OPS_ACCESS_TOKEN": api.token("admin", lifetime=600)}
    command = [sys.executable, "-m", "provena_ops", "plan", str(path)]
    command += ["--environments", str(remote_environments), "-e", "rehearsal"]
    piped = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert piped.returncode == 2 and "reading:" not in piped.stderr
    controller, terminal = pty.openpty()
    try:
        on_terminal = subprocess.run(
            command, env=env, stdout=subprocess.PIPE, stderr=terminal, text=True, timeout=60
        )
        os.close(terminal)
        shown = read_terminal(controller)
    finally:
        os.close(controller)
    assert on_terminal.returncode == 2
    assert b"reading: " in shown and b"reads done" in shown
    assert on_terminal.stdout == piped.stdout  # the plan itself is the same either way
