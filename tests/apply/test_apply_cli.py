"""`provena-ops apply` and `log` as an admin runs them: real processes against a real server, approval,
exit codes, and kill -9 at any moment followed by the same command again."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provena_ops.apply.journal import read_events
from tests.apply.conftest import history_length
from tests.conftest import Api
from tests.local_servers import read_terminal
from tests.plan.conftest import playbook
from tests.plan.test_plan_rules import RUN_ROUTE, RUNS_OF_51, STUDY_48, STUDY_51, STUDY_ROUTE, run_id
from tests.sandbox.seeded import set_faults

DELETE_51 = playbook(
    f"op: delete_studies\nlinked_model_runs: replace\nreplace_with: {STUDY_48}\nstudies: [{STUDY_51}]",
    f"op: delete_model_runs\nmodel_runs: [{run_id(13)}, {run_id(14)}, {run_id(17)}]",
)


def command(environments: Path, playbook_path: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "provena_ops",
        "apply",
        str(playbook_path),
        "-e",
        "rehearsal",
        "--environments",
        str(environments),
        *extra,
    ]


def environ(api: Api, locks: Path | None = None) -> dict[str, str]:
    env = {**os.environ, "PROVENA_OPS_ACCESS_TOKEN": api.token("admin", lifetime=600)}
    if locks is not None:
        env["PROVENA_OPS_LOCK_DIR"] = str(locks)
    return env


def run_cli(
    api: Api, cwd: Path, args: list[str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        cwd=cwd,
        env=environ(api, cwd / "locks"),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def log(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "provena_ops", "log", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_apply_asks_for_approval_and_without_a_terminal_refuses(
    api: Api, environments_file: Path, playbook_file: Path, tmp_path: Path
) -> None:
    result = run_cli(api, tmp_path, command(environments_file, playbook_file))
    assert result.returncode == 1
    assert "apply needs approval, and there is no terminal to ask on; nothing was changed" in result.stderr
    assert "--auto-approve" in result.stderr and "Traceback" not in result.stderr
    assert "Plan: 0 to update, 10 to relink, 4 to delete" in result.stdout  # the plan was shown first


def test_apply_auto_approved_then_again_with_nothing_to_do(
    api: Api, environments_file: Path, playbook_file: Path, tmp_path: Path
) -> None:
    first = run_cli(api, tmp_path, command(environments_file, playbook_file, "--auto-approve"))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Apply: 14 changed, 0 ok, 0 failed, 0 skipped." in first.stdout
    assert "journal: .provena-ops/runs/" in first.stdout
    second = run_cli(api, tmp_path, command(environments_file, playbook_file, "--auto-approve"))
    assert second.returncode == 0
    assert "No changes. Nothing to apply." in second.stdout
    listed = log(tmp_path, "list")
    assert listed.returncode == 0
    assert "14 changed, 0 ok, 0 failed, 0 skipped" in listed.stdout
    assert "rehearsal (DEV)" in listed.stdout and listed.stdout.count("admin") == 2
    run = first.stdout.split("provena-ops log show ")[1].split(")")[0]
    shown = log(tmp_path, "show", run[:18])
    assert shown.returncode == 0, shown.stderr
    assert f"run {run} by admin on rehearsal (DEV)" in shown.stdout
    assert re.search(rf"changed +delete {STUDY_51}  Coastal inundation baseline\n", shown.stdout)
    assert "(the record as it was is kept in the journal)" in shown.stdout
    assert (
        re.search(r"\n    job [0-9a-f-]{36} SUCCEEDED\n", shown.stdout)
        and "Apply: 14 changed" in shown.stdout
    )


def test_a_failed_action_makes_apply_exit_1_and_says_what_failed(
    api: Api, environments_file: Path, playbook_file: Path, tmp_path: Path
) -> None:
    set_faults(api, fail_jobs_for=[RUNS_OF_51[0]])
    result = run_cli(api, tmp_path, command(environments_file, playbook_file, "--auto-approve"))
    assert result.returncode == 1
    assert f"failed update {RUNS_OF_51[0]}: Provena's update job" in result.stdout
    assert f"skipped delete {STUDY_51}: update {RUNS_OF_51[0]} failed" in result.stdout
    assert "Apply: 12 changed, 0 ok, 1 failed, 1 skipped." in result.stdout


def test_log_show_of_an_unknown_run_says_which_runs_exist(tmp_path: Path) -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "provena_ops", "log", "show", "nope"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert shown.returncode == 1
    assert "error: no run 'nope' in .provena-ops/runs" in shown.stderr and "Traceback" not in shown.stderr


def test_log_show_of_a_journal_with_nothing_readable_is_an_error(tmp_path: Path) -> None:
    runs = tmp_path / ".provena-ops" / "runs"
    runs.mkdir(parents=True)
    (runs / "20261126T101500Z-3f9a1c.jsonl").write_text("garbage, not an event")
    shown = log(tmp_path, "show", "20261126T101500Z")
    assert shown.returncode == 1 and not shown.stdout
    assert "20261126T101500Z-3f9a1c.jsonl holds no journal events" in shown.stderr


@pytest.mark.parametrize(
    ("tampered", "said"),
    [
        ('"result": "changed", "result": "failed"', 'duplicate key "result"'),
        ('"result": 1', "result: Input should be 'changed', 'ok', 'failed', 'skipped' or 'unknown'"),
        ('"result": "changed", "extra": true', "action_finished.extra: Extra inputs are not permitted"),
    ],
)
def test_a_tampered_journal_line_is_refused_naming_its_line(tmp_path: Path, tampered: str, said: str) -> None:
    """Journals steer recovery: a line is read as strictly as a saved plan, wherever it is."""
    runs = tmp_path / ".provena-ops" / "runs"
    runs.mkdir(parents=True)
    line = '{"event": "action_finished", "at": "2026-11-26T10:15:01Z", "key": "delete x", %s, "detail": "d"}'
    good = line % '"result": "changed"'
    (runs / "20261126T101500Z-3f9a1c.jsonl").write_text(f"{good}\n{line % tampered}\n{good}\n")
    shown = log(tmp_path, "show", "20261126T101500Z")
    assert shown.returncode == 1 and "Traceback" not in shown.stderr
    assert "20261126T101500Z-3f9a1c.jsonl:2: not a journal event (" in shown.stderr, shown.stderr
    assert said in shown.stderr, shown.stderr


def test_the_journal_hint_names_a_runs_dir_given(
    api: Api, environments_file: Path, playbook_file: Path, tmp_path: Path
) -> None:
    args = command(environments_file, playbook_file, "--auto-approve", "--runs-dir", "audit runs")
    applied = run_cli(api, tmp_path, args)
    assert applied.returncode == 0, applied.stderr
    hint = applied.stdout.split("(provena-ops log show ")[1].split(")")[0]
    assert hint.endswith(" --runs-dir 'audit runs'")
    shown = log(tmp_path, "show", *shlex.split(hint))  # the hint, copied, works
    assert shown.returncode == 0 and "Apply: 14 changed" in shown.stdout


# -- kill -9 at any point, then the same command again -------------------------------------------------


def final_state(api: Api) -> dict[str, object]:
    """What an admin would check: the study, the relinked runs' study and edit count, the deleted runs."""
    runs = {}
    for run in RUNS_OF_51:
        response = api.http.get(f"{api.registry}{RUN_ROUTE}/fetch", params={"id": run}, headers=api.auth())
        item = response.json()["item"]
        runs[run] = item["record"].get("study_id")
    deleted = {run: history_length(api, RUN_ROUTE, run) for run in (run_id(13), run_id(14), run_id(17))}
    explored = api.http.get(
        f"{api.prov}/explore/downstream", params={"starting_id": STUDY_48, "depth": 1}, headers=api.auth()
    ).json()
    graph = sorted(node["id"] for node in explored["graph"]["nodes"])
    return {
        "study": history_length(api, STUDY_ROUTE, STUDY_51),
        "runs": runs,
        "deleted": deleted,
        "graph": graph,
    }


@pytest.mark.parametrize("after_events", [1, 2, 4, 8, 14, 22, 32, 44])
def test_after_kill_9_at_any_point_the_same_command_finishes_the_job_once(
    api: Api, environments_file: Path, playbook_file: Path, tmp_path: Path, after_events: int
) -> None:
    edits_before = {run: history_length(api, RUN_ROUTE, run) for run in RUNS_OF_51}
    set_faults(api, job_delay_ms=60)
    args = command(environments_file, playbook_file, "--auto-approve", "--parallelism", "3")
    process = subprocess.Popen(
        args,
        cwd=tmp_path,
        env=environ(api, tmp_path / "locks"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    runs = tmp_path / ".provena-ops" / "runs"
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        journal = next(iter(runs.glob("*.jsonl")), None) if runs.is_dir() else None
        if journal is not None and journal.read_text().count("\n") >= after_events:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    again = run_cli(api, tmp_path, args)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    state = final_state(api)
    assert state["study"] == -1  # deleted
    assert state["runs"] == dict.fromkeys(RUNS_OF_51, STUDY_48)
    assert state["deleted"] == {run_id(13): -1, run_id(14): -1, run_id(17): -1}
    for run in RUNS_OF_51:  # every relinked run edited exactly once: no write was duplicated
        assert history_length(api, RUN_ROUTE, run) == edits_before[run] + 2, (run, after_events)
    assert set(RUNS_OF_51) <= set(state["graph"])  # type: ignore[call-overload]
    journals = sorted(runs.glob("*.jsonl"))
    assert len(journals) == 2
    assert read_events(journals[0])  # the killed run's journal stays readable (a torn last line is skipped)


@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["ctrl-c", "sigterm", "sighup"]
)
def test_an_interrupt_says_what_was_left_and_the_same_command_finishes(
    api: Api, environments_file: Path, playbook_file: Path, tmp_path: Path, signum: int
) -> None:
    set_faults(api, job_delay_ms=300)
    args = command(environments_file, playbook_file, "--auto-approve")
    process = subprocess.Popen(
        args, cwd=tmp_path, env=environ(api, tmp_path / "locks"), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    runs = tmp_path / ".provena-ops" / "runs"
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        journal = next(iter(runs.glob("*.jsonl")), None) if runs.is_dir() else None
        if journal is not None and "request_sent" in journal.read_text():
            process.send_signal(signum)
            break
        time.sleep(0.005)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    recap = r"apply interrupted: \d+ changed, \d+ ok, 0 failed, 0 skipped(, \d+ unknown)? \(\d+ not started\)"
    assert re.search(recap + "; journal .provena-ops/runs/", stderr), stderr
    assert f"run the same command again to finish: provena-ops apply {playbook_file}" in stderr
    assert "Traceback" not in stderr
    set_faults(api, job_delay_ms=0)
    again = run_cli(api, tmp_path, args)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    assert final_state(api)["study"] == -1


def on_a_terminal(args: list[str], cwd: Path, env: dict[str, str], answer: str) -> tuple[int, str]:
    """Run with stdin, stdout and stderr on a pseudo-terminal, typing `answer` when asked."""
    import pty

    controller, terminal = pty.openpty()
    process = subprocess.Popen(args, cwd=cwd, env=env, stdin=terminal, stdout=terminal, stderr=terminal)
    os.close(terminal)
    seen = read_terminal(controller, (b"Enter a value:", answer.encode() + b"\n"))
    os.close(controller)
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", seen.decode(errors="replace"))
    return process.wait(timeout=30), plain.replace("\r\n", "\n")


@pytest.mark.parametrize(("answer", "applied"), [("no", False), ("yes", True)])
def test_on_a_terminal_apply_asks_and_only_yes_applies(
    api: Api, environments_file: Path, playbook_file: Path, tmp_path: Path, answer: str, applied: bool
) -> None:
    env = environ(api, tmp_path / "locks")
    code, seen = on_a_terminal(command(environments_file, playbook_file), tmp_path, env, answer)
    assert "Apply this plan to rehearsal (DEV)? Only 'yes' will be accepted to approve." in seen
    if applied:
        assert code == 0 and "Apply: 14 changed, 0 ok, 0 failed, 0 skipped." in seen
        assert "applying" in seen and "/14" in seen  # the progress bar, on the terminal only
        assert history_length(api, STUDY_ROUTE, STUDY_51) == -1
    else:
        assert code == 1 and "apply cancelled; nothing was changed" in seen
        assert history_length(api, STUDY_ROUTE, STUDY_51) > 0
