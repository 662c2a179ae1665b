"""YAML that remembers where every key and value came from, and refuses YAML's footguns.

Errors must point at the user's file and line, so the loader keeps a position for every node. It composes
with libyaml (fast enough for 10,000-operation playbooks) and builds plain Python values itself, which is
where duplicate keys, custom tags, recursive aliases and alias bombs are caught.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from provena_ops.playbook.diagnostics import Diagnostic, KeyPath, format_path
from provena_ops.playbook.yaml_syntax import (
    QUOTING_HINT,
    Position,
    diag,
    position_of_index,
    syntax_diagnostic,
    tab_indentation,
)
from provena_ops.text import describe_character

# Big enough for tens of thousands of listed records, small enough that a stray data file is refused fast.
MAX_BYTES = 10 * 1024 * 1024
# Aliases share nodes; expanding them could build exponentially many values (the "billion laughs"), so
# the document is measured as expanded before anything is built: values, text, and nesting depth.
MAX_NODES = 2_000_000
MAX_EXPANDED_BYTES = 32 * 1024 * 1024
MAX_DEPTH = 64

_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
_STANDARD_TAGS = "tag:yaml.org,2002:"
_STR_TAG = "tag:yaml.org,2002:str"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class SourceMap:
    """Where each value (and each mapping key) of a loaded document sits in its file."""

    file: str
    values: dict[KeyPath, Position] = field(default_factory=dict)
    keys: dict[KeyPath, Position] = field(default_factory=dict)
    # Unquoted scalars YAML read as something other than a string (`no` -> false, `1.10` -> 1.1).
    plain_non_strings: dict[KeyPath, str] = field(default_factory=dict)
    # Values already reported (custom tags): later checks stay quiet about them.
    rejected: set[KeyPath] = field(default_factory=set)

    def locate(self, path: KeyPath) -> Position | None:
        """The position of `path`, or of its nearest ancestor that the file spells out."""
        for end in range(len(path), -1, -1):
            found = self.values.get(path[:end])
            if found is not None:
                return found
        return None

    def locate_key(self, path: KeyPath) -> Position | None:
        return self.keys.get(path) or self.locate(path)

    def diagnostic(
        self,
        path: KeyPath,
        message: str,
        expected: str,
        hint: str,
        *,
        key: bool = False,
        position: Position | None = None,
        severity: Literal["error", "warning"] = "error",
    ) -> Diagnostic:
        """A diagnostic at `path` (at its key with `key=True`), unless `position` says otherwise."""
        spot = position or (self.locate_key(path) if key else self.locate(path))
        return Diagnostic.at(self.file, spot, format_path(path), message, expected, hint, severity)


@dataclass
class LoadedYaml:
    data: Any
    source: SourceMap
    diagnostics: list[Diagnostic]


class YamlLoadError(Exception):
    """The file cannot be read as one YAML mapping at all; nothing after loading can run."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        super().__init__(diagnostics[0].message)
        self.diagnostics = diagnostics


def read_text(file: str, raw: bytes) -> str:
    """Decode a playbook's bytes, refusing binary and oversized files with a precise reason."""
    if len(raw) > MAX_BYTES:
        raise YamlLoadError(
            [
                diag(
                    file,
                    None,
                    f"the file is larger than {MAX_BYTES // 1024 // 1024} MB, the limit for a playbook",
                    "a YAML playbook of a few hundred kilobytes at most",
                    "split it into several playbooks, or target many model runs with one selector "
                    "(linked_to_study, display_name_matches) instead of listing them",
                )
            ]
        )
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise YamlLoadError(
            [
                diag(
                    file,
                    _position_of_offset(raw, nul),
                    f"this is not a text file (NUL byte at offset {nul})",
                    "a UTF-8 YAML text file",
                    "check the path: it points at binary data, not at a playbook",
                )
            ]
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise YamlLoadError(
            [
                diag(
                    file,
                    _position_of_offset(raw, exc.start),
                    f"the file is not UTF-8 text (invalid byte 0x{raw[exc.start]:02x})",
                    "a UTF-8 YAML text file",
                    "re-save the file as UTF-8",
                )
            ]
        ) from None


def load_yaml(file: str, text: str) -> LoadedYaml:
    """Parse one YAML document into plain values plus a source map; the root must be a mapping."""
    tabs = list(tab_indentation(file, text))
    if tabs:
        raise YamlLoadError(tabs)
    loader = _SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        raise YamlLoadError([syntax_diagnostic(file, text, exc, MAX_DEPTH)]) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow in a stream
        position = position_of_index(text, exc.position)
        character = chr(exc.character) if isinstance(exc.character, int) else str(exc.character)
        raise YamlLoadError(
            [
                diag(
                    file,
                    position,
                    f"the file holds {describe_character(character)}, which YAML does not allow",
                    "printable text (tabs and line breaks aside)",
                    "remove the character: it does not show, and Provena would store it",
                )
            ]
        ) from None
    except yaml.YAMLError as exc:  # other unmarked errors
        raise YamlLoadError(
            [diag(file, None, f"the file is not valid YAML: {exc}", "valid YAML", QUOTING_HINT)]
        ) from None
    finally:
        loader.dispose()
    if node is None:
        raise YamlLoadError(
            [
                diag(
                    file,
                    Position(1, 1),
                    "the file has no content (only comments)" if text.strip() else "the file is empty",
                    "a mapping with version, name, environment and operations",
                    "start from one of the examples in playbooks/examples/",
                )
            ]
        )
    if not isinstance(node, yaml.MappingNode):
        raise YamlLoadError(
            [
                diag(
                    file,
                    _pos(node),
                    f"the top level of a playbook must be a mapping (key: value), found {_kind(node)}",
                    "a mapping with version, name, environment and operations",
                    "start the file with `version: 1` and `name: ...` at column 1, not with '- ' or a value",
                )
            ]
        )
    builder = _Builder(file, loader)
    over = _over_budget(node)
    if over is not None:
        raise YamlLoadError([diag(file, *over)])
    data = builder.build(node, ())
    return LoadedYaml(data, builder.source, builder.diagnostics)


class _Builder:
    def __init__(self, file: str, loader: yaml.SafeLoader) -> None:
        self.source = SourceMap(file)
        self.diagnostics: list[Diagnostic] = []
        self.loader = loader
        self.count = 0
        self.in_progress: set[int] = set()

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise YamlLoadError(
                [
                    diag(
                        self.source.file,
                        _pos(node),
                        f"aliases expand to more than {MAX_NODES:,} values",
                        "a playbook whose anchors and aliases expand to a reasonable size",
                        "use vars and templating, or fewer nested aliases",
                    )
                ]
            )
        self.source.values[path] = _pos(node)
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if id(node) in self.in_progress:
            raise YamlLoadError(
                [
                    diag(
                        self.source.file,
                        _pos(node),
                        "an alias refers to the mapping or list that contains it",
                        "aliases to complete values",
                        "remove the recursive alias",
                    )
                ]
            )
        self.in_progress.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                self._refuse_custom_tag(node, "tag:yaml.org,2002:seq", path)
                return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
            assert isinstance(node, yaml.MappingNode)
            self._refuse_custom_tag(node, "tag:yaml.org,2002:map", path)
            return self._mapping(node, path)
        finally:
            self.in_progress.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        explicit: dict[str, Position] = {}
        merged: list[yaml.Node] = []
        merge_key: Position | None = None
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                if merge_key is not None:
                    self.diagnostics.append(
                        diag(
                            self.source.file,
                            _pos(key_node),
                            f"duplicate key '<<' (first given at line {merge_key.line})",
                            "one `<<` per mapping (`<<: [*a, *b]` merges several)",
                            "list the merged anchors under one `<<`",
                            path=format_path(path),
                        )
                    )
                merge_key = _pos(key_node)
                merged.extend(value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node])
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.source.rejected.add(path)  # the mapping lost a key: what it says now misleads
                self.diagnostics.append(
                    diag(
                        self.source.file,
                        _pos(key_node),
                        f"a mapping key must be a plain value, found {_kind(key_node)}",
                        "a key such as `name:`",
                        "write the key as text followed by ': '",
                    )
                )
                continue
            key = str(key_node.value)
            key_position = _pos(key_node)
            if key in explicit:
                first = explicit[key]
                self.diagnostics.append(
                    diag(
                        self.source.file,
                        key_position,
                        f"duplicate key '{key}' (first given at line {first.line})",
                        "each key once per mapping",
                        "remove one of the two, or merge their contents",
                        path=format_path((*path, key)),
                    )
                )
            explicit[key] = key_position
            self.source.keys[(*path, key)] = key_position
            result[key] = self.build(value_node, (*path, key))
        for source in merged:  # `<<: *defaults`: explicit keys win, as YAML specifies
            if id(source) in self.in_progress or source is node:
                self.diagnostics.append(
                    diag(
                        self.source.file,
                        _pos(source),
                        "`<<` merges the mapping that contains it",
                        "`<<: *anchor` of another, complete mapping",
                        "remove the recursive merge",
                    )
                )
                continue
            self._refuse_custom_tag(source, "tag:yaml.org,2002:map", path)
            if not isinstance(source, yaml.MappingNode):
                self.diagnostics.append(
                    diag(
                        self.source.file,
                        _pos(source),
                        f"`<<` merges mappings only, found {_kind(source)}",
                        "`<<: *anchor_of_a_mapping`",
                        "point the merge key at an anchored mapping",
                    )
                )
                continue
            self.in_progress.add(id(source))
            try:
                for key, value in self._mapping(source, path).items():
                    result.setdefault(key, value)
            finally:
                self.in_progress.discard(id(source))
        return result

    def _scalar(self, node: yaml.ScalarNode, path: KeyPath) -> Any:
        if node.tag == _TIMESTAMP_TAG:
            return node.value  # keep dates as written; no field takes a datetime
        if node.tag == _STR_TAG:
            return node.value
        if node.tag not in _SCALAR_TAGS:
            self._refuse_custom_tag(node, "tag:yaml.org,2002:str", path)
            return node.value
        if node.style in ("'", '"'):  # quoted text is text; only an explicit tag makes it anything else
            self._refuse_custom_tag(node, _STR_TAG, path)
            return node.value
        try:
            value = self.loader.construct_object(node)
        except (ValueError, OverflowError) as exc:  # e.g. an integer of thousands of digits
            self.source.rejected.add(path)
            self.diagnostics.append(
                diag(
                    self.source.file,
                    _pos(node),
                    f"this value cannot be read as YAML says it is ({str(exc).split(';')[0]})",
                    "a number of a reasonable size, or text in quotes",
                    "put the value in quotes if it is text; no playbook number needs this many digits",
                )
            )
            return str(node.value)
        if not node.style and not isinstance(value, str):  # libyaml: '' for plain, PyYAML: None
            self.source.plain_non_strings[path] = str(node.value)
        return value

    def _refuse_custom_tag(self, node: yaml.Node, default: str, path: KeyPath) -> None:
        if node.tag != default:
            self.source.rejected.add(path)
            written = (
                "!!" + node.tag.removeprefix(_STANDARD_TAGS)
                if node.tag.startswith(_STANDARD_TAGS)
                else node.tag
            )
            self.diagnostics.append(
                diag(
                    self.source.file,
                    _pos(node),
                    f"YAML tags are not allowed here ({written})",
                    "plain YAML values",
                    "remove the tag; playbooks hold data only",
                )
            )


_DECIMAL_INT = re.compile(r"-?(0|[1-9][0-9]*)")
_DECIMAL_FLOAT = re.compile(
    r"[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)"
)


def unusual_spelling(value: Any, written: str) -> tuple[str, str, str] | None:
    """YAML 1.1 reads `yes` as true, `0x1` and `+1` as 1 and `190:20:30` as 685230 (base 60): a value
    taken as written is spelt as what it is, or refused, located."""
    if isinstance(value, bool):
        if written.lower() in ("true", "false"):
            return None
        return (
            f"YAML reads an unquoted {written} as {str(value).lower()}",
            "true or false, or text in quotes",
            f'write {str(value).lower()}, or "{written}" if it is text',
        )
    if isinstance(value, int) and not _DECIMAL_INT.fullmatch(written):
        return (
            f"YAML reads an unquoted {written} as the number {value}",
            "a number in decimal digits, or text in quotes",
            f'write {value}, or "{written}" if it is text',
        )
    if isinstance(value, float) and not _DECIMAL_FLOAT.fullmatch(written):
        return (
            f"YAML reads an unquoted {written} as the number {value}",
            "a number in decimal digits, or text in quotes",
            f'write {value}, or "{written}" if it is text',
        )
    return None


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    return []


def _over_budget(root: yaml.Node) -> tuple[Position, str, str, str] | None:
    """Where the document, with its aliases expanded, holds too many values, too much text, or nests too
    deep: measured bottom-up over the node graph (each shared node once), without recursion."""
    measured: dict[int, tuple[int, int, int]] = {}  # id -> (values, characters, height)
    active: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if isinstance(node, yaml.ScalarNode):
            measured[key] = (1, len(node.value), 0)
            continue
        if not children_done:
            if key in measured or key in active:
                continue  # measured already, or a recursive alias (the builder reports it)
            active.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in _children(node) if id(child) not in measured)
            continue
        active.discard(key)
        values, characters, height = 1, 0, 0
        for child in _children(node):
            child_values, child_characters, child_height = measured.get(id(child), (1, 0, 0))
            values += child_values
            characters += child_characters
            height = max(height, child_height + 1)
        if values > MAX_NODES:
            return (
                _pos(node),
                f"this value expands (through aliases) to more than {MAX_NODES:,} values",
                "a playbook whose anchors and aliases expand to a reasonable size",
                "use vars and templating, or fewer nested aliases",
            )
        if characters > MAX_EXPANDED_BYTES:
            return (
                _pos(node),
                f"this value expands (through aliases) to more than {MAX_EXPANDED_BYTES // 1024 // 1024} MB "
                "of text",
                "a playbook whose anchors and aliases expand to a reasonable size",
                "write the value once, or use fewer aliases of long text",
            )
        measured[key] = (values, characters, height)
    height = measured[id(root)][2]
    if height <= MAX_DEPTH:
        return None
    node, level = root, 1  # down the deepest path, to the first value nested too deep
    while level <= MAX_DEPTH:
        node = max(_children(node), key=lambda child: measured.get(id(child), (1, 0, 0))[2])
        level += 1
    return (
        _pos(node),
        f"nested deeper than {MAX_DEPTH} levels (aliases included)",
        f"at most {MAX_DEPTH} levels of mappings and lists",
        "flatten the structure: no playbook needs this depth",
    )


def _pos(node: yaml.Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


def _position_of_offset(raw: bytes, offset: int) -> Position:
    line_start = raw.rfind(b"\n", 0, offset) + 1
    return Position(raw.count(b"\n", 0, offset) + 1, offset - line_start + 1)


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    return f"the value {node.value!r}"
