"""The two things the CI workflow asks of GitHub, done here rather than in shell so they are tested:
keeping one plan comment per pull request up to date, and fetching the plans a merged pull request's
review was based on.

Reads GITHUB_TOKEN (or GH_TOKEN), GITHUB_REPOSITORY and GITHUB_API_URL as GitHub Actions sets them.
"""

from __future__ import annotations

import contextlib
import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import httpx

from provena_ops.errors import ProvenaOpsError
from provena_ops.gitops.review import PLAN_MARKER, mark_reviewed
from provena_ops.safety.redaction import register

PLANS_ARTIFACT = "provena-ops-plans"


@dataclass(frozen=True)
class GitHub:
    api_url: str
    repository: str
    token: str

    @classmethod
    def from_environment(cls) -> GitHub:
        token = os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN") or ""
        repository = os.environ.get("GITHUB_REPOSITORY", "")
        if not token or not repository:
            missing = [
                name
                for name, value in (("GITHUB_TOKEN", token), ("GITHUB_REPOSITORY", repository))
                if not value
            ]
            raise ProvenaOpsError(
                f"{' and '.join(missing)} not set: this command runs inside GitHub Actions",
                hint="give the step `GITHUB_TOKEN: ${{ github.token }}` in its env",
            )
        register(token)
        return cls(os.environ.get("GITHUB_API_URL", "https://api.github.com").rstrip("/"), repository, token)

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.api_url,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
            },
            timeout=30,
            follow_redirects=True,  # artefact downloads redirect to storage; httpx drops the token there
        )


def _call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise ProvenaOpsError(f"GitHub API {method} {path} failed: {type(exc).__name__}") from None
    if response.status_code >= 400:
        message = ""
        with contextlib.suppress(ValueError, AttributeError):
            message = str(response.json().get("message", ""))
        raise ProvenaOpsError(
            f"GitHub API {method} {path} answered {response.status_code} {message}".rstrip(),
            hint="the workflow's permissions must allow it (pull-requests: write to comment, actions: read "
            "to fetch plans)",
        )
    return response


def upsert_plan_comment(github: GitHub, pull_request: int, body: str) -> tuple[str, int]:
    """('updated' or 'created', comment id): the bot's earlier plan comment is edited in place."""
    if not body.startswith(PLAN_MARKER):
        body = f"{PLAN_MARKER}\n{body}"
    with github.client() as client:
        ours: int | None = None
        page = 1
        while True:
            comments = _call(
                client,
                "GET",
                f"/repos/{github.repository}/issues/{pull_request}/comments",
                params={"per_page": 100, "page": page},
            ).json()
            for comment in comments:
                by_bot = (comment.get("user") or {}).get("type") == "Bot"
                if by_bot and str(comment.get("body", "")).startswith(PLAN_MARKER):
                    ours = int(comment["id"])
            if len(comments) < 100:
                break
            page += 1
        if ours is not None:
            _call(client, "PATCH", f"/repos/{github.repository}/issues/comments/{ours}", json={"body": body})
            return "updated", ours
        created = _call(
            client, "POST", f"/repos/{github.repository}/issues/{pull_request}/comments", json={"body": body}
        ).json()
        return "created", int(created["id"])


def fetch_reviewed_plans(github: GitHub, merge_sha: str, workflow: str, directory: Path) -> list[Path]:
    """The reviewed plans of the pull request `merge_sha` merged, saved in `directory`, with a note of the
    commit they were fetched for (apply-reviewed confirms production only for that commit)."""
    saved, number = _fetch_reviewed_plans(github, merge_sha, workflow, directory)
    mark_reviewed(directory, merge_sha, number)
    return saved


def _fetch_reviewed_plans(
    github: GitHub, merge_sha: str, workflow: str, directory: Path
) -> tuple[list[Path], int]:
    """The plans saved by the last successful pull-request run of `workflow` on the merged pull request's
    head. Nothing reviewed, nothing applied: a push that did not come from a reviewed pull request fails."""
    with github.client() as client:
        pulls = _call(client, "GET", f"/repos/{github.repository}/commits/{merge_sha}/pulls").json()
        merged = [
            pull for pull in pulls if pull.get("merged_at") and pull.get("merge_commit_sha") == merge_sha
        ]
        if not merged:
            raise ProvenaOpsError(
                f"commit {merge_sha[:12]} did not come from a merged pull request: no plan was reviewed, so "
                "nothing is applied",
                hint="change playbooks through pull requests: the plan reviewed there is what is applied",
            )
        head = merged[0]["head"]["sha"]
        number = merged[0]["number"]
        runs = _call(
            client,
            "GET",
            f"/repos/{github.repository}/actions/workflows/{workflow}/runs",
            params={"head_sha": head, "event": "pull_request", "per_page": 1},  # the newest run
        ).json()["workflow_runs"]
        if not runs or runs[0].get("conclusion") != "success":
            raise ProvenaOpsError(
                f"the last plan run of pull request #{number} (commit {head[:12]}) did not succeed: nothing "
                "reviewed to apply",
                hint="open a new pull request with the playbook (or an edit to it) to plan it again",
            )
        artifacts = _call(
            client,
            "GET",
            f"/repos/{github.repository}/actions/runs/{runs[0]['id']}/artifacts",
            params={"name": PLANS_ARTIFACT},
        ).json()["artifacts"]
        usable = sorted(
            (artifact for artifact in artifacts if artifact["name"] == PLANS_ARTIFACT),
            key=lambda artifact: int(artifact["id"]),
            reverse=True,  # a re-run's upload is the newest
        )
        if not usable:
            return [], number  # the pull request changed no playbook that has a plan to apply
        if usable[0].get("expired"):
            raise ProvenaOpsError(
                f"the plans reviewed on pull request #{number} have expired from GitHub's storage",
                hint="re-run the pull request's plan (it is checked against the current state), then apply",
            )
        archive = _call(client, "GET", usable[0]["archive_download_url"]).content
    directory.mkdir(parents=True, exist_ok=True)
    saved = []
    with zipfile.ZipFile(io.BytesIO(archive)) as bundle:
        for name in bundle.namelist():
            member = PurePosixPath(name)
            if (
                member.suffix != ".json"
                or member.is_absolute()
                or ".." in member.parts
                or member.name.startswith(".")
            ):
                continue
            target = directory / member.name
            target.write_bytes(bundle.read(name))
            saved.append(target)
    return sorted(saved), number
