"""Raising :class:`GuardTimeout` and :class:`GuardMemoryError` inside the running cell.

The watchdog thread decides; the cell's thread is told with a signal sent to it
alone (``pthread_kill``). A signal is the only way into ``time.sleep``,
``Event.wait`` and other blocking calls: ``PyThreadState_SetAsyncExc`` and
``_thread.interrupt_main`` wait until the call returns. Python runs the handler
between two bytecodes of the cell's thread, so a long call into C code (one big
numpy operation, ``sum(range(10**10))``) cannot be interrupted before it returns.

Without POSIX signals (Windows) the handler goes on ``SIGINT`` instead, in
front of the one there, and is triggered by ``_thread.interrupt_main``: Python
code is interrupted as with a signal, a blocking call only when it returns. A
real interrupt (Ctrl-C, the notebook's stop button) still reaches the handler
that was there before, unless it arrives at the instant the watchdog sends one.

The handler only raises while the cell runs (``armed``) and not while guard code
is on the stack: an exception delivered after the cell ended lands in the event
loop of ipykernel and ends the kernel.

Other threads that see a limit crossed (the reader of a captured descriptor for
``max_output``, the watchdog for ``max_disk``) hand the error to :meth:`stop`;
the handler raises it in the cell.

When the cell's mapped memory enters the rlimit's reserve (``memcap``), the
handler raises a plain ``MemoryError``, as the rlimit would a little later, and
the Guard reports it the same way.

``GuardTimeout`` derives from ``BaseException``, so ``except Exception`` cannot keep
it; a bare ``except:`` or ``except BaseException`` can. Against those, the handler
puts an opcode trace on the cell's frames that raises again at the next loop
back-edge (a ``JUMP_BACKWARD``, exactly where Python itself checks for
``KeyboardInterrupt``), never while the timeout is being handled, so ``finally``
blocks and ``with`` exits still run. CPython drops a trace function that raises,
so the exception re-arms the trace when a bare ``except:`` lets it go
(``__del__``). The watchdog also sends the signal again every
:data:`RESEND` seconds while the cell overstays.
"""

from __future__ import annotations

import _thread
import dis
import functools
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from ..errors import GuardMemoryError, GuardTimeout

# A real-time signal: nobody installs handlers on it, unlike SIGALRM (``signal.alarm``)
# or SIGUSR1 (``faulthandler.register``).
if hasattr(signal, "SIGRTMIN"):
    SIGNAL: int | None = signal.SIGRTMIN + 6
else:
    SIGNAL = getattr(signal, "SIGUSR2", None)  # macOS; None on Windows
RESEND = 0.25
# Added to the message of a GuardTimeout raised again at a loop's back-edge: the
# traceback points at the loop, not at the handler that kept the first one.
SWALLOWED = " (raised again here: an except swallowed it)"

_HERE = os.path.dirname(os.path.abspath(__file__)) + os.sep
_JUMPS = frozenset(getattr(dis, "hasjump", dis.hasjrel + dis.hasjabs))
_current: Interrupter | None = None  # the interrupter of the running Guard
_POPEN_INIT = subprocess.Popen.__init__.__code__


def is_guard_code(code) -> bool:
    return code.co_filename.startswith(_HERE)


class _Timeout(GuardTimeout):
    """A GuardTimeout that re-arms the escape trace when a bare ``except:`` drops it."""

    def __del__(self):
        interrupter = _current
        if interrupter is not None and interrupter.escaping():
            interrupter.arm_escape(sys._getframe(1))  # the frame that let it go

    def __reduce__(self):
        return GuardTimeout, self.args


# Shown in tracebacks as the public name.
_Timeout.__name__ = _Timeout.__qualname__ = "GuardTimeout"
_Timeout.__module__ = "kernel_guard"


UNINTERRUPTIBLE = " (in a call that could not be interrupted)"


@dataclass(frozen=True)
class Reason:
    """One reason the cell is stopped, as the signal handler and the Guard's end see it.

    ``slot``: the :class:`Interrupter` attribute that holds it while pending (``None``
    or ``False`` when not). ``counts_as``: what :attr:`Interrupter.raised` records.
    ``keep``: the pending value made of ``deliver``'s message (``None``: set by
    ``stop``). ``error``: what the cell gets; ``late``: what it gets when the block
    ended first (``None``: nothing). ``sticky``: stays pending once raised, and is
    raised again at loop back-edges (the timeout).
    """

    name: str
    slot: str
    counts_as: str
    keep: Callable[[str], Any] | None
    error: Callable[[Any], BaseException]
    late: Callable[[Any], BaseException] | None
    sticky: bool = False
    cleared: Any = None


# Most urgent first: the signal raises the first one pending.
REASONS = (
    Reason("timeout", "timeout_message", "timeout", str, lambda m: _Timeout(m),
           lambda m: GuardTimeout(m + UNINTERRUPTIBLE), sticky=True),
    Reason("memory", "memory_message", "memory", str, GuardMemoryError,
           lambda m: GuardMemoryError(m + UNINTERRUPTIBLE)),
    Reason("reserve", "reserve", "memory", lambda m: True, lambda _: MemoryError(), None, cleared=False),
    Reason("stop", "stop_error", "stop", None, lambda error: error, lambda error: error),  # e.g. output in the pipe
)
_BY_NAME = {reason.name: reason for reason in REASONS}


@functools.lru_cache(maxsize=256)
def _back_edges(code) -> frozenset[int]:
    """Offsets of the backward jumps of ``code``, where loops start over.
    ``JUMP_BACKWARD_NO_INTERRUPT`` (``yield from``/``await``) is left out, as CPython
    does for signals."""
    return frozenset(
        ins.offset for ins in dis.get_instructions(code)
        if ins.opcode in _JUMPS and isinstance(ins.argval, int) and ins.argval <= ins.offset
        and ins.opname != "JUMP_BACKWARD_NO_INTERRUPT"
    )


def _no_new_frames(frame, event, arg):
    """The thread's trace function while escaping: only the frames already on the
    stack are traced (their own ``f_trace``); new calls run untraced."""
    return None


class Interrupter:
    """The cell thread's side of the guard: a signal handler and the escape trace.

    ``boundary`` is the frame running the ``with`` statement: the walk over the cell's
    frames stops there, since raising in it outside the block would skip the
    guard's ``__exit__``.
    """

    def __init__(self, boundary):
        self.boundary = boundary
        self.ident = threading.get_ident()
        self.armed = False
        self.timeout_message: str | None = None  # set for good once the deadline passed
        self.memory_message: str | None = None  # set while over the cap, until raised
        self.reserve = False  # set while the mapped memory is in the rlimit's reserve
        self.stop_error: Exception | None = None  # from stop(), until raised
        self.times_raised: Counter[str] = Counter()  # by reason name
        self.raised: set[str] = set()  # what reached the cell: the reasons' counts_as
        self.missed = False  # the last signal found guard code running; send again soon
        self.signum = SIGNAL if SIGNAL is not None else signal.SIGINT
        self._sent = False  # on SIGINT: an interrupt_main of ours is on its way
        self._previous_handler = None
        self._trace_before = None
        self._current_before: Interrupter | None = None  # an outer Guard's, put back at the end
        self._traced: dict[int, tuple] = {}  # id(frame) -> (frame, f_trace, lines, opcodes) before

    # -- installed and removed by the Guard, on the cell's thread ------------------

    def install(self) -> None:
        global _current
        previous = signal.getsignal(self.signum)
        if previous is None:
            raise RuntimeError(
                f"kernel_guard: signal {self.signum} has a handler installed outside Python; "
                "timeout and max_mem need it"
            )
        signal.signal(self.signum, self._on_signal)
        self._previous_handler = previous
        self._trace_before = sys.gettrace()
        self._current_before, _current = _current, self

    def uninstall(self) -> None:
        """Put back the signal handler and every trace function; run it after the
        watchdog stopped, so that no signal can arrive after the old handler is back."""
        global _current
        if _current is self:
            _current, self._current_before = self._current_before, None
        self.armed = False
        if self._previous_handler is not None:
            signal.signal(self.signum, self._previous_handler)
            self._previous_handler = None
        if self._traced:
            sys.settrace(self._trace_before)
            for frame, trace, lines, opcodes in self._traced.values():
                frame.f_trace, frame.f_trace_lines, frame.f_trace_opcodes = trace, lines, opcodes
            self._traced.clear()

    # -- called from the watchdog thread ---------------------------------------

    def deliver(self, reason: str, message: str) -> None:
        """``reason``: the name of one of :data:`REASONS`: "timeout", "memory" (over the
        cap), "reserve", or "stop" (send again for :attr:`stop_error`)."""
        keep = _BY_NAME[reason].keep
        if keep is not None:
            setattr(self, _BY_NAME[reason].slot, keep(message))
        self.missed = False
        if self.signum == SIGNAL:
            signal.pthread_kill(self.ident, cast(int, SIGNAL))  # (equal to signum: set)
        else:
            self._sent = True
            _thread.interrupt_main(self.signum)

    def stop(self, error: Exception) -> None:
        """Raise ``error`` in the cell (from any thread); the watchdog sends again while
        it is pending. Nothing is sent while an earlier one is pending or after the cell."""
        if self.stop_error is None:
            self.stop_error = error
            if self.armed:
                self.deliver("stop", "")

    # -- on the cell's thread ----------------------------------------------------

    def _on_signal(self, signum, frame) -> None:
        if signum != SIGNAL:  # SIGINT, shared with the user's interrupts
            ours, self._sent = self._sent, False
            if not ours:
                return self._pass_on(signum, frame)
        reason = self._pending() if self.armed else None
        if reason is None:
            return
        if not self._in_cell(frame):
            self.missed = True
            return
        if reason.sticky:
            self.arm_escape(frame)
        raise reason.error(self._take(reason))

    def undelivered(self) -> BaseException | None:
        """What the cell must still get when the block ended before the signal could
        raise it (a limit crossed during one call into C code), taken as raised."""
        for reason in REASONS:
            value = getattr(self, reason.slot)
            if reason.late is not None and value is not None and value is not False and not (
                    reason.sticky and reason.counts_as in self.raised):
                return reason.late(self._take(reason))
        return None

    def _pending(self) -> Reason | None:
        return next((r for r in REASONS if getattr(self, r.slot) is not None and getattr(self, r.slot) is not False),
                    None)

    def _take(self, reason: Reason) -> object:
        """The pending value of ``reason``, now counted as raised (and cleared, unless sticky)."""
        value = getattr(self, reason.slot)
        if not reason.sticky:
            setattr(self, reason.slot, reason.cleared)
        self.raised.add(reason.counts_as)
        self.times_raised[reason.name] += 1
        return value

    @property
    def stops_raised(self) -> int:
        """How many of the errors given to :meth:`stop` reached the cell."""
        return self.times_raised["stop"]

    def _pass_on(self, signum, frame) -> None:
        """A real SIGINT: what the handler installed before would have done."""
        previous = self._previous_handler
        if callable(previous):
            return previous(signum, frame)
        if previous == signal.SIG_DFL:
            raise KeyboardInterrupt
        return None

    def _in_cell(self, frame) -> bool:
        """False while guard code runs (entering, leaving, a counted ``print``), and while
        ``subprocess.Popen`` starts a child: raised there, the error would leave the
        child running, unwaited, where raised a moment later ``subprocess.run`` kills it."""
        while frame is not None and frame is not self.boundary:
            if is_guard_code(frame.f_code) or frame.f_code is _POPEN_INIT:
                return False
            frame = frame.f_back
        return True

    def arm_escape(self, frame) -> None:
        """Trace the cell's frames from ``frame`` to the boundary with :meth:`_escape`,
        keeping what they had for :meth:`uninstall`."""
        while frame is not None and frame is not self.boundary:
            if not is_guard_code(frame.f_code):
                if id(frame) not in self._traced:
                    self._traced[id(frame)] = (frame, frame.f_trace, frame.f_trace_lines, frame.f_trace_opcodes)
                frame.f_trace = self._escape
                frame.f_trace_lines = False
                frame.f_trace_opcodes = True
            frame = frame.f_back
        if self._traced:  # none when the cell is the with statement's own frame
            sys.settrace(_no_new_frames)

    def _escape(self, frame, event, arg):
        if (
            event == "opcode" and self.armed
            and frame.f_lasti in _back_edges(frame.f_code)
            and not isinstance(sys.exc_info()[1], GuardTimeout)  # let handlers and finally run
        ):
            raise _Timeout(self.timeout_message + SWALLOWED)
        return self._escape

    def escaping(self) -> bool:
        """Whether a GuardTimeout dropped now, on this thread, must be raised again."""
        return self.armed and self.timeout_message is not None and threading.get_ident() == self.ident
