"""The run journal: one append-only JSON Lines file per apply, flushed and fsync'd per event, written
ahead of every write (intent, then the request and its job, then the outcome).

It is what an auditor reads, what `provena-ops log` shows, what a later run reads to finish a job an
interrupted run left in flight, and, with the full record as it was before each change, enough to undo
one. It never holds credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, BinaryIO, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

import provena_ops.safety.strict_json as strict_json
from provena_ops.errors import ProvenaOpsError, first_problem
from provena_ops.plan.keys import key_record, key_verb
from provena_ops.plan.model import EnvironmentInfo, Plan, PlaybookInfo

JOURNAL_FORMAT: Literal[1] = 1
DEFAULT_RUNS_DIR = Path(".provena-ops") / "runs"

Result = Literal["changed", "ok", "failed", "skipped", "unknown"]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at: str = Field(description="When (ISO 8601, UTC).")


class RunStarted(_Event):
    event: Literal["run_started"] = "run_started"
    journal_format: Literal[1] = JOURNAL_FORMAT
    run_id: str
    who: str
    environment: EnvironmentInfo
    playbook: PlaybookInfo
    command: str = Field(description="How apply was invoked (no secrets are ever on a command line).")
    undoes: str | None = Field(None, description="The run this one undoes (`provena-ops undo`).")


class Planned(_Event):
    """The plan this run carries out, as shown (and approved): every action, field and fingerprint."""

    event: Literal["planned"] = "planned"
    plan: Plan


class JobRecovered(_Event):
    """A job an earlier, interrupted run submitted, followed to its end before anything else."""

    event: Literal["job_recovered"] = "job_recovered"
    from_run: str
    key: str
    session_id: str
    status: str
    info: str | None = None


class ActionStarted(_Event):
    """Written before the first write of an action: the record exactly as it was (None when absent), and
    before a deletion what else undoing it needs (journals before undo existed lack them)."""

    event: Literal["action_started"] = "action_started"
    key: str
    kind: str
    record_id: str
    before: dict[str, Any] | None
    access: dict[str, Any] | None = Field(
        None, description="Before a deletion: the record's access settings (owner, general, groups)."
    )
    lock: dict[str, Any] | None = Field(
        None, description="Before a deletion: the record's lock information (locked, history)."
    )


class RequestSent(_Event):
    event: Literal["request_sent"] = "request_sent"
    key: str
    request: str = Field(description="Method, path and target, e.g. 'POST /model_run/update 10378.1/1'.")
    session_id: str | None = Field(None, description="The job Provena started for it, if any.")
    detail: str | None = None


class JobStatus(_Event):
    event: Literal["job_status"] = "job_status"
    key: str
    session_id: str
    status: str
    info: str | None = None


class ActionFinished(_Event):
    event: Literal["action_finished"] = "action_finished"
    key: str
    result: Result
    detail: str
    after: str | None = Field(
        None,
        description="Fingerprint of the record once changed ('absent' once deleted): what undo compares "
        "with, to tell a record changed since from one as this run left it.",
    )


class Recap(BaseModel):
    model_config = ConfigDict(extra="forbid")

    changed: int = 0
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    unknown: int = 0

    def line(self) -> str:
        parts = [
            f"{self.changed} changed",
            f"{self.ok} ok",
            f"{self.failed} failed",
            f"{self.skipped} skipped",
        ]
        if self.unknown:
            parts.append(f"{self.unknown} unknown")
        return "Apply: " + ", ".join(parts) + "."

    @property
    def succeeded(self) -> bool:
        return not (self.failed or self.skipped or self.unknown)


class RunFinished(_Event):
    event: Literal["run_finished"] = "run_finished"
    recap: Recap
    stopped: str | None = Field(None, description="Why the run stopped early (--fail-fast, interrupted).")
    cancelled: bool = Field(
        False,
        description="Stopped before any write, by the user (at the approval prompt, or while planning).",
    )


class RunResumed(_Event):
    """Appended to an interrupted run's journal once a later run has seen its jobs to their end."""

    event: Literal["run_resumed"] = "run_resumed"
    by_run: str


Event = Annotated[
    RunStarted
    | Planned
    | JobRecovered
    | ActionStarted
    | RequestSent
    | JobStatus
    | ActionFinished
    | RunFinished
    | RunResumed,
    Field(discriminator="event"),
]
EVENT = TypeAdapter(Event)


class NotAnEvent(ValueError):
    pass


def parse_event(line: str) -> Event:
    """One journal line, read as strictly as a saved plan (a journal steers recovery: trusted for
    nothing): no duplicate keys, NaN or absurd nesting, no coercion."""
    try:
        return EVENT.validate_python(strict_json.loads(line), strict=True)
    except strict_json.JsonProblem as problem:
        raise NotAnEvent(f"{problem.path + ': ' if problem.path else ''}{problem.message}") from None
    except ValidationError as exc:
        raise NotAnEvent(first_problem(exc)) from None


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def new_run_id() -> str:
    """Sortable by time, unique across machines: 20261126T101500Z-3f9a1c, the suffix's first three hex
    digits the milliseconds (two runs in one second still sort in order: `undo last` relies on it),
    the last three random."""
    moment = datetime.now(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{moment.microsecond // 1000:03x}{secrets.token_hex(2)[:3]}"


class Journal:
    """Appends events to `<runs dir>/<run id>.jsonl`. `write` returns once the event is on disk;
    `append` once it is with the operating system (a killed process loses nothing), and `durable`
    makes every event appended so far survive a power cut too, one fsync for all the lanes waiting, in
    a thread: 8 actions in flight fsyncing 4 events each on the event loop kept every lane still ~8% of
    the time (undo_scale, 10,000 runs)."""

    def __init__(self, directory: Path, run_id: str) -> None:
        self.run_id = run_id
        self.path = directory / f"{run_id}.jsonl"
        if directory.exists() and not directory.is_dir():
            raise ProvenaOpsError(
                f"cannot write the run journal: {directory} is not a directory",
                hint="move that file away, or choose another --runs-dir",
            )
        try:
            directory.mkdir(parents=True, exist_ok=True)
            _drop_torn_tail(self.path)
            self._file = self.path.open("a", encoding="utf-8")
            self._appended = 0  # events appended, and of them on disk
            self._on_disk = 0
            self._syncing: asyncio.Future[None] | None = None
        except OSError as exc:
            raise ProvenaOpsError(
                f"cannot write the run journal {self.path}: {exc.strerror or exc}",
                hint="apply writes a journal before anything else; choose a writable --runs-dir",
            ) from exc

    def write(self, event: BaseModel) -> None:
        self.append(event)
        os.fsync(self._file.fileno())
        self._on_disk = self._appended

    def append(self, event: BaseModel) -> None:
        self._file.write(event.model_dump_json() + "\n")
        self._file.flush()
        self._appended += 1

    async def durable(self) -> None:
        """Every event appended before this call is on disk when it returns."""
        wanted = self._appended
        while self._on_disk < wanted:
            if self._syncing is None:
                self._syncing = asyncio.ensure_future(self._sync())
            await asyncio.shield(self._syncing)

    async def _sync(self) -> None:
        covered = self._appended  # an fsync makes all that was written before it durable
        try:
            await asyncio.to_thread(os.fsync, self._file.fileno())
            self._on_disk = max(self._on_disk, covered)
        finally:
            self._syncing = None

    def close(self) -> None:
        if self._on_disk < self._appended and not self._file.closed:
            with contextlib.suppress(OSError):  # closing after a failure: what was appended stays
                os.fsync(self._file.fileno())
        self._file.close()


def _drop_torn_tail(path: Path) -> None:
    """An event is written whole, newline last, before anything it records is done; a tail without
    its newline is an event a crash cut short. Appending after it would glue two events together."""
    if not path.exists() and not path.is_symlink():
        return
    if not stat.S_ISREG(path.lstat().st_mode):
        raise OSError(f"{path.name} exists and is not a regular file")
    with path.open("rb+") as file:
        size = file.seek(0, os.SEEK_END)
        if size == 0:
            return
        file.seek(size - 1)
        if file.read(1) == b"\n":
            return
        keep = _last_newline(file, size) + 1
        file.truncate(keep)
        os.fsync(file.fileno())


def _last_newline(file: BinaryIO, size: int) -> int:
    """Offset of the last newline (-1 if none), reading backwards in blocks."""
    end = size
    while end > 0:
        start = max(0, end - 65536)
        file.seek(start)
        found = file.read(end - start).rfind(b"\n")
        if found >= 0:
            return start + found
        end = start
    return -1


class BadJournal(ProvenaOpsError):
    pass


NOT_A_JOURNAL_HINT = (
    "journals are regular files written by provena-ops; move this entry out of the runs directory"
)


def open_journal(path: Path) -> BinaryIO:
    """A journal opened for reading only if it is a regular file: a planted link to /dev/zero, a pipe or a
    directory named like a journal would hang or exhaust memory (opened non-blocking, checked on the
    open file, so it cannot be swapped between the check and the read)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError as exc:
        raise BadJournal(
            f"{path}: not a journal ({exc.strerror or exc})",
            hint=NOT_A_JOURNAL_HINT,
        ) from exc
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise BadJournal(
            f"{path}: not a journal (not a regular file)",
            hint=NOT_A_JOURNAL_HINT,
        )
    os.set_blocking(descriptor, True)
    return os.fdopen(descriptor, "rb")


def read_events(path: Path) -> list[Event]:
    """Every event of a journal. A last line cut short by a crash is ignored; anything else unreadable is
    an error naming the line."""
    events: list[Event] = []
    with open_journal(path) as file:
        lines = file.read().split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            events.append(parse_event(_text(raw)))
        except NotAnEvent as exc:
            if number == len(lines):
                break  # torn write at the moment of a crash
            raise BadJournal(
                f"{path}:{number}: not a journal event ({exc})",
                hint="journals are written by provena-ops only; restore the file from a backup",
            ) from exc
    return events


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotAnEvent(f"byte 0x{raw[exc.start]:02x} at column {exc.start + 1} is not UTF-8") from None


def last_event(path: Path) -> Event | None:
    """The journal's last complete event, read from its end (journals hold whole plans and records, so
    reading them from the start for this would be slow)."""
    with open_journal(path) as file:
        end = file.seek(0, os.SEEK_END)
        while end > 0:
            newline = _last_newline(file, end)
            file.seek(newline + 1)
            line = file.read(end - newline - 1)
            try:
                return parse_event(line.decode("utf-8"))
            except (NotAnEvent, UnicodeDecodeError):
                end = max(newline, 0)  # a torn or empty last line: the one before it
    return None


FIRST_EVENT_BYTES = 1 << 20  # a run_started event is a few hundred bytes; a huge first line is not one


def first_event(path: Path) -> Event | None:
    try:
        with open_journal(path) as file:
            line = file.readline(FIRST_EVENT_BYTES).decode("utf-8")
    except (BadJournal, UnicodeDecodeError):
        return None
    try:
        return parse_event(line)
    except NotAnEvent:
        return None


def deleted_by(directory: Path, registry: str) -> dict[str, str]:
    """Record id -> the latest run (against `registry`) that deleted it, from the journals in `directory`.
    Only the lines that can say so are parsed: journals hold whole plans and records."""
    found: dict[str, str] = {}
    for path in journals(directory):
        head = first_event(path)
        if not isinstance(head, RunStarted) or head.environment.registry != registry:
            continue
        try:
            with open_journal(path) as file:
                for raw in file:
                    line = raw.decode("utf-8")
                    if '"action_finished"' not in line or '"delete ' not in line:
                        continue
                    try:
                        event = parse_event(line)
                    except NotAnEvent:
                        continue  # a torn line: what it says is not known
                    if (
                        isinstance(event, ActionFinished)
                        and event.result == "changed"
                        and key_verb(event.key) == "delete"
                    ):
                        found[key_record(event.key)] = head.run_id
        except (OSError, UnicodeDecodeError, BadJournal):
            continue  # an unreadable journal tells nothing here; `log show` reports it
    return found


def journals(directory: Path) -> Iterator[Path]:
    """Journal files, oldest first (run ids sort by time). Only regular files: provena-ops writes nothing
    else, and a link, pipe or directory named like a journal is not one (see open_journal)."""
    if directory.is_dir():
        yield from sorted(path for path in directory.glob("*.jsonl") if stat.S_ISREG(path.lstat().st_mode))


def find_run(directory: Path, run: str) -> Path:
    """A journal by run id, or by a unique prefix of it."""
    if directory.exists() and not directory.is_dir():
        raise ProvenaOpsError(
            f"the runs directory {directory} is not a directory", hint="give --runs-dir DIR"
        )
    matches = [path for path in journals(directory) if path.stem.startswith(run)]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(path.stem for path in list(journals(directory))[-5:]) or "none yet"
    if not matches:
        raise ProvenaOpsError(
            f"no run {run!r} in {directory}", hint=f"`provena-ops log list` shows the runs (latest: {known})"
        )
    raise ProvenaOpsError(
        f"{len(matches)} runs start with {run!r}",
        hint="give more of the run id: " + ", ".join(p.stem for p in matches),
    )


# -- Read-only: what `provena-ops log list` needs of a run, without reading its plan or records ---------

# How an event line starts as Journal.write writes it (`at` first): only these lines are parsed.
_OUTLINED = re.compile(rb'\{"at":"[^"\\]{0,64}","event":"(action_started|run_finished|run_resumed)"')


@dataclass(frozen=True)
class Outline:
    """A run at a glance: who started it where, how many actions began writing, how it ended (the last
    run_finished; None when it never ended), and the run that later followed its unfinished jobs."""

    head: RunStarted
    actions_started: int
    finished: RunFinished | None
    resumed_by: str | None


def outline(path: Path) -> Outline | None:
    """The run's outline; None when the journal does not start with a readable run_started. A line that
    is not a valid event is passed over here (`log show` names it): a listing reads only what it needs."""
    head = first_event(path)
    if not isinstance(head, RunStarted):
        return None
    started: set[str] = set()
    finished: RunFinished | None = None
    resumed_by: str | None = None
    with open_journal(path) as file:
        for raw in file:
            if _OUTLINED.match(raw) is None:
                continue
            try:
                event = parse_event(raw.decode("utf-8"))
            except (NotAnEvent, UnicodeDecodeError):
                continue
            if isinstance(event, ActionStarted):
                started.add(event.key)
            elif isinstance(event, RunFinished):
                finished = event
            elif isinstance(event, RunResumed):
                resumed_by = event.by_run
    return Outline(head, len(started), finished, resumed_by)
