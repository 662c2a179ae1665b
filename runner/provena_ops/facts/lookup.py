"""Read-only look-ups behind `find` and `record`: what an admin needs to write a playbook (ids, subtypes,
names, what links to what) without calling Provena's APIs by hand. Search hits are confirmed by fetching
them (the index lags the registry), and a study's model runs are read from both the registry and the graph,
since the two can disagree and that disagreement is what an admin is often looking for."""

from __future__ import annotations

import asyncio
import fnmatch
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from provena_ops.errors import ProvenaOpsError
from provena_ops.facts.reader import fatal
from provena_ops.playbook.diagnostics import did_you_mean
from provena_ops.provena import prov, registry, search
from provena_ops.provena.errors import ProvenaError
from provena_ops.provena.http import ProvenaHttp
from provena_ops.provena.registry import SUBTYPE_ROUTES, Fetched

SUBTYPES = tuple(SUBTYPE_ROUTES)
# A handle as Provena mints them (10378.1/1690051): fetched as an id before it is searched for as text.
HANDLE = re.compile(r"[0-9]+(\.[0-9]+)*/[A-Za-z0-9._-]{1,64}")
NAMED_NEIGHBOURS = 100  # names fetched for graph neighbours; beyond it, ids and subtypes only
MAX_TEXT = 200


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Found(_Model):
    """A record as a list shows it: one id per line, with its type and name."""

    id: str
    subtype: str | None = Field(description="Its item_subtype; None when it could not be read.")
    display_name: str | None = None
    problem: str | None = Field(None, description="Why it could not be read, in Provena's words.")


class FindResult(_Model):
    query: str
    subtype: str | None = Field(description="Only records of this subtype (None: any).")
    linked_to: str | None = Field(None, description="Only model runs linked to this study (--linked-to).")
    exact: Found | None = Field(None, description="The record whose id is the text, fetched directly.")
    matches: list[Found] = Field(description="The search's hits confirmed by a fetch, best first.")
    stale: list[str] = Field(
        default_factory=list, description="Hits the registry no longer has (the search index lags)."
    )
    limit: int
    limited: bool = Field(description="As many matches as the limit: there may be more.")


class Association(_Model):
    role: str = Field(description="The record's field that names it (study_id, modeller_id, ...).")
    record: Found


class LinkedRun(_Model):
    id: str
    display_name: str | None = None
    in_registry: bool = Field(description="Its registry record names the study (record.study_id).")
    in_graph: bool = Field(description="The provenance graph links it to the study.")


class RecordView(_Model):
    id: str
    subtype: str
    display_name: str | None
    record_status: str | None = None
    roles: list[str] = Field(default_factory=list, description="What the signed-in user may do to it.")
    locked: bool | None = Field(None, description="Locked (None: not read for this subtype).")
    associations: list[Association] = Field(
        default_factory=list, description="The records it names: study, modeller, organisation, template."
    )
    upstream: list[Found] = Field(default_factory=list, description="Graph neighbours it was made from.")
    downstream: list[Found] = Field(default_factory=list, description="Graph neighbours made from it.")
    graph_error: str | None = Field(None, description="Why the graph could not be read (None: it was).")
    linked_runs: list[LinkedRun] | None = Field(
        None, description="For a study: its model runs, by the registry and by the graph."
    )
    item: dict[str, Any] = Field(description="The record as Provena returned it.")


def checked_subtype(given: str | None) -> str | None:
    """--subtype as Provena spells it (MODEL_RUN), accepting any case and - for _."""
    if given is None:
        return None
    spelled = given.strip().upper().replace("-", "_")
    if spelled in SUBTYPES:
        return spelled
    close = did_you_mean(spelled, SUBTYPES)
    raise ProvenaOpsError(
        f"{given!r} is not a Provena item subtype" + (f" (did you mean {close!r}?)" if close else ""),
        where="--subtype",
        hint=f"choose one of: {', '.join(SUBTYPES)}",
    )


def checked_text(text: str, what: str) -> str:
    """Text from the command line, refused when it could not be anything Provena holds."""
    value = text.strip()
    if not value or len(value) > MAX_TEXT or any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise ProvenaOpsError(
            f"{what} {text!r} is empty, longer than {MAX_TEXT} characters or holds control characters",
            hint="give a record's id (10378.1/1690051) or words of its name",
        )
    return value


def _found(fetched: Fetched) -> Found:
    item = fetched.item
    if item is None:
        return Found(id=fetched.id, subtype=None, problem=fetched.problem or "not found")
    name = item.get("display_name")
    return Found(
        id=fetched.id,
        subtype=str(item.get("item_subtype")),
        display_name=name if isinstance(name, str) else None,
    )


async def find(
    http: ProvenaHttp, text: str, subtype: str | None, limit: int, linked_to: str | None = None
) -> FindResult:
    """Records by id or by name: an id is fetched directly; words go to Provena's search, and each hit is
    fetched to confirm it (and read its name and subtype)."""
    if linked_to is not None:
        return await _find_linked(http, text, subtype, limit, linked_to)
    exact = None
    if HANDLE.fullmatch(text):
        direct = _found(await registry.general_fetch(http, text))
        if direct.subtype is not None and subtype in (None, direct.subtype):
            exact = direct
    ids = [found for found in await search.search_ids(http, text, subtype, limit) if found != text]
    fetched = await asyncio.gather(*(registry.general_fetch(http, found) for found in ids))
    matches = [_found(one) for one in fetched if one.item is not None or one.unreadable]
    matches = [found for found in matches if subtype in (None, found.subtype) or found.subtype is None]
    return FindResult(
        query=text,
        subtype=subtype,
        exact=exact,
        matches=matches,
        stale=[one.id for one in fetched if one.item is None and not one.unreadable],
        limit=limit,
        limited=len(ids) >= min(limit, search.MAX_RESULTS),
    )


async def _find_linked(
    http: ProvenaHttp, text: str, subtype: str | None, limit: int, study: str
) -> FindResult:
    """Model runs of one study whose name matches: read from the registry itself (every run, not the
    search's best 50), so the answer is complete. `*` and `?` match as in a playbook's selectors."""
    if subtype not in (None, "MODEL_RUN"):
        raise ProvenaOpsError(
            f"--linked-to finds model runs, not {subtype}", hint="leave out --subtype, or give MODEL_RUN"
        )
    await _study(http, study)
    runs, _ = await study_runs(http, study)
    pattern = text.casefold() if any(char in text for char in "*?[") else f"*{text.casefold()}*"
    if text == "*":
        pattern = "*"
    chosen = [
        Found(id=run.id, subtype="MODEL_RUN", display_name=run.display_name)
        for run in runs
        if run.in_registry and fnmatch.fnmatchcase((run.display_name or "").casefold(), pattern)
    ]
    return FindResult(
        query=text,
        subtype="MODEL_RUN",
        linked_to=study,
        matches=chosen[:limit],
        limit=limit,
        limited=len(chosen) > limit,
    )


async def _study(http: ProvenaHttp, study: str) -> Found:
    found = _found(await registry.general_fetch(http, study))
    if found.subtype != "STUDY":
        what = found.problem if found.subtype is None else f"it is a {found.subtype}, not a study"
        raise ProvenaOpsError(
            f"--linked-to {study}: {what}",
            hint="give a study's id; `provena-ops find NAME --subtype STUDY` finds one",
        )
    return found


async def study_runs(http: ProvenaHttp, study: str) -> tuple[list[LinkedRun], str | None]:
    """A study's model runs as the registry says (records naming it) and as the graph says (nodes linked
    to it), side by side: a run on one side only needs its provenance lodged again. The second value says
    why the graph could not be read (the registry's side is still complete)."""
    named: dict[str, str] = {}

    def keep(page: list[registry.ListedRun]) -> None:
        for run in page:
            if run.study_id == study:
                named[run.id] = run.display_name

    await registry.list_model_runs(http, keep)
    graph_error = None
    try:
        graph = await prov.explore(http, "downstream", study, depth=1)
    except ProvenaError as exc:
        if fatal(exc):
            raise
        graph, graph_error = [], exc.message
    linked = {node.id for node in graph if node.subtype == "MODEL_RUN"}
    names = await _names(http, sorted(linked - named.keys()))
    return [
        LinkedRun(
            id=run,
            display_name=named.get(run) or names.get(run),
            in_registry=run in named,
            in_graph=run in linked,
        )
        for run in sorted(named.keys() | linked)
    ], graph_error


async def _names(http: ProvenaHttp, ids: list[str]) -> dict[str, str]:
    fetched = await asyncio.gather(*(registry.general_fetch(http, one) for one in ids[:NAMED_NEIGHBOURS]))
    return {
        one.id: str(one.item["display_name"]) for one in fetched if one.item and one.item.get("display_name")
    }


ASSOCIATED: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("study_id", ("record", "study_id")),
    ("modeller_id", ("record", "associations", "modeller_id")),
    ("requesting_organisation_id", ("record", "associations", "requesting_organisation_id")),
    ("workflow_template_id", ("record", "workflow_template_id")),
    ("model_id", ("model_id",)),
)


def _at(item: dict[str, Any], path: tuple[str, ...]) -> str | None:
    value: Any = item
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, str) and value else None


async def record(http: ProvenaHttp, record_id: str) -> RecordView:
    """One record with what it names, its graph neighbours (one hop both ways) and, for a study, its
    model runs."""
    general = await registry.general_fetch(http, record_id)
    if general.item is None:
        raise ProvenaOpsError(
            f"no record {record_id} in '{http.environment}'"
            + (f": {general.problem}" if general.problem else ""),
            hint=f"find it by name: provena-ops find WORDS -e {http.environment}"
            if not general.unreadable
            else "ask its owner for read access, or sign in as someone who has it",
        )
    item = general.item
    subtype = str(item.get("item_subtype"))
    roles: list[str] = []
    locked: bool | None = None
    if subtype in registry.FETCH_MODELS:
        typed = await registry.fetch(http, subtype, record_id)
        if typed.item is not None:
            item, roles, locked = typed.item, list(typed.roles), typed.locked
    named = [(role, value) for role, path in ASSOCIATED if (value := _at(item, path)) is not None]
    graph_error = None
    try:
        upstream, downstream = await asyncio.gather(
            prov.explore(http, "upstream", record_id, depth=1),
            prov.explore(http, "downstream", record_id, depth=1),
        )
    except ProvenaError as exc:
        if fatal(exc):
            raise
        upstream, downstream, graph_error = [], [], exc.message
    neighbours = sorted({node.id for node in [*upstream, *downstream]})
    wanted = sorted({value for _, value in named} | set(neighbours[:NAMED_NEIGHBOURS]))
    read = {
        one.id: _found(one)
        for one in await asyncio.gather(*(registry.general_fetch(http, i) for i in wanted))
    }

    def shown(node: prov.Neighbour) -> Found:
        known = read.get(node.id)
        if known is None or known.subtype is None:  # not fetched (past the budget) or unreadable
            return Found(id=node.id, subtype=node.subtype)
        return known  # the registry's subtype, which the graph can spell otherwise

    linked_runs = None
    if subtype == "STUDY":
        linked_runs, study_graph_error = await study_runs(http, record_id)
        graph_error = graph_error or study_graph_error
    name = item.get("display_name")
    status = item.get("record_status")
    return RecordView(
        id=record_id,
        subtype=subtype,
        display_name=name if isinstance(name, str) else None,
        record_status=status if isinstance(status, str) else None,
        roles=roles,
        locked=locked,
        associations=[Association(role=role, record=read[value]) for role, value in named],
        upstream=sorted((shown(node) for node in upstream), key=lambda found: found.id),
        downstream=sorted((shown(node) for node in downstream), key=lambda found: found.id),
        graph_error=graph_error,
        linked_runs=linked_runs,
        item=item,
    )
