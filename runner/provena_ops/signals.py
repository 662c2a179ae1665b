"""Ctrl-C and SIGTERM mean the same thing everywhere: stop now, and say what that leaves.

SIGTERM (what CI runners and `kill` send) is handed to whatever handles SIGINT at that moment, so it takes
whichever path Ctrl-C takes: asyncio's cancellation of the running command, or, at a question on the
screen, an immediate answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import sys
import threading
from collections.abc import Coroutine, Iterator
from types import FrameType
from typing import Any, TypeVar

from provena_ops.errors import PromptCancelled

T = TypeVar("T")

_received: list[int] = []


def interrupted() -> bool:
    """Whether Ctrl-C or SIGTERM arrived. An error after one is the interrupt's doing, not a bug: a
    library that catches everything (ProvenaInterfaces' `except:` around its imports) turns the
    KeyboardInterrupt into a NameError."""
    return bool(_received)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    raise KeyboardInterrupt


def _as_interrupt(signum: int, frame: FrameType | None) -> None:
    """Called directly, not re-sent: a SIGINT sent from inside a handler can wait unseen until the process
    next wakes (readline's prompt does not)."""
    _received.append(signum)
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    elif handler != signal.SIG_IGN:
        raise KeyboardInterrupt


def run_async(work: Coroutine[Any, Any, T]) -> T:
    """asyncio.run, with Ctrl-C as asyncio handles it: it cancels the running command gracefully only
    when SIGINT has Python's default handler, so that handler is in place for the run."""
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if main_thread else None
    if main_thread:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    answer: list[T] = []

    async def kept_aside() -> None:
        answer.append(await work)

    try:
        # Python 3.11's asyncio.run formats its SIGINT handler once the work is done, and that handler
        # names the task, whose repr holds its result: the repr of a plan of 100,000 actions took
        # seconds and hundreds of MB. The result is handed over outside the task.
        asyncio.run(kept_aside())
        return answer[0]
    finally:
        if main_thread and previous is not None:
            signal.signal(signal.SIGINT, previous)


def terminate_like_interrupt() -> None:
    """Treat SIGTERM, and SIGHUP (a dropped ssh session), as Ctrl-C for the life of the process, and
    remember either (main thread only): the run stops as it would on Ctrl-C, recap and resume hint."""
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _as_interrupt)
    signal.signal(signal.SIGHUP, _as_interrupt)


def _cancel(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    raise PromptCancelled


@contextlib.contextmanager
def cancellable_prompt() -> Iterator[None]:
    """While a question waits for its answer, Ctrl-C (or SIGTERM) cancels at once. asyncio's own
    handler only asks the event loop to cancel, which cannot happen while the question holds it."""
    previous = signal.signal(signal.SIGINT, _cancel)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def ask(prompt: str) -> str | None:
    """One line typed at the terminal (None at end of input), cancellable by Ctrl-C or SIGTERM at any
    moment: the signal also wakes the wait (a wakeup fd), so one that arrives just before the process
    starts waiting is not left pending until the next key press, as with input()."""
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    with cancellable_prompt():
        previous_fd = signal.set_wakeup_fd(wake_write)
        try:
            sys.stdout.write(prompt)
            sys.stdout.flush()
            while True:
                ready, _, _ = select.select([sys.stdin, wake_read], [], [])
                if sys.stdin in ready:
                    line = sys.stdin.readline()
                    return line if line else None
                os.read(wake_read, 512)  # a signal: its handler has run (and raised, for ours)
        finally:
            signal.set_wakeup_fd(previous_fd)
            os.close(wake_read)
            os.close(wake_write)
