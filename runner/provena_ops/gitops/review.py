"""Playbooks reviewed as pull requests: which playbooks a branch changed, and one comment for all their plans.

A pull request's plan comment starts with a marker, so the CI workflow finds and updates its own earlier
comment instead of adding a new one on every push; each saved plan is named after its playbook's path,
so the merge job applies exactly the plans that were reviewed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from provena_ops.errors import ProvenaOpsError
from provena_ops.plan.model import Plan
from provena_ops.render.markdown import GITHUB_COMMENT_LIMIT, render_markdown

PLAN_MARKER = "<!-- provena-ops-plan -->"
PLAYBOOK_SUFFIXES = (".yaml", ".yml")
PLAYBOOKS_DIR = "playbooks"


@dataclass(frozen=True)
class PlaybookOutcome:
    """One changed playbook's plan, or why it could not be planned."""

    playbook: str  # relative to the repository root, as git names it
    plan: Plan | None = None
    error: str | None = None
    saved_as: str | None = None


def changed_playbooks(ref: str, cwd: Path, under: str = PLAYBOOKS_DIR) -> list[Path]:
    """Playbooks added or modified since the merge base of `ref` and HEAD (deleted ones have nothing to
    plan), plus uncommitted ones, so a local run sees what the pull request will."""
    root = Path(_git(cwd, "rev-parse", "--show-toplevel").strip())
    if not _ref_exists(cwd, ref):
        raise ProvenaOpsError(
            f"--changed-since {ref}: git knows no such commit or branch here",
            hint="fetch it first (`git fetch origin main`; in GitHub Actions check out with fetch-depth: 0)",
        )
    # From the root: `under` is the repository's playbooks/, wherever in the checkout this runs.
    # -z: names as they are (git quotes non-ASCII names otherwise), NUL-separated.
    committed = _git(root, "diff", "-z", "--name-only", "--diff-filter=d", f"{ref}...HEAD", "--", under)
    uncommitted = _git(root, "diff", "-z", "--name-only", "--diff-filter=d", "HEAD", "--", under)
    untracked = _git(root, "ls-files", "-z", "--others", "--exclude-standard", "--", under)
    names = {name for text in (committed, uncommitted, untracked) for name in text.split("\0") if name}
    found = [root / name for name in names if name.endswith(PLAYBOOK_SUFFIXES) and (root / name).is_file()]
    return sorted(Path(os.path.relpath(path, cwd)) for path in found)  # as the merge job will name them


_PLAIN = re.compile(r"([A-Za-z0-9_]+)/([A-Za-z0-9_][A-Za-z0-9_-]*)\.yaml")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
NAME_BYTES = 120  # well within any file system's 255


def plan_file_name(playbook: str) -> str:
    """The saved plan's file name, flat and readable: `playbooks/retire-study.yaml` ->
    `playbooks-retire-study.json`. Only a playbook `DIR/NAME.yaml` (letters, digits, `_`, and `-` in
    NAME) is named so, which can be read back, so no two paths share a name; any other path is named by
    its readable part and a digest of the whole path, `playbooks-team-fix.3f9a1c2b7d0e.json` (with a
    second dot, which no plain name has)."""
    path = playbook.replace("\\", "/")
    plain = _PLAIN.fullmatch(path)
    if plain is not None and len(path) <= NAME_BYTES:
        return f"{plain[1]}-{plain[2]}.json"
    stem = path.removesuffix(".yaml").removesuffix(".yml")
    readable = _UNSAFE.sub("-", stem).strip("-")[:NAME_BYTES] or "playbook"
    digest = hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return f"{readable}.{digest}.json"


def render_comment(outcomes: list[PlaybookOutcome], ref: str, limit: int = GITHUB_COMMENT_LIMIT) -> str:
    """One pull-request comment for every changed playbook, within GitHub's limit as a whole."""
    if not outcomes:
        return f"{PLAN_MARKER}\n## provena-ops\n\nNo playbook changed since `{ref}`: nothing to plan.\n"
    failed = sum(1 for outcome in outcomes if outcome.error or (outcome.plan and outcome.plan.problems))
    changing = sum(1 for outcome in outcomes if outcome.plan and outcome.plan.has_changes)
    head = [
        PLAN_MARKER,
        f"## provena-ops: {len(outcomes)} playbook{'s' if len(outcomes) != 1 else ''} changed since `{ref}`",
        "",
        f"{changing} with changes, {failed} that cannot be applied. Merging applies exactly these plans; "
        "if a record changes before then, the apply refuses and asks for a new plan.",
        "",
    ]
    share = (limit - len("\n".join(head)) - 64 * len(outcomes)) // len(outcomes)
    parts = []
    for outcome in outcomes:
        title = f"#### `{outcome.playbook}`"
        if outcome.plan is None:
            error = (outcome.error or "")[: max(share - 200, 200)]
            parts.append(f"{title}\n\n:x: **Could not plan**:\n\n```text\n{error}\n```\n")
            continue
        saved = f"the `provena-ops-plans` artefact, `{outcome.saved_as}`" if outcome.saved_as else None
        rendered = render_markdown(outcome.plan, full_plan_at=saved, limit=max(share, 600))
        parts.append(f"{title}\n\n{rendered}")
    comment = "\n".join([*head, *parts])
    if len(comment) > limit:  # so many playbooks that even their heads do not fit: say so, within the limit
        notice = "\n\n> :scissors: **Truncated**: the full plans are in the `provena-ops-plans` artefact.\n"
        comment = comment[: limit - len(notice)] + notice
    return comment


def _git(cwd: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise ProvenaOpsError("--changed-since needs git, which is not installed") from None
    if done.returncode != 0:
        message = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
        raise ProvenaOpsError(
            f"git {args[0]} failed in {cwd}: {message}",
            hint="run --changed-since inside the playbook repository's git checkout",
        )
    return done.stdout


def _ref_exists(cwd: Path, ref: str) -> bool:
    done = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode == 0


REVIEWED_MARKER = ".provena-ops-reviewed.json"  # written by fetch-plans beside the plans it fetched


def not_in_reviewed_workflow(directory: Path, workflow: str) -> str | None:
    """Why this is not the generated workflow applying a merge's reviewed plans (None when it is): what
    GitHub Actions sets for a push to a branch, running this workflow file, on the plans fetch-plans
    fetched for this very commit. A laptop is none of these unless someone pretends; pretending is not a
    mistake, and the production guard is against mistakes."""
    env = os.environ
    if env.get("GITHUB_ACTIONS") != "true":
        return "GITHUB_ACTIONS is not 'true': this is not GitHub Actions"
    if env.get("GITHUB_EVENT_NAME") != "push":
        return f"the event is {env.get('GITHUB_EVENT_NAME') or 'unknown'!r}, not the push of a merge"
    if not env.get("GITHUB_REF", "").startswith("refs/heads/"):
        return f"GITHUB_REF {env.get('GITHUB_REF', '')!r} is not a branch"
    if f"/.github/workflows/{workflow}@" not in env.get("GITHUB_WORKFLOW_REF", ""):
        return f"the workflow running is not {workflow} (GITHUB_WORKFLOW_REF)"
    try:
        fetched = json.loads((directory / REVIEWED_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"{directory} was not filled by `provena-ops gitops fetch-plans`"
    if not isinstance(fetched, dict) or fetched.get("sha") != env.get("GITHUB_SHA"):
        return f"the plans in {directory} were fetched for another commit than GITHUB_SHA"
    return None


def mark_reviewed(directory: Path, sha: str, pull_request: int | None) -> None:
    (directory / REVIEWED_MARKER).write_text(
        json.dumps({"sha": sha, "pull_request": pull_request}) + "\n", encoding="utf-8"
    )
