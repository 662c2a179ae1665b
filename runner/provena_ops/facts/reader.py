"""Read what a playbook needs from a live Provena, concurrently and read-only, into a `State`.

Reads form a dataflow, not rounds: each read is queued as soon as what it depends on is known (a model
run's referenced entities once the run is fetched, a study's graph-linked runs while the registry scan
is still paging), and a fixed pool of workers takes them from the queue, so the connection lanes stay
busy, no round waits for its slowest request, and memory does not grow with the number of reads pending
(planning 10,000 records queues ~40,000 reads).

Which records are read depends only on the playbook and on what Provena holds, never on timing, so two
plans of the same playbook against the same state read, and fingerprint, the same records. Reads that
only edits need (referenced entities, downstream records, lineage) wait until the set of model runs to
delete is final, because a run being deleted needs none of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from typing import Any, NoReturn, TypeVar

from provena_ops.errors import ProvenaOpsError
from provena_ops.facts.expand import needs, resolve_run, resolve_study
from provena_ops.facts.model import (
    ADMIN_TIER,
    Linked,
    RecordFact,
    RunSummary,
    State,
    StudyConnections,
    name_key,
)
from provena_ops.plan.model import GraphImpact
from provena_ops.plan.record_checks import referenced_ids, template_references
from provena_ops.playbook.model import (
    Playbook,
)
from provena_ops.provena import prov, registry, search
from provena_ops.provena.auth import claims_of
from provena_ops.provena.errors import NotAuthorised, ProvenaError, Unreachable
from provena_ops.provena.http import ProvenaHttp

T = TypeVar("T")
NAMED_DOWNSTREAM = 500  # downstream records of deleted runs whose names are read, in all
ReadingProgress = Callable[[str, int, int], None]
Work = Callable[[], Awaitable[None]]


async def read_state(http: ProvenaHttp, playbook: Playbook, progress: ReadingProgress | None = None) -> State:
    state = await new_state(http)
    await _Reader(http, playbook, state, progress).run()
    return state


async def new_state(http: ProvenaHttp) -> State:
    """A state that knows who reads, and with which realm roles (from the token)."""
    claims = claims_of(await http.auth.token())
    realm = claims.get("realm_access")
    roles = list(realm.get("roles", [])) if isinstance(realm, dict) else []
    return State(environment=http.environment, username=http.auth.username, realm_roles=roles)


def fatal(exc: ProvenaError) -> bool:
    """Failures that make the whole plan unknowable (rather than one record's facts): no network, or a
    token Provena does not accept. Everything else is recorded against the record it concerns."""
    return isinstance(exc, Unreachable) or (isinstance(exc, NotAuthorised) and exc.token_problem)


class _Reader:
    def __init__(
        self, http: ProvenaHttp, playbook: Playbook, state: State, progress: ReadingProgress | None
    ) -> None:
        self.http = http
        self.playbook = playbook
        self.state = state
        self.progress = progress
        self.wanted = needs(playbook)
        self.may_trial_delete = all(role in state.realm_roles for role in ADMIN_TIER)
        self.queue: asyncio.Queue[tuple[str, Work]] = asyncio.Queue()
        self.started: set[Hashable] = set()
        self.done = 0
        self.typed: set[str] = set()  # ids whose fact came from a typed fetch (with roles and lock state)
        # model runs fetched as targets: their subtype and the entities their record names (the facts
        # themselves are in the state, out of memory)
        self.runs: dict[str, tuple[str | None, tuple[str, ...]]] = {}
        self.studies: dict[str, RecordFact] = {}  # studies fetched as targets
        self.graph_links: dict[str, dict[str, Linked]] = {}
        self.graph_errors: dict[str, str] = {}
        self.unresolved = 0  # name lookups and the scan still running
        # targets known so far (see _expand)
        self.deletes: set[str] = set()
        self.edited: set[str] = set()  # edited or linked to a study being deleted
        self.relodges: set[str] = set()
        self.deleting_studies: set[str] = set()
        self.named: set[str] = set()  # downstream records of deleted runs whose names are being read

    # -- scheduling ---------------------------------------------------------------------------------

    async def run(self) -> None:
        for subtype, name in sorted(self.wanted.names):
            self._resolving(("name", subtype, name), self._name, subtype, name)
        if self.wanted.scan:
            self._resolving(("scan",), self._scan)
        for entity in sorted(_playbook_references(self.playbook)):
            self._start(("entity", entity), self._entity, entity)
        self._expand()
        workers = 2 * self.http.concurrency  # a read may wait on two requests (explore up and down)
        try:
            async with asyncio.TaskGroup() as group:
                pool = [group.create_task(self._worker()) for _ in range(workers)]
                await self.queue.join()
                for worker in pool:
                    worker.cancel()
        except BaseExceptionGroup as failures:
            _raise_first(failures)
        self._assemble_connections()

    async def _worker(self) -> None:
        while True:
            label, work = await self.queue.get()
            try:
                await work()
            finally:
                self.queue.task_done()
            self.done += 1
            if self.progress:
                self.progress(label, self.done, len(self.started))

    def _start(self, key: tuple[Any, ...], read: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Queue the read `key` names, unless it was queued before."""
        if key not in self.started:
            self.started.add(key)
            self.queue.put_nowait((str(key[0]), lambda: read(*args)))

    def _resolving(self, key: tuple[Any, ...], read: Callable[..., Awaitable[None]], *args: Any) -> None:
        """A read that can reveal more targets (a name lookup, the scan): expand again when it ends."""
        self.unresolved += 1

        async def then() -> None:
            await read(*args)
            self.unresolved -= 1
            self._expand()

        self._start(key, then)

    @property
    def deletes_final(self) -> bool:
        """True once no pending name lookup or scan can add a model run to delete."""
        if self.unresolved == 0:
            return True
        return not any(
            ref.id is None
            for op in self.playbook.operations
            if op.runs_are == "deleted"
            for ref in op.run_refs()
        )

    def _expand(self) -> None:
        """Queue every read the targets known so far call for. Runs only when targets can change: at the
        start, after a name lookup or the scan, after a study's graph is explored."""
        runs, studies, deleting_studies, deletes, edits, relodges = _targets(self.playbook, self.state)
        self.deleting_studies = deleting_studies
        for study in sorted(studies):
            if study in self.studies:
                self._after_study(study)
            else:
                self._start(("study", study), self._study, study)
        linked = {run for links in self.graph_links.values() for run, node in links.items() if _is_run(node)}
        if self.state.run_index is not None:
            linked |= {r.id for r in self.state.run_index if r.study_id and r.study_id in deleting_studies}
        self.deletes, self.edited, self.relodges = deletes, edits | linked, relodges
        for run in sorted(runs | linked):
            if run in self.runs:
                self._after_run(run)
            else:
                self._start(("run", run), self._run, run)

    def _after_run(self, run: str) -> None:
        """Queue what a fetched model run's role calls for (each read at most once)."""
        subtype, references = self.runs[run]
        if subtype != "MODEL_RUN":
            return  # the planner reports the missing run or the wrong subtype
        if run in self.deletes and self.may_trial_delete:
            self._start(("trial delete", run), self._trial_delete, run)
        if run in self.deletes:  # what loses its provenance with the run
            self._start(("downstream", run), self._downstream, run, run in self.deletes)
        if not self.deletes_final or run in self.deletes:
            return
        if run in self.edited:
            for entity in references:
                self._start(("entity", entity), self._entity, entity)
            if self.wanted.edit_downstream:
                self._start(("downstream", run), self._downstream, run)
        if run in self.relodges:
            self._start(("lineage", run), self._lineage, run)

    # -- reads ----------------------------------------------------------------------------------------

    async def _scan(self) -> None:
        index: list[RunSummary] = []

        def summarise(page: list[registry.ListedRun]) -> None:
            summaries = [
                RunSummary(id=run.id, display_name=run.display_name, study_id=run.study_id) for run in page
            ]
            index.extend(summaries)
            self._prefetch(summaries)

        listing = await registry.list_model_runs(self.http, summarise)
        self.state.run_index = sorted(index, key=lambda run: run.id)
        self.state.unreadable_runs = listing.not_authorised + listing.unparsable

    def _prefetch(self, page: list[RunSummary]) -> None:
        """Fetch the runs a selector picks on this page while the scan goes on paging (paging is one
        request at a time; at 100,000 runs it is a thousand round trips). A selector picks the same runs
        from the whole index, so this starts reads early, never adds one: what each run then needs is
        decided once the scan is complete."""
        seen = self.state.model_copy(update={"run_index": page})
        for operation in self.playbook.operations:
            if operation.runs_are is None:
                continue
            for ref in operation.run_refs():
                if ref.display_name_matches is not None or ref.linked_to_study is not None:
                    for run in resolve_run(ref, seen).ids:
                        self._start(("run", run), self._run, run)

    async def _name(self, subtype: str, display_name: str) -> None:
        candidates = await search.search_ids(self.http, display_name, subtype)
        facts = await together(*(self._typed_or_general(subtype, c) for c in candidates))
        exact: list[str] = []
        near: list[Linked] = []
        for fact in facts:
            if fact.item is None or fact.subtype != subtype:
                continue
            if fact.display_name == display_name:
                exact.append(fact.id)
                self._keep(fact, typed=True)
                if subtype == "MODEL_RUN":
                    self.runs[fact.id] = _fetched(fact)  # the target read needs no second request
            elif len(near) < 5:
                near.append(Linked(id=fact.id, subtype=str(fact.display_name)))
        self.state.names[name_key(subtype, display_name)] = sorted(exact)
        if not exact:
            self.state.near_names[name_key(subtype, display_name)] = near

    async def _typed_or_general(self, subtype: str, item_id: str) -> RecordFact:
        result = await registry.fetch(self.http, subtype, item_id)
        if result.item is not None or result.unreadable:
            return RecordFact.read(
                item_id,
                result.item,
                roles=list(result.roles),
                locked=result.locked,
                problem=result.problem,
                unreadable=result.unreadable,
            )
        other = await registry.general_fetch(self.http, item_id)  # another subtype, or truly absent
        return RecordFact.read(
            item_id, other.item, problem=other.problem or result.problem, unreadable=other.unreadable
        )

    def _keep(self, fact: RecordFact, *, typed: bool) -> None:
        """Typed facts (roles, lock state) win over general ones, whichever arrives first."""
        if typed:
            self.typed.add(fact.id)
            self.state.keep(fact)
        elif fact.id not in self.typed and not self.state.has_record(fact.id):
            self.state.keep(fact)

    async def _run(self, run: str) -> None:
        fact = await self._typed_or_general("MODEL_RUN", run)
        self._keep(fact, typed=True)
        self.runs[run] = _fetched(fact)
        self._after_run(run)

    async def _study(self, study: str) -> None:
        fact = await self._typed_or_general("STUDY", study)
        self._keep(fact, typed=True)
        self.studies[study] = fact
        self._after_study(study)

    def _after_study(self, study: str) -> None:
        fact = self.studies[study]
        if study in self.deleting_studies and fact.exists and fact.subtype == "STUDY":
            self._start(("explore", study), self._explore, study)
        # Provena cannot explore a deleted id (500); the planner reports a wrong subtype

    async def _explore(self, study: str) -> None:
        """What links to a study in the graph, both ways: runs downstream; anything upstream is unusual."""
        found: dict[str, Linked] = {}
        try:
            for nodes in await together(
                prov.explore(self.http, "downstream", study, depth=1),
                prov.explore(self.http, "upstream", study, depth=1),
            ):
                found.update((node.id, Linked(id=node.id, subtype=node.subtype)) for node in nodes)
        except ProvenaError as exc:
            if fatal(exc):
                raise
            self.graph_errors[study] = exc.message
            return
        self.graph_links[study] = found
        self._expand()

    async def _trial_delete(self, run: str) -> None:
        try:
            counts = await prov.trial_delete(self.http, run)
        except ProvenaError as exc:
            if fatal(exc):
                raise
            self.state.delete_errors[run] = exc.message
            return
        self.state.delete_impact[run] = impact_of(counts)

    async def _entity(self, entity: str) -> None:
        result = await registry.general_fetch(self.http, entity)
        fact = RecordFact.read(entity, result.item, problem=result.problem, unreadable=result.unreadable)
        self._keep(fact, typed=False)
        if fact.subtype == "MODEL_RUN_WORKFLOW_TEMPLATE":
            for used in sorted(template_references(fact.item or {})):
                self._start(("entity", used), self._entity, used)

    async def _downstream(self, run: str, deleted: bool = False) -> None:
        try:
            nodes = await prov.explore(self.http, "downstream", run, depth=2)
        except ProvenaError as exc:
            if fatal(exc):
                raise
            self.state.graph_read_errors[run] = exc.message
            return
        self.state.downstream[run] = sorted(
            (Linked(id=n.id, subtype=n.subtype) for n in nodes), key=lambda n: n.id
        )
        if deleted:  # named in the plan, within a budget (a run feeding thousands is counted, not named)
            for node in self.state.downstream[run]:
                if len(self.named) < NAMED_DOWNSTREAM and node.id not in self.named:
                    self.named.add(node.id)
                    self._start(("name of", node.id), self._name_of, node.id)

    async def _name_of(self, record: str) -> None:
        result = await registry.general_fetch(self.http, record)
        if result.item is not None and isinstance(result.item.get("display_name"), str):
            self.state.downstream_names[record] = result.item["display_name"]

    async def _lineage(self, run: str) -> None:
        try:
            upstream, downstream = await together(
                prov.explore(self.http, "upstream", run, depth=1),
                prov.explore(self.http, "downstream", run, depth=1),
            )
        except ProvenaError as exc:
            if fatal(exc):
                raise
            self.state.graph_read_errors[run] = exc.message
            return
        self.state.lineage[run] = {
            "upstream": sorted(node.id for node in upstream),
            "downstream": sorted(node.id for node in downstream),
        }

    def _assemble_connections(self) -> None:
        """What links to each study being deleted: the graph's view and the registry's, side by side."""
        _, _, deleting, _, _, _ = _targets(self.playbook, self.state)
        for study in sorted(deleting):
            self.state.connections[study] = StudyConnections(
                graph=sorted(self.graph_links.get(study, {}).values(), key=lambda node: node.id),
                registry=sorted(r.id for r in self.state.run_index or [] if r.study_id == study),
                graph_error=self.graph_errors.get(study),
            )


async def together(*reads: Coroutine[Any, Any, T]) -> list[T]:
    """Reads that stand or fall together: the first failure cancels the rest (which would otherwise go
    on holding connection lanes, their errors unseen) and is raised as itself, not as a group."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(read) for read in reads]
    except BaseExceptionGroup as failures:
        _raise_first(failures)
    return [task.result() for task in tasks]


def _fetched(run: RecordFact) -> tuple[str | None, tuple[str, ...]]:
    return run.subtype, tuple(sorted(referenced_ids((run.item or {}).get("record") or {})))


def _is_run(node: Linked) -> bool:
    return node.subtype == "MODEL_RUN"


def _raise_first(failures: BaseExceptionGroup[Any]) -> NoReturn:
    """A TaskGroup reports every failure; the admin needs the first one that says what went wrong."""
    for failure in failures.exceptions:
        if isinstance(failure, BaseExceptionGroup):
            _raise_first(failure)
        if isinstance(failure, ProvenaOpsError):
            raise failure
    raise failures.exceptions[0]


def _targets(
    playbook: Playbook, state: State
) -> tuple[set[str], set[str], set[str], set[str], set[str], set[str]]:
    """Expanded ids known so far: targeted runs, named studies, studies to delete, runs to delete, to edit,
    to relodge. Names and selectors not yet resolved expand to nothing."""
    runs: set[str] = set()
    deletes: set[str] = set()
    edits: set[str] = set()
    relodges: set[str] = set()
    studies: set[str] = set()
    deleting: set[str] = set()
    by_role = {"deleted": deletes, "edited": edits, "relodged": relodges}
    for operation in playbook.operations:
        expanded = {run for ref in operation.run_refs() for run in resolve_run(ref, state).ids}
        runs |= expanded
        if operation.runs_are is not None:
            by_role[operation.runs_are] |= expanded
        for ref in operation.study_refs():
            studies |= set(resolve_study(ref, state).ids)
        for study in operation.deleted_studies():
            deleting |= set(resolve_study(study, state).ids)
    return runs, studies, deleting, deletes, edits, relodges


def _playbook_references(playbook: Playbook) -> set[str]:
    """Entities the playbook's new values point at (a new modeller, datasets, a template...)."""
    ids: set[str] = set()
    for operation in playbook.operations:
        shaped: dict[str, Any] = {}
        for path, value in operation.patch().items():
            *parents, leaf = path.split(".")
            container = shaped
            for parent in parents:
                container = container.setdefault(parent, {})
            container[leaf] = value
        ids |= referenced_ids(shaped)
    return ids


def impact_of(counts: dict[str, int]) -> GraphImpact:
    return GraphImpact(
        nodes_removed=counts.get("REMOVE_NODE", 0),
        links_removed=counts.get("REMOVE_LINK", 0),
        node_references_removed=counts.get("REMOVE_RECORD_ID_FROM_NODE", 0),
        link_references_removed=counts.get("REMOVE_RECORD_ID_FROM_LINK", 0),
    )
