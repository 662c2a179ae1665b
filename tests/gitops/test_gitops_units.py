"""The pieces under the workflow: which playbooks a branch changed, one comment within GitHub's limit, and
the GitHub calls' edge cases (pagination, expired and hostile artefacts)."""

from __future__ import annotations

import io
import os
import subprocess
import zipfile
from pathlib import Path

import pytest
import yaml

from provena_ops.errors import ProvenaOpsError
from provena_ops.gitops.github import GitHub, fetch_reviewed_plans, upsert_plan_comment
from provena_ops.gitops.review import (
    PLAN_MARKER,
    PlaybookOutcome,
    changed_playbooks,
    plan_file_name,
    render_comment,
)
from provena_ops.gitops.scaffold import WORKFLOW_PATH, init
from provena_ops.plan.model import Plan
from tests.gitops.github_stand_in import TOKEN, github_stand_in

GOLDEN_PLAN = Path(__file__).parents[1] / "plan" / "golden" / "plan.json"


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "a@example.org",
           "GIT_COMMITTER_NAME": "Ada", "GIT_COMMITTER_EMAIL": "a@example.org"}  # fmt: skip
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q", "-b", "main")
    for name in ("keep.yaml", "edit.yaml", "gone.yaml"):
        (tmp_path / "playbooks" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "playbooks" / name).write_text(f"# {name}\n")
    (tmp_path / "notes.yaml").write_text("not a playbook\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "base")
    git(tmp_path, "checkout", "-q", "-b", "change")
    (tmp_path / "playbooks" / "edit.yaml").write_text("# edited\n")
    (tmp_path / "playbooks" / "team").mkdir()
    (tmp_path / "playbooks" / "team" / "new.yml").write_text("# new\n")
    (tmp_path / "playbooks" / "README.md").write_text("docs\n")
    (tmp_path / "playbooks" / "réunion.yaml").write_text("# a name git would quote\n")
    (tmp_path / "playbooks" / "gone.yaml").unlink()
    (tmp_path / "notes.yaml").write_text("changed, but not under playbooks/\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "change")
    (tmp_path / "playbooks" / "draft.yaml").write_text("# not committed yet\n")
    return tmp_path


def test_changed_playbooks_are_the_added_and_modified_yaml_under_playbooks(repo: Path) -> None:
    found = changed_playbooks("main", repo)
    assert found == [
        Path("playbooks/draft.yaml"),
        Path("playbooks/edit.yaml"),
        Path("playbooks/réunion.yaml"),
        Path("playbooks/team/new.yml"),
    ]
    from_inside = changed_playbooks("main", repo / "playbooks")  # run from a subdirectory
    assert from_inside == [Path("draft.yaml"), Path("edit.yaml"), Path("réunion.yaml"), Path("team/new.yml")]


def test_an_unknown_ref_or_no_repository_is_a_clear_error(
    repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with pytest.raises(
        ProvenaOpsError, match="--changed-since origin/main: git knows no such commit"
    ) as raised:
        changed_playbooks("origin/main", repo)
    assert "fetch-depth: 0" in (raised.value.hint or "")
    with pytest.raises(ProvenaOpsError, match="git rev-parse failed"):
        changed_playbooks("main", tmp_path_factory.mktemp("not-a-repository"))


def test_plan_files_are_named_after_their_playbook_path() -> None:
    assert plan_file_name("playbooks/retire-study.yaml") == "playbooks-retire-study.json"
    nested = plan_file_name("playbooks/team/fix.yaml")
    assert nested.startswith("playbooks-team-fix.") and nested.endswith(".json") and nested.count(".") == 2
    names = [
        "playbooks/a/b.yaml", "playbooks/a-b.yaml", "playbooks/a__b.yaml", "playbooks/a%2Fb.yaml",
        "playbooks-a/b.yaml", "playbooks/a b.yaml", "playbooks/a.b.yaml", "playbooks/a-b.yml",
    ]  # fmt: skip
    assert len({plan_file_name(name) for name in names}) == len(names)
    assert all("/" not in plan_file_name(name) for name in names)


def test_one_comment_for_many_large_plans_stays_within_githubs_limit() -> None:
    golden_plan = Plan.model_validate_json(GOLDEN_PLAN.read_text())
    outcomes = [
        PlaybookOutcome(f"playbooks/p{i}.yaml", plan=golden_plan, saved_as=f"p{i}.json") for i in range(6)
    ]
    outcomes.append(PlaybookOutcome("playbooks/broken.yaml", error="playbooks/broken.yaml:3:1: error: ..."))
    comment = render_comment(outcomes, "origin/main", limit=20_000)
    assert comment.startswith(PLAN_MARKER) and len(comment) <= 20_000
    assert comment.count("#### `playbooks/") == 7 and "Could not plan" in comment
    assert "7 playbooks changed since `origin/main`" in comment
    assert render_comment([], "origin/main").startswith(
        f"{PLAN_MARKER}\n## provena-ops\n\nNo playbook changed"
    )


def test_the_plan_comment_is_found_past_the_first_page(monkeypatch: pytest.MonkeyPatch) -> None:
    with github_stand_in() as (url, state):
        for i in range(150):
            state.comment(3, f"comment {i}", bot=i % 2 == 0)
        mine = state.comment(3, f"{PLAN_MARKER}\nold plan", bot=True)
        state.comment(3, "a later human comment", bot=False)
        github = GitHub(url, "o/r", TOKEN)
        assert upsert_plan_comment(github, 3, "new plan") == ("updated", mine["id"])
        assert mine["body"] == f"{PLAN_MARKER}\nnew plan"


def test_a_wrong_token_is_reported_without_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    with github_stand_in() as (url, _):
        with pytest.raises(ProvenaOpsError, match="answered 401 Bad credentials") as raised:
            upsert_plan_comment(GitHub(url, "o/r", "ghs_wrong-token-value"), 3, "plan")
        assert "ghs_wrong" not in raised.value.render()


def test_artefact_entries_outside_the_plans_directory_are_ignored(tmp_path: Path) -> None:
    with github_stand_in() as (url, state):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as bundle:
            bundle.writestr("playbooks__a.yaml.json", "{}")
            bundle.writestr("../escape.json", "{}")
            bundle.writestr("/abs.json", "{}")
            bundle.writestr("notes.txt", "x")
        state.artifacts[(9, "provena-ops-plans")] = buffer.getvalue()
        state.runs.append({"id": 9, "head_sha": "abc", "event": "pull_request", "conclusion": "success"})
        state.pulls_of_commit["def"] = [
            {
                "number": 1,
                "head": {"sha": "abc"},
                "merged_at": "2026-11-26T12:00:00Z",
                "merge_commit_sha": "def",
            }
        ]
        saved = fetch_reviewed_plans(GitHub(url, "o/r", TOKEN), "def", "provena-ops.yml", tmp_path / "plans")
    assert [path.name for path in saved] == ["playbooks__a.yaml.json"]
    assert not (tmp_path / "escape.json").exists()


def test_a_pull_request_without_a_successful_plan_run_applies_nothing(tmp_path: Path) -> None:
    with github_stand_in() as (url, state):
        state.pulls_of_commit["def"] = [
            {
                "number": 4,
                "head": {"sha": "abc"},
                "merged_at": "2026-11-26T12:00:00Z",
                "merge_commit_sha": "def",
            }
        ]
        state.runs.append({"id": 8, "head_sha": "abc", "event": "pull_request", "conclusion": "success"})
        state.runs.append({"id": 9, "head_sha": "abc", "event": "pull_request", "conclusion": "failure"})
        with pytest.raises(ProvenaOpsError, match=r"the last plan run of pull request #4 .* did not succeed"):
            fetch_reviewed_plans(GitHub(url, "o/r", TOKEN), "def", "provena-ops.yml", tmp_path)


def test_the_workflow_gives_credentials_only_to_the_steps_that_sign_in(tmp_path: Path) -> None:
    """Installing a package runs its build code, and a checkout token left in .git/config is readable by
    every later step: the Provena secrets go to the plan and apply steps alone, and no git token stays."""
    init(tmp_path, install='provena-ops==0.1.0; python_version >= "3.11"')
    workflow = yaml.safe_load((tmp_path / WORKFLOW_PATH).read_text())
    assert workflow["env"]["PROVENA_OPS_INSTALL"] == 'provena-ops==0.1.0; python_version >= "3.11"'
    holders: dict[str, list[str]] = {}
    for job_name, job in workflow["jobs"].items():
        assert "secrets." not in yaml.safe_dump(job.get("env", {})), job_name
        for step in job["steps"]:
            if "secrets." in yaml.safe_dump(step.get("env", {})):
                holders.setdefault(job_name, []).append(step["name"])
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, job_name
    assert holders == {"plan": ["Plan the changed playbooks"], "apply": ["Apply the reviewed plans"]}


@pytest.mark.parametrize("install", ["", "  ", "provena-ops\nrm -rf /"])
def test_an_install_line_ci_cannot_use_is_refused_before_writing(tmp_path: Path, install: str) -> None:
    with pytest.raises(ProvenaOpsError, match="is not a requirement CI can install"):
        init(tmp_path / "records", install=install)
    assert not (tmp_path / "records").exists()


def test_the_workflow_applies_merges_to_the_branch_given(tmp_path: Path) -> None:
    init(tmp_path, branch="master")
    workflow = yaml.safe_load((tmp_path / WORKFLOW_PATH).read_text())
    assert workflow[True]["push"]["branches"] == ["master"]  # YAML 1.1 reads the key `on` as True
    with pytest.raises(ProvenaOpsError, match="is not a git branch name"):
        init(tmp_path / "other", branch="two words")
