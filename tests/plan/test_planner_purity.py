"""The planner is pure: no network, clock, randomness, journal or writes, so it is tested without a server.

An allowlist, not a blocklist: every import of every provena_ops module the planner reaches must be one
listed here. A new import (say `time`, or the journal) fails this test until someone decides it belongs.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import provena_ops

PACKAGE = Path(provena_ops.__file__).parent
ENTRY = "provena_ops.plan.planner"
# What planning may use: data models, text helpers, and the stdlib's pure parts.
ALLOWED_STDLIB = {
    "__future__", "collections", "collections.abc", "copy", "dataclasses", "enum", "fnmatch", "functools",
    "difflib", "hashlib", "itertools", "json", "math", "re", "statistics", "typing", "unicodedata",
}  # fmt: skip
ALLOWED_THIRD_PARTY = {
    "pydantic", "pydantic.json_schema", "pydantic_core", "ProvenaInterfaces.ProvenanceModels",
    "ProvenaInterfaces.RegistryModels",  # restore images are checked as Provena's item models
}  # fmt: skip
ALLOWED_OWN = {
    "provena_ops.facts.model", "provena_ops.facts.expand", "provena_ops.playbook.model", "provena_ops.text",
    "provena_ops.safety.scalars", "provena_ops.errors", "provena_ops.spill",
}  # fmt: skip
# The facts a large plan reads are kept in an anonymous temporary file rather than memory: the planner
# reads back what the reader put there, nothing from outside, so only this module may touch a file.
ALLOWED_IN = {"provena_ops.spill": {"os", "tempfile"}}


def imports_of(module: str) -> set[str]:
    base = PACKAGE.joinpath(*module.split(".")[1:])
    path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{module}: relative import"
            assert node.module is not None
            found.add(node.module)
    return found


def reached_from(entry: str) -> dict[str, set[str]]:
    """Every provena_ops module the entry imports, directly or not, with what each imports."""
    seen: dict[str, set[str]] = {}
    todo = [entry]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen[module] = imports_of(module)
        todo += [name for name in seen[module] if name.startswith("provena_ops.")]
    return seen


def test_the_planner_imports_only_what_the_allowlist_names() -> None:
    reached = reached_from(ENTRY)
    own = {module for module in reached if not module.startswith("provena_ops.plan.")}
    assert own <= ALLOWED_OWN, f"the planner reaches {sorted(own - ALLOWED_OWN)}"
    outside = {
        (module, name)
        for module, names in reached.items()
        for name in names
        if not name.startswith("provena_ops.")
        and name not in ALLOWED_STDLIB | ALLOWED_THIRD_PARTY | ALLOWED_IN.get(module, set())
    }
    assert not outside, f"imports outside the allowlist: {sorted(outside)}"


def test_the_allowlist_test_sees_a_forbidden_import() -> None:
    """The check above would notice: the journal (writes, clock) is reached from apply, not from plan."""
    reached = reached_from("provena_ops.apply.run")
    assert "provena_ops.apply.journal" in reached and "provena_ops.apply.journal" not in ALLOWED_OWN


def test_planner_imports_no_http_client_and_no_sandbox() -> None:
    code = (
        f"import sys, {ENTRY}; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'httpx', 'fastapi', 'uvicorn', 'sqlite3'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
