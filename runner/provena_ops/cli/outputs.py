"""Files the commands write (plans, restore playbooks, sandbox exports): checked before anything is read
or contacted, so that an output path never destroys what cannot be rebuilt: a journal, a database, the
playbook, an environments file, a device or a pipe."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from provena_ops.errors import ProvenaOpsError

HEAD_BYTES = 4096


@dataclass(frozen=True)
class OutputKind:
    """What a command writes: its name in messages, the option that names the file, and how to tell a
    file of that kind provena-ops wrote (which may be replaced) from anything else (which is not)."""

    what: str
    option: str
    ours: Callable[[bytes], bool]


def _plan_head(head: bytes) -> bool:
    return head.lstrip().startswith(b"{") and b'"plan_format"' in head


PLAN = OutputKind("plan", "--out", _plan_head)
RESTORE_PLAYBOOK = OutputKind(
    "restore playbook", "--write-playbook", lambda head: b"# Written by `provena-ops undo " in head
)
SANDBOX_EXPORT = OutputKind(
    "sandbox export", "OUT.json", lambda head: b'"format": "provena-ops sandbox export' in head
)


def check_output(
    path: Path, kind: OutputKind, *, runs_dir: Path | None = None, protect: Mapping[Path, str] | None = None
) -> None:
    """Refuse (ProvenaOpsError) an output path that is a directory, not a regular file, inside the runs
    directory (journals live there), one of `protect` (path -> what it is), or an existing file that is
    not `kind` as provena-ops writes it; and one that cannot be written (probed under a fresh exclusive
    name)."""
    try:
        _check(path, kind, runs_dir, protect or {})
        # A probe under a fresh exclusive name: nothing planted beside the target is written through.
        descriptor, probe = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".probe", dir=path.resolve().parent
        )
        os.close(descriptor)
        os.unlink(probe)
    except OSError as exc:  # a name too long, a loop of links, a directory that cannot be written
        raise ProvenaOpsError(
            f"cannot write the {kind.what} to {path}: {exc.strerror or exc}",
            hint="choose a shorter path in a writable directory",
        ) from exc


def _check(path: Path, kind: OutputKind, runs_dir: Path | None, protect: Mapping[Path, str]) -> None:
    name = f"{kind.option} {path}"
    if path.is_dir():
        raise ProvenaOpsError(f"{name} is a directory", hint=f"give a file name for the {kind.what}")
    resolved = path.resolve()
    if resolved.exists() and not resolved.is_file():
        raise ProvenaOpsError(
            f"{name} is not a regular file (a device, pipe or socket)",
            hint=f"give a file name for the {kind.what}",
        )
    for kept, what in protect.items():
        if kept.exists() and resolved == kept.resolve():
            raise ProvenaOpsError(
                f"{name} is {what}; the {kind.what} would replace it",
                hint=f"give another file name for the {kind.what}",
            )
    if runs_dir is not None and resolved.is_relative_to(runs_dir.resolve()):
        raise ProvenaOpsError(
            f"{name} is inside the runs directory {runs_dir}, where the journals are kept",
            hint=f"write the {kind.what} elsewhere",
        )
    if resolved.is_file() and resolved.stat().st_size and not _is_ours(resolved, kind):
        raise ProvenaOpsError(
            f"{name} exists and is not a {kind.what} provena-ops wrote; it is not overwritten",
            hint=f"give another file name, or move {path} away first",
        )
    if not resolved.parent.is_dir():
        raise ProvenaOpsError(
            f"cannot write the {kind.what} to {path}: the directory {path.parent} does not exist",
            hint=f"create it first, or choose another {kind.option} path",
        )


def _is_ours(path: Path, kind: OutputKind) -> bool:
    try:
        with path.open("rb") as file:
            return kind.ours(file.read(HEAD_BYTES))
    except OSError:
        return False
