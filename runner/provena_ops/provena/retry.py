"""How long and how often a request that failed in passing is tried again: one policy for every service.

Provena's APIs and its Keycloak realm share it, so a restart of either during a long apply costs a
wait of up to the budget ($PROVENA_OPS_RETRY_BUDGET seconds, 60 by default), not the run.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from provena_ops.errors import ProvenaOpsError

TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})


RETRY_BUDGET_VARIABLE = "PROVENA_OPS_RETRY_BUDGET"  # seconds a request is retried for (default 60)
DEFAULT_RETRY_BUDGET_S = 60.0


def retry_budget_s() -> float:
    """The retry budget, from $PROVENA_OPS_RETRY_BUDGET when it is a number of seconds from 0 to 3600."""
    text = os.environ.get(RETRY_BUDGET_VARIABLE)
    if text is None:
        return DEFAULT_RETRY_BUDGET_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 3600:  # also refuses nan
        raise ProvenaOpsError(
            f"${RETRY_BUDGET_VARIABLE} is {text!r}, not a number of seconds from 0 to 3600",
            hint=f"unset it for the default ({DEFAULT_RETRY_BUDGET_S:.0f} s), or set e.g. 300",
        )
    return value


@dataclass(frozen=True)
class RetryPolicy:
    """Retries are budgeted by time (`budget_s` since the first attempt) and, as a backstop, by count."""

    attempts: int = 30
    budget_s: float = field(default_factory=retry_budget_s)
    base_delay_s: float = 0.25
    max_delay_s: float = 8.0
    max_retry_after_s: float = 60.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_retry_after_s)
        return rng.uniform(0, min(self.max_delay_s, self.base_delay_s * 2**attempt))

    def exhausted(self, attempt: int, started: float) -> bool:
        """Whether the attempt just made was the last: no attempts or no time left."""
        return attempt + 1 >= self.attempts or time.monotonic() - started >= self.budget_s

    def wait(self, delay: float, started: float) -> float:
        """The wait before the next attempt, cut to what is left of the budget."""
        return max(0.0, min(delay, self.budget_s - (time.monotonic() - started)))


class HasHeaders(Protocol):
    @property
    def headers(self) -> Mapping[str, str]: ...


def retry_after(response: HasHeaders) -> float | None:
    """Seconds the server asked us to wait (Retry-After in seconds), if it said."""
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
