"""`provena-ops find` and `record` over HTTP against the seeded sandbox: what an admin copies into a
playbook (ids, subtypes, names) and what a script reads (--format json, checked against its schema)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.apply.test_log_cli import valid
from tests.conftest import Api
from tests.plan.test_plan_rules import RUNS_OF_51, STUDY_48, STUDY_51, run_id
from tests.sandbox.seeded import set_faults
from tests.sandbox.test_cli import Outcome, run_in_process

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


@pytest.fixture
def cli(api: Api, environments_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROVENA_OPS_ACCESS_TOKEN", api.token("admin", lifetime=600))

    def run(*args: str) -> Outcome:
        return run_in_process(*args, "-e", "rehearsal", "--environments", str(environments_file))

    return run


def test_find_by_words_lists_confirmed_hits_with_subtype_and_name(cli: Any) -> None:
    found = cli("find", "Coastal inundation", "--subtype", "study")
    assert found.code == 0, found.stderr
    assert found.stdout.splitlines()[1] == f"  {STUDY_51}  STUDY  Coastal inundation baseline"
    document = valid(cli("find", "Reef run", "--format", "json", "--limit", "3").stdout, "find")
    assert len(document["matches"]) == 3 and document["limited"] is True
    assert all(match["display_name"] and match["subtype"] for match in document["matches"])
    assert document["environment"]["name"] == "rehearsal"


def test_find_an_id_fetches_it_first(cli: Any) -> None:
    found = cli("find", run_id(3))
    assert found.code == 0, found.stderr
    assert found.stdout.splitlines()[:2] == [
        f"{run_id(3)} on rehearsal (DEV):",
        f"  {run_id(3)}  MODEL_RUN  Reef run 004",
    ]
    document = valid(cli("find", run_id(3), "--format", "json").stdout, "find")
    assert document["exact"] == {
        "id": run_id(3),
        "subtype": "MODEL_RUN",
        "display_name": "Reef run 004",
        "problem": None,
    }
    assert run_id(3) not in [match["id"] for match in document["matches"]]  # said once


def test_a_hit_the_registry_no_longer_has_is_set_apart(cli: Any, api: Api) -> None:
    set_faults(api, search_staleness_s=600)
    assert cli("find", "Coastal inundation baseline").stdout.count(STUDY_51) == 1  # the index is built
    deleted = api.http.delete(
        f"{api.registry}/registry/activity/study/delete", params={"id": STUDY_51}, headers=api.auth()
    )
    assert deleted.status_code == 200
    document = valid(cli("find", "Coastal inundation baseline", "--format", "json").stdout, "find")
    assert STUDY_51 in document["stale"] and STUDY_51 not in [match["id"] for match in document["matches"]]
    said = cli("find", "Coastal inundation baseline").stdout
    assert f"of the search index no longer in the registry: {STUDY_51})" in said


def test_find_linked_to_a_study_reads_every_run_from_the_registry(cli: Any) -> None:
    everything = valid(cli("find", "*", "--linked-to", STUDY_51, "--format", "json").stdout, "find")
    assert sorted(match["id"] for match in everything["matches"]) == sorted(RUNS_OF_51)
    reef = cli("find", "reef", "--linked-to", STUDY_51)
    assert reef.code == 0, reef.stderr
    assert reef.stdout.startswith(f"5 model runs of study {STUDY_51} on rehearsal (DEV) match 'reef':\n")
    assert "Catchment" not in reef.stdout
    wrong = cli("find", "*", "--linked-to", run_id(3))
    assert wrong.code == 1
    assert f"error: --linked-to {run_id(3)}: it is a MODEL_RUN, not a study" in wrong.stderr


def test_record_of_a_model_run_names_what_it_links_to(cli: Any) -> None:
    shown = cli("record", run_id(3))
    assert shown.code == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == f"{run_id(3)}  MODEL_RUN  Reef run 004  on rehearsal (DEV)"
    assert f"  study         {STUDY_51}  STUDY  Coastal inundation baseline" in lines
    assert "  your roles    metadata-read, metadata-write, admin" in lines
    assert (
        "upstream in the provenance graph (6):" in lines
        and "downstream in the provenance graph (1):" in lines
    )
    document = valid(cli("record", run_id(3), "--format", "json").stdout, "record")
    assert document["item"]["record"]["study_id"] == STUDY_51 and document["locked"] is False
    assert {association["role"] for association in document["associations"]} >= {"study_id", "modeller_id"}
    assert all(node["display_name"] for node in document["upstream"] + document["downstream"])


def test_record_of_a_study_marks_runs_the_registry_and_graph_disagree_on(cli: Any, api: Api) -> None:
    graph_only = api.http.post(
        f"{api.prov}/model_run/delete",
        json={"record_id": RUNS_OF_51[0], "trial_mode": False},
        headers=api.auth(),
    )
    assert graph_only.status_code == 200, graph_only.text
    shown = cli("record", STUDY_51)
    assert shown.code == 0, shown.stderr
    assert "model runs linked to this study (10):" in shown.stdout
    assert (
        f"  {RUNS_OF_51[0]}  MODEL_RUN  Reef run 004  (registry only: its provenance does not show the link)"
        in (shown.stdout)
    )
    document = valid(cli("record", STUDY_51, "--format", "json").stdout, "record")
    runs = {run["id"]: run for run in document["linked_runs"]}
    assert runs[RUNS_OF_51[0]] == {
        "id": RUNS_OF_51[0],
        "display_name": "Reef run 004",
        "in_registry": True,
        "in_graph": False,
    }
    assert all(run["in_registry"] and run["in_graph"] for key, run in runs.items() if key != RUNS_OF_51[0])


def test_record_of_an_unknown_id_says_so_and_how_to_find_one(cli: Any) -> None:
    missing = cli("record", "10378.1/1699999")
    assert missing.code == 1 and missing.stdout == ""
    assert "error: no record 10378.1/1699999 in 'rehearsal': " in missing.stderr
    assert "hint: find it by name: provena-ops find WORDS -e rehearsal" in missing.stderr
    assert "Traceback" not in missing.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["find", "x", "--subtype", "modelrun"],
            "'modelrun' is not a Provena item subtype (did you mean 'MODEL_RUN'?)",
        ),
        (["find", "  "], "TEXT '  ' is empty"),
        (["find", "a\x1b[2Jb"], "holds control characters"),
        (["record", "x" * 300], "longer than 200 characters"),
        (
            ["find", "x", "--linked-to", STUDY_48, "--subtype", "STUDY"],
            "--linked-to finds model runs, not STUDY",
        ),
    ],
)
def test_input_that_cannot_name_a_record_is_refused_before_any_read(
    cli: Any, args: list[str], said: str
) -> None:
    refused = cli(*args)
    assert refused.code == 1
    assert said in refused.stderr and "hint: " in refused.stderr and "Traceback" not in refused.stderr
