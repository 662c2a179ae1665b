"""docs/gitops.md is a walk-through that works: its `sh` blocks run in order, and every line it quotes from
the generated workflow is in the generated workflow."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from provena_ops.gitops.scaffold import WORKFLOW_PATH

DOC = Path(__file__).parents[2] / "docs" / "gitops.md"
SH_BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)
QUOTED = re.compile(r"`([^`]*\$[A-Z_]+[^`]*)`")  # inline code naming a workflow variable: a quoted step


def test_the_walk_through_runs_from_an_empty_directory_to_an_applied_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PRE_COMMIT_HOME", str(tmp_path / "pre-commit-home"))
    monkeypatch.setenv("PROVENA_OPS_LOCK_DIR", str(tmp_path / "locks"))
    for name, value in (("NAME", "Ada"), ("EMAIL", "ada@example.org")):
        monkeypatch.setenv(f"GIT_AUTHOR_{name}", value)
        monkeypatch.setenv(f"GIT_COMMITTER_{name}", value)
    blocks = SH_BLOCK.findall(DOC.read_text())
    assert len(blocks) == 4
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", "\n".join(blocks)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "playbooks/retire-duplicates.yaml: valid" in output
    assert "plan exit status 2 (2: there are changes)" in output
    assert "<!-- provena-ops-plan -->" in output  # the comment's first lines
    assert "playbooks-retire-duplicates.json" in output
    assert "Apply: 2 changed, 0 ok, 0 failed, 0 skipped." in output
    assert output.count("Plan: 0 to update, 0 to delete") == 2  # planned again after the merge: said twice
    repo = tmp_path / "provena-records"
    log = subprocess.run(["git", "log", "--oneline"], cwd=repo, capture_output=True, text=True, check=True)
    assert "Retire the duplicated reef runs" in log.stdout  # committed through the pre-commit hook


def test_every_workflow_line_the_page_quotes_is_in_the_generated_workflow(tmp_path: Path) -> None:
    from provena_ops.gitops.scaffold import init

    init(tmp_path)
    workflow = (tmp_path / WORKFLOW_PATH).read_text()
    quoted = QUOTED.findall(DOC.read_text())
    assert len(quoted) >= 4
    for line in quoted:
        assert line.rstrip("\\").strip() in workflow, line
