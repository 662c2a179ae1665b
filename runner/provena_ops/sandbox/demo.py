"""`make demo`: seed the embedded sandbox, tour it over HTTP, then plan and apply a playbook.

The tour is what a client sees: Keycloak client-credentials sign-in, registry listing, graph
exploration, a trial-mode delete and one model-run edit watched through its job's lifecycle. Then an
example playbook is planned and applied, planned again (no changes left), and its journal shown, in a
fresh sandbox of its own, so the demo shows the same every time.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from provena_ops.api import plan as plan_playbook
from provena_ops.apply.run import ApplyOptions, apply
from provena_ops.environments.target import Target, TargetArgs
from provena_ops.plan.model import Plan
from provena_ops.render.log import render_run
from provena_ops.render.terminal import render_terminal
from provena_ops.sandbox import SandboxSettings, running_sandbox
from provena_ops.sandbox.admin import reset, seed

DEMO_DB = Path(".provena-ops/demo.db")
CI_CLIENT = ("provena-ops-ci", "sandbox-client-secret")
console = Console(soft_wrap=True)


def _all_items(http: httpx.Client, registry: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    key: dict[str, Any] | None = None
    while True:
        body: dict[str, Any] = {"page_size": 100, **({"pagination_key": key} if key else {})}
        page = http.post(f"{registry}/registry/general/list", json=body).json()
        items.extend(page["items"])
        key = page["pagination_key"]
        if key is None:
            return items


def main() -> None:
    DEMO_DB.parent.mkdir(parents=True, exist_ok=True)
    reset(DEMO_DB)
    summary = seed(DEMO_DB, 60, reset=False)
    settings = SandboxSettings(db_path=DEMO_DB, job_delay_ms=250)
    with running_sandbox(settings) as running:
        urls = running.endpoints
        console.rule(f"Provena sandbox on {running.base_url}")
        for name, url in urls.items():
            console.print(f"  {name} = {url}")
        token = httpx.post(
            f"{urls['keycloak_endpoint_override']}/protocol/openid-connect/token",
            data={
                "grant_type": "client_credentials",
                "client_id": CI_CLIENT[0],
                "client_secret": CI_CLIENT[1],
            },
        ).json()["access_token"]
        http = httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30)
        registry, prov, jobs = (
            urls["registry_api_endpoint_override"],
            urls["prov_api_endpoint_override"],
            urls["jobs_service_api_endpoint_override"],
        )

        items = _all_items(http, registry)
        counts = Counter(item["item_subtype"] for item in items)
        table = Table(title=f"Registry: {len(items)} items (listed page by page over HTTP)")
        table.add_column("subtype")
        table.add_column("items", justify="right")
        for subtype, count in sorted(counts.items()):
            table.add_row(subtype, str(count))
        console.print(table)

        studies = Table(title="Studies and what links to them (explore downstream, depth 1)")
        for column in ("study", "title", "linked records"):
            studies.add_column(column)
        for study in (item for item in items if item["item_subtype"] == "STUDY"):
            graph = http.get(
                f"{prov}/explore/downstream", params={"starting_id": study["id"], "depth": 1}
            ).json()
            linked = Counter(n["item_subtype"] for n in graph["graph"]["nodes"] if n["id"] != study["id"])
            studies.add_row(
                study["id"], study["title"], ", ".join(f"{n} {s}" for s, n in linked.items()) or "-"
            )
        console.print(studies)

        run_id = summary.notable["model run with annotations"]
        trial = http.post(f"{prov}/model_run/delete", json={"record_id": run_id, "trial_mode": True}).json()
        kinds = Counter(action["action_type"] for action in trial["diff"])
        console.print(f"\nTrial delete of model run {run_id} (nothing changed): {dict(kinds)}")

        fetched = http.get(f"{registry}/registry/activity/model_run/fetch", params={"id": run_id}).json()
        record = fetched["item"]["record"]
        record["description"] = "Description corrected by the provena-ops demo."
        session = http.post(
            f"{prov}/model_run/update",
            json={"model_run_id": run_id, "reason": "Demo: fix the description", "record": record},
        ).json()["session_id"]
        console.print(f"Edited {run_id} through prov /model_run/update; job {session}:")
        seen: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            response = http.get(f"{jobs}/jobs/user/fetch", params={"session_id": session})
            status = (
                response.json()["job"]["status"] if response.status_code == 200 else "(row not written yet)"
            )
            if not seen or seen[-1] != status:
                seen.append(status)
                console.print(f"  -> {status}")
            if status in ("SUCCEEDED", "FAILED"):
                break
            time.sleep(0.05)
        after = http.get(f"{registry}/registry/activity/model_run/fetch", params={"id": run_id}).json()[
            "item"
        ]
        console.print(
            f"Now: description={after['record']['description']!r}, record_status={after['record_status']}, "
            f"history entries={len(after['history'])} (latest: {after['history'][0]['reason']!r})"
        )
        http.close()
    example = Path(__file__).resolve().parents[2] / "playbooks" / "examples" / "delete-studies.yaml"
    if example.exists():
        _plan_and_apply(example)
    console.rule("Done")
    console.print(
        f"The demo registry is in {DEMO_DB}. Serve it yourself with:\n"
        f"  .venv/bin/provena-ops sandbox serve --db {DEMO_DB}"
    )


class _DemoUI:
    """apply's questions answered for the demo: the plan is printed once, approval is given."""

    reading = None

    def note(self, text: str) -> None:
        console.print(f"note: {text}")

    def show(self, plan: Plan) -> None:
        render_terminal(plan, console)

    def confirm(self, plan: Plan, target: Target) -> bool:
        return True

    def executing(self, plan: Plan) -> None:
        return None


def _plan_and_apply(example: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="provena-ops-demo-") as directory:
        workspace = Path(directory)
        console.rule("provena-ops apply playbooks/examples/delete-studies.yaml --auto-approve")
        console.print("[dim](the sandbox environment, in a fresh copy: .provena-ops/sandbox.db)[/]")
        first = apply(
            example, _DemoUI(), where=TargetArgs(cwd=workspace), options=ApplyOptions(auto_approve=True)
        )
        console.print(f"[bold]{first.recap.line()}[/]")
        console.rule("provena-ops plan playbooks/examples/delete-studies.yaml, again")
        render_terminal(plan_playbook(example, TargetArgs(cwd=workspace)), console)
        console.print("Nothing left to do: applying again would write nothing.")
        console.rule(f"provena-ops log show {first.run_id}")
        render_run(first.journal, console)


if __name__ == "__main__":
    main()
