"""Guards tried the way they get walked around, on a pseudo-terminal as an admin meets them: a signal at
the approval prompt, Ctrl-C while applying and while planning, a saved plan given as a playbook,
production applied from a laptop through `gitops apply-reviewed`, and a bug."""

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

from provena_ops.apply.journal import RunFinished, read_events
from provena_ops.errors import ProvenaOpsError
from provena_ops.sandbox import RunningSandbox
from tests.apply.conftest import history_length
from tests.apply.test_apply_cli import DELETE_51, command, environ, run_cli
from tests.conftest import Api
from tests.local_servers import read_terminal
from tests.plan.test_plan_rules import STUDY_51, STUDY_ROUTE
from tests.sandbox.seeded import set_faults

PLAIN = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
HIDE_CURSOR, SHOW_CURSOR = b"\x1b[?25l", b"\x1b[?25h"


class Terminal:
    """A command on a pseudo-terminal (stdin, stdout and stderr), as an admin runs it."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        import pty

        self.controller, terminal = pty.openpty()
        self.process = subprocess.Popen(
            args, cwd=cwd, env=env, stdin=terminal, stdout=terminal, stderr=terminal
        )
        os.close(terminal)
        self.seen = b""

    def wait_for(self, wanted: bytes, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while wanted not in self.seen and time.monotonic() < deadline:
            try:
                chunk = os.read(self.controller, 65536)
            except OSError:
                break
            if not chunk:
                break
            self.seen += chunk
        assert wanted in self.seen, self.text()[-3000:]

    def finish(self, timeout: float = 30) -> int:
        """The exit status, having read the terminal to its end (the command must not wait on it)."""
        code = self.process.wait(timeout=timeout)
        self.seen += read_terminal(self.controller)
        os.close(self.controller)
        return code

    def text(self) -> str:
        return PLAIN.sub("", self.seen.decode(errors="replace")).replace("\r\n", "\n")

    def cursor_shown_at_the_end(self) -> bool:
        return self.seen.rfind(HIDE_CURSOR) <= self.seen.rfind(SHOW_CURSOR)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_at_the_approval_prompt_cancels_at_once_and_changes_nothing(
    api: Api, environments_file: Path, playbook_file: Path, tmp_path: Path, signum: int
) -> None:
    terminal = Terminal(command(environments_file, playbook_file), tmp_path, environ(api, tmp_path / "locks"))
    terminal.wait_for(b"Enter a value:")
    asked_at = time.monotonic()
    terminal.process.send_signal(signum)
    code = terminal.finish()
    assert time.monotonic() - asked_at < 10, "the prompt did not give way to the signal"
    text = terminal.text()
    assert code == 130, text[-2000:]
    assert "cancelled at the approval prompt; nothing was changed" in text and "Traceback" not in text
    assert history_length(api, STUDY_ROUTE, STUDY_51) > 0
    [journal] = (tmp_path / ".provena-ops" / "runs").glob("*.jsonl")
    last = read_events(journal)[-1]
    assert isinstance(last, RunFinished) and last.cancelled and last.recap.changed == 0
    listed = subprocess.run(
        [sys.executable, "-m", "provena_ops", "log", "list"], cwd=tmp_path, capture_output=True, text=True
    )
    assert "cancelled, no action started: cancelled at the approval prompt" in listed.stdout


def test_ctrl_c_while_applying_on_a_terminal_stops_the_bar_and_says_how_to_resume(
    api: Api, environments_file: Path, playbook_file: Path, tmp_path: Path
) -> None:
    set_faults(api, job_delay_ms=300)
    args = command(environments_file, playbook_file, "--auto-approve")
    terminal = Terminal(args, tmp_path, environ(api, tmp_path / "locks"))
    terminal.wait_for(b"applying")  # the progress bar, drawn on the terminal only
    terminal.process.send_signal(signal.SIGINT)
    code = terminal.finish()
    text = terminal.text()
    assert code == 130, text[-3000:]
    assert "apply interrupted: " in text and "not started); journal .provena-ops/runs/" in text
    assert f"run the same command again to finish: provena-ops apply {playbook_file}" in text
    assert "Traceback" not in text
    assert terminal.cursor_shown_at_the_end(), "the progress bar left the cursor hidden"
    set_faults(api, job_delay_ms=0)
    again = run_cli(api, tmp_path, args)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]


def test_ctrl_c_while_planning_on_a_terminal_says_plan_changed_nothing(
    api: Api, environments_file: Path, playbook_file: Path, tmp_path: Path
) -> None:
    set_faults(api, latency_ms=300)
    args = [
        sys.executable, "-m", "provena_ops", "plan", str(playbook_file), "-e", "rehearsal",
        "--environments", str(environments_file), "--out", "plan.json",
    ]  # fmt: skip
    terminal = Terminal(args, tmp_path, environ(api))
    terminal.wait_for(b"reading:")  # the progress line, on the terminal only
    terminal.process.send_signal(signal.SIGINT)
    code = terminal.finish()
    set_faults(api, latency_ms=0)
    text = terminal.text()
    assert code == 130, text[-2000:]
    said = "plan interrupted while reading; plan only reads, so nothing was changed and no plan was saved"
    assert said in text and "Traceback" not in text
    assert not (tmp_path / "plan.json").exists()


def test_apply_given_a_saved_plan_as_its_playbook_says_to_use_plan(
    api: Api, environments_file: Path, tmp_path: Path
) -> None:
    saved = tmp_path / "plan.json"
    saved.write_text(json.dumps({"plan_format": 1, "playbook": {}}))
    terminal = Terminal(command(environments_file, saved), tmp_path, environ(api, tmp_path / "locks"))
    code = terminal.finish()
    text = terminal.text()
    assert code == 1
    assert f"error: {saved} is a saved plan, not a playbook" in text
    assert f"hint: apply a saved plan with: provena-ops apply --plan {saved}" in text


def test_apply_reviewed_on_a_laptop_refuses_production_unless_confirmed_by_name(
    api: Api, server: RunningSandbox, tmp_path: Path
) -> None:
    environments = tmp_path / "environments.json"
    env = {"name": "records-prod", "stage": "PROD", "domain": "sandbox.invalid", "realm_name": "provena"}
    environments.write_text(json.dumps({"envs": [{**env, **server.endpoints}]}))
    playbook = tmp_path / "retire.yaml"
    playbook.write_text(DELETE_51.replace("environment: rehearsal", "environment: records-prod"))
    plans = tmp_path / "plans"
    plans.mkdir()
    laptop = {
        **{
            name: value
            for name, value in environ(api, tmp_path / "locks").items()
            if not name.startswith("GITHUB_")
        },
        "PROVENA_OPS_ENVIRONMENTS": str(environments),
    }
    cli = [sys.executable, "-m", "provena_ops"]
    planned = subprocess.run(
        [*cli, "plan", str(playbook), "--out", str(plans / "retire.json")], cwd=tmp_path, env=laptop,
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert planned.returncode == 2, planned.stdout + planned.stderr
    terminal = Terminal([*cli, "gitops", "apply-reviewed", str(plans)], tmp_path, laptop)
    code = terminal.finish()
    text = terminal.text()
    assert code == 1, text
    assert (
        "'records-prod' is a production environment, and this is not the generated workflow applying a merge"
        in text
    )
    assert "--confirm-environment records-prod" in text
    assert history_length(api, STUDY_ROUTE, STUDY_51) > 0
    confirmed = Terminal(
        [*cli, "gitops", "apply-reviewed", str(plans), "--confirm-environment", "records-prod"],
        tmp_path,
        laptop,
    )
    code = confirmed.finish(timeout=120)
    assert code == 0, confirmed.text()[-3000:]
    assert history_length(api, STUDY_ROUTE, STUDY_51) == -1


BUG = """
import sys
from provena_ops import api
from provena_ops.cli import app as cli

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


def plan_command(playbook_file: Path, environments_file: Path) -> list[str]:
    return [
        sys.executable, "-m", "provena_ops", "plan", str(playbook_file), "-e", "rehearsal",
        "--environments", str(environments_file),
    ]  # fmt: skip


def test_plan_out_never_replaces_the_playbook_or_a_special_file_and_writes_through_a_link(
    api: Api, environments_file: Path, playbook_file: Path, tmp_path: Path
) -> None:
    base = [*plan_command(playbook_file, environments_file), "--out"]
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    original = playbook_file.read_text()
    for target, said in (
        (playbook_file, "is the playbook itself; the plan would replace it"),
        (fifo, "is not a regular file (a device, pipe or socket)"),
    ):
        refused = run_cli(api, tmp_path, [*base, str(target)])
        assert refused.returncode == 1 and said in refused.stderr, refused.stderr
    assert playbook_file.read_text() == original and fifo.is_fifo()
    settings = tmp_path / "settings.json"  # a file that is not a plan is never overwritten
    settings.write_text('{"keep": true}')
    refused = run_cli(api, tmp_path, [*base, str(settings)])
    assert refused.returncode == 1 and "exists and is not a plan provena-ops wrote" in refused.stderr
    assert settings.read_text() == '{"keep": true}'
    real = tmp_path / "plans" / "real.json"
    real.parent.mkdir()
    real.write_text("")
    link = tmp_path / "plan.json"
    link.symlink_to(real)
    written = run_cli(api, tmp_path, [*base, str(link)])
    assert written.returncode == 2, written.stderr
    assert link.is_symlink() and json.loads(real.read_text())["plan_format"] == 1


def test_plan_out_writes_nothing_through_a_file_planted_beside_it_and_says_when_a_path_is_unusable(
    api: Api, environments_file: Path, playbook_file: Path, tmp_path: Path
) -> None:
    base = [*plan_command(playbook_file, environments_file), "--out"]
    victims = {}
    for name in ("x.json.partial", "x.json.probe", "x.json.tmp"):  # names a writer might predict
        victim = tmp_path / f"victim-{name}"
        victim.write_text("precious")
        (tmp_path / f".{name}").symlink_to(victim)
        victims[victim] = name
    written = run_cli(api, tmp_path, [*base, str(tmp_path / "x.json")])
    assert written.returncode == 2, written.stderr
    assert all(victim.read_text() == "precious" for victim in victims)
    saved = tmp_path / "x.json"
    assert not saved.is_symlink() and json.loads(saved.read_text())["plan_format"] == 1
    plain = tmp_path / "plain.json"
    plain.write_text("")
    assert saved.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777  # as any file the user writes
    for unusable in ("a" * 300 + ".json", "/".join(["d" * 200] * 25) + "/p.json"):
        refused = run_cli(api, tmp_path, [*base, unusable])
        assert refused.returncode == 1, refused.stderr
        assert "cannot write the plan to" in refused.stderr and "Traceback" not in refused.stderr


def test_entries_of_the_runs_directory_that_are_not_journals_are_passed_over(
    api: Api, environments_file: Path, playbook_file: Path, tmp_path: Path
) -> None:
    """A link to /dev/zero, a pipe or a directory named like a journal: once a memory blow-up, a hang
    that SIGTERM could not end, and a crash."""
    runs = tmp_path / ".provena-ops" / "runs"
    runs.mkdir(parents=True)
    (runs / "20260101T000000Z-aaaaaa.jsonl").symlink_to("/dev/zero")
    os.mkfifo(runs / "20260101T000001Z-bbbbbb.jsonl")
    (runs / "20260101T000002Z-cccccc.jsonl").mkdir()
    planned = run_cli(api, tmp_path, plan_command(playbook_file, environments_file))
    assert planned.returncode == 2, planned.stderr
    listed = run_cli(api, tmp_path, [sys.executable, "-m", "provena_ops", "log", "list"])
    assert listed.returncode == 0 and "No runs in" in listed.stdout, listed.stderr
    with pytest.raises(ProvenaOpsError, match="not a journal \\(not a regular file\\)"):
        read_events(runs / "20260101T000002Z-cccccc.jsonl")
    with pytest.raises(ProvenaOpsError, match="not a journal"):
        read_events(runs / "20260101T000000Z-aaaaaa.jsonl")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_in_the_first_instants_says_so_and_exits_130(tmp_path: Path, signum: int) -> None:
    """Before the command has even imported what it needs: no traceback, no silent exit, no 143."""
    command = [str(Path(sys.executable).parent / "provena-ops"), "validate", "nothing.yaml"]
    for delay in (0.08, 0.15, 0.3):  # (before ~30 ms, the interpreter itself is starting: no handler can run)
        process = subprocess.Popen(
            command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        time.sleep(delay)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=30)
        if process.returncode == 1:
            continue  # it finished before the signal arrived
        assert process.returncode == 130, (delay, process.returncode, stderr)
        assert "interrupted; nothing" in stderr and "Traceback" not in stderr, stderr
