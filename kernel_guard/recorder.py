"""The crash recorder (SPEC section 4): why did my kernel die?

While the extension is loaded, each kernel keeps a small JSON journal in the
user's state directory (``$KERNEL_GUARD_STATE_DIR``, else
``$XDG_STATE_HOME/kernel_guard``, else ``~/.local/state/kernel_guard``), one
folder per notebook: the running cell's number and source, the limits in force,
the last resident memory sampled, and the OOM counters of its cgroup and of the
system as they were. ``faulthandler`` writes the Python stack of a fatal signal
(SIGSEGV, SIGBUS, SIGABRT, ...) and of SIGTERM to files beside it.

The next kernel for the same notebook (``JPY_SESSION_NAME``, else the working
directory) finds the journal of a kernel that is gone while "running", tells the
user once which cell killed it and how (``postmortem.py`` writes that message), and
deletes it. A kernel that exits
normally removes its own files; journals nobody comes back for expire.
"""

from __future__ import annotations

import atexit
import contextlib
import faulthandler
import hashlib
import json
import os
import signal
import socket
import stat
import sys
import threading
import time
from collections.abc import Mapping

import psutil

from kernel_guard import memory
from kernel_guard.postmortem import post_mortem

STATE_DIR_ENV = "KERNEL_GUARD_STATE_DIR"
RECORD = 4096  # the journal is one page, rewritten in place (see Recorder._write)
SOURCE_LIMIT = 2000  # characters of the running cell kept in the journal (less if the page is full)
WRITE_INTERVAL = 1.0  # seconds between journal writes while a cell runs
IDLE_REFRESH = 30.0  # seconds between refreshes of the OOM-counter baseline while idle
MAX_AGE = 30 * 86400  # journals of dead kernels nobody came back for


def state_dir() -> str:
    """Where journals live (created on first use)."""
    override = os.environ.get(STATE_DIR_ENV)
    if override:
        return override
    if os.name == "nt":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
        return os.path.join(base, "kernel_guard")
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return os.path.join(base, "kernel_guard")


def notebook_key() -> str:
    """What identifies "the same notebook" across kernels."""
    return os.environ.get("JPY_SESSION_NAME") or os.getcwd()


def cell_number(shell, info) -> int | None:
    """In a ``pre_run_cell`` hook: the N of the ``In [N]`` the cell will show.
    IPython >= 9.8 counts the cell before ``pre_run_cell``, older ones after it ran."""
    if not getattr(info, "store_history", True) or getattr(info, "silent", False):
        return None
    import IPython

    return shell.execution_count - (1 if IPython.version_info >= (9, 8) else 0)


class Recorder:
    """One kernel's journal. Every method is cheap and never raises: a recorder
    that cannot write (read-only home, full disk) records nothing, silently."""

    def __init__(self, key: str | None = None, directory: str | None = None):
        self.key = notebook_key() if key is None else key
        digest = hashlib.sha256(self.key.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        self.root = directory or state_dir()
        self.folder = os.path.join(self.root, digest)
        self.pid = os.getpid()
        proc = psutil.Process()
        self.create_time = proc.create_time()
        base = os.path.join(self.folder, f"{self.pid}-{int(self.create_time * 1000)}")
        self.path, self.fault_path, self.term_path = base + ".json", base + ".fault", base + ".term"
        self.active = False
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._statm: int | None = None
        self._fd: int | None = None
        self._files: list = []
        self._faulthandler_was_enabled = False
        self._term_registered = False
        self._last_write = 0.0
        self._journal: dict = {}
        self.skipped: list[str] = []  # journals start() could not read: "name: why"

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> str | None:
        """Start recording; return the one-time post-mortem of this notebook's
        previous kernel if it died mid-cell (``None`` otherwise)."""
        if self.active:
            return None
        try:
            os.makedirs(self.folder, mode=0o700, exist_ok=True)
            message = self._collect_dead()
            _expire(self.root, keep=self.folder)
            self._begin()
        except OSError:
            self._end()
            return None
        return message

    def stop(self) -> None:
        """Stop recording, restore faulthandler and SIGTERM, remove this kernel's files."""
        if not self.active:
            return
        self._end()
        for path in (self.path, self.fault_path, self.term_path):
            with contextlib.suppress(OSError):
                os.unlink(path)
        with contextlib.suppress(OSError):
            os.rmdir(self.folder)  # only when no other kernel of this notebook is in it

    def _begin(self) -> None:
        cgroup = memory.read_cgroup_memory()
        self._journal = {
            "format": 1,
            "key": self.key,
            "pid": self.pid,
            "create_time": self.create_time,
            "start_ticks": _start_ticks(self.pid),
            "hostname": socket.gethostname(),
            "boot_time": psutil.boot_time(),
            "ram_total": psutil.virtual_memory().total,
            "cgroup": None if cgroup is None else {
                "version": cgroup.version,
                "directory": cgroup.counters_directory,
                "limit_directory": cgroup.limit_directory,
                "limit": cgroup.limit,
            },
            "counters": memory.read_oom_counters(cgroup),
            "status": "idle",
            "cell": None,
            "rss": None,
            "rss_time": None,
            "updated": time.time(),
        }
        with contextlib.suppress(OSError):
            self._statm = os.open("/proc/self/statm", os.O_RDONLY)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        fault = open(self.fault_path, "w", opener=_private)
        term = open(self.term_path, "w", opener=_private)
        self._files = [fault, term]
        self._faulthandler_was_enabled = faulthandler.is_enabled()
        faulthandler.enable(file=fault, all_threads=True)
        # Only where SIGTERM kills: with a handler of its own installed, the process
        # may survive it, and a stack in the file would blame SIGTERM for a later death.
        self._term_registered = (
            hasattr(faulthandler, "register")
            and hasattr(signal, "SIGTERM")
            and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
        )
        if self._term_registered:
            # chain=True: dump the stack, then die of SIGTERM exactly as before.
            faulthandler.register(signal.SIGTERM, file=term, all_threads=False, chain=True)
        self.active = True
        self._stopping.clear()
        _register_process_hooks(self)
        self._write()
        self._thread = threading.Thread(target=self._sampler, name="kernel_guard-recorder", daemon=True)
        self._thread.start()

    def _end(self) -> None:
        self.active = False
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        self._thread = None
        self._restore_faulthandler()
        for f in self._files:
            with contextlib.suppress(OSError):
                f.close()
        self._files = []
        for fd in (self._statm, self._fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._statm = self._fd = None
        _unregister_process_hooks(self)

    def _restore_faulthandler(self) -> None:
        if not self._files:
            return
        if self._term_registered:
            faulthandler.unregister(signal.SIGTERM)
            self._term_registered = False
        if self._faulthandler_was_enabled:
            # faulthandler cannot tell which file it wrote to; stderr is the
            # default of Python and of ipykernel.
            # (None, without a stderr, is accepted: faulthandler then uses sys.stderr)
            faulthandler.enable(file=sys.__stderr__, all_threads=True)  # type: ignore[arg-type]
        else:
            faulthandler.disable()

    # -- per cell ----------------------------------------------------------------

    def cell_started(self, number: int | None, source: str, limits: Mapping | None = None) -> None:
        """Record that cell ``number`` starts to run ``source`` under ``limits``
        (such as ``{"max_mem": 2**30, "timeout": 10}``). Written at once."""
        if not self.active:
            return
        now = time.time()
        with self._lock:
            self._journal["status"] = "running"
            self._journal["cell"] = {
                "number": number,
                "source": source[:SOURCE_LIMIT],
                "truncated": len(source) > SOURCE_LIMIT,
                "started": now,
                "limits": {k: _jsonable(v) for k, v in (limits or {}).items()},
            }
            rss = self._read_rss()
            if rss is not None:
                self._journal["rss"], self._journal["rss_time"] = rss, now
            self._write()

    def sample(self, rss: int) -> None:
        """Resident memory measured by a watchdog; written at most once a second."""
        if not self.active:
            return
        now = time.time()
        with self._lock:
            self._journal["rss"], self._journal["rss_time"] = int(rss), now
            if self._journal["status"] == "running" and now - self._last_write >= WRITE_INTERVAL:
                self._write()

    def cell_finished(self) -> None:
        """The cell ended (success, error or interrupt): the kernel is idle."""
        if not self.active:
            return
        with self._lock:
            self._journal["status"] = "idle"
            self._write()

    # -- internals ---------------------------------------------------------------

    def _sampler(self) -> None:
        """Once a second: while a cell runs, its RSS (for cells no watchdog samples)
        and a heartbeat; while idle, now and then, a fresh OOM-counter baseline."""
        ticks = 0
        while self.active:
            self._stopping.wait(WRITE_INTERVAL)
            if not self.active:
                return
            ticks += 1
            try:
                if self._journal.get("status") == "running":
                    rss = self._read_rss()
                    if rss is not None and time.time() - self._last_write >= WRITE_INTERVAL * 0.9:
                        self.sample(rss)
                elif ticks % int(IDLE_REFRESH / WRITE_INTERVAL) == 0:
                    counters = memory.read_oom_counters(memory.read_cgroup_memory())
                    with self._lock:
                        if counters != self._journal["counters"] and self._journal["status"] == "idle":
                            self._journal["counters"] = counters
                            self._write()
            except MemoryError:  # under a guarded cell's cap; the next tick tries again
                continue

    def _read_rss(self) -> int | None:
        if self._statm is not None:
            try:
                return int(os.pread(self._statm, 128, 0).split()[1]) * _PAGE
            except (OSError, ValueError, IndexError):
                return None
        try:
            return psutil.Process().memory_info().rss
        except psutil.Error:
            return None

    def _write(self) -> None:
        """Rewrite the journal: one page, space-padded, with one pwrite at offset 0
        (the caller holds the lock or is alone).

        A write of one page either happens whole or not at all when the process is
        killed (the kernel checks for a fatal signal between pages), which is the
        atomicity a post-mortem needs; readers act only on journals of dead
        kernels. Temp file + os.replace costs ~170 us here (ext4 frees and
        discards the old blocks on every rename); an in-place page costs ~2 us.
        """
        now = time.time()
        self._journal["updated"] = now
        try:
            data = json.dumps(self._journal, separators=(",", ":")).encode()
            cell = self._journal.get("cell")
            while len(data) > RECORD and cell and cell["source"]:
                cell["source"] = cell["source"][: max(0, len(cell["source"]) - (len(data) - RECORD) - 8)]
                cell["truncated"] = True
                data = json.dumps(self._journal, separators=(",", ":")).encode()
            if len(data) > RECORD or self._fd is None:
                return
            os.pwrite(self._fd, data.ljust(RECORD), 0)
        except (OSError, MemoryError):  # a full disk, or the guard's memory cap from the watchdog thread
            return
        self._last_write = now

    def _collect_dead(self) -> str | None:
        """Post-mortems of this notebook's dead kernels; their files are removed. A
        journal that cannot be read is set aside (renamed ``*.skipped``, left to
        expire) and named once in :attr:`skipped`."""
        messages = []
        for name in sorted(os.listdir(self.folder)):
            if not name.endswith(".json"):
                continue
            path = os.path.join(self.folder, name)
            try:
                journal = _load(path)
            except _Unreadable as problem:
                self._set_aside(path, str(problem))
                continue
            if journal is None:  # being written right now; an old unreadable one is set aside above
                continue
            if journal.get("pid") == self.pid or not _is_dead(journal):
                continue
            # Claim it: of two kernels starting at once, one reports it.
            claimed = f"{path}.{self.pid}.claimed"
            try:
                os.rename(path, claimed)
            except OSError:
                continue
            if journal.get("status") == "running":
                base = path[: -len(".json")]
                try:
                    messages.append(post_mortem(journal, _read(base + ".fault"), _read(base + ".term")))
                except Exception as exc:  # a shape no check above foresaw: say so, never fail the load
                    self.skipped.append(f"{name}: cannot be explained ({type(exc).__name__})")
            _remove_kernel_files(path)
            with contextlib.suppress(OSError):
                os.unlink(claimed)
        return "\n\n".join(messages) or None

    def _set_aside(self, path: str, problem: str) -> None:
        self.skipped.append(f"{os.path.basename(path)}: {problem}")
        with contextlib.suppress(OSError):
            os.rename(path, path + ".skipped")  # never read again; expires with the others


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)  # cell source and stacks are the user's business


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


# -- files, liveness, expiry ------------------------------------------------------


def _is_dead(journal: Mapping) -> bool:
    """Whether the kernel of ``journal`` is gone. Journals of other machines sharing
    this home directory are never judged: their pids mean nothing here."""
    if journal.get("hostname") != socket.gethostname():
        return False
    try:
        pid = int(journal["pid"])
        # A reused pid belongs to a process started at another time.
        ticks = _start_ticks(pid)
        if ticks is not None and journal.get("start_ticks") is not None:
            return ticks != journal["start_ticks"]
        return abs(psutil.Process(pid).create_time() - float(journal["create_time"])) > 1.0
    except (psutil.NoSuchProcess, KeyError, ValueError, TypeError):
        return True
    except psutil.Error:
        return False


def _start_ticks(pid: int) -> int | None:
    """Linux: the process's start time in clock ticks since boot, exact, unlike
    psutil's create_time, which adds a boot time that drifts by a second."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return int(fields[19])
    except FileNotFoundError:
        raise psutil.NoSuchProcess(pid) from None
    except (OSError, IndexError, ValueError):
        return None


class _Unreadable(Exception):
    """A journal that will never be readable: not a regular file, too large, wrong shape."""


FRESH = 10.0  # seconds: a journal this young that does not parse may be half written
_JOURNAL_LIMIT = 64 * 1024


def _read_regular(path: str, limit: int) -> bytes:
    """At most ``limit`` bytes of ``path``, which must be a regular file: a FIFO, a
    device or a socket under a journal's name would block or never end."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _Unreadable("not a regular file")
        return os.read(fd, limit)
    finally:
        os.close(fd)


def _load(path: str) -> dict | None:
    """The journal at ``path``; None if it is gone or may be half written; raises
    :class:`_Unreadable` if it never will be readable."""
    try:
        data = _read_regular(path, _JOURNAL_LIMIT + 1)
        young = time.time() - os.stat(path).st_mtime < FRESH
    except OSError:
        return None
    if len(data) > _JOURNAL_LIMIT:
        raise _Unreadable("larger than a journal")
    try:
        journal = json.loads(data)
    except ValueError:
        if young:
            return None
        raise _Unreadable("not a JSON journal") from None
    problem = _shape_problem(journal)
    if problem is not None:
        raise _Unreadable(problem)
    return journal


def _read(path: str, limit: int = 256 * 1024) -> str:
    try:
        return _read_regular(path, limit).decode("utf-8", errors="replace")
    except (OSError, _Unreadable):
        return ""


# What each field of a journal may hold (exact types), so that a journal of the wrong
# shape is set aside before anything reads it.
_NONE = type(None)
_TIME = (int, float)
_JOURNAL_FIELDS = {
    "format": (int,), "key": (str,), "pid": (int,), "hostname": (str,), "status": (str,),
    "create_time": _TIME, "start_ticks": (int, _NONE), "boot_time": _TIME, "ram_total": (int, _NONE),
    "rss": (int, float, _NONE), "rss_time": (*_TIME, _NONE), "updated": _TIME,
    "cell": (dict, _NONE), "cgroup": (dict, _NONE), "counters": (dict,),
}
_CELL_FIELDS = {"number": (int, _NONE), "source": (str,), "truncated": (bool,), "started": (*_TIME, _NONE),
                "limits": (dict,)}
_CGROUP_FIELDS = {"version": (int,), "directory": (str, _NONE), "limit_directory": (str, _NONE),
                  "limit": (int, _NONE)}
_LIMIT_FIELDS = {"max_mem": (int, _NONE), "timeout": (int, float, _NONE), "max_depth": (int, _NONE),
                 "max_output": (int, _NONE)}


def _shape_problem(journal: object) -> str | None:
    """What is wrong with the shape of a parsed journal, or None."""
    if type(journal) is not dict:
        return "not a JSON object"
    problem = _fields_problem(journal, _JOURNAL_FIELDS, "")
    if problem is None and journal.get("cell") is not None:
        cell = journal["cell"]
        problem = (_fields_problem(cell, _CELL_FIELDS, "cell.")
                   or _fields_problem(cell.get("limits") or {}, _LIMIT_FIELDS, "cell.limits."))
    if problem is None and journal.get("cgroup") is not None:
        problem = _fields_problem(journal["cgroup"], _CGROUP_FIELDS, "cgroup.")
    counters = journal.get("counters") or {}
    if problem is None and not all(type(k) is str and type(v) is int for k, v in counters.items()):
        problem = "counters hold something other than counts"
    return problem


def _fields_problem(record: dict, fields: dict[str, tuple[type, ...]], prefix: str) -> str | None:
    for name, kinds in fields.items():
        if name not in record:
            continue
        value = record[name]
        if not any(type(value) is kind for kind in kinds):
            return f"{prefix}{name} is {type(value).__name__}"
        if type(value) in (int, float) and not 0 <= value < 2**63:  # also NaN and infinities
            return f"{prefix}{name} is out of range"
    return None


def _remove_kernel_files(journal_path: str) -> None:
    base = journal_path[: -len(".json")]
    for suffix in (".json", ".fault", ".term"):
        with contextlib.suppress(OSError):
            os.unlink(base + suffix)


def _expire(root: str, keep: str) -> None:
    """Bound disk use: delete files of dead kernels older than MAX_AGE, stray
    temporary files, and empty notebook folders (other than ``keep``)."""
    cutoff = time.time() - MAX_AGE
    with os.scandir(root) as folders:
        for folder in folders:
            if not folder.is_dir(follow_symlinks=False):
                continue
            try:
                with os.scandir(folder.path) as entries:
                    old = [e for e in entries if e.stat(follow_symlinks=False).st_mtime < cutoff]
            except OSError:  # unreadable, or gone meanwhile: not ours to judge now
                continue
            for entry in old:
                if entry.name.endswith(".json"):
                    try:
                        journal = _load(entry.path)
                    except _Unreadable:
                        journal = None
                    if journal is None or journal.get("hostname") != socket.gethostname() or _is_dead(journal):
                        _remove_kernel_files(entry.path)
                elif entry.name.endswith(".claimed") or not os.path.exists(
                    entry.path.rsplit(".", 1)[0] + ".json"
                ):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)
            if folder.path != keep:
                with contextlib.suppress(OSError):
                    os.rmdir(folder.path)  # only succeeds when empty


def _jsonable(value):
    return value if isinstance(value, (int, float, str, bool, type(None))) else str(value)


# -- process-wide hooks: normal exit and fork ---------------------------------------

_active: list[Recorder] = []
_fork_hook_installed = False


def _register_process_hooks(recorder: Recorder) -> None:
    global _fork_hook_installed
    _active.append(recorder)
    atexit.register(recorder.stop)
    if not _fork_hook_installed and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _fork_hook_installed = True


def _unregister_process_hooks(recorder: Recorder) -> None:
    with contextlib.suppress(ValueError):
        _active.remove(recorder)
    atexit.unregister(recorder.stop)


def _after_fork_in_child() -> None:
    """A forked child (multiprocessing, os.fork) is not the kernel: its crashes and
    SIGTERMs (Pool.terminate) must not land in the kernel's files, and its exit
    must not delete the kernel's journal."""
    for recorder in list(_active):
        recorder.active = False
        recorder._thread = None
        recorder._restore_faulthandler()
        recorder._files = []
        _unregister_process_hooks(recorder)
