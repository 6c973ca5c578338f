"""Processes started in a guarded cell get the user's own ``RLIMIT_DATA``, not the guard's.

The memory cap lowers the soft ``RLIMIT_DATA`` of the kernel (``memcap``), and a
child inherits the limits of the moment it is started: a program run with
``subprocess`` would be held to the kernel's headroom, and a process forked by
``multiprocessing`` would keep the lowered limit after the cell.

- ``os.fork`` and ``os.forkpty`` (``multiprocessing``'s fork start method,
  ``pexpect`` behind IPython's ``!cmd``) run the ``after_in_child`` hook that
  :func:`os.register_at_fork` registered once, at import: it puts the saved
  limit back in the child.
- ``subprocess`` (its ``fork_exec``, or ``os.posix_spawn`` it may use) and
  ``os.system`` start children without those hooks, so while the cap is armed
  they are wrapped: the user's limit is put back in the kernel for the instant of
  the spawn, and lowered again when it returns. Meanwhile the watchdog still
  watches the cap.

Nothing is wrapped, and the hook does nothing, unless a Guard has lowered the limit.
"""

from __future__ import annotations

import functools
import os
import subprocess
import threading
from typing import Any

try:
    import resource
except ImportError:  # Windows: no rlimits, nothing to give back
    resource = None  # type: ignore[assignment]  # (checked for None before each use)

_user_limit: tuple[int, int] | None = None  # RLIMIT_DATA before the running Guard lowered it
_lock = threading.Lock()  # a spawn in another thread and the end of the Guard do not overlap


def _spawners() -> list[tuple[object, str]]:
    """(module, name) of every function that starts a child without the fork hooks."""
    if hasattr(subprocess, "_fork_exec"):  # Python >= 3.11
        places: list[tuple[object, str]] = [(subprocess, "_fork_exec")]
    else:
        import _posixsubprocess

        places = [(_posixsubprocess, "fork_exec")]
    places += [(os, name) for name in ("posix_spawn", "posix_spawnp", "system") if hasattr(os, name)]
    return places


def _in_child() -> None:
    if _user_limit is not None:
        resource.setrlimit(resource.RLIMIT_DATA, _user_limit)


if resource is not None and hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_in_child)


def _with_user_limit(spawn):
    @functools.wraps(spawn)
    def start_child(*args, **kwargs):
        with _lock:
            if _user_limit is None:  # the Guard ended since this was looked up
                return spawn(*args, **kwargs)
            lowered = resource.getrlimit(resource.RLIMIT_DATA)
            resource.setrlimit(resource.RLIMIT_DATA, _user_limit)
            try:
                return spawn(*args, **kwargs)
            finally:
                resource.setrlimit(resource.RLIMIT_DATA, lowered)

    start_child.__kernel_guard_wraps__ = spawn
    return start_child


class UserLimitForChildren:
    """While applied, children started by the kernel get ``user_limit`` (the soft and
    hard ``RLIMIT_DATA`` from before the Guard lowered it)."""

    def __init__(self, user_limit: tuple[int, int]):
        self.user_limit = user_limit
        self._wrapped: list[tuple[object, str, Any]] = []  # (module, name, wrapper with __kernel_guard_wraps__)

    def apply(self) -> None:
        global _user_limit
        _user_limit = self.user_limit
        for module, name in _spawners():
            original = getattr(module, name)
            wrapper = _with_user_limit(original)
            setattr(module, name, wrapper)
            self._wrapped.append((module, name, wrapper))

    def restore(self) -> None:
        global _user_limit
        with _lock:
            _user_limit = None
        while self._wrapped:
            module, name, wrapper = self._wrapped.pop()
            original = wrapper.__kernel_guard_wraps__
            if getattr(module, name, None) is wrapper:  # unless the cell replaced it in turn
                setattr(module, name, original)
