"""`undo`: a run put back from its journal, over HTTP against the sandbox, as an admin would check it:
the registry and graph exported before the run and after its undo are the same (less history entries and
timestamps); drift is refused; undoing an undo redoes; old, partial and hostile journals."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from provena_ops.apply.journal import RequestSent, RunStarted, journals, read_events
from provena_ops.apply.review import NotApplied
from provena_ops.apply.run import ApplyOptions, ApplyResult
from provena_ops.apply.undo import NothingToUndo, UndoRequest, plan_undo, undo
from provena_ops.environments.target import TargetArgs
from provena_ops.errors import ProvenaOpsError
from provena_ops.plan.model import Plan
from provena_ops.sandbox import RunningSandbox
from provena_ops.sandbox import admin as sandbox_admin
from tests.apply.conftest import FAST, ApplyOn, RecordingUI, history_length
from tests.conftest import Api
from tests.plan.conftest import playbook
from tests.plan.test_plan_rules import RUN_ROUTE, RUNS_OF_51, STUDY_48, STUDY_51, STUDY_ROUTE, run_id

EXAMPLES = Path(__file__).parents[2] / "playbooks" / "examples"
BOOKKEEPING = ("history", "created_timestamp", "updated_timestamp")


def exported(server: RunningSandbox, out: Path) -> dict[str, Any]:
    """The sandbox as `sandbox export` writes it, less what every write changes by itself."""
    text, _ = sandbox_admin.export(server.settings.db_path)
    out.write_text(text)
    return comparable(json.loads(text))


def comparable(document: dict[str, Any]) -> dict[str, Any]:
    items = {}
    for bundle in document["items"]:
        item = {k: v for k, v in bundle["item_payload"].items() if k not in BOOKKEEPING}
        items[bundle["id"]] = (item, bundle["auth_payload"], bundle["lock_payload"])
    return {"items": items, "graph": document["graph"]}


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What an admin diffing the two exports would see, record by record."""
    found = [
        f"{record}: {'absent after' if record not in after['items'] else 'absent before' if record not in before['items'] else 'differs'}"  # noqa: E501
        for record in sorted(set(before["items"]) | set(after["items"]))
        if before["items"].get(record) != after["items"].get(record)
    ]
    for part in ("nodes", "links"):
        old = {json.dumps(e, sort_keys=True) for e in before["graph"][part]}
        new = {json.dumps(e, sort_keys=True) for e in after["graph"][part]}
        found += [f"graph {part} lost: {e}" for e in sorted(old - new)[:3]]
        found += [f"graph {part} gained: {e}" for e in sorted(new - old)[:3]]
    return found


UndoOn = Callable[..., ApplyResult]


@pytest.fixture
def undo_on(
    api: Api, environments_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[UndoOn]:
    """undo_on(run="last", ui=RecordingUI(), force=(), **apply options) -> ApplyResult, as apply_on."""

    def run(
        run: str = "last", ui: RecordingUI | None = None, force: tuple[str, ...] = (), **options: Any
    ) -> ApplyResult:
        monkeypatch.setenv("PROVENA_OPS_ACCESS_TOKEN", api.token("admin", lifetime=600))
        monkeypatch.setenv("PROVENA_OPS_LOCK_DIR", str(tmp_path / "locks"))
        options.setdefault("auto_approve", True)
        options.setdefault("job_wait", FAST)
        where = TargetArgs(environments_file=environments_file, cwd=tmp_path)
        return undo(
            UndoRequest(run, frozenset(force)),
            ui or RecordingUI(),
            where=where,
            options=ApplyOptions(**options),
        )

    yield run


def planned_undo(api: Api, environments_file: Path, tmp_path: Path, run: str = "last", **kw: Any) -> Plan:
    where = TargetArgs(environments_file=environments_file, cwd=tmp_path)
    return plan_undo(UndoRequest(run, **kw), RecordingUI(), where=where)


def requests(result: ApplyResult) -> list[str]:
    return [event.request for event in read_events(result.journal) if isinstance(event, RequestSent)]


# -- round trips -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "example", sorted(p.name for p in EXAMPLES.glob("*.yaml") if p.name != "relodge-model-runs.yaml")
)
def test_every_example_is_undone_to_the_registry_and_graph_it_found(
    apply_on: ApplyOn, undo_on: UndoOn, server: RunningSandbox, tmp_path: Path, example: str
) -> None:
    before = exported(server, tmp_path / "before.json")
    applied = apply_on((EXAMPLES / example).read_text())
    assert applied.recap.succeeded and applied.recap.changed > 0
    assert differences(before, exported(server, tmp_path / "applied.json"))  # the run changed something
    undone = undo_on()
    assert undone.recap.succeeded, undone.outcomes
    assert undone.recap.changed == applied.recap.changed
    assert differences(before, exported(server, tmp_path / "after.json")) == []
    again = undo_on(applied.run_id)  # the same undo again: nothing left to do
    assert not again.plan.has_changes and requests(again) == []


def test_undo_last_passes_over_runs_that_changed_nothing(apply_on: ApplyOn, undo_on: UndoOn) -> None:
    text = playbook(f"op: delete_model_runs\nmodel_runs: [{run_id(13)}]")
    applied = apply_on(text)
    again = apply_on(text)  # the check an admin makes: nothing left to do
    assert not again.plan.has_changes
    ui = RecordingUI()
    undone = undo_on("last", ui=ui)
    assert undone.recap.changed == 1
    assert ui.notes == [f"the last 1 run(s) changed nothing; undoing {applied.run_id}"]


def test_a_relodge_is_left_as_it_is_and_undo_says_why(apply_on: ApplyOn, undo_on: UndoOn) -> None:
    applied = apply_on((EXAMPLES / "relodge-model-runs.yaml").read_text())
    assert applied.recap.changed == 1
    with pytest.raises(NothingToUndo, match="wrote nothing that undo can put back"):
        undo_on()


def test_a_study_retired_with_replace_and_remove_comes_back_before_its_runs_are_relinked(
    apply_on: ApplyOn, undo_on: UndoOn, server: RunningSandbox, api: Api, tmp_path: Path
) -> None:
    before = exported(server, tmp_path / "before.json")
    applied = apply_on(
        playbook(
            f"op: delete_studies\nlinked_model_runs: replace\nreplace_with: {STUDY_48}\nstudies:\n"
            f"  - id: {STUDY_51}\n    model_run_overrides:\n      {RUNS_OF_51[0]}: remove",
            f"op: delete_model_runs\nmodel_runs: [{run_id(13)}, {run_id(14)}]",
        )
    )
    assert applied.recap.succeeded and history_length(api, STUDY_ROUTE, STUDY_51) == -1
    undone = undo_on()
    assert undone.recap.succeeded, undone.outcomes
    study = next(a for a in undone.plan.actions if a.record_id == STUDY_51)
    assert study.kind == "restore"
    relinks = [a for a in undone.plan.actions if a.record_id in RUNS_OF_51]
    assert len(relinks) == len(RUNS_OF_51) and all(a.depends_on == [study.key] for a in relinks)
    assert all(a.reason and a.reason.startswith(f"undo of run {applied.run_id}: ") for a in relinks)
    assert differences(before, exported(server, tmp_path / "after.json")) == []


def test_undoing_an_undo_redoes_the_change(
    apply_on: ApplyOn, undo_on: UndoOn, server: RunningSandbox, tmp_path: Path
) -> None:
    applied = apply_on((EXAMPLES / "delete-studies.yaml").read_text())
    after_apply = exported(server, tmp_path / "applied.json")
    undone = undo_on()
    redone = undo_on()  # `last` is now the undo: undoing it redoes
    assert redone.recap.succeeded, redone.outcomes
    assert redone.recap.changed == applied.recap.changed
    heads = [read_events(path)[0] for path in journals(tmp_path / ".provena-ops" / "runs")]
    assert [head.undoes for head in heads if isinstance(head, RunStarted)] == [
        None,
        applied.run_id,
        undone.run_id,
    ]
    assert differences(after_apply, exported(server, tmp_path / "redone.json")) == []


# -- drift ---------------------------------------------------------------------------------------------


EDIT = "op: update_model_runs\nmodel_runs: [{run}]\nreason: {reason}\nset:\n  description: {text}"


def test_a_record_edited_after_the_run_is_refused_with_before_after_and_now_unless_forced(
    apply_on: ApplyOn, undo_on: UndoOn, api: Api, environments_file: Path, tmp_path: Path
) -> None:
    run, other = run_id(20), run_id(21)
    first = apply_on(
        playbook(
            EDIT.format(run=run, reason="typo", text="first fix"),
            EDIT.format(run=other, reason="typo", text="first fix"),
        )
    )
    apply_on(playbook(EDIT.format(run=run, reason="someone else", text="second fix")))
    edits = history_length(api, RUN_ROUTE, run)
    plan = planned_undo(api, environments_file, tmp_path, first.run_id)
    [problem] = plan.problems
    assert problem.record_id == run and "changed after the run; not overwritten" in problem.message
    assert "record.description: before the run " in problem.message
    assert "/ after it 'first fix' / now 'second fix'" in problem.message
    assert problem.hint.startswith(f"--force {run} restores it anyway")
    with pytest.raises(NotApplied, match="the plan has 1 problem"):
        undo_on(first.run_id)
    assert history_length(api, RUN_ROUTE, run) == edits  # refused: nothing written, to any record
    assert history_length(api, RUN_ROUTE, other) == edits - 2
    forced = undo_on(first.run_id, force=(run,))
    assert forced.recap.succeeded and forced.recap.changed == 2
    action = next(a for a in forced.plan.actions if a.record_id == run)
    assert any("--force" in warning for warning in action.warnings)
    unknown = planned_undo(api, environments_file, tmp_path, first.run_id, force=frozenset({"10378.1/9"}))
    assert [p.message for p in unknown.problems] == [
        f"--force names '10378.1/9', which run {first.run_id} did not change"
    ]


def test_an_id_that_exists_again_is_refused(
    apply_on: ApplyOn, undo_on: UndoOn, api: Api, environments_file: Path, tmp_path: Path
) -> None:
    run = run_id(13)
    item = api.http.get(f"{api.registry}{RUN_ROUTE}/fetch", params={"id": run}, headers=api.auth()).json()
    deleted = apply_on(playbook(f"op: delete_model_runs\nmodel_runs: [{run}]"))
    again = {**item["item"], "display_name": "A new run under the old id"}
    bundle = {
        "id": run,
        "item_payload": again,
        "auth_payload": {"id": run, "access_settings": {"owner": "admin", "general": [], "groups": {}}},
        "lock_payload": {"id": run, "lock_information": {"locked": False, "history": []}},
    }
    body = {"import_mode": "ADD_ONLY", "trial_mode": False, "items": [bundle]}
    answer = api.http.post(f"{api.registry}/admin/import", json=body, headers=api.auth())
    assert answer.json()["status"]["success"], answer.text
    [problem] = planned_undo(api, environments_file, tmp_path, deleted.run_id).problems
    assert "exists again (created after the run deleted it)" in problem.message
    assert "now 'A new run under the old id'" in problem.message


# -- partial and old journals ----------------------------------------------------------------------------


def test_an_old_journal_is_undone_as_far_as_it_can_be_and_the_plan_says_what_cannot(
    apply_on: ApplyOn, undo_on: UndoOn, api: Api, tmp_path: Path
) -> None:
    applied = apply_on(
        playbook(
            f"op: delete_model_runs\nmodel_runs: [{run_id(13)}]",
            EDIT.format(run=run_id(20), reason="typo", text="fixed"),
        )
    )
    lines = []
    for line in applied.journal.read_text().splitlines():  # as the journal of an earlier version
        event = json.loads(line)
        for field in ("access", "lock", "after", "undoes"):
            event.pop(field, None)
        lines.append(json.dumps(event))
    applied.journal.write_text("\n".join(lines) + "\n")
    undone = undo_on(applied.run_id)
    assert undone.recap.succeeded and undone.recap.changed == 2, undone.outcomes
    restored = next(a for a in undone.plan.actions if a.record_id == run_id(13))
    assert any("access settings were not journalled" in w for w in restored.warnings)
    assert any("lock history was not journalled" in w for w in restored.warnings)
    access = api.http.get(
        f"{api.registry}{RUN_ROUTE}/auth/configuration", params={"id": run_id(13)}, headers=api.auth()
    ).json()
    assert access["general"] == [] and access["groups"] == {}  # owner alone, as the plan said


def test_a_run_cut_short_is_undone_for_what_it_did(
    apply_on: ApplyOn, undo_on: UndoOn, server: RunningSandbox, tmp_path: Path
) -> None:
    """As kill -9 leaves a journal: the last action started (and its write made), its outcome lost."""
    before = exported(server, tmp_path / "before.json")
    applied = apply_on(
        playbook(
            f"op: delete_model_runs\nmodel_runs: [{run_id(13)}, {run_id(14)}]",
            EDIT.format(run=run_id(20), reason="typo", text="fixed"),
        ),
        parallelism=1,
    )
    events = applied.journal.read_text().splitlines()
    cut = max(i for i, line in enumerate(events) if '"action_started"' in line)
    applied.journal.write_text("\n".join(events[: cut + 1]) + '\n{"event": "request_sent", "ke')
    undone = undo_on(applied.run_id)
    assert undone.recap.succeeded and undone.recap.changed == 3, undone.outcomes
    assert differences(before, exported(server, tmp_path / "after.json")) == []


def test_undo_refuses_another_environment_and_guards_production(
    apply_on: ApplyOn, undo_on: UndoOn, environments_file: Path, tmp_path: Path
) -> None:
    apply_on(playbook(f"op: delete_model_runs\nmodel_runs: [{run_id(13)}]"))
    with pytest.raises(NotApplied, match="was applied to 'rehearsal', not 'other'"):
        undo(
            UndoRequest("last"),
            RecordingUI(),
            where=TargetArgs("other", environments_file=environments_file, cwd=tmp_path),
        )
    environments = json.loads(environments_file.read_text())
    environments["envs"][0]["stage"] = "PROD"
    prod = tmp_path / "prod.json"
    prod.write_text(json.dumps(environments))
    where = TargetArgs(environments_file=prod, cwd=tmp_path)
    with pytest.raises(NotApplied, match="'rehearsal' is a production environment"):
        undo(UndoRequest("last"), RecordingUI(), where=where, options=ApplyOptions(auto_approve=True))
    environments["envs"][0]["stage"] = "DEV"
    environments["envs"][0]["registry_api_endpoint_override"] = "http://127.0.0.1:9/registry-api"
    moved = tmp_path / "moved.json"
    moved.write_text(json.dumps(environments))
    with pytest.raises(NotApplied, match="nothing was read or written"):
        undo(UndoRequest("last"), RecordingUI(), where=TargetArgs(environments_file=moved, cwd=tmp_path))


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (
            lambda e: e.update(record_id="../../etc"),
            "names record ../../etc (delete_model_run), which its key",
        ),
        (
            lambda e: e.update(key="delete ../../etc", record_id="../../etc"),
            "id: String should match",
        ),
        (lambda e: e.update(before=None), "`before` is missing"),
        (lambda e: e.update(access={"owner": 5, "general": [], "groups": {}}), "access: owner: Input"),
        (lambda e: e.update(lock={"locked": "yes", "history": "x"}), "lock: locked: Input should be"),
        (lambda e: e["before"].update(id="10378.1/1"), "the image before is of '10378.1/1'"),
    ],
    ids=["record-id", "key-and-record", "no-before", "access", "lock", "before-of-another"],
)
def test_a_hostile_journal_is_refused_with_where_and_why(
    undo_on: UndoOn, apply_on: ApplyOn, damage: Callable[[dict[str, Any]], None], said: str
) -> None:
    run = run_id(13)
    applied = apply_on(playbook(f"op: delete_model_runs\nmodel_runs: [{run}]"))
    lines = applied.journal.read_text().splitlines()
    for index, line in enumerate(lines):
        event = json.loads(line)
        if event["event"] == "action_started":
            damage(event)
            lines[index] = json.dumps(event)
    applied.journal.write_text("\n".join(lines) + "\n")
    with pytest.raises(ProvenaOpsError, match=r"(cannot be|it is not) undone") as refused:
        undo_on(applied.run_id)
    assert said in refused.value.message and str(applied.journal) in refused.value.message


def test_a_journal_that_is_not_utf8_is_refused_with_its_line(undo_on: UndoOn, apply_on: ApplyOn) -> None:
    applied = apply_on(playbook(f"op: delete_model_runs\nmodel_runs: [{run_id(13)}]"))
    raw = applied.journal.read_bytes().split(b"\n")
    raw[1] = raw[1].replace(b"delete", b"del\xffete", 1)
    applied.journal.write_bytes(b"\n".join(raw))
    with pytest.raises(
        ProvenaOpsError, match=r"\.jsonl:2: not a journal event \(byte 0xff at column \d+ is not"
    ):
        undo_on(applied.run_id)


def test_a_journal_under_another_name_or_undoing_itself_is_refused(
    undo_on: UndoOn, apply_on: ApplyOn, tmp_path: Path
) -> None:
    applied = apply_on(playbook(f"op: delete_model_runs\nmodel_runs: [{run_id(13)}]"))
    stray = applied.journal.with_name("zzz.jsonl")
    stray.write_bytes(applied.journal.read_bytes())
    assert undo_on("last").recap.changed == 1  # `last` is a run id, never a stray file sorting after them
    copy = applied.journal.with_name("20261202T000000Z-000000.jsonl")
    copy.write_bytes(applied.journal.read_bytes())
    with pytest.raises(ProvenaOpsError, match=f"the journal of run {applied.run_id} is named {copy.name}"):
        undo_on("20261202T000000Z-000000")
    events = [json.loads(line) for line in applied.journal.read_text().splitlines()]
    events[0]["undoes"] = applied.run_id
    applied.journal.write_text("".join(json.dumps(event) + "\n" for event in events))
    with pytest.raises(ProvenaOpsError, match="undoes itself"):
        undo_on(applied.run_id)


def test_an_undo_under_faults_converges_in_at_most_two_runs_and_writes_nothing_twice(
    apply_on: ApplyOn, undo_on: UndoOn, server: RunningSandbox, api: Api, tmp_path: Path
) -> None:
    from tests.apply.test_fault_convergence import ALL_FAULTS
    from tests.sandbox.seeded import set_faults

    before = exported(server, tmp_path / "before.json")
    edits = {run: history_length(api, RUN_ROUTE, run) for run in RUNS_OF_51}
    applied = apply_on(
        playbook(
            f"op: delete_studies\nlinked_model_runs: replace\nreplace_with: {STUDY_48}\n"
            f"studies: [{STUDY_51}]",
            f"op: delete_model_runs\nmodel_runs: [{run_id(13)}, {run_id(14)}, {run_id(17)}]",
            EDIT.format(run=run_id(20), reason="typo", text="fixed"),
        )
    )
    assert applied.recap.succeeded and applied.recap.changed == 15
    set_faults(api, fault_rate=0.2, fault_kinds=ALL_FAULTS, retry_after_s=0)
    first = undo_on(applied.run_id, parallelism=4)
    results = [first] if first.recap.succeeded else [first, undo_on(applied.run_id, parallelism=4)]
    set_faults(api, fault_rate=0)
    unsettled = [
        (k, o.detail) for r in results for k, o in r.outcomes.items() if o.result in ("failed", "unknown")
    ]
    assert results[-1].recap.succeeded, unsettled
    assert differences(before, exported(server, tmp_path / "after.json")) == []
    for run in RUNS_OF_51:  # the apply's job and the undo's: one each, never a second
        assert history_length(api, RUN_ROUTE, run) == edits[run] + 4, run
