"""What the generated workflow needs of GitHub, for real over HTTP on loopback: pull-request comments,
the pull request a commit belongs to, workflow runs, and artefacts (stored by the stand-in for
actions/upload-artifact). And a runner that executes a workflow job's steps as GitHub Actions would."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.local_servers import serving

TOKEN = "ghs_stand-in-token-0123456789"


@dataclass
class GitHubState:
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    pulls_of_commit: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)  # {id, head_sha, event, conclusion}
    artifacts: dict[tuple[int, str], bytes] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    next_id: int = 1000
    storage_url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def comment(self, pull: int, body: str, bot: bool) -> dict[str, Any]:
        with self.lock:
            self.next_id += 1
            made = {
                "id": self.next_id,
                "body": body,
                "user": {
                    "login": "github-actions[bot]" if bot else "reviewer",
                    "type": "Bot" if bot else "User",
                },
            }
            self.comments.setdefault(pull, []).append(made)
            return made

    def upload(self, run_id: int, name: str, path: Path, include_hidden: bool) -> bool:
        """As actions/upload-artifact@v4: hidden files and directories are left out unless asked for."""
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
        if not include_hidden:
            files = [p for p in files if not any(part.startswith(".") for part in p.parts)]
        if not files:
            return False
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as bundle:
            for file in files:
                bundle.write(file, file.relative_to(path).as_posix())
        self.artifacts[(run_id, name)] = buffer.getvalue()
        return True


def _handler(state: GitHubState, storage: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            return

        def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorised(self) -> bool:
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._send(401, {"message": "Bad credentials"})
                return False
            return True

        def _route(self, method: str) -> None:
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            state.requests.append(f"{method} {url.path}")
            if storage:  # artefact storage, another origin: the GitHub token must not be sent here
                if self.headers.get("Authorization"):
                    self._send(400, {"message": "storage was sent the GitHub token"})
                    return
                run_id, name = url.path.split("/")[2:4]
                self._send(200, state.artifacts[(int(run_id), name)], "application/zip")
                return
            if not self._authorised():
                return
            length = int(self.headers.get("Content-Length") or 0)
            body: dict[str, Any] = json.loads(self.rfile.read(length)) if length else {}
            if m := re.fullmatch(r"/repos/[^/]+/[^/]+/issues/(\d+)/comments", url.path):
                pull = int(m.group(1))
                if method == "POST":
                    self._send(201, state.comment(pull, body["body"], bot=True))
                    return
                page, per_page = int(query.get("page", 1)), int(query.get("per_page", 30))
                listed = state.comments.get(pull, [])[(page - 1) * per_page : page * per_page]
                self._send(200, listed)
                return
            if (
                m := re.fullmatch(r"/repos/[^/]+/[^/]+/issues/comments/(\d+)", url.path)
            ) and method == "PATCH":
                for comments in state.comments.values():
                    for comment in comments:
                        if comment["id"] == int(m.group(1)):
                            comment["body"] = body["body"]
                            self._send(200, comment)
                            return
                self._send(404, {"message": "Not Found"})
                return
            if m := re.fullmatch(r"/repos/[^/]+/[^/]+/commits/([0-9a-f]+)/pulls", url.path):
                self._send(200, state.pulls_of_commit.get(m.group(1), []))
                return
            if re.fullmatch(r"/repos/[^/]+/[^/]+/actions/workflows/provena-ops\.yml/runs", url.path):
                runs = [
                    {"id": run["id"], "head_sha": run["head_sha"], "conclusion": run["conclusion"]}
                    for run in reversed(state.runs)  # newest first, as GitHub lists them
                    if run["head_sha"] == query.get("head_sha")
                    and run["event"] == query.get("event")
                    and query.get("status") in (None, run["conclusion"])
                ]
                self._send(200, {"total_count": len(runs), "workflow_runs": runs})
                return
            if m := re.fullmatch(r"/repos/[^/]+/[^/]+/actions/runs/(\d+)/artifacts", url.path):
                wanted = int(m.group(1))
                base = f"http://{self.headers['Host']}"
                artifacts = [
                    {"id": wanted * 10, "name": name, "expired": False,
                     "archive_download_url": f"{base}/repos/o/r/actions/artifacts/{wanted}/{name}/zip"}
                    for (run, name) in state.artifacts
                    if run == wanted and name == query.get("name", name)
                ]  # fmt: skip
                self._send(200, {"total_count": len(artifacts), "artifacts": artifacts})
                return
            if m := re.fullmatch(r"/repos/[^/]+/[^/]+/actions/artifacts/(\d+)/([^/]+)/zip", url.path):
                self.send_response(302)  # as GitHub does: to storage, where the token must not follow
                self.send_header("Location", f"{state.storage_url}/storage/{m.group(1)}/{m.group(2)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self._send(404, {"message": f"Not Found: {method} {url.path}"})

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_PATCH(self) -> None:
            self._route("PATCH")

    return Handler


@contextmanager
def github_stand_in() -> Iterator[tuple[str, GitHubState]]:
    state = GitHubState()
    with serving(_handler(state, storage=True)) as storage, serving(_handler(state, storage=False)) as url:
        state.storage_url = storage
        yield url, state


# ---- running a workflow job's steps ------------------------------------------------------------------
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


@dataclass
class StepRun:
    name: str
    code: int
    output: str


@dataclass
class JobRun:
    steps: list[StepRun]
    failed: bool

    def step(self, name: str) -> StepRun:
        return next(step for step in self.steps if step.name == name)


def run_job(
    workflow: dict[str, Any],
    job: str,
    cwd: Path,
    context: dict[str, str],
    github: GitHubState,
    run_id: int,
) -> JobRun:
    """The job's steps in order, as GitHub Actions runs them: bash -eo pipefail, env from workflow, job and
    step, `${{ }}` from `context`, GITHUB_OUTPUT read back, `if:` honoured. The checkout and Python set-up
    are the test's own (the repository is checked out, provena-ops installed); artefact uploads go to the
    stand-in GitHub."""
    spec = workflow["jobs"][job]
    ref = "refs/heads/main" if context["github.event_name"] == "push" else "refs/pull/7/merge"
    assert _condition(spec.get("if", "success()"), context, {}, failed=False), f"job {job} would not run"
    outputs: dict[str, dict[str, str]] = {}
    ran: list[StepRun] = []
    failed = False
    for index, step in enumerate(spec["steps"]):
        name = step.get("name") or step.get("uses") or f"step {index}"
        if not _condition(step.get("if", "success()"), context, outputs, failed):
            continue
        if "uses" in step:
            action = step["uses"].split("@")[0]
            if action in ("actions/checkout", "actions/setup-python"):
                continue
            assert action == "actions/upload-artifact", f"no stand-in for {action}"
            settings = step["with"]
            uploaded = github.upload(
                run_id, settings["name"], cwd / settings["path"], settings.get("include-hidden-files", False)
            )
            assert uploaded or settings.get("if-no-files-found") == "ignore"
            continue
        if name == "Install provena-ops":
            continue  # installed in the test's environment; the line itself is checked by the schema test
        outputs_file = cwd.parent / f"github-output-{run_id}-{index}"
        outputs_file.write_text("")
        env = {
            **os.environ,
            **{k: _substitute(str(v), context, outputs) for k, v in workflow.get("env", {}).items()},
            **{k: _substitute(str(v), context, outputs) for k, v in spec.get("env", {}).items()},
            **{k: _substitute(str(v), context, outputs) for k, v in step.get("env", {}).items()},
            "GITHUB_OUTPUT": str(outputs_file),
            "GITHUB_STEP_SUMMARY": str(cwd.parent / f"step-summary-{run_id}"),
            "GITHUB_REPOSITORY": context["github.repository"],
            "GITHUB_SHA": context["github.sha"],
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": context["github.event_name"],
            "GITHUB_REF": ref,
            "GITHUB_WORKFLOW_REF": f"{context['github.repository']}/.github/workflows/provena-ops.yml@{ref}",
            "GITHUB_API_URL": context["github.api_url"],
            "NO_COLOR": "1",
            "COLUMNS": "200",
        }
        script = _substitute(step["run"], context, outputs)
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        ran.append(StepRun(name, done.returncode, done.stdout + done.stderr))
        if "id" in step:
            outputs[step["id"]] = dict(
                line.split("=", 1) for line in outputs_file.read_text().splitlines() if "=" in line
            )
        if done.returncode != 0 and not step.get("continue-on-error"):
            failed = True
    return JobRun(ran, failed)


def _substitute(text: str, context: dict[str, str], outputs: dict[str, dict[str, str]]) -> str:
    def value(match: re.Match[str]) -> str:
        expression = match.group(1)
        if expression.startswith("steps."):
            _, step, _, key = expression.split(".")
            return outputs.get(step, {}).get(key, "")
        assert expression in context, f"the test gives no value for ${{{{ {expression} }}}}"
        return context[expression]

    return EXPRESSION.sub(value, text)


def _condition(
    expression: str, context: dict[str, str], outputs: dict[str, dict[str, str]], failed: bool
) -> bool:
    expression = expression.strip()
    if expression == "always()":
        return True
    if expression == "success()":
        return not failed
    if failed:
        return False
    match = re.fullmatch(r"([\w.\-]+) == ('[^']*'|[\w.\-]+)", expression)
    assert match, f"the stand-in cannot evaluate `if: {expression}`"

    def value(term: str) -> str:
        if term.startswith("'"):
            return term.strip("'")
        if term.startswith("steps."):
            _, step, _, key = term.split(".")
            return outputs.get(step, {}).get(key, "")
        return context[term]

    return value(match.group(1)) == value(match.group(2))
