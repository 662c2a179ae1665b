"""`provena-ops undo RUN`: put back what a run changed, with the review and safety of apply."""

from __future__ import annotations

import shlex
import signal
import sys
from pathlib import Path

import typer

from provena_ops.cli.apply import (
    AUTO_APPROVE_OPTION,
    CONFIRM_ENVIRONMENT_OPTION,
    FAIL_FAST_OPTION,
    PARALLELISM_OPTION,
    RUNS_DIR_OPTION,
    VERBOSE_OPTION,
    TerminalUI,
    finish,
)
from provena_ops.cli.auth import AUTH_METHOD_OPTION, AuthMethod, interactive_choice
from provena_ops.cli.options import (
    CONCURRENCY_OPTION,
    ENVIRONMENT_OPTION,
    ENVIRONMENTS_FILE_OPTION,
    PARAM_OPTION,
    err,
    out,
    target_args,
    write_atomically,
)
from provena_ops.cli.outputs import PLAN, RESTORE_PLAYBOOK, check_output
from provena_ops.cli.plan import PlanFormat
from provena_ops.errors import ProvenaOpsError
from provena_ops.plan.model import Plan
from provena_ops.playbook.yaml_source import MAX_BYTES


class UndoUI(TerminalUI):
    """Shows the plan in the chosen format, and saves it first when --out asks. When the undo is carried
    out with --format json, stdout is for its result: the plan is shown on stderr, as apply shows it."""

    def __init__(self, verbose: bool, output: PlanFormat, save: Path | None, plan_only: bool) -> None:
        super().__init__(verbose, out if output is PlanFormat.text else err)
        self.output = output
        self.save = save
        self.plan_only = plan_only

    def show(self, plan: Plan) -> None:
        from provena_ops.render.json_format import json_chunks
        from provena_ops.render.markdown import render_markdown

        if self.save is not None:
            write_atomically(self.save, json_chunks(plan))
        if self.output is PlanFormat.json and self.plan_only:
            sys.stdout.writelines(json_chunks(plan))
        elif self.output is PlanFormat.markdown:
            sys.stdout.write(render_markdown(plan, full_plan_at=str(self.save) if self.save else None))
        else:
            super().show(plan)


def undo_command(
    run: str = typer.Argument(
        ..., metavar="RUN", help="The run to undo: its id (or unique start) from `log list`, or last."
    ),
    force: list[str] | None = typer.Option(
        None, "--force", help="Restore this record although it changed after the run (repeatable)."
    ),
    plan_only: bool = typer.Option(
        False, "--plan-only", help="Show (and --out save) the plan; change nothing."
    ),
    save: Path | None = typer.Option(None, "--out", help="Save the undo's plan as JSON."),
    plan_file: Path | None = typer.Option(
        None, "--plan", help="Carry out this saved undo plan, refused if anything changed since."
    ),
    write_playbook: Path | None = typer.Option(
        None,
        "--write-playbook",
        help="Write the undo as a restore playbook (to review in a pull request) and stop; contacts nothing.",
    ),
    output: PlanFormat = typer.Option(PlanFormat.text, "--format", help="text, json, or markdown."),
    auto_approve: bool = AUTO_APPROVE_OPTION,
    confirm_environment: str | None = CONFIRM_ENVIRONMENT_OPTION,
    parallelism: int = PARALLELISM_OPTION,
    fail_fast: bool = FAIL_FAST_OPTION,
    verbose: bool = VERBOSE_OPTION,
    environment: str | None = ENVIRONMENT_OPTION,
    environments_file: Path | None = ENVIRONMENTS_FILE_OPTION,
    param: list[str] | None = PARAM_OPTION,
    concurrency: int = CONCURRENCY_OPTION,
    runs_dir: Path = RUNS_DIR_OPTION,
    auth_method: AuthMethod | None = AUTH_METHOD_OPTION,
) -> None:
    """Undo a run: put every record it changed back as its journal says it was before.

    Edits are undone by Provena's update job with the record as it was, deletions by the registry admin
    import (item, access settings, lock state and history) and a relodge of the graph. A record changed
    since the run is refused unless --force names it. The undo is a journalled run: repeat the command
    to finish it after a crash; undo it to redo the original change. Exit status as apply (with
    --plan-only, as plan: 0 nothing to undo, 2 changes, 1 problems). --format json writes the plan
    with --plan-only, else the result as apply does (schemas/apply-result.schema.json).
    """
    from provena_ops.apply.run import ApplyOptions
    from provena_ops.apply.undo import NothingToUndo, UndoRequest, plan_undo, read_run, resolve_run, undo

    to_stdout = write_playbook is not None and str(write_playbook) == "-"
    if write_playbook is not None and not to_stdout:
        check_output(write_playbook, RESTORE_PLAYBOOK, runs_dir=runs_dir)
    if write_playbook is not None:
        from provena_ops.apply.undo import playbook_text, undo_playbook

        path, _ = resolve_run(runs_dir, run)
        try:
            undone = read_run(path)
        except NothingToUndo as exc:
            out.print(exc.message)
            return
        text = playbook_text(undo_playbook(undone))
        size = len(text.encode())
        if size > MAX_BYTES:
            raise ProvenaOpsError(
                f"the undo of run {undone.started.run_id} would be a playbook of {size / 2**20:.1f} MB, more "
                f"than a playbook may be ({MAX_BYTES // 2**20} MB); nothing was written",
                hint=f"undo it directly (planned and approved the same way): provena-ops undo "
                f"{undone.started.run_id}",
            )
        if to_stdout:
            sys.stdout.write(text)
            return
        write_atomically(write_playbook, text, RESTORE_PLAYBOOK)
        out.print(
            f"Wrote {write_playbook}: the undo of run {undone.started.run_id} "
            f"({len(undone.restore.images)} records). Review it: provena-ops plan {write_playbook}"
        )
        return
    if save is not None:
        check_output(save, PLAN, runs_dir=runs_dir)
    if plan_only and plan_file is not None:
        raise ProvenaOpsError("--plan-only plans; --plan carries out a saved plan", hint="give one of them")
    ui = UndoUI(verbose, output, save, plan_only)
    request = UndoRequest(run, frozenset(force or []), plan_file)
    where = target_args(environment, environments_file, param)
    options = ApplyOptions(
        auto_approve=auto_approve,
        confirm_environment=confirm_environment,
        parallelism=parallelism,
        concurrency=concurrency,
        fail_fast=fail_fast,
        command=shlex.join(["provena-ops", *sys.argv[1:]]),
        runs_dir=runs_dir,
        sign_in=interactive_choice(auth_method),
    )
    try:
        if plan_only:
            made = plan_undo(request, ui, where=where, options=options)
            ui.show(made)
            if made.problems:
                raise typer.Exit(1)
            if made.has_changes:
                raise typer.Exit(2)
            return
        result = undo(request, ui, where=where, options=options)
    except NothingToUndo as exc:
        (out if output is PlanFormat.text else err).print(exc.message)
        return
    finally:
        ui.stop()
    for done in (signal.SIGINT, signal.SIGTERM):
        signal.signal(done, signal.SIG_IGN)
    as_json = output is PlanFormat.json
    if not finish(result, runs_dir, as_json, out if output is PlanFormat.text else err):
        raise typer.Exit(1)
