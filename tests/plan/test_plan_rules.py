"""The planner's rules, one by one, planned over real HTTP against the seeded sandbox.

Each test puts the sandbox in a state through Provena's own API (prov graph delete, registry admin delete,
admin import, locks, relodge), plans a playbook, and checks what an admin reads in the plan: the actions,
their outcomes, the exact field changes, and the problems and warnings naming the records.

Seed facts used below (see provena_ops.sandbox.seed): studies 1690048-52; model run 1690053+n is linked to
study [1690048, 1690049, 1690050, 1690051][n % 4] unless n % 12 == 11 (no study); 1690052 is connected
only to the CREATE activity 1690113; 1690057 is locked; 1690112 was never lodged; workflow template
1690017 (the "Reef" runs, n % 3 == 0) requires the annotation `scenario`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from provena_ops.api import PlaybookInvalid
from provena_ops.plan.model import Action, Plan
from provena_ops.render.json_format import render_json
from tests.conftest import Api
from tests.plan.conftest import PlanOn, playbook

PREFIX = "10378.1/"
RUN_ROUTE = "/registry/activity/model_run"
STUDY_ROUTE = "/registry/activity/study"

CATCHMENT_002 = "10378.1/1690054"  # linked to 1690049
REEF_004 = "10378.1/1690056"  # linked to 1690051, has user_metadata
LOCKED_RUN = "10378.1/1690057"
REEF_010 = "10378.1/1690062"
SEAGRASS_012 = "10378.1/1690064"  # no study
NEVER_LODGED = "10378.1/1690112"
STUDY_48, STUDY_49, STUDY_50, STUDY_51, STUDY_52 = (f"{PREFIX}{n}" for n in range(1690048, 1690053))
CREATE_ACTIVITY = "10378.1/1690113"
NO_SUCH_STUDY = "10378.1/1699999"


def run_id(number: int) -> str:
    """The seeded model run with this (0-based) number."""
    return f"{PREFIX}{1690053 + number}"


def seeded_runs_of(study_index: int) -> list[str]:
    return [run_id(n) for n in range(60) if n % 12 != 11 and n % 4 == study_index]


RUNS_OF_49 = seeded_runs_of(1)
RUNS_OF_50 = seeded_runs_of(2)
RUNS_OF_51 = seeded_runs_of(3)


# -- reading plans -------------------------------------------------------------------------------------------


def action(plan: Plan, key: str) -> Action:
    found = [a for a in plan.actions if a.key == key]
    assert len(found) == 1, f"no single action {key!r} in {[a.key for a in plan.actions]}"
    return found[0]


def changes(made: Action) -> list[tuple[str, Any, Any]]:
    return [(change.field, change.before, change.after) for change in made.changes]


def updates(plan: Plan) -> dict[str, Action]:
    return {a.record_id: a for a in plan.actions if a.kind in ("update", "relink")}


def messages(plan: Plan) -> list[str]:
    return [problem.message for problem in plan.problems]


def everything_said(plan: Plan) -> str:
    """Every problem, warning, note and per-action text of the plan, for 'is X mentioned at all'."""
    said = [*messages(plan), *plan.warnings, *plan.notes]
    for made in plan.actions:
        said += [made.record_id, *(made.warnings), *(made.side_effects), made.why or ""]
    return "\n".join(said)


# -- putting the sandbox in a state, through Provena's API ---------------------------------------------------


def fetch(api: Api, route: str, item_id: str) -> dict[str, Any]:
    """A typed fetch as admin: the whole answer (item, roles, locked)."""
    response = api.http.get(f"{api.registry}{route}/fetch", params={"id": item_id}, headers=api.auth())
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def explore(api: Api, direction: str, start: str, depth: int = 1) -> list[tuple[str, str]]:
    response = api.http.get(
        f"{api.prov}/explore/{direction}",
        params={"starting_id": start, "depth": depth},
        headers=api.auth(),
    )
    response.raise_for_status()
    nodes = response.json()["graph"]["nodes"]
    return sorted((str(n["id"]), str(n["item_subtype"])) for n in nodes if n["id"] != start)


def delete_graph(api: Api, run: str) -> None:
    """Provena's prov model_run/delete for real: the graph forgets the run, the registry keeps it."""
    response = api.http.post(
        f"{api.prov}/model_run/delete", json={"record_id": run, "trial_mode": False}, headers=api.auth()
    )
    response.raise_for_status()
    assert response.json()["diff"]


def trial_delete_counts(api: Api, run: str) -> tuple[int, int]:
    response = api.http.post(
        f"{api.prov}/model_run/delete", json={"record_id": run, "trial_mode": True}, headers=api.auth()
    )
    response.raise_for_status()
    kinds = [entry["action_type"] for entry in response.json()["diff"]]
    return kinds.count("REMOVE_NODE"), kinds.count("REMOVE_LINK")


def registry_delete(api: Api, route: str, item_id: str) -> None:
    response = api.http.delete(f"{api.registry}{route}/delete", params={"id": item_id}, headers=api.auth())
    response.raise_for_status()
    assert response.json()["status"]["success"], response.text


def overwrite_item(api: Api, item_id: str, change: Callable[[dict[str, Any]], None]) -> None:
    """Rewrite one registry item through the admin export/import (mode OVERWRITE_ONLY); like Provena's
    import it leaves the provenance graph as it was."""
    exported = api.http.get(f"{api.registry}/admin/export", headers=api.auth())
    exported.raise_for_status()
    [bundle] = [b for b in exported.json()["items"] if b["id"] == item_id]
    change(bundle["item_payload"])
    response = api.http.post(
        f"{api.registry}/admin/import",
        json={
            "import_mode": "OVERWRITE_ONLY",
            "parse_items": True,
            "allow_entry_deletion": False,
            "trial_mode": False,
            "items": [bundle],
        },
        headers=api.auth(),
    )
    response.raise_for_status()
    assert response.json()["status"]["success"], response.text


def lock(api: Api, route: str, item_id: str) -> None:
    response = api.http.put(
        f"{api.registry}{route}/locks/lock", json={"id": item_id, "reason": "test"}, headers=api.auth()
    )
    response.raise_for_status()


def registry_runs_naming(api: Api, study: str) -> list[str]:
    """Every model run whose registry record names the study, from the registry's own listing."""
    found: list[str] = []
    key: Any = None
    while True:
        response = api.http.post(
            f"{api.registry}{RUN_ROUTE}/list",
            json={"filter_by": None, "sort_by": None, "pagination_key": key, "page_size": 100},
            headers=api.auth(),
        )
        response.raise_for_status()
        body = response.json()
        found += [i["id"] for i in body["items"] if (i.get("record") or {}).get("study_id") == study]
        key = body.get("pagination_key")
        if key is None:
            return sorted(found)


# -- study deletion: what links to the study -----------------------------------------------------------------


def test_the_default_strategy_aborts_naming_every_linked_run(plan_on: PlanOn) -> None:
    made = plan_on(playbook(f"op: delete_studies\nstudies: [{STUDY_51}]"))
    assert sorted(p.record_id or "" for p in made.problems) == RUNS_OF_51
    assert (
        f"study {STUDY_51} is linked to model run {REEF_004} and the strategy for it is 'abort'"
        in messages(made)
    )
    assert not updates(made)


def test_remove_clears_every_link_and_the_study_is_deleted_after_the_relinks(plan_on: PlanOn) -> None:
    made = plan_on(playbook(f"op: delete_studies\nlinked_model_runs: remove\nstudies: [{STUDY_51}]"))
    assert not made.problems, made.problems
    relinks = updates(made)
    assert sorted(relinks) == RUNS_OF_51
    for run, relink in relinks.items():
        assert relink.kind == "relink" and relink.outcome == "change"
        assert changes(relink) == [("study_id", STUDY_51, None)], run
        assert relink.reason == f"Removing study reference due to study {STUDY_51} deletion"
    study = action(made, f"delete {STUDY_51}")
    assert study.outcome == "change"
    assert sorted(study.depends_on) == [f"update {run}" for run in RUNS_OF_51]
    assert made.summary.line() == "Plan: 0 to update, 10 to relink, 1 to delete, 0 unchanged."


def test_strategies_per_operation_per_study_and_per_model_run(plan_on: PlanOn) -> None:
    made = plan_on(
        playbook(
            f"""
op: delete_studies
linked_model_runs: remove
studies:
  - id: {STUDY_51}
    linked_model_runs: replace
    replace_with: {{display_name: Seagrass recovery trial}}
    model_run_overrides:
      {REEF_004}: {{replace_with: {STUDY_48}}}
      {run_id(7)}: remove
      {run_id(15)}: abort
  - {STUDY_49}
"""
        )
    )
    assert [(p.record_id, p.message) for p in made.problems] == [
        (
            run_id(15),
            f"study {STUDY_51} is linked to model run {run_id(15)} and the strategy for it is 'abort'",
        )
    ]
    relinks = updates(made)
    assert changes(relinks[REEF_004]) == [("study_id", STUDY_51, STUDY_48)]
    assert relinks[REEF_004].reason == (
        f"Replacing study reference to {STUDY_48} due to study {STUDY_51} deletion"
    )
    assert changes(relinks[run_id(7)]) == [("study_id", STUDY_51, None)]
    assert run_id(15) not in relinks
    replaced = set(RUNS_OF_51) - {REEF_004, run_id(7), run_id(15)}
    for run in replaced:  # the study's own strategy, with its replacement named by display name
        assert changes(relinks[run]) == [("study_id", STUDY_51, STUDY_50)], run
    for run in RUNS_OF_49:  # the operation's default
        assert changes(relinks[run]) == [("study_id", STUDY_49, None)], run
    assert sorted(action(made, f"delete {STUDY_51}").depends_on) == sorted(
        f"update {run}" for run in set(RUNS_OF_51) - {run_id(15)}
    )
    assert sorted(action(made, f"delete {STUDY_49}").depends_on) == [f"update {r}" for r in RUNS_OF_49]


def test_links_are_found_in_the_registry_and_the_graph_and_disagreements_reported(
    plan_on: PlanOn, api: Api
) -> None:
    registry_only, graph_only = CATCHMENT_002, run_id(5)
    delete_graph(api, registry_only)
    overwrite_item(api, graph_only, lambda item: item["record"].pop("study_id"))
    assert registry_runs_naming(api, STUDY_49) == sorted(set(RUNS_OF_49) - {graph_only})
    assert (graph_only, "MODEL_RUN") in explore(api, "downstream", STUDY_49)

    made = plan_on(playbook(f"op: delete_studies\nlinked_model_runs: remove\nstudies: [{STUDY_49}]"))
    assert not made.problems, made.problems
    assert (
        f"study {STUDY_49}: model run {registry_only} names it in its registry record but the graph has no "
        "such link (missing or stale graph)" in made.warnings
    )
    assert any(graph_only in w and "stale graph" in w for w in made.warnings), made.warnings
    relinks = updates(made)
    assert sorted(relinks) == RUNS_OF_49  # the union of both sources
    assert changes(relinks[registry_only]) == [("study_id", STUDY_49, None)]
    stale = relinks[graph_only]
    assert stale.outcome == "change" and stale.changes == []
    assert stale.warnings == [
        f"only the graph links this run to study {STUDY_49}; re-submitting the unchanged record makes "
        "Provena's update job remove the stale link"
    ]
    assert f"update {graph_only}" in action(made, f"delete {STUDY_49}").depends_on

    aborted = plan_on(playbook(f"op: delete_studies\nstudies: [{STUDY_49}]"))
    assert {registry_only, graph_only} <= {p.record_id for p in aborted.problems}


def test_links_where_the_study_is_upstream_are_found_too(plan_on: PlanOn, api: Api) -> None:
    # Provena's graph only ever points model runs at studies, so a link *from* a study is contrived: a
    # run relodged without validation whose output dataset id is the study's id.
    item = fetch(api, RUN_ROUTE, SEAGRASS_012)["item"]
    item["record"]["outputs"][0]["dataset_id"] = STUDY_50
    response = api.http.post(
        f"{api.prov}/admin/store_record", params={"validate_record": "false"}, json=item, headers=api.auth()
    )
    response.raise_for_status()
    assert (SEAGRASS_012, "MODEL_RUN") in explore(api, "upstream", STUDY_50)
    assert (SEAGRASS_012, "MODEL_RUN") not in explore(api, "downstream", STUDY_50)

    made = plan_on(playbook(f"op: delete_studies\nlinked_model_runs: remove\nstudies: [{STUDY_50}]"))
    assert any(SEAGRASS_012 in w and "stale graph" in w for w in made.warnings), made.warnings
    assert f"update {SEAGRASS_012}" in action(made, f"delete {STUDY_50}").depends_on


def test_a_connection_that_is_not_a_model_run_fails_the_plan_naming_it(plan_on: PlanOn) -> None:
    made = plan_on(playbook(f"op: delete_studies\nlinked_model_runs: remove\nstudies: [{STUDY_52}]"))
    assert [(p.record_id, p.message) for p in made.problems] == [
        (STUDY_52, f"study {STUDY_52} is linked to {CREATE_ACTIVITY}, a CREATE (not a model run)")
    ]


def test_runs_the_playbook_deletes_need_no_relink_and_go_first(plan_on: PlanOn) -> None:
    made = plan_on(
        playbook(
            f"op: delete_model_runs\nmodel_runs: [{{linked_to_study: {STUDY_51}}}]",
            f"op: delete_studies\nstudies: [{STUDY_51}]",  # default abort: nothing is left to abort
        )
    )
    assert not made.problems, made.problems
    assert not updates(made)
    assert sorted(action(made, f"delete {STUDY_51}").depends_on) == [f"delete {r}" for r in RUNS_OF_51]
    assert all(action(made, f"delete {r}").outcome == "change" for r in RUNS_OF_51)


def test_one_deleted_run_among_relinked_ones(plan_on: PlanOn) -> None:
    made = plan_on(
        playbook(
            f"op: delete_model_runs\nmodel_runs: [{REEF_004}]",
            f"op: delete_studies\nlinked_model_runs: remove\nstudies: [{STUDY_51}]",
        )
    )
    assert not made.problems, made.problems
    assert REEF_004 not in updates(made)
    assert sorted(action(made, f"delete {STUDY_51}").depends_on) == sorted(
        [f"delete {REEF_004}"] + [f"update {r}" for r in RUNS_OF_51 if r != REEF_004]
    )


# -- the replacement study -----------------------------------------------------------------------------------


def test_a_replacement_that_does_not_exist_is_a_problem(plan_on: PlanOn) -> None:
    made = plan_on(
        playbook(
            f"op: delete_studies\nlinked_model_runs: replace\nreplace_with: {NO_SUCH_STUDY}\n"
            f"studies: [{STUDY_51}]"
        )
    )
    assert any(
        p.record_id == NO_SUCH_STUDY and p.message == f"replacement study {NO_SUCH_STUDY} does not exist"
        for p in made.problems
    ), made.problems


def test_a_missing_replacement_is_reported_once(plan_on: PlanOn) -> None:
    made = plan_on(
        playbook(
            f"op: delete_studies\nlinked_model_runs: replace\nreplace_with: {NO_SUCH_STUDY}\n"
            f"studies: [{STUDY_51}]"
        )
    )
    assert len([m for m in messages(made) if NO_SUCH_STUDY in m]) == 1, messages(made)


def test_the_replacement_must_not_be_deleted_by_the_same_playbook(plan_on: PlanOn) -> None:
    with pytest.raises(PlaybookInvalid) as caught:  # named the same way twice: caught offline
        plan_on(
            playbook(
                f"op: delete_studies\nlinked_model_runs: replace\nreplace_with: {STUDY_50}\n"
                f"studies: [{STUDY_51}, {STUDY_50}]"
            )
        )
    assert "which the same playbook deletes" in caught.value.render()
    made = plan_on(  # named differently: only the planner can tell
        playbook(
            f"""
op: delete_studies
linked_model_runs: remove
studies:
  - id: {STUDY_51}
    linked_model_runs: replace
    replace_with: {{display_name: Seagrass recovery trial}}
  - {STUDY_50}
"""
        )
    )
    assert f"replacement study {STUDY_50} is deleted by this playbook" in messages(made)


def test_a_study_cannot_replace_itself(plan_on: PlanOn) -> None:
    with pytest.raises(PlaybookInvalid) as caught:
        plan_on(
            playbook(
                f"op: delete_studies\nlinked_model_runs: replace\nreplace_with: {STUDY_51}\n"
                f"studies: [{STUDY_51}]"
            )
        )
    assert "cannot be replaced by itself" in caught.value.render()
    made = plan_on(
        playbook(
            "op: delete_studies\nlinked_model_runs: replace\n"
            f"replace_with: {{display_name: Coastal inundation baseline}}\nstudies: [{STUDY_51}]"
        )
    )
    assert f"study {STUDY_51} cannot be replaced by itself" in messages(made)


def test_an_override_for_a_run_that_is_not_linked_is_reported(plan_on: PlanOn) -> None:
    made = plan_on(
        playbook(
            f"""
op: delete_studies
linked_model_runs: remove
studies:
  - id: {STUDY_51}
    model_run_overrides:
      {CATCHMENT_002}: {{replace_with: {STUDY_48}}}
"""
        )
    )
    assert CATCHMENT_002 in "\n".join([*messages(made), *made.warnings])


# -- edits are pre-validated like Provena's update job -------------------------------------------------------

FORCING_TEMPLATE = "10378.1/1690013"


@pytest.mark.parametrize(
    ("edit", "run", "fragments"),
    [
        pytest.param(
            "set: {modeller_id: 10378.1/1690007}",
            REEF_004,
            ["modeller 10378.1/1690007", "ORGANISATION", "not a PERSON"],
            id="modeller-is-an-organisation",
        ),
        pytest.param(
            "set:\n  inputs:\n    - {dataset_template_id: "
            + FORCING_TEMPLATE
            + ", dataset_id: 10378.1/1699998, dataset_type: DATA_STORE, resources: {forcing: f.nc}}",
            CATCHMENT_002,
            ["input dataset 10378.1/1699998 does not exist"],
            id="input-dataset-missing",
        ),
        pytest.param(
            "annotations: {remove: [scenario]}",
            run_id(0),
            ["the workflow template requires annotation(s) scenario"],
            id="required-annotation-removed",
        ),
        pytest.param(
            "set: {start_time: 1900000000}",
            CATCHMENT_002,
            ["start_time", "1900000000", "end_time", "1700093600"],
            id="start-after-end",
        ),
        pytest.param(
            f"set: {{study_id: {run_id(7)}}}",
            CATCHMENT_002,
            [f"study {run_id(7)} is a MODEL_RUN, not a STUDY"],
            id="study-is-a-model-run",
        ),
    ],
)
def test_an_edit_provena_would_refuse_is_a_problem_naming_the_run(
    plan_on: PlanOn, edit: str, run: str, fragments: list[str]
) -> None:
    made = plan_on(playbook(f"op: update_model_runs\nreason: test\nmodel_runs: [{run}]\n{edit}"))
    assert len(made.problems) == 1, made.problems
    [problem] = made.problems
    assert problem.record_id == run and problem.operation == 0
    assert problem.message.startswith(f"model run {run}: Provena's update job would fail: ")
    for fragment in fragments:
        assert fragment in problem.message


def test_a_valid_edit_lists_exactly_its_changes_and_provenas_side_effects(plan_on: PlanOn) -> None:
    made = plan_on(
        playbook(
            f"""
op: update_model_runs
reason: recalibrated (OPS-117)
model_runs: [{REEF_004}, {CATCHMENT_002}]
set: {{description: Recalibrated., model_version: "2.4.1"}}
annotations: {{set: {{notes: five spin-up years}}}}
"""
        )
    )
    assert not made.problems and not made.warnings, (made.problems, made.warnings)
    reef, catchment = action(made, f"update {REEF_004}"), action(made, f"update {CATCHMENT_002}")
    assert changes(reef) == [
        ("annotations.notes", None, "five spin-up years"),
        ("description", "Demo model run 4 of the sandbox registry.", "Recalibrated."),
        ("model_version", "1.3.0", "2.4.1"),
    ]
    assert changes(catchment) == [
        ("annotations.notes", None, "five spin-up years"),
        ("description", "Demo model run 2 of the sandbox registry.", "Recalibrated."),
        ("model_version", "1.1.0", "2.4.1"),
    ]
    assert reef.kind == "update" and reef.outcome == "change" and reef.reason == "recalibrated (OPS-117)"
    assert reef.record is not None
    assert reef.record["annotations"] == {"scenario": "restoration", "notes": "five spin-up years"}
    assert reef.side_effects == ["user_metadata is cleared (now {'batch': 'B0', 'operator': 'bob'})"]
    assert catchment.side_effects == []
    assert reef.warnings == [] and catchment.warnings == []  # no structural change
    [note] = made.notes
    assert "two history entries" in note and "clears its user_metadata" in note
    assert made.summary.line() == "Plan: 2 to update, 0 to delete, 0 unchanged."


def test_a_structure_changing_edit_warns_with_the_downstream_records(plan_on: PlanOn, api: Api) -> None:
    downstream = explore(api, "downstream", REEF_004, depth=2)
    assert downstream
    made = plan_on(
        playbook(
            f"op: update_model_runs\nreason: swapped\nmodel_runs: [{REEF_004}]\n"
            "set: {modeller_id: 10378.1/1690003}"
        )
    )
    assert not made.problems, made.problems
    names = ", ".join(f"{node} ({subtype})" for node, subtype in downstream)
    assert action(made, f"update {REEF_004}").warnings == [
        f"changes associations.modeller_id; records downstream of this run: {names}"
    ]


def test_relinks_of_a_study_deletion_warn_with_downstream_records(plan_on: PlanOn, api: Api) -> None:
    assert explore(api, "downstream", CATCHMENT_002, depth=2)
    made = plan_on(playbook(f"op: delete_studies\nlinked_model_runs: remove\nstudies: [{STUDY_49}]"))
    assert any("records downstream" in w for w in action(made, f"update {CATCHMENT_002}").warnings)


# -- operations touching the same model run ------------------------------------------------------------------


def test_compatible_operations_merge_into_one_action(plan_on: PlanOn) -> None:
    made = plan_on(
        playbook(
            f"op: update_model_runs\nreason: typo (OPS-1)\nmodel_runs: [{SEAGRASS_012}]\n"
            "set: {description: Fixed.}",
            f"op: link_studies\nstudy: {STUDY_50}\nmodel_runs: [{SEAGRASS_012}]",
        )
    )
    assert not made.problems, made.problems
    assert [a.key for a in made.actions] == [f"update {SEAGRASS_012}"]
    merged = made.actions[0]
    assert merged.operations == [0, 1] and merged.kind == "update"
    assert changes(merged) == [
        ("description", "Demo model run 12 of the sandbox registry.", "Fixed."),
        ("study_id", None, STUDY_50),
    ]
    assert merged.reason == f"typo (OPS-1); (bulk) linking to study {STUDY_50}"


SEAGRASS_012_GLOB = "{display_name_matches: 'Seagrass run 012'}"  # a selector: only the planner sees it


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        pytest.param(
            f"op: update_model_runs\nreason: a\nmodel_runs: [{SEAGRASS_012}]\nset: {{description: A}}",
            f"op: update_model_runs\nreason: b\nmodel_runs: [{SEAGRASS_012_GLOB}]\nset: {{description: B}}",
            f"model run {SEAGRASS_012}: operations[0] sets description to 'A' but operations[1] sets it "
            "to 'B'",
            id="two-descriptions",
        ),
        pytest.param(
            f"op: link_studies\nstudy: {STUDY_50}\nmodel_runs: [{SEAGRASS_012}]",
            f"op: update_model_runs\nreason: b\nmodel_runs: [{SEAGRASS_012_GLOB}]\n"
            f"set: {{study_id: {STUDY_49}}}",
            f"model run {SEAGRASS_012}: operations[0] sets study_id to '{STUDY_50}' but operations[1] sets "
            f"it to '{STUDY_49}'",
            id="two-studies",
        ),
        pytest.param(
            f"op: delete_model_runs\nmodel_runs: [{SEAGRASS_012}]",
            f"op: update_model_runs\nreason: b\nmodel_runs: [{SEAGRASS_012_GLOB}]\nset: {{description: B}}",
            f"model run {SEAGRASS_012} is deleted by operations[0] and also changed by operations[1]",
            id="delete-and-update",
        ),
    ],
)
def test_conflicting_operations_fail_the_plan(
    plan_on: PlanOn, first: str, second: str, expected: str
) -> None:
    made = plan_on(playbook(first, second))
    assert [(p.record_id, p.message) for p in made.problems] == [(SEAGRASS_012, expected)]


def test_conflicting_annotation_edits_through_a_selector_fail_the_plan(plan_on: PlanOn) -> None:
    glob = "{display_name_matches: 'Catchment run 002'}"
    made = plan_on(
        playbook(
            f"op: update_model_runs\nreason: a\nmodel_runs: [{CATCHMENT_002}]\n"
            "annotations: {set: {calibration: v7}}",
            f"op: update_model_runs\nreason: b\nmodel_runs: [{glob}]\n"
            "annotations: {set: {calibration: v8}}",
        )
    )
    assert [(p.message, p.hint, p.operation, p.record_id) for p in made.problems] == [
        (
            f"model run {CATCHMENT_002}: the annotation edits of operations[0] and operations[1] conflict: "
            "'calibration' is set to 'v7' and to 'v8'",
            "edit this run's annotations in one operation only",
            1,
            CATCHMENT_002,
        )
    ]


def test_linking_to_a_study_the_playbook_deletes_fails_the_plan(plan_on: PlanOn) -> None:
    made = plan_on(
        playbook(
            "op: delete_studies\nlinked_model_runs: remove\n"
            "studies: [{display_name: Seagrass recovery trial}]",
            f"op: link_studies\nstudy: {STUDY_50}\nmodel_runs: [{SEAGRASS_012}]",
        )
    )
    assert changes(action(made, f"update {SEAGRASS_012}")) == [("study_id", None, STUDY_50)]
    assert any(STUDY_50 in p.message and SEAGRASS_012 in f"{p.message} {p.record_id}" for p in made.problems)


# -- model run deletion --------------------------------------------------------------------------------------


def test_deletion_shows_the_graph_impact_of_provenas_trial_delete(plan_on: PlanOn, api: Api) -> None:
    made = plan_on(playbook(f"op: delete_model_runs\nmodel_runs: [{REEF_010}, {run_id(13)}, {NEVER_LODGED}]"))
    assert not made.problems, made.problems
    for run in (REEF_010, run_id(13)):
        impact = action(made, f"delete {run}").graph
        assert impact is not None and impact.nodes_removed > 0 and impact.links_removed > 0
        assert (impact.nodes_removed, impact.links_removed) == trial_delete_counts(api, run)
        assert action(made, f"delete {run}").warnings == []
    never = action(made, f"delete {NEVER_LODGED}")
    assert never.graph is not None and never.graph.model_dump() == {
        "nodes_removed": 0,
        "links_removed": 0,
        "node_references_removed": 0,
        "link_references_removed": 0,
    }
    assert never.warnings == [
        "the graph holds nothing of this run (never lodged, or a previous delete removed it): only the "
        "registry record is deleted"
    ]
    assert made.warnings == [
        "2 model run deletions (of runs with a graph) remove 2 nodes and 14 links in total "
        "(average 1.0 nodes, 7.0 links per run)"
    ]
    assert made.summary.line() == "Plan: 0 to update, 3 to delete, 0 unchanged."


def test_planning_writes_nothing(plan_on: PlanOn, api: Api) -> None:
    records = [(RUN_ROUTE, r) for r in (REEF_010, CATCHMENT_002, REEF_004, NEVER_LODGED)]
    records.append((STUDY_ROUTE, STUDY_51))

    def snapshot() -> list[Any]:
        return [fetch(api, route, item) for route, item in records] + [
            explore(api, "upstream", REEF_010),
            explore(api, "downstream", STUDY_51),
            trial_delete_counts(api, REEF_010),
        ]

    before = snapshot()
    assert (REEF_010, "MODEL_RUN") in explore(api, "downstream", STUDY_49)
    made = plan_on(
        playbook(
            f"op: delete_model_runs\nmodel_runs: [{REEF_010}]",
            f"op: delete_studies\nlinked_model_runs: remove\nstudies: [{STUDY_51}]",
            f"op: update_model_runs\nreason: r\nmodel_runs: [{CATCHMENT_002}]\nset: {{description: New.}}",
            f"op: relodge_model_runs\nmodel_runs: [{NEVER_LODGED}]",
        )
    )
    assert made.has_changes and not made.problems, made.problems
    assert snapshot() == before
    assert (REEF_010, "MODEL_RUN") in explore(api, "downstream", STUDY_49)


# -- permissions and locks: problems in the plan, never exceptions -------------------------------------------


def test_editing_a_locked_run_is_a_problem(plan_on: PlanOn) -> None:
    made = plan_on(
        playbook(f"op: update_model_runs\nreason: r\nmodel_runs: [{LOCKED_RUN}]\nset: {{description: x}}")
    )
    assert [(p.record_id, p.message) for p in made.problems] == [
        (LOCKED_RUN, f"{LOCKED_RUN} is locked, so Provena refuses to edit it")
    ]


def test_relinking_a_locked_run_and_deleting_a_locked_study_are_problems(plan_on: PlanOn, api: Api) -> None:
    made = plan_on(playbook(f"op: delete_studies\nlinked_model_runs: remove\nstudies: [{STUDY_48}]"))
    assert [(p.record_id, p.message) for p in made.problems] == [
        (LOCKED_RUN, f"{LOCKED_RUN} is locked, so Provena refuses to edit it")
    ]
    lock(api, STUDY_ROUTE, STUDY_50)
    made = plan_on(playbook(f"op: delete_studies\nlinked_model_runs: remove\nstudies: [{STUDY_50}]"))
    assert [(p.record_id, p.message) for p in made.problems] == [
        (STUDY_50, f"study {STUDY_50} is locked, so Provena refuses to delete it")
    ]


def test_deleting_without_the_admin_role_is_a_problem(plan_on: PlanOn) -> None:
    made = plan_on(playbook(f"op: delete_model_runs\nmodel_runs: [{REEF_010}]"), user="alice")
    assert f"alice lacks the entity-registry-admin role needed to delete {REEF_010}" in messages(made)
    assert all(p.record_id == REEF_010 for p in made.problems)


def test_editing_without_metadata_write_is_a_problem(plan_on: PlanOn) -> None:
    made = plan_on(
        playbook(f"op: update_model_runs\nreason: r\nmodel_runs: [{REEF_010}]\nset: {{description: x}}"),
        user="reader",
        roles=["entity-registry-read", "entity-registry-write"],  # the realm roles, not the item permission
    )
    assert [(p.record_id, p.message) for p in made.problems] == [
        (REEF_010, f"reader may not edit {REEF_010}: no metadata-write permission on it (has: metadata-read)")
    ]


def test_editing_without_the_registry_write_role_is_a_problem(plan_on: PlanOn, api: Api) -> None:
    own_run = run_id(0)  # owned by alice
    refused = api.http.post(
        f"{api.prov}/model_run/update",
        json={"model_run_id": own_run, "reason": "r", "record": {}},
        headers=api.auth("alice", ["entity-registry-read"]),
    )
    assert refused.status_code == 401
    made = plan_on(
        playbook(f"op: update_model_runs\nreason: r\nmodel_runs: [{own_run}]\nset: {{description: x}}"),
        user="alice",
        roles=["entity-registry-read"],
    )
    assert any("entity-registry-write" in m for m in messages(made)), made.problems


# -- idempotent planning -------------------------------------------------------------------------------------


def test_what_is_already_so_is_unchanged(plan_on: PlanOn) -> None:
    made = plan_on(
        playbook(
            f"op: link_studies\nstudy: {STUDY_48}\nmodel_runs: [{run_id(0)}]",
            f"op: update_model_runs\nreason: r\nmodel_runs: [{CATCHMENT_002}]\n"
            "set: {description: Demo model run 2 of the sandbox registry., model_version: 1.1.0}\n"
            "annotations: {set: {calibration: v2}}",
        )
    )
    assert not made.problems, made.problems
    for key, kind in ((f"update {run_id(0)}", "relink"), (f"update {CATCHMENT_002}", "update")):
        unchanged = action(made, key)
        assert (unchanged.kind, unchanged.outcome, unchanged.changes) == (kind, "unchanged", [])
        assert unchanged.why == "the record already holds every requested value"
    assert not made.has_changes and made.notes == []
    assert made.summary.line() == "Plan: 0 to update, 0 to delete, 2 unchanged."


def test_deleting_what_is_gone_is_not_found(plan_on: PlanOn, api: Api) -> None:
    registry_delete(api, RUN_ROUTE, REEF_010)
    registry_delete(api, STUDY_ROUTE, STUDY_52)
    made = plan_on(
        playbook(
            f"op: delete_model_runs\nmodel_runs: [{REEF_010}]", f"op: delete_studies\nstudies: [{STUDY_52}]"
        )
    )
    assert not made.problems, made.problems
    run, study = action(made, f"delete {REEF_010}"), action(made, f"delete {STUDY_52}")
    assert (run.outcome, run.why) == (
        "not_found",
        "not found: no model run with this id in the registry, and no run here deleted it (a typo?)",
    )
    assert (study.outcome, study.why) == (
        "not_found",
        "not found: no study with this id in the registry, and no run here deleted it (a typo?)",
    )
    assert made.summary.line() == "Plan: 0 to update, 0 to delete, 0 unchanged, 2 not found."


def test_an_absent_study_still_named_by_runs_is_not_silently_done(plan_on: PlanOn, api: Api) -> None:
    registry_delete(api, STUDY_ROUTE, STUDY_51)
    assert registry_runs_naming(api, STUDY_51) == RUNS_OF_51
    made = plan_on(playbook(f"op: delete_studies\nlinked_model_runs: remove\nstudies: [{STUDY_51}]"))
    assert action(made, f"delete {STUDY_51}").outcome == "not_found"
    assert REEF_004 in everything_said(made)


def test_relodging_is_needed_only_where_the_graph_lacks_links(plan_on: PlanOn, api: Api) -> None:
    record = fetch(api, RUN_ROUTE, NEVER_LODGED)["item"]["record"]
    expected = sorted(
        {
            record["workflow_template_id"],
            record["associations"]["modeller_id"],
            record["associations"]["requesting_organisation_id"],
            *(d["dataset_id"] for d in record["inputs"] + record["outputs"]),
        }
    )
    made = plan_on(playbook(f"op: relodge_model_runs\nmodel_runs: [{run_id(10)}, {NEVER_LODGED}]"))
    assert not made.problems, made.problems
    complete = action(made, f"relodge {run_id(10)}")
    assert (complete.outcome, complete.why) == (
        "unchanged",
        "the graph already holds every link of the registry record",
    )
    missing = action(made, f"relodge {NEVER_LODGED}")
    assert missing.outcome == "change"
    assert changes(missing) == [("graph lacks links to", None, expected)]
    assert made.summary.line() == "Plan: 0 to update, 0 to delete, 1 to relodge, 1 unchanged."


# -- selectors -----------------------------------------------------------------------------------------------


def test_linked_to_study_expands_to_the_runs_whose_records_name_it(plan_on: PlanOn, api: Api) -> None:
    overwrite_item(api, SEAGRASS_012, lambda item: item["record"].update(study_id=STUDY_50))
    expected = registry_runs_naming(api, STUDY_50)
    assert expected == sorted([*RUNS_OF_50, SEAGRASS_012])
    made = plan_on(playbook(f"op: relodge_model_runs\nmodel_runs: [{{linked_to_study: {STUDY_50}}}]"))
    assert [t.model_runs for t in made.targets] == [expected]
    assert sorted(a.record_id for a in made.actions) == expected


def test_display_name_globs_are_case_sensitive_and_pinned(plan_on: PlanOn) -> None:
    made = plan_on(
        playbook(
            "op: relodge_model_runs\nmodel_runs: [{display_name_matches: 'Reef run 0[01]?'}]",
            "op: relodge_model_runs\nmodel_runs: [{display_name_matches: 'reef run*'}]",
        )
    )
    assert [t.model_runs for t in made.targets] == [[run_id(n) for n in (0, 3, 6, 9, 12, 15, 18)], []]


def test_a_selector_that_matches_nothing_is_reported(plan_on: PlanOn) -> None:
    made = plan_on(playbook("op: delete_model_runs\nmodel_runs: [{display_name_matches: 'reef run*'}]"))
    assert "reef run*" in "\n".join([*made.warnings, *messages(made)])


def test_a_display_name_resolves_to_the_one_exact_match(plan_on: PlanOn) -> None:
    made = plan_on(
        playbook(
            "op: relodge_model_runs\nmodel_runs: [{display_name: Catchment run 002}]",
            f"op: link_studies\nstudy: {{display_name: Murray catchment drought scenarios}}\n"
            f"model_runs: [{CATCHMENT_002}]",
        )
    )
    assert not made.problems, made.problems
    assert [(t.model_runs, t.studies) for t in made.targets] == [
        ([CATCHMENT_002], []),
        ([CATCHMENT_002], [STUDY_49]),
    ]


def test_an_ambiguous_display_name_lists_the_candidates(plan_on: PlanOn, api: Api) -> None:
    overwrite_item(api, run_id(12), lambda item: item.update(display_name="Reef run 010"))
    made = plan_on(playbook("op: relodge_model_runs\nmodel_runs: [{display_name: Reef run 010}]"))
    assert [(p.operation, p.message) for p in made.problems] == [
        (0, f"2 model runs are named 'Reef run 010': {REEF_010}, {run_id(12)}")
    ]
    assert made.targets[0].model_runs == [] and made.actions == []


def test_an_unknown_display_name_is_a_problem_naming_it(plan_on: PlanOn) -> None:
    made = plan_on(
        playbook(
            "op: update_model_runs\nreason: r\nmodel_runs: [{display_name: Reef run 999}]\n"
            "set: {description: x}"
        )
    )
    [problem] = made.problems
    assert problem.operation == 0
    assert problem.message.startswith("no model run is named exactly 'Reef run 999'; search found 'Reef run")
    assert made.actions == []


def test_an_unknown_display_name_lists_near_candidates(plan_on: PlanOn) -> None:
    made = plan_on(
        playbook("op: link_studies\nstudy: " + STUDY_48 + "\nmodel_runs: [{display_name: reef run 010}]")
    )
    assert any(REEF_010 in f"{p.message} {p.hint}" for p in made.problems), made.problems


def test_deleting_by_a_name_no_record_has_is_nothing_to_do_with_a_warning(plan_on: PlanOn, api: Api) -> None:
    """Re-planning a deletion by name after it was applied is idempotent, not an error."""
    text = playbook(
        "op: delete_model_runs\nmodel_runs: [{display_name: Reef run 010}]",
        "op: delete_studies\nlinked_model_runs: remove\nstudies: [{display_name: No such study}]",
    )
    assert action(plan_on(text), f"delete {REEF_010}").outcome == "change"
    gone = api.http.delete(f"{api.registry}{RUN_ROUTE}/delete", params={"id": REEF_010}, headers=api.auth())
    assert gone.status_code == 200, gone.text
    made = plan_on(text)
    assert made.problems == [] and made.actions == []
    assert not made.has_changes
    assert made.warnings[0].startswith("operations[0]: no model run is named exactly 'Reef run 010'")
    assert "nothing to delete (already deleted" in made.warnings[0]
    assert made.warnings[1].startswith("operations[1]: no study is named exactly 'No such study'")


# -- determinism and the command line ------------------------------------------------------------------------

MIXED = playbook(
    f"op: delete_studies\nlinked_model_runs: replace\nreplace_with: {STUDY_48}\nstudies: [{STUDY_51}]",
    f"op: update_model_runs\nreason: r\nmodel_runs: [{CATCHMENT_002}]\nset: {{modeller_id: 10378.1/1690003}}",
    f"op: delete_model_runs\nmodel_runs: [{REEF_010}, {run_id(13)}, {NEVER_LODGED}]",
    f"op: link_studies\nstudy: {STUDY_50}\nmodel_runs: [{{display_name_matches: 'Seagrass run 01*'}}]",
    f"op: relodge_model_runs\nmodel_runs: [{{display_name: Reef run 001}}, {run_id(20)}]",
)
CREATED_AT = re.compile(r'^  "created_at": ".*",\n', re.MULTILINE)


def test_planning_twice_gives_the_same_json(plan_on: PlanOn) -> None:
    first, second = (CREATED_AT.sub("", render_json(plan_on(MIXED))) for _ in range(2))
    assert '"created_at"' not in first
    assert first == second


def provena_ops(api: Api, environments: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PROVENA_OPS_ACCESS_TOKEN": api.token("admin", lifetime=600)}
    command = [sys.executable, "-m", "provena_ops", "plan", *args]
    command += ["--environments", str(environments), "-e", "rehearsal"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def test_the_plan_command_exit_codes_and_saved_plan(
    api: Api, remote_environments: Path, tmp_path: Path
) -> None:
    cases = {
        "unchanged": (playbook(f"op: relodge_model_runs\nmodel_runs: [{run_id(10)}]"), 0),
        "changes": (playbook(f"op: relodge_model_runs\nmodel_runs: [{NEVER_LODGED}]"), 2),
        "problems": (  # a change that cannot be applied: problems win over changes
            playbook(
                f"op: update_model_runs\nreason: r\nmodel_runs: [{LOCKED_RUN}]\nset: {{description: x}}"
            ),
            1,
        ),
        "invalid": (playbook(f"op: delete_model_runz\nmodel_runs: [{REEF_010}]"), 1),
    }
    for name, (text, code) in cases.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        saved = tmp_path / f"{name}.json"
        result = provena_ops(api, remote_environments, str(path), "--format", "json", "--out", str(saved))
        assert result.returncode == code, (name, result.stdout[-2000:], result.stderr[-2000:])
        assert "Traceback" not in result.stderr, result.stderr
        if name == "invalid":
            assert "unknown operation 'delete_model_runz'" in result.stderr
            assert "is not a valid playbook" in result.stderr
            assert not saved.exists()
            continue
        assert saved.read_text() == result.stdout
        made = Plan.model_validate_json(saved.read_text())
        assert (made.has_changes, bool(made.problems)) == (name != "unchanged", name == "problems")
    text_run = provena_ops(api, remote_environments, str(tmp_path / "problems.yaml"))
    assert text_run.returncode == 1 and "is locked" in text_run.stdout
    assert json.loads((tmp_path / "problems.json").read_text())["problems"][0]["record_id"] == LOCKED_RUN
    # a usage error is an error (1), never "changes present" (2), which CI would read as a plan to review
    for usage in (["--bogus"], ["--format", "yaml"], ["--concurrency", "0"]):
        misused = provena_ops(api, remote_environments, str(tmp_path / "changes.yaml"), *usage)
        assert misused.returncode == 1, (usage, misused.stderr)
        assert "Try 'provena-ops plan --help' for help." in misused.stderr and not misused.stdout


# -- ordering, roles, replacements, staleness ---------------------------------------------------------------


def assert_dependencies_point_backwards(made: Plan) -> None:
    seen: set[str] = set()
    for made_action in made.actions:
        missing = [key for key in made_action.depends_on if key not in seen]
        assert not missing, f"{made_action.key} depends on {missing}, which come later or not at all"
        seen.add(made_action.key)


def test_every_action_comes_after_the_actions_it_depends_on(plan_on: PlanOn) -> None:
    made = plan_on(
        playbook(
            f"op: delete_studies\nlinked_model_runs: remove\nstudies: [{STUDY_51}]",
            f"op: delete_model_runs\nmodel_runs: [{REEF_004}]",
            f"op: relodge_model_runs\nmodel_runs: [{run_id(11)}]",
            f"op: update_model_runs\nreason: r\nmodel_runs: [{run_id(11)}]\nset: {{description: x}}",
        )
    )
    assert not made.problems, made.problems
    assert f"delete {REEF_004}" in action(made, f"delete {STUDY_51}").depends_on
    assert action(made, f"relodge {run_id(11)}").depends_on == [f"update {run_id(11)}"]
    assert_dependencies_point_backwards(made)
    assert_dependencies_point_backwards(plan_on(MIXED))


def test_a_relodge_does_not_wait_for_an_edit_that_changes_nothing(plan_on: PlanOn) -> None:
    made = plan_on(
        playbook(
            f"op: relodge_model_runs\nmodel_runs: [{NEVER_LODGED}]",
            f"op: update_model_runs\nreason: r\nmodel_runs: [{NEVER_LODGED}]\n"
            "set: {description: Demo model run 60 of the sandbox registry.}",
        )
    )
    assert action(made, f"update {NEVER_LODGED}").outcome == "unchanged"
    assert action(made, f"relodge {NEVER_LODGED}").depends_on == []


def test_admin_actions_need_every_registry_role_not_only_admin(plan_on: PlanOn) -> None:
    made = plan_on(
        playbook(
            f"op: relodge_model_runs\nmodel_runs: [{NEVER_LODGED}]",
            f"op: delete_studies\nstudies: [{STUDY_49}]\nlinked_model_runs: remove",
        ),
        roles=["entity-registry-read", "entity-registry-admin"],
    )
    wanted = "admin lacks the entity-registry-write role needed to"
    assert f"{wanted} relodge {NEVER_LODGED}" in messages(made)
    assert f"{wanted} delete {STUDY_49}" in messages(made)


def test_a_merged_action_is_listed_under_the_first_operation_that_asked_for_it(plan_on: PlanOn) -> None:
    made = plan_on(
        playbook(
            f"op: delete_studies\nlinked_model_runs: remove\nstudies: [{STUDY_51}]",
            f"op: update_model_runs\nreason: r\nmodel_runs: [{REEF_004}]\nset: {{description: x}}",
        )
    )
    assert action(made, f"update {REEF_004}").operations == [0, 1]


def test_replacements_are_checked_even_when_no_run_needs_them(plan_on: PlanOn) -> None:
    gone = "10378.1/1699998"
    made = plan_on(
        playbook(
            f"op: delete_studies\nlinked_model_runs: replace\nreplace_with: {NO_SUCH_STUDY}\n"
            f"studies: [{gone}]"
        )
    )
    assert action(made, f"delete {gone}").outcome == "not_found"
    assert messages(made) == [f"replacement study {NO_SUCH_STUDY} does not exist"]


def test_a_replacement_of_the_wrong_kind_is_reported_once(plan_on: PlanOn) -> None:
    made = plan_on(
        playbook(
            f"op: delete_studies\nlinked_model_runs: replace\nreplace_with: {REEF_010}\nstudies: [{STUDY_51}]"
        )
    )
    assert messages(made) == [f"replacement {REEF_010} is a MODEL_RUN, not a study"]


def test_a_run_linked_to_the_study_after_planning_makes_the_plan_stale(plan_on: PlanOn, api: Api) -> None:
    text = playbook(f"op: delete_studies\nlinked_model_runs: remove\nstudies: [{STUDY_51}]")
    before = plan_on(text).fingerprints
    linked = api.http.post(
        f"{api.prov}/model_run/edit/link_to_study",
        params={"model_run_id": SEAGRASS_012, "study_id": STUDY_51},
        headers=api.auth(),
    )
    assert linked.status_code == 200, linked.text
    after = plan_on(text).fingerprints
    assert before[f"{STUDY_51}#links"] != after[f"{STUDY_51}#links"]
    assert SEAGRASS_012 not in before and SEAGRASS_012 in after


def test_a_study_named_for_deletion_is_explored_even_when_also_named_as_a_replacement(
    plan_on: PlanOn,
) -> None:
    """The graph of every study to delete is read, however its id was first met (here: a replacement
    written as an id, and the deletion written as a name that resolves to the same study later)."""
    made = plan_on(
        playbook(
            f"op: delete_studies\nlinked_model_runs: replace\nreplace_with: {STUDY_52}\n"
            f"studies: [{STUDY_51}]",
            "op: delete_studies\nlinked_model_runs: remove\n"
            "studies: [{display_name: Legacy sediment survey}]",
        )
    )
    assert f"replacement study {STUDY_52} is deleted by this playbook" in messages(made)
    assert f"study {STUDY_52} is linked to {CREATE_ACTIVITY}, a CREATE (not a model run)" in messages(made)


def test_deleting_by_a_name_that_differs_only_in_case_is_a_typo_not_a_done_deletion(plan_on: PlanOn) -> None:
    made = plan_on(playbook("op: delete_model_runs\nmodel_runs: [{display_name: reef run 010}]"))
    assert made.actions == []
    [problem] = made.problems
    assert problem.message.startswith("no model run is named exactly 'reef run 010'; search found")
    assert REEF_010 in problem.message
