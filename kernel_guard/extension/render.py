"""Messages the extension shows: rich HTML in notebooks, the same words as plain text
elsewhere (terminals, nbconvert to text, logs). One screen each, numbers with units."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

_CODE = re.compile(r"`([^`]+)`")
_COLORS = {"error": "#d32f2f", "warning": "#ed8b00", "info": "#1976d2"}
_BOX = (
    "border-left:4px solid {color};padding:4px 10px;margin:2px 0;"
    "background:rgba(127,127,127,0.08);font-family:var(--jp-ui-font-family,sans-serif);"
    "font-size:var(--jp-ui-font-size1,13px);line-height:1.45"
)


def format_seconds(seconds: float) -> str:
    """``0.8 ms``, ``120 ms``, ``2.35 s``, ``3 min 05 s``."""
    if seconds < 0.01:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def _inline(text: str) -> str:
    """Escape ``text`` for HTML, turning `code spans` into <code>."""
    return _CODE.sub(lambda m: f"<code>{m.group(1)}</code>", html.escape(text, quote=False))


@dataclass
class Message:
    """A titled message: sentences, an optional table, then what to try."""

    title: str
    level: str = "info"  # "error" | "warning" | "info"
    lines: list[str] = field(default_factory=list)
    table: tuple[list[str], list[list[str]]] | None = None
    tips: list[str] = field(default_factory=list)
    pre: str | None = None  # preformatted text (reports from other tools), shown as is

    def text(self) -> str:
        out = [f"kernel_guard: {self.title}"]
        out += [f"  {line}" for line in self.lines]
        if self.table:
            out += ["  " + row for row in _text_table(*self.table)]
        if self.pre:
            out.append(self.pre.rstrip("\n"))
        if self.tips:
            out.append("  Try: " + self.tips[0])
            out += [f"       {tip}" for tip in self.tips[1:]]
        return "\n".join(out)

    def html(self) -> str:
        color = _COLORS[self.level]
        parts = [f'<div style="{_BOX.format(color=color)}">',
                 f'<b style="color:{color}">kernel_guard</b> &mdash; <b>{_inline(self.title)}</b>']
        if self.lines:
            parts.append("<br>" + "<br>".join(_inline(line) for line in self.lines))
        if self.table:
            parts.append(_html_table(*self.table))
        if self.pre:
            parts.append(f'<pre style="margin:4px 0">{html.escape(self.pre.rstrip())}</pre>')
        if self.tips:
            items = "".join(f"<li>{_inline(tip)}</li>" for tip in self.tips)
            parts.append(f'<div>Try:</div><ul style="margin:0 0 2px 0;padding-left:22px">{items}</ul>')
        parts.append("</div>")
        return "".join(parts)

    def bundle(self) -> dict[str, str]:
        return {"text/plain": self.text(), "text/html": self.html()}

    def show(self) -> None:
        from IPython.display import display

        display(self.bundle(), raw=True)


def _text_table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    aligns = _aligns(header, rows)
    fmt = "  ".join(f"{{:{'>' if a == 'right' else '<'}{w}}}" for a, w in zip(aligns, widths))
    return [fmt.format(*header).rstrip()] + [fmt.format(*map(str, row)).rstrip() for row in rows]


_NUMBER = re.compile(r"^[\d.,]+( [KMGT]?i?B| m?s|%)?$|^-$")


def _aligns(header: list[str], rows: list[list[str]]) -> list[str]:
    """Numbers (with their unit) right-aligned, words left-aligned; the first column is a label."""
    return ["right" if i and rows and all(_NUMBER.match(str(row[i])) for row in rows) else "left"
            for i in range(len(header))]


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    cell = "padding:1px 8px;text-align:{align}"
    aligns = _aligns(header, rows)  # a header sits over its column's numbers
    out = ['<table style="border-collapse:collapse;margin:4px 0;font-size:inherit"><tr>']
    out += [f'<th style="{cell.format(align=align)}">{html.escape(h)}</th>' for align, h in zip(aligns, header)]
    out.append("</tr>")
    for row in rows:
        out.append("<tr>")
        for align, value in zip(aligns, row):
            out.append(f'<td style="{cell.format(align=align)}">{_inline(str(value))}</td>')
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)
