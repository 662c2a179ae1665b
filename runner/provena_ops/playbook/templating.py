"""`{{ ... }}` in playbook strings: jinja2's immutable sandbox over vars and params, and nothing else.

A playbook is reviewed as data, so templating must not become a way to run code or read files: the sandbox
blocks attribute access to Python internals, there is no loader (no include/import), huge repetitions are
refused, and environment variables are reachable only through the explicit `env()` helper.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError
from jinja2.runtime import Undefined

from provena_ops.playbook.diagnostics import KeyPath, did_you_mean
from provena_ops.playbook.template_sandbox import Budget, BudgetExceeded, PlaybookEnvironment, size

RESERVED_NAMES = ("params", "env", "vars")
_TEMPLATE_MARKERS = ("{{", "{%", "{#")
# `{{ name }}` and `{{ name.key }}` lookups: most playbook templates, substituted without compiling jinja.
_LOOKUP = re.compile(r"\{\{\s*([A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*)\s*\}\}")
_SINGLE_EXPRESSION = re.compile(r"^\{\{(?P<expr>(?:(?!\}\}|\{\{).)*)\}\}$", re.DOTALL)


class TemplateProblem(Exception):
    """A template in the playbook cannot be rendered; carries the path of the offending string."""

    def __init__(self, path: KeyPath, message: str, expected: str, hint: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.expected = expected
        self.hint = hint


# Names that hold credentials, by the words they are made of (matched anywhere, case-insensitively): the
# tool reads its own secrets, and nothing in a playbook may carry one into Provena, a plan or a journal.
CREDENTIAL_WORDS = (
    "TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL", "PRIVATE", "COOKIE",
    "PROXY",  # proxy URLs (HTTPS_PROXY) often carry user:password@
)  # fmt: skip
CREDENTIAL_VARIABLES = frozenset(
    {
        "PROVENA_OPS_ACCESS_TOKEN",
        "PROVENA_OPS_OFFLINE_TOKEN",
        "PROVENA_OPS_CLIENT_SECRET",
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "ACTIONS_RUNTIME_TOKEN",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    }
)


class CredentialRefused(Exception):
    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"env('{name}') is refused: {reason}")
        self.name = name


def _env(name: str, default: str | None = None, *, configured: frozenset[str] = frozenset()) -> str:
    """Read an environment variable; the only door from a playbook to its surroundings, closed to
    credentials."""
    reason = credential_reason(str(name), configured)
    if reason is not None:
        raise CredentialRefused(str(name), reason)
    value = os.environ.get(name)
    if value is not None:
        return value
    if default is not None:
        return str(default)
    raise UndefinedError(f"environment variable {name} is not set")


def _env_reader(configured: frozenset[str]) -> Callable[..., str]:
    """env() as templates see it: a plain function, with nothing reachable through it (a partial's
    `.func` would call the reader without the environments' own credential names)."""

    def env(name: str, default: str | None = None) -> str:
        return _env(name, default, configured=configured)

    return env


def credential_reason(name: str, configured: frozenset[str] = frozenset()) -> str | None:
    """Why env(name) may not be read, or None."""
    if name in CREDENTIAL_VARIABLES or name in configured:
        return "provena-ops reads this variable itself, for signing in"
    upper = name.upper()
    word = next((word for word in CREDENTIAL_WORDS if word in upper), None)
    if word is not None:
        return f"a variable named with {word} may hold a credential"
    return None


def is_template(value: str) -> bool:
    return any(marker in value for marker in _TEMPLATE_MARKERS)


class Renderer:
    """Renders every templated string in a value tree; whole-string expressions keep their native type."""

    def __init__(
        self,
        variables: Mapping[str, Any],
        params: Mapping[str, str],
        budget: Budget | None = None,
        credentials: frozenset[str] = frozenset(),
    ) -> None:
        self.budget = budget or Budget()
        self.environment = PlaybookEnvironment(self.budget)
        self.context: dict[str, Any] = {
            **variables,
            "vars": dict(variables),
            "params": dict(params),
            "env": _env_reader(credentials),
        }
        self.known_names = sorted(variables)
        # Paths whose whole-string template produced a list, mapping or number (path -> template text).
        self.native: dict[KeyPath, str] = {}
        self._compiled: dict[str, Callable[[], Any]] = {}

    def render_tree(self, value: Any, path: KeyPath, problems: list[TemplateProblem]) -> Any:
        """Render every string; a failing one is kept as written and its problem appended, the rest go on."""
        if isinstance(value, str):
            if not is_template(value):
                return value
            try:
                rendered = self.render_string(value, path)
            except TemplateProblem as problem:
                problems.append(problem)
                return value
            if not isinstance(rendered, str):
                self.native[path] = value
            return rendered
        if isinstance(value, list):
            return [self.render_tree(item, (*path, index), problems) for index, item in enumerate(value)]
        if isinstance(value, dict):
            return {key: self.render_tree(item, (*path, key), problems) for key, item in value.items()}
        return value

    def render_string(self, text: str, path: KeyPath) -> Any:
        try:
            compiled = self._compiled.get(text)
            if compiled is None:
                compiled = self._compile(text)
                self._compiled[text] = compiled
            return self.budget.built(compiled(), "the template's value")
        except CredentialRefused as exc:
            raise TemplateProblem(
                path,
                str(exc),
                "an environment variable that holds no credential",
                "credentials never go into a playbook (they would reach Provena, plans and journals); "
                "provena-ops reads them itself (docs/auth.md)",
            ) from None
        except UndefinedError as exc:
            raise self._undefined(path, str(exc)) from None
        except BudgetExceeded as exc:
            raise TemplateProblem(
                path,
                f"the template is over budget: {exc}",
                "a template that computes a playbook value",
                "templates substitute vars and params; compute large or repeated values outside the "
                "playbook and write them out",
            ) from None
        except RecursionError:
            raise TemplateProblem(
                path,
                "the template recurses too deeply",
                "a template without deep recursion",
                "remove the recursive macro or loop",
            ) from None
        except MemoryError:
            raise TemplateProblem(
                path,
                "the template needs more memory than this machine gives it",
                "a template that computes a playbook value",
                "write the value out instead of computing it",
            ) from None
        except SecurityError as exc:
            raise TemplateProblem(
                path,
                f"the template tried something the sandbox forbids: {exc}",
                "a template over vars and params, e.g. {{ study_id }}",
                "templates can read vars, params and env('NAME'); they cannot reach Python internals",
            ) from None
        except TemplateSyntaxError as exc:
            raise TemplateProblem(
                path,
                f"template syntax error: {exc.message}",
                "a valid jinja2 expression such as {{ name }}",
                "check the braces and quotes; write {{ '{{' }} for a literal '{{'",
            ) from None
        except TemplateError as exc:
            raise TemplateProblem(
                path,
                f"the template cannot be rendered: {exc}",
                "a template over vars and params",
                "templates cannot include, import or extend other files; use vars instead",
            ) from None
        except Exception as exc:  # whatever a template's own code raises is the template's failure
            if isinstance(exc, TypeError) and "no loader" in str(exc):
                raise TemplateProblem(
                    path,
                    "templates cannot include, import or extend files",
                    "a template over vars and params",
                    "put the value under vars: and use {{ name }} here",
                ) from None
            raise TemplateProblem(
                path,
                f"the template failed: {type(exc).__name__}: {exc}"
                if not isinstance(exc, TypeError | ValueError | ArithmeticError | LookupError)
                else f"the template failed: {exc}",
                "a template over vars and params",
                "check the types of the vars this template uses",
            ) from None

    def _compile(self, text: str) -> Callable[[], Any]:
        simple = self._simple_lookups(text)
        if simple is not None:
            return simple
        single = _SINGLE_EXPRESSION.match(text.strip())
        if single:
            expression = self.environment.compile_expression(single["expr"], undefined_to_none=False)

            def evaluate() -> Any:
                result = expression(**self.context)
                if isinstance(result, Undefined):
                    result._fail_with_undefined_error()
                return result

            return evaluate
        template = self.environment.budgeted_template(text)
        return lambda: template.render(**self.context)

    def _simple_lookups(self, text: str) -> Callable[[], Any] | None:
        """Plain dict lookups resolved directly (jinja would give the same result, 1,000x slower to compile).

        Anything else (filters, calls, attributes of non-mappings, undefined names) goes to jinja, which
        owns the sandbox rules and the error messages.
        """
        if "{%" in text or "{#" in text:
            return None
        parts = _LOOKUP.split(text)
        if len(parts) == 1 or any("{{" in literal or "}}" in literal for literal in parts[0::2]):
            return None
        values = []
        for dotted in parts[1::2]:
            value: Any = self.context
            for name in dotted.split("."):
                if not isinstance(value, dict) or name not in value:
                    return None
                value = value[name]
            if callable(value):
                return None
            values.append(value)
        if len(parts) == 3 and not parts[0].strip() and not parts[2].strip():
            only = values[0]
            return lambda: only
        self.budget.check(sum(map(len, parts[0::2])) + sum(map(size, values)), "a templated text")
        rendered = "".join(
            literal + (str(values[index]) if index < len(values) else "")
            for index, literal in enumerate(parts[0::2])
        )
        return lambda: rendered

    def _undefined(self, path: KeyPath, detail: str) -> TemplateProblem:
        if detail.startswith("environment variable"):
            variable = detail.split()[2]
            return TemplateProblem(
                path,
                detail,
                f"the environment variable {variable} to be set",
                f"export {variable}=... before running, or give a default: env('{variable}', 'value')",
            )
        match = re.match(r"'(?P<name>[^']+)' is undefined", detail)
        name: str | None = match["name"] if match else None
        known = ", ".join(self.known_names) or "none"
        suggestion = did_you_mean(name, self.known_names) if name else None
        if suggestion:
            hint = f"did you mean '{suggestion}'?"
        elif name:
            hint = f"add `{name}: ...` under vars:, or fix the spelling"
        else:
            hint = "check the names used: vars by name, params.NAME, env('NAME')"
        return TemplateProblem(
            path,
            f"undefined template variable '{name}'" if name else f"undefined value in template: {detail}",
            f"a variable defined under vars: (defined: {known})",
            hint,
        )
