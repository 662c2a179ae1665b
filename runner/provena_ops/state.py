"""Read what a playbook needs from a live Provena, concurrently and read-only, into a `State`.

Rounds, each as concurrent as the connection limit allows: names and the registry scan; then every
targeted record (typed fetch: roles and lock state), study connections and trial deletes; then the
entities edited records will reference, so the planner can pre-flight Provena's validation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from .expand import needs, resolve_run, resolve_study, run_refs, study_refs
from .facts import Linked, RecordFact, RunSummary, State, StudyConnections, name_key
from .plan import GraphImpact
from .playbook.model import (
    DeleteModelRuns,
    DeleteStudies,
    LinkStudies,
    Playbook,
    RelodgeModelRuns,
    UpdateModelRuns,
)
from .provena import prov, registry, search
from .provena.auth import claims_of
from .provena.errors import ProvenaError
from .provena.http import ProvenaHttp
from .record_checks import referenced_ids, template_references

ADMIN_ROLE = "entity-registry-admin"

T = TypeVar("T")
Progress = Callable[[str, int, int], None]


async def read_state(http: ProvenaHttp, playbook: Playbook, progress: Progress | None = None) -> State:
    claims = claims_of(await http.auth.token())
    realm = claims.get("realm_access")
    roles = list(realm.get("roles", [])) if isinstance(realm, dict) else []
    state = State(environment=http.environment, username=http.auth.username, realm_roles=roles)
    reader = _Reader(http, state, progress)
    await reader.names_and_scan(playbook)
    runs, studies, deletes, edits, relodges = _targets(playbook, state)
    await reader.fetch_typed("STUDY", sorted(studies["all"]))
    await reader.study_connections(sorted(studies["delete"]))
    linked = {run for links in state.connections.values() for run in links.model_runs}
    await reader.fetch_typed("MODEL_RUN", sorted(runs | linked))
    if ADMIN_ROLE in roles:  # Provena refuses trial deletes to others; the planner reports the missing role
        await reader.trial_deletes(sorted(run for run in deletes if state.record(run).subtype == "MODEL_RUN"))
    await reader.referenced_entities(sorted((edits | linked) - deletes), _playbook_references(playbook))
    await reader.downstream(sorted((edits | linked) - deletes))
    await reader.lineage(sorted(relodges - deletes))
    return state


def _targets(
    playbook: Playbook, state: State
) -> tuple[set[str], dict[str, set[str]], set[str], set[str], set[str]]:
    """Expanded ids: all targeted runs, studies (named / to delete), runs to delete, to edit, to relodge."""
    runs: set[str] = set()
    deletes: set[str] = set()
    edits: set[str] = set()
    relodges: set[str] = set()
    studies: dict[str, set[str]] = {"all": set(), "delete": set()}
    for operation in playbook.operations:
        expanded = {run for ref in run_refs(operation) for run in resolve_run(ref, state).ids}
        runs |= expanded
        if isinstance(operation, DeleteModelRuns):
            deletes |= expanded
        elif isinstance(operation, UpdateModelRuns | LinkStudies):
            edits |= expanded
        elif isinstance(operation, RelodgeModelRuns):
            relodges |= expanded
        for ref in study_refs(operation):
            studies["all"] |= set(resolve_study(ref, state).ids)
        if isinstance(operation, DeleteStudies):
            for study in operation.studies:
                studies["delete"] |= set(resolve_study(study, state).ids)
    return runs, studies, deletes, edits, relodges


def _playbook_references(playbook: Playbook) -> set[str]:
    """Entities the playbook's new values point at (a new modeller, datasets, a template...)."""
    ids: set[str] = set()
    for operation in playbook.operations:
        if isinstance(operation, UpdateModelRuns):
            given = operation.set.given()
            shaped = {
                key: [d.model_dump(mode="json") for d in value] if key in ("inputs", "outputs") else value
                for key, value in given.items()
                if key not in ("modeller_id", "requesting_organisation_id")
            }
            shaped["associations"] = {
                key: given[key] for key in ("modeller_id", "requesting_organisation_id") if key in given
            }
            ids |= referenced_ids(shaped)
    return ids


class _Reader:
    def __init__(self, http: ProvenaHttp, state: State, progress: Progress | None) -> None:
        self.http = http
        self.state = state
        self.progress = progress

    async def _all(self, label: str, calls: Iterable[Awaitable[T]]) -> list[T]:
        pending = list(calls)
        if not pending:
            return []
        done = 0

        async def counted(call: Awaitable[T]) -> T:
            nonlocal done
            result = await call
            done += 1
            if self.progress:
                self.progress(label, done, len(pending))
            return result

        return list(await asyncio.gather(*(counted(call) for call in pending)))

    async def names_and_scan(self, playbook: Playbook) -> None:
        wanted = needs(playbook)
        index: list[RunSummary] = []

        def summarise(page: list[dict[str, Any]]) -> None:
            index.extend(
                RunSummary(
                    id=str(item["id"]),
                    display_name=str(item.get("display_name", "")),
                    study_id=(item.get("record") or {}).get("study_id"),
                )
                for item in page
            )

        scan = registry.list_all(self.http, "MODEL_RUN", summarise) if wanted.scan else None
        lookups = [self._name(subtype, name) for subtype, name in sorted(wanted.names)]
        results = await asyncio.gather(*lookups, *([scan] if scan else []))
        if scan is not None:
            listing = results[-1]
            assert isinstance(listing, registry.Listing)
            self.state.run_index = sorted(index, key=lambda run: run.id)
            self.state.unreadable_runs = listing.not_authorised + listing.unparsable

    async def _name(self, subtype: str, display_name: str) -> None:
        candidates = await search.search_ids(self.http, display_name, subtype)
        fetched = await self._all("search", (registry.fetch(self.http, subtype, c) for c in candidates))
        exact: list[str] = []
        near: list[Linked] = []
        for result in fetched:
            if result.item is None:
                continue
            if result.item.get("display_name") == display_name:
                exact.append(result.id)
                self._keep(result)
            elif len(near) < 5:
                near.append(Linked(id=result.id, subtype=str(result.item.get("display_name"))))
        self.state.names[name_key(subtype, display_name)] = sorted(exact)
        if not exact:
            self.state.near_names[name_key(subtype, display_name)] = near

    def _keep(self, result: registry.Fetched) -> None:
        self.state.records[result.id] = RecordFact.read(
            result.id,
            result.item,
            roles=list(result.roles),
            locked=result.locked,
            problem=result.problem,
        )

    async def fetch_typed(self, subtype: str, ids: list[str]) -> None:
        missing = [i for i in ids if i not in self.state.records or not self.state.records[i].roles]
        results = await self._all("fetch", (self._typed_or_general(subtype, i) for i in missing))
        for result in results:
            self.state.records[result.id] = result

    async def _typed_or_general(self, subtype: str, item_id: str) -> RecordFact:
        result = await registry.fetch(self.http, subtype, item_id)
        if result.item is not None:
            return RecordFact.read(item_id, result.item, roles=list(result.roles), locked=result.locked)
        other = await registry.general_fetch(self.http, item_id)  # another subtype, or truly absent
        return RecordFact.read(item_id, other, problem=result.problem)

    async def study_connections(self, studies: list[str]) -> None:
        async def one(study: str) -> None:
            links = StudyConnections(
                registry=sorted(run.id for run in self.state.run_index or [] if run.study_id == study)
            )
            if not self.state.record(study).exists:
                self.state.connections[study] = links  # Provena cannot explore a deleted id (500)
                return
            try:
                found: dict[str, Linked] = {}
                for direction in ("downstream", "upstream"):
                    for node in await prov.explore(self.http, direction, study, depth=1):
                        found[node.id] = Linked(id=node.id, subtype=node.subtype)
                links.graph = sorted(found.values(), key=lambda node: node.id)
            except ProvenaError as exc:
                links.graph_error = exc.message
            self.state.connections[study] = links

        await self._all("explore", (one(study) for study in studies))

    async def trial_deletes(self, runs: list[str]) -> None:
        async def one(run: str) -> None:
            try:
                diff = await prov.trial_delete(self.http, run)
            except ProvenaError as exc:
                self.state.delete_errors[run] = exc.message
                return
            self.state.delete_impact[run] = impact_of(diff)

        await self._all("trial delete", (one(run) for run in runs))

    async def referenced_entities(self, runs: list[str], also: set[str]) -> None:
        ids: set[str] = set(also)
        for run in runs:
            record = (self.state.record(run).item or {}).get("record") or {}
            ids |= referenced_ids(record)
        await self._general(ids)
        templates = {i for i in ids if self.state.record(i).subtype == "MODEL_RUN_WORKFLOW_TEMPLATE"}
        second: set[str] = set()
        for template in templates:
            second |= template_references(self.state.record(template).item or {})
        await self._general(second)

    async def _general(self, ids: set[str]) -> None:
        wanted = sorted(i for i in ids if i not in self.state.records)

        async def one(item_id: str) -> None:
            self.state.records[item_id] = RecordFact.read(
                item_id, await registry.general_fetch(self.http, item_id)
            )

        await self._all("entities", (one(i) for i in wanted))

    async def lineage(self, runs: list[str]) -> None:
        async def one(run: str) -> None:
            if self.state.record(run).subtype == "MODEL_RUN":
                try:
                    self.state.lineage[run] = await _lineage_of(self.http, run)
                except ProvenaError:
                    return

        await self._all("lineage", (one(run) for run in runs))

    async def downstream(self, runs: list[str]) -> None:
        async def one(run: str) -> None:
            if self.state.record(run).subtype != "MODEL_RUN":
                return
            try:
                nodes = await prov.explore(self.http, "downstream", run, depth=2)
            except ProvenaError:
                return
            self.state.downstream[run] = sorted(
                (Linked(id=n.id, subtype=n.subtype) for n in nodes), key=lambda n: n.id
            )

        await self._all("downstream", (one(run) for run in runs))


async def _lineage_of(http: ProvenaHttp, run: str) -> dict[str, list[str]]:
    return {
        direction: sorted(node.id for node in await prov.explore(http, direction, run, depth=1))
        for direction in ("upstream", "downstream")
    }


def impact_of(counts: dict[str, int]) -> GraphImpact:
    return GraphImpact(
        nodes_removed=counts.get("REMOVE_NODE", 0),
        links_removed=counts.get("REMOVE_LINK", 0),
        node_references_removed=counts.get("REMOVE_RECORD_ID_FROM_NODE", 0),
        link_references_removed=counts.get("REMOVE_RECORD_ID_FROM_LINK", 0),
    )
