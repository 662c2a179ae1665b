"""Plain functions behind the CLI commands, callable from tests and scripts without typer."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .environments import Environments, load_environments
from .playbook.diagnostics import ValidationReport
from .playbook.loader import LoadedPlaybook, load_playbook


def validate(
    files: Sequence[Path],
    *,
    environment: str | None = None,
    params: dict[str, str] | None = None,
    environments_file: Path | None = None,
    environments: Environments | None = None,
) -> list[LoadedPlaybook]:
    """Validate playbooks offline: structure, values, cross-operation rules, environment and params."""
    known = environments or load_environments(environments_file)
    return [load_playbook(file, environments=known, environment=environment, params=params) for file in files]


def report(loaded: LoadedPlaybook) -> ValidationReport:
    operations = len(loaded.playbook.operations) if loaded.playbook else 0
    return ValidationReport(
        file=loaded.file, valid=loaded.valid, operations=operations, diagnostics=loaded.diagnostics
    )
