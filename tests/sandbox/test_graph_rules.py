"""Pure unit tests of the provenance-graph rules (contract 7.2 and 7.3) in sandbox/graph.py."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from ProvenaInterfaces.ProvenanceModels import ModelRunRecord

from provena_ops.sandbox.graph import (
    APPLY_ORDER,
    DiffAction,
    DiffActionType,
    Link,
    Node,
    RecordGraph,
    TaggedGraph,
    Tags,
    action_to_wire,
    diff_graphs,
    diff_to_json,
    model_run_graph,
    sort_for_apply,
)

RUN = "10378.1/run"
OTHER = "10378.1/other-run"
WORKFLOW = "10378.1/wt"
MODEL = "10378.1/model"
MODELLER = "10378.1/person"
ORGANISATION = "10378.1/org"
STUDY = "10378.1/study"

A = DiffActionType


def make_record(
    *,
    study: str | None = None,
    organisation: str | None = None,
    inputs: list[tuple[str, str]] | None = None,
    outputs: list[tuple[str, str]] | None = None,
) -> ModelRunRecord:
    """A record with (dataset_template_id, dataset_id) pairs as inputs and outputs."""

    def datasets(pairs: list[tuple[str, str]] | None) -> list[dict[str, Any]]:
        return [
            {"dataset_template_id": t, "dataset_id": d, "dataset_type": "DATA_STORE", "resources": None}
            for t, d in pairs or []
        ]

    return ModelRunRecord.model_validate(
        {
            "workflow_template_id": WORKFLOW,
            "inputs": datasets(inputs),
            "outputs": datasets(outputs),
            "display_name": "run",
            "description": "a run",
            "study_id": study,
            "associations": {"modeller_id": MODELLER, "requesting_organisation_id": organisation},
            "start_time": 1,
            "end_time": 2,
        }
    )


def counted_record(s: int, g: int, i: int, o: int, t: int) -> ModelRunRecord:
    """Distinct dataset ids; the datasets share `t` distinct templates round-robin."""
    templates = [f"10378.1/dt{k}" for k in range(t)]
    slots = [templates[k % t] for k in range(i + o)] if t else []
    return make_record(
        study=STUDY if s else None,
        organisation=ORGANISATION if g else None,
        inputs=[(slots[k], f"10378.1/in{k}") for k in range(i)],
        outputs=[(slots[i + k], f"10378.1/out{k}") for k in range(o)],
    )


def pairs(graph: RecordGraph) -> set[tuple[str, str, str]]:
    return {(link.source.id, link.target.id, link.relation) for link in graph.links.values()}


# ---- model_run_graph (7.2) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("s", "g", "i", "o", "t"),
    [(1, 1, 1, 1, 2), (0, 0, 0, 0, 0), (1, 0, 2, 1, 3), (0, 1, 3, 2, 2), (1, 1, 0, 3, 1), (0, 0, 4, 0, 1)],
)
def test_node_and_link_counts_follow_the_formula(s: int, g: int, i: int, o: int, t: int) -> None:
    graph = model_run_graph(RUN, counted_record(s, g, i, o, t), MODEL)
    # run, template, model, modeller + optional study/org + datasets + used dataset templates
    assert len(graph.nodes) == 4 + s + g + i + o + t
    assert len(graph.links) == s + g + 2 * i + 3 * o + t + 4


def test_contract_example_has_ten_nodes_and_thirteen_exact_links() -> None:
    record = make_record(
        study=STUDY,
        organisation=ORGANISATION,
        inputs=[("10378.1/dt-in", "10378.1/ds-in")],
        outputs=[("10378.1/dt-out", "10378.1/ds-out")],
    )
    graph = model_run_graph(RUN, record, MODEL)
    assert len(graph.nodes) == 10
    assert pairs(graph) == {
        (RUN, STUDY, "wasInformedBy"),
        (RUN, "10378.1/ds-in", "used"),
        ("10378.1/ds-out", RUN, "wasGeneratedBy"),
        (RUN, MODEL, "used"),
        (RUN, WORKFLOW, "used"),
        (RUN, MODELLER, "wasAssociatedWith"),
        (RUN, ORGANISATION, "wasAssociatedWith"),
        ("10378.1/ds-out", MODELLER, "wasAttributedTo"),
        (WORKFLOW, "10378.1/dt-in", "hadMember"),
        (WORKFLOW, "10378.1/dt-out", "hadMember"),
        ("10378.1/ds-in", "10378.1/dt-in", "wasInfluencedBy"),
        ("10378.1/ds-out", "10378.1/dt-out", "wasInfluencedBy"),
        (WORKFLOW, MODEL, "hadMember"),
    }
    assert graph.nodes == {
        Node(RUN, "MODEL_RUN", "ACTIVITY"),
        Node(STUDY, "STUDY", "ACTIVITY"),
        Node("10378.1/ds-in", "DATASET", "ENTITY"),
        Node("10378.1/ds-out", "DATASET", "ENTITY"),
        Node(WORKFLOW, "WORKFLOW_TEMPLATE", "ENTITY"),
        Node("10378.1/dt-in", "DATASET_TEMPLATE", "ENTITY"),
        Node("10378.1/dt-out", "DATASET_TEMPLATE", "ENTITY"),
        Node(MODEL, "MODEL", "ENTITY"),
        Node(MODELLER, "PERSON", "AGENT"),
        Node(ORGANISATION, "ORGANISATION", "AGENT"),
    }


def test_template_node_is_a_workflow_template_not_the_registry_subtype() -> None:
    graph = model_run_graph(RUN, counted_record(0, 0, 1, 1, 1), MODEL)
    template_nodes = [node for node in graph.nodes if node.id == WORKFLOW]
    assert template_nodes == [Node(WORKFLOW, "WORKFLOW_TEMPLATE", "ENTITY")]
    assert not any(node.subtype == "MODEL_RUN_WORKFLOW_TEMPLATE" for node in graph.nodes)


def test_model_node_is_the_resolved_software_id() -> None:
    graph = model_run_graph(RUN, counted_record(0, 0, 0, 0, 0), "10378.1/software-x")
    assert Node("10378.1/software-x", "MODEL", "ENTITY") in graph.nodes
    assert (RUN, "10378.1/software-x", "used") in pairs(graph)
    assert (WORKFLOW, "10378.1/software-x", "hadMember") in pairs(graph)
    assert not any(node.id == MODEL for node in graph.nodes)


def test_only_supplied_dataset_templates_become_nodes() -> None:
    graph = model_run_graph(RUN, counted_record(0, 0, 1, 0, 1), MODEL)
    templates = {node.id for node in graph.nodes if node.subtype == "DATASET_TEMPLATE"}
    assert templates == {"10378.1/dt0"}


def test_one_link_per_ordered_pair_when_a_dataset_is_both_input_and_output() -> None:
    record = make_record(inputs=[("10378.1/dt", "10378.1/ds")], outputs=[("10378.1/dt", "10378.1/ds")])
    graph = model_run_graph(RUN, record, MODEL)
    ordered = [(link.source.id, link.target.id) for link in graph.links.values()]
    assert len(ordered) == len(set(ordered))
    assert pairs(graph) == {
        (RUN, "10378.1/ds", "used"),
        ("10378.1/ds", RUN, "wasGeneratedBy"),
        ("10378.1/ds", MODELLER, "wasAttributedTo"),
        ("10378.1/ds", "10378.1/dt", "wasInfluencedBy"),
        (WORKFLOW, "10378.1/dt", "hadMember"),
        (RUN, MODEL, "used"),
        (RUN, WORKFLOW, "used"),
        (RUN, MODELLER, "wasAssociatedWith"),
        (WORKFLOW, MODEL, "hadMember"),
    }


def test_later_addition_overwrites_the_relation_of_the_same_pair() -> None:
    # Study and organisation share an id: wasAssociatedWith (added later) replaces wasInformedBy.
    graph = model_run_graph(RUN, make_record(study="10378.1/x", organisation="10378.1/x"), MODEL)
    to_x = [link for link in graph.links.values() if (link.source.id, link.target.id) == (RUN, "10378.1/x")]
    assert [link.relation for link in to_x] == ["wasAssociatedWith"]


# ---- diff_graphs (7.3) --------------------------------------------------------------------------

N_KEEP = Node("10378.1/keep", "DATASET", "ENTITY")
N_NEW = Node("10378.1/new", "DATASET", "ENTITY")
N_UNTAGGED = Node("10378.1/untagged", "PERSON", "AGENT")
N_MINE = Node("10378.1/mine", "STUDY", "ACTIVITY")
N_SHARED = Node("10378.1/shared", "STUDY", "ACTIVITY")
N_RUN = Node(RUN, "MODEL_RUN", "ACTIVITY")


def tagged(
    nodes: Mapping[Node, Sequence[str]], links: Mapping[Link, Sequence[str]] | None = None
) -> TaggedGraph:
    return TaggedGraph(nodes=dict(nodes), links=dict(links or {}))


def fresh(nodes: set[Node], links: list[Link] | None = None) -> RecordGraph:
    graph = RecordGraph(nodes=set(nodes))
    for link in links or []:
        graph.add_link(link.source, link.target, link.relation)
    return graph


def kinds(actions: list[DiffAction]) -> set[tuple[DiffActionType, str]]:
    out: set[tuple[DiffActionType, str]] = set()
    for action in actions:
        if action.node is not None:
            out.add((action.action_type, action.node.id))
        if action.link is not None:
            out.add((action.action_type, f"{action.link.source.id}->{action.link.target.id}"))
    return out


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param({}, {N_NEW}, {(A.ADD_NEW_NODE, N_NEW.id)}, id="new-only"),
        pytest.param({N_MINE: [RUN]}, set(), {(A.REMOVE_NODE, N_MINE.id)}, id="old-only-this-record"),
        pytest.param(
            {N_SHARED: [OTHER, RUN]},
            set(),
            {(A.REMOVE_RECORD_ID_FROM_NODE, N_SHARED.id)},
            id="old-only-shared",
        ),
        pytest.param(
            {N_UNTAGGED: [OTHER]},
            {N_UNTAGGED},
            {(A.ADD_RECORD_ID_TO_NODE, N_UNTAGGED.id)},
            id="both-untagged",
        ),
        pytest.param({N_KEEP: [RUN, OTHER]}, {N_KEEP}, set(), id="both-tagged"),
    ],
)
def test_node_situations(old: dict[Node, list[str]], new: set[Node], expected: set[Any]) -> None:
    assert kinds(diff_graphs(RUN, tagged(old), fresh(new))) == expected


LINK_KEEP = Link(N_RUN, N_KEEP, "used")
LINK_NEW = Link(N_RUN, N_NEW, "used")
LINK_UNTAGGED = Link(N_RUN, N_UNTAGGED, "wasAssociatedWith")
LINK_MINE = Link(N_RUN, N_MINE, "wasInformedBy")
LINK_SHARED = Link(N_RUN, N_SHARED, "wasInformedBy")


def arrow(link: Link) -> str:
    return f"{link.source.id}->{link.target.id}"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param({}, [LINK_NEW], {(A.ADD_NEW_LINK, arrow(LINK_NEW))}, id="new-only"),
        pytest.param({LINK_MINE: [RUN]}, [], {(A.REMOVE_LINK, arrow(LINK_MINE))}, id="old-only-this-record"),
        pytest.param(
            {LINK_SHARED: [RUN, OTHER]},
            [],
            {(A.REMOVE_RECORD_ID_FROM_LINK, arrow(LINK_SHARED))},
            id="old-only-shared",
        ),
        pytest.param(
            {LINK_UNTAGGED: [OTHER]},
            [LINK_UNTAGGED],
            {(A.ADD_RECORD_ID_TO_LINK, arrow(LINK_UNTAGGED))},
            id="both-untagged",
        ),
        pytest.param({LINK_KEEP: [RUN]}, [LINK_KEEP], set(), id="both-tagged"),
    ],
)
def test_link_situations(old: dict[Link, list[str]], new: list[Link], expected: set[Any]) -> None:
    # The link endpoints are present and tagged on both sides, so only link actions remain.
    endpoints = {node for link in [*old, *new] for node in (link.source, link.target)}
    old_graph = tagged({node: [RUN] for node in endpoints}, old)
    new_graph = fresh(endpoints, new)
    assert kinds(diff_graphs(RUN, old_graph, new_graph)) == expected


def test_node_identity_includes_subtype_and_category() -> None:
    as_study = Node("10378.1/x", "STUDY", "ACTIVITY")
    as_dataset = Node("10378.1/x", "DATASET", "ENTITY")
    actions = diff_graphs(RUN, tagged({as_study: [RUN]}), fresh({as_dataset}))
    assert [(a.action_type, a.node) for a in actions] == [
        (A.ADD_NEW_NODE, as_dataset),
        (A.REMOVE_NODE, as_study),
    ]


def test_every_action_carries_the_record_id() -> None:
    old = tagged({N_MINE: [RUN], N_SHARED: [OTHER, RUN]}, {LINK_MINE: [RUN]})
    actions = diff_graphs(RUN, old, fresh({N_NEW, N_UNTAGGED}))
    assert actions
    assert {action.record_id for action in actions} == {RUN}


def test_change_of_study_matches_the_contract_example() -> None:
    # M: S1 -> S2 where S1 is shared with another run.
    s1 = Node("10378.1/s1", "STUDY", "ACTIVITY")
    s2 = Node("10378.1/s2", "STUDY", "ACTIVITY")
    old = tagged({N_RUN: [RUN], s1: [OTHER, RUN]}, {Link(N_RUN, s1, "wasInformedBy"): [RUN]})
    new = fresh({N_RUN}, [Link(N_RUN, s2, "wasInformedBy")])
    assert kinds(diff_graphs(RUN, old, new)) == {
        (A.ADD_NEW_NODE, s2.id),
        (A.ADD_NEW_LINK, f"{RUN}->{s2.id}"),
        (A.REMOVE_LINK, f"{RUN}->{s1.id}"),
        (A.REMOVE_RECORD_ID_FROM_NODE, s1.id),
    }


def test_delete_diff_against_empty_graph_only_removes() -> None:
    old = tagged(
        {N_RUN: [RUN], N_SHARED: [RUN, OTHER], N_MINE: [RUN]},
        {LINK_SHARED: [RUN], LINK_MINE: [RUN], Link(N_SHARED, N_MINE, "used"): [OTHER, RUN]},
    )
    assert kinds(diff_graphs(RUN, old, RecordGraph())) == {
        (A.REMOVE_NODE, RUN),
        (A.REMOVE_NODE, N_MINE.id),
        (A.REMOVE_RECORD_ID_FROM_NODE, N_SHARED.id),
        (A.REMOVE_LINK, arrow(LINK_SHARED)),
        (A.REMOVE_LINK, arrow(LINK_MINE)),
        (A.REMOVE_RECORD_ID_FROM_LINK, f"{N_SHARED.id}->{N_MINE.id}"),
    }


def test_identical_graph_gives_no_actions() -> None:
    graph = model_run_graph(RUN, counted_record(1, 1, 2, 2, 2), MODEL)
    old = tagged({node: [RUN] for node in graph.nodes}, {link: [RUN] for link in graph.links.values()})
    assert diff_graphs(RUN, old, graph) == []


# ---- apply order --------------------------------------------------------------------------------

CONTRACT_ORDER = [
    "ADD_RECORD_ID_TO_NODE",
    "ADD_NEW_NODE",
    "ADD_RECORD_ID_TO_LINK",
    "ADD_NEW_LINK",
    "REMOVE_RECORD_ID_FROM_LINK",
    "REMOVE_LINK",
    "REMOVE_RECORD_ID_FROM_NODE",
    "REMOVE_NODE",
]


def test_apply_order_is_the_contract_order() -> None:
    assert [kind.value for kind in APPLY_ORDER] == CONTRACT_ORDER


def test_sort_for_apply_orders_a_shuffled_list() -> None:
    actions = [DiffAction(DiffActionType(kind), RUN, node=N_KEEP) for kind in CONTRACT_ORDER * 2]
    random.Random(3).shuffle(actions)
    assert [a.action_type.value for a in sort_for_apply(actions)] == [
        k for k in CONTRACT_ORDER for _ in (0, 1)
    ]


def test_diff_result_comes_in_apply_order() -> None:
    old = tagged(
        {N_MINE: [RUN], N_SHARED: [RUN, OTHER], N_UNTAGGED: [OTHER], N_RUN: [RUN]},
        {LINK_MINE: [RUN], LINK_SHARED: [RUN, OTHER], LINK_UNTAGGED: [OTHER]},
    )
    new = fresh({N_RUN, N_UNTAGGED, N_NEW}, [LINK_UNTAGGED, LINK_NEW])
    produced = [action.action_type.value for action in diff_graphs(RUN, old, new)]
    assert set(produced) == set(CONTRACT_ORDER)
    assert produced == sorted(produced, key=CONTRACT_ORDER.index)


# ---- wire form of removals (6.3) ----------------------------------------------------------------


def test_wire_form_of_node_removals() -> None:
    remove = DiffAction(A.REMOVE_NODE, RUN, node=N_MINE, tags=(RUN,))
    drop = DiffAction(A.REMOVE_RECORD_ID_FROM_NODE, RUN, node=N_SHARED, tags=(OTHER, RUN))
    assert action_to_wire(remove) == {"action_type": "REMOVE_NODE", "node_id": N_MINE.id}
    assert action_to_wire(drop) == {
        "action_type": "REMOVE_RECORD_ID_FROM_NODE",
        "node_id": N_SHARED.id,
        "record_id": RUN,
    }


def test_wire_form_of_link_removals() -> None:
    remove = action_to_wire(DiffAction(A.REMOVE_LINK, RUN, link=LINK_MINE, tags=(RUN,)))
    drop = action_to_wire(DiffAction(A.REMOVE_RECORD_ID_FROM_LINK, RUN, link=LINK_SHARED, tags=(RUN, OTHER)))
    assert set(remove) == {"action_type", "link"}
    assert set(drop) == {"action_type", "link", "record_id"}
    assert drop["record_id"] == RUN
    for wire, link in ((remove, LINK_MINE), (drop, LINK_SHARED)):
        body = wire["link"]
        assert set(body) == {"source", "target", "relation", "props"}
        assert body["relation"] == link.relation
        for end, node in (("source", link.source), ("target", link.target)):
            assert set(body[end]) == {"id", "props", "subtype", "category"}
            assert (body[end]["id"], body[end]["subtype"], body[end]["category"]) == (
                node.id,
                node.subtype,
                node.category,
            )
    assert remove["link"]["props"] == {"record_ids": RUN}
    assert set(drop["link"]["props"]["record_ids"].split(",")) == {RUN, OTHER}


def test_the_wire_json_is_byte_for_byte_the_dict_rendering() -> None:
    """Trial deletes answer from pre-encoded fragments; the bytes must equal Provena's JSON rendering."""
    shared = Tags(f"{OTHER},{RUN},10378.1/ünïcode", 3)
    old = tagged(
        {N_RUN: [RUN], N_KEEP: [RUN], N_MINE: [RUN], N_SHARED: shared, N_UNTAGGED: [OTHER]},
        {LINK_MINE: [RUN], LINK_SHARED: shared, LINK_UNTAGGED: [OTHER], LINK_KEEP: Tags(RUN, 1)},
    )
    for new in (
        RecordGraph(),
        fresh({N_RUN, N_UNTAGGED, N_NEW, N_KEEP}, [LINK_UNTAGGED, LINK_NEW, LINK_KEEP]),
    ):
        actions = diff_graphs(RUN, old, new)
        expected = json.dumps(
            {"diff": [action_to_wire(action) for action in actions]},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        assert diff_to_json(actions) == expected.encode()
    assert diff_to_json([]) == b'{"diff":[]}'


@pytest.mark.parametrize(
    ("joined", "record", "inside"),
    [
        ("a,b,c", "a", True),
        ("a,b,c", "b", True),
        ("a,b,c", "c", True),
        ("a", "a", True),
        ("ab,c", "a", False),
        ("a,bc", "c", False),
        ("a,b,c", "a,b", False),
        ("", "a", False),
    ],
)
def test_joined_tags_answer_membership_like_a_list(joined: str, record: str, inside: bool) -> None:
    tags = Tags(joined, len(joined.split(",")) if joined else 0)
    assert (record in tags) is inside
    assert list(tags) == ([] if not joined else joined.split(","))
