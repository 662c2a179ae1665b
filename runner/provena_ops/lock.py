"""One apply at a time per environment, on this machine: a lock file created exclusively, naming its
holder. A lock whose process is gone (killed, crashed, machine rebooted) is stale and taken over."""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import ProvenaOpsError

DEFAULT_LOCK_DIR = Path(".provena-ops") / "locks"


class Locked(ProvenaOpsError):
    pass


def _start_time(pid: int) -> str | None:
    """When the process started (clock ticks since boot), so a reused pid is not taken for the holder."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(holder: dict[str, Any]) -> bool:
    pid = int(holder.get("pid", 0))
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    started = holder.get("process_started")
    return started is None or _start_time(pid) in (None, started)


@contextlib.contextmanager
def environment_lock(directory: Path, environment: str, command: str) -> Iterator[str | None]:
    """Hold the environment's lock for the block; yields a note when a stale lock was taken over."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{environment}.lock"
    me = {
        "pid": os.getpid(),
        "process_started": _start_time(os.getpid()),
        "host": socket.gethostname(),
        "user": getpass.getuser(),
        "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": command,
    }
    note = None
    for _ in range(3):
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _holder(path)
            if holder is None:
                continue  # removed or being written just now: try again
            if holder.get("host") == me["host"] and not _alive(holder):
                path.unlink(missing_ok=True)
                note = (
                    f"took over a stale lock on '{environment}' left by process {holder.get('pid')} "
                    f"({holder.get('command', 'unknown command')}, since {holder.get('since')})"
                )
                continue
            raise Locked(
                f"another apply holds the lock on '{environment}': process {holder.get('pid')} on "
                f"{holder.get('host')}, user {holder.get('user')}, since {holder.get('since')} "
                f"({holder.get('command', 'unknown command')})",
                hint=f"wait for it to finish; if that process no longer exists, remove {path}",
            ) from None
        with os.fdopen(descriptor, "w") as file:
            json.dump(me, file)
            file.flush()
            os.fsync(file.fileno())
        break
    else:
        raise Locked(f"could not take the lock {path}", hint="try again; remove the file if it persists")
    try:
        yield note
    finally:
        if _holder(path) == me:
            path.unlink(missing_ok=True)


def _holder(path: Path) -> dict[str, Any] | None:
    try:
        holder = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        time.sleep(0.05)  # a holder between create and write: read again before judging
        try:
            holder = json.loads(path.read_text())
        except (OSError, ValueError):
            return {"pid": 0, "host": socket.gethostname(), "command": "unreadable lock file"}
    return holder if isinstance(holder, dict) else None
