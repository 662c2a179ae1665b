"""`provena-ops find` and `provena-ops record`: read-only look-ups of ids, names and links, for writing a
playbook without calling Provena's APIs by hand."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from provena_ops.cli.auth import AUTH_METHOD_OPTION, AuthMethod, interactive_choice
from provena_ops.cli.options import (
    CONCURRENCY_OPTION,
    ENVIRONMENTS_FILE_OPTION,
    PARAM_OPTION,
    err,
    out,
    target_args,
)
from provena_ops.provena.search import MAX_RESULTS
from provena_ops.render.outputs import OutputFormat

if TYPE_CHECKING:
    from pydantic import BaseModel

    from provena_ops.plan.model import EnvironmentInfo

READ_ENVIRONMENT_OPTION = typer.Option(
    None, "--environment", "-e", metavar="NAME", help="The environment to read (default: sandbox)."
)
FORMAT_OPTION = typer.Option(OutputFormat.text, "--format", help="text, or json (one document on stdout).")


def find(
    text: str = typer.Argument(
        ..., metavar="TEXT", help="Words of a record's name, or its id (10378.1/1690051)."
    ),
    subtype: str | None = typer.Option(
        None,
        "--subtype",
        "-s",
        metavar="SUBTYPE",
        help="Only this item subtype: MODEL_RUN, STUDY, PERSON, ...",
    ),
    limit: int = typer.Option(20, "--limit", min=1, max=1000, metavar="N", help="At most N matches."),
    linked_to: str | None = typer.Option(
        None,
        "--linked-to",
        metavar="STUDY_ID",
        help="Only model runs linked to this study, from the registry itself (TEXT: words or a * pattern "
        "of their names; * for all).",
    ),
    output: OutputFormat = FORMAT_OPTION,
    environment: str | None = READ_ENVIRONMENT_OPTION,
    environments_file: Path | None = ENVIRONMENTS_FILE_OPTION,
    param: list[str] | None = PARAM_OPTION,
    concurrency: int = CONCURRENCY_OPTION,
    auth_method: AuthMethod | None = AUTH_METHOD_OPTION,
) -> None:
    """Find records by name or id: Provena's search, each hit confirmed by fetching it.

    An id is fetched directly first. Provena's search matches words and returns at most 50 hits; with
    --linked-to, a study's model runs are read from the registry, so the list is complete. Reads only.
    Exit status: 0 (matches or none), 1 error.
    """
    from provena_ops import api
    from provena_ops.facts import lookup
    from provena_ops.render.outputs import FindDocument
    from provena_ops.render.records import find_lines

    query = lookup.checked_text(text, "TEXT")
    kind = lookup.checked_subtype(subtype)
    study = lookup.checked_text(linked_to, "--linked-to") if linked_to is not None else None
    if study is None and limit > MAX_RESULTS:
        err.print(
            f"note: Provena's search returns at most {MAX_RESULTS} hits; --limit {limit} reads {MAX_RESULTS}"
        )
        limit = MAX_RESULTS
    result, where = api.look_up(
        target_args(environment, environments_file, param),
        lambda http: lookup.find(http, query, kind, limit, study),
        concurrency=concurrency,
        sign_in=interactive_choice(auth_method),
    )
    _show(output, FindDocument, result, where, find_lines)


def record(
    record_id: str = typer.Argument(..., metavar="ID", help="The record's id (10378.1/1690051)."),
    output: OutputFormat = FORMAT_OPTION,
    environment: str | None = READ_ENVIRONMENT_OPTION,
    environments_file: Path | None = ENVIRONMENTS_FILE_OPTION,
    param: list[str] | None = PARAM_OPTION,
    concurrency: int = CONCURRENCY_OPTION,
    auth_method: AuthMethod | None = AUTH_METHOD_OPTION,
) -> None:
    """Show a record: its study, modeller, organisation and template by name, your roles and its lock,
    and its neighbours in the provenance graph; for a study, every model run linked to it.

    A study's runs are read from both the registry and the graph, and a run on one side only is marked
    (its provenance needs lodging again). Reads only. Exit status: 0, 1 error (no such record included).
    """
    from provena_ops import api
    from provena_ops.facts import lookup
    from provena_ops.render.outputs import RecordDocument
    from provena_ops.render.records import record_lines

    wanted = lookup.checked_text(record_id, "ID")
    view, where = api.look_up(
        target_args(environment, environments_file, param),
        lambda http: lookup.record(http, wanted),
        concurrency=concurrency,
        sign_in=interactive_choice(auth_method),
    )
    _show(output, RecordDocument, view, where, record_lines)


def _show(
    output: OutputFormat,
    document: Callable[..., Any],
    found: BaseModel,
    where: EnvironmentInfo,
    lines: Callable[[Any, EnvironmentInfo], list[str]],
) -> None:
    """A look-up on stdout: its JSON document (what was found, and where), or its lines for people."""
    from provena_ops.render.outputs import dump

    if output is OutputFormat.json:
        sys.stdout.write(dump(document(**found.model_dump(), environment=where)))
        return
    for line in lines(found, where):
        out.print(line, markup=False, highlight=False, soft_wrap=True)
