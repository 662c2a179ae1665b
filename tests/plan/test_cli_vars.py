"""--var NAME=VALUE and --var-file FILE: playbook vars set from the command line, checked as the file's
own are, kept in a saved plan so that `apply --plan` applies what was planned."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from provena_ops import api as provena_api
from provena_ops.environments.target import TargetArgs
from tests.apply.test_apply_cli import environ
from tests.conftest import Api
from tests.plan.test_plan_rules import run_id
from tests.sandbox.test_cli import run_in_process

PLAYBOOK = f"""version: 1
name: relodge
environment: rehearsal
vars:
  runs: [{run_id(0)}]
  ticket: none
operations:
  - op: relodge_model_runs
    model_runs: "{{{{ runs }}}}"
    description: "ticket {{{{ ticket }}}}"
"""


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "relodge.yaml").write_text(PLAYBOOK.replace("rehearsal", "sandbox"))
    (tmp_path / "vars.yaml").write_text(f"runs: [{run_id(1)}, {run_id(2)}]\nticket: OPS-1\n")
    return tmp_path


def validate(tmp: Path, *args: str) -> tuple[int, str]:
    outcome = run_in_process("validate", str(tmp / "relodge.yaml"), "--format", "json", *args)
    return outcome.code, outcome.stdout + outcome.stderr


def test_var_files_then_vars_set_declared_variables(files: Path) -> None:
    code, said = validate(files, "--var-file", str(files / "vars.yaml"), "--var", "ticket=OPS-2")
    assert code == 0, said


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--var", "tickt=OPS-2"], "--var tickt: the playbook declares no variable 'tickt' under vars: "
         "(declared: runs, ticket)"),
        (["--var", "ticket"], "error: --var: 'ticket' is not NAME=VALUE"),
        (["--var", "9x=1"], "error: --var: '9x=1' is not NAME=VALUE"),
        (["--var", "env=1"], "error: --var: 'env' is a reserved name in templates"),
        (["--var", "runs=10378.1/1690054"], "expected a list, found the text"),
        (["--var-file", "missing.yaml"], "error: --var-file: missing.yaml is not a file"),
    ],
)  # fmt: skip
def test_a_var_that_cannot_be_used_is_refused_with_what_to_write(
    files: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], said: str
) -> None:
    monkeypatch.chdir(files)
    code, output = validate(files, *args)
    assert code == 1 and said in output and "Traceback" not in output


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ("runs: [a\n", "YAML syntax error"),
        ("- a\n- b\n", "root"),
        ("runs: 1\nruns: 2\n", "duplicate"),
        ("'a b': 1\n", "'a b' is not a variable name"),
    ],
)
def test_a_var_file_that_is_not_a_mapping_of_names_is_refused(files: Path, content: str, said: str) -> None:
    (files / "bad.yaml").write_text(content)
    code, output = validate(files, "--var-file", str(files / "bad.yaml"))
    assert code == 1 and "error: --var-file:" in output and said in output, output


def test_a_plan_uses_the_vars_and_a_saved_plan_keeps_them(
    api: Api, remote_environments: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVENA_OPS_ACCESS_TOKEN", api.token("admin", lifetime=600))
    path = tmp_path / "relodge.yaml"
    path.write_text(PLAYBOOK)
    variables = {"runs": [run_id(1), run_id(2)], "ticket": "OPS-7"}
    where = TargetArgs("rehearsal", environments_file=remote_environments, variables=variables)
    plan = provena_api.plan(path, where)
    assert sorted(action.record_id for action in plan.actions) == [run_id(1), run_id(2)]
    assert plan.variables == variables

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "provena_ops", *args]
        env = environ(api, tmp_path / "locks")
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)

    where_args = ["-e", "rehearsal", "--environments", str(remote_environments)]
    saved = cli("plan", "relodge.yaml", *where_args, "--var", "ticket=OPS-8", "--out", "plan.json")
    assert saved.returncode in (0, 2), saved.stdout + saved.stderr
    assert json.loads((tmp_path / "plan.json").read_text())["variables"] == {"ticket": "OPS-8"}
    refused = cli("apply", "--plan", "plan.json", "--var", "ticket=OPS-9", "--auto-approve")
    assert refused.returncode == 1 and "a saved plan keeps the values it was made with" in refused.stderr
    applied = cli("apply", "--plan", "plan.json", "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
