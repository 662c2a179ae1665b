"""Bytes kept in an anonymous temporary file instead of memory, read back by position.

What a plan of 100,000 model runs reads would not fit in a few hundred MB as Python objects (a run's
record is ~8 KB as dicts, ~2 KB as JSON): the reader keeps each record here as JSON and holds only where
it is. The file has no name (O_TMPFILE on Linux) and is gone when the process ends, however it ends.
"""

from __future__ import annotations

import os
import tempfile
from typing import IO

from provena_ops.errors import ProvenaOpsError

FLUSH_BYTES = 1 << 20  # written to the file a megabyte at a time, not a syscall per record
_LENGTH_BITS = 32


class Spill:
    def __init__(self) -> None:
        self._file: IO[bytes] | None = None  # opened on the first flush: small plans never touch disk
        self._flushed = 0
        self._pending = bytearray()

    def put(self, data: bytes) -> int:
        """Keep `data`; the answer is where it is, for `get`."""
        if len(data) >> _LENGTH_BITS:
            raise ValueError("a spilled value is at most 4 GB")
        where = (self._flushed + len(self._pending)) << _LENGTH_BITS | len(data)
        self._pending += data
        if len(self._pending) >= FLUSH_BYTES:
            self._flush()
        return where

    def get(self, where: int) -> bytes:
        offset, length = where >> _LENGTH_BITS, where & ((1 << _LENGTH_BITS) - 1)
        if offset >= self._flushed:  # a flush writes all that is pending: a value is wholly in one place
            start = offset - self._flushed
            return bytes(self._pending[start : start + length])
        assert self._file is not None
        try:
            data = os.pread(self._file.fileno(), length, offset)
        except OSError as exc:
            raise _unusable(exc) from None
        if len(data) != length:
            raise ProvenaOpsError(
                f"the temporary file holding records read for this plan lost data ({offset}+{length})",
                hint="something else truncated it; plan again",
            )
        return data

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _flush(self) -> None:
        try:
            if self._file is None:
                self._file = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the spill)
            written = 0
            with memoryview(self._pending) as view:  # released before the buffer is cleared
                while written < len(view):
                    written += os.pwrite(self._file.fileno(), view[written:], self._flushed + written)
        except OSError as exc:
            raise _unusable(exc) from None
        self._flushed += len(self._pending)
        self._pending.clear()


def _unusable(exc: OSError) -> ProvenaOpsError:
    return ProvenaOpsError(
        f"cannot keep the records read for this plan in a temporary file in {tempfile.gettempdir()}: "
        f"{exc.strerror or exc}",
        hint="free space there, or point TMPDIR at a writable directory with room",
    )
