"""What the command modules share: the consoles, the options every command takes, reading progress."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import typer
from rich.console import Console

from provena_ops.cli.outputs import PLAN, OutputKind
from provena_ops.environments.target import TargetArgs
from provena_ops.errors import ProvenaOpsError

out = Console(soft_wrap=True)  # plans and reports go to logs and CI too: never break a line mid-sentence
err = Console(stderr=True, soft_wrap=True)

ENVIRONMENT_OPTION = typer.Option(
    None, "--environment", "-e", help="Target this environment instead of the playbook's own."
)
ENVIRONMENTS_FILE_OPTION = typer.Option(
    None,
    "--environments",
    help="Provena environments file (default: $PROVENA_OPS_ENVIRONMENTS, ./environments/environments.json, "
    "./environments.json; the sandbox environment is always available).",
)
PARAM_OPTION = typer.Option(
    None, "--param", help="Environment replacement as id:value (repeatable; the value may contain ':')."
)
TARGET_OPTION = typer.Option(
    None,
    "--target",
    metavar="ID",
    help="Only the actions on this record and what they depend on (repeatable), as Terraform's -target: "
    "for exceptional cases, not routinely.",
)
CONCURRENCY_OPTION = typer.Option(16, "--concurrency", min=1, max=64, help="Reads in flight at once.")


def target_args(
    environment: str | None, environments_file: Path | None, param: list[str] | None
) -> TargetArgs:
    """The three options every targeting command takes, checked once, as one value."""
    from provena_ops.environments.file import parse_params

    return TargetArgs(environment, parse_params(param or []), environments_file)


class ReadProgress:
    """One self-updating line on stderr while reading (only on a terminal), at most ten updates a second:
    printing every one of 10,000 reads would cost more than the reads."""

    def __init__(self) -> None:
        self.shown_at = 0.0
        self.width = 0

    def __call__(self, label: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.shown_at < 0.1:
            return
        self.shown_at = now
        text = f"reading: {done:,} of {total:,} reads done ({label})"
        self.width = max(self.width, len(text))
        err.print(text.ljust(self.width), end="\r", highlight=False, markup=False)

    def clear(self) -> None:
        if self.width:
            err.print(" " * self.width, end="\r", highlight=False, markup=False)
            self.width = 0


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomically(path: Path, text: str, kind: OutputKind = PLAN) -> None:
    """Temp file + rename: a reader never sees half a plan, and a crash leaves the old file intact. A
    symbolic link is written through, not replaced."""
    partial: Path | None = None
    try:
        path = path.resolve() if path.is_symlink() else path
        # A fresh name made exclusively (O_EXCL): a file or link planted under a predictable name beside
        # the target is never written through, truncated or renamed over it.
        descriptor, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        partial = Path(name)
        os.fchmod(descriptor, 0o666 & ~_umask())  # as a plain write would make it (mkstemp makes 0600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(partial, path)
    except OSError as exc:
        if partial is not None:
            partial.unlink(missing_ok=True)
        if kind is not PLAN:
            raise ProvenaOpsError(
                f"cannot save the {kind.what} to {path}: {exc.strerror or exc}",
                hint=f"nothing was written; choose a writable {kind.option} path",
            ) from exc
        raise ProvenaOpsError(
            f"cannot save the plan to {path}: {exc.strerror or exc}",
            hint="the plan is shown here but not saved; choose a writable --out path and plan again",
        ) from exc


def target_ids(given: list[str] | None) -> frozenset[str]:
    """--target values as record ids, refused when they could not be one."""
    ids = set()
    for value in given or []:
        record = value.strip()
        if not record or len(record) > 200 or any(ord(char) < 32 or ord(char) == 127 for char in record):
            raise ProvenaOpsError(
                f"{value!r} is not a record id",
                where="--target",
                hint="give the handle id of a record in the plan, e.g. --target 10378.1/1690051",
            )
        ids.add(record)
    return frozenset(ids)
