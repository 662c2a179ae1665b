"""Loading edge cases that cannot live in the corpus as files, and what a valid playbook loads into."""

from __future__ import annotations

from pathlib import Path

import pytest

from provena_ops.environments.file import load_environments
from provena_ops.playbook.loader import LoadedPlaybook, load_playbook
from provena_ops.playbook.model import ConnectionStrategy, DeleteStudies, LinkStudies, UpdateModelRuns
from provena_ops.playbook.yaml_source import MAX_BYTES

HEADER = "version: 1\nname: t\nenvironment: sandbox\n"


def load(tmp_path: Path, text: str | bytes, name: str = "p.yaml") -> LoadedPlaybook:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return load_playbook(path, environments=load_environments(cwd=tmp_path))


def only_error(loaded: LoadedPlaybook) -> str:
    assert not loaded.valid
    assert len(loaded.errors) == 1, [d.render() for d in loaded.diagnostics]
    return loaded.errors[0].render()


def test_binary_file_is_refused_with_the_offset_of_the_first_nul(tmp_path: Path) -> None:
    message = only_error(load(tmp_path, b"version: 1\n\x00\x01\x02garbage", "image.yaml"))
    assert message.startswith(
        f"{tmp_path / 'image.yaml'}:2:1: error: this is not a text file (NUL byte at offset 11)"
    )


def test_non_utf8_file_is_refused_with_line_and_column(tmp_path: Path) -> None:
    message = only_error(load(tmp_path, HEADER.encode() + b"description: caf\xe9\n"))
    assert ":4:17: error: the file is not UTF-8 text (invalid byte 0xe9)" in message


def test_a_50_mb_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as handle:
        handle.write(HEADER.encode())
        handle.write(b"# padding\n" * (50 * 1024 * 1024 // 10))
    message = only_error(load_playbook(path, environments=load_environments(cwd=tmp_path)))
    assert f"the file is larger than {MAX_BYTES // 1024 // 1024} MB, the limit for a playbook" in message
    assert "hint: split it into several playbooks" in message


def test_missing_file_and_directory_are_named(tmp_path: Path) -> None:
    missing = load_playbook(tmp_path / "nope.yaml")
    assert only_error(missing).startswith(f"{tmp_path / 'nope.yaml'}: error: the file does not exist")
    assert "error: this is a directory" in only_error(load_playbook(tmp_path))


def test_alias_bomb_is_refused(tmp_path: Path) -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        below = f"*a{level - 1}"
        levels.append(f"a{level}: &a{level} [{', '.join([below] * 10)}]")
    text = HEADER + "vars:\n" + "".join(f"  {line}\n" for line in levels) + "operations: []\n"
    message = only_error(load(tmp_path, text))
    assert "this value expands (through aliases) to more than 2,000,000 values" in message


def test_anchors_merge_keys_and_aliases_load_as_values(tmp_path: Path) -> None:
    text = HEADER + (
        "operations:\n"
        "  - &edit\n"
        "    op: update_model_runs\n"
        "    reason: shared reason\n"
        "    model_runs: [10378.1/1690054]\n"
        "    set: {description: new text}\n"
        "  - <<: *edit\n"
        "    model_runs: [10378.1/1690055]\n"
    )
    loaded = load(tmp_path, text)
    assert loaded.valid, [d.render() for d in loaded.diagnostics]
    assert loaded.playbook is not None
    second = loaded.playbook.operations[1]
    assert isinstance(second, UpdateModelRuns)
    assert second.reason == "shared reason"
    assert [ref.handle for ref in second.model_runs] == ["10378.1/1690055"]


def test_templates_keep_native_types_and_read_params_vars_and_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPS_TICKET", "OPS-9")
    text = HEADER + (
        "params: {feature_number: '12'}\n"
        "vars:\n"
        "  runs: [10378.1/1690054, 10378.1/1690055]\n"
        "  study: 10378.1/1690050\n"
        "  reason: \"moved ({{ env('OPS_TICKET') }}, feature {{ params.feature_number }})\"\n"
        "operations:\n"
        "  - op: link_studies\n"
        "    study: '{{ study }}'\n"
        "    model_runs: '{{ runs }}'\n"
        "    reason: '{{ reason | upper }}'\n"
    )
    loaded = load(tmp_path, text)
    assert loaded.valid, [d.render() for d in loaded.diagnostics]
    assert loaded.playbook is not None
    link = loaded.playbook.operations[0]
    assert isinstance(link, LinkStudies)
    assert link.study.handle == "10378.1/1690050"
    assert [ref.handle for ref in link.model_runs] == ["10378.1/1690054", "10378.1/1690055"]
    assert link.reason == "MOVED (OPS-9, FEATURE 12)"


def test_cli_params_override_the_playbooks_own(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        HEADER.replace("sandbox", "feature")
        + "params: {feature_number: '1'}\nvars: {n: '{{ params.feature_number }}'}\n"
        "operations:\n  - op: relodge_model_runs\n    description: 'feature {{ n }}'\n"
        "    model_runs: [10378.1/1]\n"
    )
    environments = load_environments(Path(__file__).parent / "corpus" / "environments.json")
    loaded = load_playbook(path, environments=environments, params={"feature_number": "4321"})
    assert loaded.valid, [d.render() for d in loaded.diagnostics]
    assert loaded.params == {"feature_number": "4321"}
    assert loaded.playbook is not None
    assert loaded.playbook.operations[0].description == "feature 4321"


def test_environment_flag_overrides_the_playbook_and_is_named_when_unknown(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(HEADER + "operations:\n  - op: relodge_model_runs\n    model_runs: [10378.1/1]\n")
    loaded = load_playbook(path, environments=load_environments(cwd=tmp_path), environment="prod")
    message = only_error(loaded)
    assert (
        "'prod' (from --environment) is not defined in the built-in environments "
        "(no environments file was found)" in message
    )
    assert "known environments: sandbox" in message


def test_strategies_have_safe_defaults(tmp_path: Path) -> None:
    text = HEADER + "operations:\n  - op: delete_studies\n    studies: [10378.1/1690051]\n"
    loaded = load(tmp_path, text)
    assert loaded.playbook is not None
    operation = loaded.playbook.operations[0]
    assert isinstance(operation, DeleteStudies)
    assert operation.linked_model_runs is ConnectionStrategy.ABORT
    assert operation.reason is None


def test_warnings_do_not_make_a_playbook_invalid(tmp_path: Path) -> None:
    text = HEADER + "operations:\n  - op: delete_model_runs\n    model_runs: [10378.1/1, 10378.1/1]\n"
    loaded = load(tmp_path, text)
    assert loaded.valid
    [warning] = loaded.diagnostics
    assert warning.severity == "warning"
    assert (warning.line, warning.column) == (6, 29)  # the second, repeated entry
    assert "model run 10378.1/1 is listed twice in this operation" in warning.message


def test_numeric_params_are_text_as_replacements_are(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        HEADER.replace("sandbox", "feature")
        + "params: {feature_number: 42}\n"
        + "operations:\n  - op: relodge_model_runs\n    model_runs: [10378.1/1]\n"
    )
    environments = load_environments(Path(__file__).parent / "corpus" / "environments.json")
    loaded = load_playbook(path, environments=environments)
    assert loaded.valid, [d.render() for d in loaded.diagnostics]
    assert loaded.params == {"feature_number": "42"}
