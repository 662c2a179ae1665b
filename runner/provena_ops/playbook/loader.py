"""Playbook file -> validated Playbook, or every problem in it at once: read, parse, template, check."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any

from pydantic import TypeAdapter, ValidationError

from provena_ops.environments.checks import param_value_problem
from provena_ops.environments.file import Environments, missing_params, unknown_environment_hint
from provena_ops.playbook.checks import check_operations
from provena_ops.playbook.diagnostics import Diagnostic, KeyPath, did_you_mean, format_path, sort_key
from provena_ops.playbook.model import VERBATIM, Operation, Playbook
from provena_ops.playbook.model_errors import diagnostics_from
from provena_ops.playbook.template_sandbox import Budget
from provena_ops.playbook.templating import RESERVED_NAMES, Renderer, TemplateProblem, is_template
from provena_ops.playbook.text_checks import check_text
from provena_ops.playbook.yaml_source import (
    MAX_BYTES,
    SourceMap,
    YamlLoadError,
    load_yaml,
    read_text,
    unusual_spelling,
)

# Keys read before templating: they configure it, so they cannot use it.
_UNTEMPLATED = ("version", "vars", "params")
_OPERATION: TypeAdapter[Operation] = TypeAdapter(Operation)


@dataclass
class LoadedPlaybook:
    file: str
    playbook: Playbook | None
    source: SourceMap | None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    # The environment the playbook targets after `--environment`, and the replacement values in force.
    environment: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)  # --var and --var-file values in force

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def valid(self) -> bool:
        return self.playbook is not None and not self.errors


def load_playbook(
    path: FilePath,
    *,
    environments: Environments | None = None,
    environment: str | None = None,
    params: Mapping[str, str] | None = None,
    variables: Mapping[str, Any] | None = None,
) -> LoadedPlaybook:
    """Load and validate offline. `environment`, `params` and `variables` (--var) are the command
    line's overrides."""
    with _collector_paused():
        return _load(path, environments, environment, params, variables or {})


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Loading builds hundreds of thousands of small objects and no cycles; the cyclic GC only slows it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _load(
    path: FilePath,
    environments: Environments | None,
    environment: str | None,
    params: Mapping[str, str] | None,
    variables: Mapping[str, Any],
) -> LoadedPlaybook:
    file = str(path)
    try:
        if path.exists() and not path.is_dir() and not path.is_file():
            return _failed(
                file,
                "this is not a regular file (a device, pipe or socket)",
                "a path to a playbook file",
                "name the playbook file itself",
            )
        with path.open("rb") as opened:
            raw = opened.read(MAX_BYTES + 1)  # a larger file is refused by its size, unread
    except FileNotFoundError:
        return _failed(
            file, "the file does not exist", "a path to a playbook file", "check the path and the spelling"
        )
    except IsADirectoryError:
        return _failed(file, "this is a directory", "a path to a playbook file", "name a .yaml file in it")
    except OSError as exc:
        return _failed(
            file, f"cannot read the file: {exc.strerror}", "a readable playbook file", "check permissions"
        )
    if _looks_like_saved_plan(raw):
        return _failed(
            file,
            "this is a saved plan (written by `provena-ops plan --out`), not a playbook",
            "a YAML playbook",
            f"apply a saved plan with `provena-ops apply --plan {file}`",
        )
    try:
        loaded = load_yaml(file, read_text(file, raw))
    except YamlLoadError as exc:
        return LoadedPlaybook(file, None, None, sorted(exc.diagnostics, key=sort_key))
    result = validate_data(loaded.data, loaded.source, environments, environment, params or {}, variables)
    result.diagnostics = sorted([*loaded.diagnostics, *result.diagnostics], key=sort_key)
    if any(d.severity == "error" for d in loaded.diagnostics):
        result.playbook = None
    return result


def _looks_like_saved_plan(raw: bytes) -> bool:
    head = raw[:4096].lstrip()
    return head.startswith(b"{") and b'"plan_format"' in head


def is_saved_plan(path: FilePath) -> bool:
    """Whether `path` holds a saved plan (commands that take a playbook say what to do with one)."""
    try:
        if not path.is_file():
            return False
        with path.open("rb") as file:
            return _looks_like_saved_plan(file.read(4096))
    except OSError:
        return False


def validate_data(
    data: dict[str, Any],
    source: SourceMap,
    environments: Environments | None,
    environment: str | None,
    cli_params: Mapping[str, str],
    cli_vars: Mapping[str, Any] | None = None,
) -> LoadedPlaybook:
    found: list[Diagnostic] = []
    credentials = environments.credential_variables if environments is not None else frozenset()
    rendered, broken, native = _render(data, source, cli_params, found, credentials, cli_vars or {})
    playbook: Playbook | None = None
    try:
        playbook = Playbook.model_validate(rendered)
        operations = list(enumerate(playbook.operations))
    except ValidationError as exc:
        skip = broken | source.rejected
        found.extend(diagnostics_from(exc, Playbook, rendered, source, skip=skip, templated=native))
        operations = _valid_operations(rendered.get("operations"))
    params = {**_string_params(rendered.get("params")), **cli_params}
    for name, value in cli_params.items():
        problem = param_value_problem(value)
        if problem is not None:
            found.append(
                Diagnostic(
                    file=source.file, line=None, column=None, path="",
                    message=f"--param {name}: the value is refused: {problem}",
                    expected="letters, digits, '-' and '.' between them",
                    hint=f"write --param {name}:VALUE, e.g. --param {name}:1234",
                )
            )  # fmt: skip
    target = environment or (
        rendered.get("environment") if isinstance(rendered.get("environment"), str) else None
    )
    found.extend(_unusual_spellings(data, source, found))
    damaged = {path[1] for path in source.rejected if len(path) > 1 and path[0] == "operations"}
    found.extend(check_operations([(i, op) for i, op in operations if i not in damaged], source))
    verbatim = {("operations", index, part) for index, part in verbatim_parts(data)}
    found.extend(check_text(data, rendered, source, broken | verbatim))
    if environments is not None and target:
        declared_params = _string_params(rendered.get("params"))
        found.extend(
            _environment_checks(
                source, environments, target, environment is not None, params, declared_params
            )
        )
    result = LoadedPlaybook(source.file, playbook, source, found, target, params, dict(cli_vars or {}))
    if result.errors:
        result.playbook = None
    return result


def _render(
    data: dict[str, Any],
    source: SourceMap,
    cli_params: Mapping[str, str],
    found: list[Diagnostic],
    credentials: frozenset[str] = frozenset(),
    cli_vars: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], set[KeyPath], dict[KeyPath, str]]:
    """Render templates: params first (env only), then vars in order, then the rest of the document.

    Returns the rendered document, the paths of strings that failed (reported already), and the paths
    whose whole-string template produced a non-string value.
    """
    problems: list[TemplateProblem] = []
    budget = Budget()  # all of the playbook's templates together
    version = data.get("version")
    if isinstance(version, str) and is_template(version):
        problems.append(
            TemplateProblem(
                ("version",),
                "version is read before templating, so it cannot use {{ }}",
                "version: 1",
                "write `version: 1`",
            )
        )
    rendered: dict[str, Any] = dict(data)
    native: dict[KeyPath, str] = {}
    raw_params = data.get("params")
    if isinstance(raw_params, dict):
        bare = Renderer({}, {}, budget, credentials)
        rendered["params"] = {
            key: bare.render_tree(value, ("params", key), problems) for key, value in raw_params.items()
        }
    params = {**_string_params(rendered.get("params")), **cli_params}
    raw_vars = data.get("vars")
    variables: dict[str, Any] = {}
    reserved: set[KeyPath] = set()
    given = dict(cli_vars or {})
    declared = [str(name) for name in raw_vars] if isinstance(raw_vars, dict) else []
    for name in given:
        if name not in declared:
            close = did_you_mean(name, declared)
            found.append(
                Diagnostic(
                    file=source.file, line=None, column=None, path="vars",
                    message=f"--var {name}: the playbook declares no variable {name!r} under vars: "
                    f"(declared: {', '.join(declared) or 'none'})",
                    expected="the name of a variable under vars:",
                    hint=f"did you mean {close!r}?" if close else f"declare it (vars: {{{name}: default}}) "
                    "or leave the --var out",
                )
            )  # fmt: skip
    if isinstance(raw_vars, dict):
        for name, value in raw_vars.items():
            if name in given:  # the command line's value, as given: not templated, like a value in a file
                variables[name] = given[name]
                continue
            if name in RESERVED_NAMES:
                found.append(
                    _at(
                        source,
                        ("vars", name),
                        f"'{name}' is a reserved name in templates",
                        f"a variable name other than {', '.join(RESERVED_NAMES)}",
                        f"rename the variable; {{{{ {name} }}}} always means the built-in {name}",
                        key=True,
                    )
                )
                reserved.add(("vars", name))
                continue
            renderer = Renderer(variables, params, budget, credentials)
            variables[name] = renderer.render_tree(value, ("vars", name), problems)
        rendered["vars"] = variables
    renderer = Renderer(variables, params, budget, credentials)
    kept = verbatim_parts(data)
    for key, value in data.items():
        if key == "operations" and kept:
            value = [
                {k: v for k, v in op.items() if (index, k) not in kept} if isinstance(op, dict) else op
                for index, op in enumerate(value)
            ]
        if key not in _UNTEMPLATED:
            rendered[key] = renderer.render_tree(value, (key,), problems)
    for index, part in kept:
        rendered["operations"][index][part] = data["operations"][index][part]
    native.update(renderer.native)
    for problem in problems:
        found.append(_at(source, problem.path, problem.message, problem.expected, problem.hint))
    return rendered, {problem.path for problem in problems} | reserved, native


def verbatim_parts(data: Any) -> set[tuple[int, str]]:
    """(operation index, key) of the parts kept as written (model.VERBATIM): records as Provena held
    them are neither templated nor held to the playbook's text rules."""
    operations = data.get("operations") if isinstance(data, dict) else None
    if not isinstance(operations, list):
        return set()
    return {
        (index, VERBATIM[op["op"]])
        for index, op in enumerate(operations)
        if isinstance(op, dict) and isinstance(op.get("op"), str) and VERBATIM.get(op["op"]) in op
    }


def _unusual_spellings(data: Any, source: SourceMap, found: list[Diagnostic]) -> list[Diagnostic]:
    """Unquoted values YAML 1.1 reads otherwise than they look (`yes`, `0x1`, `+1`, `190:20:30`) where
    nothing else has said so (a field that wants text reports its own error)."""
    said = {diagnostic.path for diagnostic in found}
    unusual: list[Diagnostic] = []
    for path, written in source.plain_non_strings.items():
        value: Any = data
        try:
            for part in path:
                value = value[part]
        except (KeyError, IndexError, TypeError):
            continue  # a merged value an explicit key replaced
        spelling = unusual_spelling(value, written)
        if spelling is not None and format_path(path) not in said:
            unusual.append(source.diagnostic(path, *spelling))
    return unusual


def _valid_operations(raw: Any) -> list[tuple[int, Operation]]:
    """The operations that validate on their own, so cross-operation checks run despite other errors."""
    if not isinstance(raw, list):
        return []
    valid: list[tuple[int, Operation]] = []
    for index, item in enumerate(raw):
        try:
            valid.append((index, _OPERATION.validate_python(item)))
        except ValidationError:
            continue
    return valid


def _string_params(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(key): str(item) for key, item in value.items() if isinstance(item, str | int | float)}


def _environment_checks(
    source: SourceMap,
    environments: Environments,
    name: str,
    from_flag: bool,
    params: Mapping[str, str],
    playbook_params: Mapping[str, str],
) -> list[Diagnostic]:
    origin = " (from --environment)" if from_flag else ""
    if name not in environments.envs:
        return [
            _at(
                source,
                ("environment",),
                f"'{name}'{origin} is not defined in {environments.where}",
                "the name of an environment in the environments file",
                unknown_environment_hint(name, environments.names),
            )
        ]
    env = environments.envs[name]
    unsafe = [
        _at(
            source,
            ("params", param),
            f"the value of '{param}' is refused: {problem}",
            "letters, digits, '-' and '.' between them (values are spliced into endpoint URLs)",
            f"give {param} a value such as 1234",
        )
        for param, value in playbook_params.items()
        if (problem := param_value_problem(value)) is not None
    ]
    missing = missing_params(env, params)
    known = [replacement.id for replacement in env.replacements]
    unused = [
        _at(
            source,
            ("params", param),
            f"'{param}' is not a replacement of environment '{name}'",
            f"one of: {', '.join(known)}" if known else "no params (this environment has no replacements)",
            f"did you mean '{suggestion}'?" if (suggestion := did_you_mean(param, known)) else "remove it",
            key=True,
        ).model_copy(update={"severity": "warning"})
        for param in playbook_params
        if param not in known
    ]
    unused.extend(
        Diagnostic(
            file=source.file,
            line=None,
            column=None,
            path="",
            severity="warning",
            message=f"--param {param} is not a replacement of environment '{name}'",
            expected=f"one of: {', '.join(known)}" if known else "no --param (this environment has none)",
            hint=f"did you mean '{suggestion}'?" if (suggestion := did_you_mean(param, known)) else "drop it",
        )
        for param in params
        if param not in known and param not in playbook_params
    )
    if not missing:
        return [*unused, *unsafe]
    return [
        *unused,
        *unsafe,
        _at(
            source,
            ("params",) if ("params",) in source.values else ("environment",),
            f"environment '{name}' needs a value for {', '.join(missing)}",
            f"params: with {', '.join(missing)} (the environment's replacements)",
            "add "
            + ", ".join(f"`{m}: ...`" for m in missing)
            + " under params:, or pass "
            + " ".join(f"--param {m}:VALUE" for m in missing),
        ),
    ]


def _at(
    source: SourceMap, path: KeyPath, message: str, expected: str, hint: str, key: bool = False
) -> Diagnostic:
    return source.diagnostic(path, message, expected, hint, key=key)


def _failed(file: str, message: str, expected: str, hint: str) -> LoadedPlaybook:
    return LoadedPlaybook(
        file,
        None,
        None,
        [
            Diagnostic(
                file=file, line=None, column=None, path="", message=message, expected=expected, hint=hint
            )
        ],
    )
