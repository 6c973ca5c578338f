"""``%guard doctor`` and ``python -m kernel_guard doctor``: the memory this kernel
can really use and why, and every setting known to kill kernels (SPEC section 5).

``doctor()`` gathers the facts as ``Check`` rows (structured, for the extension's
HTML and for ``--json``); ``doctor_report()`` is the plain-text report.
"""

from __future__ import annotations

import html
import os
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass, field

import psutil

from kernel_guard import memory
from kernel_guard.sizes import format_bytes

# Thresholds for the warnings; each is a documented way for a kernel to die.
_LOW_DISK = 1 << 30
_FULL_DISK = 0.95  # share of a disk in use past which it is "nearly full", whatever its size
_SMALL_SHM = 1 << 30
_CGROUP_HIDDEN = 0.5  # a cgroup limit below half the RAM is one `free` will mislead about
_NEARLY_FULL = 0.9
_TINY_STACK = 1 << 20
_LOW_NPROC = 512
_LOW_NOFILE = 1024


@dataclass(frozen=True)
class Check:
    section: str
    label: str
    value: str
    warning: str | None = None


@dataclass
class DoctorReport:
    usable: int  # usable_memory(): the lower of RAM and the cgroup limit
    available: int  # available_memory(): what can still be allocated now
    limited_by: str  # "RAM" or "cgroup v1 limit" / "cgroup v2 limit"
    checks: list[Check] = field(default_factory=list)

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.warning]

    def as_dict(self) -> dict:
        return {
            "usable": self.usable,
            "available": self.available,
            "limited_by": self.limited_by,
            "checks": [asdict(c) for c in self.checks],
        }

    def __str__(self) -> str:
        lines = [
            f"Memory this kernel can really get: {format_bytes(self.usable)} ({self.limited_by}), "
            f"{format_bytes(self.available)} available now"
        ]
        section = None
        width = max((len(c.label) for c in self.checks), default=0) + 2
        for check in self.checks:
            if check.section != section:
                section = check.section
                lines += ["", section]
            lines.append(f"  {check.label:<{width}}{check.value}")
            if check.warning:
                lines.append(f"  {'':<{width}}! {check.warning}")
        count = len(self.warnings)
        lines += ["", f"{count} warning{'s' if count != 1 else ''}." if count else "No warnings."]
        return "\n".join(lines)

    def _repr_pretty_(self, printer, cycle) -> None:  # IPython's text/plain
        printer.text(str(self))

    def _repr_html_(self) -> str:
        rows = []
        section = None
        for c in self.checks:
            if c.section != section:
                section = c.section
                rows.append(f'<tr><th colspan="2" style="text-align:left">{html.escape(section)}</th></tr>')
            value = html.escape(c.value)
            if c.warning:
                value += f'<br><span style="color:#b45309">&#9888; {html.escape(c.warning)}</span>'
            rows.append(f'<tr><td style="text-align:left">{html.escape(c.label)}</td>'
                        f'<td style="text-align:left">{value}</td></tr>')
        head = html.escape(str(self).splitlines()[0])
        return f"<div><b>{head}</b><table>{''.join(rows)}</table></div>"


def doctor(
    *,
    proc_self_cgroup: str = memory.PROC_SELF_CGROUP,
    cgroup_root: str = memory.CGROUP_ROOT,
    cwd: str | None = None,
) -> DoctorReport:
    """Collect the report for this process (the kernel, when called from ``%guard doctor``)."""
    cgroup = memory.read_cgroup_memory(proc_self_cgroup, cgroup_root)
    ram = psutil.virtual_memory()
    usable = memory.usable_memory(cgroup)
    limited = cgroup is not None and cgroup.limit is not None and cgroup.limit < ram.total
    report = DoctorReport(
        usable=usable,
        available=memory.available_memory(cgroup),
        limited_by=f"cgroup v{cgroup.version} limit" if cgroup is not None and limited else "RAM",
    )
    checks = report.checks
    checks += _memory_checks(ram, cgroup)
    checks += _limit_checks(usable)
    checks += _recursion_checks()
    checks += _disk_checks(cwd or os.getcwd())
    checks += _version_checks()
    return report


def doctor_report(**kwargs) -> str:
    """The doctor report as plain text."""
    return str(doctor(**kwargs))


# -- memory ------------------------------------------------------------------


def _memory_checks(ram, cgroup: memory.CgroupMemory | None) -> list[Check]:
    S = "Memory"
    checks = []
    low = ram.available < 0.1 * ram.total
    checks.append(Check(
        S, "RAM", f"{format_bytes(ram.total)} total, {format_bytes(ram.available)} available",
        "less than 10% of RAM is available: the next large allocation may start the OOM killer"
        if low else None,
    ))
    swap = psutil.swap_memory()
    no_limit = cgroup is None or cgroup.limit is None
    checks.append(Check(
        S, "swap",
        f"{format_bytes(swap.total)} total, {format_bytes(swap.used)} used" if swap.total else "none",
        "no swap and no memory cgroup limit: when RAM runs out, Linux's OOM killer SIGKILLs "
        "the biggest process, usually this one, without an error; cap cells with %%guard --max-mem"
        if not swap.total and no_limit else None,
    ))
    checks += _cgroup_checks(ram, cgroup)
    rss = psutil.Process().memory_info().rss
    checks.append(Check(S, "this process", f"pid {os.getpid()}, {format_bytes(rss)} resident"))
    commit = _meminfo()
    mode = memory.overcommit_mode()
    if mode is not None:
        checks.append(_overcommit_check(mode, commit))
    oom = memory.read_oom_counters(None).get("system_oom_kill")
    if oom:
        checks.append(Check(S, "OOM kills since boot", f"{oom} on this machine, in any cgroup"))
    return checks


def _cgroup_checks(ram, cgroup: memory.CgroupMemory | None) -> list[Check]:
    S = "Memory"
    if cgroup is None:
        return [Check(S, "cgroup", "no memory cgroup")]
    where = f"v{cgroup.version} {cgroup.path}"
    if cgroup.limit is None:
        usage = f", usage {format_bytes(cgroup.usage)}" if cgroup.usage is not None else ""
        return [Check(S, "cgroup", f"{where}, no limit{usage}")]
    checks = []
    warning = None
    if cgroup.limit < _CGROUP_HIDDEN * ram.total:
        warning = (
            f"free, top and psutil show {format_bytes(ram.total)} of RAM, but this kernel is limited "
            f"to {format_bytes(cgroup.limit)}; going over gets it SIGKILLed (\"kernel died\")"
        )
    limit_where = ""
    if cgroup.limit_directory and os.path.normpath(cgroup.limit_directory) != os.path.normpath(cgroup.directory):
        limit_where = f" (set on {cgroup.limit_directory})"
    checks.append(Check(S, "cgroup", f"{where}, limit {format_bytes(cgroup.limit)}{limit_where}", warning))
    if cgroup.usage is not None:
        used = cgroup.working_set if cgroup.working_set is not None else cgroup.usage
        peak = f", peak {format_bytes(cgroup.peak)}" if cgroup.peak is not None else ""
        full = used >= _NEARLY_FULL * cgroup.limit
        checks.append(Check(
            S, "cgroup usage",
            f"{format_bytes(cgroup.usage)} ({format_bytes(used)} not reclaimable){peak}",
            "the cgroup is nearly full: a small allocation can get this kernel killed" if full else None,
        ))
    if cgroup.oom_kill:
        checks.append(Check(
            S, "cgroup OOM kills", str(cgroup.oom_kill),
            "the OOM killer has already killed processes in this cgroup",
        ))
    return checks


def _meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes (the commit accounting that strict overcommit enforces)."""
    values = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if parts and parts[0].isdigit():
                    values[key] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    except OSError:
        pass
    return values


def _overcommit_check(mode: int, meminfo: dict[str, int]) -> Check:
    names = {0: "0 (heuristic)", 1: "1 (always: allocations never fail, the OOM killer decides)", 2: "2 (strict)"}
    value = names.get(mode, str(mode))
    warning = None
    if mode == 2:
        if "CommitLimit" in meminfo:
            value += (f", committed {format_bytes(meminfo.get('Committed_AS', 0))} "
                      f"of {format_bytes(meminfo['CommitLimit'])}")
        warning = ("strict overcommit: memory reserved but unused counts, so fork (!commands, "
                   "subprocess, multiprocessing) and thread creation fail in a large kernel, "
                   "and OpenBLAS aborts the process when it cannot start its threads")
    return Check("Memory", "overcommit", value, warning)


# -- limits ------------------------------------------------------------------


def _limit_text(n: int | None, is_count: bool) -> str:
    return "unlimited" if n is None else (str(n) if is_count else format_bytes(n))


def _limit_checks(usable: int) -> list[Check]:
    S = "Resource limits (soft / hard)"
    checks = []
    for name, (soft, hard) in memory.rlimits().items():
        if name in ("MEMLOCK", "CORE"):
            continue
        is_count = name in ("NPROC", "NOFILE")
        warning = None
        if name in ("AS", "DATA") and soft is not None and soft < usable:
            warning = (
                f"RLIMIT_{name} is below the memory this kernel can get: allocations past it fail, "
                "and a library that cannot handle that (OpenBLAS starting its threads) ends the process"
            )
        elif name == "STACK" and soft is not None and soft < _TINY_STACK:
            warning = "a tiny stack: deep recursion through C code segfaults the kernel"
        elif name == "NPROC" and soft is not None and soft < _LOW_NPROC:
            warning = "few processes/threads allowed: BLAS and multiprocessing can fail to start workers"
        elif name == "NOFILE" and soft is not None and soft < _LOW_NOFILE:
            warning = "few open files allowed: the kernel's sockets fail with 'Too many open files'"
        checks.append(Check(S, name, f"{_limit_text(soft, is_count)} / {_limit_text(hard, is_count)}", warning))
    return checks


def _recursion_checks() -> list[Check]:
    S = "Recursion"
    limit = sys.getrecursionlimit()
    stack = memory.rlimits().get("STACK", (None, None))[0]
    value = f"limit {limit}, main thread stack {'unlimited' if stack is None else format_bytes(stack)}"
    safe = _safe_max_depth()
    warning = None
    if safe is not None:
        value += f", safe depth for this stack about {safe}"
        if limit > safe:
            warning = (
                f"the recursion limit is above what the stack can hold: recursion through C code "
                f"(sorted(key=...), map, __repr__) can segfault the kernel before RecursionError; "
                f"use %%guard --max-depth {safe}"
            )
    return [Check(S, "recursion", value, warning)]


def _safe_max_depth() -> int | None:
    """The runtime's estimate of the deepest safe recursion, if that module is available."""
    try:
        from kernel_guard.runtime import safe_max_depth
    except ImportError:
        return None
    try:
        return int(safe_max_depth())
    except Exception:  # a broken estimate must not break the doctor
        return None


# -- disk --------------------------------------------------------------------


def _disk_checks(cwd: str) -> list[Check]:
    from kernel_guard.recorder import state_dir  # the crash journal's place

    S = "Disk"
    places = [("working directory", cwd), ("temp directory", tempfile.gettempdir()),
              ("crash journal", state_dir())]
    checks = []
    for label, path in places:
        existing = _existing_parent(path)
        try:
            usage = shutil.disk_usage(existing)
        except OSError as exc:
            checks.append(Check(S, label, f"{path}: {exc.strerror}"))
            continue
        checks.append(Check(
            S, label, f"{path}: {format_bytes(usage.free)} free of {format_bytes(usage.total)}",
            _disk_warning(usage, working=label == "working directory"),
        ))
    if os.path.isdir("/dev/shm"):
        shm = shutil.disk_usage("/dev/shm")
        checks.append(Check(
            S, "/dev/shm", f"{format_bytes(shm.total)}, {format_bytes(shm.free)} free",
            "small shared memory (Docker's default is 64 MiB): PyTorch DataLoader workers and "
            "multiprocessing die with 'Bus error'; run the container with a larger --shm-size"
            if shm.total < _SMALL_SHM else None,
        ))
    return checks


def _disk_warning(usage, *, working: bool) -> str | None:
    """Why a disk with ``usage`` is in danger: under 1 GiB free, or over 95% used."""
    if usage.free >= _LOW_DISK and usage.used < _FULL_DISK * usage.total:
        return None
    used = f"{usage.used / usage.total:.0%} used" if usage.total else "no space"
    if working:
        return (f"the disk of the working directory is almost full ({used}): when it fills, the notebook "
                "can no longer be saved and its checkpoints fail; free space, or cap what a cell writes "
                "with %%guard --max-disk")
    return (f"low disk ({used}): writing output, checkpoints or IPython's history fails, and a full temp "
            "directory breaks ipykernel's cell files")


def _existing_parent(path: str) -> str:
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


# -- versions ----------------------------------------------------------------


def _version_checks() -> list[Check]:
    from importlib import metadata

    S = "Versions"
    checks = [Check(S, "Python", f"{sys.version.split()[0]} ({sys.executable})")]
    for dist in ("kernel-guard", "ipython", "ipykernel", "numpy", "libcst", "psutil"):
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            version = "not installed"
        checks.append(Check(S, dist, version))
    checks.append(Check(S, "BLAS", _blas()))
    return checks


def _blas() -> str:
    """The BLAS numpy uses: threadpoolctl's live view if installed, else numpy's build config."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        pass
    else:
        import numpy  # noqa: F401  (threadpoolctl lists libraries already loaded)

        found = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if found:
            return "; ".join(
                f"{i.get('internal_api')} {i.get('version') or ''} ({i.get('num_threads')} threads)"
                for i in found
            )
    try:
        import numpy

        config = numpy.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        text = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except ImportError:
        return "numpy not installed"
    except Exception:  # numpy < 1.25 has no dict mode; the layout is not an API
        return "unknown (install threadpoolctl to see it)"
    threads = [f"{k}={os.environ[k]}" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
               if k in os.environ]
    return text + (f" ({', '.join(threads)})" if threads else "")
