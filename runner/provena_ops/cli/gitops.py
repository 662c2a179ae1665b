"""`plan --changed-since` and `init`: the command-line face of the pull-request workflow."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import typer

from provena_ops.cli.options import err, out, write_atomically
from provena_ops.environments.signin import SignInChoice
from provena_ops.environments.target import TargetArgs
from provena_ops.errors import Interrupted, ProvenaOpsError
from provena_ops.gitops.review import PlaybookOutcome, changed_playbooks, plan_file_name, render_comment
from provena_ops.safety.redaction import scrub


def plan_changed(
    ref: str,
    out_dir: Path | None,
    output: str,
    verbose: bool,
    where: TargetArgs,
    concurrency: int,
    sign_in: SignInChoice,
) -> None:
    """Plans every playbook changed since `ref`; one failing playbook does not hide the others' plans.

    Saved plans (--out-dir) are only those that can be applied: a plan with problems is shown, not kept,
    so the merge job never tries it. Exit status: 1 if any playbook could not be planned or has problems,
    else 2 if any has changes, else 0.
    """
    from provena_ops import api
    from provena_ops.api import PlaybookInvalid
    from provena_ops.render.json_format import render_json
    from provena_ops.render.terminal import render_terminal

    playbooks = changed_playbooks(ref, Path.cwd())
    if out_dir is not None:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            earlier = sorted(out_dir.glob("*.json"))
            for stale in earlier:  # whatever is in --out-dir is what gets applied: only this run's plans
                stale.unlink()
        except OSError as exc:
            raise ProvenaOpsError(f"cannot prepare --out-dir {out_dir}: {exc.strerror}") from None
        if earlier:
            err.print(f"note: replaced {len(earlier)} earlier plan(s) in {out_dir}", highlight=False)
    outcomes: list[PlaybookOutcome] = []
    for playbook in playbooks:
        try:
            made = api.plan(playbook, where, api.PlanOptions(concurrency=concurrency, sign_in=sign_in))
        except KeyboardInterrupt:
            raise Interrupted(
                f"plan interrupted while reading for {playbook}; plan only reads, so nothing was changed"
                + (f" (the plans in {out_dir} are incomplete)" if out_dir is not None else ""),
                hint="run it again when ready",
            ) from None
        except PlaybookInvalid as exc:
            outcomes.append(PlaybookOutcome(str(playbook), error=exc.render()))
            continue
        except ProvenaOpsError as exc:
            outcomes.append(PlaybookOutcome(str(playbook), error=scrub(exc.render())))
            continue
        saved_as = None
        if out_dir is not None and not made.problems:
            saved_as = plan_file_name(str(playbook))
            write_atomically(out_dir / saved_as, render_json(made))
        outcomes.append(PlaybookOutcome(str(playbook), plan=made, saved_as=saved_as))

    if output == "markdown":
        sys.stdout.write(render_comment(outcomes, ref))
    elif output == "json":
        sys.stdout.write(
            json.dumps(
                [
                    {
                        "playbook": outcome.playbook,
                        "plan": json.loads(render_json(outcome.plan)) if outcome.plan else None,
                        "error": outcome.error,
                        "saved_as": outcome.saved_as,
                    }
                    for outcome in outcomes
                ],
                indent=2,
            )
            + "\n"
        )
    else:
        if not outcomes:
            out.print(f"No playbook changed since {ref}: nothing to plan.", highlight=False)
        for outcome in outcomes:
            out.rule(outcome.playbook)
            if outcome.plan is not None:
                render_terminal(outcome.plan, out, verbose=verbose)
            else:
                err.print(outcome.error or "", markup=False, highlight=False)
    if any(outcome.error or (outcome.plan and outcome.plan.problems) for outcome in outcomes):
        raise typer.Exit(1)
    if any(outcome.plan and outcome.plan.has_changes for outcome in outcomes):
        raise typer.Exit(2)


gitops_app = typer.Typer(
    rich_markup_mode="markdown",
    help="Steps of the pull-request workflow that `provena-ops init` generates (run in GitHub Actions).",
    no_args_is_help=True,
)


@gitops_app.command("comment")
def comment(
    pull_request: int = typer.Option(..., "--pr", help="The pull request's number."),
    body_file: Path = typer.Option(
        ..., "--body-file", help="The comment, e.g. from `plan --format markdown`."
    ),
) -> None:
    """Post the plan on the pull request, editing this workflow's earlier plan comment if there is one."""
    from provena_ops.gitops.github import GitHub, upsert_plan_comment

    try:
        body = body_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProvenaOpsError(f"cannot read the comment from {body_file}: {exc}") from None
    if not body.strip():
        raise ProvenaOpsError(
            f"{body_file} is empty: planning produced no comment", hint="see the plan step's log for why"
        )
    how, number = upsert_plan_comment(GitHub.from_environment(), pull_request, body)
    out.print(f"{how} plan comment {number} on pull request #{pull_request}", highlight=False)


@gitops_app.command("fetch-plans")
def fetch_plans(
    sha: str = typer.Option(..., "--sha", help="The merge commit (GITHUB_SHA)."),
    directory: Path = typer.Option(..., "--dir", help="Where to put the reviewed plans."),
    workflow: str = typer.Option(
        "provena-ops.yml", "--workflow", help="The workflow file that planned them."
    ),
) -> None:
    """Fetch the plans reviewed on the pull request that `--sha` merged (its last successful plan run)."""
    from provena_ops.gitops.github import GitHub, fetch_reviewed_plans

    try:
        directory.mkdir(parents=True, exist_ok=True)  # even for no plan: apply-reviewed then has none
    except OSError as exc:
        raise ProvenaOpsError(f"cannot create --dir {directory}: {exc.strerror}") from None
    saved = fetch_reviewed_plans(GitHub.from_environment(), sha, workflow, directory)
    if not saved:
        out.print("The pull request changed no playbook with a plan to apply.", highlight=False)
    for path in saved:
        out.print(f"reviewed plan: {path}", highlight=False)


@gitops_app.command("apply-reviewed")
def apply_reviewed(
    directory: Path = typer.Argument(
        ..., metavar="DIR", help="The reviewed plans (from `gitops fetch-plans`)."
    ),
    confirm_environment: list[str] | None = typer.Option(
        None,
        "--confirm-environment",
        help="Apply to this production environment outside the generated workflow (repeatable).",
    ),
    workflow: str = typer.Option(
        "provena-ops.yml", "--workflow", help="The workflow file that runs this step after a merge."
    ),
) -> None:
    """Apply every reviewed plan, each refused if anything changed since it was reviewed.

    In the generated workflow, after a merge, merging the reviewed pull request is the confirmation,
    production environments included. Anywhere else a production environment must be named with
    `--confirm-environment`. Every plan is tried; exit status 1 if any was refused or failed.
    """
    from provena_ops.apply.journal import DEFAULT_RUNS_DIR
    from provena_ops.apply.review import read_saved_plan
    from provena_ops.apply.run import ApplyOptions, apply
    from provena_ops.cli.apply import TerminalUI, report
    from provena_ops.gitops.review import not_in_reviewed_workflow

    if not directory.is_dir():  # fetch-plans creates it even when the merge reviewed no plan: a typo
        raise ProvenaOpsError(
            f"{directory} is not a directory of reviewed plans; nothing was applied",
            hint="give the --dir that `provena-ops gitops fetch-plans` wrote to",
        )
    plans = sorted(path for path in directory.glob("*.json") if not path.name.startswith("."))
    if not plans:
        out.print(f"No reviewed plan in {directory}: nothing to apply.", highlight=False)
        return
    outside = not_in_reviewed_workflow(directory, workflow)
    confirmed = set(confirm_environment or [])
    failed = []
    for path in plans:
        out.rule(str(path.name))
        try:
            environment = read_saved_plan(path).environment.name
            if outside is not None and environment not in confirmed:
                _refuse_production_outside(environment, outside)
            options = ApplyOptions(
                auto_approve=True,
                confirm_environment=environment,
                command=shlex.join(["provena-ops", *sys.argv[1:]]),
                runs_dir=DEFAULT_RUNS_DIR,
            )
            result = apply(None, TerminalUI(verbose=False), plan_file=path, options=options)
            if not report(result, DEFAULT_RUNS_DIR):
                failed.append(path.name)
        except ProvenaOpsError as exc:
            err.print(scrub(exc.render()), markup=False, highlight=False)
            failed.append(path.name)
    if failed:
        err.print(f"not applied in full: {', '.join(failed)}", markup=False, highlight=False)
        raise typer.Exit(1)


def _refuse_production_outside(environment: str, why: str) -> None:
    """Outside the workflow, a production environment is confirmed by name or not applied to."""
    from provena_ops.environments.file import load_environments

    env = load_environments().envs.get(environment)
    if env is not None and env.is_production:  # an unknown one is refused by apply itself
        raise ProvenaOpsError(
            f"'{environment}' is a production environment, and this is not the generated workflow "
            f"applying a merge ({why}); nothing was contacted",
            hint=f"merge the reviewed pull request to apply it, or confirm it here: "
            f"--confirm-environment {environment}",
        )


def init_command(
    directory: Path = typer.Argument(
        Path("."), metavar="DIR", help="Where to create the playbook repository."
    ),
    install: str | None = typer.Option(
        None, "--install", help="How the CI workflow installs provena-ops (pip requirement or git URL)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace files that already exist."),
    branch: str = typer.Option(
        "main", "--branch", help="The branch merges land on: the workflow applies pushes to it."
    ),
) -> None:
    """Scaffold a playbook repository: environments, playbooks/, a pre-commit hook and a GitHub Actions
    workflow that plans pull requests and applies the reviewed plans on merge."""
    from provena_ops.gitops.scaffold import WORKFLOW_PATH
    from provena_ops.gitops.scaffold import init as scaffold

    made = scaffold(directory, install=install, force=force, branch=branch)
    for name in made.written:
        out.print(f"wrote {directory / name}", highlight=False)
    into = "" if directory == Path(".") else f"cd {shlex.quote(str(directory))} && "
    out.print(
        "\nNext:\n"
        f"  1. {into}git init -b {branch}   (if it is not a repository yet)\n"
        "  2. pre-commit install   (validate playbooks before each commit)\n"
        f"  3. check PROVENA_OPS_INSTALL in {WORKFLOW_PATH}\n"
        "  4. add your deployment to environments/environments.json and store its credentials: the\n"
        "     writing one in the GitHub Environment provena-apply, a read-only one as a repository\n"
        "     secret (docs/gitops.md in provena-ops, section 5)",
        highlight=False,
    )
