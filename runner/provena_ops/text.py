"""Small wording helpers shared by the planner and the renderings."""

from __future__ import annotations

import re
import unicodedata


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def article(noun: str | None) -> str:
    """'a PERSON', 'an ORGANISATION' (subtype names read better with the right article)."""
    word = str(noun)
    return f"an {word}" if word[:1].upper() in "AEIOU" else f"a {word}"


# Characters that make text look other than it is, or that terminals and Provena's stores treat specially:
# every character Python does not call printable (controls, format characters such as bidirectional
# overrides and isolates, zero-width characters, the BOM, soft hyphens and tag characters, line and
# paragraph separators, surrogates, private-use and unassigned code points), spaces other than U+0020
# aside, plus the default-ignorable ones Python calls printable: variation selectors and the fillers that
# show as nothing. Tabs and line breaks are text in prose (descriptions).
_IGNORABLE = re.compile(
    "[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180d\u180f\u3164\ufe00-\ufe0f\uffa0\U000e0100-\U000e01ef]"
)
_PROSE = frozenset("\t\n\r")
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
    "\u2028": "a line separator (U+2028)",
    "\u2029": "a paragraph separator (U+2029)",
}
_KINDS = {
    "Cc": "a control character",
    "Cf": "an invisible formatting character",
    "Cs": "a lone surrogate, which is not a character",
    "Co": "a private-use character",
    "Cn": "an unassigned code point (or a non-character)",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}


def _hidden(char: str, prose: bool) -> bool:
    if char.isprintable():
        return _IGNORABLE.match(char) is not None
    if prose and char in _PROSE:
        return False
    return unicodedata.category(char) != "Zs"  # a space that is not U+0020 shows as a space


def hidden_character(text: str, *, prose: bool = False) -> tuple[int, str] | None:
    """The first character of `text` that hides or controls instead of showing (its index and a name),
    or None. In prose (descriptions), tabs and line breaks are text."""
    if text.isprintable():  # the common case, at C speed
        found = _IGNORABLE.search(text)
        return (found.start(), describe_character(found.group())) if found else None
    for index, char in enumerate(text):
        if _hidden(char, prose):
            return index, describe_character(char)
    return None


def shows_nothing(text: str) -> bool:
    """Non-empty text without one character that shows: only spaces, combining marks and the like."""
    return bool(text) and all(
        char.isspace() or unicodedata.category(char) in ("Mn", "Me") or _hidden(char, False) for char in text
    )


def describe_character(char: str) -> str:
    if char in _NAMES:
        return _NAMES[char]
    code = ord(char)
    if 0xE0000 <= code <= 0xE007F:
        return f"an invisible tag character (U+{code:04X})"
    if _IGNORABLE.match(char):
        return f"a character that shows as nothing (U+{code:04X})"
    kind = _KINDS.get(unicodedata.category(char), "a character that does not show")
    return f"{kind} (U+{code:04X})"


def visible(text: str) -> str:
    """`text` with every hidden or controlling character (line breaks and tabs aside) written as an
    escape, so that a value from a file or a server cannot recolour, clear or reorder a terminal."""
    if text.isprintable() and not _IGNORABLE.search(text):
        return text
    return "".join(
        char.encode("unicode_escape").decode() if char not in "\t\n" and _hidden(char, False) else char
        for char in text
    )
