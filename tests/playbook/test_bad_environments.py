"""The bad-environments-file corpus: each file under environments_corpus/ gives exactly the report in its
.expected file, as `provena-ops validate --environments FILE` prints it (diagnostics, then the verdict).

Regenerate after an intended change of wording with `pytest tests/playbook --update-golden`, then review
the diff: the expected files are the product's error messages.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from provena_ops.environments.file import check_environments, load_environments, read_environments_text
from provena_ops.errors import ProvenaOpsError
from provena_ops.text import visible

HERE = Path(__file__).parent
CORPUS = HERE / "environments_corpus"
CASES = sorted(CORPUS.glob("*.json"))


def report(relative: Path) -> tuple[bool, bool, str]:
    """(valid, any error, the report) for one file."""
    try:
        parsed, diagnostics = check_environments(str(relative), read_environments_text(relative))
    except ProvenaOpsError as exc:
        return False, True, exc.render() + "\n"
    lines = [visible(diagnostic.render()) for diagnostic in diagnostics]  # as validate prints them
    errors = [d for d in diagnostics if d.severity == "error"]
    return parsed is not None, bool(errors), "\n".join(lines) + "\n"


def test_the_corpus_is_big_enough() -> None:
    assert len(CASES) >= 50


@pytest.mark.parametrize("case", CASES, ids=[case.stem for case in CASES])
def test_bad_environments_file_gives_its_exact_report(
    case: Path, in_tests_dir: None, update_golden: bool
) -> None:
    valid, errors, actual = report(Path("environments_corpus") / case.name)
    expected_file = case.with_suffix(".expected")
    if "warning" in case.stem:
        assert valid and not errors, actual  # a warning alone does not make the file unusable
    else:
        assert errors and not valid, f"{case.name} should be refused"
    assert "Traceback" not in actual
    assert "drop the '- '" not in actual and "mapping" not in actual  # JSON files get JSON's words
    if update_golden or not expected_file.exists():
        expected_file.write_text(actual)
        if not update_golden:
            pytest.fail(f"wrote missing {expected_file.name}; review it and commit it")
    assert actual == expected_file.read_text()


def test_a_refused_file_stops_every_command_that_reads_it(in_tests_dir: None) -> None:
    with pytest.raises(ProvenaOpsError) as refused:
        load_environments(Path("environments_corpus/001-duplicate-stage.json"))
    assert 'envs[0].stage: duplicate key "stage"' in refused.value.render()
