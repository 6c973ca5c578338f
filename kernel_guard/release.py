"""``%guard free``: let go of what IPython keeps behind the user's back (the output cache,
the last error's traceback), delete the names asked for, collect garbage and hand the
freed heap back to the system, measuring how far the resident memory fell."""

from __future__ import annotations

import ctypes
import gc
import re
import sys
import traceback
from dataclasses import dataclass, field

from kernel_guard.runtime import current_rss

_OUTPUT_NAME = re.compile(r"_\d+|_{1,3}")


@dataclass
class Released:
    before: int  # resident bytes before
    after: int  # and after
    cleared: list[str] = field(default_factory=list)  # what was let go of, in words
    deleted: list[str] = field(default_factory=list)
    trimmed: bool = False  # malloc_trim ran

    @property
    def fell(self) -> int:
        return self.before - self.after


def check_names(shell, names: list[str]) -> None:
    """Raise ``ValueError`` (one line) unless every name is a variable of the user's:
    nothing is deleted unless all of them can be."""
    hidden = shell.user_ns_hidden
    for name in names:
        if not name.isidentifier():
            raise ValueError(f"{name!r} is not a variable name: nothing was deleted")
        if name not in shell.user_ns:
            raise ValueError(f"name {name!r} is not defined: nothing was deleted")
        if name in hidden and hidden[name] is shell.user_ns[name]:
            raise ValueError(f"{name!r} is IPython's, not a variable: `%guard free` alone clears the "
                             "output cache and the last error; nothing was deleted")


def release(shell, names: list[str]) -> Released:
    """Free what can be freed; ``names`` must have passed ``check_names``."""
    check_names(shell, names)
    done = Released(current_rss(), 0)
    outputs = _clear_output_cache(shell)
    if outputs:
        done.cleared.append(f"the output cache ({outputs} result{'s' * (outputs != 1)})")
    if _clear_last_error(shell):
        done.cleared.append("the last error's traceback")
    for name in names:
        del shell.user_ns[name]
        done.deleted.append(name)
    gc.collect()
    done.trimmed = malloc_trim()
    done.after = current_rss()
    return done


def _clear_output_cache(shell) -> int:
    """Empty ``Out``, reset ``_``, ``__``, ``___`` and drop the ``_N`` IPython set (its
    ``displayhook.flush`` would also delete a ``_3`` of the user's, and fails with no cache)."""
    history = shell.history_manager
    outputs = history.output_hist if history is not None else {}
    user_ns, hidden, hook = shell.user_ns, shell.user_ns_hidden, shell.displayhook
    for name in [n for n in hidden if type(n) is str and _OUTPUT_NAME.fullmatch(n)]:
        value = dict.get(user_ns, name)
        if dict.get(hidden, name) is not value:  # the user's own since
            continue
        if not name.strip("_"):
            user_ns[name] = hidden[name] = ""  # as IPython starts
        else:
            del user_ns[name], hidden[name]
    for name in ("_", "__", "___"):
        setattr(hook, name, "")
    count = len(outputs)
    outputs.clear()
    if history is not None:
        history.output_hist_reprs.clear()
    last = shell.last_execution_result
    if last is not None and last.result is not None:
        shell.last_execution_result = None
    return count


def _clear_last_error(shell) -> bool:
    """Forget the last exception and clear its frames' locals, which keep every array of the
    failed call alive (``%debug`` has nothing to inspect afterwards)."""
    found = False
    for name in ("last_exc", "last_value", "last_traceback", "last_type"):
        value = getattr(sys, name, None)
        if value is not None:
            found = True
            if name == "last_traceback":
                traceback.clear_frames(value)
        if hasattr(sys, name):
            delattr(sys, name)  # as in a fresh interpreter
    last = shell.last_execution_result
    if last is not None and (last.error_in_exec is not None or last.error_before_exec is not None):
        shell.last_execution_result = None
    if getattr(shell.InteractiveTB, "tb", None) is not None:  # the debugger's copy
        shell.InteractiveTB.tb = None
    return found


def malloc_trim() -> bool:
    """Return the heap's free pages to the system (glibc only); True if it could."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS, Windows)
        return False
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)
    return True
