"""`provena-ops validate` as a user runs it: exit codes, text and JSON output, several files at once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "provena_ops"]
GOOD = """\
version: 1
name: ok
environment: sandbox
operations:
  - op: relodge_model_runs
    model_runs: [10378.1/1]
"""
BAD = """\
version: 1
name: bad
environment: sandbx
operations:
  - op: relodge_model_run
    model_runs: [x]
"""


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_valid_playbook_exits_0_with_a_summary(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(GOOD)
    result = run("validate", "good.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "good.yaml: valid (1 operation, environment sandbox)\n"


def test_every_error_of_every_file_is_reported_and_exit_is_1(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "bad.yaml").write_text(BAD)
    result = run("validate", "bad.yaml", "good.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "bad.yaml:3:14: error: environment: 'sandbx' is not defined in the built-in environments "
        "(no environments file was found)",
        "  expected: the name of an environment in the environments file",
        "  hint: did you mean 'sandbox'? known environments: sandbox",
        "bad.yaml:5:9: error: operations[0].op: unknown operation 'relodge_model_run'",
        "  expected: op: 'delete_model_runs', 'delete_studies', 'update_model_runs', 'link_studies', "
        "'relodge_model_runs' or 'restore'",
        "  hint: did you mean 'relodge_model_runs'?",
        "bad.yaml: 2 errors",
        "good.yaml: valid (1 operation, environment sandbox)",
    ]
    assert result.stderr == ""


def test_json_format_is_machine_readable(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(BAD)
    result = run("validate", "--format", "json", "bad.yaml", cwd=tmp_path)
    assert result.returncode == 1
    [report] = json.loads(result.stdout)
    assert report["file"] == "bad.yaml" and report["valid"] is False
    first = report["diagnostics"][0]
    assert {key: first[key] for key in ("line", "column", "path", "severity")} == {
        "line": 3,
        "column": 14,
        "path": "environment",
        "severity": "error",
    }


def test_environment_and_param_flags(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(GOOD)
    environments = REPO / "tests" / "playbook" / "corpus" / "environments.json"
    result = run("validate", "good.yaml", "-e", "feature", "--environments", str(environments), cwd=tmp_path)
    assert result.returncode == 1
    assert "environment 'feature' needs a value for feature_number" in result.stdout
    assert "--param feature_number:VALUE" in result.stdout
    result = run(
        "validate", "good.yaml", "-e", "feature", "--environments", str(environments),
        "--param", "feature_number:1234", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout
    assert "environment feature" in result.stdout


def test_bad_param_and_bad_environments_file_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(GOOD)
    result = run("validate", "good.yaml", "--param", "oops", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("error: --param 'oops' is not of the form id:value")
    (tmp_path / "environments.json").write_text("{")
    result = run("validate", "good.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert "environments.json:1:2: error: invalid JSON" in result.stderr
    assert "Traceback" not in result.stderr


def test_schema_command_prints_the_checked_in_schema(tmp_path: Path) -> None:
    result = run("schema", "playbook", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout == (REPO / "schemas" / "playbook.schema.json").read_text()
    unknown = run("schema", "plans", cwd=tmp_path)
    assert unknown.returncode == 1 and "there is no schema named 'plans'" in unknown.stderr
