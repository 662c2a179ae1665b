"""Text that would reach Provena is what it looks like: no hidden characters, and no `{{ }}` where
templating does not happen (a key is used as written)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from provena_ops.playbook.diagnostics import Diagnostic, KeyPath
from provena_ops.playbook.templating import is_template
from provena_ops.playbook.yaml_source import SourceMap
from provena_ops.text import hidden_character, shows_nothing

# Read before templating (they configure it) or never templated (they are the templates' inputs).
UNTEMPLATED = ("version", "vars", "params")
PROSE = "description"  # fields where tabs and line breaks are text


def check_text(
    data: dict[str, Any], rendered: dict[str, Any], source: SourceMap, broken: Collection[KeyPath]
) -> list[Diagnostic]:
    """Hidden characters in keys and values, and templates in keys (`skip`: paths reported already, or
    kept verbatim)."""
    found: list[Diagnostic] = []
    for path, key in _keys(data):
        if any(path[: len(skip)] == skip for skip in broken):
            continue  # reported already, or kept verbatim
        if is_template(key):
            found.append(
                source.diagnostic(
                    path,
                    f"the key {key!r} is not templated: {{{{ }}}} in a key is kept as written",
                    "a key written out",
                    "write the key out; only values are templated",
                    key=True,
                )
            )
        hidden = hidden_character(key)
        if hidden is not None and path[0] in UNTEMPLATED:  # the rendered rest is checked below
            found.append(_hidden(source, path, hidden, key=True))
    for path, text, is_key in _strings(rendered):
        if any(path[: len(bad)] == bad for bad in broken):
            continue  # a template that failed: reported already
        hidden = hidden_character(text, prose=path[-1] == PROSE and not is_key)
        if hidden is not None:
            found.append(_hidden(source, path, hidden, key=is_key))
        elif shows_nothing(text) and (is_key or text.strip()):  # blank values: the model's own message
            found.append(
                source.diagnostic(
                    path,
                    f"the {'key' if is_key else 'text'} shows nothing (only spaces and combining marks)",
                    "text with at least one visible character",
                    "write the text, or remove it",
                    key=is_key,
                )
            )
    return found


def _hidden(source: SourceMap, path: KeyPath, hidden: tuple[int, str], key: bool = False) -> Diagnostic:
    index, name = hidden
    return source.diagnostic(
        path,
        f"the {'key' if key else 'text'} holds {name} at character {index + 1}",
        "visible text" if key else "visible text (line breaks and tabs only in descriptions)",
        "remove it: it does not show, and it would be written to Provena as part of the text",
        key=key,
    )


def _keys(data: Any) -> list[tuple[KeyPath, str]]:
    """Every mapping key, with its path (iteratively: depth is bounded, but recursion need not be)."""
    keys: list[tuple[KeyPath, str]] = []
    stack: list[tuple[KeyPath, Any]] = [((), data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                keys.append(((*path, key), str(key)))
                stack.append(((*path, key), item))
        elif isinstance(value, list):
            stack.extend(((*path, index), item) for index, item in enumerate(value))
    return keys


def _strings(rendered: dict[str, Any]) -> list[tuple[KeyPath, str, bool]]:
    """Every string of the rendered playbook that can reach Provena, keys included (a template can build
    a mapping), with whether it is a key; vars and params only reach it through the values that use
    them."""
    strings: list[tuple[KeyPath, str, bool]] = []
    stack: list[tuple[KeyPath, Any]] = [
        ((key,), value) for key, value in rendered.items() if key not in UNTEMPLATED
    ]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            strings.append((path, value, False))
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str):
                    strings.append(((*path, key), key, True))
                stack.append(((*path, key), item))
        elif isinstance(value, list | tuple | set | frozenset):
            stack.extend(((*path, index), item) for index, item in enumerate(value))
    return strings
