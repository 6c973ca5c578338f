"""``max_output``: a cap on the text a cell prints.

``sys.stdout`` and ``sys.stderr`` (in a kernel, ipykernel's ``OutStream``) are
replaced for the cell by proxies that count the UTF-8 bytes of every ``write``,
pass through what fits, and raise :class:`GuardOutputLimit` at the cap. A cut
line is ended with a newline, so that the error shown next starts on a line of
its own (in a terminal both go to one screen).

What is written to file descriptors 1 and 2 (subprocesses, C ``printf``,
``os.write(1, ...)``) is counted where the kernel captures it: ipykernel (>= 6)
points them at pipes that a thread of its own reads and hands, as text, to the
``OutStream``'s ``write``. For the cell that ``write`` is wrapped on the
instance: text from that thread is counted against the same cap, what passes it
is dropped, and the cell is told once with the Guard's signal
(``Interrupter.stop``), since it is not the thread that wrote. At the end of the cell a NUL byte is
written into each pipe and the wrapper waits (at most :data:`DRAIN_WAIT`) until
the thread hands it over: output still in the pipe is counted before the cell
is done. Text written through a stream object saved before the cell (an existing
logging handler), and fd output where nothing captures it (a terminal), is not
counted.
"""

from __future__ import annotations

import os
import stat
import sys
import threading

from ..errors import GuardOutputLimit
from ..sizes import format_bytes

DRAIN_WAIT = 2.0  # seconds; the kernel's own thread forwards the pipe in microseconds
_MARK = "\0"


class _Meter:
    __slots__ = ("cap", "used", "lines", "hit", "told")

    def __init__(self, cap: int):
        self.cap, self.used, self.lines, self.hit = cap, 0, 0, False
        self.told = False  # the cell was sent the error for fd output

    def take(self, text: str) -> str | None:
        """The part of ``text`` that fits, counted; ``None`` when all of it fits."""
        size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
        if self.used + size <= self.cap:
            self.used += size
            self.lines += text.count("\n")
            return None
        room = self.cap - self.used
        fits = text.encode("utf-8", "surrogatepass")[:room].decode("utf-8", "ignore") if room > 0 else ""
        self.lines += fits.count("\n")
        self.used = self.cap
        return fits

    def error(self) -> GuardOutputLimit:
        self.hit = True
        lines = f"{self.lines:,} line{'s' * (self.lines != 1)}"
        return GuardOutputLimit(
            f"the cell printed {format_bytes(self.cap)} ({lines}), all its output cap allows, and was stopped"
        )


class _LineEnd:
    """Whether the last text a stream wrote ended its line."""

    __slots__ = ("open",)

    def __init__(self) -> None:
        self.open = False

    def after(self, text: str) -> None:
        if text:
            self.open = not text.endswith("\n")

    def close(self, write) -> None:
        """End a cut line, once, so that the error is not glued to it."""
        if self.open:
            self.open = False
            write("\n")


class CountingStream:
    """Forwards everything to ``stream``; ``write`` stops at the meter's cap."""

    def __init__(self, stream, meter: _Meter):
        self._stream = stream
        self._meter = meter
        self._line = _LineEnd()

    def write(self, text):
        if not isinstance(text, str):  # let the stream raise its own TypeError
            return self._stream.write(text)
        fits = self._meter.take(text)
        if fits is None:
            self._line.after(text)
            return self._stream.write(text)
        if fits:
            self._stream.write(fits)
            self._line.after(fits)
        self._line.close(self._stream.write)
        raise self._meter.error()

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name):
        return getattr(self._stream, name)


class _CapturedFd:
    """The ``write`` of one ipykernel ``OutStream`` that captures a file descriptor,
    wrapped on the instance for the cell: text from the pipe's reader thread is
    counted; everything else passes as before (the proxy counted it already)."""

    def __init__(self, stream, reader: threading.Thread, pipe: int, meter: _Meter, stop):
        self.stream = stream
        self.reader = reader.ident
        self.pipe = pipe  # the read end
        self.fd = vars(stream)["_original_stdstream_fd"]
        self.meter = meter
        self.stop = stop  # called with the error, from the reader thread
        # IPython's own wrapper on the instance (its output tee), if any, else the class's
        self._before = vars(stream).get("write")
        self.original = self._before if self._before is not None else type(stream).write.__get__(stream)
        self._line = _LineEnd()
        self._drained = threading.Event()
        self._draining = False

    def write(self, text):
        if threading.get_ident() != self.reader:
            return self.original(text)
        if self._draining and _MARK in text:
            text = text.replace(_MARK, "", 1)
            self._drained.set()
        fits = self.meter.take(text)
        if fits is None:
            self._line.after(text)
            return self.original(text)
        if fits:
            self.original(fits)
            self._line.after(fits)
        self._line.close(self.original)
        error = self.meter.error()
        if not self.meter.told:  # once: sent again, it would land in the cleanup of the
            self.meter.told = True  # cell's own handlers (subprocess.run killing its child)
            self.stop(error)
        return len(text)

    def install(self) -> None:
        vars(self.stream)["write"] = self.write

    def drain(self) -> None:
        """Wait until what was written to the descriptor so far went through ``write``;
        not when the descriptor no longer leads into the kernel's pipe."""
        try:
            fd_info, pipe_info = os.fstat(self.fd), os.fstat(self.pipe)
        except OSError:
            return
        if not stat.S_ISFIFO(fd_info.st_mode) or (fd_info.st_dev, fd_info.st_ino) != (
                pipe_info.st_dev, pipe_info.st_ino):
            return  # redirected by the cell: the mark would land in the user's file
        self._draining = True
        try:
            os.write(self.fd, _MARK.encode())
        except OSError:
            return
        self._drained.wait(DRAIN_WAIT)

    def uninstall(self) -> None:
        attributes = vars(self.stream)
        if attributes.get("write") != self.write:  # replaced since: leave it
            return
        if self._before is None:
            del attributes["write"]
        else:
            attributes["write"] = self._before


def _captured_fd(stream, meter: _Meter, stop) -> _CapturedFd | None:
    """The fd capture of ``stream`` when it is ipykernel's ``OutStream`` reading a pipe
    in a thread that still runs; read from the instance's own attributes only."""
    kind = type(stream)
    if kind.__name__ != "OutStream" or kind.__module__ != "ipykernel.iostream":
        return None
    attributes = vars(stream)
    reader, pipe = attributes.get("watch_fd_thread"), attributes.get("_fid")
    if (attributes.get("_should_watch") is not True or type(pipe) is not int
            or not isinstance(reader, threading.Thread) or not reader.is_alive()
            or type(attributes.get("_original_stdstream_fd")) is not int):
        return None
    return _CapturedFd(stream, reader, pipe, meter, stop)


class OutputCap:
    """Install the counting proxies on ``sys.stdout``/``sys.stderr`` and, given ``stop``
    (how another thread stops the cell), count the descriptors the kernel captures;
    put everything back."""

    def __init__(self, cap: int, stop=None):
        self.meter = _Meter(cap)
        self._stop = stop
        self._saved: tuple | None = None
        self._captured: list[_CapturedFd] = []

    def apply(self) -> None:
        self._saved = (sys.stdout, sys.stderr)
        if self._stop is not None:
            for stream in dict.fromkeys(self._saved):
                captured = _captured_fd(stream, self.meter, self._stop)
                if captured is not None:
                    captured.install()
                    self._captured.append(captured)
        if sys.stdout is not None:
            sys.stdout = CountingStream(sys.stdout, self.meter)
        if sys.stderr is not None:
            sys.stderr = CountingStream(sys.stderr, self.meter)

    def restore(self) -> None:
        if self._saved is not None:
            sys.stdout, sys.stderr = self._saved
            self._saved = None
        captured, self._captured = self._captured, []
        try:
            for each in captured:
                each.drain()
        finally:
            for each in captured:
                each.uninstall()
