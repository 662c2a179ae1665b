"""The generated repository end to end: its CI workflow's steps run as a script against the sandbox, with a
stand-in GitHub over HTTP: a pull request planned and commented (one comment, kept up to date), its merge
applying exactly the reviewed plans, and a merge refused when records changed after the review."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from provena_ops.gitops.review import PLAN_MARKER
from provena_ops.gitops.scaffold import WORKFLOW_PATH
from tests.gitops.github_stand_in import TOKEN, GitHubState, JobRun, github_stand_in, run_job

EXAMPLES = Path(__file__).parents[2] / "playbooks" / "examples"
PLAYBOOK = "playbooks/delete-duplicates.yaml"
PULL_REQUEST = 7


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.org",
           "GIT_COMMITTER_NAME": "Ada", "GIT_COMMITTER_EMAIL": "ada@example.org"}  # fmt: skip
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provena_ops", *args],
        cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
    )  # fmt: skip


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The playbook repository (`provena-ops init`, committed on main), as GitHub hosts it."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PROVENA_OPS_LOCK_DIR", str(tmp_path / "locks"))
    root = tmp_path / "records"
    assert cli(tmp_path, "init", "records").returncode == 0
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "provena-ops init")
    return root


def checkout(repo: Path, sha: str) -> Path:
    """A job's workspace, as actions/checkout leaves it: a fresh clone at the same path for every job
    (nothing carries over from one job to the next but artefacts), with origin/main to compare against."""
    workspace = repo.parent / "runner" / "work" / "provena-records"
    if workspace.exists():
        shutil.rmtree(workspace)
    workspace.parent.mkdir(parents=True, exist_ok=True)
    git(workspace.parent, "clone", "-q", str(repo), workspace.name)
    git(workspace, "checkout", "-q", sha)
    return workspace


def workflow(repo: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((repo / WORKFLOW_PATH).read_text())
    return loaded


def context(
    api_url: str, event: str, sha: str, head_repository: str = "csiro/provena-records"
) -> dict[str, str]:
    return {
        "github.event_name": event,
        "github.base_ref": "main" if event == "pull_request" else "",
        "github.token": TOKEN,
        "github.event.pull_request.number": str(PULL_REQUEST),
        "github.event.pull_request.head.repo.full_name": head_repository,
        "github.repository": "csiro/provena-records",
        "github.sha": sha,
        "github.api_url": api_url,
        "secrets.PROVENA_OPS_OFFLINE_TOKEN": "",
        "secrets.PROVENA_OPS_CLIENT_SECRET": "",
        "secrets.PROVENA_OPS_READ_OFFLINE_TOKEN": "",
        "secrets.PROVENA_OPS_READ_CLIENT_SECRET": "",
    }


def propose(repo: Path, text: str, message: str, playbook: str = PLAYBOOK) -> str:
    (repo / playbook).parent.mkdir(parents=True, exist_ok=True)
    (repo / playbook).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def plan_on_pull_request(
    repo: Path, url: str, github: GitHubState, head: str, run_id: int, **where: str
) -> JobRun:
    workspace = checkout(repo, head)
    job = run_job(
        workflow(repo), "plan", workspace, context(url, "pull_request", head, **where), github, run_id
    )
    conclusion = "failure" if job.failed else "success"
    github.runs.append({"id": run_id, "head_sha": head, "event": "pull_request", "conclusion": conclusion})
    return job


def merge(repo: Path, github: GitHubState, head: str) -> str:
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "proposal", "-m", f"Merge pull request #{PULL_REQUEST}")
    merged = git(repo, "rev-parse", "HEAD")
    github.pulls_of_commit[merged] = [
        {"number": PULL_REQUEST, "head": {"sha": head}, "merged_at": "2026-11-26T12:00:00Z",
         "merge_commit_sha": merged, "base": {"ref": "main"}}
    ]  # fmt: skip
    return merged


def apply_on_merge(
    repo: Path, url: str, github: GitHubState, merged: str, run_id: int, before: Any = None
) -> JobRun:
    workspace = checkout(repo, merged)
    if before is not None:
        before(workspace)
    return run_job(workflow(repo), "apply", workspace, context(url, "push", merged), github, run_id)


def logs(job: JobRun) -> str:
    return "\n".join(f"--- {step.name} ({step.code})\n{step.output}" for step in job.steps)


def bot_comments(github: GitHubState) -> list[dict[str, Any]]:
    return [c for c in github.comments.get(PULL_REQUEST, []) if c["user"]["type"] == "Bot"]


def test_a_pull_request_is_planned_in_one_comment_and_its_merge_applies_the_reviewed_plan(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "proposal")
    example = (EXAMPLES / "delete-model-runs.yaml").read_text()
    head = propose(repo, example, "Delete the duplicated runs")
    with github_stand_in() as (url, github):
        first = plan_on_pull_request(repo, url, github, head, run_id=101)
        assert not first.failed, logs(first)
        [comment] = bot_comments(github)
        assert comment["body"].startswith(PLAN_MARKER)
        assert f"`{PLAYBOOK}`" in comment["body"] and "Plan: 0 to update, 2 to delete" in comment["body"]
        assert (101, "provena-ops-plans") in github.artifacts

        # A reviewer quotes the marker; the author pushes again: the bot's own comment is edited in place.
        github.comment(PULL_REQUEST, f"{PLAN_MARKER} looks right to me", bot=False)
        head = propose(repo, example.replace("(OPS-101)", "(OPS-101, OPS-102)"), "Name both tickets")
        second = plan_on_pull_request(repo, url, github, head, run_id=102)
        assert not second.failed, logs(second)
        assert [c["id"] for c in bot_comments(github)] == [comment["id"]]
        assert len(github.comments[PULL_REQUEST]) == 2

        merged = merge(repo, github, head)
        applied = apply_on_merge(repo, url, github, merged, run_id=103)
        assert not applied.failed, logs(applied)
        assert "reviewed plan: .provena-ops/plans/" in logs(applied)
        assert (
            "Apply: 2 changed, 0 ok, 0 failed, 0 skipped." in applied.step("Apply the reviewed plans").output
        )
        assert (103, "provena-ops-journals") in github.artifacts
        workspace = checkout(repo, merged)  # the journal is the record: what the artefact holds
    with zipfile.ZipFile(io.BytesIO(github.artifacts[(103, "provena-ops-journals")])) as journals:
        assert any(name.endswith(".jsonl") for name in journals.namelist())
    assert workspace.exists()


def test_a_merge_is_refused_when_records_changed_after_the_review(repo: Path, tmp_path: Path) -> None:
    git(repo, "checkout", "-q", "-b", "proposal")
    head = propose(repo, (EXAMPLES / "delete-model-runs.yaml").read_text(), "Delete the duplicated runs")
    drift = tmp_path / "drift.yaml"
    drift.write_text(
        "version: 1\nname: drift\nenvironment: sandbox\noperations:\n"
        "  - op: update_model_runs\n    reason: edited after the review\n"
        "    model_runs: [10378.1/1690062]\n    set: {description: changed meanwhile}\n"
    )

    def someone_edits_a_reviewed_record(workspace: Path) -> None:
        edited = cli(workspace, "apply", str(drift), "--auto-approve")
        assert edited.returncode == 0, edited.stdout + edited.stderr

    with github_stand_in() as (url, github):
        assert not plan_on_pull_request(repo, url, github, head, run_id=201).failed
        merged = merge(repo, github, head)
        applied = apply_on_merge(
            repo, url, github, merged, run_id=202, before=someone_edits_a_reviewed_record
        )
        assert applied.failed
        refusal = applied.step("Apply the reviewed plans").output
        assert "10378.1/1690062" in refusal and "changed" in refusal
        assert (202, "provena-ops-journals") in github.artifacts  # kept even when the job fails
        workspace = repo.parent / "runner" / "work" / "provena-records"
        still = cli(workspace, "plan", PLAYBOOK)
    assert still.returncode == 2 and "Plan: 0 to update, 2 to delete" in still.stdout  # nothing deleted


def test_a_playbook_that_cannot_be_planned_is_shown_in_the_comment_and_fails_the_check(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "proposal")
    broken = "version: 1\nname: broken\nenvironment: sandbox\noperations:\n  - op: delete_everything\n"
    head = propose(repo, broken, "A typo")
    with github_stand_in() as (url, github):
        job = plan_on_pull_request(repo, url, github, head, run_id=301)
        assert job.failed
        assert job.step("Validate the changed playbooks").code == 1  # reported, and the job went on
        [comment] = bot_comments(github)
        assert "Could not plan" in comment["body"] and "delete_everything" in comment["body"]
        assert job.steps[-1].name == "Fail if a playbook cannot be applied"
        merged = merge(repo, github, head)
        refused = apply_on_merge(repo, url, github, merged, run_id=302)
        assert refused.failed and "did not succeed: nothing reviewed to apply" in logs(refused)


def test_a_fork_pull_request_is_planned_into_the_job_summary_not_a_comment(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "proposal")
    head = propose(repo, (EXAMPLES / "delete-model-runs.yaml").read_text(), "From a fork")
    with github_stand_in() as (url, github):
        job = plan_on_pull_request(repo, url, github, head, run_id=501, head_repository="someone/fork")
        assert not job.failed, logs(job)
        assert bot_comments(github) == []
        summary = (repo.parent / "runner" / "work" / "step-summary-501").read_text()
        assert summary.startswith(PLAN_MARKER) and "Plan: 0 to update, 2 to delete" in summary


def test_several_playbooks_in_one_pull_request_are_planned_and_applied_together(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "proposal")
    propose(repo, (EXAMPLES / "delete-model-runs.yaml").read_text(), "Deletions")
    head = propose(
        repo, (EXAMPLES / "update-model-runs.yaml").read_text(), "An edit", "playbooks/team/fix.yaml"
    )
    with github_stand_in() as (url, github):
        job = plan_on_pull_request(repo, url, github, head, run_id=601)
        assert not job.failed, logs(job)
        [comment] = bot_comments(github)
        assert "2 playbooks changed since `origin/main`" in comment["body"]
        merged = merge(repo, github, head)
        applied = apply_on_merge(repo, url, github, merged, run_id=602)
        assert not applied.failed, logs(applied)
        assert logs(applied).count("reviewed plan: ") == 2
        assert "Apply: 2 changed" in logs(applied) and "Apply: 1 changed" in logs(applied)


def test_a_push_that_did_not_come_from_a_reviewed_pull_request_applies_nothing(repo: Path) -> None:
    (repo / PLAYBOOK).write_text((EXAMPLES / "delete-model-runs.yaml").read_text())
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Pushed straight to main")
    with github_stand_in() as (url, github):
        sha = git(repo, "rev-parse", "HEAD")
        github.pulls_of_commit[sha] = [{"number": 9, "head": {"sha": sha}, "merged_at": None}]  # still open
        job = apply_on_merge(repo, url, github, sha, run_id=401)
        assert job.failed
        assert "did not come from a merged pull request: no plan was reviewed, so nothing is applied" in logs(
            job
        )
        workspace = repo.parent / "runner" / "work" / "provena-records"
        assert cli(workspace, "plan", PLAYBOOK).returncode == 2  # nothing was applied


def test_the_generated_workflow_passes_the_github_workflow_schema(repo: Path) -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    done = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.github-workflows", str(repo / WORKFLOW_PATH)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    broken = repo / "broken.yml"
    broken.write_text((repo / WORKFLOW_PATH).read_text().replace("runs-on:", "runs_on:", 1))
    rejected = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.github-workflows", str(broken)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert rejected.returncode == 1  # the check can fail


def test_the_workflow_keeps_secrets_in_repository_secrets_and_never_echoes_them(repo: Path) -> None:
    text = (repo / WORKFLOW_PATH).read_text()
    assert (
        "${{ secrets.PROVENA_OPS_OFFLINE_TOKEN }}" in text
        and "${{ secrets.PROVENA_OPS_CLIENT_SECRET }}" in text
    )
    runs = [step.get("run", "") for job in workflow(repo)["jobs"].values() for step in job["steps"]]
    assert not any("SECRET" in run or "TOKEN" in run or "set -x" in run for run in runs)


def outside_github() -> dict[str, str]:
    """A laptop's environment: none of what GitHub Actions sets (this suite may itself run in it)."""
    return {name: value for name, value in os.environ.items() if not name.startswith("GITHUB_")}


def test_production_is_applied_by_the_merge_workflow_and_only_confirmed_by_name_elsewhere(repo: Path) -> None:
    environments = json.loads((repo / "environments" / "environments.json").read_text())
    production = {**environments["envs"][0], "name": "records-prod", "stage": "PROD"}
    environments["envs"].append(production)
    (repo / "environments" / "environments.json").write_text(json.dumps(environments, indent=2))
    git(repo, "checkout", "-q", "-b", "proposal")
    example = (
        (EXAMPLES / "delete-model-runs.yaml")
        .read_text()
        .replace("environment: sandbox", "environment: records-prod")
    )
    head = propose(repo, example, "Delete the duplicated runs in production")
    with github_stand_in() as (url, github):
        assert not plan_on_pull_request(repo, url, github, head, run_id=301).failed
        merged = merge(repo, github, head)
        laptop = checkout(repo, merged)
        env = {**outside_github(), "GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": "csiro/provena-records",
               "GITHUB_API_URL": url, "NO_COLOR": "1"}  # fmt: skip
        run = [sys.executable, "-m", "provena_ops", "gitops"]
        fetched = subprocess.run(
            [*run, "fetch-plans", "--sha", merged, "--dir", "plans"],
            cwd=laptop, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert fetched.returncode == 0, fetched.stdout + fetched.stderr
        refused = subprocess.run(
            [*run, "apply-reviewed", "plans"],
            cwd=laptop,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert refused.returncode == 1
        assert (
            "'records-prod' is a production environment, and this is not the generated workflow applying a "
            "merge (GITHUB_ACTIONS is not 'true': this is not GitHub Actions); nothing was contacted"
        ) in refused.stderr
        assert "--confirm-environment records-prod" in refused.stderr
        pretending = {**env, "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "workflow_dispatch"}
        still = subprocess.run(
            [*run, "apply-reviewed", "plans"], cwd=laptop, env=pretending, capture_output=True, text=True,
            check=False,
        )  # fmt: skip
        assert still.returncode == 1 and "'workflow_dispatch', not the push of a merge" in still.stderr
        assert not (laptop / ".provena-ops" / "runs").exists()  # refused before any run began

        applied = apply_on_merge(repo, url, github, merged, run_id=302)
        assert not applied.failed, logs(applied)
        assert "Apply: 2 changed" in applied.step("Apply the reviewed plans").output

        again = checkout(repo, merged)
        for step in ("fetch-plans", "apply-reviewed"):
            args = ["--sha", merged, "--dir", "plans"] if step == "fetch-plans" else ["plans"]
            confirmed = subprocess.run(
                [*run, step, *args, *(["--confirm-environment", "records-prod"] * (step != "fetch-plans"))],
                cwd=again, env=env, capture_output=True, text=True, check=False,
            )  # fmt: skip
            assert confirmed.returncode == 0, confirmed.stdout + confirmed.stderr
        assert "Apply: 2 changed" in confirmed.stdout  # a fresh checkout: its own sandbox, applied


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["p.yaml", "--changed-since", "HEAD"], "--changed-since plans the playbooks changed since REF"),
        (["--out-dir", "plans"], "--out-dir goes with --changed-since"),
        (["--changed-since", "HEAD", "--out", "p.json"], "--out saves one playbook's plan"),
    ],
)
def test_mixing_one_playbook_and_changed_playbooks_says_which_option_is_wrong(
    tmp_path: Path, args: list[str], said: str
) -> None:
    mixed = cli(tmp_path, "plan", *args)
    assert mixed.returncode == 1 and f"error: {said}" in mixed.stderr


def test_apply_reviewed_refuses_a_directory_that_is_not_there(tmp_path: Path) -> None:
    """A typo in the plans directory must not pass as 'nothing to apply'."""
    typo = cli(tmp_path, "gitops", "apply-reviewed", ".provena-ops/plan")
    assert typo.returncode == 1
    assert ".provena-ops/plan is not a directory of reviewed plans; nothing was applied" in typo.stderr
    (tmp_path / "plans").mkdir()
    empty = cli(tmp_path, "gitops", "apply-reviewed", "plans")  # fetch-plans found none: fine
    assert empty.returncode == 0 and "No reviewed plan in plans: nothing to apply." in empty.stdout


def test_init_refuses_to_overwrite_and_the_scaffold_is_usable(tmp_path: Path) -> None:
    assert cli(tmp_path, "init", "repo").returncode == 0
    again = cli(tmp_path, "init", "repo")
    assert again.returncode == 1
    assert (
        "already has environments/environments.json" in again.stderr and "nothing was written" in again.stderr
    )
    (tmp_path / "repo" / WORKFLOW_PATH).write_text("edited")
    assert cli(tmp_path, "init", "repo", "--force").returncode == 0
    assert (tmp_path / "repo" / WORKFLOW_PATH).read_text().startswith("# provena-ops")
    listed = cli(tmp_path / "repo", "environments")
    assert listed.returncode == 0 and "sandbox" in listed.stdout and "production" not in listed.stdout
    environments = json.loads((tmp_path / "repo" / "environments" / "environments.json").read_text())
    assert environments["_examples"][0]["stage"] == "PROD"  # the commented production example
    (tmp_path / "existing").mkdir()
    (tmp_path / "existing" / ".gitignore").write_text("*.pyc")
    assert cli(tmp_path, "init", "existing").returncode == 0  # an existing .gitignore is added to
    assert (tmp_path / "existing" / ".gitignore").read_text().startswith("*.pyc\n# provena-ops")
    installed = cli(tmp_path, "init", "other", "--install", "provena-ops @ git+https://example.org/ops@v1")
    assert installed.returncode == 0
    assert (
        'PROVENA_OPS_INSTALL: "provena-ops @ git+https://example.org/ops@v1"'
        in (tmp_path / "other" / WORKFLOW_PATH).read_text()
    )
