"""Run one cell under limits: memory, time, recursion depth, output.

``Guard(Limits(...))`` is a context manager for the kernel's main thread::

    from kernel_guard.runtime import Guard, Limits
    with Guard(Limits(max_mem=4 << 30, timeout=600, max_depth=5000, max_output=1 << 20)) as guard:
        exec(cell, namespace)
    print(guard.report)

- **Memory** (``max_mem``, bytes of resident memory for the whole process, not
  counting pages of memory-mapped files): ``RLIMIT_DATA`` is lowered (soft limit
  only) so that a mapping past the cap fails at once with ``MemoryError``,
  re-raised as :class:`~kernel_guard.errors.GuardMemoryError` with the size and the
  cap; a watchdog thread reads the memory every 10-50 ms and raises the same error in
  the cell for growth the rlimit cannot see. While the cap is armed, other threads'
  allocations share its headroom. OpenBLAS is warmed up first (its first call
  under a tight limit ends the process); other BLAS libraries are not.
- **Time** (``timeout``, seconds): :class:`~kernel_guard.errors.GuardTimeout`
  (a ``BaseException``) is raised in the cell, also inside ``time.sleep`` and
  ``Event.wait``, and again at the next loop iteration of code that swallows it
  with a bare ``except:``.
- **Recursion** (``max_depth``): the recursion limit for the cell, lowered, with a
  one-line notice, to what the C stack holds; the soft ``RLIMIT_STACK`` is raised
  for the cell first when that lets the requested depth fit.
- **Output** (``max_output``, bytes of UTF-8 text on ``sys.stdout``/``sys.stderr``):
  :class:`~kernel_guard.errors.GuardOutputLimit` at the cap, after what fits.

Limitations: Python raises exceptions between bytecodes, so **a long call into C
code cannot be interrupted before it returns** — one huge numpy operation, a
regex, ``sum(range(10**10))``. A timeout or memory overrun seen meanwhile is
raised when the call returns, at the latest when the block ends. Memory such a
call maps anew is still stopped by the rlimit; memory it writes into pages mapped
earlier (``a = np.empty(...)`` in an earlier cell, filled now) is not, and can
exhaust the machine first. Processes started in the cell inherit its rlimits: a
program run with ``subprocess`` may map no more than the kernel's headroom. Code
that swallows ``GuardTimeout`` in the ``with`` statement's own frame (rather than
in a function or ``exec`` called from it) is interrupted but cannot be forced out
of a bare ``except:`` loop.

Platforms: Linux is the target. Without ``/proc`` memory is read with psutil;
without ``RLIMIT_DATA`` semantics that count ``mmap`` (anything but Linux) the cap
is enforced by the watchdog alone. ``timeout`` and ``max_mem`` need POSIX signals
and the main thread; ``max_depth`` and ``max_output`` work anywhere.
"""

from .guard import Guard
from .limits import Limits, RunReport
from .recursion import safe_max_depth
from .rss import current_rss

__all__ = ["Guard", "Limits", "RunReport", "current_rss", "safe_max_depth"]
