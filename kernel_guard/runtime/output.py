"""``max_output``: a cap on the text a cell prints.

``sys.stdout`` and ``sys.stderr`` (in a kernel, ipykernel's ``OutStream``) are
replaced for the cell by proxies that count the UTF-8 bytes of every ``write``,
pass through what fits, and raise :class:`GuardOutputLimit` at the cap. Text
written below Python (C ``printf``, subprocesses, ``os.write(1, ...)``) and
through a stream object saved before the cell (an existing logging handler) is
not counted.
"""

from __future__ import annotations

import sys

from ..errors import GuardOutputLimit
from ..sizes import format_bytes


class _Meter:
    __slots__ = ("cap", "used", "lines", "hit")

    def __init__(self, cap: int):
        self.cap, self.used, self.lines, self.hit = cap, 0, 0, False

    def error(self) -> GuardOutputLimit:
        self.hit = True
        lines = f"{self.lines:,} line{'s' * (self.lines != 1)}"
        return GuardOutputLimit(
            f"the cell printed {format_bytes(self.cap)} ({lines}), all its output cap allows, and was stopped"
        )


class CountingStream:
    """Forwards everything to ``stream``; ``write`` stops at the meter's cap."""

    def __init__(self, stream, meter: _Meter):
        self._stream = stream
        self._meter = meter

    def write(self, text):
        if not isinstance(text, str):  # let the stream raise its own TypeError
            return self._stream.write(text)
        meter = self._meter
        size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
        if meter.used + size <= meter.cap:
            meter.used += size
            meter.lines += text.count("\n")
            return self._stream.write(text)
        room = meter.cap - meter.used
        if room > 0:  # print what fits, cut on a character boundary
            fits = text.encode("utf-8", "surrogatepass")[:room].decode("utf-8", "ignore")
            meter.lines += fits.count("\n")
            self._stream.write(fits)
        meter.used = meter.cap
        raise meter.error()

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name):
        return getattr(self._stream, name)


class OutputCap:
    """Install the counting proxies on ``sys.stdout``/``sys.stderr``; put the originals back."""

    def __init__(self, cap: int):
        self.meter = _Meter(cap)
        self._saved: tuple | None = None

    def apply(self) -> None:
        self._saved = (sys.stdout, sys.stderr)
        if sys.stdout is not None:
            sys.stdout = CountingStream(sys.stdout, self.meter)
        if sys.stderr is not None:
            sys.stderr = CountingStream(sys.stderr, self.meter)

    def restore(self) -> None:
        if self._saved is not None:
            sys.stdout, sys.stderr = self._saved
            self._saved = None
