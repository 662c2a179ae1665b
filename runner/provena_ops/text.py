"""Small wording helpers shared by the planner and the renderings."""

from __future__ import annotations

import re


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def article(noun: str | None) -> str:
    """'a PERSON', 'an ORGANISATION' (subtype names read better with the right article)."""
    word = str(noun)
    return f"an {word}" if word[:1].upper() in "AEIOU" else f"a {word}"


# Characters that make text look other than it is, or that terminals and Provena's stores treat specially:
# C0 controls (tab and newlines aside, where text may span lines), DEL and C1 controls, bidirectional
# overrides and isolates (the "Trojan Source" characters), zero-width characters and the BOM.
_CONTROL = {chr(code) for code in (*range(0x00, 0x20), *range(0x7F, 0xA0))}
_INVISIBLE = {
    *(chr(code) for code in range(0x202A, 0x202F)),  # LRE RLE PDF LRO RLO
    *(chr(code) for code in range(0x2066, 0x206A)),  # LRI RLI FSI PDI
    "\u200e",  # LRM
    "\u200f",  # RLM
    "\u061c",  # ALM
    "\u200b",  # zero width space
    "\u200c",  # zero width non-joiner
    "\u200d",  # zero width joiner
    "\u2060",  # word joiner
    "\ufeff",  # zero width no-break space (BOM)
    "\u00ad",  # soft hyphen
}
_NAMES = {
    "\x00": "a NUL character",
    "\t": "a tab",
    "\n": "a line break",
    "\r": "a carriage return",
    "\x1b": "an escape character (terminal control sequence)",
    "\u202e": "a right-to-left override (U+202E)",
    "\u202d": "a left-to-right override (U+202D)",
    "\u200b": "a zero-width space (U+200B)",
    "\ufeff": "a zero-width no-break space (U+FEFF)",
}
_HIDDEN = sorted(_CONTROL | _INVISIBLE)
_ANY_HIDDEN = re.compile("[" + "".join(re.escape(char) for char in _HIDDEN) + "]")
_HIDDEN_IN_PROSE = re.compile(
    "[" + "".join(re.escape(char) for char in _HIDDEN if char not in "\t\n\r") + "]"
)


def hidden_character(text: str, *, prose: bool = False) -> tuple[int, str] | None:
    """The first character of `text` that hides or controls instead of showing (its index and a name),
    or None. In prose (descriptions), tabs and line breaks are text."""
    found = (_HIDDEN_IN_PROSE if prose else _ANY_HIDDEN).search(text)
    return (found.start(), describe_character(found.group())) if found else None


def describe_character(char: str) -> str:
    if char in _NAMES:
        return _NAMES[char]
    kind = "a control character" if char in _CONTROL else "an invisible formatting character"
    return f"{kind} (U+{ord(char):04X})"


_SHOWN_AS_ESCAPES = re.compile("[" + "".join(re.escape(char) for char in _HIDDEN if char not in "\t\n") + "]")


def visible(text: str) -> str:
    """`text` with every hidden or controlling character (line breaks and tabs aside) written as an
    escape, so that a value from a file or a server cannot recolour, clear or reorder a terminal."""
    return _SHOWN_AS_ESCAPES.sub(lambda match: match.group().encode("unicode_escape").decode(), text)
