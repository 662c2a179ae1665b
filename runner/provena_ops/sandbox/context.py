"""The running sandbox's shared state: store, realm, settings and the fault switches tests flip."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sqlite3
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from provena_ops.sandbox.fates import Fates
from provena_ops.sandbox.realm import Realm
from provena_ops.sandbox.search_index import SearchIndex
from provena_ops.sandbox.store import Store

FAULT_KINDS = ("500", "502", "503", "504", "429", "drop", "lost")
# What the client retries: `transient` for reads (a write is retried only when throttled or never
# sent); `throttle` for every request; `lost` (carried out, answer dropped) tests write recovery.
FAULT_MIXES: dict[str, tuple[str, ...]] = {
    "transient": ("500", "502", "503", "504", "429", "drop"),
    "throttle": ("429",),
    "all": FAULT_KINDS,
}
TRANSIENT_FAULTS = FAULT_MIXES["transient"]


@dataclass
class SandboxSettings:
    db_path: Path
    realm_name: str = "provena"
    latency_ms: float = 0.0
    # Share of service requests answered with a transient failure (5xx, 429 or a dropped connection).
    fault_rate: float = 0.0
    fault_kinds: tuple[str, ...] = TRANSIENT_FAULTS
    # Only requests whose path ends with one of these are subject to faults (all when empty).
    fault_paths: tuple[str, ...] = ()
    retry_after_s: int = 1
    # Delay of each job phase (PENDING -> DEQUEUED -> IN_PROGRESS -> final).
    job_delay_ms: float = 0.0
    # How long a launched job's row stays invisible (Provena's connector writes it a moment later).
    job_row_delay_ms: float = 0.0
    job_fail_rate: float = 0.0
    search_staleness_s: float = 0.0
    # Seed of the fault fates (request faults, job failures); a fresh one per server when None.
    random_seed: int | None = None
    # Edits of linked types (study, model, templates, dataset) need the caller's Person link, as in
    # production (registry-api `enforce_user_links`).
    enforce_user_links: bool = True
    # Where one JSON line per service request is appended (None: no log).
    request_log: Path | None = None


@dataclass
class FaultSwitches:
    """Faults aimed at the non-atomic paths of Provena's admin workflows (contract section 10)."""

    fail_next_jobs: int = 0
    fail_jobs_for: set[str] = field(default_factory=set)
    fail_registry_delete_for: set[str] = field(default_factory=set)


class Sandbox:
    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.initial_settings = replace(settings)
        self.store = Store(settings.db_path)
        self.realm = Realm(self.store, settings.realm_name)
        self.faults = FaultSwitches()
        self.search_index = SearchIndex()
        self.fault_seed = settings.random_seed if settings.random_seed is not None else secrets.randbits(31)
        self.fates = Fates(self.fault_seed)
        self.job_wakeup: asyncio.Event | None = None
        self.job_loop: asyncio.AbstractEventLoop | None = None  # the loop job_wakeup belongs to

    def restore(self, snapshot: Path) -> None:
        """Replace the whole state with a snapshot database and forget run-time switches.

        Lets one server serve many isolated test cases: restoring is far cheaper than a restart.
        """
        source = sqlite3.connect(str(snapshot))
        try:
            self.store.replace_with(source)
        finally:
            source.close()
        for setting in fields(self.settings):  # in place: every holder of `settings` sees the reset
            setattr(self.settings, setting.name, getattr(self.initial_settings, setting.name))
        self.faults = FaultSwitches()
        self.search_index = SearchIndex()
        self.fates = Fates(self.fault_seed)
        self.wake_jobs()

    def now(self) -> int:
        return int(time.time())

    def wake_jobs(self) -> None:
        """Safe from any thread (a test restoring the database runs beside the server's loop): an
        asyncio.Event set from another thread can break the loop waiting on it."""
        event, loop = self.job_wakeup, self.job_loop
        if event is None or loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            event.set()
        else:
            with contextlib.suppress(RuntimeError):  # the server stopped meanwhile: nothing to wake
                loop.call_soon_threadsafe(event.set)
