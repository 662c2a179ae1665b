"""`provena-ops apply`: the command-line face of apply (its journals are read by `provena-ops log`)."""

from __future__ import annotations

import contextlib
import shlex
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from provena_ops.apply.journal import DEFAULT_RUNS_DIR, Result
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
)
from provena_ops.errors import ProvenaOpsError
from provena_ops.render.common import shown
from provena_ops.render.outputs import OutputFormat

if TYPE_CHECKING:
    from provena_ops.apply.run import ApplyResult
from provena_ops.environments.target import Target
from provena_ops.plan.model import Action, Plan
from provena_ops.signals import ask

# What apply and undo share: both carry a plan out.
AUTO_APPROVE_OPTION = typer.Option(False, "--auto-approve", help="Apply without asking (for CI).")
CONFIRM_ENVIRONMENT_OPTION = typer.Option(
    None, "--confirm-environment", help="Required to apply to an environment whose stage is PROD."
)
PARALLELISM_OPTION = typer.Option(8, "--parallelism", min=1, max=64, help="Actions carried out at once.")
FAIL_FAST_OPTION = typer.Option(False, "--fail-fast", help="Start no new action after one fails.")
VERBOSE_OPTION = typer.Option(False, "--verbose", "-v", help="List unchanged records too.")
RUNS_DIR_OPTION = typer.Option(
    DEFAULT_RUNS_DIR, "--runs-dir", help="Where run journals are kept (relative to the working directory)."
)
RESULT_FORMAT_OPTION = typer.Option(
    OutputFormat.text,
    "--format",
    help="text, or json: the result as one document on stdout; the plan and report then go to stderr.",
)


class TerminalUI:
    """Shows the plan, asks for approval, and draws progress on stderr when it is a terminal. The plan
    and the question go to `console`: stderr when stdout carries a document for a script."""

    def __init__(self, verbose: bool, console: Console = out) -> None:
        self.verbose = verbose
        self.console = console
        self._reading = ReadProgress() if err.is_terminal else None
        self._bar: Progress | None = None

    def note(self, text: str) -> None:
        err.print(f"note: {text}", markup=False, highlight=False)

    @property
    def reading(self) -> ReadProgress | None:
        return self._reading

    def show(self, plan: Plan) -> None:
        from provena_ops.render.terminal import render_terminal

        if self._reading is not None:
            self._reading.clear()
        render_terminal(plan, self.console, verbose=self.verbose)

    def confirm(self, plan: Plan, target: Target) -> bool:
        if not sys.stdin.isatty():
            raise ProvenaOpsError(
                "apply needs approval, and there is no terminal to ask on; nothing was changed",
                hint="review the plan, then pass --auto-approve (CI) to apply without asking",
            )
        self.console.print()
        self.console.print(
            f"Apply this plan to [bold]{target.name}[/] ({target.stage})? "
            "Only 'yes' will be accepted to approve."
        )
        beside = contextlib.redirect_stdout(sys.stderr) if self.console is err else contextlib.nullcontext()
        with beside:  # `ask` writes its prompt on stdout
            answer = ask("  Enter a value: ")
        return answer is not None and answer.strip() == "yes"

    def executing(self, plan: Plan) -> Callable[[Action, Result], None] | None:
        if not err.is_terminal:
            return None
        changing = sum(1 for action in plan.actions if action.outcome == "change")
        bar = Progress(
            TextColumn("applying"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        )
        task = bar.add_task("", total=changing)
        bar.start()
        self._bar = bar

        def advance(action: Action, result: Result) -> None:
            if action.outcome != "change":
                return
            bar.update(task, advance=1, description=f"{action.key}: {result}")
            if bar.finished:
                bar.stop()

        return advance

    def stop(self) -> None:
        """However apply ends (an interrupt included): the progress bar goes, and the cursor comes back."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        if self._reading is not None:
            self._reading.clear()


def apply_command(
    playbook: Path | None = typer.Argument(
        None, metavar="PLAYBOOK", help="The playbook to apply (or give --plan)."
    ),
    plan_file: Path | None = typer.Option(
        None, "--plan", help="Apply this saved plan (from `plan --out`), refused if anything changed since."
    ),
    auto_approve: bool = AUTO_APPROVE_OPTION,
    confirm_environment: str | None = CONFIRM_ENVIRONMENT_OPTION,
    parallelism: int = PARALLELISM_OPTION,
    fail_fast: bool = FAIL_FAST_OPTION,
    verbose: bool = VERBOSE_OPTION,
    environment: str | None = ENVIRONMENT_OPTION,
    environments_file: Path | None = ENVIRONMENTS_FILE_OPTION,
    param: list[str] | None = PARAM_OPTION,
    var: list[str] | None = VAR_OPTION,
    var_file: list[Path] | None = VAR_FILE_OPTION,
    target: list[str] | None = TARGET_OPTION,
    concurrency: int = CONCURRENCY_OPTION,
    runs_dir: Path = RUNS_DIR_OPTION,
    auth_method: AuthMethod | None = AUTH_METHOD_OPTION,
    output: OutputFormat = RESULT_FORMAT_OPTION,
) -> None:
    """Plan, show the plan, ask for approval, then carry it out, journalling every step.

    Safe to run again at any time: what is already done is skipped, and a run interrupted at any point
    (even by kill -9) is finished by running the same command again. Exit status: 0 every action
    succeeded (or nothing to do), 1 anything failed or was not applied (or a usage error), 130
    interrupted. With --format json, stdout holds only the result (schemas/apply-result.schema.json),
    written once the run has ended; the plan, the question and the report go to stderr.
    """
    from provena_ops.apply.run import ApplyOptions, apply

    ui = TerminalUI(verbose, err if output is OutputFormat.json else out)
    try:
        result = apply(
            playbook,
            ui,
            plan_file=plan_file,
            where=target_args(environment, environments_file, param, var, var_file),
            options=ApplyOptions(
                auto_approve=auto_approve,
                confirm_environment=confirm_environment,
                parallelism=parallelism,
                concurrency=concurrency,
                fail_fast=fail_fast,
                command=shlex.join(["provena-ops", *sys.argv[1:]]),
                runs_dir=runs_dir,
                sign_in=interactive_choice(auth_method),
                only=target_ids(target),
            ),
        )
    finally:
        ui.stop()
    for done in (signal.SIGINT, signal.SIGTERM):  # the run has ended and is journalled: say how, whole
        signal.signal(done, signal.SIG_IGN)
    if not finish(result, runs_dir, output is OutputFormat.json):
        raise typer.Exit(1)


def finish(result: ApplyResult, runs_dir: Path, as_json: bool, console: Console = out) -> bool:
    """The report for people, and with `as_json` the result document on stdout (the report then on
    stderr); True when it all succeeded."""
    if not as_json:
        return report(result, runs_dir, console)
    from provena_ops.render.outputs import apply_document, dump

    succeeded = report(result, runs_dir, err)
    sys.stdout.write(dump(apply_document(result)))
    return succeeded


def report(result: ApplyResult, runs_dir: Path, console: Console = out) -> bool:
    """What an apply did, for people (on `console`: stderr when stdout carries a JSON or Markdown
    plan); True when it all succeeded."""
    if not result.plan.has_changes:
        console.print("\n[green]No changes. Nothing to apply.[/]")
    for action in result.plan.actions:
        if action.outcome == "not_found":  # a typo is not a success: said again after the run
            console.print(
                f"[magenta]not found[/] {shown(action.key)}: {shown(action.why or '')}", highlight=False
            )
    for key, outcome in result.outcomes.items():
        if outcome.result in ("failed", "skipped", "unknown"):
            colour = {"failed": "red", "skipped": "yellow", "unknown": "magenta"}[outcome.result]
            console.print(
                f"[{colour}]{outcome.result}[/] {shown(key)}: {shown(outcome.detail)}", highlight=False
            )
    if result.stopped:
        console.print(f"[yellow]stopped: {result.stopped}[/]")
    style = "green" if result.recap.succeeded else "red"
    console.print(f"\n[bold {style}]{result.recap.line()}[/]")
    elsewhere = "" if runs_dir == DEFAULT_RUNS_DIR else f" --runs-dir {shlex.quote(str(runs_dir))}"
    console.print(
        f"[dim]journal: {shown(str(result.journal))} "
        f"(provena-ops log show {result.run_id}{shown(elsewhere)})[/]",
        highlight=False,
    )
    return result.recap.succeeded
