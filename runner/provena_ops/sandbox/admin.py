"""Offline sandbox administration behind `provena-ops sandbox ...`: seed, reset, export, load, token.

These act on the SQLite file directly (the server need not run); they never reach a real Provena.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any, NoReturn

from ProvenaInterfaces import RegistryAPI as api
from ProvenaInterfaces import RegistryModels as models
from ProvenaInterfaces.SharedTypes import ImportMode
from pydantic import BaseModel, ConfigDict, ValidationError

import provena_ops.safety.strict_json as strict_json
from provena_ops.errors import ProvenaOpsError, first_problem
from provena_ops.sandbox.context import Sandbox, SandboxSettings
from provena_ops.sandbox.graph import Link, Node
from provena_ops.sandbox.importer import import_bundle
from provena_ops.sandbox.provenance import RecordInvalid, merge_additively
from provena_ops.sandbox.realm import ROLE_PRESETS, known_realm_roles
from provena_ops.sandbox.seed import SandboxNotEmpty, SeedSummary, seed_demo

DEFAULT_DB = Path(".provena-ops/sandbox.db")


def open_sandbox(db: Path) -> Sandbox:
    try:
        return Sandbox(SandboxSettings(db_path=db))
    except Exception as exc:  # sqlite3 and OS errors alike: say which file and why
        raise ProvenaOpsError(
            f"cannot open the sandbox database: {exc}",
            where=str(db),
            hint="check the path and its permissions, or pass --db",
        ) from exc


def is_empty(db: Path) -> bool:
    sandbox = open_sandbox(db)
    try:
        return sandbox.store.count_items() == 0
    finally:
        sandbox.store.close()


def seed(db: Path, runs: int, reset: bool) -> SeedSummary:
    if runs < 1:
        raise ProvenaOpsError(f"--scale must be at least 1, got {runs}")
    sandbox = open_sandbox(db)
    try:
        if reset:
            sandbox.store.wipe()
        try:
            return seed_demo(sandbox, runs)
        except SandboxNotEmpty as exc:
            raise ProvenaOpsError(
                str(exc), where=str(db), hint="run `provena-ops sandbox reset` first, or pass --reset"
            ) from exc
    finally:
        sandbox.store.close()


def reset(db: Path) -> None:
    sandbox = open_sandbox(db)
    try:
        sandbox.store.wipe()
    finally:
        sandbox.store.close()


EXPORT_FORMAT = "provena-ops sandbox export 1"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ExportedNode(_Strict):
    id: str
    subtype: str
    category: str
    record_ids: list[str]


class ExportedLink(_Strict):
    source: str
    source_subtype: str
    source_category: str
    target: str
    target_subtype: str
    target_category: str
    relation: str
    record_ids: list[str]


class ExportedGraph(_Strict):
    nodes: list[ExportedNode]
    links: list[ExportedLink]


def refuse_not_a_sandbox(db: Path) -> None:
    """An export only reads: a missing file, or one that is not a sandbox database, is said, never
    created or given the sandbox's tables."""
    if not db.is_file():
        raise ProvenaOpsError(f"no sandbox database at {db}", hint="seed one: provena-ops sandbox seed")
    try:
        connection = sqlite3.connect(f"file:{db.resolve()}?mode=ro", uri=True)
        try:
            listed = connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            tables = {row[0] for row in listed}
        finally:
            connection.close()
    except sqlite3.Error as exc:
        raise ProvenaOpsError(f"{db} is not a sandbox database ({exc})", hint=NOT_A_SANDBOX) from None
    if not {"items", "auth", "locks", "nodes", "links"} <= tables:
        raise ProvenaOpsError(f"{db} is not a sandbox database (no registry tables)", hint=NOT_A_SANDBOX)


NOT_A_SANDBOX = "give the sandbox's --db (default .provena-ops/sandbox.db)"


def export(db: Path) -> tuple[str, dict[str, int]]:
    """The registry in Provena's admin export form (BundledItem: item, access settings, lock state),
    sorted by id, and the graph's nodes and links with their record ids: two exports compare as text."""
    sandbox = open_sandbox(db)
    try:
        store = sandbox.store
        bundles = [
            {
                "id": item["id"],
                "item_payload": item,
                "auth_payload": store.get_auth(item["id"]) or {},
                "lock_payload": store.get_lock(item["id"]) or {},
            }
            for item in sorted(store.all_items(), key=lambda item: str(item["id"]))
        ]
        nodes, links = store.graph_elements()
    finally:
        sandbox.store.close()
    document = {"format": EXPORT_FORMAT, "items": bundles, "graph": {"nodes": nodes, "links": links}}
    text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return text, {"items": len(bundles), "nodes": len(nodes), "links": len(links)}


MAX_EXPORT_BYTES = 4 << 30  # a registry of 100,000 records exports to well under 2 GB


def _read_regular(path: Path, budget: int) -> bytes:
    """A regular file only (a pipe would hang the load, /dev/zero exhaust memory), within `budget`."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(descriptor, "rb") as file:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise OSError("not a regular file (a device, pipe or directory)")
        if status.st_size > budget:
            raise OSError(f"larger than {budget >> 30} GB, more than any registry export")
        os.set_blocking(descriptor, True)
        return file.read(budget + 1)


def read_export(path: Path) -> list[api.BundledItem]:
    return read_export_with_graph(path)[0]


def read_export_with_graph(path: Path) -> tuple[list[api.BundledItem], ExportedGraph | None]:
    """An admin export: a JSON array of BundledItem (as Provena's tooling writes), an export response,
    or a sandbox export (which carries the graph too)."""
    try:
        text = _read_regular(path, MAX_EXPORT_BYTES).decode("utf-8")
    except OSError as exc:
        raise ProvenaOpsError(f"cannot read the export file: {exc.strerror or exc}", where=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise ProvenaOpsError(
            f"not a JSON text file (byte 0x{exc.object[exc.start]:02x} at offset {exc.start} is not UTF-8)",
            where=str(path),
            hint="pass the JSON file written by Provena's registry export, not a database or archive",
        ) from None
    try:
        data: Any = strict_json.loads(text)  # duplicate keys, NaN and absurd nesting refused, located
    except strict_json.JsonProblem as problem:
        where = f"{path}:{problem.line}:{problem.column}" if problem.line else str(path)
        at = f"{problem.path}: " if problem.path else ""
        raise ProvenaOpsError(
            f"{at}{problem.message}",
            where=where,
            hint="pass the file written by Provena's registry export",
        ) from None
    graph: ExportedGraph | None = None
    data_format = data.get("format") if isinstance(data, dict) else None
    if isinstance(data, dict) and "graph" in data:
        try:
            graph = ExportedGraph.model_validate(data["graph"])
        except ValidationError as exc:
            raise ProvenaOpsError(
                first_problem(exc, within="graph"),
                where=str(path),
                hint="pass a file written by `provena-ops sandbox export`",
            ) from None
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        data = data["items"]
    if not isinstance(data, list):
        raise ProvenaOpsError(
            "expected a JSON array of exported items (id, item_payload, auth_payload, lock_payload)",
            where=str(path),
        )
    bundles: list[api.BundledItem] = []
    for index, entry in enumerate(data):
        try:
            bundles.append(api.BundledItem.model_validate(entry))
        except ValidationError as exc:
            raise ProvenaOpsError(
                f"item {index}: {first_problem(exc)}",
                where=str(path),
                hint="each entry needs id, item_payload, auth_payload and lock_payload",
            ) from exc
    _consistent(path, data_format, bundles, graph)
    return bundles, graph


EXPORT_HINT = "pass a file written by `provena-ops sandbox export`"


def _consistent(
    path: Path, data_format: Any, bundles: list[api.BundledItem], graph: ExportedGraph | None
) -> None:
    """A sandbox export is whole: its format is this one, each id once, and its links join its own
    nodes (a graph may still tag records the registry lost: Provena's orphans)."""

    def refuse(message: str) -> NoReturn:
        raise ProvenaOpsError(
            message, where=str(path), hint="pass a file written by `provena-ops sandbox export`"
        )

    if data_format is not None and data_format != EXPORT_FORMAT:
        refuse(f"format: {str(data_format)[:80]!r} is not {EXPORT_FORMAT!r}")
    seen: set[str] = set()
    for index, bundle in enumerate(bundles):
        if bundle.id in seen:
            refuse(f"item {index}: id {bundle.id} appears twice")
        seen.add(bundle.id)
    if graph is None:
        return
    nodes = {(node.id, node.subtype, node.category) for node in graph.nodes}
    for index, link in enumerate(graph.links):
        ends = ((link.source, link.source_subtype, link.source_category),
                (link.target, link.target_subtype, link.target_category))  # fmt: skip
        if missing := [end for end in ends if end not in nodes]:
            refuse(f"graph.links.{index}: {missing[0][0]!r} ({missing[0][1]}) is not a node of the export")


def load(db: Path, export: Path, replace: bool, relodge: bool) -> dict[str, Any]:
    """An export into the sandbox; a sandbox export's graph is loaded as it is (nothing to relodge)."""
    bundles, graph = read_export_with_graph(export)
    if graph is not None:
        relodge = False
    sandbox = open_sandbox(db)
    try:
        mode = ImportMode.SYNC_DELETION_ALLOWED if replace else ImportMode.ADD_OR_OVERWRITE
        request = api.RegistryImportRequest(
            import_mode=mode, parse_items=True, allow_entry_deletion=replace, trial_mode=False, items=bundles
        )
        result = import_bundle(sandbox, request)
        if not result["status"]["success"]:
            failures = result.get("failure_list") or []
            shown = "; ".join(f"{bundle.get('id')}: {message}" for message, bundle in failures[:5])
            raise ProvenaOpsError(
                f"import refused: {result['status']['details']} {shown}".strip(), where=str(export)
            )
        lodged, failed = 0, []
        if replace and (relodge or graph is not None):
            sandbox.store.wipe_graph()  # identical to the export: no graph of records it does not hold
        if graph is not None:
            _load_graph(sandbox, graph)
        if relodge:
            for raw in sandbox.store.items_of_subtype("MODEL_RUN"):
                if raw["record_type"] != "COMPLETE_ITEM":
                    continue
                try:
                    item = models.ItemModelRun.model_validate(raw)
                    merge_additively(sandbox, item.id, item.record)
                    lodged += 1
                except (ValidationError, RecordInvalid) as exc:
                    failed.append(f"{raw['id']}: {exc}")
        return {
            "statistics": result["statistics"],
            "relodged": lodged,
            "relodge_failures": failed,
            "graph": None if graph is None else (len(graph.nodes), len(graph.links)),
        }
    finally:
        sandbox.store.close()


def _load_graph(sandbox: Sandbox, graph: ExportedGraph) -> None:
    store = sandbox.store
    with store.transaction():
        for node in graph.nodes:
            for record_id in node.record_ids:
                store.tag_node(Node(node.id, node.subtype, node.category), record_id)
        for link in graph.links:
            source = Node(link.source, link.source_subtype, link.source_category)
            target = Node(link.target, link.target_subtype, link.target_category)
            for record_id in link.record_ids:
                store.tag_link(Link(source, target, link.relation), record_id)


def resolve_roles(values: list[str], realm_name: str = "provena") -> list[str]:
    """Role presets (admin, write, read, none) or explicit realm role names, comma-separated or repeated.

    The default realm roles (offline_access, ...) are accepted, though every token carries them anyway.
    """
    roles: list[str] = []
    for value in values:
        for part in (p.strip() for p in value.split(",")):
            if not part:
                continue
            expanded = ROLE_PRESETS.get(part, [part])
            roles.extend(role for role in expanded if role not in roles)
    known = known_realm_roles(realm_name)
    unknown = [role for role in roles if role not in known]
    if unknown:
        raise ProvenaOpsError(
            f"unknown role(s): {', '.join(unknown)}",
            hint=f"use a preset ({', '.join(ROLE_PRESETS)}) or one of {', '.join(known)}",
        )
    return roles


def token(db: Path, user: str, roles: list[str] | None, lifetime: int, email: str | None) -> str:
    if lifetime < 1:
        raise ProvenaOpsError(f"--lifetime must be at least 1 second, got {lifetime}")
    sandbox = open_sandbox(db)
    try:
        known = sandbox.realm.users().get(user)
        if roles is None:
            if known is None:
                raise ProvenaOpsError(
                    f"unknown sandbox user {user!r}",
                    hint=f"pass --roles, or use one of {', '.join(sandbox.realm.users())}",
                )
            role_list = list(known["roles"])
        else:
            role_list = resolve_roles(roles, sandbox.realm.name)
        mail = email or (known or {}).get("email")
        return sandbox.realm.mint_access_token(user, role_list, mail, lifetime=lifetime)
    finally:
        sandbox.store.close()
