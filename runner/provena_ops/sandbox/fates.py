"""Deterministic draws for fault injection: the same seed gives the same request the same fate.

A request's fate is drawn from a hash of the seed, what the draw is for (the request's method,
path, query and body; a job's target) and how many identical draws came before it, not from a shared
random stream: concurrent clients interleave differently on every run, and a stream would hand the
faults to other requests each time.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter


class Fates:
    """Deterministic draws in [0, 1) keyed by what is drawn for and its occurrence number."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._seen: Counter[bytes] = Counter()

    def draw(self, *key: bytes | str) -> float:
        digest = hashlib.blake2b(digest_size=16)
        for part in (str(self.seed), *key):
            data = part.encode() if isinstance(part, str) else part
            digest.update(len(data).to_bytes(8, "big") + data)
        identity = digest.digest()
        occurrence = self._seen[identity]
        self._seen[identity] = occurrence + 1
        final = hashlib.blake2b(identity + occurrence.to_bytes(8, "big"), digest_size=8).digest()
        return int.from_bytes(final, "big") / 2**64

    def pick(self, choices: tuple[str, ...], draw: float, rate: float) -> str:
        """The fault kind for a draw under `rate`: the same draw keeps its kind as the rate changes."""
        return choices[min(int(draw / rate * len(choices)), len(choices) - 1)]

    def uuid(self, *key: bytes | str) -> uuid.UUID:
        """A version-4 UUID drawn like a fate, so ids the sandbox hands out repeat with the seed."""
        bits = int(self.draw(*key) * 2**64) << 64 | int(self.draw("low", *key) * 2**64)
        return uuid.UUID(int=bits, version=4)
