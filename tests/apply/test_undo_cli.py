"""`provena-ops undo` as an admin runs it: real processes against a real server; kill -9 at several
points of an undo, then the same command; the restore playbook through review; saved undo plans."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from provena_ops.apply.journal import RequestSent, RunStarted, journals, read_events
from provena_ops.playbook.model import RestoreImage, restore_digest
from provena_ops.sandbox import RunningSandbox
from tests.apply.conftest import history_length
from tests.apply.test_apply_cli import DELETE_51, environ, run_cli
from tests.apply.test_undo import differences, exported
from tests.conftest import Api
from tests.plan.test_plan_rules import RUN_ROUTE, RUNS_OF_51, STUDY_51
from tests.sandbox.seeded import set_faults
from tests.sandbox.test_cli import run_in_process


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "provena_ops", *args]


def applied_run(api: Api, environments: Path, tmp_path: Path) -> str:
    """Retire study 51 (ten relinks, a study deletion) and delete three runs: the run to undo."""
    (tmp_path / "retire.yaml").write_text(DELETE_51)
    done = run_cli(
        api, tmp_path, cli("apply", "retire.yaml", "-e", "rehearsal", "--environments", str(environments),
                           "--auto-approve"),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    [journal] = journals(tmp_path / ".provena-ops" / "runs")
    return journal.stem


def killed(api: Api, tmp_path: Path, args: list[str], ready: Callable[[str], bool], skip: str = "") -> None:
    """Run `args` and kill -9 it once its journal (the first not named `skip`) reads `ready`."""
    process = subprocess.Popen(
        args, cwd=tmp_path, env=environ(api, tmp_path / "locks"), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    runs = tmp_path / ".provena-ops" / "runs"
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        written = [path for path in journals(runs) if path.stem != skip]
        if written and ready(written[0].read_text()):
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"


@pytest.mark.parametrize("after_events", [1, 3, 6, 12, 24])
def test_after_kill_9_during_an_undo_the_same_command_converges_and_writes_nothing_twice(
    api: Api, server: RunningSandbox, environments_file: Path, tmp_path: Path, after_events: int
) -> None:
    before = exported(server, tmp_path / "before.json")
    edits_before = {run: history_length(api, RUN_ROUTE, run) for run in RUNS_OF_51}
    run = applied_run(api, environments_file, tmp_path)
    set_faults(api, job_delay_ms=60)
    args = cli("undo", run, "--environments", str(environments_file), "--auto-approve", "--parallelism", "3")
    killed(api, tmp_path, args, lambda text: text.count("\n") >= after_events, skip=run)
    runs = tmp_path / ".provena-ops" / "runs"
    again = run_cli(api, tmp_path, args)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    assert differences(before, exported(server, tmp_path / "after.json")) == []
    for relinked in RUNS_OF_51:  # one update job by the apply, one by the undo: none submitted twice
        assert history_length(api, RUN_ROUTE, relinked) == edits_before[relinked] + 4, relinked
    submitted = [
        event.request
        for path in journals(runs)
        if path.stem != run
        for event in read_events(path)
        if isinstance(event, RequestSent)
        and event.request.startswith(("POST /model_run/update", "POST /admin/import"))
    ]
    assert len(submitted) == len(set(submitted)), submitted  # each restore's write once, across both undos
    heads = [read_events(path)[0] for path in journals(runs)]
    assert all(isinstance(h, RunStarted) and h.undoes == run for h in heads[1:])


def test_undo_last_after_a_killed_undo_finishes_it_rather_than_undoing_it(
    api: Api, server: RunningSandbox, environments_file: Path, tmp_path: Path
) -> None:
    before = exported(server, tmp_path / "before.json")
    run = applied_run(api, environments_file, tmp_path)
    set_faults(api, job_delay_ms=60)
    args = cli("undo", "last", "--environments", str(environments_file), "--auto-approve")
    killed(api, tmp_path, args, lambda text: "request_sent" in text, skip=run)
    again = run_cli(api, tmp_path, args)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    assert f"an undo of {run}, did not finish: finishing it" in again.stderr
    assert differences(before, exported(server, tmp_path / "after.json")) == []


def test_the_restore_playbook_is_reviewed_and_applied_like_any_playbook(
    api: Api, server: RunningSandbox, environments_file: Path, tmp_path: Path
) -> None:
    before = exported(server, tmp_path / "before.json")
    run = applied_run(api, environments_file, tmp_path)
    env = ("--environments", str(environments_file))
    written = run_cli(api, tmp_path, cli("undo", run, "--write-playbook", "undo.yaml"))
    assert written.returncode == 0, written.stderr
    assert f"Wrote undo.yaml: the undo of run {run} (14 records)" in written.stdout
    text = (tmp_path / "undo.yaml").read_text()
    assert run_cli(api, tmp_path, cli("validate", "undo.yaml", *env)).returncode == 0
    (tmp_path / "tampered.yaml").write_text(text.replace("Reef", "Ree f", 1))
    tampered = run_cli(api, tmp_path, cli("validate", "tampered.yaml", *env))
    assert tampered.returncode == 1
    assert "the restore's images were edited after undo wrote them" in tampered.stdout, tampered.stdout
    planned = run_cli(api, tmp_path, cli("plan", "undo.yaml", *env, "--format", "markdown"))
    assert planned.returncode == 2, planned.stderr
    assert (
        "| to restore |" in planned.stdout
        and "| `operations[0]` restore | 10 | 0 | 4 | 0 |" in planned.stdout
        and "**Plan: 10 to update, 0 to delete, 4 to restore" in planned.stdout
    )
    applied = run_cli(api, tmp_path, cli("apply", "undo.yaml", *env, "--auto-approve"))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert differences(before, exported(server, tmp_path / "after.json")) == []
    last = list(journals(tmp_path / ".provena-ops" / "runs"))[-1]
    head = read_events(last)[0]
    assert isinstance(head, RunStarted) and head.undoes == run


def test_a_saved_undo_plan_is_carried_out_only_while_it_stands(
    api: Api, environments_file: Path, tmp_path: Path
) -> None:
    run = applied_run(api, environments_file, tmp_path)
    env = ("--environments", str(environments_file))
    planned = run_cli(
        api, tmp_path, cli("undo", run, *env, "--plan-only", "--out", "undo.json", "--format", "json")
    )
    assert planned.returncode == 2, planned.stderr
    saved = json.loads((tmp_path / "undo.json").read_text())
    assert saved == json.loads(planned.stdout) and saved["summary"]["restore"] == 4
    (tmp_path / "edit.yaml").write_text(
        "version: 1\nname: edit\nenvironment: rehearsal\noperations:\n  - op: update_model_runs\n"
        f"    model_runs: [{RUNS_OF_51[0]}]\n    reason: meanwhile\n"
        "    set:\n      description: edited meanwhile\n"
    )
    assert run_cli(api, tmp_path, cli("apply", "edit.yaml", *env, "--auto-approve")).returncode == 0
    refused = run_cli(api, tmp_path, cli("undo", run, *env, "--plan", "undo.json", "--auto-approve"))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"{RUNS_OF_51[0]} changed after the run; not overwritten" in refused.stdout
    assert "applying the saved plan now would run into 1 problem(s)" in refused.stderr
    forced = ("--force", RUNS_OF_51[0])
    planned = run_cli(api, tmp_path, cli("undo", run, *env, *forced, "--plan-only", "--out", "undo.json"))
    assert planned.returncode == 2, planned.stderr
    done = run_cli(api, tmp_path, cli("undo", run, *env, *forced, "--plan", "undo.json", "--auto-approve"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Apply: 14 changed" in done.stdout
    again = run_cli(api, tmp_path, cli("undo", run, *env, "--plan", "undo.json", "--auto-approve"))
    assert again.returncode == 0 and "No changes. Nothing to apply." in again.stdout, again.stderr
    other = run_cli(api, tmp_path, cli("undo", "20991231T000000Z-000000", *env, "--plan", "undo.json"))
    assert other.returncode == 1 and "no run '20991231T000000Z-000000'" in other.stderr


def test_nothing_to_undo_is_said_and_exits_0(api: Api, environments_file: Path, tmp_path: Path) -> None:
    (tmp_path / "noop.yaml").write_text(
        "version: 1\nname: noop\nenvironment: rehearsal\noperations:\n"
        "  - op: delete_model_runs\n    model_runs: [10378.1/1699999]\n"
    )
    env = ("--environments", str(environments_file))
    assert run_cli(api, tmp_path, cli("apply", "noop.yaml", *env, "--auto-approve")).returncode == 0
    nothing = run_cli(api, tmp_path, cli("undo", "last", *env))
    assert nothing.returncode == 0, nothing.stderr
    assert "wrote nothing that undo can put back; nothing to undo" in nothing.stdout
    missing = run_cli(api, tmp_path, cli("undo", "last", *env, "--runs-dir", "elsewhere"))
    assert missing.returncode == 1 and "no runs in elsewhere yet" in missing.stderr
    assert "Traceback" not in missing.stderr + nothing.stderr


def test_a_restore_playbook_rewritten_digest_and_all_is_caught_where_the_journal_is(
    api: Api, environments_file: Path, tmp_path: Path
) -> None:
    run = applied_run(api, environments_file, tmp_path)
    env = ("--environments", str(environments_file))
    assert run_cli(api, tmp_path, cli("undo", run, "--write-playbook", "undo.yaml")).returncode == 0
    data = yaml.safe_load((tmp_path / "undo.yaml").read_text())
    restore = data["operations"][0]
    restore["images"][0]["before"]["record"]["description"] = "slipped in"
    images = [RestoreImage.model_validate(image) for image in restore["images"]]
    restore["digest"] = restore_digest(restore["run"], restore["registry"], images, restore["not_started"])
    (tmp_path / "rewritten.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    assert run_cli(api, tmp_path, cli("validate", "rewritten.yaml", *env)).returncode == 0  # a valid digest
    planned = run_cli(api, tmp_path, cli("plan", "rewritten.yaml", *env))
    assert planned.returncode == 1, planned.stdout + planned.stderr
    assert f"the restore's images are not what run {run}'s journal holds" in planned.stdout
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "undo.yaml").write_text((tmp_path / "undo.yaml").read_text())
    away = run_cli(api, elsewhere, cli("plan", "undo.yaml", *env))  # no journal here: said, not refused
    assert away.returncode == 2, away.stdout + away.stderr
    assert f"run {run}'s journal is not in this runs directory" in away.stdout


def test_an_undo_too_large_for_a_playbook_is_refused_with_the_way_round_it(
    api: Api, environments_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = applied_run(api, environments_file, tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("provena_ops.cli.undo.MAX_BYTES", 10_000)
    outcome = run_in_process("undo", run, "--write-playbook", "undo.yaml")
    outcome.assert_clean_error(f"the undo of run {run} would be a playbook of ", f"provena-ops undo {run}")
    assert not (tmp_path / "undo.yaml").exists()


def test_an_apply_killed_midway_is_undone_for_what_it_did_and_the_rest_is_listed(
    api: Api, server: RunningSandbox, environments_file: Path, tmp_path: Path
) -> None:
    before = exported(server, tmp_path / "before.json")
    (tmp_path / "retire.yaml").write_text(DELETE_51)
    set_faults(api, job_delay_ms=100)
    args = cli("apply", "retire.yaml", "-e", "rehearsal", "--environments", str(environments_file),
               "--auto-approve", "--parallelism", "1")  # fmt: skip
    killed(api, tmp_path, args, lambda text: text.count('"action_started"') >= 3)
    runs = tmp_path / ".provena-ops" / "runs"
    set_faults(api, job_delay_ms=0)
    [journal] = journals(runs)
    undone = run_cli(api, tmp_path, cli("undo", journal.stem, "--environments", str(environments_file),
                                         "--auto-approve"))  # fmt: skip
    assert undone.returncode == 0, undone.stdout[-3000:] + undone.stderr[-2000:]
    assert (
        f"left alone: delete {STUDY_51}: not written by run {journal.stem} (never started)" in undone.stdout
    )
    assert differences(before, exported(server, tmp_path / "after.json")) == []


def test_undo_outputs_never_replace_a_journal_a_database_or_a_file_that_is_not_theirs(
    api: Api, environments_file: Path, tmp_path: Path
) -> None:
    run = applied_run(api, environments_file, tmp_path)
    journal = tmp_path / ".provena-ops" / "runs" / f"{run}.jsonl"
    kept = journal.read_bytes()
    settings = tmp_path / "environments.json"
    other = settings.read_bytes()
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (tmp_path / "link.yaml").symlink_to(journal)
    env = ("--environments", str(environments_file))
    for args, said in (
        (("--plan-only", "--out", str(journal)), "is inside the runs directory"),
        (("--plan-only", "--out", str(settings)), "exists and is not a plan provena-ops wrote"),
        (("--write-playbook", str(journal)), "is inside the runs directory"),
        (("--write-playbook", "link.yaml"), "is inside the runs directory"),
        (("--write-playbook", str(settings)), "exists and is not a restore playbook provena-ops wrote"),
        (("--write-playbook", "pipe"), "is not a regular file (a device, pipe or socket)"),
        (("--write-playbook", "."), "--write-playbook . is a directory"),
    ):
        refused = run_cli(api, tmp_path, cli("undo", run, *env, *args))
        assert refused.returncode == 1 and said in refused.stderr, (args, refused.stdout, refused.stderr)
        assert "Traceback" not in refused.stderr
    assert journal.read_bytes() == kept and settings.read_bytes() == other and fifo.is_fifo()
    first = run_cli(api, tmp_path, cli("undo", run, "--write-playbook", "undo.yaml"))
    again = run_cli(api, tmp_path, cli("undo", run, "--write-playbook", "undo.yaml"))  # its own: replaced
    assert first.returncode == again.returncode == 0, again.stderr


def test_an_undo_against_a_moved_sandbox_creates_no_database(
    api: Api, environments_file: Path, tmp_path: Path
) -> None:
    run = applied_run(api, environments_file, tmp_path)
    moved = tmp_path / "moved.json"
    moved.write_text(
        json.dumps({"envs": [{"name": "rehearsal", "stage": "DEV", "domain": "sandbox.localhost",
                              "realm_name": "provena", "provena_ops": {"sandbox": {"db": "other.db"}}}]})
    )  # fmt: skip
    refused = run_cli(api, tmp_path, cli("undo", run, "--environments", str(moved), "--plan-only"))
    assert refused.returncode == 1 and "nothing was read or written" in refused.stderr, refused.stderr
    assert not (tmp_path / "other.db").exists()
