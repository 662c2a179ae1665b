"""Everything scriptable: apply, undo, `log list`, `log show` and `environments` with --format json, each
document checked against its checked-in schema, and the filters of `log list` as an admin uses them."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.apply.test_apply_cli import command, log, run_cli
from tests.conftest import Api
from tests.plan.test_plan_rules import RUNS_OF_51, STUDY_51
from tests.sandbox.seeded import set_faults

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def valid(document: str, schema: str) -> dict[str, Any]:
    """The document parsed, after checking it against schemas/SCHEMA.schema.json."""
    parsed: dict[str, Any] = json.loads(document)
    checker = jsonschema.Draft202012Validator(json.loads((SCHEMAS / f"{schema}.schema.json").read_text()))
    errors = [f"{list(error.absolute_path)}: {error.message}" for error in checker.iter_errors(parsed)]
    assert not errors, errors
    return parsed


def test_every_json_output_is_one_document_its_schema_accepts(
    api: Api, environments_file: Path, playbook_file: Path, tmp_path: Path
) -> None:
    set_faults(api, fail_jobs_for=[RUNS_OF_51[0]])
    failed = run_cli(
        api, tmp_path, command(environments_file, playbook_file, "--auto-approve", "--format", "json")
    )
    assert failed.returncode == 1, failed.stderr
    result = valid(failed.stdout, "apply-result")
    assert result["succeeded"] is False and result["recap"]["failed"] == 1 and result["recap"]["skipped"] == 1
    by_record = {action["record_id"]: action for action in result["actions"]}
    assert by_record[RUNS_OF_51[0]]["result"] == "failed"
    assert by_record[STUDY_51]["result"] == "skipped"
    assert "Plan: 0 to update, 10 to relink, 4 to delete" in failed.stderr  # people read the plan on stderr

    set_faults(api, fail_jobs_for=[])
    again = run_cli(
        api, tmp_path, command(environments_file, playbook_file, "--auto-approve", "--format", "json")
    )
    assert again.returncode == 0, again.stderr
    finished = valid(again.stdout, "apply-result")
    assert finished["succeeded"] is True and finished["recap"]["failed"] == 0

    listed = log(tmp_path, "list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    runs = valid(listed.stdout, "log-list")["runs"]
    assert [run["run_id"] for run in runs] == [result["run_id"], finished["run_id"]]
    assert [run["result"] for run in runs] == ["failed", "succeeded"]

    shown = log(tmp_path, "show", "last", "--format", "json", "--events")
    assert shown.returncode == 0, shown.stderr
    document = valid(shown.stdout, "log-run")
    assert document["run"]["run_id"] == finished["run_id"] and document["events"]
    first = log(tmp_path, "show", result["run_id"], "--format", "json")
    actions = {action["record_id"]: action for action in valid(first.stdout, "log-run")["actions"]}
    relinked = actions[RUNS_OF_51[1]]
    assert relinked["result"] == "changed" and relinked["before_kept"] is True
    assert [(change["field"], change["after"]) for change in relinked["changes"]] == [
        ("study_id", "10378.1/1690048")
    ]
    assert actions[STUDY_51]["result"] == "skipped"

    undone = run_cli(
        api,
        tmp_path,
        [sys.executable, "-m", "provena_ops", "undo", finished["run_id"], "--environments",
         str(environments_file), "--auto-approve", "--format", "json"],
    )  # fmt: skip
    assert undone.returncode == 0, undone.stderr
    assert valid(undone.stdout, "apply-result")["succeeded"] is True

    environments = run_cli(
        api,
        tmp_path,
        [sys.executable, "-m", "provena_ops", "environments", "--environments", str(environments_file),
         "--format", "json"],
    )  # fmt: skip
    assert environments.returncode == 0, environments.stderr
    names = [entry["name"] for entry in valid(environments.stdout, "environments")["environments"]]
    assert "rehearsal" in names


def test_log_list_filters_by_environment_time_and_result(
    api: Api, environments_file: Path, playbook_file: Path, tmp_path: Path
) -> None:
    set_faults(api, fail_jobs_for=[RUNS_OF_51[0]])
    assert run_cli(api, tmp_path, command(environments_file, playbook_file, "--auto-approve")).returncode == 1
    set_faults(api, fail_jobs_for=[])
    assert run_cli(api, tmp_path, command(environments_file, playbook_file, "--auto-approve")).returncode == 0

    def listed(*filters: str) -> list[str]:
        done = log(tmp_path, "list", "--format", "json", *filters)
        assert done.returncode == 0, done.stderr
        return [run["result"] for run in valid(done.stdout, "log-list")["runs"]]

    assert listed() == ["failed", "succeeded"]
    assert listed("--result", "failed") == ["failed"]
    assert listed("--result", "failed", "--result", "succeeded") == ["failed", "succeeded"]
    assert listed("--since", "1h") == ["failed", "succeeded"]
    assert listed("--since", "2020-01-01") == ["failed", "succeeded"]
    assert listed("-e", "rehearsal", "--result", "succeeded") == ["succeeded"]

    elsewhere = log(tmp_path, "list", "-e", "rehersal")
    assert elsewhere.returncode == 0
    assert (
        "note: no run here was on 'rehersal' (runs here were on: rehearsal); did you mean 'rehearsal'?"
        in (elsewhere.stderr)
    )
    assert "No run in .provena-ops/runs matches (of 2)." in elsewhere.stdout


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["--since", "yesterday"],
            "error: --since: 'yesterday' is not a date, a time or a time back from now",
        ),
        (["--since", "2099-01-01"], "error: --since: '2099-01-01' is in the future"),
        (["--since", "999999999w"], "error: --since: '999999999w' reaches back before any date"),
        (
            ["--result", "succeded"],
            "error: --result: 'succeded' is not how a run ends (did you mean 'succeeded'?)",
        ),
    ],
)
def test_a_filter_that_cannot_be_read_says_how_to_write_it(
    tmp_path: Path, args: list[str], said: str
) -> None:
    done = log(tmp_path, "list", *args)
    assert done.returncode == 1
    assert said in done.stderr and "Traceback" not in done.stderr
    assert re.search(r"hint: (give|choose)", done.stderr)


def test_log_show_last_without_runs_says_where_it_looked(tmp_path: Path) -> None:
    done = log(tmp_path, "show", "last")
    assert done.returncode == 1
    assert "error: no runs in .provena-ops/runs yet" in done.stderr and "Traceback" not in done.stderr
