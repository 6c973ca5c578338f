"""``%guard history``: the guarded cells of this session, and the memory of each over
time against its cap, drawn with matplotlib when it is importable, as text
sparklines otherwise (matplotlib stays an optional dependency)."""

from __future__ import annotations

import base64
import io

from kernel_guard.extension.render import Message, format_seconds
from kernel_guard.sizes import format_bytes

_SPARKS = "▁▂▃▄▅▆▇█"
_LOW = "·"  # a whole sparkline under the first eighth of the cap
PLOTTED = 10  # the last cells drawn: one colour each, a legend still readable
_SIZE = (7.0, 3.2)  # inches
_DPI = 100
_SCALE = 2  # rendered at twice the size it is shown at: sharp on high-density screens
_HIT = {"memory": "memory cap hit", "timeout": "timed out", "recursion": "recursion limit hit",
        "output": "output cap hit"}


def show_history(entries: list) -> None:
    """Show ``entries`` (``HistoryEntry``, oldest first): a table, and the picture if
    matplotlib can draw it, its text/plain being the table with sparklines."""
    if not entries:
        Message("no guarded cells yet", "info", ["run a cell under `%%guard`, or `%guard on`"]).show()
        return
    table = _table(entries, sparklines=True)
    png = plot_png(entries)
    if png is None:
        table.show()
        return
    from IPython.display import display

    # Notebooks show the HTML table above the picture; text front ends get the table once.
    display({"text/html": _table(entries, sparklines=False).html()}, raw=True)
    width, height = (round(side * _DPI) for side in _SIZE)
    display({"image/png": base64.b64encode(png).decode("ascii"), "text/plain": table.text()},
            metadata={"image/png": {"width": width, "height": height}}, raw=True)


def sparkline(samples, top: int | None, width: int = 24) -> str:
    """Resident memory over time as block characters, scaled to ``top`` (the cap).

    A cell that stays in the lowest eighth of its cap is drawn with dots: a row of
    the lowest block reads as an underline, not as memory."""
    values = [rss for _, rss in samples]
    if not values or not top:
        return ""
    step = max(1, -(-len(values) // width))
    levels = [min(len(_SPARKS) - 1, int(max(values[i:i + step]) / top * len(_SPARKS)))
              for i in range(0, len(values), step)]
    if not any(levels):
        return _LOW * len(levels)
    return "".join(_SPARKS[level] for level in levels)


def plot_png(entries: list) -> bytes | None:
    """The memory of the last :data:`PLOTTED` cells that have samples, as PNG bytes;
    None if there are none, or without matplotlib.

    Drawn on matplotlib's Agg objects directly, not pyplot: the user's pyplot
    figures, backend and rc settings are left as they are."""
    drawn = [e for e in entries if e.samples]
    if not drawn:
        return None
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return None
    skipped = len(drawn) - PLOTTED
    drawn = drawn[-PLOTTED:]
    top = max(max(e.cap or 0, e.peak_rss or 0, *(rss for _, rss in e.samples)) for e in drawn)
    unit, scale = ("GiB", 1024 ** 3) if top >= 1024 ** 3 else ("MiB", 1024 ** 2)
    longest = max(e.samples[-1][0] for e in drawn)
    minutes = longest >= 180
    tscale = 60 if minutes else 1

    try:
        figure = Figure(figsize=_SIZE, dpi=_DPI, layout="constrained")
    except TypeError:  # matplotlib before 3.5: the sparklines will do
        return None
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    colors = [f"C{i}" for i in range(10)]
    several_caps = len({e.cap for e in drawn}) > 1  # then the legend says whose cap is whose
    for color, entry in zip(colors, drawn):
        times = [t / tscale for t, _ in entry.samples]
        values = [rss / scale for _, rss in entry.samples]
        notes = [f"cap {_size(entry.cap)}" if entry.cap else "no cap"] if several_caps else []
        if entry.outcome != "ok":
            notes.append(_HIT.get(entry.limit_hit, entry.outcome))
        label = f"cell {entry.number if entry.number is not None else '?'}"
        if notes:
            label += f" ({', '.join(notes)})"
        axes.plot(times, values, color=color, linewidth=1.6, label=label,
                  marker="o" if len(times) == 1 else None, markersize=3)
        if entry.limit_hit:
            axes.plot(times[-1], values[-1], marker="X", markersize=9, color=color,
                      markeredgecolor="black", markeredgewidth=0.8, linestyle="none", zorder=5)
    for cap in sorted({e.cap for e in drawn if e.cap}):
        axes.axhline(cap / scale, color="0.35", linestyle="--", linewidth=1)
        # at the left: a cell stopped by its cap ends (and is marked) at the right
        axes.annotate(f"cap {_size(cap)}", (0, cap / scale), xycoords=("axes fraction", "data"),
                      xytext=(4, 2), textcoords="offset points", ha="left", va="bottom",
                      fontsize=8, color="0.3")

    axes.set_xlim(left=0, right=max(longest / tscale, 1e-3) * 1.02)
    axes.set_ylim(bottom=0, top=top / scale * 1.12)
    axes.set_xlabel(f"{'minutes' if minutes else 'seconds'} since the cell started", fontsize=9)
    axes.set_ylabel(f"resident memory ({unit})", fontsize=9)
    title = "memory of the guarded cells"
    if skipped > 0:
        title += f" (the last {PLOTTED}; {skipped} earlier not shown)"
    axes.set_title(title, fontsize=10, loc="left")
    axes.yaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
    axes.tick_params(labelsize=8)
    axes.grid(axis="y", color="0.9", linewidth=0.8)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)

    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=_DPI * _SCALE)
    return out.getvalue()


def _table(entries: list, *, sparklines: bool) -> Message:
    header = ["cell", "first line", "result", "peak", "cap", "time", "limit hit"]
    rows = [[
        "-" if e.number is None else str(e.number),
        f"`{_shorten(e.source, 40)}`" if e.source else "",
        e.outcome,
        format_bytes(e.peak_rss) if e.peak_rss else "-",
        format_bytes(e.cap) if e.cap else "-",
        format_seconds(e.elapsed) if e.elapsed is not None else "-",
        e.limit_hit or "-",
    ] for e in entries]
    if sparklines:
        header.append("memory over time")
        for row, e in zip(rows, entries):
            row.append(sparkline(e.samples, e.cap or e.peak_rss))
    return Message(f"{len(entries)} guarded cell{'s' * (len(entries) != 1)} in this session", "info",
                   table=(header, rows))


def _size(nbytes: int) -> str:
    """``2 GiB``, ``600 MiB``, ``1.5 GiB``: short enough for a legend."""
    return format_bytes(nbytes).replace(".0 ", " ")


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
