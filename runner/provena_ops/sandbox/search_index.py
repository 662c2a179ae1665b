"""The search API's index: a text snapshot of the registry, optionally stale like OpenSearch's."""

import re
import time
from typing import Any

from provena_ops.sandbox.store import Store

WORD = re.compile(r"[\w./-]+")
TEXT_FIELDS = (
    "display_name",
    "title",
    "description",
    "first_name",
    "last_name",
    "email",
    "name",
    "study_alternative_id",
)


def searchable_text(item: dict[str, Any]) -> str:
    parts = [str(item.get("id", "")), str(item.get("item_subtype", ""))]
    parts.extend(str(item[key]) for key in TEXT_FIELDS if item.get(key))
    for key, value in (item.get("user_metadata") or {}).items():
        parts.extend([key, value])
    record = item.get("record") or {}
    for key in ("display_name", "description", "model_version"):
        if record.get(key):
            parts.append(str(record[key]))
    for key, value in (record.get("annotations") or {}).items():
        parts.extend([key, value])
    return " ".join(parts).lower()


class SearchIndex:
    """Built once and kept while the registry does not change (or, with a staleness, for that long):
    reading 100,000 items for every search would make each one take seconds."""

    def __init__(self) -> None:
        self.built_at = 0.0
        self.built_from: tuple[int, int] | None = None
        self.entries: list[tuple[str, str, frozenset[str]]] = []

    def refresh_if_stale(self, store: Store, staleness: float) -> None:
        if staleness > 0 and self.entries and time.time() - self.built_at < staleness:
            return
        stamp = store.change_stamp()
        if staleness <= 0 and stamp == self.built_from:
            return
        self.entries = [
            (item["id"], item["item_subtype"], frozenset(WORD.findall(searchable_text(item))))
            for item in store.all_items()
        ]
        self.built_at, self.built_from = time.time(), stamp

    def query(self, text: str, subtype: str | None, limit: int) -> list[dict[str, Any]]:
        terms = [term for term in WORD.findall(text.lower()) if term]
        whole = text.strip().lower()
        hits: list[tuple[float, str]] = []
        for item_id, item_subtype, words in self.entries:
            if subtype is not None and item_subtype != subtype:
                continue
            score = 0.0
            for term in terms:
                if term in words:
                    score += 2.0
                elif any(term in word for word in words):  # a prefix is in the word too
                    score += 1.0
            if whole == item_id.lower():
                score += 10.0
            if score > 0:
                hits.append((score, item_id))
        hits.sort(key=lambda hit: (-hit[0], hit[1]))
        return [{"id": item_id, "score": score} for score, item_id in hits[:limit]]
