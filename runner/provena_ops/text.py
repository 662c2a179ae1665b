"""Small wording helpers shared by the planner and the renderings."""

from __future__ import annotations


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def article(noun: str | None) -> str:
    """'a PERSON', 'an ORGANISATION' (subtype names read better with the right article)."""
    word = str(noun)
    return f"an {word}" if word[:1].upper() in "AEIOU" else f"a {word}"
