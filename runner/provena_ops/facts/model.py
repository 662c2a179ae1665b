"""Live state as plain data: what the fetcher read and the planner reasons about (no I/O here).

Kept as pydantic models so planner tests can build states by hand and golden files can hold them.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from provena_ops.plan.model import GraphImpact, fingerprint
from provena_ops.spill import Spill

# Provena's realm roles (contract 2.1): each tier needs every role of the tiers below it.
READ_ROLE = "entity-registry-read"
WRITE_ROLE = "entity-registry-write"
ADMIN_ROLE = "entity-registry-admin"
WRITE_TIER = (READ_ROLE, WRITE_ROLE)
ADMIN_TIER = (READ_ROLE, WRITE_ROLE, ADMIN_ROLE)


class Fact(BaseModel):
    model_config = ConfigDict(extra="forbid")


# The bulkiest parts of an item, which planning never reads: dropped after fingerprinting, so 10,000
# records fit in memory (history alone is most of a model run).
UNREAD_FIELDS = ("history", "prov_serialisation")


class RecordFact(Fact):
    """One registry record as the caller sees it; `item` is None when it does not exist (or is unreadable).

    `fingerprint` digests the item exactly as read, before its unread fields are dropped.
    """

    id: str
    item: dict[str, Any] | None = None
    fingerprint: str = "absent"
    roles: list[str] = Field(default_factory=list)
    locked: bool = False
    problem: str | None = None  # Provena's words when the fetch found nothing usable
    unreadable: bool = False  # it exists, but the signed-in user may not read it (Provena's 401)

    @classmethod
    def read(cls, record_id: str, item: dict[str, Any] | None, **fields: Any) -> RecordFact:
        slim = None if item is None else {k: v for k, v in item.items() if k not in UNREAD_FIELDS}
        return cls(id=record_id, item=slim, fingerprint=fingerprint(item), **fields)

    @property
    def exists(self) -> bool:
        return self.item is not None

    @property
    def subtype(self) -> str | None:
        return None if self.item is None else str(self.item.get("item_subtype"))

    @property
    def display_name(self) -> str | None:
        return None if self.item is None else self.item.get("display_name")

    @property
    def complete(self) -> bool:
        return self.item is not None and self.item.get("record_type") == "COMPLETE_ITEM"


class RunSummary(Fact):
    """A model run as listed by the registry scan: enough to expand selectors and find study links."""

    id: str
    display_name: str
    study_id: str | None = None


class Linked(Fact):
    id: str
    subtype: str


class StudyConnections(Fact):
    """What links to a study: through the graph (explore, depth 1) and through registry records."""

    graph: list[Linked] = Field(default_factory=list)
    registry: list[str] = Field(default_factory=list)  # model runs whose record names the study
    graph_error: str | None = None

    @property
    def graph_ids(self) -> list[str]:
        return [node.id for node in self.graph]

    @property
    def model_runs(self) -> set[str]:
        return set(self.registry) | {node.id for node in self.graph if node.subtype == "MODEL_RUN"}


class Standing(NamedTuple):
    """A record's subtype (None: absent or unreadable) and whether it is complete (not a seed)."""

    subtype: str | None
    complete: bool

    @property
    def exists(self) -> bool:
        return self.subtype is not None


_SUBTYPES: dict[str, str] = {}  # one string per subtype, not one per record kept
RECENT = 64  # facts kept decoded: a template or study that thousands of runs name is decoded once


class KeptRecords:
    """Records the reader kept, as JSON in a spill file: in memory, only where each is, its
    fingerprint (which every plan carries) and its standing. 100,000 model runs as objects were ~800 MB."""

    def __init__(self) -> None:
        self._spill = Spill()
        # id -> (where, fingerprint, subtype or None when absent, complete)
        self._index: dict[str, tuple[int, str, str | None, bool]] = {}
        self._recent: OrderedDict[str, RecordFact] = OrderedDict()

    def put(self, fact: RecordFact) -> None:
        where = self._spill.put(fact.model_dump_json().encode())
        subtype = None if fact.subtype is None else _SUBTYPES.setdefault(fact.subtype, fact.subtype)
        self._index[fact.id] = (where, fact.fingerprint, subtype, fact.complete)
        self._recent.pop(fact.id, None)

    def standing(self, record_id: str) -> Standing | None:
        entry = self._index.get(record_id)
        return None if entry is None else Standing(entry[2], entry[3])

    def get(self, record_id: str) -> RecordFact | None:
        fact = self._recent.get(record_id)
        if fact is not None:
            self._recent.move_to_end(record_id)
            return fact
        entry = self._index.get(record_id)
        if entry is None:
            return None
        fact = RecordFact.model_validate_json(self._spill.get(entry[0]))
        self._recent[record_id] = fact
        if len(self._recent) > RECENT:
            self._recent.popitem(last=False)
        return fact

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._index

    def fingerprints(self) -> dict[str, str]:
        return {record_id: entry[1] for record_id, entry in self._index.items()}

    def ids(self) -> list[str]:
        return list(self._index)


class State(Fact):
    environment: str
    username: str
    realm_roles: list[str] = Field(default_factory=list)
    records: dict[str, RecordFact] = Field(default_factory=dict)
    # "MODEL_RUN:Reef run 010" -> ids whose display name is exactly that
    names: dict[str, list[str]] = Field(default_factory=dict)
    # for names with no exact match: what search found instead (id, and the display name in `subtype`)
    near_names: dict[str, list[Linked]] = Field(default_factory=dict)
    run_index: list[RunSummary] | None = None  # every model run, when a selector or a study deletion needs it
    unreadable_runs: int = 0  # model runs the scan could not show (no permission, unparsable)
    connections: dict[str, StudyConnections] = Field(default_factory=dict)
    delete_impact: dict[str, GraphImpact] = Field(default_factory=dict)
    delete_errors: dict[str, str] = Field(default_factory=dict)
    downstream: dict[str, list[Linked]] = Field(default_factory=dict)
    # display names of records downstream of deleted model runs (as many as a budget allows)
    downstream_names: dict[str, str] = Field(default_factory=dict)
    # model run -> why its neighbourhood in the graph could not be read (downstream or lineage)
    graph_read_errors: dict[str, str] = Field(default_factory=dict)
    # Depth-1 neighbours of model runs to relodge: upstream and downstream ids, to tell if it is needed.
    lineage: dict[str, dict[str, list[str]]] = Field(default_factory=dict)
    # From this machine's journals: record id -> the earlier run that deleted it (what a "not found"
    # deletion target most likely is; anything else is most likely a typo).
    deleted_by: dict[str, str] = Field(default_factory=dict)
    # For a restore playbook: the digest of the images this machine's journal of its run gives, "" when
    # that journal is not here (the images are then checked against their own digest only).
    journal_digest: str | None = None

    # What the reader read, out of memory (`records` holds hand-built and golden states' facts).
    _kept: KeptRecords = PrivateAttr(default_factory=KeptRecords)

    def missing_roles(self, tier: tuple[str, ...]) -> list[str]:
        return [role for role in tier if role not in self.realm_roles]

    def keep(self, fact: RecordFact) -> None:
        """The fact for its record from now on (replacing any earlier one)."""
        self.records.pop(fact.id, None)
        self._kept.put(fact)

    def has_record(self, record_id: str) -> bool:
        return record_id in self.records or record_id in self._kept

    def standing(self, record_id: str) -> Standing:
        """What a record is, without reading it back: the checks of every entity a model run names
        (100,000 runs name 50,000 datasets) need no more."""
        fact = self.records.get(record_id)
        if fact is not None:
            return Standing(fact.subtype, fact.complete)
        return self._kept.standing(record_id) or Standing(None, False)

    def record(self, record_id: str) -> RecordFact:
        return (
            self.records.get(record_id)
            or self._kept.get(record_id)
            or RecordFact(id=record_id, problem="not read")
        )

    def fingerprints(self) -> dict[str, str]:
        """Every record read: its fingerprint, or 'absent'."""
        return self._kept.fingerprints() | {
            record_id: fact.fingerprint for record_id, fact in self.records.items()
        }

    def with_records(self) -> State:
        """This state with every fact in `records`, as a golden file holds it."""
        kept = {record_id: self.record(record_id) for record_id in self._kept.ids()}
        return self.model_copy(update={"records": kept | self.records})


def name_key(subtype: str, display_name: str) -> str:
    return f"{subtype}:{display_name}"
