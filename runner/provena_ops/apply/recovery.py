"""Before planning, finish what an interrupted apply left in flight on the same environment.

Everything a run does is re-derived from live state by the next plan, except one thing: an update job
submitted but not yet finished. Planning then would see the old record and submit the edit a second
time. So the journals of earlier runs that did not end cleanly are read, every job they submitted and
never saw end (or may have submitted just before dying) is followed to its end, and only then is the
playbook planned. The earlier journal is then marked as resumed, so it is not read again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from provena_ops.apply.executor import JobWait, find_job, follow_job
from provena_ops.apply.journal import (
    ActionFinished,
    ActionStarted,
    JobRecovered,
    Journal,
    Planned,
    RequestSent,
    RunFinished,
    RunResumed,
    RunStarted,
    first_event,
    journals,
    last_event,
    now,
    read_events,
)
from provena_ops.errors import ProvenaOpsError
from provena_ops.facts.reader import together
from provena_ops.plan.model import Action
from provena_ops.provena.http import ProvenaHttp

UPDATE_KINDS = ("update", "relink")


@dataclass(frozen=True)
class InFlight:
    run_id: str
    journal: Path
    key: str
    record_id: str
    session_id: str | None  # None: the run died while submitting; the job list tells if it got through
    started_at: str
    reason: str = ""
    record: dict[str, Any] | None = None


def unfinished(
    directory: Path, registry: str, this_run: Path | None = None
) -> tuple[list[Path], list[InFlight]]:
    """Earlier runs against this registry (whatever the environment was called) that did not end
    cleanly, and the update jobs they left without a known end."""
    runs: list[Path] = []
    found: list[InFlight] = []
    for path in journals(directory):
        if path == this_run:
            continue
        last = last_event(path)
        if last is None or isinstance(last, RunResumed):
            continue
        if isinstance(last, RunFinished) and not last.recap.unknown:
            continue
        head = first_event(path)
        if not isinstance(head, RunStarted) or head.environment.registry != registry:
            continue
        events = read_events(path)
        runs.append(path)
        started: dict[str, ActionStarted] = {}
        sessions: dict[str, str] = {}
        settled: set[str] = set()
        planned: dict[str, Action] = {}
        for event in events:
            if isinstance(event, Planned):
                planned = {action.key: action for action in event.plan.actions}
            elif isinstance(event, ActionStarted) and event.kind in UPDATE_KINDS:
                started[event.key] = event
            elif isinstance(event, RequestSent) and event.session_id:
                sessions[event.key] = event.session_id
            elif isinstance(event, ActionFinished) and event.result != "unknown":
                settled.add(event.key)
        for key, action in started.items():
            if key in settled:
                continue
            intended = planned.get(key)
            found.append(
                InFlight(
                    head.run_id,
                    path,
                    key,
                    action.record_id,
                    sessions.get(key),
                    action.at,
                    reason=intended.reason or "" if intended else "",
                    record=intended.record if intended else None,
                )
            )
    return runs, found


async def finish_in_flight(
    http: ProvenaHttp, journal: Journal, directory: Path, wait: JobWait, registry: str
) -> list[JobRecovered]:
    """Follow every job left in flight to its end, journalling what became of each."""
    runs, pending = unfinished(directory, registry, this_run=journal.path)

    async def settle(item: InFlight) -> JobRecovered | None:
        session_id = item.session_id
        if session_id is None:
            since = datetime.fromisoformat(item.started_at).timestamp()
            session_id = await find_job(
                http, item.record_id, item.reason, item.record, since, wait.lost_submission_s
            )
            if session_id is None:
                return None  # never reached Provena: planning sees the record unchanged and edits it
        outcome = await follow_job(http, journal, item.key, session_id, wait, record_id=item.record_id)
        if outcome.result == "unknown":
            raise ProvenaOpsError(
                f"run {item.run_id} submitted the edit of {item.record_id} (job {session_id}) and the job "
                "has not finished yet; applying now could submit the same edit twice",
                hint="apply again later; `provena-ops log show " + item.run_id + "` shows that run",
            )
        event = JobRecovered(
            at=now(),
            from_run=item.run_id,
            key=item.key,
            session_id=session_id,
            status="SUCCEEDED" if outcome.result == "changed" else "FAILED",
            info=outcome.detail,
        )
        journal.write(event)
        return event

    recovered = [event for event in await together(*(settle(item) for item in pending)) if event]
    for path in runs:
        old = Journal(path.parent, path.stem)
        old.write(RunResumed(at=now(), by_run=journal.run_id))
        old.close()
    return recovered
