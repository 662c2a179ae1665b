"""What the command modules share: the consoles, the options every command takes, reading progress."""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

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
    metavar="FILE",
    help="Provena's environments file (by default as Provena looks for it: docs/playbooks.md, "
    "Environments). The sandbox environment is always there.",
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
    environment: str | None,
    environments_file: Path | None,
    param: list[str] | None,
    var: list[str] | None = None,
    var_file: list[Path] | None = None,
) -> TargetArgs:
    """The options every targeting command takes, checked once, as one value."""
    from provena_ops.environments.file import parse_params

    variables = parse_variables(var or [], var_file or [])
    return TargetArgs(environment, parse_params(param or []), environments_file, variables=variables)


VAR_OPTION = typer.Option(
    None,
    "--var",
    metavar="NAME=VALUE",
    help="Set the playbook variable NAME (declared under vars:) to the text VALUE (repeatable).",
)
VAR_FILE_OPTION = typer.Option(
    None,
    "--var-file",
    metavar="FILE",
    help="Set playbook variables from a YAML mapping of names to values (repeatable; --var wins).",
)
VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
VAR_FILE_BYTES = 1_048_576


def parse_variables(given: list[str], files: list[Path]) -> dict[str, Any]:
    """--var-file mappings in order, then --var texts: a later value for a name replaces an earlier one,
    as in Terraform. Names are checked here; values as the playbook's own, once templating uses them."""
    from provena_ops.playbook.templating import RESERVED_NAMES

    variables: dict[str, Any] = {}
    for file in files:
        variables.update(_var_file(file))
    for text in given:
        name, equals, value = text.partition("=")
        name = name.strip()
        if not equals or not VARIABLE_NAME.fullmatch(name):
            raise ProvenaOpsError(
                f"{text!r} is not NAME=VALUE",
                where="--var",
                hint="write --var NAME=VALUE, e.g. --var retired=10378.1/1690051 (quote it for the shell)",
            )
        variables[name] = value
    for name in variables:
        if name in RESERVED_NAMES:
            raise ProvenaOpsError(
                f"'{name}' is a reserved name in templates, not a variable",
                where="--var",
                hint=f"{{{{ {name} }}}} always means the built-in {name}; use another name",
            )
    return variables


def _var_file(file: Path) -> dict[str, Any]:
    from provena_ops.playbook.yaml_source import YamlLoadError, load_yaml, read_text

    try:
        if not file.is_file():
            raise ProvenaOpsError(f"{file} is not a file", where="--var-file", hint="give a YAML file")
        with file.open("rb") as opened:
            raw = opened.read(VAR_FILE_BYTES + 1)
    except OSError as exc:
        raise ProvenaOpsError(f"cannot read {file}: {exc.strerror}", where="--var-file") from None
    if len(raw) > VAR_FILE_BYTES:
        raise ProvenaOpsError(
            f"{file} is larger than {VAR_FILE_BYTES:,} bytes", where="--var-file", hint="a vars file is small"
        )
    try:
        loaded = load_yaml(str(file), read_text(str(file), raw))
    except YamlLoadError as exc:
        raise ProvenaOpsError(
            "\n".join(d.render() for d in exc.diagnostics) or f"{file} is not YAML",
            where="--var-file",
            hint="a YAML mapping of variable names to values",
        ) from None
    errors = [d for d in loaded.diagnostics if d.severity == "error"]
    if errors:
        raise ProvenaOpsError(
            "\n".join(d.render() for d in errors), where="--var-file", hint="fix the file, then run again"
        )
    data = loaded.data
    if not isinstance(data, dict):
        raise ProvenaOpsError(
            f"{file} holds {type(data).__name__ if data is not None else 'nothing'}, not a mapping",
            where="--var-file",
            hint="write one `name: value` line per variable",
        )
    for name in data:
        if not isinstance(name, str) or not VARIABLE_NAME.fullmatch(name):
            raise ProvenaOpsError(
                f"{file}: {name!r} is not a variable name",
                where="--var-file",
                hint="names are letters, digits and _ (not first: a digit), at most 64",
            )
    return dict(data)


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


def write_atomically(path: Path, text: str | Iterable[str], kind: OutputKind = PLAN) -> None:
    """Temp file + rename: a reader never sees half a plan, and a crash leaves the old file intact. A
    symbolic link is written through, not replaced. `text` may come in pieces (a large plan's actions)."""
    partial: Path | None = None
    try:
        path = path.resolve() if path.is_symlink() else path
        # A fresh name made exclusively (O_EXCL): a file or link planted under a predictable name beside
        # the target is never written through, truncated or renamed over it.
        descriptor, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        partial = Path(name)
        os.fchmod(descriptor, 0o666 & ~_umask())  # as a plain write would make it (mkstemp makes 0600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.writelines([text] if isinstance(text, str) else text)
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
