"""Guards tried the way they get walked around: a signal at the approval prompt (on a real terminal),
Ctrl-C while planning, a saved plan given as a playbook, and a bug. (An interrupted apply: test_apply_cli.)"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provena_ops.journal import RunFinished, read_events
from tests.apply.conftest import history_length
from tests.apply.test_apply_cli import command, environ, run_cli
from tests.conftest import Api
from tests.local_servers import read_terminal
from tests.plan.test_plan_rules import STUDY_51, STUDY_ROUTE
from tests.sandbox.seeded import set_faults

PLAIN = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def read_until(controller: int, wanted: bytes, seen: bytes = b"", timeout: float = 60) -> bytes:
    deadline = time.monotonic() + timeout
    while wanted not in seen and time.monotonic() < deadline:
        try:
            chunk = os.read(controller, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    return seen


def rest_of(controller: int, seen: bytes) -> str:
    return PLAIN.sub("", (seen + read_terminal(controller)).decode(errors="replace")).replace("\r\n", "\n")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_at_the_approval_prompt_cancels_at_once_and_changes_nothing(
    api: Api, environments_file: Path, playbook_file: Path, tmp_path: Path, signum: int
) -> None:
    import pty

    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        command(environments_file, playbook_file), cwd=tmp_path, env=environ(api, tmp_path / "locks"),
        stdin=terminal, stdout=terminal, stderr=terminal,
    )  # fmt: skip
    os.close(terminal)
    seen = read_until(controller, b"Enter a value:")
    assert b"Enter a value:" in seen, seen[-2000:]
    asked_at = time.monotonic()
    process.send_signal(signum)
    code = process.wait(timeout=30)
    waited = time.monotonic() - asked_at
    text = rest_of(controller, seen)
    os.close(controller)
    assert code == 130, text[-2000:]
    assert waited < 10, "the prompt did not give way to the signal"
    assert "cancelled at the approval prompt; nothing was changed" in text and "Traceback" not in text
    assert history_length(api, STUDY_ROUTE, STUDY_51) > 0
    [journal] = (tmp_path / ".provena-ops" / "runs").glob("*.jsonl")
    last = read_events(journal)[-1]
    assert isinstance(last, RunFinished) and last.cancelled and last.recap.changed == 0
    listed = subprocess.run(
        [sys.executable, "-m", "provena_ops.cli", "log", "list"], cwd=tmp_path, capture_output=True, text=True
    )
    assert "cancelled: cancelled at the approval prompt" in listed.stdout


def test_ctrl_c_while_planning_says_plan_changed_nothing(
    api: Api, environments_file: Path, playbook_file: Path, tmp_path: Path
) -> None:
    set_faults(api, latency_ms=400)
    args = [
        sys.executable, "-m", "provena_ops.cli", "plan", str(playbook_file), "-e", "rehearsal",
        "--environments", str(environments_file), "--out", "plan.json",
    ]  # fmt: skip
    process = subprocess.Popen(
        args, cwd=tmp_path, env=environ(api), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    time.sleep(2.5)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    set_faults(api, latency_ms=0)
    assert process.returncode == 130, stderr
    assert (
        "plan interrupted while reading; plan only reads, so nothing was changed and no plan was saved"
        in (stderr)
    )
    assert not (tmp_path / "plan.json").exists()


def test_apply_given_a_saved_plan_as_its_playbook_says_to_use_plan(
    api: Api, environments_file: Path, tmp_path: Path
) -> None:
    saved = tmp_path / "plan.json"
    saved.write_text(json.dumps({"plan_format": 1, "playbook": {}}))
    result = run_cli(api, tmp_path, command(environments_file, saved, "--auto-approve"))
    assert result.returncode == 1
    assert f"error: {saved} is a saved plan, not a playbook" in result.stderr
    assert f"hint: apply a saved plan with: provena-ops apply --plan {saved}" in result.stderr


BUG = """
import sys
from provena_ops import api, cli

def broken(*args, **kwargs):
    raise RuntimeError("boom: the token was eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl")

api.validate = broken
sys.argv = ["provena-ops", "validate", "x.yaml"]
cli.main()
"""


@pytest.mark.parametrize("debug", [False, True])
def test_a_bug_exits_3_with_one_line_and_a_redacted_crash_report(tmp_path: Path, debug: bool) -> None:
    env = {**os.environ, "PROVENA_OPS_CRASH_DIR": str(tmp_path / "crashes")}
    if debug:
        env["PROVENA_OPS_DEBUG"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", BUG], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 3, done.stderr
    [report] = (tmp_path / "crashes").glob("provena-ops-crash-*.txt")
    last = done.stderr.strip().splitlines()[-1]
    assert (
        last
        == f"error: provena-ops hit a bug (RuntimeError); a crash report is in {report}: please report it"
    )
    assert ("Traceback" in done.stderr) is debug  # a traceback on the terminal only when asked for
    text = report.read_text()
    assert "Traceback (most recent call last)" in text and "RuntimeError: boom: the token was <token>" in text
    assert "eyJhbGciOiJSUzI1NiJ9" not in text + done.stderr
    assert "command: provena-ops validate x.yaml" in text
    assert oct(report.stat().st_mode & 0o777) == "0o600"
