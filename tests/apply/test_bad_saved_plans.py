"""The tampered-saved-plan corpus: each case under saved_plan_corpus/ edits a plan that `plan --out` wrote
(its text, its values, or its actions), and `apply --plan` must refuse it with exactly the words in its
.expected file, having written nothing to the registry and started no action.

Regenerate after an intended change of wording with `pytest tests/apply --update-golden`, then review
the diff: the expected files are the product's refusals.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from provena_ops.apply.journal import ActionStarted, journals, read_events
from provena_ops.errors import ProvenaOpsError
from provena_ops.plan.model import Action, Problem, summarise
from provena_ops.sandbox import RunningSandbox
from tests.apply.conftest import FAST, RecordingUI, apply_with, history_length
from tests.apply.test_apply import fetch, save_plan
from tests.apply.test_apply_cli import DELETE_51
from tests.conftest import Api, SeededTemplate
from tests.plan.test_plan_rules import RUN_ROUTE, RUNS_OF_51, STUDY_51, STUDY_ROUTE, run_id

CORPUS = Path(__file__).parent / "saved_plan_corpus"
CASES = sorted(CORPUS.glob("*.json"))
BYSTANDER = "10378.1/1690036"
WATCHED_RUNS = [*RUNS_OF_51, run_id(13), run_id(14), run_id(17), BYSTANDER]


def _steps(path: str) -> list[str | int]:
    steps: list[str | int] = []
    for part in path.split("."):
        name, _, rest = part.partition("[")
        if name:
            steps.append(name)
        while rest:
            index, _, rest = rest.partition("]")
            steps.append(int(index))
            rest = rest.removeprefix("[")
    return steps


def _parent(document: Any, path: str) -> tuple[Any, str | int]:
    *head, last = _steps(path)
    for step in head:
        document = document[step]
    return document, last


def _deep(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = [value]
    return value


def mutate(text: str, spec: dict[str, Any]) -> str | bytes:
    """The saved plan as the case leaves it."""
    if "raw" in spec:
        return str(spec["raw"])
    if "raw_hex" in spec:
        return bytes.fromhex(spec["raw_hex"])
    if "cut_after" in spec:  # at a place in the structure: a byte count would move with the port's digits
        return text[: text.index(spec["cut_after"]) + len(spec["cut_after"])]
    for find, replace in spec.get("text", []):
        assert find in text, find
        text = text.replace(find, replace, 1)
    if "text" in spec:
        return text
    plan = json.loads(text)
    for path, value in spec.get("set", {}).items():
        parent, last = _parent(plan, path)
        parent[last] = _deep(70) if value == "@deep" else value
    for path, value in spec.get("append", {}).items():
        parent, last = _parent(plan, path)
        parent[last].append(value)
    for path, index in spec.get("pop", {}).items():
        parent, last = _parent(plan, path)
        parent[last].pop(index)
    if "duplicate_action" in spec:
        plan["actions"].insert(spec["duplicate_action"], plan["actions"][spec["duplicate_action"]])
    if spec.get("reverse_actions"):
        plan["actions"].reverse()
    if "remove_action" in spec:
        plan["actions"].pop(spec["remove_action"])
    if "add_deletion" in spec:
        added = json.loads(json.dumps(plan["actions"][10]))
        added.update(key=f"delete {spec['add_deletion']}", record_id=spec["add_deletion"], display_name=None)
        plan["actions"].insert(11, added)
    if "set_fingerprint" in spec:
        plan["fingerprints"][spec["set_fingerprint"]] = "sha256:" + "1" * 64
    if spec.get("fix_summary"):
        actions = [Action.model_validate(action) for action in plan["actions"]]
        problems = [Problem.model_validate(problem) for problem in plan["problems"]]
        plan["summary"] = summarise(actions, problems).model_dump()
    if spec.get("wrap_in_array"):
        plan = [plan]
    return json.dumps(plan, indent=2, ensure_ascii=False) + "\n"


def registry_state(api: Api) -> dict[str, int]:
    state = {run: history_length(api, RUN_ROUTE, run) for run in WATCHED_RUNS}
    state[STUDY_51] = 1 if fetch(api, STUDY_ROUTE, STUDY_51) is not None else -1
    return state


def test_the_corpus_is_big_enough() -> None:
    assert len(CASES) >= 40


@dataclass(frozen=True)
class Planned:
    directory: Path
    environments: Path
    playbook: Path
    plan: str


@pytest.fixture(scope="module")
def planned(
    shared_server: RunningSandbox, seeded_template: SeededTemplate, tmp_path_factory: pytest.TempPathFactory
) -> Planned:
    """One plan of DELETE_51, made once: every case tampers with a copy of it."""
    shared_server.sandbox.restore(seeded_template.path)
    directory = tmp_path_factory.mktemp("planned")
    api = Api(shared_server)
    try:
        environments = directory / "environments.json"
        env = {"name": "rehearsal", "stage": "DEV", "domain": "sandbox.invalid", "realm_name": "provena"}
        environments.write_text(json.dumps({"envs": [{**env, **shared_server.endpoints}]}))
        saved = save_plan(api, directory, environments, DELETE_51)
        return Planned(
            directory, environments, directory / "playbook.yaml", saved.read_text(encoding="utf-8")
        )
    finally:
        api.close()


@pytest.mark.parametrize("case", CASES, ids=[case.stem for case in CASES])
def test_a_tampered_saved_plan_is_refused_with_its_exact_words_and_nothing_is_written(
    case: Path,
    planned: Planned,
    api: Api,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    update_golden: bool,
) -> None:
    spec = json.loads(case.read_text(encoding="utf-8"))
    saved = tmp_path / "plan.json"
    tampered = mutate(planned.plan, spec)
    if isinstance(tampered, bytes):
        saved.write_bytes(tampered)
    else:
        saved.write_text(tampered, encoding="utf-8")
    before = registry_state(api)
    monkeypatch.setenv("PROVENA_OPS_ACCESS_TOKEN", api.token(lifetime=600))
    monkeypatch.setenv("PROVENA_OPS_LOCK_DIR", str(tmp_path / "locks"))
    options: dict[str, Any] = {"environment": "rehearsal", **spec.get("args", {})}
    file = options.pop("file", planned.playbook)
    with pytest.raises(ProvenaOpsError) as refused:
        apply_with(
            file, RecordingUI(), plan_file=saved, environments_file=planned.environments, cwd=tmp_path,
            auto_approve=True, job_wait=FAST, **options,
        )  # fmt: skip
    words = (
        refused.value.render()
        .replace(str(tmp_path), "<tmp>")
        .replace(str(planned.directory), "<planned>")
        .replace(api.registry.removesuffix("/registry-api"), "<sandbox>")
    )
    assert registry_state(api) == before, "a refused plan changed the registry"
    started = [
        event
        for path in journals(tmp_path / ".provena-ops" / "runs")
        for event in read_events(path)
        if isinstance(event, ActionStarted)
    ]
    assert not started, "a refused plan started an action"
    expected = case.with_suffix(".expected")
    if update_golden or not expected.exists():
        expected.write_text(words + "\n", encoding="utf-8")
        if not update_golden:
            pytest.fail(f"wrote missing {expected.name}; review it and commit it")
    assert words + "\n" == expected.read_text(encoding="utf-8")
