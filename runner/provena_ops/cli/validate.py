"""`provena-ops validate`: playbooks and environments files checked offline, every problem located."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import typer

from provena_ops.cli.options import (
    ENVIRONMENT_OPTION,
    ENVIRONMENTS_FILE_OPTION,
    PARAM_OPTION,
    VAR_FILE_OPTION,
    VAR_OPTION,
    err,
    target_args,
)
from provena_ops.errors import ProvenaOpsError
from provena_ops.playbook.loader import LoadedPlaybook
from provena_ops.text import visible


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


def validate(
    playbooks: list[Path] | None = typer.Argument(
        None, metavar="PLAYBOOK...", help="Playbook files to check."
    ),
    changed_since: str | None = typer.Option(
        None, "--changed-since", help="Check every playbook under playbooks/ changed since this git ref."
    ),
    environment: str | None = ENVIRONMENT_OPTION,
    environments_file: Path | None = ENVIRONMENTS_FILE_OPTION,
    param: list[str] | None = PARAM_OPTION,
    var: list[str] | None = VAR_OPTION,
    var_file: list[Path] | None = VAR_FILE_OPTION,
    output: OutputFormat = typer.Option(
        OutputFormat.text, "--format", help="text for people, json for tools."
    ),
) -> None:
    """Check playbooks offline; every problem is reported with file:line:column, what was expected and a hint.

    With `--environments FILE` and no playbook, checks the environments file alone. Exit status: 0 when
    everything is valid (warnings allowed), 1 otherwise.
    """
    from provena_ops import api

    if not playbooks and changed_since is None and environments_file is not None:
        _validate_environments(environments_file, output)
        return
    if changed_since is not None:
        from provena_ops.gitops.review import changed_playbooks

        if playbooks:
            raise ProvenaOpsError("give playbook files or --changed-since, not both")
        playbooks = changed_playbooks(changed_since, Path.cwd())
        if not playbooks:
            err.print(f"No playbook changed since {changed_since}: nothing to validate.", highlight=False)
            return
    elif not playbooks:
        raise ProvenaOpsError(
            "validate needs playbook files",
            hint="provena-ops validate FILE..., --changed-since REF, or --environments FILE alone",
        )
    loaded = api.validate(playbooks, target_args(environment, environments_file, param, var, var_file))
    if output is OutputFormat.json:
        print(json.dumps([api.report(item).model_dump(mode="json") for item in loaded], indent=2))
    else:
        for item in loaded:
            _print_validation(item)
    if not all(item.valid for item in loaded):
        raise typer.Exit(1)


def _validate_environments(path: Path, output: OutputFormat) -> None:
    from provena_ops.environments.file import check_environments, read_environments_text

    parsed, diagnostics = check_environments(str(path), read_environments_text(path))
    errors = [d for d in diagnostics if d.severity == "error"]
    if output is OutputFormat.json:
        report = {
            "file": str(path),
            "valid": parsed is not None,
            "environments": len(parsed) if parsed is not None else 0,
            "diagnostics": [d.model_dump(mode="json") for d in diagnostics],
        }
        print(json.dumps([report], indent=2))
    else:
        for diagnostic in diagnostics:
            print(visible(diagnostic.render()))
        warnings = len(diagnostics) - len(errors)
        tail = f", {warnings} warning{'s' if warnings != 1 else ''}" if warnings else ""
        if parsed is not None:
            count = len(parsed)
            print(f"{path}: valid ({count} environment{'s' if count != 1 else ''}{tail})")
        else:
            print(f"{path}: {len(errors)} error{'s' if len(errors) != 1 else ''}{tail}")
    if parsed is None:
        raise typer.Exit(1)


def _print_validation(loaded: LoadedPlaybook) -> None:
    for diagnostic in loaded.diagnostics:
        print(visible(diagnostic.render()))
    errors = len(loaded.errors)
    warnings = len(loaded.diagnostics) - errors
    tail = f", {warnings} warning{'s' if warnings != 1 else ''}" if warnings else ""
    if loaded.valid and loaded.playbook is not None:
        count = len(loaded.playbook.operations)
        print(
            f"{loaded.file}: valid ({count} operation{'s' if count != 1 else ''}, "
            f"environment {loaded.environment}{tail})"
        )
    else:
        print(f"{loaded.file}: {errors} error{'s' if errors != 1 else ''}{tail}")
