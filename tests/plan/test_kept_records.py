"""Records read for a plan are kept in a spill file, not memory: what goes in comes back, whatever its
size or position, and a temporary directory that cannot take them is a clear error, not a traceback."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from provena_ops.errors import ProvenaOpsError
from provena_ops.facts.model import RECENT, RecordFact, State
from provena_ops.spill import FLUSH_BYTES, Spill


def test_values_come_back_exactly_before_and_after_they_reach_the_file() -> None:
    spill = Spill()
    values = [bytes([i % 251]) * (i * 997 % 70_000) for i in range(200)]  # ~7 MB: several flushes
    places = [spill.put(value) for value in values]
    assert sum(map(len, values)) > 3 * FLUSH_BYTES
    assert [spill.get(place) for place in places] == values
    assert [spill.get(place) for place in reversed(places)] == values[::-1]
    spill.close()


def test_a_state_gives_back_every_fact_it_kept_and_their_fingerprints() -> None:
    state = State(environment="e", username="u")
    facts = [
        RecordFact.read(
            f"10378.1/{n}",
            {"id": f"10378.1/{n}", "item_subtype": "MODEL_RUN", "display_name": f"run {n}", "history": [n]},
            roles=["metadata-read"],
            locked=n % 2 == 0,
        )
        for n in range(3 * RECENT)
    ]
    for fact in facts:
        state.keep(fact)
    state.keep(RecordFact(id="10378.1/gone", problem="not found"))
    for fact in reversed(facts):  # older than the decoded few: read back from the file
        kept = state.record(fact.id)
        assert kept == fact
        assert kept.item is not None and "history" not in kept.item
    assert state.record("10378.1/gone").problem == "not found"
    assert state.standing(facts[0].id) == ("MODEL_RUN", False)  # no record_type: not a complete item
    assert not state.standing("10378.1/gone").exists and not state.standing("10378.1/never").exists
    assert state.record("10378.1/never").problem == "not read"
    assert state.has_record("10378.1/gone") and not state.has_record("10378.1/never")
    assert state.fingerprints() == {fact.id: fact.fingerprint for fact in facts} | {"10378.1/gone": "absent"}
    assert State.model_validate_json(state.with_records().model_dump_json()).fingerprints() == (
        state.fingerprints()
    )


def test_a_fact_kept_again_replaces_the_first() -> None:
    state = State(environment="e", username="u")
    state.keep(RecordFact.read("10378.1/1", {"id": "10378.1/1", "display_name": "before"}))
    state.record("10378.1/1")  # decoded, and held among the recent ones
    state.keep(RecordFact.read("10378.1/1", {"id": "10378.1/1", "display_name": "after"}))
    assert state.record("10378.1/1").display_name == "after"


def test_a_temporary_directory_that_cannot_take_the_records_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no such directory"))
    spill = Spill()
    with pytest.raises(ProvenaOpsError) as raised:
        for _ in range(3):
            spill.put(b"x" * FLUSH_BYTES)
    assert "no such directory" in raised.value.message
    assert "TMPDIR" in (raised.value.hint or "")
