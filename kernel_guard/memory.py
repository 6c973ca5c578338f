"""How much memory this kernel can really get: RAM, swap, the memory cgroup
(v1 or v2) it runs in, and the process's resource limits.

``usable_memory()`` and ``available_memory()`` are the single source of truth
for "the memory this kernel can really get": the linter's default budget,
``--max-mem 80%``, the pre-run estimate and the doctor all use them.
A container's limit is invisible to ``free`` and to ``psutil.virtual_memory()``,
and going over it gets the kernel SIGKILLed by the cgroup's OOM killer, so the
cgroup is read on every call (a few small files; no caching, limits change).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import overload

import psutil

PROC_SELF_CGROUP = "/proc/self/cgroup"
CGROUP_ROOT = "/sys/fs/cgroup"

# cgroup v1 writes "no limit" as PAGE_COUNTER_MAX pages (9223372036854771712 with
# 4 KiB pages, other values with other page sizes); anything this large is unlimited.
_V1_UNLIMITED = 1 << 60


@dataclass(frozen=True)
class CgroupMemory:
    """The memory controller's view of this process.

    ``limit`` is the tightest limit on the way up the hierarchy (``None``:
    unlimited); ``usage``, ``working_set`` and ``peak`` belong to the cgroup that
    sets it (or the process's own cgroup when nothing is limited), because that is
    the cgroup whose OOM killer fires. ``working_set`` is usage minus inactive page
    cache, which the kernel reclaims before it kills anything.
    """

    version: int  # 1 or 2
    path: str  # the process's cgroup, as /proc/self/cgroup names it
    directory: str  # that cgroup's directory in the mounted hierarchy
    limit: int | None
    limit_directory: str | None  # where the limit is set
    usage: int | None
    working_set: int | None
    peak: int | None  # v1 memory.max_usage_in_bytes, v2 memory.peak (kernel >= 5.19)
    headroom: int | None  # least (limit - working set) over the limited ancestors
    failcnt: int | None  # times the limit was hit: v1 memory.failcnt, v2 memory.events "max"
    oom_kill: int | None  # OOM kills in the own cgroup: v1 memory.oom_control, v2 memory.events
    counters_directory: str  # where failcnt/oom_kill were read, to re-read them later


def read_cgroup_memory(
    proc_self_cgroup: str = PROC_SELF_CGROUP, root: str = CGROUP_ROOT
) -> CgroupMemory | None:
    """The memory cgroup of this process, or ``None`` when there is none to read.

    Handles v1 (``N:memory:/path`` with the controller mounted at ``root/memory``),
    v2 (``0::/path`` with the unified hierarchy at ``root``, or ``root/unified`` in
    hybrid setups) and containers whose mount shows only their own subtree.
    """
    try:
        with open(proc_self_cgroup) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    v1_path = v2_path = None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and controllers == "":
            v2_path = path
        elif "memory" in controllers.split(","):
            v1_path = path
    if v1_path is not None:
        for mount in _v1_memory_mounts(root):
            directory = _locate(mount, v1_path)
            if directory is not None:
                return _read_v1(v1_path, mount, directory)
    if v2_path is not None:
        for mount in (root, os.path.join(root, "unified")):
            if "memory" not in _read_text(os.path.join(mount, "cgroup.controllers"), "").split():
                continue
            directory = _locate(mount, v2_path)
            if directory is not None:
                return _read_v2(v2_path, mount, directory)
    return None


def usable_memory(cgroup: CgroupMemory | None = None) -> int:
    """Bytes this kernel can ever get: the lower of total RAM and the cgroup limit.

    The default lint budget and the base of percentages such as ``80%``.
    """
    if cgroup is None:
        cgroup = read_cgroup_memory()
    total = psutil.virtual_memory().total
    if cgroup is not None and cgroup.limit is not None:
        return min(total, cgroup.limit)
    return total


def available_memory(cgroup: CgroupMemory | None = None) -> int:
    """Bytes that can still be allocated now: the lower of the RAM available and
    the cgroup's headroom (its limit minus its working set)."""
    if cgroup is None:
        cgroup = read_cgroup_memory()
    available = psutil.virtual_memory().available
    if cgroup is not None and cgroup.headroom is not None:
        return max(0, min(available, cgroup.headroom))
    return available


def read_oom_counters(cgroup: CgroupMemory | None) -> dict[str, int]:
    """OOM evidence to compare before and after a death: the system-wide
    ``oom_kill`` of /proc/vmstat and, re-read now, the cgroup's counters."""
    counters: dict[str, int] = {}
    vmstat = _read_keyed("/proc/vmstat")
    if "oom_kill" in vmstat:
        counters["system_oom_kill"] = vmstat["oom_kill"]
    if cgroup is not None:
        counters.update(cgroup_counters(cgroup.version, cgroup.counters_directory, cgroup.limit_directory))
    return counters


def cgroup_counters(version: int, directory: str, limit_directory: str | None = None) -> dict[str, int]:
    """``oom_kill`` (and ``failcnt``) of a cgroup directory, read now; empty if it is gone."""
    # The OOM killer counts a kill in the victim's own cgroup; the limit's failure
    # count lives where the limit is set.
    counters: dict[str, int] = {}
    if version == 1:
        oom = _read_keyed(os.path.join(directory, "memory.oom_control")).get("oom_kill")
        failcnt = _read_int(os.path.join(limit_directory or directory, "memory.failcnt"))
    else:
        oom = _read_keyed(os.path.join(directory, "memory.events")).get("oom_kill")
        failcnt = _read_keyed(os.path.join(limit_directory or directory, "memory.events")).get("max")
    if oom is not None:
        counters["cgroup_oom_kill"] = oom
    if failcnt is not None:
        counters["cgroup_failcnt"] = failcnt
    return counters


def rlimits() -> dict[str, tuple[int | None, int | None]]:
    """The resource limits that matter to a kernel, ``name -> (soft, hard)``; ``None``
    is unlimited. Empty where the ``resource`` module does not exist (Windows)."""
    try:
        import resource
    except ImportError:
        return {}
    limits = {}
    for name in ("AS", "DATA", "RSS", "STACK", "NPROC", "NOFILE", "MEMLOCK", "CORE"):
        which = getattr(resource, "RLIMIT_" + name, None)
        if which is None:
            continue
        soft, hard = resource.getrlimit(which)
        limits[name] = (
            None if soft == resource.RLIM_INFINITY else soft,
            None if hard == resource.RLIM_INFINITY else hard,
        )
    return limits


def overcommit_mode(path: str = "/proc/sys/vm/overcommit_memory") -> int | None:
    """Linux ``vm.overcommit_memory``: 0 heuristic, 1 always, 2 strict; ``None`` elsewhere."""
    return _read_int(path)


# -- cgroup file layouts ---------------------------------------------------


def _v1_memory_mounts(root: str) -> list[str]:
    """``root/memory`` and any co-mounted hierarchy such as ``root/cpu,memory``."""
    mounts = [os.path.join(root, "memory")]
    try:
        names = os.listdir(root)
    except OSError:
        return mounts
    mounts += [os.path.join(root, n) for n in sorted(names) if n != "memory" and "memory" in n.split(",")]
    return mounts


def _locate(mount: str, path: str) -> str | None:
    """The directory of cgroup ``path`` under ``mount``. In a container the mount may
    show only the container's own subtree while /proc/self/cgroup names the full
    path, so drop leading components until the directory exists."""
    parts = [p for p in path.split("/") if p]
    for start in range(len(parts) + 1):
        directory = os.path.join(mount, *parts[start:])
        if os.path.isdir(directory):
            return directory
    return None


def _ancestors(mount: str, directory: str) -> list[str]:
    """``directory`` and its parents up to and including ``mount``."""
    chain = [directory]
    mount = os.path.normpath(mount)
    while os.path.normpath(chain[-1]) != mount:
        parent = os.path.dirname(chain[-1])
        if parent == chain[-1]:
            break
        chain.append(parent)
    return chain


def _read_v1(path: str, mount: str, directory: str) -> CgroupMemory:
    def limit_of(d: str) -> int | None:
        value = _read_int(os.path.join(d, "memory.limit_in_bytes"))
        return None if value is None or value >= _V1_UNLIMITED else value

    def usage_of(d: str) -> int | None:
        return _read_int(os.path.join(d, "memory.usage_in_bytes"))

    def inactive_file_of(d: str) -> int:
        stat = _read_keyed(os.path.join(d, "memory.stat"))
        return stat.get("total_inactive_file", stat.get("inactive_file", 0))

    return _read(1, path, mount, directory, limit_of, usage_of, inactive_file_of, "memory.max_usage_in_bytes")


def _read_v2(path: str, mount: str, directory: str) -> CgroupMemory:
    def limit_of(d: str) -> int | None:
        text = _read_text(os.path.join(d, "memory.max"), "max").strip()
        return None if text == "max" else _to_int(text)

    def usage_of(d: str) -> int | None:
        return _read_int(os.path.join(d, "memory.current"))

    def inactive_file_of(d: str) -> int:
        return _read_keyed(os.path.join(d, "memory.stat")).get("inactive_file", 0)

    return _read(2, path, mount, directory, limit_of, usage_of, inactive_file_of, "memory.peak")


def _read(version, path, mount, directory, limit_of, usage_of, inactive_file_of, peak_file) -> CgroupMemory:
    """The same facts from either version, given how that version names them."""
    limit, limit_dir, headroom = _tightest(mount, directory, limit_of, usage_of, inactive_file_of)
    where = limit_dir or directory
    usage = usage_of(where)
    counters = cgroup_counters(version, directory, limit_dir)
    return CgroupMemory(
        version=version,
        path=path,
        directory=directory,
        limit=limit,
        limit_directory=limit_dir,
        usage=usage,
        working_set=None if usage is None else max(0, usage - inactive_file_of(where)),
        peak=_read_int(os.path.join(where, peak_file)),
        headroom=headroom,
        failcnt=counters.get("cgroup_failcnt"),
        oom_kill=counters.get("cgroup_oom_kill"),
        counters_directory=directory,
    )


def _tightest(mount, directory, limit_of, usage_of, inactive_file_of):
    """Walk up from ``directory``: the lowest limit, where it is set, and the least
    headroom (a parent with room to spare can still be the one that is full)."""
    limit = limit_dir = headroom = None
    for d in _ancestors(mount, directory):
        value = limit_of(d)
        if value is None:
            continue
        if limit is None or value < limit:
            limit, limit_dir = value, d
        usage = usage_of(d)
        if usage is not None:
            room = value - max(0, usage - inactive_file_of(d))
            headroom = room if headroom is None else min(headroom, room)
    return limit, limit_dir, headroom


# -- small readers: a missing or odd file is "unknown", never an error ------


@overload
def _read_text(path: str, default: str) -> str: ...
@overload
def _read_text(path: str, default: None = None) -> str | None: ...
def _read_text(path: str, default: str | None = None) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except (OSError, UnicodeDecodeError):
        return default


def _to_int(text: str) -> int | None:
    try:
        return int(text.strip())
    except ValueError:
        return None


def _read_int(path: str) -> int | None:
    text = _read_text(path)
    return None if text is None else _to_int(text)


def _read_keyed(path: str) -> dict[str, int]:
    """``key value`` lines (memory.stat, memory.events, oom_control, /proc/vmstat)."""
    values = {}
    for line in (_read_text(path) or "").splitlines():
        key, _, value = line.partition(" ")
        number = _to_int(value)
        if number is not None:
            values[key] = number
    return values
