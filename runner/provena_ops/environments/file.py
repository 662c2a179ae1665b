"""Provena's tooling environments file (`{"envs": [...]}`), read unchanged, plus provena-ops' extension.

An admin's existing environments.json must work as it is, so the models mirror Provena's
ToolingEnvironment (unknown keys ignored, every override optional) and our additions live under one
`provena_ops` key that Provena's own tooling ignores. Endpoints are derived as Provena derives them
(contract section 1), with `--param id:value` replacements whose values may contain ':'.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

import provena_ops.safety.strict_json as strict_json
from provena_ops.environments.checks import (
    EnvironmentChecker,
    is_production_stage,
    param_value_problem,
    url_problem,
)
from provena_ops.errors import ProvenaOpsError
from provena_ops.playbook.diagnostics import Diagnostic, did_you_mean, sort_key
from provena_ops.playbook.model_errors import diagnostics_from
from provena_ops.playbook.yaml_source import SourceMap
from provena_ops.playbook.yaml_syntax import Position
from provena_ops.safety.redaction import without_userinfo

ENVIRONMENTS_VARIABLE = "PROVENA_OPS_ENVIRONMENTS"
DEFAULT_LOCATIONS = (Path("environments/environments.json"), Path("environments.json"))
SANDBOX = "sandbox"
DEFAULT_SANDBOX_DB = ".provena-ops/sandbox.db"

# Service -> (default host prefix, override key), as Provena derives base URLs (contract 1.1).
SERVICES: dict[str, tuple[str, str]] = {
    "registry": ("registry-api", "registry_api_endpoint_override"),
    "prov": ("prov-api", "prov_api_endpoint_override"),
    "jobs": ("job-api", "jobs_service_api_endpoint_override"),
    "search": ("search", "search_api_endpoint_override"),
    "search_service": ("search-service", "search_service_endpoint_override"),
    "auth_api": ("auth-api", "auth_api_endpoint_override"),
    "datastore": ("data-api", "datastore_api_endpoint_override"),
    "handle": ("handle", "handle_service_api_endpoint_override"),
}


class Replacement(BaseModel):
    id: str = Field(description="The parameter name given as --param id:value.")
    key: str = Field(description="The literal text replaced by the value, e.g. ${feature_number}.")


class SandboxOptions(BaseModel):
    """The environment is provena-ops' embedded sandbox, started on demand for each command."""

    model_config = ConfigDict(extra="forbid")

    db: str = Field(DEFAULT_SANDBOX_DB, description="State file, relative to the working directory.")
    seed: Literal["demo", "none"] = Field("demo", description="What an empty sandbox is seeded with.")


class AuthOptions(BaseModel):
    """How provena-ops signs in to this environment."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["sandbox", "device", "offline_token", "client_credentials"] = "device"
    client_id: str | None = Field(
        None,
        description="Keycloak client; defaults to Provena's own: client-tools (device), automated-access "
        "(offline_token). client_credentials needs the service account's client.",
    )
    username: str | None = Field(None, description="Sandbox user to act as (method sandbox).")
    token_env: str | None = Field(
        None,
        description="Environment variable holding the offline token (default PROVENA_OPS_OFFLINE_TOKEN).",
    )
    token_file: str | None = Field(None, description="File holding an offline/refresh token.")
    client_secret_env: str | None = Field(
        None,
        description="Environment variable holding the client secret (default PROVENA_OPS_CLIENT_SECRET).",
    )


class ProvenaOpsOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sandbox: SandboxOptions | None = None
    auth: AuthOptions | None = None


class ToolingEnvironment(BaseModel):
    """Provena's ToolingEnvironment, field for field; `provena_ops` is our extension."""

    model_config = ConfigDict(extra="ignore")

    name: str
    stage: str
    domain: str
    realm_name: str
    replacements: list[Replacement] = Field(default_factory=list)
    registry_api_endpoint_override: str | None = None
    prov_api_endpoint_override: str | None = None
    jobs_service_api_endpoint_override: str | None = None
    search_api_endpoint_override: str | None = None
    search_service_endpoint_override: str | None = None
    auth_api_endpoint_override: str | None = None
    datastore_api_endpoint_override: str | None = None
    handle_service_api_endpoint_override: str | None = None
    keycloak_endpoint_override: str | None = None
    aws_region: str = "ap-southeast-2"
    provena_ops: ProvenaOpsOptions | None = None

    @property
    def is_sandbox(self) -> bool:
        return self.provena_ops is not None and self.provena_ops.sandbox is not None

    @property
    def is_production(self) -> bool:
        """Fail safe: only a known non-production stage is not production."""
        return is_production_stage(self.stage)


class ToolingEnvironmentsFile(BaseModel):
    envs: list[ToolingEnvironment]


BUILTIN_SANDBOX = ToolingEnvironment(
    name=SANDBOX,
    stage="DEV",
    domain="sandbox.localhost",
    realm_name="provena",
    provena_ops=ProvenaOpsOptions(
        sandbox=SandboxOptions(),
        auth=AuthOptions(method="sandbox", username="admin"),
    ),
)


_ENVIRONMENT: TypeAdapter[ToolingEnvironment] = TypeAdapter(ToolingEnvironment)


class CheckedEnvironments(Mapping[str, ToolingEnvironment]):
    """Environments kept as their checked JSON, each made into a model when it is used: a file of
    100,000 environments would otherwise weigh more as models than as JSON and checks together."""

    def __init__(self, entries: Mapping[str, dict[str, Any] | ToolingEnvironment]) -> None:
        self._entries = dict(entries)

    def __getitem__(self, name: str) -> ToolingEnvironment:
        entry = self._entries[name]
        if not isinstance(entry, ToolingEnvironment):
            entry = _ENVIRONMENT.validate_python(entry, strict=True)
            self._entries[name] = entry
        return entry

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True)
class Environments:
    """The environments a command can target, and where they were read from."""

    envs: Mapping[str, ToolingEnvironment]
    source: str  # the file, or "built-in" when no file was found
    # The variables these environments name for secrets (a playbook's env() may not read them).
    credential_variables: frozenset[str] = frozenset()

    @property
    def names(self) -> list[str]:
        return list(self.envs)

    @property
    def where(self) -> str:
        """Where a name was looked for, for messages."""
        if self.source == "built-in":
            return "the built-in environments (no environments file was found)"
        return self.source

    def get(self, name: str) -> ToolingEnvironment:
        env = self.envs.get(name)
        if env is None:
            raise ProvenaOpsError(
                f"environment '{name}' is not defined in {self.where}",
                hint=unknown_environment_hint(name, self.names),
            )
        return env


def unknown_environment_hint(name: str, known: Sequence[str]) -> str:
    suggestion = did_you_mean(name, known)
    listing = f"known environments: {', '.join(known)}"
    return (
        f"did you mean '{suggestion}'? {listing}" if suggestion else f"{listing}; or pass --environments FILE"
    )


class EnvironmentsFileError(ProvenaOpsError):
    def __init__(self, file: str, diagnostics: list[Diagnostic]) -> None:
        super().__init__(
            f"{file} is not a valid environments file:\n" + "\n".join(d.render() for d in diagnostics),
            hint='the file follows Provena\'s ToolingEnvironmentsFile format: {"envs": [{"name": ...}]}',
        )
        self.diagnostics = diagnostics

    def render(self) -> str:
        """Each problem as `file:line:column: error: ...`, like playbook diagnostics."""
        return "\n".join(d.render() for d in self.diagnostics) + f"\nhint: {self.hint}"


def find_environments_file(explicit: Path | None, cwd: Path | None = None) -> Path | None:
    if explicit is not None:
        return explicit
    from_env = os.environ.get(ENVIRONMENTS_VARIABLE)
    if from_env:
        return Path(from_env)
    base = cwd or Path.cwd()
    for candidate in DEFAULT_LOCATIONS:
        if (base / candidate).is_file():
            return base / candidate
    return None


MAX_ENVIRONMENTS_BYTES = 64 * 1024 * 1024
JSON_SYNTAX_HINT = "check for a missing comma or quote, or a trailing comma, near here"


def load_environments(explicit: Path | None = None, cwd: Path | None = None) -> Environments:
    """The file's environments, plus the built-in sandbox unless the file defines its own `sandbox`."""
    path = find_environments_file(explicit, cwd)
    if path is None:
        return Environments({SANDBOX: BUILTIN_SANDBOX}, "built-in")
    parsed = parse_environments(str(path), read_environments_text(path))
    return environments_of(parsed, str(path))


def environments_of(checked: list[dict[str, Any]], source: str) -> Environments:
    """The checked environments (JSON objects), plus the built-in sandbox unless they define their own."""
    entries: dict[str, dict[str, Any] | ToolingEnvironment] = {}
    if SANDBOX not in {env["name"] for env in checked}:
        entries[SANDBOX] = BUILTIN_SANDBOX
    credentials: set[str] = set()
    for env in checked:
        entries[env["name"]] = env
        auth = (env.get("provena_ops") or {}).get("auth") or {}
        credentials.update(auth[name] for name in ("token_env", "client_secret_env") if auth.get(name))
    return Environments(CheckedEnvironments(entries), source, frozenset(credentials))


def read_environments_text(path: Path) -> str:
    try:
        if path.is_dir():
            raise ProvenaOpsError(f"environments file {path} is a directory", hint="name the JSON file in it")
        if path.exists() and not path.is_file():
            raise ProvenaOpsError(
                f"environments file {path} is not a regular file (a device, pipe or socket)",
                hint="name the environments JSON file itself",
            )
        with path.open("rb") as file:
            raw = file.read(MAX_ENVIRONMENTS_BYTES + 1)
    except FileNotFoundError:
        raise ProvenaOpsError(
            f"environments file {path} does not exist",
            hint=f"check --environments or ${ENVIRONMENTS_VARIABLE}; the shipped file is "
            "environments/environments.json",
        ) from None
    except OSError as exc:
        raise ProvenaOpsError(f"cannot read environments file {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_ENVIRONMENTS_BYTES:
        raise ProvenaOpsError(
            f"environments file {path} is larger than {MAX_ENVIRONMENTS_BYTES // 1024 // 1024} MB",
            hint="check the path: this is not an environments file",
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ProvenaOpsError(
            f"environments file {path} is not UTF-8 text (invalid byte at offset {exc.start})",
            hint="re-save it as UTF-8 JSON",
        ) from None


def parse_environments(file: str, raw: str) -> list[dict[str, Any]]:
    """The environments' JSON objects, checked, or EnvironmentsFileError listing every error (warnings
    are `check_environments`')."""
    parsed, diagnostics = check_environments(file, raw)
    errors = [diagnostic for diagnostic in diagnostics if diagnostic.severity == "error"]
    if errors or parsed is None:
        raise EnvironmentsFileError(file, errors)
    return parsed


def check_environments(file: str, raw: str) -> tuple[list[dict[str, Any]] | None, list[Diagnostic]]:
    """Every problem of an environments file, offline, each at its line and column; the environments'
    JSON objects when there is no error. Each environment is made into a model for its checks only
    (`CheckedEnvironments` makes them again on use)."""
    try:
        data = strict_json.loads(raw, hints={"syntax": JSON_SYNTAX_HINT})
    except strict_json.JsonProblem as problem:
        return None, [
            Diagnostic(
                file=file,
                line=problem.line,
                column=problem.column,
                path=problem.path,
                message=problem.message,
                expected=problem.expected,
                hint=problem.hint,
            )
        ]
    source = _LazySource(file, raw)
    envs = data.get("envs") if isinstance(data, dict) else None
    if not isinstance(envs, list) or not all(isinstance(env, dict) for env in envs):
        return None, _shape_errors(data, source)
    found: list[Diagnostic] = []

    def report(
        path: tuple[str | int, ...],
        message: str,
        expected: str,
        hint: str,
        severity: Literal["error", "warning"],
        at_key: bool,
    ) -> None:
        found.append(source.map().diagnostic(path, message, expected, hint, key=at_key, severity=severity))

    checker = EnvironmentChecker(report)
    first: dict[str, int] = {}
    folded: dict[str, str] = {}  # case-folded name -> the name as first written
    for index, entry in enumerate(envs):
        try:
            env = _ENVIRONMENT.validate_python(entry, strict=True)  # strict: "stage": 1 is refused
        except ValidationError:
            return None, _shape_errors(data, source)
        checker.check(index, entry, env)
        if env.name in first:
            report(
                ("envs", index, "name"),
                f"environment '{env.name}' is defined twice (also envs[{first[env.name]}])",
                "each environment name once",
                "rename or remove one of the two",
                "error",
                False,
            )
        elif env.name.casefold() in folded and folded[env.name.casefold()] != env.name:
            report(
                ("envs", index, "name"),
                f"environment '{env.name}' differs from '{folded[env.name.casefold()]}' only in case: "
                "one is easily taken for the other (-e is exact)",
                "names that differ in more than case",
                "rename one of the two",
                "error",
                False,
            )
        if env.name == SANDBOX and not env.is_sandbox:
            report(
                ("envs", index, "name"),
                f"the environment named '{SANDBOX}' is not a sandbox: the name is the embedded sandbox's, "
                "the default target of a newcomer's rehearsal",
                f"a '{SANDBOX}' entry with provena_ops.sandbox settings, or another name",
                "give this deployment its own name",
                "error",
                False,
            )
        first.setdefault(env.name, index)
        folded.setdefault(env.name.casefold(), env.name)
    found.sort(key=sort_key)
    if any(diagnostic.severity == "error" for diagnostic in found):
        return None, found
    return envs, found


def _shape_errors(data: Any, source: _LazySource) -> list[Diagnostic]:
    """Every type and structure error of the file at once, located (only when there is one)."""
    try:
        ToolingEnvironmentsFile.model_validate(data, strict=True)
    except ValidationError as exc:
        return diagnostics_from(exc, ToolingEnvironmentsFile, data, source.map(), dialect="json")
    raise AssertionError("an environment failed validation alone but not within its file")


class _LazySource:
    """Positions are found only when there is something to report: a valid file costs one C parse."""

    def __init__(self, file: str, raw: str) -> None:
        self.file = file
        self.raw = raw
        self._map: SourceMap | None = None

    def map(self) -> SourceMap:
        if self._map is None:
            values, keys = strict_json.positions(self.raw)
            self._map = SourceMap(
                self.file,
                values={path: Position(*place) for path, place in values.items()},
                keys={path: Position(*place) for path, place in keys.items()},
            )
        return self._map


def parse_params(pairs: Sequence[str]) -> dict[str, str]:
    """`--param id:value` pairs, split on the first ':'; each value must be safe inside a URL."""
    params: dict[str, str] = {}
    for pair in pairs:
        name, separator, value = pair.partition(":")
        if not separator or not name:
            raise ProvenaOpsError(
                f"--param {pair!r} is not of the form id:value",
                hint="write --param feature_number:1234",
            )
        if name in params:
            raise ProvenaOpsError(
                f"--param {name} is given twice ({params[name]!r} and {value!r})",
                hint=f"give --param {name}:VALUE once",
            )
        problem = param_value_problem(value)
        if problem is not None:
            raise ProvenaOpsError(
                f"--param {pair!r}: the value of {name} is refused: {problem}",
                hint=f"write --param {name}:VALUE, e.g. --param {name}:1234",
            )
        params[name] = value
    return params


def missing_params(env: ToolingEnvironment, params: Mapping[str, str]) -> list[str]:
    return [replacement.id for replacement in env.replacements if replacement.id not in params]


@dataclass(frozen=True)
class Endpoints:
    registry: str
    prov: str
    jobs: str
    search: str
    keycloak: str
    others: dict[str, str]


def derive_endpoints(env: ToolingEnvironment, params: Mapping[str, str]) -> Endpoints:
    """Base URLs as Provena derives them: the override, else https://<prefix>.<domain>; then replacements."""
    missing = missing_params(env, params)
    if missing:
        raise ProvenaOpsError(
            f"environment '{env.name}' needs value(s) for {', '.join(missing)}",
            hint="pass "
            + " ".join(f"--param {name}:VALUE" for name in missing)
            + ", or set them under params:",
        )

    def finish(url: str) -> str:
        for replacement in env.replacements:
            url = url.replace(replacement.key, params[replacement.id])
        problem = url_problem(url) or param_problem()
        if problem is None and "${" in url:
            problem = "a ${...} is left in it after the replacements"
        if problem is not None:  # the offline checks make this unreachable; the token is at stake
            raise ProvenaOpsError(
                f"environment '{env.name}': the endpoint {without_userinfo(url)} is refused: {problem}",
                hint="run `provena-ops validate --environments FILE` and correct what it reports",
            )
        return url.rstrip("/")

    def param_problem() -> str | None:
        for name, value in params.items():
            problem = param_value_problem(value)
            if problem is not None:
                return f"the value of {name} is refused: {problem}"
        return None

    urls = {
        service: finish(getattr(env, override) or f"https://{prefix}.{env.domain}")
        for service, (prefix, override) in SERVICES.items()
    }
    keycloak = finish(
        env.keycloak_endpoint_override or f"https://auth.{env.domain}/auth/realms/{env.realm_name}"
    )
    return Endpoints(
        registry=urls.pop("registry"),
        prov=urls.pop("prov"),
        jobs=urls.pop("jobs"),
        search=urls.pop("search"),
        keycloak=keycloak,
        others=urls,
    )
