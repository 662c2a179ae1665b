"""What an environments file must satisfy beyond its shape, checked offline before anything is contacted.

Every endpoint is where it looks: https (http only on loopback), a real host, no user-info, query or
fragment, so no replacement value or stray character can send the bearer token to another host. Every
replacement is declared, used and given a value that cannot change a URL's structure. A stage that is not
a known non-production stage is production: an unfamiliar name fails safe.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal
from urllib.parse import unquote

from provena_ops.playbook.diagnostics import KeyPath, did_you_mean
from provena_ops.safety.redaction import without_userinfo
from provena_ops.text import hidden_character

# Stages that are not production (compared case-insensitively); anything else is treated as production.
NON_PRODUCTION_STAGES = (
    "DEV",
    "DEVELOPMENT",
    "TEST",
    "TESTING",
    "STAGE",
    "STAGING",
    "LOCAL",
    "SANDBOX",
    "QA",
)
PLACEHOLDER = "x0"  # stands in for a replacement value when endpoints are checked offline
MAX_PARAM_LENGTH = 63  # one DNS label
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_PARAM_VALUE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_HOST_LABEL = re.compile(_LABEL)
_PATH = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@%/-]*")
_REPLACEMENT_ID = re.compile(r"[A-Za-z0-9_.-]+")
_REPLACEMENT_KEY = re.compile(r"\$\{[A-Za-z0-9_.-]+\}")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENVIRONMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_REALM = re.compile(r"(?!\.\.?$)[A-Za-z0-9._~-]+")
_PLACEHOLDER_SYNTAX = re.compile(r"\$\{[^}]*\}")

OVERRIDES = {
    "registry_api_endpoint_override": ("registry API", "registry-api"),
    "prov_api_endpoint_override": ("prov API", "prov-api"),
    "jobs_service_api_endpoint_override": ("job API", "job-api"),
    "search_api_endpoint_override": ("search API", "search"),
    "search_service_endpoint_override": ("search service", "search-service"),
    "auth_api_endpoint_override": ("auth API", "auth-api"),
    "datastore_api_endpoint_override": ("data store API", "data-api"),
    "handle_service_api_endpoint_override": ("handle service", "handle"),
    "keycloak_endpoint_override": ("Keycloak realm", None),
}
KNOWN_KEYS = (
    "name",
    "stage",
    "domain",
    "realm_name",
    "replacements",
    *OVERRIDES,
    "aws_region",
    "provena_ops",
)


def is_production_stage(stage: str) -> bool:
    """ASCII only: `str.upper()` turns a dotless i or a long s into I and S, so a look-alike would pass."""
    return not stage.isascii() or stage.upper() not in NON_PRODUCTION_STAGES


def param_value_problem(value: str) -> str | None:
    """Why a replacement value is refused: it is spliced into URLs, so it must not change their shape."""
    if not value:
        return "it is empty"
    if len(value) > MAX_PARAM_LENGTH:
        return f"it is {len(value)} characters long (at most {MAX_PARAM_LENGTH})"
    if _PARAM_VALUE.fullmatch(value) is None:
        return (
            "it may hold only letters, digits, '-' and '.' between them (it is spliced into host names "
            "and paths)"
        )
    return None


def url_problem(url: str) -> str | None:
    """Why an endpoint URL is refused, or None."""
    hidden = hidden_character(url)
    if hidden is not None:
        return f"it holds {hidden[1]}"
    if any(char.isspace() for char in url):
        return "it holds whitespace"
    if "\\" in url:
        return "it holds a backslash"
    scheme, separator, rest = url.partition("://")
    if not separator:
        return "it is not a URL (expected https://host/...)"
    if scheme.lower() not in ("https", "http"):
        return f"its scheme is {scheme!r}; Provena's APIs are served over https"
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    path = rest[len(authority) :].partition("?")[0].partition("#")[0].removeprefix("/")
    if "@" in authority:
        return "it has user-info ('...@') before the host: the host is what follows the '@'"
    if "?" in url:
        return "it has a query ('?...'); an endpoint is a base URL"
    if "#" in url:
        return "it has a fragment ('#...'); an endpoint is a base URL"
    host, port = _split_port(authority)
    if port is not None and not (re.fullmatch(r"[0-9]{1,5}", port) and 0 < int(port) < 65536):
        return f"its port {port!r} is not a port number"
    if not host:
        return "it has no host"
    if not _valid_host(host):
        return f"{host!r} is not a host name"
    if scheme.lower() == "http" and not _loopback(host):
        return "it uses http, which only a loopback host (127.0.0.1, ::1, localhost) may; use https"
    if _PATH.fullmatch(path) is None:
        return "its path holds characters a URL path cannot"
    if any(unquote(segment) in (".", "..") for segment in path.split("/")):  # %2e%2e too
        return "its path holds '.' or '..' segments"
    return None


def _split_port(authority: str) -> tuple[str, str | None]:
    if authority.startswith("["):
        host, _, after = authority[1:].partition("]")
        return f"[{host}]", after[1:] if after.startswith(":") else (after or None)
    host, colon, port = authority.rpartition(":")
    return (host, port) if colon else (authority, None)


def _valid_host(host: str) -> bool:
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return False
        return True
    labels = host.rstrip(".").split(".")
    return len(host) <= 253 and all(len(label) <= 63 and _HOST_LABEL.fullmatch(label) for label in labels)


def _loopback(host: str) -> bool:
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


Report = Callable[[KeyPath, str, str, str, Literal["error", "warning"], bool], None]


class EnvironmentChecker:
    """The checks of one environment, reported through `report(path, message, expected, hint, severity,
    at_key)`; `raw` is the environment's object as written (for keys the model ignores)."""

    def __init__(self, report: Report) -> None:
        self.report = report

    def error(self, path: KeyPath, message: str, expected: str, hint: str, at_key: bool = False) -> None:
        self.report(path, message, expected, hint, "error", at_key)

    def check(self, index: int, raw: Mapping[str, Any], env: Any) -> None:
        base: KeyPath = ("envs", index)
        self._strings(base, raw)
        self._unknown_keys(base, raw)
        if _ENVIRONMENT_NAME.fullmatch(env.name) is None:
            self.error(
                (*base, "name"),
                f"{env.name!r} is not an environment name",
                "letters, digits, '.', '_' and '-', starting with a letter or digit",
                "rename it: it is typed on command lines and named in plans and journals",
            )
        if not env.stage.strip():
            self.error((*base, "stage"), "the stage is empty", "DEV, TEST, STAGE or PROD", "write the stage")
        elif is_production_stage(env.stage):
            known = ", ".join(NON_PRODUCTION_STAGES)
            if env.stage.upper() != "PROD":
                self.report(
                    (*base, "stage"),
                    f"stage {env.stage!r} is not a known non-production stage, so provena-ops treats "
                    "this environment as production",
                    f"one of {known}, or PROD",
                    "apply will ask for --confirm-environment; use a known stage if that is not meant",
                    "warning",
                    False,
                )
        keys = self._replacements(base, env)
        if env.provena_ops is not None and env.provena_ops.sandbox is not None:
            self._sandbox(base, raw)
        else:
            self._endpoints(base, env, keys)
        self._auth(base, env)

    def _strings(self, base: KeyPath, raw: Any, path: KeyPath = ()) -> None:
        """No string of an environment hides characters (terminal controls, bidirectional overrides)."""
        if isinstance(raw, Mapping):
            for key, value in raw.items():
                self._strings(base, value, (*path, key))
        elif isinstance(raw, list):
            for position, value in enumerate(raw):
                self._strings(base, value, (*path, position))
        elif isinstance(raw, str):
            hidden = hidden_character(raw)
            if hidden is not None:
                self.error(
                    (*base, *path),
                    f"the text holds {hidden[1]} at character {hidden[0] + 1}",
                    "visible text",
                    "retype the value: it hides characters that make it read other than it is",
                )

    def _unknown_keys(self, base: KeyPath, raw: Mapping[str, Any]) -> None:
        for key in raw:
            if key in KNOWN_KEYS:
                continue
            suggestion = did_you_mean(key, KNOWN_KEYS)
            if suggestion is not None:
                self.error(
                    (*base, key),
                    f"unknown key {key!r}",
                    f'"{suggestion}"',
                    f'did you mean "{suggestion}"? Provena\'s tooling and provena-ops ignore unknown '
                    "keys, so a misspelt override is as if it were not there",
                    at_key=True,
                )
            else:
                self.report(
                    (*base, key),
                    f"unknown key {key!r} (ignored, as Provena's tooling ignores it)",
                    "one of the keys of Provena's ToolingEnvironment",
                    "remove it, unless another tool reads it",
                    "warning",
                    True,
                )

    def _replacements(self, base: KeyPath, env: Any) -> list[str]:
        ids: dict[str, int] = {}
        keys: dict[str, int] = {}
        fields = [value for value in _templated(env).values() if value]
        for position, replacement in enumerate(env.replacements):
            path: KeyPath = (*base, "replacements", position)
            if _REPLACEMENT_ID.fullmatch(replacement.id) is None:
                self.error(
                    (*path, "id"),
                    f"{replacement.id!r} is not a parameter name",
                    "letters, digits, '_', '.' and '-' (it is given as --param ID:VALUE)",
                    "rename the replacement's id",
                )
            if replacement.id in ids:
                self.error(
                    (*path, "id"),
                    f"replacement {replacement.id!r} is declared twice "
                    f"(also replacements[{ids[replacement.id]}])",
                    "each replacement id once",
                    "remove one of the two",
                )
            ids.setdefault(replacement.id, position)
            if not replacement.key:
                self.error(
                    (*path, "key"), "the key is empty", "a key such as ${feature_number}", "write the key"
                )
                continue
            if _REPLACEMENT_KEY.fullmatch(replacement.key) is None:
                self.error(
                    (*path, "key"),
                    f"the key {replacement.key!r} is not of the form ${{name}}",
                    "a key such as ${feature_number} (letters, digits, '_', '.' and '-' inside ${...})",
                    "write the key as ${name}: other keys can match text that earlier replacements put "
                    "into a URL, so no offline check could say where the URL goes",
                )
                continue
            if replacement.key in keys:
                self.error(
                    (*path, "key"),
                    f"the key {replacement.key} is declared twice "
                    f"(also replacements[{keys[replacement.key]}])",
                    "each replacement key once",
                    "remove one of the two",
                )
            keys.setdefault(replacement.key, position)
            if not any(replacement.key in value for value in fields):
                self.error(
                    (*path, "key"),
                    f"the key {replacement.key} appears in no endpoint override, domain or realm name",
                    "a key that an override (or the domain) contains",
                    f"use {replacement.key} in an override, or remove the replacement",
                )
        return list(keys)  # in file order: replacements apply in that order, as derive_endpoints does

    def _sandbox(self, base: KeyPath, raw: Mapping[str, Any]) -> None:
        for key in OVERRIDES:
            if raw.get(key) is not None:
                self.error(
                    (*base, key),
                    "an embedded sandbox environment takes no endpoint overrides",
                    "either provena_ops.sandbox (the embedded sandbox) or endpoint overrides (a deployment)",
                    "remove the overrides (the sandbox serves every API itself, on a loopback port of its "
                    "choosing), or remove provena_ops.sandbox to target a deployment",
                    at_key=True,
                )
                return

    def _endpoints(self, base: KeyPath, env: Any, keys: list[str]) -> None:
        unreplaced: set[str] = set()  # fields already reported: their URLs are not checked as well
        for field_name, value in _templated(env).items():
            for placeholder in _PLACEHOLDER_SYNTAX.findall(value or ""):
                if placeholder not in keys:
                    unreplaced.add(field_name)
                    self.error(
                        (*base, field_name),
                        f"{placeholder} is never replaced: no replacement has this key",
                        'a replacement {"id": ..., "key": "' + placeholder + '"} for each ${...}',
                        "declare the replacement under replacements, or write the value out",
                    )
        domain_ok = self._domain_and_realm(base, env, keys)
        for field_name, (label, prefix) in OVERRIDES.items():
            override = getattr(env, field_name)
            if override is None and not domain_ok:
                continue  # the domain (or realm) it derives from is reported once
            if override is not None:
                url, path = override, (*base, field_name)
            elif prefix is not None:
                url, path = f"https://{prefix}.{env.domain}", (*base, "domain")
            else:
                url, path = f"https://auth.{env.domain}/auth/realms/{env.realm_name}", (*base, "realm_name")
            if path[-1] in unreplaced or hidden_character(url) is not None:
                continue  # reported already, as what it holds
            shown = url
            for key in keys:
                url = url.replace(key, PLACEHOLDER)
            problem = url_problem(url)
            if problem is not None:
                derived = "" if override is not None else f" (derived from {path[-1]})"
                self.error(
                    path,
                    f"the {label} endpoint {without_userinfo(shown)}{derived} is refused: {problem}",
                    "https://host[:port][/path], with no user-info, query or fragment",
                    "correct the URL; http is only for a loopback address such as http://127.0.0.1:8765",
                )

    def _domain_and_realm(self, base: KeyPath, env: Any, keys: list[str]) -> bool:
        """The domain is a host name and the realm a path segment, when endpoints derive from them."""
        derived = [name for name in OVERRIDES if getattr(env, name) is None]
        if not derived:
            return True
        domain, realm = env.domain, env.realm_name
        for key in keys:
            domain, realm = domain.replace(key, PLACEHOLDER), realm.replace(key, PLACEHOLDER)
        ok = True
        if hidden_character(domain) is None and not _valid_host(domain):
            self.error(
                (*base, "domain"),
                f"the domain {domain!r} is not a host name",
                "a DNS name such as provena.example.org (the APIs are derived from it)",
                "correct the domain, or give every API an endpoint override",
            )
            ok = False
        if "keycloak_endpoint_override" in derived and _REALM.fullmatch(realm) is None:
            self.error(
                (*base, "realm_name"),
                f"the realm name {realm!r} is not a URL path segment",
                "letters, digits, '.', '_', '-' and '~' (the Keycloak URL ends with it)",
                "correct the realm name, or give keycloak_endpoint_override",
            )
            ok = False
        return ok

    def _auth(self, base: KeyPath, env: Any) -> None:
        auth = env.provena_ops.auth if env.provena_ops is not None else None
        if auth is None:
            return
        path: KeyPath = (*base, "provena_ops", "auth")
        if auth.method == "sandbox" and (env.provena_ops.sandbox is None):
            self.error(
                (*path, "method"),
                "auth method 'sandbox' is only for the embedded sandbox",
                "device, offline_token or client_credentials for a deployment",
                "choose the way this deployment signs in (docs/auth.md)",
            )
        for name in ("token_env", "client_secret_env"):
            value = getattr(auth, name)
            if value is not None and _VARIABLE_NAME.fullmatch(value) is None:
                self.error(
                    (*path, name),
                    f"{value!r} is not an environment variable name",
                    "letters, digits and '_', not starting with a digit",
                    "name the variable that holds the secret (never the secret itself)",
                )


def _templated(env: Any) -> dict[str, str]:
    """The fields replacements apply to: every override, and the domain and realm that derive the rest."""
    fields = {name: getattr(env, name) for name in OVERRIDES}
    fields["domain"] = env.domain
    fields["realm_name"] = env.realm_name
    return fields
