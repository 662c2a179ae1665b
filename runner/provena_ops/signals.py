"""Ctrl-C and SIGTERM mean the same thing everywhere: stop now, and say what that leaves.

SIGTERM (what CI runners and `kill` send) is handed to whatever handles SIGINT at that moment, so it takes
whichever path Ctrl-C takes: asyncio's cancellation of the running command, or, at a question on the
screen, an immediate answer.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

from .errors import PromptCancelled


def _as_interrupt(signum: int, frame: FrameType | None) -> None:
    """Called directly, not re-sent: a SIGINT sent from inside a handler can wait unseen until the process
    next wakes (readline's prompt does not)."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    elif handler != signal.SIG_IGN:
        raise KeyboardInterrupt


def terminate_like_interrupt() -> None:
    """Treat SIGTERM as Ctrl-C for the life of the process (main thread only)."""
    signal.signal(signal.SIGTERM, _as_interrupt)


def _cancel(signum: int, frame: FrameType | None) -> None:
    raise PromptCancelled


@contextlib.contextmanager
def cancellable_prompt() -> Iterator[None]:
    """While a question waits for its answer, Ctrl-C (or SIGTERM) cancels at once. asyncio's own
    handler only asks the event loop to cancel, which cannot happen while `input()` holds it."""
    previous = signal.signal(signal.SIGINT, _cancel)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
