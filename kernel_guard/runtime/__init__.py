"""Run one cell under limits: memory, time, recursion depth, output.

``Guard(Limits(...))`` is a context manager for the kernel's main thread::

    from kernel_guard.runtime import Guard, Limits
    with Guard(Limits(max_mem=4 << 30, timeout=600, max_depth=5000, max_output=1 << 20,
                      max_disk=10 << 30)) as guard:
        exec(cell, namespace)
    print(guard.report)

- **Memory** (``max_mem``, bytes of resident memory for the whole process,
  anonymous and shared memory alike, not counting pages of memory-mapped files):
  ``RLIMIT_DATA`` is lowered (soft limit
  only) so that a mapping past the cap fails at once with ``MemoryError``,
  re-raised as :class:`~kernel_guard.errors.GuardMemoryError` with the size and the
  cap; a watchdog thread reads the memory every 10-50 ms and raises the same error in
  the cell for growth the rlimit cannot see (shared memory, which ``RLIMIT_DATA``
  does not count; pages mapped before), and stops memory that grows by small
  mappings 32 MiB before the rlimit would (see below). While the cap is armed, other
  threads' allocations share its headroom. OpenBLAS is warmed up first (its first
  call under a tight limit ends the process); other BLAS libraries are not.
- **Time** (``timeout``, seconds): :class:`~kernel_guard.errors.GuardTimeout`
  (a ``BaseException``) is raised in the cell, also inside ``time.sleep`` and
  ``Event.wait``, and again at the next loop iteration of code that swallows it
  with a bare ``except:``.
- **Recursion** (``max_depth``): the recursion limit for the cell, lowered, with a
  one-line notice, to what the C stack holds; the soft ``RLIMIT_STACK`` is raised
  for the cell first when that lets the requested depth fit.
- **Output** (``max_output``, bytes of UTF-8 text on ``sys.stdout``/``sys.stderr``,
  and on fds 1 and 2 where ipykernel captures them):
  :class:`~kernel_guard.errors.GuardOutputLimit` at the cap, after what fits.
- **Disk** (``max_disk``, bytes the block may take from the filesystem of the
  working directory, which is also kept 1% or 256 MiB free, the lower):
  :class:`~kernel_guard.errors.GuardDiskLimit`, an ``OSError``.

Limitations: Python raises exceptions between bytecodes, so **a long call into C
code cannot be interrupted before it returns** — one huge numpy operation, a
regex, ``sum(range(10**10))``. A timeout or memory overrun seen meanwhile is
raised when the call returns, at the latest when the block ends. Memory such a
call maps anew is still stopped by the rlimit; memory it writes into pages mapped
earlier (``a = np.empty(...)`` in an earlier cell, filled now) is not, and can
exhaust the machine first. Processes started in the block get the rlimits from
before it (``children``), not the lowered ``RLIMIT_DATA``. Code
that swallows ``GuardTimeout`` in the ``with`` statement's own frame (rather than
in a function or ``exec`` called from it) is interrupted but cannot be forced out
of a bare ``except:`` loop.

Without ``max_depth`` the Guard still lowers, for the block, a recursion limit
set higher than the C stack holds (``sys.setrecursionlimit(100_000)`` in an
earlier cell), with the same notice: recursion through C code would end the process.

**Running out of memory on CPython 3.11-3.13.** When a ``MemoryError`` unwinds into
a ``with`` block or an ``except``/``finally`` body, CPython pushes the position of
the instruction that was running in that frame as an int; past code unit 256 of
the function that int is a new object, and if the allocation fails too, CPython
unwinds to the same handler again, forever, holding the GIL (gh-132508; 3.14
allocates nothing there). So: the frames of kernel_guard between the cell and
``Guard.__exit__`` keep such handlers below that offset (tests check them with
``dis``); put ``with Guard(...)`` in a small function of your own too. For the
user's frames, the watchdog stops memory growing by small mappings with its
signal while :data:`~kernel_guard.runtime.memcap.RESERVE` (32 MiB) is still free
under the rlimit, and single large mappings fail at the rlimit with that memory
still free: the error unwinds with memory to spare. Measured in a 1 GiB cgroup
kernel with ``--max-mem 500M``: a list of small rows hung 6 times in 12 (reported)
and here in the 3rd run; the same loop in a ``with`` late in a 150-line cell hung
in its first run; with both measures, 20/20 and 15/15 runs ended within 3.5 s
with ``GuardMemoryError``. What remains: the rlimit hit by small allocations inside
*one* long call into C code that keeps them (``deque.extend(map(str, ...))``,
``dict.update(generator)``), which the signal cannot interrupt, unwinding into
such a handler of a large function while not one 32-byte block is free. In 18
tries of three such cells none hung (objects freed on the way left room for the
int), but it is possible; such a kernel shows 100% CPU and only a restart ends it.

Platforms: Linux is the target. Without ``/proc`` memory is read with psutil;
without ``RLIMIT_DATA`` semantics that count ``mmap`` (anything but Linux) the cap
is enforced by the watchdog alone. ``timeout`` and ``max_mem`` need the main
thread. Without POSIX signals (Windows) the handler goes on ``SIGINT``, in front of
the one there, and is triggered with ``_thread.interrupt_main``: Python code is
stopped as usual, a blocking call only when it returns. ``report.notices`` names
what the platform cannot enforce. ``max_depth`` and ``max_output`` work anywhere (fd output is counted on the main
thread only); ``max_disk`` needs the main thread too.

Guards nest on one thread: an inner ``with Guard(...)`` runs its block under the
tighter of both limits and gives the outer ones back exactly when it ends.

Each Guard starts a watchdog thread and joins it at the end;
``kernel_guard.runtime.watchdog.keep()`` (the IPython extension calls it on load)
keeps one thread, blocked without CPU between blocks, for every Guard until
``release()``.
"""

from .guard import Guard
from .limits import Limits, RunReport
from .recursion import safe_max_depth
from .rss import current_rss

__all__ = ["Guard", "Limits", "RunReport", "current_rss", "safe_max_depth"]
