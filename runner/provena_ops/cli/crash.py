"""What a bug leaves behind: one line on the terminal, and a crash report file for whoever fixes it.

The report holds the traceback, the version and the command line, each passed through redaction (a frame
may quote a token or a secret); never the environment's values.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import traceback
from datetime import UTC, datetime
from pathlib import Path

from provena_ops import __version__
from provena_ops.safety.redaction import scrub

CRASH_DIR_VARIABLE = "PROVENA_OPS_CRASH_DIR"


def crash_dir() -> Path:
    explicit = os.environ.get(CRASH_DIR_VARIABLE)
    return Path(explicit) if explicit else Path.home() / ".provena-ops" / "crashes"


def write_crash_report(exc: BaseException) -> Path | None:
    """The report's path, or None when no directory would take it (the terminal line says so)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text = scrub(
        f"provena-ops {__version__} crash report, {stamp}\n"
        f"python {platform.python_version()} on {platform.platform()}\n"
        f"command: {' '.join(['provena-ops', *sys.argv[1:]])}\n"
        f"working directory: {Path.cwd()}\n\n" + "".join(traceback.format_exception(exc))
    )
    for directory in (crash_dir(), Path(tempfile.gettempdir())):
        try:
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / f"provena-ops-crash-{stamp}-{os.getpid()}.txt"
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                file.write(text)
            return path
        except OSError:
            continue
    return None
