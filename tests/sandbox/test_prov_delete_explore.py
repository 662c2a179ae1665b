"""Graph delete, explore, link_to_study and relodge over HTTP (contract 6.2, 6.3, 6.5, 6.6, 7)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from ProvenaInterfaces import ProvenanceAPI, RegistryAPI

from provena_ops.sandbox.seed import SeedSummary
from tests.conftest import Api
from tests.sandbox.seeded import run_id, studies

DELETE_FETCH_ERROR = (
    "Exception: could not delete model run as error occurred when fetching the record from the registry"
)
UNKNOWN_ID = "10378.1/9999999"


# ---- helpers ------------------------------------------------------------------------------------


def fetch(api: Api, item_id: str) -> dict[str, Any]:
    """Any registry item through the general fetch (raw stored dict)."""
    response = api.http.get(
        f"{api.registry}/registry/general/fetch", params={"id": item_id}, headers=api.auth()
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"]["success"] is True, body
    item: dict[str, Any] = body["item"]
    item.pop("universal_partition_key", None)
    return item


def fetch_run(api: Api, item_id: str) -> dict[str, Any]:
    response = api.http.get(
        f"{api.registry}/registry/activity/model_run/fetch", params={"id": item_id}, headers=api.auth()
    )
    assert response.status_code == 200
    item: dict[str, Any] = response.json()["item"]
    assert item is not None
    return item


def all_runs(api: Api) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    key: dict[str, Any] | None = None
    for _ in range(50):
        response = api.http.post(
            f"{api.registry}/registry/activity/model_run/list",
            json={"page_size": 25, "pagination_key": key},
            headers=api.auth(),
        )
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["items"])
        key = body["pagination_key"]
        if key is None:
            return items
    raise AssertionError("model run listing did not end")


def explore(
    api: Api, direction: str, start: str, depth: int | None = None, user: str = "admin"
) -> httpx.Response:
    params: dict[str, Any] = {"starting_id": start}
    if depth is not None:
        params["depth"] = depth
    return api.http.get(f"{api.prov}/explore/{direction}", params=params, headers=api.auth(user))


def lineage(api: Api, direction: str, start: str, depth: int | None = 1) -> dict[str, Any]:
    response = explore(api, direction, start, depth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def node_ids(body: dict[str, Any]) -> set[str]:
    return {node["id"] for node in body["graph"]["nodes"]}


def delete(api: Api, record_id: str, trial: bool, user: str = "admin") -> httpx.Response:
    return api.http.post(
        f"{api.prov}/model_run/delete",
        json={"record_id": record_id, "trial_mode": trial},
        headers=api.auth(user),
    )


def diff_of(api: Api, record_id: str, trial: bool) -> list[dict[str, Any]]:
    response = delete(api, record_id, trial)
    assert response.status_code == 200, response.text
    diff: list[dict[str, Any]] = ProvenanceAPI.PostDeleteGraphResponse.model_validate(response.json()).diff
    return diff


def canonical(diff: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(entry, sort_keys=True) for entry in diff)


def wait_job(api: Api, session_id: str, user: str = "admin", timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = api.http.get(
            f"{api.jobs}/jobs/user/fetch", params={"session_id": session_id}, headers=api.auth(user)
        )
        assert response.status_code in (200, 400), response.text
        if response.status_code == 200 and response.json()["job"]["status"] in ("SUCCEEDED", "FAILED"):
            job: dict[str, Any] = response.json()["job"]
            return job
        assert time.monotonic() < deadline, f"job {session_id} not final after {timeout} s"
        time.sleep(0.02)


def update(api: Api, model_run_id: str, record: dict[str, Any], reason: str) -> dict[str, Any]:
    response = api.http.post(
        f"{api.prov}/model_run/update",
        json={"model_run_id": model_run_id, "reason": reason, "record": record},
        headers=api.auth(),
    )
    assert response.status_code == 200, response.text
    return wait_job(api, response.json()["session_id"])


def set_faults(api: Api, **faults: Any) -> None:
    response = api.http.put(
        f"{api.running.base_url.rstrip('/')}/sandbox/faults", json=faults, headers=api.auth("admin")
    )
    assert response.status_code == 200, response.text


def relodge(api: Api, item: dict[str, Any], validate: bool = True, user: str = "admin") -> httpx.Response:
    return api.http.post(
        f"{api.prov}/admin/store_record",
        params={"validate_record": str(validate).lower()},
        json=item,
        headers=api.auth(user),
    )


def graph_size(api: Api) -> tuple[int, int]:
    body = api.http.get(f"{api.running.base_url.rstrip('/')}/sandbox/status").json()
    return int(body["graph_nodes"]), int(body["graph_links"])


def expected_upstream(api: Api, run: str, record: dict[str, Any]) -> dict[str, str]:
    """Node id -> subtype of a model run's upstream depth-1 lineage (contract 6.5), itself included."""
    template = fetch(api, record["workflow_template_id"])
    expected = {
        run: "MODEL_RUN",
        record["workflow_template_id"]: "WORKFLOW_TEMPLATE",
        template["software_id"]: "MODEL",
        record["associations"]["modeller_id"]: "PERSON",
    }
    if record["study_id"]:
        expected[record["study_id"]] = "STUDY"
    if record["associations"]["requesting_organisation_id"]:
        expected[record["associations"]["requesting_organisation_id"]] = "ORGANISATION"
    for dataset in record["inputs"]:
        expected[dataset["dataset_id"]] = "DATASET"
    return expected


def graph_counts(record: dict[str, Any]) -> tuple[int, int]:
    """Nodes and links of a record's graph (contract 7.2) for distinct dataset ids."""
    s = 1 if record["study_id"] else 0
    g = 1 if record["associations"]["requesting_organisation_id"] else 0
    i, o = len(record["inputs"]), len(record["outputs"])
    t = len({d["dataset_template_id"] for d in record["inputs"] + record["outputs"]})
    return 4 + s + g + i + o + t, s + g + 2 * i + 3 * o + t + 4


# ---- /model_run/delete --------------------------------------------------------------------------


def test_trial_delete_returns_the_diff_and_changes_nothing(api: Api, demo: SeedSummary) -> None:
    run = run_id(demo, 0)
    study = studies(demo)[0]
    before = [lineage(api, "upstream", run, 10), lineage(api, "downstream", study, 10)]
    size = graph_size(api)
    first = diff_of(api, run, trial=True)
    assert first
    assert [lineage(api, "upstream", run, 10), lineage(api, "downstream", study, 10)] == before
    assert graph_size(api) == size
    assert canonical(diff_of(api, run, trial=True)) == canonical(first)


def test_trial_mode_defaults_to_false(api: Api, demo: SeedSummary) -> None:
    run = run_id(demo, 0)
    response = api.http.post(f"{api.prov}/model_run/delete", json={"record_id": run}, headers=api.auth())
    assert response.status_code == 200
    assert response.json()["diff"]
    assert node_ids(lineage(api, "upstream", run)) == set()


def test_delete_diff_removes_every_element_of_the_run_graph(api: Api, demo: SeedSummary) -> None:
    run = run_id(demo, 1)  # study, organisation, one input, one output
    record = fetch_run(api, run)["record"]
    nodes, links = graph_counts(record)
    diff = diff_of(api, run, trial=True)
    node_actions = [e for e in diff if "node_id" in e]
    link_actions = [e for e in diff if "link" in e]
    assert len(node_actions) == nodes
    assert len(link_actions) == links
    assert {e["action_type"] for e in diff} <= {
        "REMOVE_NODE",
        "REMOVE_RECORD_ID_FROM_NODE",
        "REMOVE_LINK",
        "REMOVE_RECORD_ID_FROM_LINK",
    }
    by_node = {e["node_id"]: e["action_type"] for e in node_actions}
    assert by_node[run] == "REMOVE_NODE"  # only this run tags its own node
    assert by_node[record["study_id"]] == "REMOVE_RECORD_ID_FROM_NODE"  # other runs share the study
    assert by_node[record["workflow_template_id"]] == "REMOVE_RECORD_ID_FROM_NODE"
    by_link = {(e["link"]["source"]["id"], e["link"]["target"]["id"]): e for e in link_actions}
    assert by_link[(run, record["study_id"])]["action_type"] == "REMOVE_LINK"
    assert by_link[(run, record["study_id"])]["link"]["relation"] == "wasInformedBy"
    model = fetch(api, record["workflow_template_id"])["software_id"]
    assert by_link[(record["workflow_template_id"], model)]["action_type"] == "REMOVE_RECORD_ID_FROM_LINK"


def test_diff_entries_have_the_contract_shape(api: Api, demo: SeedSummary) -> None:
    run = run_id(demo, 1)
    diff = diff_of(api, run, trial=True)
    seen = set()
    for entry in diff:
        kind = entry["action_type"]
        seen.add(kind)
        if kind == "REMOVE_NODE":
            assert entry == {"action_type": kind, "node_id": entry["node_id"]}
        elif kind == "REMOVE_RECORD_ID_FROM_NODE":
            assert set(entry) == {"action_type", "node_id", "record_id"}
            assert entry["record_id"] == run
        else:
            expected_keys = {"action_type", "link"} | (
                {"record_id"} if kind == "REMOVE_RECORD_ID_FROM_LINK" else set()
            )
            assert set(entry) == expected_keys, entry
            link = entry["link"]
            assert set(link) == {"source", "target", "relation", "props"}
            assert isinstance(link["relation"], str)
            assert run in link["props"]["record_ids"].split(",")
            for end in ("source", "target"):
                assert set(link[end]) == {"id", "props", "subtype", "category"}
                assert set(link[end]["props"]) == {"record_ids"}
            if kind == "REMOVE_LINK":
                assert link["props"] == {"record_ids": run}
            else:
                assert entry["record_id"] == run
                assert len(link["props"]["record_ids"].split(",")) > 1
    assert seen == {"REMOVE_NODE", "REMOVE_RECORD_ID_FROM_NODE", "REMOVE_LINK", "REMOVE_RECORD_ID_FROM_LINK"}


def test_link_endpoints_carry_the_stored_record_ids_of_the_node(api: Api, demo: SeedSummary) -> None:
    # Contract 6.3 example: the study endpoint of a REMOVE_LINK lists every run tagging the study node.
    run = run_id(demo, 0)
    study = studies(demo)[0]
    linked = {n["id"] for n in lineage(api, "downstream", study)["graph"]["nodes"] if n["id"] != study}
    assert len(linked) > 1
    diff = diff_of(api, run, trial=True)
    [entry] = [e for e in diff if "link" in e and e["link"]["relation"] == "wasInformedBy"]
    assert entry["link"]["target"]["id"] == study
    assert entry["link"]["target"]["subtype"] == "STUDY"
    assert entry["link"]["target"]["category"] == "ACTIVITY"
    assert set(entry["link"]["target"]["props"]["record_ids"].split(",")) == linked
    assert entry["link"]["source"]["props"] == {"record_ids": run}


def test_apply_removes_the_run_from_the_graph_only(api: Api, demo: SeedSummary) -> None:
    run = run_id(demo, 0)
    study = studies(demo)[0]
    trial = diff_of(api, run, trial=True)
    applied = diff_of(api, run, trial=False)
    assert canonical(applied) == canonical(trial)
    for direction in ("upstream", "downstream"):
        body = lineage(api, direction, run, 10)
        assert body["graph"]["nodes"] == []
        assert body["record_count"] == 0
    assert run not in node_ids(lineage(api, "downstream", study))
    assert study in node_ids(lineage(api, "downstream", study))  # other runs keep the study
    assert fetch_run(api, run)["id"] == run  # registry untouched
    assert diff_of(api, run, trial=True) == []


@pytest.mark.parametrize("which", ["unknown", "study", "person"])
def test_delete_of_a_non_model_run_is_a_400(api: Api, demo: SeedSummary, which: str) -> None:
    target = {
        "unknown": UNKNOWN_ID,
        "study": studies(demo)[0],
        "person": fetch_run(api, run_id(demo, 0))["record"]["associations"]["modeller_id"],
    }[which]
    response = delete(api, target, trial=True)
    assert response.status_code == 400
    assert response.json()["detail"].startswith(DELETE_FETCH_ERROR)


def test_delete_of_a_never_lodged_run_is_an_empty_diff(api: Api, demo: SeedSummary) -> None:
    run = demo.notable["model run without graph (never lodged)"]
    for trial in (True, False):
        response = delete(api, run, trial=trial)
        assert response.status_code == 200
        assert response.json() == {"diff": []}


def test_delete_needs_the_admin_role(api: Api, demo: SeedSummary) -> None:
    response = delete(api, run_id(demo, 0), trial=True, user="alice")
    assert response.status_code == 401
    assert node_ids(lineage(api, "upstream", run_id(demo, 0)))


def linked_runs(api: Api, study: str) -> list[str]:
    body = lineage(api, "downstream", study)
    return sorted(n["id"] for n in body["graph"]["nodes"] if n["item_subtype"] == "MODEL_RUN")


def test_study_node_disappears_with_its_last_deleted_run(api: Api, demo: SeedSummary) -> None:
    study = studies(demo)[3]
    runs = linked_runs(api, study)
    registry = sorted(item["id"] for item in all_runs(api) if item["record"]["study_id"] == study)
    assert runs == registry
    assert len(runs) > 2
    for run in runs[:-1]:
        trial = diff_of(api, run, trial=True)
        assert {"action_type": "REMOVE_RECORD_ID_FROM_NODE", "node_id": study, "record_id": run} in trial
        diff_of(api, run, trial=False)
        assert study in node_ids(lineage(api, "downstream", study))
    last = diff_of(api, runs[-1], trial=True)
    assert {"action_type": "REMOVE_NODE", "node_id": study} in last
    diff_of(api, runs[-1], trial=False)
    for direction in ("downstream", "upstream"):
        body = lineage(api, direction, study, 10)
        assert body["graph"]["nodes"] == []
        assert body["graph"]["links"] == []
        assert body["record_count"] == 0


def test_study_node_disappears_when_its_last_run_is_unlinked(api: Api, demo: SeedSummary) -> None:
    study = studies(demo)[3]
    runs = linked_runs(api, study)
    for index, run in enumerate(runs):
        record = fetch_run(api, run)["record"]
        del record["study_id"]
        assert update(api, run, record, "Unlink")["status"] == "SUCCEEDED"
        remaining = node_ids(lineage(api, "downstream", study))
        if index < len(runs) - 1:
            assert study in remaining
            assert run not in remaining
    body = lineage(api, "downstream", study, 10)
    assert body["graph"]["nodes"] == []
    assert body["record_count"] == 0


def test_registry_deletion_of_a_study_leaves_the_graph(api: Api, demo: SeedSummary) -> None:
    study = studies(demo)[0]
    run = run_id(demo, 0)
    size = graph_size(api)
    upstream = lineage(api, "upstream", run, 3)
    response = api.http.delete(
        f"{api.registry}/registry/activity/study/delete", params={"id": study}, headers=api.auth()
    )
    assert response.status_code == 200
    assert response.json()["status"]["success"] is True
    assert graph_size(api) == size
    assert lineage(api, "upstream", run, 3) == upstream
    assert study in node_ids(upstream)
    for direction in ("upstream", "downstream"):
        assert explore(api, direction, study, 1).status_code == 500


# ---- explore ------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [None, 0])
def test_depth_defaults_to_two(api: Api, demo: SeedSummary, depth: int | None) -> None:
    study = studies(demo)[1]
    body = lineage(api, "downstream", study, depth)
    assert body["status"]["details"] == "Made downstream query (with depth 2) to neo4j backend."
    assert body["graph"] == lineage(api, "downstream", study, 2)["graph"]
    assert node_ids(body) != node_ids(lineage(api, "downstream", study, 1))


def test_depth_above_ten_is_refused(api: Api, demo: SeedSummary) -> None:
    run = run_id(demo, 0)
    for direction in ("upstream", "downstream"):
        response = explore(api, direction, run, 11)
        assert response.status_code == 400
        assert response.json() == {"detail": "Depth provided is in excess of depth maximum: 10."}
        assert explore(api, direction, run, 10).status_code == 200


def test_explore_of_an_unknown_id_is_a_500(api: Api) -> None:
    for direction in ("upstream", "downstream"):
        assert explore(api, direction, UNKNOWN_ID, 1).status_code == 500


def test_registry_item_without_graph_presence_gives_an_empty_graph(api: Api, demo: SeedSummary) -> None:
    run = demo.notable["model run without graph (never lodged)"]
    for direction in ("upstream", "downstream"):
        body = lineage(api, direction, run, 3)
        assert body["status"]["success"] is True
        assert body["record_count"] == 0
        assert body["graph"] == {"directed": True, "multigraph": False, "graph": {}, "nodes": [], "links": []}


def test_start_node_appears_only_with_paths(api: Api, demo: SeedSummary) -> None:
    person = fetch_run(api, run_id(demo, 0))["record"]["associations"]["modeller_id"]
    up = lineage(api, "upstream", person, 2)  # agents have no outgoing relationships
    assert up["graph"]["nodes"] == []
    assert up["record_count"] == 0
    down = lineage(api, "downstream", person, 1)
    assert person in node_ids(down)
    assert down["record_count"] == len(down["graph"]["nodes"]) > 1


@pytest.mark.parametrize("direction", ["upstream", "downstream"])
def test_lineage_is_node_link_json(api: Api, demo: SeedSummary, direction: str) -> None:
    body = lineage(api, direction, run_id(demo, 1), 3)
    assert set(body) == {"status", "record_count", "graph"}
    graph = body["graph"]
    assert set(graph) == {"directed", "multigraph", "graph", "nodes", "links"}
    assert (graph["directed"], graph["multigraph"], graph["graph"]) == (True, False, {})
    assert body["record_count"] == len(graph["nodes"])
    ids = [node["id"] for node in graph["nodes"]]
    assert len(ids) == len(set(ids))
    pairs = [(link["source"], link["target"]) for link in graph["links"]]
    assert len(pairs) == len(set(pairs))
    for link in graph["links"]:
        assert set(link) == {"type", "source", "target"}
        assert {link["source"], link["target"]} <= set(ids)
    parsed = ProvenanceAPI.LineageResponse.model_validate(body)
    assert parsed.status.success is True
    assert parsed.graph is not None
    for node in parsed.graph["nodes"]:
        RegistryAPI.Node.model_validate(node)


def test_status_details_name_the_direction_and_depth(api: Api, demo: SeedSummary) -> None:
    run = run_id(demo, 1)
    up = lineage(api, "upstream", run, 3)["status"]
    down = lineage(api, "downstream", run, 3)["status"]
    assert up == {"success": True, "details": "Made lineage query (with depth 3) to neo4j backend."}
    assert down == {"success": True, "details": "Made downstream query (with depth 3) to neo4j backend."}


def test_study_downstream_depth_one_is_its_model_runs(api: Api, demo: SeedSummary) -> None:
    study = studies(demo)[1]
    body = lineage(api, "downstream", study, 1)
    registry = {item["id"] for item in all_runs(api) if item["record"]["study_id"] == study}
    assert registry
    subtypes = {node["id"]: node["item_subtype"] for node in body["graph"]["nodes"]}
    assert subtypes == {study: "STUDY", **{run: "MODEL_RUN" for run in registry}}
    assert sorted((link["source"], link["type"]) for link in body["graph"]["links"]) == sorted(
        (run, "wasInformedBy") for run in registry
    )
    assert all(link["target"] == study for link in body["graph"]["links"])
    assert node_ids(lineage(api, "upstream", study, 1)) == set()


def test_study_with_a_non_model_run_connection(api: Api, demo: SeedSummary) -> None:
    study = demo.notable["study with a non-model-run connection"]
    body = lineage(api, "downstream", study, 1)
    others = [node for node in body["graph"]["nodes"] if node["id"] != study]
    assert [node["item_subtype"] for node in others] == ["CREATE"]
    assert fetch(api, others[0]["id"])["item_subtype"] == "CREATE"


def test_model_run_upstream_depth_one(api: Api, demo: SeedSummary) -> None:
    run = run_id(demo, 1)
    record = fetch_run(api, run)["record"]
    assert record["study_id"] and record["associations"]["requesting_organisation_id"]
    body = lineage(api, "upstream", run, 1)
    got = {node["id"]: node["item_subtype"] for node in body["graph"]["nodes"]}
    assert got == expected_upstream(api, run, record)
    assert all(link["source"] == run for link in body["graph"]["links"])
    assert len(body["graph"]["links"]) == len(got) - 1


def test_model_run_downstream_depth_one_is_its_outputs(api: Api, demo: SeedSummary) -> None:
    run = run_id(demo, 2)  # two outputs
    record = fetch_run(api, run)["record"]
    body = lineage(api, "downstream", run, 1)
    outputs = {d["dataset_id"] for d in record["outputs"]}
    assert len(outputs) == 2
    assert node_ids(body) == outputs | {run}
    assert {(link["source"], link["target"], link["type"]) for link in body["graph"]["links"]} == {
        (output, run, "wasGeneratedBy") for output in outputs
    }


def test_one_edge_per_ordered_pair_and_nodes_deduplicated(api: Api, demo: SeedSummary) -> None:
    # An unvalidated relodge naming the study as organisation adds a second run->study relationship
    # and a second node with the study's id; explore must still show one edge and one node.
    run = run_id(demo, 0)
    item = fetch_run(api, run)
    study = item["record"]["study_id"]
    item["record"]["associations"]["requesting_organisation_id"] = study
    nodes, links = graph_size(api)
    assert relodge(api, item, validate=False).status_code == 200
    assert graph_size(api) == (nodes + 1, links + 1)
    body = lineage(api, "upstream", run, 2)
    ids = [node["id"] for node in body["graph"]["nodes"]]
    assert ids.count(study) == 1
    assert [(e["source"], e["target"]) for e in body["graph"]["links"]].count((run, study)) == 1
    assert body["record_count"] == len(ids)


def test_explore_needs_the_read_role(api: Api, demo: SeedSummary) -> None:
    run = run_id(demo, 0)
    assert explore(api, "upstream", run, 1, user="reader").status_code == 200
    assert api.http.get(f"{api.prov}/explore/upstream", params={"starting_id": run}).status_code == 401
    no_roles = api.http.get(
        f"{api.prov}/explore/upstream", params={"starting_id": run}, headers=api.auth("reader", roles=[])
    )
    assert no_roles.status_code == 401


# ---- link_to_study ------------------------------------------------------------------------------


def link(api: Api, model_run_id: str, study_id: str, user: str = "admin") -> httpx.Response:
    return api.http.post(
        f"{api.prov}/model_run/edit/link_to_study",
        params={"model_run_id": model_run_id, "study_id": study_id},
        headers=api.auth(user),
    )


def test_link_to_study_rejects_an_already_linked_run(api: Api, demo: SeedSummary) -> None:
    run = run_id(demo, 0)
    before = fetch_run(api, run)
    response = link(api, run, studies(demo)[1])
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Cannot link to another study")
    assert fetch_run(api, run) == before


def test_link_to_study_links_an_unlinked_run(api: Api, demo: SeedSummary) -> None:
    run = demo.notable["model run without study"]
    study = studies(demo)[2]
    before = fetch_run(api, run)
    assert before["record"]["study_id"] is None
    assert study not in node_ids(lineage(api, "upstream", run))
    set_faults(api, job_delay_ms=200)
    response = link(api, run, study)
    assert response.status_code == 200, response.text
    parsed = ProvenanceAPI.AddStudyLinkResponse.model_validate(response.json())
    assert parsed.status.success is True
    assert (parsed.model_run_id, parsed.study_id) == (run, study)
    # the registry is updated synchronously, before the job has run
    after = fetch_run(api, run)
    assert after["record"] == dict(before["record"], study_id=study)
    assert after["history"][0]["reason"] == "Linking model run to study."
    assert len(after["history"]) == len(before["history"]) + 1
    job = wait_job(api, parsed.session_id)
    assert (job["job_type"], job["job_sub_type"], job["status"]) == (
        "PROV_LODGE",
        "MODEL_RUN_LODGE_ONLY",
        "SUCCEEDED",
    )
    assert study in node_ids(lineage(api, "upstream", run))
    assert run in node_ids(lineage(api, "downstream", study))
    assert link(api, run, studies(demo)[0]).status_code == 400  # now linked


@pytest.mark.parametrize("which", ["unknown study", "run as study", "study as run"])
def test_link_to_study_rejects_invalid_ids(api: Api, demo: SeedSummary, which: str) -> None:
    run = demo.notable["model run without study"]
    study = studies(demo)[0]
    model_run_id, study_id = {
        "unknown study": (run, UNKNOWN_ID),
        "run as study": (run, run_id(demo, 0)),
        "study as run": (study, studies(demo)[1]),
    }[which]
    assert link(api, model_run_id, study_id).status_code == 400
    assert fetch_run(api, run)["record"]["study_id"] is None


def test_link_to_study_needs_the_write_role(api: Api, demo: SeedSummary) -> None:
    run = demo.notable["model run without study"]
    assert link(api, run, studies(demo)[0], user="reader").status_code == 401
    assert fetch_run(api, run)["record"]["study_id"] is None


# ---- relodge (/admin/store_record) --------------------------------------------------------------


def test_relodge_is_additive_and_keeps_a_stale_study_link(api: Api, demo: SeedSummary) -> None:
    run = run_id(demo, 0)
    stored = fetch_run(api, run)
    study = stored["record"]["study_id"]
    edited = json.loads(json.dumps(stored))
    edited["record"]["study_id"] = None
    response = relodge(api, edited)
    assert response.status_code == 200
    assert response.json() == {"status": {"success": True, "details": "Successfully re-lodged item."}}
    assert study in node_ids(lineage(api, "upstream", run))
    assert fetch_run(api, run) == stored  # the registry item is not modified
    # the documented fix: an update with the edited record diffs the stale link away
    assert update(api, run, edited["record"], "Drop study")["status"] == "SUCCEEDED"
    assert study not in node_ids(lineage(api, "upstream", run))


def test_relodge_repairs_a_never_lodged_run(api: Api, demo: SeedSummary) -> None:
    run = demo.notable["model run without graph (never lodged)"]
    item = fetch_run(api, run)
    assert lineage(api, "upstream", run)["graph"]["nodes"] == []
    assert relodge(api, item).status_code == 200
    up = lineage(api, "upstream", run)
    assert {node["id"]: node["item_subtype"] for node in up["graph"]["nodes"]} == expected_upstream(
        api, run, item["record"]
    )
    outputs = {d["dataset_id"] for d in item["record"]["outputs"]}
    assert node_ids(lineage(api, "downstream", run)) == outputs | {run}
    size = graph_size(api)
    assert relodge(api, item).status_code == 200
    assert graph_size(api) == size  # idempotent
    nodes, links = graph_counts(item["record"])
    assert len(diff_of(api, run, trial=True)) == nodes + links


def test_relodge_is_admin_only(api: Api, demo: SeedSummary) -> None:
    run = demo.notable["model run without graph (never lodged)"]
    item = fetch_run(api, run)
    assert relodge(api, item, user="alice").status_code == 401
    assert lineage(api, "upstream", run)["graph"]["nodes"] == []


def test_relodge_validates_the_record(api: Api, demo: SeedSummary) -> None:
    run = demo.notable["model run without graph (never lodged)"]
    item = fetch_run(api, run)
    item["record"]["study_id"] = UNKNOWN_ID
    assert relodge(api, item).status_code == 400
    assert lineage(api, "upstream", run)["graph"]["nodes"] == []


def test_relodge_needs_a_resolvable_workflow_template(api: Api, demo: SeedSummary) -> None:
    run = demo.notable["model run without graph (never lodged)"]
    item = fetch_run(api, run)
    item["record"]["workflow_template_id"] = UNKNOWN_ID
    assert relodge(api, item, validate=False).status_code == 400
    assert lineage(api, "upstream", run)["graph"]["nodes"] == []


def test_store_records_stops_at_the_first_failure(api: Api, demo: SeedSummary) -> None:
    never = fetch_run(api, demo.notable["model run without graph (never lodged)"])
    bad = fetch_run(api, run_id(demo, 0))
    bad["record"]["study_id"] = UNKNOWN_ID
    later = fetch_run(api, run_id(demo, 1))
    diff_of(api, later["id"], trial=False)  # unlodge it so a relodge would be visible
    response = api.http.post(
        f"{api.prov}/admin/store_records",
        params={"validate_record": "true"},
        json=[never, bad, later],
        headers=api.auth(),
    )
    assert response.status_code == 400
    assert node_ids(lineage(api, "upstream", never["id"]))  # lodged before the failure
    assert node_ids(lineage(api, "upstream", later["id"])) == set()  # never reached
