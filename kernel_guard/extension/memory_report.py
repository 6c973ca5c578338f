"""What ``%guard mem`` and ``%guard free`` show."""

from __future__ import annotations

from kernel_guard.extension.render import Message, format_seconds
from kernel_guard.holders import MemoryView
from kernel_guard.release import Released
from kernel_guard.sizes import format_bytes

ROWS = 20
_KINDS = ("variable", "output cache", "last error", "input cache")
_WHERE = {"variable": "variables", "output cache": "the output cache (`Out`, `_`)",
          "last error": "the last error's frames", "input cache": "the input cache (`In`)"}


def memory_message(view: MemoryView, rows: int = ROWS) -> Message:
    """The holders, largest first, and how much of the resident memory they explain."""
    explained, rss = view.explained, view.rss
    message = Message(f"this kernel holds {format_bytes(rss)}; the holders below account for "
                      f"{format_bytes(explained)}", "info")
    totals = {kind: sum(h.nbytes for h in view.holders if h.kind == kind) for kind in _KINDS}
    message.lines.append("; ".join(f"{format_bytes(n)} in {_WHERE[kind]}" for kind, n in totals.items() if n))
    if rss >= explained:
        message.lines.append(
            f"{format_bytes(rss - explained)} not held by any name: the interpreter, imported libraries, "
            "and memory the allocator kept after earlier frees")
    else:
        message.lines.append(
            f"listed {format_bytes(explained - rss)} more than is resident: array memory takes room only "
            "once written (`np.zeros`, `np.empty`), and unused pages may be in swap")
    if not view.complete:
        message.lines.append(f"sizing stopped after {format_seconds(view.elapsed)}: later holders show their "
                             "own size without what they contain")
    shown = view.holders[:rows]
    table = [[f"`{h.name}`", format_bytes(h.nbytes), h.what, _notes(h)] for h in shown]
    rest = view.holders[rows:]
    if rest:
        table.append([f"{len(rest):,} more", format_bytes(sum(h.nbytes for h in rest)), "", ""])
    message.table = (["holder", "size", "what", "notes"], table)
    message.tips = ["`del NAME`, or `%guard free NAME ...`, which also clears the output cache and the last error",
                    "`%guard free` alone clears the caches and returns freed memory to the system"]
    return message


def _notes(holder) -> str:
    notes = []
    if holder.also:
        notes.append("also " + ", ".join(f"`{name}`" for name in holder.also))
    if holder.shares:
        notes.append("shares memory with " + ", ".join(f"`{name}`" for name in holder.shares))
    if holder.approximate:
        notes.append("estimated from a sample")
    if holder.kind != "variable":
        notes.append(holder.kind)
    return "; ".join(notes)


def free_message(done: Released) -> Message:
    """What ``%guard free`` let go of, and how far the resident memory fell."""
    fell = done.fell
    title = (f"resident memory fell by {format_bytes(fell)}" if fell > 0
             else "resident memory did not fall")
    lines = [f"{format_bytes(done.before)} before, {format_bytes(done.after)} after",
             "cleared " + (" and ".join(done.cleared) if done.cleared else "nothing (no cached output, no error)")]
    if done.deleted:
        lines.append("deleted " + ", ".join(f"`{name}`" for name in done.deleted))
    if not done.trimmed:
        lines.append("freed heap memory stays with the process here (no `malloc_trim`): the allocator reuses it")
    return Message(title, "info", lines)
