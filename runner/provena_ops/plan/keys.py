"""The names plans use for things, built and read here only: action keys ('update X', 'delete X',
'relodge X'), by which actions depend on each other, and the fingerprint key of what links to a study."""

from __future__ import annotations

LINKS_SUFFIX = "#links"
# An update and a relink are the same write (a model-run update), as are both deletions: one key each.
_KEY_VERBS = {"update": "update", "relink": "update", "delete_model_run": "delete", "delete_study": "delete"}


def action_key(kind: str, record_id: str) -> str:
    return f"{_KEY_VERBS.get(kind, kind)} {record_id}"


def key_verb(key: str) -> str:
    """'update' of 'update 10378.1/1'."""
    return key.split(" ", 1)[0]


def key_record(key: str) -> str:
    """'10378.1/1' of 'update 10378.1/1'."""
    return key.split(" ", 1)[1]


def links_key(study_id: str) -> str:
    return f"{study_id}{LINKS_SUFFIX}"


def is_links_key(key: str) -> bool:
    return key.endswith(LINKS_SUFFIX)


def study_of_links_key(key: str) -> str:
    return key.removesuffix(LINKS_SUFFIX)
