"""Storage safety: the sandbox's SQLite state survives SIGKILL and concurrent writers.

What the store promises (store.py, jobs.py): every state change is one `BEGIN IMMEDIATE`
transaction; a registry item is one row whose `data` column holds the whole item *including its
history*, mirrored into indexed columns (subtype, record_type, timestamps, display_name); a job's
whole effect (registry update, graph diff, completion update) commits together with its
SUCCEEDED transition. So after a kill, for every item:

* the row's columns agree with its JSON, and history ids are unique and newest-first;
* the newest history entry is the item's current domain info (an update landed completely or not
  at all);
* every write the server acknowledged is there; nothing else is;
* a model run's update shows up as an adjacent (completion, reason) pair exactly when its job row
  says SUCCEEDED, and the run's graph tags match its record's study link.

Servers here are real `provena-ops sandbox serve` subprocesses, killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from provena_ops.sandbox.graph import RecordGraph, diff_graphs
from provena_ops.sandbox.realm import DEFAULT_USERS, Realm
from provena_ops.sandbox.seed import SeedSummary
from provena_ops.sandbox.store import Store
from tests.conftest import Api
from tests.sandbox.seeded import COMPLETION, FINAL, run_id, studies

INITIAL = "Initial record creation"
STUDY = "/registry/activity/study"
MODEL_RUN = "/registry/activity/model_run"


# ---- seeded names ---------------------------------------------------------------------------------


# ---- a served subprocess --------------------------------------------------------------------------


def provena_ops_command() -> list[str]:
    script = Path(sys.executable).with_name("provena-ops")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "provena_ops"]


@dataclass
class Served:
    process: subprocess.Popen[str]
    urls: dict[str, str]

    @property
    def registry(self) -> str:
        return self.urls["registry_api_endpoint_override"]

    @property
    def prov(self) -> str:
        return self.urls["prov_api_endpoint_override"]

    @property
    def jobs(self) -> str:
        return self.urls["jobs_service_api_endpoint_override"]

    @property
    def keycloak(self) -> str:
        return self.urls["keycloak_endpoint_override"]

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no checkpoint, no closing of the database."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)

    def terminate(self) -> None:
        """SIGTERM: uvicorn's graceful shutdown (the job worker is cancelled, the store closed)."""
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(timeout=15)


class ServerExited(AssertionError):
    """`sandbox serve` ended before it answered requests."""


@contextlib.contextmanager
def served(db: Path, *options: str) -> Iterator[Served]:
    """`provena-ops sandbox serve --port 0 --db DB` in a subprocess, always killed at the end."""
    log = db.with_name(db.name + ".serve.log")
    with log.open("ab") as stderr:
        process = subprocess.Popen(
            [*provena_ops_command(), "sandbox", "serve", "--port", "0", "--db", str(db), *options],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        while not lines or not lines[-1].startswith("}"):
            line = process.stdout.readline()
            if not line:
                raise ServerExited(f"sandbox serve exited ({process.wait()}): {log.read_text()}")
            lines.append(line)
        urls: dict[str, str] = json.loads("".join(lines))
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(urls["registry_api_endpoint_override"] + "/", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                if process.poll() is not None:
                    raise ServerExited(f"sandbox serve exited ({process.returncode})") from None
            assert time.monotonic() < deadline, "the served sandbox never answered"
            time.sleep(0.05)
        yield Served(process, urls)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def mint(db: Path, user: str = "admin", lifetime: int = 900) -> dict[str, str]:
    """Bearer headers signed with the realm key stored in `db` (open it while no server writes)."""
    store = Store(db)
    try:
        token = Realm(store).mint_access_token(user, list(DEFAULT_USERS[user]["roles"]), lifetime=lifetime)
    finally:
        store.close()
    return {"Authorization": f"Bearer {token}"}


def fetch(
    client: httpx.Client, base: str, prefix: str, item_id: str, headers: dict[str, str]
) -> dict[str, Any]:
    """The item as stored (general fetch, without DynamoDB's partition key), to compare with the file;
    typed fetches add the null fields that storage leaves out. `prefix` checks the subtype."""
    response = client.get(f"{base}/registry/general/fetch", params={"id": item_id}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"]["success"] is True, response.text
    item: dict[str, Any] = response.json()["item"]
    assert prefix.endswith(item["item_subtype"].lower()), (prefix, item["item_subtype"])
    del item["universal_partition_key"]
    return item


def wait_jobs_final(
    client: httpx.Client, jobs_base: str, sessions: list[str], headers: dict[str, str], timeout: float
) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    final: dict[str, dict[str, Any]] = {}
    while len(final) < len(sessions):
        for session_id in sessions:
            if session_id in final:
                continue
            response = client.get(
                f"{jobs_base}/jobs/admin/fetch", params={"session_id": session_id}, headers=headers
            )
            assert response.status_code == 200, response.text
            job = response.json()["job"]
            if job["status"] in FINAL:
                final[session_id] = job
        assert time.monotonic() < deadline, f"{len(sessions) - len(final)} jobs never finished"
        time.sleep(0.05)
    return final


# ---- reading the database file directly --------------------------------------------------------------


@dataclass
class Snapshot:
    items: dict[str, dict[str, Any]]
    jobs: dict[str, dict[str, Any]]
    # run id -> study ids its graph links to (wasInformedBy links tagged with the run)
    informed_by: dict[str, set[str]] = field(default_factory=dict)
    tagged_records: set[str] = field(default_factory=set)


def inspect_database(db: Path) -> Snapshot:
    """Open the file with plain sqlite3 and check every storage invariant that holds for all items."""
    with contextlib.closing(sqlite3.connect(str(db))) as conn:
        conn.row_factory = sqlite3.Row
        assert [tuple(r) for r in conn.execute("PRAGMA integrity_check")] == [("ok",)]

        items: dict[str, dict[str, Any]] = {}
        for row in conn.execute("SELECT * FROM items"):
            item = json.loads(row["data"])
            item_id = row["id"]
            assert item["id"] == item_id
            assert row["subtype"] == item["item_subtype"], item_id
            assert row["record_type"] == item["record_type"], item_id
            assert row["created_ts"] == item["created_timestamp"], item_id
            assert row["updated_ts"] == item["updated_timestamp"], item_id
            assert row["display_name"] == (item.get("display_name") or ""), item_id
            if item["record_type"] == "COMPLETE_ITEM":
                history = item["history"]
                assert history, item_id
                ids = [int(entry["id"]) for entry in history]
                assert ids == sorted(set(ids), reverse=True), (item_id, ids)  # unique, newest first
                assert history[-1]["reason"] == INITIAL, item_id
                # The newest history entry is exactly the current domain info.
                for key, value in history[0]["item"].items():
                    assert item.get(key) == value, (item_id, key)
            items[item_id] = item

        for table in ("auth", "locks"):
            ids_in_table = {r["id"] for r in conn.execute(f"SELECT id FROM {table}")}
            assert ids_in_table == set(items), table

        # Graph: tags point at existing elements, every element is tagged, a link's endpoints are
        # tagged with every record that tags the link.
        nodes = {
            r["nid"]: (r["id"], r["subtype"], r["category"]) for r in conn.execute("SELECT * FROM nodes")
        }
        node_tags: dict[tuple[str, str, str], set[str]] = {key: set() for key in nodes.values()}
        for r in conn.execute("SELECT nid, record_id FROM node_tags"):
            assert r["nid"] in nodes, "node tag without a node"
            node_tags[nodes[r["nid"]]].add(r["record_id"])
        assert all(node_tags.values()), "untagged node"
        links = {r["lid"]: r for r in conn.execute("SELECT * FROM links")}
        link_tags: dict[int, set[str]] = {lid: set() for lid in links}
        for r in conn.execute("SELECT lid, record_id FROM link_tags"):
            assert r["lid"] in links, "link tag without a link"
            link_tags[r["lid"]].add(r["record_id"])
        assert all(link_tags.values()), "untagged link"
        informed_by: dict[str, set[str]] = {}
        for lid, link in links.items():
            source = (link["source"], link["source_subtype"], link["source_category"])
            target = (link["target"], link["target_subtype"], link["target_category"])
            for record_id in link_tags[lid]:
                assert record_id in node_tags.get(source, set()), (lid, record_id)
                assert record_id in node_tags.get(target, set()), (lid, record_id)
                if link["relation"] == "wasInformedBy" and record_id == link["source"]:
                    informed_by.setdefault(record_id, set()).add(link["target"])
        tagged = {record for tags in node_tags.values() for record in tags}

        jobs = {
            r["session_id"]: {**json.loads(r["data"]), "_status": r["status"]}
            for r in conn.execute("SELECT session_id, status, data FROM jobs")
        }
        for job in jobs.values():
            assert job["status"] == job["_status"]
            assert job["status"] in ("PENDING", "DEQUEUED", "IN_PROGRESS", "SUCCEEDED", "FAILED")
    return Snapshot(items, jobs, informed_by, tagged)


def check_model_runs(snapshot: Snapshot, runs: list[str]) -> None:
    """Each update job's effect is all-or-nothing and agrees with its job row and the graph."""
    for run in runs:
        item = snapshot.items[run]
        reasons = [entry["reason"] for entry in item["history"]]
        for index, reason in enumerate(reasons[:-1]):
            if reason == COMPLETION:
                assert reasons[index + 1] not in (COMPLETION, INITIAL), (run, reasons)
            else:
                assert index > 0, (run, reasons)
                assert reasons[index - 1] == COMPLETION, (run, reasons)
        study = item["record"].get("study_id")
        if run in snapshot.tagged_records:
            assert snapshot.informed_by.get(run, set()) == ({study} if study else set()), run
    for session_id, job in snapshot.jobs.items():
        if job["job_sub_type"] != "MODEL_RUN_UPDATE":
            continue
        run = job["payload"]["model_run_record_id"]
        count = [e["reason"] for e in snapshot.items[run]["history"]].count(job["payload"]["reason"])
        assert count == (1 if job["status"] == "SUCCEEDED" else 0), (session_id, job["status"], count)


def test_seeded_database_satisfies_the_invariants(sandbox_db: Path, demo: SeedSummary) -> None:
    """The checker itself: the freshly seeded registry passes it."""
    snapshot = inspect_database(sandbox_db)
    runs = [run_id(demo, n) for n in range(8)]
    check_model_runs(snapshot, runs)
    assert snapshot.informed_by[run_id(demo, 0)] == {studies(demo)[0]}


def test_checker_detects_a_half_applied_update(sandbox_db: Path, demo: SeedSummary) -> None:
    """The invariants are not vacuous: a current record that disagrees with its newest history
    entry, a lost index column, or a SUCCEEDED job without its effect are all caught."""
    study = studies(demo)[0]
    with contextlib.closing(sqlite3.connect(str(sandbox_db))) as conn:
        data = json.loads(conn.execute("SELECT data FROM items WHERE id = ?", (study,)).fetchone()[0])
        data["title"] = "changed without a history entry"
        conn.execute("UPDATE items SET data = ? WHERE id = ?", (json.dumps(data), study))
        conn.commit()
    with pytest.raises(AssertionError):
        inspect_database(sandbox_db)
    with contextlib.closing(sqlite3.connect(str(sandbox_db))) as conn:
        data["title"] = data["history"][0]["item"]["title"]
        conn.execute("UPDATE items SET data = ?, updated_ts = 1 WHERE id = ?", (json.dumps(data), study))
        conn.commit()
    with pytest.raises(AssertionError):
        inspect_database(sandbox_db)
    with contextlib.closing(sqlite3.connect(str(sandbox_db))) as conn:
        conn.execute("UPDATE items SET updated_ts = ? WHERE id = ?", (data["updated_timestamp"], study))
        run = run_id(demo, 2)
        job = {
            "session_id": "s-1",
            "username": "admin",
            "status": "SUCCEEDED",
            "job_sub_type": "MODEL_RUN_UPDATE",
            "payload": {"model_run_record_id": run, "reason": "never landed"},
        }
        conn.execute(
            "INSERT INTO jobs (session_id, username, status, visible_at, next_at, data) "
            "VALUES ('s-1', 'admin', 'SUCCEEDED', 0, 0, ?)",
            (json.dumps(job),),
        )
        conn.commit()
    snapshot = inspect_database(sandbox_db)
    with pytest.raises(AssertionError):
        check_model_runs(snapshot, [run])


# ---- jobs survive a restart ----------------------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("kill_at", "delay_ms", "graceful"),
    [("PENDING", 2000, False), ("IN_PROGRESS", 700, False), ("DEQUEUED", 700, True)],
    ids=["sigkill-pending", "sigkill-in-progress", "sigterm-dequeued"],
)
def test_job_survives_a_server_stop_and_finishes_after_restart(
    sandbox_db: Path, demo: SeedSummary, kill_at: str, delay_ms: int, graceful: bool
) -> None:
    run, old_study, new_study = run_id(demo, 2), studies(demo)[2], studies(demo)[3]
    headers = mint(sandbox_db)
    reason = f"Survives a kill while {kill_at}"
    with httpx.Client(timeout=10) as client:
        with served(sandbox_db, "--job-delay-ms", str(delay_ms)) as first:
            before = fetch(client, first.registry, MODEL_RUN, run, headers)
            assert before["record"]["study_id"] == old_study
            record = dict(before["record"], study_id=new_study, description="Edited before a crash.")
            response = client.post(
                f"{first.prov}/model_run/update",
                json={"model_run_id": run, "reason": reason, "record": record},
                headers=headers,
            )
            assert response.status_code == 200, response.text
            session_id = response.json()["session_id"]
            deadline = time.monotonic() + 20
            while True:
                polled = client.get(
                    f"{first.jobs}/jobs/user/fetch", params={"session_id": session_id}, headers=headers
                )
                assert polled.status_code == 200, polled.text
                status = polled.json()["job"]["status"]
                if status == kill_at:
                    break
                assert status not in FINAL, f"the job finished before it could be killed: {status}"
                assert time.monotonic() < deadline
                time.sleep(0.02)
            if graceful:
                first.terminate()
            else:
                first.kill()

        interim = inspect_database(sandbox_db)
        assert interim.jobs[session_id]["status"] == kill_at
        assert interim.items[run] == before  # nothing of the job has landed yet
        check_model_runs(interim, [run])

        with served(sandbox_db, "--job-delay-ms", "100") as second:
            job = wait_jobs_final(client, second.jobs, [session_id], headers, timeout=20)[session_id]
            assert job["status"] == "SUCCEEDED", job
            assert job["result"]["record"]["id"] == run
            after = fetch(client, second.registry, MODEL_RUN, run, headers)
            assert after["record"] == record
            assert len(after["history"]) == len(before["history"]) + 2  # applied exactly once
            assert [h["reason"] for h in after["history"][:2]] == [COMPLETION, reason]
            assert after["history"][2:] == before["history"]
            lineage = client.get(
                f"{second.prov}/explore/upstream", params={"starting_id": run, "depth": 1}, headers=headers
            )
            upstream = {node["id"] for node in lineage.json()["graph"]["nodes"]}
            assert new_study in upstream
            assert old_study not in upstream

    final = inspect_database(sandbox_db)
    check_model_runs(final, [run])


# ---- SIGKILL in the middle of concurrent writes -------------------------------------------------------


@dataclass
class Writer:
    """One thread's sequential stream of study updates; markers are unique per request."""

    name: str
    study: str
    acked: list[str] = field(default_factory=list)
    in_flight: str | None = None
    unexpected: list[str] = field(default_factory=list)

    def run(self, base: str, headers: dict[str, str], stop: threading.Event) -> None:
        with httpx.Client(timeout=10) as client:
            number = 0
            while not stop.is_set():
                marker = f"{self.name}-{number:04d}"
                self.in_flight = marker
                try:
                    response = client.put(
                        f"{base}{STUDY}/update",
                        params={"id": self.study, "reason": f"write {marker}"},
                        json={"display_name": marker, "title": marker, "description": f"About {marker}."},
                        headers=headers,
                    )
                except httpx.TransportError:
                    return  # the server is gone; this request may or may not have landed
                if response.status_code == 200 and response.json()["status"]["success"] is True:
                    self.acked.append(marker)
                else:
                    self.unexpected.append(f"{response.status_code} {response.text}")
                self.in_flight = None
                number += 1


@dataclass
class JobSubmitter:
    runs: list[str]
    studies: list[str]
    records: dict[str, dict[str, Any]]
    acked: list[tuple[str, str, str]] = field(default_factory=list)  # (session, run, reason)
    unexpected: list[str] = field(default_factory=list)

    def run(self, base: str, headers: dict[str, str], stop: threading.Event) -> None:
        with httpx.Client(timeout=10) as client:
            number = 0
            while not stop.is_set():
                run = self.runs[number % len(self.runs)]
                reason = f"job {number:04d}"
                record = dict(self.records[run], study_id=self.studies[number % len(self.studies)])
                try:
                    response = client.post(
                        f"{base}/model_run/update",
                        json={"model_run_id": run, "reason": reason, "record": record},
                        headers=headers,
                    )
                except httpx.TransportError:
                    return
                if response.status_code == 200:
                    self.acked.append((response.json()["session_id"], run, reason))
                else:
                    self.unexpected.append(f"{response.status_code} {response.text}")
                number += 1
                time.sleep(0.01)


@pytest.mark.timeout(60)
def test_sigkill_during_concurrent_writes_leaves_a_consistent_database(
    sandbox_db: Path, demo: SeedSummary
) -> None:
    all_studies = studies(demo)
    hot = all_studies[0]
    runs = [run_id(demo, n) for n in (0, 1, 2, 3)]  # run 4 is the locked record
    headers = mint(sandbox_db)
    before = inspect_database(sandbox_db)
    writers = [Writer(f"own{n}", all_studies[n]) for n in range(1, 5)]
    writers += [Writer(f"hot{n}", hot) for n in range(4)]
    submitter = JobSubmitter(runs, all_studies[:4], {r: before.items[r]["record"] for r in runs})
    stop = threading.Event()

    with served(sandbox_db, "--job-delay-ms", "20") as first:
        threads = [
            threading.Thread(target=w.run, args=(first.registry, headers, stop), daemon=True) for w in writers
        ]
        threads.append(threading.Thread(target=submitter.run, args=(first.prov, headers, stop), daemon=True))
        for thread in threads:
            thread.start()
        try:
            deadline = time.monotonic() + 15
            while sum(len(w.acked) for w in writers) < 150 or len(submitter.acked) < 15:
                assert time.monotonic() < deadline, "writers made too little progress"
                assert all(t.is_alive() for t in threads), "a writer stopped early"
                time.sleep(0.01)
            first.kill()  # mid-stream: every thread has a request on the wire or about to be
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=15)
        assert not any(t.is_alive() for t in threads)

    unexpected = [problem for w in writers for problem in w.unexpected] + submitter.unexpected
    assert unexpected == [], unexpected[:3]

    snapshot = inspect_database(sandbox_db)

    # Studies: acknowledged writes are all there, in order; at most the in-flight one besides.
    by_study: dict[str, list[Writer]] = {}
    for writer in writers:
        by_study.setdefault(writer.study, []).append(writer)
    for study, group in by_study.items():
        item = snapshot.items[study]
        history = item["history"]
        reasons = [entry["reason"] for entry in history[:-1]]
        assert all(r.startswith("write ") for r in reasons), reasons[:5]
        landed = [r.removeprefix("write ") for r in reasons]
        assert len(landed) == len(set(landed))
        assert len(history) == len(before.items[study]["history"]) + len(landed)
        for writer in group:
            mine = sorted(m for m in landed if m.startswith(writer.name + "-"))
            assert set(writer.acked) <= set(mine), f"acknowledged write of {writer.name} lost"
            extra = set(mine) - set(writer.acked)
            assert extra <= {writer.in_flight}, extra
            # One thread writes sequentially: its markers land in order.
            order = [m for m in reversed(landed) if m.startswith(writer.name + "-")]
            assert order == mine
        newest = history[0]["item"]["title"]
        assert item["title"] == item["display_name"] == newest
        assert item["description"] == f"About {newest}."

    # Model runs: job launches that were acknowledged are stored; effects are all-or-nothing.
    for session_id, _, _ in submitter.acked:
        assert session_id in snapshot.jobs, "acknowledged job launch lost"
    check_model_runs(snapshot, runs)

    # The server comes back, serves what the file holds, and finishes the interrupted jobs.
    with served(sandbox_db, "--job-delay-ms", "0") as second, httpx.Client(timeout=10) as client:
        for study in by_study:
            assert fetch(client, second.registry, STUDY, study, headers) == snapshot.items[study]
        sessions = [s for s, job in snapshot.jobs.items() if job["job_sub_type"] == "MODEL_RUN_UPDATE"]
        finished = wait_jobs_final(client, second.jobs, sessions, headers, timeout=20)
        assert {job["status"] for job in finished.values()} == {"SUCCEEDED"}
        probe = client.put(
            f"{second.registry}{STUDY}/update",
            params={"id": hot, "reason": "after restart"},
            json={"display_name": "after", "title": "after", "description": "About after."},
            headers=headers,
        )
        assert probe.status_code == 200
        assert probe.json()["status"]["success"] is True

    after_restart = inspect_database(sandbox_db)
    check_model_runs(after_restart, runs)
    for session_id, run, reason in submitter.acked:
        reasons = [e["reason"] for e in after_restart.items[run]["history"]]
        assert reasons.count(reason) == 1, (session_id, reason)


@pytest.mark.timeout(60)
def test_two_servers_on_one_database_never_run_a_job_twice(sandbox_db: Path, demo: SeedSummary) -> None:
    """A restart that overlaps the old process (or a second `serve` on the same --db) must not
    apply a job twice. Refusing to serve a database another server holds is a fine answer too."""
    runs = [run_id(demo, n) for n in (0, 1, 2, 3)]
    headers = mint(sandbox_db)
    with served(sandbox_db, "--job-delay-ms", "1000") as first, httpx.Client(timeout=10) as client:
        records = {run: fetch(client, first.registry, MODEL_RUN, run, headers)["record"] for run in runs}
        sessions = []
        for number in range(8):
            run = runs[number % len(runs)]
            response = client.post(
                f"{first.prov}/model_run/update",
                json={"model_run_id": run, "reason": f"overlap {number}", "record": records[run]},
                headers=headers,
            )
            assert response.status_code == 200, response.text
            sessions.append(response.json()["session_id"])
        try:
            with served(sandbox_db, "--job-delay-ms", "1000"):
                wait_jobs_final(client, first.jobs, sessions, headers, timeout=30)
                time.sleep(0.5)  # let a worker holding stale copies catch up
        except ServerExited:
            wait_jobs_final(client, first.jobs, sessions, headers, timeout=30)
    check_model_runs(inspect_database(sandbox_db), runs)


# ---- concurrent writes without a kill ------------------------------------------------------------------


def test_parallel_updates_to_one_record_all_land(api: Api, demo: SeedSummary) -> None:
    study = studies(demo)[1]
    headers = api.auth()
    count = 32

    def update(number: int) -> httpx.Response:
        with httpx.Client(timeout=30) as client:
            return client.put(
                f"{api.registry}{STUDY}/update",
                params={"id": study, "reason": f"parallel {number}"},
                json={"display_name": f"P{number}", "title": f"P{number}", "description": "parallel"},
                headers=headers,
            )

    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(update, range(count)))
    # Nothing to refuse here: every update must land, none lost to another's write.
    assert [(r.status_code, r.json()["status"]["success"]) for r in responses] == [(200, True)] * count
    item = api.http.get(f"{api.registry}{STUDY}/fetch", params={"id": study}, headers=headers).json()["item"]
    history = item["history"]
    assert [int(h["id"]) for h in history] == list(range(count, -1, -1))
    assert {h["reason"] for h in history[:-1]} == {f"parallel {number}" for number in range(count)}
    assert item["title"] == history[0]["item"]["title"]


@pytest.mark.timeout(60)
def test_parallel_model_run_jobs_on_one_run_apply_each_exactly_once(api: Api, demo: SeedSummary) -> None:
    run = run_id(demo, 2)
    headers = api.auth()
    before = api.http.get(f"{api.registry}{MODEL_RUN}/fetch", params={"id": run}, headers=headers).json()
    record = before["item"]["record"]
    count = 12

    def submit(number: int) -> str:
        with httpx.Client(timeout=30) as client:
            response = client.post(
                f"{api.prov}/model_run/update",
                json={
                    "model_run_id": run,
                    "reason": f"parallel job {number}",
                    "record": dict(record, study_id=studies(demo)[number % 4]),
                },
                headers=headers,
            )
        assert response.status_code == 200, response.text
        session_id: str = response.json()["session_id"]
        return session_id

    with ThreadPoolExecutor(max_workers=12) as pool:
        sessions = list(pool.map(submit, range(count)))
    with httpx.Client(timeout=30) as client:
        finished = wait_jobs_final(client, api.jobs, sessions, headers, timeout=30)
    assert {job["status"] for job in finished.values()} == {"SUCCEEDED"}
    item = api.http.get(f"{api.registry}{MODEL_RUN}/fetch", params={"id": run}, headers=headers).json()[
        "item"
    ]
    reasons = [h["reason"] for h in item["history"]]
    assert len(reasons) == len(before["item"]["history"]) + 2 * count
    for number in range(count):
        index = reasons.index(f"parallel job {number}")
        assert reasons.count(f"parallel job {number}") == 1
        assert reasons[index - 1] == COMPLETION  # each job's two entries are adjacent
    # The graph follows the job that ran last (the newest history entry).
    lineage = api.http.get(
        f"{api.prov}/explore/upstream", params={"starting_id": run, "depth": 1}, headers=headers
    ).json()
    upstream_studies = {n["id"] for n in lineage["graph"]["nodes"] if n["item_subtype"] == "STUDY"}
    assert upstream_studies == {item["record"]["study_id"]}


# ---- the realm's signing key -----------------------------------------------------------------------------


def device_login(client: httpx.Client, keycloak: str, user: str) -> dict[str, Any]:
    started = client.post(
        f"{keycloak}/protocol/openid-connect/auth/device", data={"client_id": "client-tools", "scope": ""}
    )
    assert started.status_code == 200, started.text
    codes = started.json()
    approved = client.post(
        f"{keycloak}/device",
        data={"user_code": codes["user_code"], "username": user, "password": "sandbox", "action": "approve"},
    )
    assert approved.status_code == 200, approved.text
    granted = client.post(
        f"{keycloak}/protocol/openid-connect/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": codes["device_code"],
            "client_id": "client-tools",
        },
    )
    assert granted.status_code == 200, granted.text
    tokens: dict[str, Any] = granted.json()
    return tokens


@pytest.mark.timeout(60)
def test_realm_signing_key_and_sessions_survive_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "fresh.db"  # no file yet: the server creates the realm key itself
    with httpx.Client(timeout=10) as client:
        with served(db) as first:
            public_key = client.get(first.keycloak).json()["public_key"]
            tokens = device_login(client, first.keycloak, "alice")
            service = client.post(
                f"{first.keycloak}/protocol/openid-connect/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": "provena-ops-ci",
                    "client_secret": "sandbox-client-secret",
                },
            )
            assert service.status_code == 200, service.text
            service_token = service.json()["access_token"]
            # A token minted by another process (the CLI) from the same database.
            cli = subprocess.run(
                [*provena_ops_command(), "sandbox", "token", "--user", "bob", "--db", str(db)],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            )
            cli_token = cli.stdout.strip()
            check = f"{first.registry}/check-access/check-general-access"
            assert client.get(check, headers={"Authorization": f"Bearer {cli_token}"}).status_code == 200
            first.kill()

        with served(db) as second:
            assert client.get(second.keycloak).json()["public_key"] == public_key
            for token, user in ((tokens["access_token"], "alice"), (cli_token, "bob")):
                response = client.get(
                    f"{second.registry}/check-access/check-general-access",
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert response.status_code == 200, response.text
                assert response.json()["username"] == user
            admin = client.get(
                f"{second.prov}/check-access/check-admin-access",
                headers={"Authorization": f"Bearer {service_token}"},
            )
            assert admin.status_code == 200, admin.text
            refreshed = client.post(
                f"{second.keycloak}/protocol/openid-connect/token",
                data={
                    "grant_type": "refresh_token",
                    "client_id": "client-tools",
                    "refresh_token": tokens["refresh_token"],
                },
            )
            assert refreshed.status_code == 200, refreshed.text
            again = client.get(
                f"{second.registry}/check-access/check-general-access",
                headers={"Authorization": f"Bearer {refreshed.json()['access_token']}"},
            )
            assert again.status_code == 200


def test_cached_graph_tags_follow_writes_from_this_and_other_connections(
    sandbox_db: Path, demo: SeedSummary
) -> None:
    """Trial deletes reuse the tags of shared graph elements until the database changes, by any writer."""
    reader, writer = Store(sandbox_db), Store(sandbox_db)
    try:
        run, other, third = run_id(demo, 0), run_id(demo, 4), run_id(demo, 8)  # runs 0, 4, 8 share a study

        def tagged_with(store: Store, record: str) -> set[str]:
            return {tag for tags in store.record_graph(run).nodes.values() for tag in tags if tag == record}

        assert tagged_with(reader, other) == {other}  # read once: the shared tags are now cached
        writer.apply_diff(diff_graphs(other, writer.record_graph(other), RecordGraph()))
        assert tagged_with(reader, other) == set()  # another connection's delete is seen
        reader.apply_diff(diff_graphs(third, reader.record_graph(third), RecordGraph()))
        assert tagged_with(reader, third) == set()  # and this connection's own
    finally:
        reader.close()
        writer.close()
