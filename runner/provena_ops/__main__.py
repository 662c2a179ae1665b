"""`provena-ops` and `python -m provena_ops`. Ctrl-C and SIGTERM are handled before anything else is
imported, so an interrupt in the first instants says what it says later (exit 130), not a traceback."""

from __future__ import annotations

# The C module under `signal`: `signal` itself builds enums first (5 ms, a window where Ctrl-C would
# end in a traceback). What the interpreter does before this line, nothing can catch.
import _signal  # type: ignore[import-not-found]  # (no stubs: a private module)

_early: list[int] = []


def _early_interrupt(signum: int, frame: object) -> None:
    _early.append(signum)
    raise KeyboardInterrupt


_signal.signal(_signal.SIGINT, _early_interrupt)
_signal.signal(_signal.SIGTERM, _early_interrupt)
_signal.signal(_signal.SIGHUP, _early_interrupt)

import sys  # noqa: E402  (after the handlers, on purpose)


def _unraisable(report: object) -> None:
    """An early interrupt raised inside a callback the interpreter runs (an import lock's weakref) is
    printed as "Exception ignored" with a traceback: it is recorded in `_early`, so main stops with its
    own words instead; anything else is reported as usual."""
    if isinstance(getattr(report, "exc_value", None), KeyboardInterrupt) and _early:
        return
    sys.__unraisablehook__(report)  # type: ignore[arg-type]


sys.unraisablehook = _unraisable


def main() -> None:
    try:
        from provena_ops.signals import interrupted, terminate_like_interrupt

        terminate_like_interrupt()
        if _early:
            raise KeyboardInterrupt
        from provena_ops.cli.app import main as run
    except KeyboardInterrupt:
        _stop()
    except Exception:
        if _early or interrupted():  # a library swallowed the interrupt and broke (see signals)
            _stop()
        raise
    run()


def _stop() -> None:
    sys.stderr.write("interrupted; nothing was started\n")
    sys.exit(130)


if __name__ == "__main__":
    main()
