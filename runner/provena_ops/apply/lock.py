"""One apply at a time per registry, for this user on this machine, whatever the working directory or
the environment's name: an advisory lock (flock) on a file named after the registry, holding a note of
who has it.

The kernel releases the lock when its process ends, however it ends, so a lock left by a killed apply
is simply free; the note it left says who that was, and is reported when the lock is taken over.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import hashlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from provena_ops.errors import ProvenaOpsError

LOCK_DIR_VARIABLE = "PROVENA_OPS_LOCK_DIR"


class Locked(ProvenaOpsError):
    pass


def default_lock_dir() -> Path:
    return Path(os.environ.get(LOCK_DIR_VARIABLE) or Path.home() / ".provena-ops" / "locks")


@contextlib.contextmanager
def environment_lock(directory: Path, environment: str, registry: str, command: str) -> Iterator[str | None]:
    """Hold the registry's lock for the block; yields a note when the last holder died holding it."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / (hashlib.sha256(registry.encode()).hexdigest()[:16] + ".lock")
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ProvenaOpsError(
            f"cannot create the apply lock in {directory}: {exc.strerror or exc}",
            hint=f"set {LOCK_DIR_VARIABLE} to a writable directory",
        ) from exc
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(descriptor)
            raise Locked(
                f"another apply holds the lock on '{environment}' ({registry}): process "
                f"{holder.get('pid', '?')} on {holder.get('host', '?')}, user {holder.get('user', '?')}, "
                f"since {holder.get('since', '?')} ({holder.get('command', 'unknown command')})",
                hint="wait for it to finish (the lock is released when that process ends)",
            ) from None
        left = _read(descriptor)
        note = None
        if left:
            note = (
                f"took over the lock on '{environment}' left by process {left.get('pid')} "
                f"({left.get('command', 'unknown command')}, since {left.get('since')}), which ended "
                "without releasing it"
            )
        _write(
            descriptor,
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "user": getpass.getuser(),
                "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "environment": environment,
                "command": command,
            },
        )
        try:
            yield note
        finally:
            _write(descriptor, None)  # released cleanly: the next holder has nothing to report
    finally:
        os.close(descriptor)  # and with it the flock


def _read(descriptor: int) -> dict[str, Any]:
    os.lseek(descriptor, 0, os.SEEK_SET)
    text = os.read(descriptor, 65536).decode(errors="replace")
    try:
        holder = json.loads(text) if text.strip() else {}
    except ValueError:
        return {"command": "an unreadable lock note"}
    return holder if isinstance(holder, dict) else {}


def _write(descriptor: int, holder: dict[str, Any] | None) -> None:
    os.ftruncate(descriptor, 0)
    if holder is not None:
        os.lseek(descriptor, 0, os.SEEK_SET)
        os.write(descriptor, json.dumps(holder).encode())
    os.fsync(descriptor)
