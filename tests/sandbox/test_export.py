"""`sandbox export`: the registry in Provena's admin export form plus the graph, which `sandbox load` reads
back exactly, so a rehearsal's before and after can be compared by anyone with diff."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.sandbox.test_cli import in_process, run_in_process, snapshot

__all__ = ["in_process"]  # the fixture, used by name


def test_an_export_loads_back_into_an_empty_sandbox_byte_for_byte(
    sandbox_db: Path, tmp_path: Path, in_process: None
) -> None:
    first = run_in_process("sandbox", "export", "first.json", "--db", sandbox_db)
    assert first.code == 0, first.stderr
    assert first.stdout.startswith("Exported 113 items and a graph of ")
    document = json.loads((tmp_path / "first.json").read_text())
    assert [bundle["id"] for bundle in document["items"]] == sorted(b["id"] for b in document["items"])
    bundle = document["items"][0]
    assert set(bundle) == {"id", "item_payload", "auth_payload", "lock_payload"}  # Provena's BundledItem
    assert document["graph"]["links"] and all(link["record_ids"] for link in document["graph"]["links"])
    loaded = run_in_process("sandbox", "load", "first.json", "--db", tmp_path / "copy.db")
    assert loaded.code == 0, loaded.stderr
    assert "Loaded its graph: " in loaded.stdout and "Relodged" not in loaded.stdout
    again = run_in_process("sandbox", "export", "second.json", "--db", tmp_path / "copy.db")
    assert again.code == 0, again.stderr
    assert (tmp_path / "first.json").read_bytes() == (tmp_path / "second.json").read_bytes()
    # (the graph came as exported: links no registry record relodges, like a CREATE's, included)


@pytest.mark.parametrize(
    ("graph", "said"),
    [
        ({"nodes": [{"id": "x", "subtype": "S", "category": "C", "record_ids": "r"}], "links": []},
         "graph.nodes.0.record_ids: Input should be a valid list"),
        ({"nodes": [], "links": [{"source": "x"}]}, "graph.links.0.source_subtype: Field required"),
        ({"nodes": [], "links": [], "edges": []}, "graph.edges: Extra inputs are not permitted"),
        ([], "graph: Input should be a valid dictionary"),
    ],
)  # fmt: skip
def test_a_bad_graph_is_refused_with_where_and_the_sandbox_is_unchanged(
    sandbox_db: Path, tmp_path: Path, in_process: None, graph: object, said: str
) -> None:
    run_in_process("sandbox", "export", "good.json", "--db", sandbox_db)
    document = json.loads((tmp_path / "good.json").read_text())
    document["graph"] = graph
    (tmp_path / "bad.json").write_text(json.dumps(document))
    before = snapshot(sandbox_db)
    outcome = run_in_process("sandbox", "load", "bad.json", "--db", sandbox_db)
    outcome.assert_clean_error(said, "bad.json")
    assert snapshot(sandbox_db) == before


def test_export_of_a_missing_database_says_so(tmp_path: Path, in_process: None) -> None:
    outcome = run_in_process("sandbox", "export", "out.json", "--db", tmp_path / "none.db")
    outcome.assert_clean_error("no sandbox database at", "provena-ops sandbox seed")
    assert not (tmp_path / "none.db").exists() and not (tmp_path / "out.json").exists()


def test_export_never_replaces_its_database_a_pipe_or_another_file_and_reads_only(
    sandbox_db: Path, tmp_path: Path, in_process: None
) -> None:
    import os
    import sqlite3

    before = snapshot(sandbox_db)
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "notes.json").write_text('{"mine": 1}')
    for target, said in (
        (sandbox_db, "is the sandbox database itself; the sandbox export would replace it"),
        (tmp_path / "pipe", "is not a regular file"),
        (tmp_path, "is a directory"),
        (tmp_path / "notes.json", "exists and is not a sandbox export provena-ops wrote"),
    ):
        run_in_process("sandbox", "export", target, "--db", sandbox_db).assert_clean_error(said)
    assert snapshot(sandbox_db) == before and (tmp_path / "notes.json").read_text() == '{"mine": 1}'
    foreign = tmp_path / "foreign.db"
    connection = sqlite3.connect(foreign)
    connection.execute("CREATE TABLE mine (x)")
    connection.commit()
    connection.close()
    run_in_process("sandbox", "export", "x.json", "--db", foreign).assert_clean_error(
        "is not a sandbox database"
    )
    assert [row[0] for row in sqlite3.connect(foreign).execute("SELECT name FROM sqlite_master")] == ["mine"]
    printed = run_in_process("sandbox", "export", "-", "--db", sandbox_db)
    assert printed.code == 0 and json.loads(printed.stdout)["format"] == "provena-ops sandbox export 1"


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda d: d["items"].append(d["items"][0]), "appears twice"),
        (lambda d: d.update(format="something else"), "format: 'something else' is not"),
        (lambda d: d["graph"]["links"][0].update(source="nope-node"), "'nope-node'"),
    ],
    ids=["duplicate-id", "format", "link-to-no-node"],
)
def test_a_sandbox_export_that_is_not_whole_is_refused(
    sandbox_db: Path, tmp_path: Path, in_process: None, change: Any, said: str
) -> None:
    run_in_process("sandbox", "export", "good.json", "--db", sandbox_db)
    document = json.loads((tmp_path / "good.json").read_text())
    change(document)
    (tmp_path / "bad.json").write_text(json.dumps(document))
    before = snapshot(sandbox_db)
    run_in_process("sandbox", "load", "bad.json", "--db", sandbox_db).assert_clean_error(said)
    assert snapshot(sandbox_db) == before


def test_load_refuses_a_pipe_or_a_device_without_reading_it(
    sandbox_db: Path, tmp_path: Path, in_process: None
) -> None:
    import os

    os.mkfifo(tmp_path / "pipe")
    for source in (tmp_path / "pipe", Path("/dev/zero")):
        outcome = run_in_process("sandbox", "load", source, "--db", sandbox_db)
        outcome.assert_clean_error("not a regular file")
