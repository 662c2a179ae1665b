"""The sandbox's state: one SQLite file holding registry, auth, lock, graph and job tables.

Every state change runs in one `BEGIN IMMEDIATE` transaction (`Store.transaction`), so a killed
server never leaves half a change behind, and WAL lets readers in other processes (a second
`sandbox seed`, a test peeking at the file) proceed while the server writes.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic_core import to_json

from provena_ops.sandbox.graph import DiffAction, DiffActionType, Link, Node, TaggedGraph, Tags

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY,
    subtype TEXT NOT NULL,
    record_type TEXT NOT NULL,
    created_ts INTEGER NOT NULL,
    updated_ts INTEGER NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS items_by_updated ON items (updated_ts, id);
CREATE INDEX IF NOT EXISTS items_by_created ON items (created_ts, id);
CREATE INDEX IF NOT EXISTS items_by_name ON items (display_name, id);
CREATE INDEX IF NOT EXISTS items_by_subtype_updated ON items (subtype, updated_ts, id);
CREATE INDEX IF NOT EXISTS items_by_subtype_created ON items (subtype, created_ts, id);
CREATE INDEX IF NOT EXISTS items_by_subtype_name ON items (subtype, display_name, id);
CREATE TABLE IF NOT EXISTS auth (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS locks (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS user_links (username TEXT PRIMARY KEY, person_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS user_links_by_person ON user_links (person_id);
CREATE TABLE IF NOT EXISTS user_groups (
    group_id TEXT NOT NULL, username TEXT NOT NULL, PRIMARY KEY (group_id, username)
);
CREATE TABLE IF NOT EXISTS nodes (
    nid INTEGER PRIMARY KEY,
    id TEXT NOT NULL, subtype TEXT NOT NULL, category TEXT NOT NULL,
    UNIQUE (id, subtype, category)
);
CREATE TABLE IF NOT EXISTS node_tags (
    nid INTEGER NOT NULL, record_id TEXT NOT NULL, seq INTEGER PRIMARY KEY AUTOINCREMENT,
    UNIQUE (nid, record_id)
);
CREATE TABLE IF NOT EXISTS links (
    lid INTEGER PRIMARY KEY,
    source TEXT NOT NULL, source_subtype TEXT NOT NULL, source_category TEXT NOT NULL,
    target TEXT NOT NULL, target_subtype TEXT NOT NULL, target_category TEXT NOT NULL,
    relation TEXT NOT NULL,
    UNIQUE (source, source_subtype, source_category, target, target_subtype, target_category, relation)
);
CREATE INDEX IF NOT EXISTS links_by_target ON links (target);
CREATE INDEX IF NOT EXISTS links_by_source ON links (source);
CREATE TABLE IF NOT EXISTS link_tags (
    lid INTEGER NOT NULL, record_id TEXT NOT NULL, seq INTEGER PRIMARY KEY AUTOINCREMENT,
    UNIQUE (lid, record_id)
);
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL UNIQUE,
    username TEXT NOT NULL,
    batch_id TEXT,
    status TEXT NOT NULL,
    visible_at REAL NOT NULL,
    next_at REAL NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, next_at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    token_id TEXT PRIMARY KEY, username TEXT NOT NULL, client_id TEXT NOT NULL,
    data TEXT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS device_codes (
    device_code TEXT PRIMARY KEY, user_code TEXT NOT NULL UNIQUE, data TEXT NOT NULL
);
"""

FINAL_JOB_STATES = ("SUCCEEDED", "FAILED")


TAG_CACHE_LIMIT = 100_000


def compact_json(value: Any) -> str:
    """JSON as Provena's services send it (no spaces, UTF-8 as is), from pydantic-core: a fifth of the
    json module's time, which seeding 100,000 items notices."""
    return to_json(value).decode()


TAG_INDEXES = {  # name -> what it indexes; dropped and rebuilt around a bulk load
    "node_tags_by_record": "node_tags (record_id)",
    "node_tags_in_order": "node_tags (nid, seq, record_id)",
    "link_tags_by_record": "link_tags (record_id)",
    "link_tags_in_order": "link_tags (lid, seq, record_id)",
}
TAG_INDEX_DDL = "".join(f"CREATE INDEX IF NOT EXISTS {name} ON {on};\n" for name, on in TAG_INDEXES.items())


class Store:
    """Thin typed access to the tables. Callers hold `transaction()` around every write."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            if Path(self.path).exists() and not Path(self.path).is_file():  # /dev/null would take a journal
                raise NotADirectoryError(f"{self.path} is not a regular file (a device, pipe or directory)")
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._depth = 0
        # Tags of graph elements as last read, for reads outside transactions. Valid while no write went
        # through this connection (`_run` clears it) and none through another (`PRAGMA data_version`).
        self._tag_cache: dict[tuple[str, int], Tags] = {}
        self._tag_cache_version = -1
        self._writes = 0  # through this connection; see change_stamp
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=30000")
        self._conn.executescript(SCHEMA + TAG_INDEX_DDL)

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic state change; nested calls join the outer transaction."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")
            finally:
                self._depth = 0

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Several reads that must agree (a record's graph: its elements, then their tags), as of one
        moment even while another server process writes to the same database."""
        with self._lock:
            if self._depth:
                yield
                return
            self._conn.execute("BEGIN DEFERRED")
            try:
                yield
            finally:
                self._conn.execute("COMMIT")

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Inside a transaction: undo this block's writes if it raises, keep the rest."""
        with self._lock:
            self._conn.execute("SAVEPOINT block")
            try:
                yield
            except BaseException:
                self._conn.execute("ROLLBACK TO block")
                self._conn.execute("RELEASE block")
                raise
            else:
                self._conn.execute("RELEASE block")

    def replace_with(self, source: sqlite3.Connection) -> None:
        """Overwrite this database with `source`'s content, atomically, through this connection."""
        with self._lock:
            self._writes += 1
            self._tag_cache.clear()
            source.backup(self._conn)

    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._conn.execute(sql, params).fetchone()
            return row

    def _all(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._conn.execute(sql, params).fetchall())

    def change_stamp(self) -> tuple[int, int]:
        """Changes when the database may have: a write through this connection or a commit through another."""
        with self._lock:
            return int(self._conn.execute("PRAGMA data_version").fetchone()[0]), self._writes

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        with self._lock:
            self._writes += 1
            self._tag_cache.clear()
            return self._conn.execute(sql, params)

    # ---- meta -------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str) -> None:
        self._run(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = ?",
            (key, value, value),
        )

    # ---- registry items -------------------------------------------------------------------------
    def get_item(self, item_id: str) -> dict[str, Any] | None:
        row = self._one("SELECT data FROM items WHERE id = ?", (item_id,))
        return None if row is None else dict(json.loads(row["data"]))

    def get_item_text(self, item_id: str) -> tuple[str, str, str] | None:
        """(subtype, record_type, stored JSON) without decoding: fetches splice the text as it is."""
        row = self._one("SELECT subtype, record_type, data FROM items WHERE id = ?", (item_id,))
        return None if row is None else (str(row["subtype"]), str(row["record_type"]), str(row["data"]))

    def put_item(self, item: dict[str, Any]) -> None:
        self._run(
            "INSERT INTO items (id, subtype, record_type, created_ts, updated_ts, display_name, data) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET subtype = excluded.subtype, "
            "record_type = excluded.record_type, created_ts = excluded.created_ts, "
            "updated_ts = excluded.updated_ts, display_name = excluded.display_name, data = excluded.data",
            (
                item["id"],
                item["item_subtype"],
                item["record_type"],
                int(item["created_timestamp"]),
                int(item["updated_timestamp"]),
                str(item.get("display_name") or ""),
                compact_json(item),
            ),
        )

    def delete_item(self, item_id: str) -> None:
        for table in ("items", "auth", "locks"):
            self._run(f"DELETE FROM {table} WHERE id = ?", (item_id,))

    def item_ids(self) -> list[str]:
        return [str(row["id"]) for row in self._all("SELECT id FROM items ORDER BY id")]

    def present_ids(self, ids: Iterable[str]) -> set[str]:
        """Which of `ids` the registry holds, by primary key (not a scan of every item)."""
        wanted, present = list(ids), set[str]()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            present |= {
                str(row["id"])
                for row in self._all(f"SELECT id FROM items WHERE id IN ({marks})", tuple(chunk))
            }
        return present

    def count_items(self) -> int:
        row = self._one("SELECT COUNT(*) AS n FROM items")
        return 0 if row is None else int(row["n"])

    def page_items(
        self,
        subtype: str | None,
        order_column: str,
        ascending: bool,
        after: tuple[Any, str] | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """A page in (order_column, id) order, starting strictly after the `after` cursor."""
        assert order_column in ("updated_ts", "created_ts", "display_name")
        direction = "ASC" if ascending else "DESC"
        comparison = ">" if ascending else "<"
        clauses: list[str] = []
        params: list[Any] = []
        if subtype is not None:
            clauses.append("subtype = ?")
            params.append(subtype)
        if after is not None:
            clauses.append(f"({order_column}, id) {comparison} (?, ?)")
            params.extend(after)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._all(
            f"SELECT data FROM items {where} ORDER BY {order_column} {direction}, id {direction} LIMIT ?",
            (*params, limit),
        )
        return [dict(json.loads(row["data"])) for row in rows]

    def all_items(self) -> Iterator[dict[str, Any]]:
        for row in self._all("SELECT data FROM items ORDER BY id"):
            yield dict(json.loads(row["data"]))

    def items_of_subtype(self, subtype: str) -> list[dict[str, Any]]:
        rows = self._all("SELECT data FROM items WHERE subtype = ? ORDER BY id", (subtype,))
        return [dict(json.loads(row["data"])) for row in rows]

    # ---- auth and locks -----------------------------------------------------------------------
    def get_auth(self, item_id: str) -> dict[str, Any] | None:
        row = self._one("SELECT data FROM auth WHERE id = ?", (item_id,))
        return None if row is None else dict(json.loads(row["data"]))

    def put_auth(self, entry: dict[str, Any]) -> None:
        self._run("INSERT OR REPLACE INTO auth (id, data) VALUES (?, ?)", (entry["id"], compact_json(entry)))

    def get_lock(self, item_id: str) -> dict[str, Any] | None:
        row = self._one("SELECT data FROM locks WHERE id = ?", (item_id,))
        return None if row is None else dict(json.loads(row["data"]))

    def put_lock(self, entry: dict[str, Any]) -> None:
        self._run("INSERT OR REPLACE INTO locks (id, data) VALUES (?, ?)", (entry["id"], compact_json(entry)))

    def groups_of(self, username: str) -> set[str]:
        rows = self._all("SELECT group_id FROM user_groups WHERE username = ?", (username,))
        return {str(row["group_id"]) for row in rows}

    def members_of(self, group_id: str) -> list[str]:
        rows = self._all("SELECT username FROM user_groups WHERE group_id = ? ORDER BY username", (group_id,))
        return [str(row["username"]) for row in rows]

    def group_ids(self) -> list[str]:
        return [str(row["group_id"]) for row in self._all("SELECT DISTINCT group_id FROM user_groups")]

    def add_group_member(self, group_id: str, username: str) -> None:
        self._run(
            "INSERT OR IGNORE INTO user_groups (group_id, username) VALUES (?, ?)", (group_id, username)
        )

    # ---- username -> Person links (the auth API's link service) --------------------------------
    def get_link(self, username: str) -> str | None:
        row = self._one("SELECT person_id FROM user_links WHERE username = ?", (username,))
        return None if row is None else str(row["person_id"])

    def put_link(self, username: str, person_id: str) -> None:
        self._run(
            "INSERT INTO user_links (username, person_id) VALUES (?, ?) "
            "ON CONFLICT(username) DO UPDATE SET person_id = excluded.person_id",
            (username, person_id),
        )

    def clear_link(self, username: str) -> None:
        self._run("DELETE FROM user_links WHERE username = ?", (username,))

    def usernames_linked_to(self, person_id: str) -> list[str]:
        rows = self._all(
            "SELECT username FROM user_links WHERE person_id = ? ORDER BY username", (person_id,)
        )
        return [str(row["username"]) for row in rows]

    # ---- provenance graph -----------------------------------------------------------------------
    def record_graph(self, record_id: str) -> TaggedGraph:
        """Every element tagged with `record_id`, each with all of its tags in tagging order."""
        graph = TaggedGraph()
        node_rows = self._all(
            "SELECT n.nid, n.id, n.subtype, n.category FROM nodes n "
            "JOIN node_tags t ON t.nid = n.nid WHERE t.record_id = ?",
            (record_id,),
        )
        for row in node_rows:
            graph.nodes[Node(row["id"], row["subtype"], row["category"])] = self._tags(
                "node_tags", "nid", row["nid"]
            )
        link_rows = self._all(
            "SELECT l.* FROM links l JOIN link_tags t ON t.lid = l.lid WHERE t.record_id = ?", (record_id,)
        )
        for row in link_rows:
            graph.links[_row_link(row)] = self._tags("link_tags", "lid", row["lid"])
        return graph

    def _tags(self, table: str, key: str, value: int) -> Tags:
        """An element's tags in tagging order. Shared elements (a workflow template used by thousands of
        runs) carry thousands of tags: SQLite joins them in C, and outside transactions the result is
        reused until the database changes, so trial deletes of a thousand runs join them once."""
        with self._lock:
            cacheable = self._depth == 0
            if cacheable:
                version = int(self._conn.execute("PRAGMA data_version").fetchone()[0])
                if version != self._tag_cache_version or len(self._tag_cache) > TAG_CACHE_LIMIT:
                    self._tag_cache.clear()
                    self._tag_cache_version = version
                cached = self._tag_cache.get((table, value))
                if cached is not None:
                    return cached
            row = self._one(
                f"SELECT group_concat(record_id, ',') AS tags, count(*) AS n FROM "
                f"(SELECT record_id FROM {table} WHERE {key} = ? ORDER BY seq)",
                (value,),
            )
            tags = Tags(str(row["tags"] or ""), int(row["n"])) if row is not None else Tags("", 0)
            if cacheable:
                self._tag_cache[(table, value)] = tags
            return tags

    def _node_id(self, node: Node, create: bool) -> int | None:
        row = self._one(
            "SELECT nid FROM nodes WHERE id = ? AND subtype = ? AND category = ?",
            (node.id, node.subtype, node.category),
        )
        if row is not None:
            return int(row["nid"])
        if not create:
            return None
        cursor = self._run(
            "INSERT INTO nodes (id, subtype, category) VALUES (?, ?, ?)",
            (node.id, node.subtype, node.category),
        )
        return int(cursor.lastrowid or 0)

    def _link_id(self, link: Link, create: bool) -> int | None:
        key = _link_key(link)
        row = self._one(
            "SELECT lid FROM links WHERE source = ? AND source_subtype = ? AND source_category = ? AND "
            "target = ? AND target_subtype = ? AND target_category = ? AND relation = ?",
            key,
        )
        if row is not None:
            return int(row["lid"])
        if not create:
            return None
        cursor = self._run(
            "INSERT INTO links (source, source_subtype, source_category, target, target_subtype, "
            "target_category, relation) VALUES (?, ?, ?, ?, ?, ?, ?)",
            key,
        )
        return int(cursor.lastrowid or 0)

    def tag_node(self, node: Node, record_id: str) -> None:
        nid = self._node_id(node, create=True)
        self._run("INSERT OR IGNORE INTO node_tags (nid, record_id) VALUES (?, ?)", (nid, record_id))

    def tag_link(self, link: Link, record_id: str) -> None:
        self.tag_node(link.source, record_id)
        self.tag_node(link.target, record_id)
        lid = self._link_id(link, create=True)
        self._run("INSERT OR IGNORE INTO link_tags (lid, record_id) VALUES (?, ?)", (lid, record_id))

    @contextmanager
    def bulk_load(self) -> Iterator[BulkTagger]:
        """One transaction for filling an empty registry (seeding 100,000 runs writes ~3 million tags):
        the tag tables' ordering indexes are built once at the end instead of row by row, with a page
        cache large enough to hold what the load touches."""
        with self.transaction():
            self._conn.execute("PRAGMA cache_size=-262144")  # KiB: 256 MB at most, for this connection
            try:
                for name in TAG_INDEXES:
                    self._conn.execute(f"DROP INDEX IF EXISTS {name}")
                tagger = BulkTagger(self)
                yield tagger
                tagger.flush()
                for name, on in TAG_INDEXES.items():
                    self._conn.execute(f"CREATE INDEX {name} ON {on}")
            finally:
                self._conn.execute("PRAGMA cache_size=-2000")

    def untag_node(self, node: Node, record_id: str) -> None:
        """Drop one tag; the node disappears with its last tag (Provena's reference counting)."""
        nid = self._node_id(node, create=False)
        if nid is None:
            return
        self._run("DELETE FROM node_tags WHERE nid = ? AND record_id = ?", (nid, record_id))
        if self._one("SELECT 1 FROM node_tags WHERE nid = ? LIMIT 1", (nid,)) is None:
            self._run("DELETE FROM nodes WHERE nid = ?", (nid,))

    def untag_link(self, link: Link, record_id: str) -> None:
        lid = self._link_id(link, create=False)
        if lid is None:
            return
        self._run("DELETE FROM link_tags WHERE lid = ? AND record_id = ?", (lid, record_id))
        if self._one("SELECT 1 FROM link_tags WHERE lid = ? LIMIT 1", (lid,)) is None:
            self._run("DELETE FROM links WHERE lid = ?", (lid,))

    def apply_diff(self, actions: list[DiffAction]) -> None:
        with self.transaction():
            for action in actions:
                kind = action.action_type
                if action.node is not None:
                    if kind in (DiffActionType.ADD_NEW_NODE, DiffActionType.ADD_RECORD_ID_TO_NODE):
                        self.tag_node(action.node, action.record_id)
                    else:
                        self.untag_node(action.node, action.record_id)
                elif action.link is not None:
                    if kind in (DiffActionType.ADD_NEW_LINK, DiffActionType.ADD_RECORD_ID_TO_LINK):
                        self.tag_link(action.link, action.record_id)
                    else:
                        self.untag_link(action.link, action.record_id)

    def neighbours(self, node_id: str, outgoing: bool) -> list[tuple[str, str, str, str, str]]:
        """(source, target, relation, other subtype, other category) for links leaving/arriving."""
        if outgoing:
            rows = self._all(
                "SELECT source, target, relation, target_subtype AS st, target_category AS sc "
                "FROM links WHERE source = ? ORDER BY lid",
                (node_id,),
            )
        else:
            rows = self._all(
                "SELECT source, target, relation, source_subtype AS st, source_category AS sc "
                "FROM links WHERE target = ? ORDER BY lid",
                (node_id,),
            )
        return [(r["source"], r["target"], r["relation"], r["st"], r["sc"]) for r in rows]

    def node_kinds(self, node_id: str) -> list[tuple[str, str]]:
        rows = self._all("SELECT subtype, category FROM nodes WHERE id = ? ORDER BY nid", (node_id,))
        return [(str(r["subtype"]), str(r["category"])) for r in rows]

    def graph_elements(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Every node and link with its record ids, sorted: the graph as `sandbox export` writes it."""
        nodes = self._all(
            "SELECT n.id, n.subtype, n.category, group_concat(t.record_id, char(31)) AS tags FROM nodes n "
            "LEFT JOIN node_tags t ON t.nid = n.nid GROUP BY n.nid ORDER BY n.id, n.subtype, n.category"
        )
        links = self._all(
            "SELECT l.*, group_concat(t.record_id, char(31)) AS tags FROM links l LEFT JOIN link_tags t "
            "ON t.lid = l.lid GROUP BY l.lid ORDER BY l.source, l.target, l.relation, l.lid"
        )
        keys = ("source", "source_subtype", "source_category", "target", "target_subtype", "target_category")
        return (
            [{**{k: r[k] for k in ("id", "subtype", "category")}, "record_ids": _tags_of(r)} for r in nodes],
            [{**{k: r[k] for k in (*keys, "relation")}, "record_ids": _tags_of(r)} for r in links],
        )

    def graph_size(self) -> tuple[int, int]:
        nodes = self._one("SELECT COUNT(*) AS n FROM nodes")
        links = self._one("SELECT COUNT(*) AS n FROM links")
        return (int(nodes["n"]) if nodes else 0, int(links["n"]) if links else 0)

    # ---- jobs ------------------------------------------------------------------------------------
    def put_job(self, job: dict[str, Any], visible_at: float, next_at: float) -> None:
        self._run(
            "INSERT INTO jobs (session_id, username, batch_id, status, visible_at, next_at, data) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(session_id) DO UPDATE SET status = excluded.status, "
            "next_at = excluded.next_at, data = excluded.data",
            (
                job["session_id"],
                job["username"],
                job.get("batch_id"),
                job["status"],
                visible_at,
                next_at,
                json.dumps(job),
            ),
        )

    def get_job(self, session_id: str, now: float) -> dict[str, Any] | None:
        row = self._one("SELECT data FROM jobs WHERE session_id = ? AND visible_at <= ?", (session_id, now))
        return None if row is None else dict(json.loads(row["data"]))

    def due_jobs(self, now: float) -> list[dict[str, Any]]:
        rows = self._all(
            "SELECT data FROM jobs WHERE status NOT IN ('SUCCEEDED', 'FAILED') AND next_at <= ? ORDER BY seq",
            (now,),
        )
        return [dict(json.loads(row["data"])) for row in rows]

    def still_due(self, session_id: str, status: str, now: float) -> dict[str, Any] | None:
        """Re-read a due job inside the caller's transaction: another server on the file may have moved it."""
        row = self._one(
            "SELECT data FROM jobs WHERE session_id = ? AND status = ? AND next_at <= ?",
            (session_id, status, now),
        )
        return None if row is None else dict(json.loads(row["data"]))

    def next_job_time(self) -> float | None:
        row = self._one("SELECT MIN(next_at) AS t FROM jobs WHERE status NOT IN ('SUCCEEDED', 'FAILED')")
        return None if row is None or row["t"] is None else float(row["t"])

    def list_jobs(
        self, username: str | None, batch_id: str | None, now: float, after_seq: int | None, limit: int
    ) -> list[tuple[int, dict[str, Any]]]:
        clauses = ["visible_at <= ?"]
        params: list[Any] = [now]
        if username is not None:
            clauses.append("username = ?")
            params.append(username)
        if batch_id is not None:
            clauses.append("batch_id = ?")
            params.append(batch_id)
        if after_seq is not None:
            clauses.append("seq < ?")
            params.append(after_seq)
        rows = self._all(
            f"SELECT seq, data FROM jobs WHERE {' AND '.join(clauses)} ORDER BY seq DESC LIMIT ?",
            (*params, limit),
        )
        return [(int(row["seq"]), dict(json.loads(row["data"]))) for row in rows]

    # ---- keycloak sessions -------------------------------------------------------------------------
    def put_session(self, token_id: str, username: str, client_id: str, data: dict[str, Any]) -> None:
        self._run(
            "INSERT OR REPLACE INTO sessions (token_id, username, client_id, data) VALUES (?, ?, ?, ?)",
            (token_id, username, client_id, json.dumps(data)),
        )

    def get_session(self, token_id: str) -> tuple[dict[str, Any], bool] | None:
        row = self._one("SELECT data, revoked FROM sessions WHERE token_id = ?", (token_id,))
        return None if row is None else (dict(json.loads(row["data"])), bool(row["revoked"]))

    def revoke_session(self, token_id: str) -> int:
        return self._run("UPDATE sessions SET revoked = 1 WHERE token_id = ?", (token_id,)).rowcount

    def device_code_of(self, user_code: str) -> str:
        row = self._one("SELECT device_code FROM device_codes WHERE user_code = ?", (user_code,))
        return "" if row is None else str(row["device_code"])

    def user_code_of(self, device_code: str) -> str:
        row = self._one("SELECT user_code FROM device_codes WHERE device_code = ?", (device_code,))
        return "" if row is None else str(row["user_code"])

    def put_device_code(self, device_code: str, user_code: str, data: dict[str, Any]) -> None:
        self._run(
            "INSERT OR REPLACE INTO device_codes (device_code, user_code, data) VALUES (?, ?, ?)",
            (device_code, user_code, json.dumps(data)),
        )

    def get_device_code(
        self, device_code: str | None = None, user_code: str | None = None
    ) -> dict[str, Any] | None:
        if device_code is not None:
            row = self._one("SELECT data FROM device_codes WHERE device_code = ?", (device_code,))
        else:
            row = self._one("SELECT data FROM device_codes WHERE user_code = ?", (user_code,))
        return None if row is None else dict(json.loads(row["data"]))

    def wipe_graph(self) -> None:
        with self.transaction():
            for table in ("nodes", "node_tags", "links", "link_tags"):
                self._run(f"DELETE FROM {table}")

    def wipe(self) -> None:
        """Empty every table except the realm's signing key, so existing tokens stay verifiable."""
        with self.transaction():
            for table in (
                "items",
                "auth",
                "locks",
                "user_groups",
                "user_links",
                "nodes",
                "node_tags",
                "links",
                "link_tags",
                "jobs",
                "sessions",
                "device_codes",
            ):
                self._run(f"DELETE FROM {table}")
            self._run("DELETE FROM meta WHERE key NOT LIKE 'realm.%'")


def _tags_of(row: sqlite3.Row) -> list[str]:
    return sorted(str(row["tags"]).split("\x1f")) if row["tags"] else []


def _row_link(row: sqlite3.Row) -> Link:
    return Link(
        Node(row["source"], row["source_subtype"], row["source_category"]),
        Node(row["target"], row["target_subtype"], row["target_category"]),
        row["relation"],
    )


def _link_key(link: Link) -> tuple[str, str, str, str, str, str, str]:
    return (
        link.source.id,
        link.source.subtype,
        link.source.category,
        link.target.id,
        link.target.subtype,
        link.target.category,
        link.relation,
    )


class BulkTagger:
    """What tag_node and tag_link do, for many records new to the graph (seeding a large registry):
    each node resolved once, a record's own links (those touching its node, new by construction) given
    ids here, and links and tags inserted a batch at a time. Valid within one transaction, while nothing
    else writes the graph: flush before tagging through the store."""

    BATCH = 50_000

    def __init__(self, store: Store) -> None:
        self.store = store
        self.nids: dict[Node, int] = {}
        self.shared_lids: dict[Link, int] = {}  # links between other records' nodes: few, and reused
        row = store._one("SELECT COALESCE(MAX(lid), 0) AS last FROM links")
        self.next_lid = 1 + (int(row["last"]) if row is not None else 0)
        self.new_links: list[tuple[Any, ...]] = []
        self.node_tags: list[tuple[int, str]] = []
        self.link_tags: list[tuple[int, str]] = []

    def tag(self, record_id: str, nodes: Iterable[Node], links: Iterable[Link]) -> None:
        links = list(links)
        tagged = dict.fromkeys(nodes)  # a link's ends are tagged too, once each
        for link in links:
            tagged[link.source] = tagged[link.target] = None
        self.node_tags.extend((self._nid(node), record_id) for node in tagged)
        for link in links:
            if record_id in (link.source.id, link.target.id):
                lid = self._new_link(link)  # the record's own: new by construction
            else:
                lid = self.shared_lids.get(link) or 0
                if not lid:  # link ids start at 1
                    lid = self.store._link_id(link, create=False) or self._new_link(link)
                    self.shared_lids[link] = lid
            self.link_tags.append((lid, record_id))
        if len(self.node_tags) >= self.BATCH:
            self.flush()

    def _new_link(self, link: Link) -> int:
        lid = self.next_lid
        self.next_lid += 1
        self.new_links.append((lid, *_link_key(link)))
        return lid

    def _nid(self, node: Node) -> int:
        nid = self.nids.get(node)
        if nid is None:
            nid = self.nids[node] = self.store._node_id(node, create=True) or 0
        return nid

    def flush(self) -> None:
        with self.store._lock:
            self.store._writes += 1
            self.store._tag_cache.clear()
            connection = self.store._conn
            connection.executemany(
                "INSERT INTO links (lid, source, source_subtype, source_category, target, target_subtype, "
                "target_category, relation) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                self.new_links,
            )
            connection.executemany(
                "INSERT OR IGNORE INTO node_tags (nid, record_id) VALUES (?, ?)", self.node_tags
            )
            connection.executemany(
                "INSERT OR IGNORE INTO link_tags (lid, record_id) VALUES (?, ?)", self.link_tags
            )
        self.new_links.clear()
        self.node_tags.clear()
        self.link_tags.clear()
