"""Carry out a plan's actions against Provena: in dependency order, independent ones concurrently, each
re-reading its record right before it writes.

The re-read is what makes apply idempotent and safe to repeat: an action whose record is already as
planned does nothing and says so; a record someone else changed since planning is not overwritten; a
half-done deletion is finished rather than started again. Every write is journalled ahead: intent (with
the record as it was), then the request and its job, then the outcome. When an action fails, the actions
that depend on it are skipped; the others go on unless `fail_fast`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ProvenaInterfaces.SharedTypes import ImportMode

from provena_ops.apply.journal import (
    ActionFinished,
    ActionStarted,
    JobStatus,
    Journal,
    Recap,
    RequestSent,
    Result,
    now,
)
from provena_ops.plan.model import Action, ActionKind, Plan, fingerprint
from provena_ops.plan.record_checks import missing_from_graph, normalised
from provena_ops.provena import jobs, prov, registry, writes
from provena_ops.provena.errors import ProvenaError, Unreachable
from provena_ops.provena.http import ProvenaHttp

FINAL = ("SUCCEEDED", "FAILED")
SUBMISSIONS = 4  # of one edit, each after the last left no trace for the whole patience
ActionProgress = Callable[[Action, Result], None]


@dataclass(frozen=True)
class ActionOutcome:
    result: Result
    detail: str
    after: str | None = None  # the record's fingerprint once changed, when known


@dataclass(frozen=True)
class JobWait:
    """How long to follow an update job. Provena starts workers on demand, so PENDING can last minutes."""

    timeout_s: float = 900.0
    first_poll_s: float = 0.2
    max_poll_s: float = 5.0
    lost_submission_s: float = 20.0  # how long a job row may take to appear after a lost answer


class Executor:
    def __init__(
        self,
        http: ProvenaHttp,
        plan: Plan,
        journal: Journal,
        *,
        parallelism: int = 8,
        fail_fast: bool = False,
        job_wait: JobWait | None = None,
        progress: ActionProgress | None = None,
    ) -> None:
        self.http = http
        self.plan = plan
        self.journal = journal
        self.slots = asyncio.Semaphore(parallelism)
        self.fail_fast = fail_fast
        self.wait = job_wait or JobWait()
        self.progress = progress
        self.outcomes: dict[str, ActionOutcome] = {}
        self.finished: dict[str, asyncio.Event] = {}
        self.finished_at: dict[str, float] = {}
        self.stopped_by: str | None = None
        self.writing: set[str] = set()  # actions that journalled their intent to write
        self._scan: tuple[float, asyncio.Task[dict[str, list[str]]]] | None = None
        # One step per action kind: how it is carried out (tests/plan/test_operations.py checks coverage).
        self.steps: dict[ActionKind, Callable[[Action], Awaitable[ActionOutcome]]] = {
            "update": self._update,
            "relink": self._update,
            "delete_model_run": self._delete_model_run,
            "delete_study": self._delete_study,
            "relodge": self._relodge,
            "restore": self._restore,
        }

    async def run(self) -> Recap:
        changing: list[Action] = []
        for action in self.plan.actions:  # one read: a planned plan keeps its actions in a spill file
            if action.outcome == "change":
                changing.append(action)
            else:
                self._finish(action, ActionOutcome("ok", action.why or action.outcome))
        self.finished.update({action.key: asyncio.Event() for action in changing})
        async with asyncio.TaskGroup() as group:
            for action in changing:
                group.create_task(self._run_one(action))
        return self.recap()

    def recap(self, in_flight_unknown: bool = False) -> Recap:
        """Outcomes so far; with `in_flight_unknown`, actions that started writing and never finished
        count as unknown (an interrupted run)."""
        recap = Recap()
        for outcome in self.outcomes.values():
            setattr(recap, outcome.result, getattr(recap, outcome.result) + 1)
        if in_flight_unknown:
            recap.unknown += len(self.writing - set(self.outcomes))
        return recap

    async def _run_one(self, action: Action) -> None:
        for key in action.depends_on:
            await self.finished[key].wait()
        blocked = [key for key in action.depends_on if self.outcomes[key].result not in ("changed", "ok")]
        if blocked:
            first = self.outcomes[blocked[0]]
            outcome = ActionOutcome("skipped", f"{blocked[0]} {first.result}" + _more(blocked))
        else:
            async with self.slots:
                if self.stopped_by is not None:
                    outcome = ActionOutcome(
                        "skipped", f"not started: --fail-fast after {self.stopped_by} failed"
                    )
                else:
                    outcome = await self._attempt(action)
        self._finish(action, outcome)
        if outcome.result in ("failed", "unknown") and self.fail_fast and self.stopped_by is None:
            self.stopped_by = action.key

    async def _attempt(self, action: Action) -> ActionOutcome:
        """The action's outcome; an error after its first write is 'unknown' (it may have taken effect:
        the next run finds out), before it 'failed' (nothing was written)."""
        try:
            outcome = await self.steps[action.kind](action)
            if outcome.result == "changed" and outcome.after is None:
                outcome = ActionOutcome(outcome.result, outcome.detail, await self._after_image(action))
            return outcome
        except ProvenaError as exc:
            message = exc.message
        except Exception as exc:  # a bug or the machine (disk full): this action stops, the others go on
            message = f"internal error: {type(exc).__name__}: {exc}"
        if action.key in self.writing:
            return ActionOutcome("unknown", f"{message}; it may have taken effect: the next apply finds out")
        return ActionOutcome("failed", message)

    async def _after_image(self, action: Action) -> str | None:
        """What undo will compare with: the record as this action left it (a read that fails leaves it
        unknown, and undo falls back to comparing the record's content)."""
        if action.kind in ("delete_model_run", "delete_study"):
            return fingerprint(None)
        try:
            fetched = await registry.fetch(self.http, action.subtype, action.record_id)
        except ProvenaError:
            return None
        return fingerprint(fetched.item) if fetched.item is not None else None

    def _finish(self, action: Action, outcome: ActionOutcome) -> None:
        self.outcomes[action.key] = outcome
        self.finished_at[action.key] = time.monotonic()
        self.journal.append(  # on disk with the next event made durable, or when the journal closes
            ActionFinished(
                at=now(), key=action.key, result=outcome.result, detail=outcome.detail, after=outcome.after
            )
        )
        if action.key in self.finished:
            self.finished[action.key].set()
        if self.progress is not None:
            self.progress(action, outcome.result)

    async def _started(
        self,
        action: Action,
        before: dict[str, Any] | None,
        access: dict[str, Any] | None = None,
        lock: dict[str, Any] | None = None,
    ) -> None:
        """On disk (and all that came before it) before the write it announces is sent."""
        self.writing.add(action.key)
        self.journal.append(
            ActionStarted(
                at=now(),
                key=action.key,
                kind=action.kind,
                record_id=action.record_id,
                before=before,
                access=access,
                lock=lock,
            )
        )
        await self.journal.durable()

    async def _undo_needs(self, subtype: str, item_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Before a deletion, what undoing it needs besides the item: its access settings and lock
        information (a deletion that cannot journal them is not made: it could not be undone whole)."""
        try:
            access, lock = await asyncio.gather(
                writes.read_access(self.http, subtype, item_id),
                writes.read_lock(self.http, subtype, item_id, locked=False),
            )
        except ProvenaError as exc:
            raise ProvenaError(
                f"not deleted: its access settings and lock history, which undo needs, cannot be read "
                f"({exc.message})"
            ) from exc
        return access, lock

    def _sent(
        self, action: Action, request: str, session_id: str | None = None, detail: str | None = None
    ) -> None:
        self.journal.append(
            RequestSent(at=now(), key=action.key, request=request, session_id=session_id, detail=detail)
        )

    def _drifted(self, action: Action, item: dict[str, Any] | None) -> ActionOutcome | None:
        """A record changed by someone else since planning is not overwritten: the plan was approved for
        what it was then."""
        planned = self.plan.fingerprints.get(action.record_id)
        if planned is not None and planned != fingerprint(item):
            return ActionOutcome(
                "failed",
                f"{action.record_id} changed since it was planned (someone else edited it); "
                "plan again to see and approve the change",
            )
        return None

    # -- model-run edits ------------------------------------------------------------------------------

    async def _update(self, action: Action) -> ActionOutcome:
        run = action.record_id
        desired = action.record or {}
        fetched = await registry.fetch(self.http, "MODEL_RUN", run)
        if fetched.item is None:
            return ActionOutcome(
                "failed", f"model run {run} cannot be edited: {fetched.problem or 'not found'}"
            )
        if normalised(fetched.item.get("record")) == normalised(desired):
            if not action.stale_link_to or not await self._graph_links(run, action.stale_link_to):
                return ActionOutcome("ok", "already as planned")
        elif (drift := self._drifted(action, fetched.item)) is not None:
            return drift
        if fetched.locked:
            return ActionOutcome("failed", f"{run} is locked; an admin of the record can unlock it")
        await self._started(action, fetched.item)
        submitted = await self._submit(action, desired)
        if isinstance(submitted, ActionOutcome):
            return submitted
        session_id, lost = submitted
        self._sent(action, f"POST /model_run/update {run}", session_id=session_id, detail=lost)
        try:
            outcome = await follow_job(
                self.http, self.journal, action.key, session_id, self.wait, record_id=run
            )
        except ProvenaError as exc:
            return ActionOutcome(
                "unknown",
                f"job {session_id} was submitted, then following it failed ({exc.message}); "
                "the next apply follows it instead of submitting again",
            )
        if (
            outcome.result == "changed" and action.restoration is not None
        ):  # an undo: the fields the job reset
            after = await registry.fetch(self.http, "MODEL_RUN", run)
            access = action.restoration.access
            if after.item is not None and (_fields_differ(after.item, action) or access is not None):
                await self._put_fields_back(action, after.item, after.locked)
                return ActionOutcome(
                    "changed", f"{outcome.detail}; item fields put back (registry admin import)"
                )
        return outcome

    async def _submit(
        self, action: Action, desired: dict[str, Any]
    ) -> tuple[str, str | None] | ActionOutcome:
        """The job of the edit (and how it was found). A submission that may have reached Provena is
        looked for in the job list (and in the record) before anything else: for the patience when
        Provena answered with a 5xx, for twice the patience when the answer was lost (the wait a later
        apply's recovery adds). Only when it left no trace is it submitted again, up to SUBMISSIONS times,
        so a transient failure costs a wait, not a run. Provena's own client gives a job's row 20 s."""
        run, reason = action.record_id, action.reason or ""
        for submission in range(1, SUBMISSIONS + 1):
            since = time.time()
            try:
                return await writes.submit_update(self.http, run, reason, desired), None
            except Unreachable as exc:
                if not exc.maybe_sent:
                    if submission < SUBMISSIONS:
                        continue  # it never reached Provena: nothing to look for
                    return ActionOutcome("failed", f"{exc.message}; the edit never reached Provena")
                patience = self.wait.lost_submission_s * (1 if exc.status is not None else 2)
                # The lock keeps other provena-ops runs out: a job for this run, reason and record since
                # the submission is this submission's.
                found = await find_job(self.http, run, reason, desired, since, patience)
                if found is not None:
                    return found, "the answer was lost; the job was found in the job list"
                if not action.stale_link_to:  # a re-submission of the record as it is changes nothing in it
                    now = await registry.fetch(self.http, "MODEL_RUN", run)
                    if now.item is not None and normalised(now.item.get("record")) == normalised(desired):
                        return ActionOutcome("changed", "the answer was lost, and the record is as planned")
                if submission == SUBMISSIONS:
                    return ActionOutcome(
                        "unknown",
                        f"the edit got no answer {SUBMISSIONS} times (last: {exc.message}) and no job for "
                        f"it appeared within {patience:.0f} s; the next apply looks again before planning",
                    )
        raise AssertionError("unreachable")

    async def _graph_links(self, run: str, study: str) -> bool:
        return any(node.id == study for node in await prov.explore(self.http, "upstream", run, depth=1))

    # -- deletions --------------------------------------------------------------------------------

    async def _delete_model_run(self, action: Action) -> ActionOutcome:
        """Graph first, registry second: Provena refuses the graph delete once the record is gone."""
        run = action.record_id
        item, settled = await self._to_delete(action, "MODEL_RUN")
        if settled is not None:
            return settled
        access, lock = await self._undo_needs("MODEL_RUN", run)
        await self._started(action, item, access, lock)
        counts = await writes.delete_graph(self.http, run)
        removed = (
            f"{counts.get('REMOVE_NODE', 0)} nodes and {counts.get('REMOVE_LINK', 0)} links removed"
            if counts
            else "none left (removed already)"
        )
        self._sent(action, f"POST /model_run/delete {run}", detail=f"graph: {removed}")
        try:
            await writes.delete_item(self.http, "MODEL_RUN", run)
        except ProvenaError as exc:
            if not await self._gone("MODEL_RUN", run):
                return ActionOutcome(
                    "failed",
                    f"its graph is deleted ({removed}) but the registry record remains: {exc.message}; "
                    "apply again to finish",
                )
        self._sent(action, f"DELETE {registry.SUBTYPE_ROUTES['MODEL_RUN']}/delete {run}")
        return ActionOutcome("changed", f"deleted; graph: {removed}")

    async def _to_delete(self, action: Action, subtype: str) -> tuple[dict[str, Any], ActionOutcome | None]:
        """The record to delete as it is now, or why the deletion is settled without a write: gone
        already (ok), hidden, changed since planning or locked (failed)."""
        fetched = await registry.fetch(self.http, subtype, action.record_id)
        if fetched.item is None:
            if not fetched.unreadable:
                return {}, ActionOutcome("ok", "not found: deleted already")
            return {}, ActionOutcome("failed", f"{action.record_id} cannot be read: {fetched.problem}")
        if (drift := self._drifted(action, fetched.item)) is not None:
            return fetched.item, drift
        if fetched.locked:
            return fetched.item, ActionOutcome(
                "failed", f"{action.record_id} is locked; an admin of the record can unlock it"
            )
        return fetched.item, None

    async def _gone(self, subtype: str, item_id: str) -> bool:
        """After a failed or unanswered delete: did it happen anyway? (A repeat gets a 400.)"""
        fetched = await registry.fetch(self.http, subtype, item_id)
        return fetched.item is None and not fetched.unreadable

    async def _delete_study(self, action: Action) -> ActionOutcome:
        """Only after checking again, through the graph and the registry, that nothing links to it."""
        study = action.record_id
        item, settled = await self._to_delete(action, "STUDY")
        if settled is not None:
            return settled
        ready = max((self.finished_at[key] for key in action.depends_on), default=0.0)
        linked = await self._still_linked(study, ready)
        if linked:
            return ActionOutcome(
                "failed", f"not deleted: {', '.join(linked[:5])}{_more(linked, 5)} still link to it"
            )
        access, lock = await self._undo_needs("STUDY", study)
        await self._started(action, item, access, lock)
        try:
            await writes.delete_item(self.http, "STUDY", study)
        except ProvenaError:
            if not await self._gone("STUDY", study):
                raise
        self._sent(action, f"DELETE {registry.SUBTYPE_ROUTES['STUDY']}/delete {study}")
        return ActionOutcome("changed", "deleted")

    async def _still_linked(self, study: str, ready: float) -> list[str]:
        graph: set[str] = set()
        for direction in ("downstream", "upstream"):
            graph |= {
                f"{n.id} ({n.subtype})" for n in await prov.explore(self.http, direction, study, depth=1)
            }
        named = (await self._registry_links(ready)).get(study, [])
        return sorted(graph | {f"{run} (MODEL_RUN record)" for run in named})

    async def _registry_links(self, ready: float) -> dict[str, list[str]]:
        """Which model runs name which study, from a scan that started after `ready` (when the study's
        relinks finished). Study deletions ready together share one scan of the registry."""
        if self._scan is None or self._scan[0] < ready:
            self._scan = (time.monotonic(), asyncio.create_task(self._scan_registry()))
        return await self._scan[1]

    async def _scan_registry(self) -> dict[str, list[str]]:
        links: dict[str, list[str]] = {}

        def collect(page: list[registry.ListedRun]) -> None:
            for run in page:
                if run.study_id:
                    links.setdefault(run.study_id, []).append(run.id)

        await registry.list_model_runs(self.http, collect)
        return links

    # -- relodge ----------------------------------------------------------------------------------

    async def _relodge(self, action: Action) -> ActionOutcome:
        run = action.record_id
        fetched = await registry.fetch(self.http, "MODEL_RUN", run)
        if fetched.item is None:
            return ActionOutcome(
                "failed", f"model run {run} cannot be relodged: {fetched.problem or 'not found'}"
            )
        upstream = await prov.explore(self.http, "upstream", run, depth=1)
        downstream = await prov.explore(self.http, "downstream", run, depth=1)
        lineage = {"upstream": [n.id for n in upstream], "downstream": [n.id for n in downstream]}
        missing = missing_from_graph(fetched.item, lineage)
        if not missing:
            return ActionOutcome("ok", "the graph already holds every link of the registry record")
        await self._started(action, fetched.item)
        await writes.relodge(self.http, fetched.item)
        self._sent(action, f"POST /admin/store_record {run}", detail=f"adds links to {', '.join(missing)}")
        return ActionOutcome("changed", f"relodged; the graph now links {', '.join(missing)}")

    # -- restore (undo of a deletion) ---------------------------------------------------------------

    async def _restore(self, action: Action) -> ActionOutcome:
        """The registry item put back with the admin import, add-only (an id taken meanwhile makes the
        import fail whole, so a repeat never writes twice), then, for a model run, its graph relodged
        from the record (additive, safe to repeat)."""
        restoration = action.restoration
        assert restoration is not None
        if restoration.item is None:
            return await self._fields_only(action)
        item_id, item = action.record_id, restoration.item
        now_there = await registry.general_fetch(self.http, item_id)
        if now_there.unreadable:
            return ActionOutcome("failed", f"{item_id} cannot be read: {now_there.problem}")
        if now_there.item is None or normalised(now_there.item) != normalised(item):
            if now_there.item is not None and not restoration.overwrite:
                return ActionOutcome(
                    "failed",
                    f"{item_id} exists again (created since it was planned); not overwritten: plan the undo "
                    "again to see it",
                )
            if (drift := self._drifted(action, now_there.item)) is not None:
                return drift
            await self._started(action, now_there.item)
            bundle = _bundle(item, restoration.access or {}, restoration.lock or {})
            mode = ImportMode.ADD_OR_OVERWRITE if restoration.overwrite else ImportMode.ADD_ONLY
            try:
                said = await writes.import_items(self.http, [bundle], mode)
            except ProvenaError:
                again = await registry.general_fetch(self.http, item_id)  # a lost answer: did it land?
                if again.item is None or normalised(again.item) != normalised(item):
                    raise
                said = "imported (the answer was lost; the record is there)"
            self._sent(action, f"POST /admin/import {mode.value} {item_id}", detail=said)
        elif action.subtype == "MODEL_RUN":
            # imported by an earlier, interrupted undo: relodge only
            await self._started(action, now_there.item)
        if action.subtype != "MODEL_RUN":
            if action.key not in self.writing:
                return ActionOutcome("ok", "restored already")
            return ActionOutcome("changed", "restored (registry admin import)")
        await writes.relodge(self.http, item)
        self._sent(action, f"POST /admin/store_record {item_id}", detail="graph relodged from the record")
        return ActionOutcome("changed", "restored (registry admin import); graph relodged from the record")

    async def _fields_only(self, action: Action) -> ActionOutcome:
        fetched = await registry.fetch(self.http, action.subtype, action.record_id)
        if fetched.item is None:
            return ActionOutcome(
                "failed", f"{action.record_id} cannot be read: {fetched.problem or 'not found'}"
            )
        if not _fields_differ(fetched.item, action):
            return ActionOutcome("ok", "its item fields are as they were already")
        if (drift := self._drifted(action, fetched.item)) is not None:
            return drift
        if fetched.locked:
            return ActionOutcome(
                "failed", f"{action.record_id} is locked; an admin of the record can unlock it"
            )
        await self._started(action, fetched.item)
        await self._put_fields_back(action, fetched.item, fetched.locked)
        return ActionOutcome("changed", "its item fields are put back (registry admin import)")

    async def _put_fields_back(self, action: Action, item: dict[str, Any], locked: bool) -> None:
        """What Provena's update job resets (user_metadata, record_status), put back on the item as it
        is now, its history kept, with the admin import (overwrite-only: the record must exist)."""
        restoration = action.restoration
        assert restoration is not None
        current, lock = await asyncio.gather(
            writes.read_access(self.http, action.subtype, action.record_id),
            writes.read_lock(self.http, action.subtype, action.record_id, locked=locked),
        )
        access = restoration.access or current  # a record forced over one that took its id: as it was
        patched = {**item, **(restoration.fields or {})}
        said = await writes.import_items(
            self.http, [_bundle(patched, access, lock)], ImportMode.OVERWRITE_ONLY
        )
        fields = ", ".join([*sorted(restoration.fields or {}), *(["access"] if restoration.access else [])])
        self._sent(
            action, f"POST /admin/import OVERWRITE_ONLY {action.record_id}", detail=f"{fields}: {said}"
        )


def _bundle(item: dict[str, Any], access: dict[str, Any], lock: dict[str, Any]) -> dict[str, Any]:
    """An import bundle with the item as Provena writes items (py_to_dict: no null fields), since
    import stores its payload as given and a typed fetch adds the nulls storage leaves out."""
    item_id = str(item["id"])
    return {
        "id": item_id,
        "item_payload": normalised(item),
        "auth_payload": {"id": item_id, "access_settings": access},
        "lock_payload": {"id": item_id, "lock_information": lock},
    }


def _fields_differ(item: dict[str, Any], action: Action) -> bool:
    fields = (action.restoration.fields if action.restoration is not None else None) or {}
    return any(normalised(item.get(key)) != normalised(value) for key, value in fields.items())


async def follow_job(
    http: ProvenaHttp,
    journal: Journal,
    key: str,
    session_id: str,
    wait: JobWait,
    record_id: str | None = None,
) -> ActionOutcome:
    """Poll with backoff through PENDING, DEQUEUED, IN_PROGRESS (the row may not exist at first).
    Running out of patience leaves the action unknown, never failed: the job may still succeed, and the
    next run follows it instead of submitting again."""
    deadline = time.monotonic() + wait.timeout_s
    delay = wait.first_poll_s
    seen: str | None = None
    while True:
        job = await jobs.fetch_job(http, session_id)
        status = job.status.value if job is not None else None
        if job is not None and status != seen:
            seen = status
            journal.write(
                JobStatus(at=now(), key=key, session_id=session_id, status=str(status), info=job.info)
            )
        if job is not None and status == "SUCCEEDED":
            return ActionOutcome("changed", f"job {session_id} SUCCEEDED")
        if job is not None and status == "FAILED":
            cause = await _likely_cause(http, record_id) if record_id and _says_no_cause(job.info) else None
            return ActionOutcome(
                "failed",
                f"Provena's update job {session_id} FAILED: {job.info}"
                + (f" (likely: {cause})" if cause else ""),
            )
        if time.monotonic() >= deadline:
            return ActionOutcome(
                "unknown",
                f"job {session_id} is still {seen or 'not listed'} after {wait.timeout_s:.0f} s; "
                "the next apply follows it instead of submitting again",
            )
        await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # jitter: jobs submitted together drift apart
        delay = min(delay * 2, wait.max_poll_s)


def _says_no_cause(info: str | None) -> bool:
    """prov-api's job text for a refused registry update loses the registry's reason (it wraps an
    exception whose text is empty): `... Error: ..`."""
    return info is not None and info.rstrip().endswith("Error: ..")


async def _likely_cause(http: ProvenaHttp, record_id: str) -> str | None:
    """Why the registry refused the job's update, read from the record as it is now."""
    try:
        fetched = await registry.fetch(http, "MODEL_RUN", record_id)
    except ProvenaError:
        return None
    if fetched.item is None:
        return f"{record_id} is not a model run that can be read: {fetched.problem or 'not found'}"
    if fetched.locked:
        return f"{record_id} is locked; an admin of the record can unlock it"
    if not {"metadata-write", "admin"} & set(fetched.roles):
        return f"you may not edit {record_id} (your roles on it: {', '.join(fetched.roles) or 'none'})"
    return None


CLOCK_SKEW_S = 120.0  # Provena's clock and ours may disagree; the reason and record make the match


async def find_job(
    http: ProvenaHttp,
    model_run_id: str,
    reason: str,
    record: dict[str, Any] | None,
    since: float,
    patience_s: float,
) -> str | None:
    """The update job submitted since `since` for this run with this reason (and record, when known),
    waiting up to `patience_s` for its row to appear."""
    deadline = time.monotonic() + patience_s
    while True:
        for job in await jobs.jobs_since(http, since - CLOCK_SKEW_S):
            payload = job.payload
            if payload.get("model_run_record_id") != model_run_id or payload.get("reason") != reason:
                continue
            if record is None or normalised(payload.get("updated_record")) == normalised(record):
                return job.session_id
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(1.0)


def _more(items: list[str], shown: int = 1) -> str:
    return f" (and {len(items) - shown} more)" if len(items) > shown else ""
