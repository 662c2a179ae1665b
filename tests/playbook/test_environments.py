"""Provena's environments file read unchanged, endpoint derivation as Provena does it, and params."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from provena_ops.environments.file import (
    BUILTIN_SANDBOX,
    ToolingEnvironment,
    derive_endpoints,
    load_environments,
    parse_params,
)
from provena_ops.errors import ProvenaOpsError

REPO = Path(__file__).resolve().parents[2]

# An admin's file exactly as Provena's tooling reads it: no provena_ops extension, optional keys omitted,
# an unknown key that Provena's (pydantic 1, extra=ignore) model also ignores.
ADMIN_FILE = {
    "envs": [
        {
            "name": "feature",
            "stage": "DEV",
            "domain": "dev.example.com",
            "realm_name": "example",
            "replacements": [{"id": "feature_number", "key": "${feature_number}"}],
            "registry_api_endpoint_override": "https://f${feature_number}-registry-api.dev.example.com",
            "prov_api_endpoint_override": "https://f${feature_number}-prov-api.dev.example.com",
            "some_future_key": True,
        },
        {"name": "prod", "stage": "PROD", "domain": "example.com", "realm_name": "example"},
    ]
}


def write(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "environments.json"
    path.write_text(json.dumps(content, indent=2) if not isinstance(content, str) else content)
    return path


def test_an_admins_existing_file_works_unchanged(tmp_path: Path) -> None:
    environments = load_environments(write(tmp_path, ADMIN_FILE))
    assert environments.names == ["sandbox", "feature", "prod"]  # the sandbox is always available
    assert environments.get("prod").is_production
    assert not environments.get("feature").is_sandbox


def test_derived_endpoints_follow_provenas_table() -> None:
    env = ToolingEnvironment(name="prod", stage="PROD", domain="example.com", realm_name="example")
    endpoints = derive_endpoints(env, {})
    assert endpoints.registry == "https://registry-api.example.com"
    assert endpoints.prov == "https://prov-api.example.com"
    assert endpoints.jobs == "https://job-api.example.com"
    assert endpoints.search == "https://search.example.com"
    assert endpoints.keycloak == "https://auth.example.com/auth/realms/example"
    assert endpoints.others["datastore"] == "https://data-api.example.com"
    assert endpoints.others["handle"] == "https://handle.example.com"


def test_replacements_apply_to_overrides(tmp_path: Path) -> None:
    env = load_environments(write(tmp_path, ADMIN_FILE)).get("feature")
    params = parse_params(["feature_number:1234"])
    endpoints = derive_endpoints(env, params)
    assert endpoints.registry == "https://f1234-registry-api.dev.example.com"
    assert endpoints.prov == "https://f1234-prov-api.dev.example.com"
    assert endpoints.jobs == "https://job-api.dev.example.com"  # no override: derived from the domain


@pytest.mark.parametrize(
    "value",
    [
        "1@attacker.example/?",  # would make the registry URL https://f1@attacker.example/?-registry-api...
        "https://host:8443/x",
        "a/b",
        "a?b",
        "a#b",
        "a%2fb",
        "a b",
        "..",
        "-1",
        "a\u202eb",
        "x" * 64,
    ],
)
def test_a_param_value_that_could_change_a_urls_shape_is_refused(value: str) -> None:
    with pytest.raises(ProvenaOpsError, match="the value of feature_number is refused"):
        parse_params([f"feature_number:{value}"])


def test_missing_replacement_param_is_named_with_the_flag_to_pass(tmp_path: Path) -> None:
    env = load_environments(write(tmp_path, ADMIN_FILE)).get("feature")
    with pytest.raises(ProvenaOpsError) as caught:
        derive_endpoints(env, {})
    assert caught.value.message == "environment 'feature' needs value(s) for feature_number"
    assert caught.value.hint is not None and "--param feature_number:VALUE" in caught.value.hint


@pytest.mark.parametrize("bad", ["feature_number", ":1234", ""])
def test_malformed_param_is_refused(bad: str) -> None:
    with pytest.raises(ProvenaOpsError, match="is not of the form id:value"):
        parse_params([bad])


@pytest.mark.parametrize("empty", ["feature_number:", "feature_number: "])
def test_a_param_without_a_value_is_refused(empty: str) -> None:
    with pytest.raises(
        ProvenaOpsError, match=r"the value of feature_number is refused: it (is empty|may hold)"
    ):
        parse_params([empty])


@pytest.mark.parametrize("value", ["1234", "f-12", "1.2", "Abc9"])
def test_safe_param_values_are_accepted(value: str) -> None:
    assert parse_params([f"feature_number:{value}"]) == {"feature_number": value}


def test_unknown_environment_suggests_the_closest_name(tmp_path: Path) -> None:
    environments = load_environments(write(tmp_path, ADMIN_FILE))
    with pytest.raises(ProvenaOpsError) as caught:
        environments.get("prdo")
    assert caught.value.hint == "did you mean 'prod'? known environments: sandbox, feature, prod"


def test_invalid_json_points_at_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, '{"envs": [\n  {"name": "x",}\n]}')
    with pytest.raises(ProvenaOpsError) as caught:
        load_environments(path)
    assert f"{path}:2:16: error: invalid JSON: Expecting property name enclosed in double quotes" in str(
        caught.value.message
    )


def test_missing_required_field_points_at_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, '{"envs": [\n  {"name": "x", "stage": "DEV",\n   "domain": "d"}\n]}')
    with pytest.raises(ProvenaOpsError) as caught:
        load_environments(path)
    assert f"{path}:2:3: error: envs[0].realm_name: missing required key 'realm_name'" in caught.value.message


def test_duplicate_environment_names_are_refused(tmp_path: Path) -> None:
    twice = {"envs": [ADMIN_FILE["envs"][1], ADMIN_FILE["envs"][1]]}
    with pytest.raises(
        ProvenaOpsError, match=r"envs\[1\].name: environment 'prod' is defined twice \(also envs\[0\]\)"
    ):
        load_environments(write(tmp_path, twice))


def test_missing_explicit_file_is_an_error_not_a_silent_fallback(tmp_path: Path) -> None:
    with pytest.raises(ProvenaOpsError, match="does not exist"):
        load_environments(tmp_path / "nope.json")


def test_discovery_prefers_the_variable_then_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "environments").mkdir()
    write(tmp_path / "environments", ADMIN_FILE)
    assert load_environments(cwd=tmp_path).source.endswith("environments/environments.json")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"envs": []}))
    monkeypatch.setenv("PROVENA_OPS_ENVIRONMENTS", str(other))
    assert load_environments(cwd=tmp_path).names == ["sandbox"]
    monkeypatch.delenv("PROVENA_OPS_ENVIRONMENTS")
    (tmp_path / "empty").mkdir()
    assert load_environments(cwd=tmp_path / "empty").source == "built-in"


def test_the_shipped_file_holds_the_sandbox_default() -> None:
    environments = load_environments(REPO / "environments" / "environments.json")
    sandbox = environments.get("sandbox")
    assert sandbox.is_sandbox and sandbox.provena_ops == BUILTIN_SANDBOX.provena_ops
    assert environments.get("example-prod").is_production


def test_the_environment_list_shows_where_each_registry_api_is(tmp_path: Path) -> None:
    path = write(tmp_path, ADMIN_FILE)
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    listing = [sys.executable, "-m", "provena_ops", "environments", "--environments", str(path)]
    bare = subprocess.run(listing, capture_output=True, text=True, env=env, check=False)
    assert bare.returncode == 0, bare.stderr
    assert "(needs --param feature_number)" in bare.stdout  # the override needs a value first
    assert "https://registry-api.example.com ..." in bare.stdout  # derived from prod's domain
    given = subprocess.run(
        [*listing, "--param", "feature_number:12"], capture_output=True, text=True, env=env, check=False
    )
    assert "https://f12-registry-api.dev.example.com ..." in given.stdout  # the override, not the domain
