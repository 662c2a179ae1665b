"""A mixed run of more than 1,000 actions undone over HTTP: export, apply, undo, export, and the two
exports equal less history entries and timestamps (items, access settings, locks, graph nodes and links).

Edits, relinks, model-run deletions, and study deletions with remove and with replace, on a registry of
1,200 model runs: the shapes an admin's clean-up takes, at a size where ordering and concurrency show.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provena_ops.apply.run import ApplyOptions
from provena_ops.apply.undo import UndoRequest, undo
from provena_ops.environments.target import TargetArgs
from provena_ops.sandbox import RunningSandbox, SandboxSettings, running_sandbox
from provena_ops.sandbox.context import Sandbox
from provena_ops.sandbox.seed import seed_demo
from tests.apply.conftest import FAST, RecordingUI, apply_with
from tests.apply.test_undo import differences, exported
from tests.conftest import Api

RUNS = 1_200


@pytest.fixture
def big_server(tmp_path: Path) -> Iterator[RunningSandbox]:
    path = tmp_path / "big.db"
    sandbox = Sandbox(SandboxSettings(db_path=path))
    seed_demo(sandbox, runs=RUNS)
    sandbox.store.close()
    with running_sandbox(SandboxSettings(db_path=path, random_seed=7)) as running:
        yield running


def mixed_playbook(server: RunningSandbox) -> tuple[str, int]:
    """The playbook and how many actions it plans: ~300 relinks with remove, ~300 with replace, two study
    deletions, 200 edits, ~100 links of runs without a study, 150 model-run deletions."""
    store = Sandbox(server.settings).store
    runs = sorted(store.items_of_subtype("MODEL_RUN"), key=lambda item: str(item["id"]))
    studies = sorted(str(item["id"]) for item in store.items_of_subtype("STUDY"))
    locked = {
        run["id"]
        for run in runs
        if (store.get_lock(run["id"]) or {}).get("lock_information", {}).get("locked")
    }
    store.close()
    by_study: dict[str | None, list[str]] = {}
    for run in runs:
        if run["id"] in locked or run["record_status"] == "COMPLETE":  # locked, or never lodged
            continue
        by_study.setdefault(run["record"].get("study_id"), []).append(str(run["id"]))
    first, removed, replaced, kept = studies[:4]
    edited, linked, deleted = by_study[kept][:200], by_study[None][:100], by_study[first][:150]
    text = f"""version: 1
name: mixed clean-up
environment: rehearsal
operations:
  - op: delete_studies
    linked_model_runs: remove
    studies: [{removed}]
  - op: delete_studies
    linked_model_runs: replace
    replace_with: {kept}
    studies: [{replaced}]
  - op: update_model_runs
    reason: descriptions reworded
    model_runs: [{", ".join(edited)}]
    set:
      description: Reworded in the clean-up.
  - op: link_studies
    study: {kept}
    model_runs: [{", ".join(linked)}]
  - op: delete_model_runs
    model_runs: [{", ".join(deleted)}]
"""
    actions = len(by_study[removed]) + len(by_study[replaced]) + 2 + len(edited) + len(linked) + len(deleted)
    return text, actions


@pytest.mark.timeout(360)  # about 100 s alone; a loaded machine with four workers doubles it
def test_a_mixed_run_of_over_a_thousand_actions_is_undone_to_the_registry_it_found(
    big_server: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = Api(big_server)
    try:
        environments = tmp_path / "environments.json"
        endpoints = ", ".join(f'"{key}": "{value}"' for key, value in big_server.endpoints.items())
        environments.write_text(
            '{"envs": [{"name": "rehearsal", "stage": "DEV", "domain": "sandbox.invalid", '
            f'"realm_name": "provena", {endpoints}}}]}}'
        )
        monkeypatch.setenv("PROVENA_OPS_ACCESS_TOKEN", api.token("admin", lifetime=3600))
        monkeypatch.setenv("PROVENA_OPS_LOCK_DIR", str(tmp_path / "locks"))
        text, planned = mixed_playbook(big_server)
        assert planned >= 1_000
        (tmp_path / "mixed.yaml").write_text(text)
        before = exported(big_server, tmp_path / "before.json")
        started = time.perf_counter()
        options: dict[str, Any] = {"auto_approve": True, "job_wait": FAST, "parallelism": 16}
        applied = apply_with(
            tmp_path / "mixed.yaml", RecordingUI(), environment="rehearsal", environments_file=environments,
            cwd=tmp_path, **options,
        )  # fmt: skip
        assert applied.recap.succeeded and applied.recap.changed == planned, applied.outcomes
        applying, started = time.perf_counter() - started, time.perf_counter()
        undone = undo(
            UndoRequest("last"),
            RecordingUI(),
            where=TargetArgs(environments_file=environments, cwd=tmp_path),
            options=ApplyOptions(**options),
        )
        assert undone.recap.succeeded and undone.recap.changed == planned, undone.outcomes
        undoing = time.perf_counter() - started
        assert differences(before, exported(big_server, tmp_path / "after.json")) == []
        graph = before["graph"]
        print(
            f"{planned:,} actions: apply {applying:.1f} s, undo {undoing:.1f} s; exports equal over "
            f"{len(before['items']):,} items, {len(graph['nodes']):,} nodes, {len(graph['links']):,} links"
        )
    finally:
        api.close()
