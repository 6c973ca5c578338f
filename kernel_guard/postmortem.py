"""The post-mortem of a kernel that died mid-cell (SPEC section 4): from the journal the
crash recorder (``recorder.py``) kept, the faulthandler output beside it and the OOM
counters as they are now, the one message that says which cell, the memory at the end,
the likely cause, and advice that fits what was already in force."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping

import psutil

from kernel_guard import memory
from kernel_guard.sizes import format_bytes

SHOWN_LINES = 8  # lines of the running cell quoted in the post-mortem
NEAR_LIMIT = 0.8  # last RSS at this share of the limit counts as evidence of an OOM kill
_FATAL = re.compile(r"^Fatal Python error: (.+?)\s*$", re.MULTILINE)
_CELL_FILE = re.compile(r"ipykernel_\d+|<ipython-input-|<cell ")


def post_mortem(journal: Mapping, fault: str = "", term: str = "") -> str:
    """The message about a kernel that died while running a cell, from its journal,
    its faulthandler output and the OOM counters as they are now."""
    cell = journal.get("cell") or {}
    number = cell.get("number")
    label = f"cell [{number}]" if number is not None else "a cell"
    started = cell.get("started")
    lines = [
        f"The previous kernel of this notebook (pid {journal.get('pid')}) "
        f"died while running {label}"
        + (f", started {_when(started)}" if started else "")
        + (f", last seen alive {_when(journal['updated'])}"
           if started and (journal.get("updated") or 0) - started >= 1 else "")
        + ":"
    ]
    source = (cell.get("source") or "").rstrip("\n").splitlines()
    shown = source[:SHOWN_LINES]
    lines += ["    " + line for line in shown]
    if len(source) > SHOWN_LINES or cell.get("truncated"):
        lines.append("    ...")

    cause, evidence, limit_met = _cause(journal, fault, term)
    lines.append(_memory_line(journal, limit_met))
    lines.append(f"Likely cause: {cause}" + (f" ({evidence})." if evidence else "."))
    if cause.startswith("a fatal signal") or cause.startswith("terminated"):
        stack = _crash_stack(fault or term)
        if stack:
            lines.append("Python stack at the crash (most recent call first):")
            lines += ["    " + frame for frame in stack]
    advice = _advice(cause, journal)
    if advice:
        lines.append(advice)
    return "\n".join(lines)


_OOM = "killed by the out-of-memory killer"
_OOM_LIKELY = "probably killed by the out-of-memory killer"
_ADVICE = {
    _OOM: "Run it under `%%guard --max-mem 80%` to get a MemoryError instead of a dead kernel, "
    "or work on smaller pieces (chunks, a smaller dtype, np.memmap).",
    _OOM_LIKELY: "Run it under `%%guard --max-mem 80%` to get a MemoryError instead of a dead kernel.",
    "a fatal signal": "The crash is in C code called from the cell (an extension module, ctypes, or "
    "deep recursion through C, which `%%guard --max-depth` prevents).",
}


def _advice(cause: str, journal: Mapping) -> str | None:
    """What to do next; never a limit that was already in force when the kernel died."""
    limits = (journal.get("cell") or {}).get("limits") or {}
    cap, depth = limits.get("max_mem"), limits.get("max_depth")
    if cause.startswith("a fatal signal") and depth:
        return (f"The crash is in C code called from the cell (an extension module, ctypes); it ran under "
                f"--max-depth {depth:,}, which keeps Python's recursion within the stack.")
    if cause not in (_OOM, _OOM_LIKELY) or not cap:
        return _ADVICE.get(cause.split(":")[0] if cause.startswith("a fatal signal") else cause)
    # The cap was in force and the kernel died anyway: the memory it could really get
    # was less (other processes share the limit), or grew where the cap cannot see.
    rss = journal.get("rss")
    held = f", less than the {format_bytes(rss)} it held when last measured" if rss and rss < cap else ""
    fits = max(1, int(min(cap, rss or cap) * 0.8) >> 20)
    return ("That cap did not save it: less memory was left for the kernel than the cap allowed. "
            f"Run it under `%%guard --max-mem {fits}M`{held}, close other notebooks or programs, "
            "or work on smaller pieces (chunks, a smaller dtype, np.memmap).")


def _cause(journal: Mapping, fault: str, term: str) -> tuple[str, str, str | None]:
    """(cause, evidence, which limit was met) from the strongest evidence available."""
    fatal = _FATAL.search(fault)
    if fatal:
        name = fatal.group(1)
        return f"a fatal signal: {name.lower()}", "faulthandler caught it in the kernel", None
    if term.strip():
        return "terminated by SIGTERM", "a restart or shutdown from Jupyter, or `kill`", None

    cgroup = journal.get("cgroup") or {}
    before = journal.get("counters") or {}
    same_boot = abs((journal.get("boot_time") or 0) - psutil.boot_time()) < 5
    now: dict[str, int] = {}
    if cgroup.get("directory"):
        now.update(memory.cgroup_counters(cgroup["version"], cgroup["directory"], cgroup.get("limit_directory")))
    if same_boot:
        now.update(memory.read_oom_counters(None))
    for key, what, limit in (
        ("cgroup_oom_kill", "the memory cgroup's oom_kill count", "cgroup"),
        ("system_oom_kill", "the system's oom_kill count in /proc/vmstat", "ram"),
    ):
        if key in now and key in before and now[key] > before[key]:
            return _OOM, f"{what} went from {before[key]} to {now[key]}", limit

    rss, cap = journal.get("rss"), _limit_bytes(journal)
    if rss and cap and rss >= NEAR_LIMIT * cap:
        return _OOM_LIKELY, f"its memory was at {rss / cap:.0%} of the limit", None
    if not same_boot:
        return "the machine restarted while the cell was running", "", None
    return (
        "unknown: the process ended without a Python error or a fatal-signal report",
        "SIGKILL from outside, os._exit(), or an OOM kill in a cgroup this kernel cannot see",
        None,
    )


def _limit_bytes(journal: Mapping) -> int | None:
    cgroup_limit = (journal.get("cgroup") or {}).get("limit")
    ram = journal.get("ram_total")
    values = [v for v in (cgroup_limit, ram) if v]
    return min(values) if values else None


def _memory_line(journal: Mapping, limit_met: str | None) -> str:
    rss, rss_time = journal.get("rss"), journal.get("rss_time")
    cgroup_limit = (journal.get("cgroup") or {}).get("limit")
    ram = journal.get("ram_total")
    cap = ((journal.get("cell") or {}).get("limits") or {}).get("max_mem")
    measured = "unknown"
    if rss:
        measured = f"{format_bytes(rss)} resident" + (f" at {_when(rss_time)}" if rss_time else "")
    if limit_met == "cgroup" and cgroup_limit:
        line = (f"Memory at the end: the cgroup limit of {format_bytes(cgroup_limit)} was reached "
                f"(last measured: {measured})")
    elif limit_met == "ram" and ram:
        line = f"Memory at the end: the machine's {format_bytes(ram)} of RAM ran out (last measured: {measured})"
    else:
        line = f"Memory last measured: {measured}"
        if cgroup_limit:
            line += f", against the cgroup limit of {format_bytes(cgroup_limit)}"
        elif ram:
            line += f", against {format_bytes(ram)} of RAM"
    if isinstance(cap, (int, float)) and cap:
        line += f"; the cell ran under --max-mem {format_bytes(cap)}"
    return line + "."


def _crash_stack(text: str, limit: int = 12) -> list[str]:
    """The crashing thread's frames, innermost first, down to the notebook cell's frame."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Current thread")), None)
    if start is None:
        start = next((i for i, line in enumerate(lines) if line.startswith(("Thread 0x", "Stack (most recent"))), None)
    if start is None:
        return []
    frames = []
    for line in lines[start + 1:]:
        if not line.startswith("  "):
            break
        frames.append(line.strip())
        if _CELL_FILE.search(line) or len(frames) >= limit:
            break
    return frames


def _when(timestamp: float) -> str:
    moment = time.localtime(timestamp)
    if time.strftime("%Y-%m-%d", moment) == time.strftime("%Y-%m-%d"):
        return time.strftime("%H:%M:%S", moment)
    return time.strftime("%Y-%m-%d %H:%M:%S", moment)
