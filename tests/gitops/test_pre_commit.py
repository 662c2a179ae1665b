"""pre-commit, from PyPI, run for real in temporary git repositories: provena-ops' own hook (as other
repositories use it) and the hook `provena-ops init` configures, refusing a commit with a bad playbook."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
EXAMPLE = REPO / "playbooks" / "examples" / "delete-studies.yaml"
BAD = "version: 1\nname: bad\nenvironment: sandbox\noperations:\n  - op: delete_everything\n"
BIN = Path(sys.executable).parent


def run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env or os.environ.copy(),
    )


@pytest.fixture
def playbook_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PRE_COMMIT_HOME", str(tmp_path / "pre-commit-home"))
    for name, value in (("NAME", "Ada"), ("EMAIL", "ada@example.org")):
        monkeypatch.setenv(f"GIT_AUTHOR_{name}", value)
        monkeypatch.setenv(f"GIT_COMMITTER_{name}", value)
    root = tmp_path / "records"
    assert run(tmp_path, sys.executable, "-m", "provena_ops", "init", "records").returncode == 0
    assert run(root, "git", "init", "-q", "-b", "main").returncode == 0
    (root / "playbooks" / "good.yaml").write_text(EXAMPLE.read_text())
    (root / "playbooks" / "bad.yaml").write_text(BAD)
    assert run(root, "git", "add", "-A").returncode == 0
    return root


def test_provena_ops_own_hook_passes_good_playbooks_and_fails_bad_ones(playbook_repo: Path) -> None:
    done = run(
        playbook_repo, str(BIN / "pre-commit"), "try-repo", str(REPO), "provena-ops-validate",
        "--files", "playbooks/good.yaml", "playbooks/bad.yaml", "playbooks/README.md",
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "provena-ops validate" in done.stdout and "Failed" in done.stdout
    assert (
        "playbooks/bad.yaml:5:9: error: operations[0].op: unknown operation 'delete_everything'"
        in done.stdout
    )
    assert "playbooks/good.yaml: valid" in done.stdout
    assert "README.md" not in done.stdout.split("hook id")[-1]  # only playbooks are passed to the hook


def test_the_scaffolded_hook_refuses_a_commit_with_a_bad_playbook(playbook_repo: Path) -> None:
    pre_commit = str(BIN / "pre-commit")
    assert run(playbook_repo, pre_commit, "install").returncode == 0
    refused = run(playbook_repo, "git", "commit", "-q", "-m", "A bad playbook")
    assert refused.returncode == 1
    assert "unknown operation 'delete_everything'" in refused.stdout + refused.stderr
    assert run(playbook_repo, "git", "rm", "-q", "--cached", "playbooks/bad.yaml").returncode == 0
    accepted = run(playbook_repo, "git", "commit", "-q", "-m", "A good playbook")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert run(playbook_repo, "git", "log", "--oneline").stdout.count("\n") == 1
