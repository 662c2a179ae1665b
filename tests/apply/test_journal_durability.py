"""The journal: every event reaches the operating system as it is written; those awaited with
`durable` reach the disk before the caller goes on, one fsync for every lane waiting at once."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from provena_ops.apply.journal import ActionFinished, Journal


def finished(key: str) -> ActionFinished:
    return ActionFinished(at="2026-12-04T00:00:00Z", key=key, result="ok", detail="d")


def test_lanes_waiting_together_share_one_fsync_and_every_event_is_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def counted(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counted)
    journal = Journal(tmp_path, "run")

    async def lanes() -> None:
        async def lane(n: int) -> None:
            journal.append(finished(f"k{n}"))
            await journal.durable()

        await asyncio.gather(*(lane(n) for n in range(8)))
        assert len(synced) == 1  # eight events, one fsync after all of them
        await journal.durable()  # nothing new: no fsync
        assert len(synced) == 1
        journal.append(finished("late"))
        await journal.durable()
        assert len(synced) == 2

    asyncio.run(lanes())
    lines = (tmp_path / "run.jsonl").read_text().splitlines()
    assert len(lines) == 9  # appended events are in the file before any fsync or close
    journal.append(finished("unsynced"))
    journal.close()
    assert len(synced) == 3  # closing makes what was only appended durable
    journal = Journal(tmp_path, "run2")
    journal.write(finished("w"))
    journal.close()
    assert len(synced) == 4  # written and durable already: close adds none
