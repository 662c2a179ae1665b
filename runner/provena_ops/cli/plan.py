"""`provena-ops plan`: read live state, show what apply would change, save it for review."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path

import typer

from provena_ops.apply.journal import DEFAULT_RUNS_DIR
from provena_ops.cli.auth import AUTH_METHOD_OPTION, AuthMethod, interactive_choice
from provena_ops.cli.options import (
    CONCURRENCY_OPTION,
    ENVIRONMENT_OPTION,
    ENVIRONMENTS_FILE_OPTION,
    PARAM_OPTION,
    TARGET_OPTION,
    VAR_FILE_OPTION,
    VAR_OPTION,
    ReadProgress,
    err,
    out,
    target_args,
    target_ids,
    write_atomically,
)
from provena_ops.cli.outputs import PLAN, check_output
from provena_ops.errors import Interrupted, ProvenaOpsError
from provena_ops.plan.model import Plan


class PlanFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


def plan(
    playbook: Path | None = typer.Argument(
        None, metavar="PLAYBOOK", help="The playbook to plan (or give --changed-since)."
    ),
    save: Path | None = typer.Option(
        None, "--out", help="Save the plan as JSON (for review and `apply --plan`)."
    ),
    changed_since: str | None = typer.Option(
        None, "--changed-since", help="Plan every playbook under playbooks/ changed since this git ref."
    ),
    out_dir: Path | None = typer.Option(
        None, "--out-dir", help="With --changed-since: save each plan as JSON in this directory."
    ),
    output: PlanFormat = typer.Option(
        PlanFormat.text, "--format", help="text, json, or markdown (PR comments)."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="List unchanged records too."),
    environment: str | None = ENVIRONMENT_OPTION,
    environments_file: Path | None = ENVIRONMENTS_FILE_OPTION,
    param: list[str] | None = PARAM_OPTION,
    var: list[str] | None = VAR_OPTION,
    var_file: list[Path] | None = VAR_FILE_OPTION,
    target: list[str] | None = TARGET_OPTION,
    concurrency: int = CONCURRENCY_OPTION,
    auth_method: AuthMethod | None = AUTH_METHOD_OPTION,
) -> None:
    """Read live state and show what apply would change, record by record, field by field.

    Exit status: 0 no changes, 2 changes present, 1 error (a plan with problems or a usage error
    included), 130 interrupted.
    """
    from provena_ops import api
    from provena_ops.render.json_format import json_chunks

    only = target_ids(target)
    if changed_since is not None or out_dir is not None:
        from provena_ops.cli.gitops import plan_changed

        if only:
            raise ProvenaOpsError(
                "--target narrows one playbook's plan, not the plans of every changed playbook",
                hint="plan the playbook itself: provena-ops plan PLAYBOOK --target ID",
            )
        if playbook is not None or save is not None or changed_since is None:
            wrong = (
                "--out-dir goes with --changed-since"
                if changed_since is None
                else "--changed-since plans the playbooks changed since REF, so it takes no PLAYBOOK"
                if playbook is not None
                else "--out saves one playbook's plan; with --changed-since, plans go to --out-dir"
            )
            raise ProvenaOpsError(
                wrong, hint="give either a PLAYBOOK (with --out), or --changed-since REF (with --out-dir)"
            )
        where = target_args(environment, environments_file, param, var, var_file)
        plan_changed(
            changed_since, out_dir, output.value, verbose, where, concurrency, interactive_choice(auth_method)
        )
        return
    if playbook is None:
        raise ProvenaOpsError(
            "plan needs a playbook", hint="provena-ops plan PLAYBOOK, or --changed-since REF"
        )
    if save is not None:
        _check_writable(save, playbook)
    progress = ReadProgress() if err.is_terminal else None
    try:
        made = api.plan(
            playbook,
            target_args(environment, environments_file, param, var, var_file),
            api.PlanOptions(concurrency, progress, interactive_choice(auth_method), only),
        )
    except KeyboardInterrupt:
        raise Interrupted(
            "plan interrupted while reading; plan only reads, so nothing was changed"
            + (" and no plan was saved" if save is not None else ""),
            hint="run it again when ready",
        ) from None
    finally:
        if progress is not None:
            progress.clear()
    unsaved: ProvenaOpsError | None = None
    if save is not None:
        try:
            write_atomically(save, json_chunks(made))
        except ProvenaOpsError as exc:
            unsaved, save = exc, None  # still show the plan, and claim no file
    render(made, output, verbose, saved_at=save)
    if unsaved is not None:
        raise unsaved
    if made.problems:
        raise typer.Exit(1)
    if made.has_changes:
        raise typer.Exit(2)


def show(
    plan_file: Path = typer.Argument(..., metavar="PLAN.json", help="A plan saved with `plan --out`."),
    output: PlanFormat = typer.Option(
        PlanFormat.text, "--format", help="text, json, or markdown (PR comments)."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="List unchanged records too."),
) -> None:
    """Show a saved plan again, as `plan` showed it, without contacting Provena.

    The file is read as strictly as `apply --plan` reads it: anything but a plan `plan --out` wrote is
    refused, with where and why.
    """
    from provena_ops.apply.review import read_saved_plan
    from provena_ops.playbook.loader import is_saved_plan

    if plan_file.suffix in (".yaml", ".yml") and plan_file.is_file() and not is_saved_plan(plan_file):
        raise ProvenaOpsError(
            f"{plan_file} is a playbook, not a saved plan",
            hint=f"plan it (provena-ops plan {plan_file}), or save a plan to show: "
            f"provena-ops plan {plan_file} --out plan.json",
        )
    render(read_saved_plan(plan_file), output, verbose, saved_at=plan_file)


def render(made: Plan, output: PlanFormat, verbose: bool, saved_at: Path | None = None) -> None:
    """A plan on stdout in the format asked for."""
    from provena_ops.render.json_format import json_chunks
    from provena_ops.render.markdown import render_markdown
    from provena_ops.render.terminal import render_terminal

    if output is PlanFormat.json:
        sys.stdout.writelines(json_chunks(made))
    elif output is PlanFormat.markdown:
        sys.stdout.write(render_markdown(made, full_plan_at=str(saved_at) if saved_at else None))
    else:
        render_terminal(made, out, verbose=verbose)


def _check_writable(path: Path, playbook: Path) -> None:
    """Refuse an unusable --out before reading anything, rather than losing the plan after: the plan is
    written beside the file and renamed over it, which would replace a device, a pipe, the playbook, a
    journal, or any file that is not a plan."""
    check_output(path, PLAN, runs_dir=DEFAULT_RUNS_DIR, protect={playbook: "the playbook itself"})
