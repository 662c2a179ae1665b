"""Transient faults converge: a 700-action mixed playbook against a sandbox that answers one request in
five with a fault (500, 502, 503, 504, 429, a dropped connection, or an answer lost after the work was
done) is finished by at most two runs of the same command, and no write is made twice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from provena_ops.apply.executor import JobWait
from provena_ops.apply.run import ApplyResult
from provena_ops.sandbox import RunningSandbox, SandboxSettings, running_sandbox
from provena_ops.sandbox.context import Sandbox
from provena_ops.sandbox.seed import seed_demo
from tests.apply.conftest import RecordingUI, apply_with, history_length
from tests.conftest import Api
from tests.sandbox.seeded import run_id, set_faults

RUN_ROUTE = "/registry/activity/model_run"
ALL_FAULTS = ["500", "502", "503", "504", "429", "drop", "lost"]
WAIT = JobWait(timeout_s=120, first_poll_s=0.02, max_poll_s=0.2, lost_submission_s=3)
UPDATES, RELINKS, DELETES, RELODGES = 350, 150, 150, 50


@pytest.fixture(scope="module")
def large_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningSandbox, list[str]]]:
    path = tmp_path_factory.mktemp("converge") / "sandbox.db"
    sandbox = Sandbox(SandboxSettings(db_path=path))
    summary = seed_demo(sandbox, runs=760)
    sandbox.store.close()
    special = {summary.notable["locked record"], summary.notable["model run without graph (never lodged)"]}
    runs = [run for run in (run_id(summary, number) for number in range(740)) if run not in special]
    with running_sandbox(SandboxSettings(db_path=path, random_seed=13)) as running:
        yield running, runs


def playbook(runs: list[str], study: str) -> str:
    updates = runs[:UPDATES]
    relinks = runs[UPDATES : UPDATES + RELINKS]
    deletes = runs[UPDATES + RELINKS : UPDATES + RELINKS + DELETES]
    relodges = runs[UPDATES + RELINKS + DELETES : UPDATES + RELINKS + DELETES + RELODGES]
    operations = [
        {
            "op": "update_model_runs",
            "reason": "converge under faults",
            "model_runs": updates,
            "set": {"description": "checked under faults"},
            "annotations": {"set": {"audit": "2026"}},
        },
        {"op": "link_studies", "study": study, "model_runs": relinks, "replace_existing_links": True},
        {"op": "delete_model_runs", "model_runs": deletes},
        {"op": "relodge_model_runs", "model_runs": relodges},
    ]
    return json.dumps(
        {"version": 1, "name": "converge", "environment": "rehearsal", "operations": operations}, indent=1
    )


def test_a_700_action_playbook_converges_in_two_runs_under_20_percent_faults(
    large_server: tuple[RunningSandbox, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    running, runs = large_server
    api = Api(running)
    study = api.http.post(f"{api.registry}/registry/activity/study/list", json={}, headers=api.auth()).json()[
        "items"
    ][0]["id"]
    environments = tmp_path / "environments.json"
    env = {"name": "rehearsal", "stage": "DEV", "domain": "sandbox.invalid", "realm_name": "provena"}
    environments.write_text(json.dumps({"envs": [{**env, **running.endpoints}]}))
    path = tmp_path / "converge.yaml"
    path.write_text(playbook(runs, study))
    monkeypatch.setenv("PROVENA_OPS_ACCESS_TOKEN", api.token(lifetime=3600))
    monkeypatch.setenv("PROVENA_OPS_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.delenv("PROVENA_OPS_RETRY_BUDGET")  # the default budget, as an admin's run has it
    edited = runs[: UPDATES + RELINKS]
    before = {run: history_length(api, RUN_ROUTE, run) for run in edited}
    relodged = runs[UPDATES + RELINKS + DELETES : UPDATES + RELINKS + DELETES + RELODGES]
    for run in relodged:  # graphs lost (the registry record stays): relodging them is a change
        removed = api.http.post(
            f"{api.prov}/model_run/delete", json={"record_id": run, "trial_mode": False}, headers=api.auth()
        )
        assert removed.status_code == 200, removed.text
    set_faults(api, fault_rate=0.2, fault_kinds=ALL_FAULTS, retry_after_s=0)

    def attempt() -> ApplyResult:
        return apply_with(
            path, RecordingUI(), environment="rehearsal", environments_file=environments, cwd=tmp_path,
            auto_approve=True, parallelism=16, job_wait=WAIT,
        )  # fmt: skip

    first = attempt()
    results = [first] if first.recap.succeeded else [first, attempt()]
    set_faults(api, fault_rate=0)
    unsettled = {
        key: f"{outcome.result}: {outcome.detail}"
        for result in results
        for key, outcome in result.outcomes.items()
        if outcome.result in ("failed", "unknown", "skipped")
    }
    assert results[-1].recap.succeeded, (len(results), unsettled)
    assert first.plan.summary.changes == UPDATES + RELINKS + DELETES + RELODGES == 700
    for run in edited:  # one job per edited run: two history entries, never four
        assert history_length(api, RUN_ROUTE, run) == before[run] + 2, run
    deleted = runs[UPDATES + RELINKS : UPDATES + RELINKS + DELETES]
    assert all(history_length(api, RUN_ROUTE, run) == -1 for run in deleted)
    for run in relodged:
        upstream = api.http.get(
            f"{api.prov}/explore/upstream", params={"starting_id": run, "depth": 1}, headers=api.auth()
        )
        assert upstream.status_code == 200 and upstream.json()["graph"]["nodes"], run
    print(f"converged in {len(results)} run(s): {[r.recap.line() for r in results]}")
    api.close()
