"""The bad-playbook corpus: each file under corpus/ must produce exactly the errors in its .expected file.

Regenerate after an intended change of wording with `pytest tests/playbook --update-golden`, then review
the diff: the expected files are the product's error messages.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from provena_ops import api
from provena_ops.environments.file import load_environments
from provena_ops.playbook.loader import LoadedPlaybook

HERE = Path(__file__).parent
CORPUS = HERE / "corpus"
CASES = sorted(CORPUS.glob("*.yaml"))


def render(loaded: LoadedPlaybook) -> str:
    lines = [diagnostic.render() for diagnostic in loaded.diagnostics]
    return "\n".join(lines) + "\n"


def validate(relative: str) -> LoadedPlaybook:
    environments = load_environments(Path("corpus/environments.json"))
    [loaded] = api.validate([Path(relative)], environments=environments)
    return loaded


def test_the_corpus_is_big_enough() -> None:
    assert len(CASES) >= 130


@pytest.mark.parametrize("case", CASES, ids=[case.stem for case in CASES])
def test_bad_playbook_gives_its_exact_errors(case: Path, in_tests_dir: None, update_golden: bool) -> None:
    loaded = validate(f"corpus/{case.name}")
    expected_file = case.with_suffix(".expected")
    actual = render(loaded)
    assert not loaded.valid, f"{case.name} should be invalid"
    assert "Traceback" not in actual
    if update_golden or not expected_file.exists():
        expected_file.write_text(actual)
        if not update_golden:
            pytest.fail(f"wrote missing {expected_file.name}; review it and commit it")
    assert actual == expected_file.read_text()
    for diagnostic in loaded.errors:
        assert diagnostic.expected and diagnostic.hint, "every error says what was expected and how to fix it"
