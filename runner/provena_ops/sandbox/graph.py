"""Provena's provenance-graph rules (contract section 7), as pure functions.

Kept free of storage so that the update job, delete and relodge all share exactly one
implementation of "what graph does this model run produce" and "what changes turn the old
graph into the new one", and so that it can be tested without a server.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ProvenaInterfaces.ProvenanceModels import ModelRunRecord


@dataclass(frozen=True, order=True)
class Node:
    """Identity of a graph node: Provena matches nodes on (id, subtype, category), never on props."""

    id: str
    subtype: str
    category: str


@dataclass(frozen=True, order=True)
class Link:
    source: Node
    target: Node
    relation: str


@dataclass
class RecordGraph:
    """The graph one record contributes. Links are keyed by (source id, target id): one per ordered pair."""

    nodes: set[Node] = field(default_factory=set)
    links: dict[tuple[str, str], Link] = field(default_factory=dict)

    def add_link(self, source: Node, target: Node, relation: str) -> None:
        self.nodes.add(source)
        self.nodes.add(target)
        # Later additions overwrite earlier ones for the same ordered pair, as Provena does.
        self.links[(source.id, target.id)] = Link(source, target, relation)


class Tags(Sequence[str]):
    """An element's record ids, kept as the comma-joined text the wire form carries. A node shared by
    thousands of runs has thousands of ids; splitting them only to join them again made a trial delete
    cost ~14 ms of CPU, most of it here."""

    __slots__ = ("_ids", "_json", "joined", "size")

    def __init__(self, joined: str, size: int) -> None:
        self.joined = joined
        self.size = size
        self._ids: list[str] | None = None
        self._json: bytes | None = None

    @property
    def json(self) -> bytes:
        """The joined ids as a JSON string, encoded once however many responses carry them."""
        if self._json is None:
            self._json = _json_text(self.joined)
        return self._json

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> str:  # type: ignore[override]
        if self._ids is None:
            self._ids = self.joined.split(",") if self.joined else []
        return self._ids[index]

    def __iter__(self) -> Iterator[str]:
        return iter(self.joined.split(",") if self.joined else [])

    def __contains__(self, record_id: object) -> bool:
        if not isinstance(record_id, str) or "," in record_id:
            return False
        text = self.joined
        return (
            text == record_id
            or text.startswith(record_id + ",")
            or text.endswith("," + record_id)
            or f",{record_id}," in text
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tags) and self.joined == other.joined

    def __hash__(self) -> int:
        return hash(self.joined)

    def __repr__(self) -> str:
        return f"Tags({self.joined!r})"


def joined_tags(tags: Sequence[str]) -> str:
    return tags.joined if isinstance(tags, Tags) else ",".join(tags)


def only_tag(tags: Sequence[str], record_id: str) -> bool:
    return len(tags) == 1 and record_id in tags


@dataclass
class TaggedGraph:
    """A record's current graph as stored: every element with the full set of records tagging it."""

    nodes: dict[Node, Sequence[str]] = field(default_factory=dict)
    links: dict[Link, Sequence[str]] = field(default_factory=dict)


def model_run_graph(run_id: str, record: ModelRunRecord, model_id: str) -> RecordGraph:
    """Build the graph of a model run (contract 7.2); `model_id` is the workflow template's software_id."""
    graph = RecordGraph()
    run = Node(run_id, "MODEL_RUN", "ACTIVITY")
    template = Node(record.workflow_template_id, "WORKFLOW_TEMPLATE", "ENTITY")
    model = Node(model_id, "MODEL", "ENTITY")
    modeller = Node(record.associations.modeller_id, "PERSON", "AGENT")
    graph.nodes.add(run)

    if record.study_id:
        graph.add_link(run, Node(record.study_id, "STUDY", "ACTIVITY"), "wasInformedBy")
    for dataset in record.inputs:
        node = Node(dataset.dataset_id, "DATASET", "ENTITY")
        graph.add_link(run, node, "used")
    for dataset in record.outputs:
        node = Node(dataset.dataset_id, "DATASET", "ENTITY")
        graph.add_link(node, run, "wasGeneratedBy")
    graph.add_link(run, model, "used")
    graph.add_link(run, template, "used")
    graph.add_link(run, modeller, "wasAssociatedWith")
    organisation_id = record.associations.requesting_organisation_id
    if organisation_id:
        graph.add_link(run, Node(organisation_id, "ORGANISATION", "AGENT"), "wasAssociatedWith")
    for dataset in record.outputs:
        graph.add_link(Node(dataset.dataset_id, "DATASET", "ENTITY"), modeller, "wasAttributedTo")
    for dataset in [*record.inputs, *record.outputs]:
        dataset_template = Node(dataset.dataset_template_id, "DATASET_TEMPLATE", "ENTITY")
        graph.add_link(template, dataset_template, "hadMember")
        graph.add_link(Node(dataset.dataset_id, "DATASET", "ENTITY"), dataset_template, "wasInfluencedBy")
    graph.add_link(template, model, "hadMember")
    return graph


class DiffActionType(StrEnum):
    ADD_RECORD_ID_TO_NODE = "ADD_RECORD_ID_TO_NODE"
    ADD_NEW_NODE = "ADD_NEW_NODE"
    ADD_RECORD_ID_TO_LINK = "ADD_RECORD_ID_TO_LINK"
    ADD_NEW_LINK = "ADD_NEW_LINK"
    REMOVE_RECORD_ID_FROM_LINK = "REMOVE_RECORD_ID_FROM_LINK"
    REMOVE_LINK = "REMOVE_LINK"
    REMOVE_RECORD_ID_FROM_NODE = "REMOVE_RECORD_ID_FROM_NODE"
    REMOVE_NODE = "REMOVE_NODE"


# Provena's applier order: additions first, then removals, links before nodes on removal.
APPLY_ORDER = list(DiffActionType)


@dataclass(frozen=True)
class DiffAction:
    action_type: DiffActionType
    record_id: str
    node: Node | None = None
    link: Link | None = None
    # The tags the element carried before the action, for the wire form of the action.
    tags: Sequence[str] = ()
    # For links: the stored tags of the source and target nodes, which the wire form carries too.
    source_tags: Sequence[str] = ()
    target_tags: Sequence[str] = ()


def diff_graphs(record_id: str, old: TaggedGraph, new: RecordGraph) -> list[DiffAction]:
    """Provena's diff_graphs (contract 7.3): the actions that make `record_id`'s graph equal `new`.

    `old` holds only the elements already tagged with `record_id`, so an element that exists
    globally through other records but is new to this one yields ADD_NEW_* ("tag it too").
    """
    actions: list[DiffAction] = []

    def link_action(kind: DiffActionType, link: Link, tags: Sequence[str] = ()) -> DiffAction:
        source_tags = old.nodes.get(link.source, (record_id,))
        target_tags = old.nodes.get(link.target, (record_id,))
        return DiffAction(
            kind, record_id, link=link, tags=tags, source_tags=source_tags, target_tags=target_tags
        )

    for node in sorted(new.nodes):
        if node not in old.nodes:
            actions.append(DiffAction(DiffActionType.ADD_NEW_NODE, record_id, node=node))
        elif record_id not in old.nodes[node]:
            actions.append(
                DiffAction(DiffActionType.ADD_RECORD_ID_TO_NODE, record_id, node=node, tags=old.nodes[node])
            )
    new_links = set(new.links.values())
    for link in sorted(new_links):
        if link not in old.links:
            actions.append(link_action(DiffActionType.ADD_NEW_LINK, link))
        elif record_id not in old.links[link]:
            actions.append(link_action(DiffActionType.ADD_RECORD_ID_TO_LINK, link, old.links[link]))
    for link, link_tags in sorted(old.links.items()):
        if link in new_links:
            continue
        kind = (
            DiffActionType.REMOVE_LINK
            if only_tag(link_tags, record_id)
            else DiffActionType.REMOVE_RECORD_ID_FROM_LINK
        )
        actions.append(link_action(kind, link, link_tags))
    for node, node_tags in sorted(old.nodes.items()):
        if node in new.nodes:
            continue
        kind = (
            DiffActionType.REMOVE_NODE
            if only_tag(node_tags, record_id)
            else DiffActionType.REMOVE_RECORD_ID_FROM_NODE
        )
        actions.append(DiffAction(kind, record_id, node=node, tags=node_tags))
    return sort_for_apply(actions)


def sort_for_apply(actions: Iterable[DiffAction]) -> list[DiffAction]:
    rank = {kind: index for index, kind in enumerate(APPLY_ORDER)}
    return sorted(actions, key=lambda action: rank[action.action_type])


def _node_json(node: Node, tags: Sequence[str]) -> dict[str, Any]:
    return {
        "id": node.id,
        "props": {"record_ids": joined_tags(tags)},
        "subtype": node.subtype,
        "category": node.category,
    }


def _link_json(action: DiffAction, link: Link) -> dict[str, Any]:
    return {
        "source": _node_json(link.source, action.source_tags or [action.record_id]),
        "target": _node_json(link.target, action.target_tags or [action.record_id]),
        "relation": link.relation,
        "props": {"record_ids": joined_tags(action.tags or [action.record_id])},
    }


def action_to_wire(action: DiffAction) -> dict[str, Any]:
    """The serialised action as Provena's /model_run/delete returns it (None fields omitted)."""
    wire: dict[str, Any] = {"action_type": action.action_type.value}
    kind = action.action_type
    if action.node is not None:
        if kind is DiffActionType.ADD_NEW_NODE:
            wire["node"] = _node_json(action.node, (action.record_id,))
        else:
            wire["node_id"] = action.node.id
    if action.link is not None:
        wire["link"] = _link_json(action, action.link)
    if kind not in _WITHOUT_RECORD_ID:
        wire["record_id"] = action.record_id
    return wire


_WITHOUT_RECORD_ID = frozenset(
    {
        DiffActionType.ADD_NEW_NODE,
        DiffActionType.REMOVE_NODE,
        DiffActionType.ADD_NEW_LINK,
        DiffActionType.REMOVE_LINK,
    }
)


def _json_text(value: str) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


def _tags_json(tags: Sequence[str]) -> bytes:
    return tags.json if isinstance(tags, Tags) else _json_text(",".join(tags))


def _node_wire_json(pieces: list[bytes], node: Node, tags: Sequence[str]) -> None:
    pieces += (
        b'{"id":',
        _json_text(node.id),
        b',"props":{"record_ids":',
        _tags_json(tags),
        b'},"subtype":',
        _json_text(node.subtype),
        b',"category":',
        _json_text(node.category),
        b"}",
    )


def diff_to_json(actions: Iterable[DiffAction]) -> bytes:
    """`{"diff": [action_to_wire(...), ...]}` as compact UTF-8 JSON, byte for byte, assembled in one join
    from pre-encoded tag lists: a trial delete of a run sharing nodes with thousands of others answers
    ~500 KB, and encoding it afresh for every response was most of the sandbox's CPU when planning bulk
    deletions (14 ms per trial delete on a 4,400-run registry, now ~1.5 ms)."""
    pieces: list[bytes] = [b'{"diff":[']
    for number, action in enumerate(actions):
        kind = action.action_type
        pieces.append(b'{"action_type":"' if number == 0 else b',{"action_type":"')
        pieces.append(kind.value.encode() + b'"')
        if action.node is not None:
            if kind is DiffActionType.ADD_NEW_NODE:
                pieces.append(b',"node":')
                _node_wire_json(pieces, action.node, (action.record_id,))
            else:
                pieces += (b',"node_id":', _json_text(action.node.id))
        if action.link is not None:
            link = action.link
            pieces.append(b',"link":{"source":')
            _node_wire_json(pieces, link.source, action.source_tags or [action.record_id])
            pieces.append(b',"target":')
            _node_wire_json(pieces, link.target, action.target_tags or [action.record_id])
            pieces += (b',"relation":', _json_text(link.relation), b',"props":{"record_ids":')
            pieces += (_tags_json(action.tags or [action.record_id]), b"}}")
        if kind not in _WITHOUT_RECORD_ID:
            pieces += (b',"record_id":', _json_text(action.record_id))
        pieces.append(b"}")
    pieces.append(b"]}")
    return b"".join(pieces)
