"""The `provena-ops` command line: the app, its command groups, and errors mapped to exit codes.

Each command lives in the module of its group (validate, plan, apply, auth, gitops, sandbox, info): thin
wrappers that parse, call `api`, print.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any, cast, get_args

import typer

from provena_ops.cli.apply import apply_command
from provena_ops.cli.auth import auth_app
from provena_ops.cli.find import find, record
from provena_ops.cli.gitops import gitops_app, init_command
from provena_ops.cli.info import environments, schema, version
from provena_ops.cli.log import log_app
from provena_ops.cli.options import (
    err,
)
from provena_ops.cli.plan import plan, show
from provena_ops.cli.sandbox import sandbox_app
from provena_ops.cli.undo import undo_command
from provena_ops.cli.validate import validate
from provena_ops.errors import Interrupted, ProvenaOpsError
from provena_ops.safety.redaction import scrub
from provena_ops.signals import interrupted, terminate_like_interrupt
from provena_ops.text import visible


def _conventional_type(self: Any, ctx: Any) -> str | None:
    """Help's type column as click and most CLIs write it (PATH, TEXT, INTEGER RANGE, [text|json]; nothing
    for a flag) instead of typer's Python-ish `<bool>`, `<list[str]>`."""
    if self.metavar is not None:
        return str(self.metavar)
    if getattr(self, "is_flag", False) or getattr(self, "count", False):
        return None
    described = self.type_descriptor
    if described.is_choice and described.choices:
        return "[" + "|".join(str(getattr(c, "value", c)) for c in described.choices) + "]"
    if described.is_path:
        return "PATH"
    annotation = described.annotation
    inner = (get_args(annotation) or (annotation,))[0] if described.is_list else annotation
    return {int: "INTEGER", float: "NUMBER"}.get(inner, "TEXT")


typer.core.TyperOption.display_type_rich = _conventional_type  # type: ignore[method-assign]
typer.core.TyperArgument.display_type_rich = _conventional_type  # type: ignore[method-assign]

app = typer.Typer(
    rich_markup_mode="markdown",  # (every group) reflows the docstrings' wrapped lines in --help
    help="Declarative playbooks for Provena administration, with an embedded Provena sandbox.",
    no_args_is_help=True,
    add_completion=True,  # typer's --install-completion and --show-completion (bash, zsh, fish, ...)
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["--help", "-h"]},  # inherited; "Try --help" says the long one
)


def _print_version(asked: bool) -> None:
    if asked:
        from provena_ops import __version__

        print(__version__)
        raise typer.Exit()


@app.callback()
def _options(
    show_version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
    ),
) -> None:
    """Declarative playbooks for Provena administration, with an embedded Provena sandbox."""


# In the order of the pipeline, then the commands around it; groups are listed after commands.
app.command()(validate)
app.command()(plan)
app.command()(show)
app.command("apply")(apply_command)
app.command("undo")(undo_command)
app.command()(find)
app.command()(record)
app.command()(environments)
app.command()(schema)
app.command("init")(init_command)
app.command()(version)
app.add_typer(log_app, name="log")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(auth_app, name="auth")
app.add_typer(gitops_app, name="gitops")


DEBUG_VARIABLE = "PROVENA_OPS_DEBUG"
USER_ERROR = 1
BUG = 3
INTERRUPTED = 130  # as the shell reports a SIGINT
# The base of typer's usage errors, whichever click it carries (its own copy since typer 0.25).
USAGE_ERROR: type[Exception] = next(
    base for base in typer.BadParameter.__mro__ if base.__name__ == "ClickException"
)


def main() -> None:
    """Exit codes: 0 success, 1 a user error (or, for apply, anything not applied), 2 the plan has
    changes (plan only), 3 a provena-ops bug (with a crash report), 130 interrupted (Ctrl-C, SIGTERM)."""
    terminate_like_interrupt()
    try:
        # Not standalone: click would exit 2 on a usage error, which `plan` documents as "changes
        # present", and typer turns Ctrl-C into a silent exit.
        code = app(standalone_mode=False, prog_name="provena-ops")
    except USAGE_ERROR as exc:
        from typer.rich_utils import rich_format_error

        rich_format_error(cast(Any, exc))
        sys.exit(USER_ERROR)
    except typer.Abort:  # end of input at a prompt
        err.print("error: no answer (end of input); nothing was changed", markup=False, highlight=False)
        sys.exit(USER_ERROR)
    except Interrupted as exc:
        err.print(visible(scrub(exc.render())), markup=False, highlight=False, soft_wrap=True)
        sys.exit(INTERRUPTED)
    except ProvenaOpsError as exc:
        if os.environ.get(DEBUG_VARIABLE):
            sys.stderr.write(scrub("".join(traceback.format_exception(exc))))
        err.print(visible(scrub(exc.render())), markup=False, highlight=False, soft_wrap=True)
        sys.exit(USER_ERROR)
    except KeyboardInterrupt:
        err.print("interrupted; nothing more was started", markup=False, highlight=False)
        sys.exit(INTERRUPTED)
    except Exception as exc:  # a bug: say so plainly, keep the traceback for whoever fixes it
        if interrupted():  # what the interrupt broke on its way out (a library swallowing it)
            err.print("interrupted; nothing more was started", markup=False, highlight=False)
            sys.exit(INTERRUPTED)
        from provena_ops.cli.crash import write_crash_report

        report = write_crash_report(exc)
        if os.environ.get(DEBUG_VARIABLE):  # the traceback, minus any secret a frame's text may quote
            sys.stderr.write(scrub("".join(traceback.format_exception(exc))))
        where = f"a crash report is in {report}" if report else "no crash report could be written"
        err.print(
            f"error: provena-ops hit a bug ({type(exc).__name__}); {where}: please report it",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(BUG)
    if code == INTERRUPTED:  # typer turns a KeyboardInterrupt in a command into this code, silently
        err.print("interrupted; nothing more was started", markup=False, highlight=False)
    sys.exit(code if isinstance(code, int) else 0)
