"""Where a cell's source line sits in the raw ``.ipynb`` file, for SARIF and
GitHub annotations, whose viewers count the lines of the JSON file itself.

Jupyter writes a cell's source as a JSON list of strings, one source line per
string and one string per file line; a source may also be a single string (all
its lines on one file line) or any other layout JSON allows.  The file is
scanned once, token by token (no recursion: the nesting is the file's), and each
string of a cell's source is mapped to the file line it starts on.  A line that
cannot be placed falls back to the file line where the cell's source starts.
"""

from __future__ import annotations

import bisect
import json
import re

# A JSON token after optional whitespace: punctuation, the start of a string, or a literal/number.
_TOKEN = re.compile(r"[ \t\r\n]*(?:([{}\[\],:])|(\")|([-+0-9.eE]+|true|false|null|NaN|-?Infinity))")
_scanstring = json.decoder.scanstring  # type: ignore[attr-defined]  # C-accelerated, public since 2.6


class _Cells:
    """Per cell number: the file line where its source starts, and its strings as
    ``(file line, text)``."""

    def __init__(self) -> None:
        self.start: dict[int, int] = {}
        self.pieces: dict[int, list[tuple[int, str]]] = {}

    def raw_line(self, cell: int, line: int) -> int | None:
        pieces = self.pieces.get(cell)
        if pieces is None:
            return None
        starts: list[int] = []  # per source line: the file line of the string it starts in
        at_line_start = True
        for raw, text in pieces:
            if not text:
                continue
            if at_line_start:
                starts.append(raw)
            starts.extend([raw] * text.count("\n", 0, len(text) - 1))
            at_line_start = text.endswith("\n")
        return starts[line - 1] if 0 < line <= len(starts) else self.start.get(cell)


class RawLines:
    """The file lines of notebook findings; each file is scanned once per report."""

    def __init__(self) -> None:
        self._files: dict[str, _Cells | None] = {}

    def of(self, path: str, cell: int, line: int) -> int | None:
        """The 1-based line of the file ``path`` holding source line ``line`` of cell
        ``cell``; ``None`` if the file cannot be read as a notebook any more."""
        if path not in self._files:
            self._files[path] = _scan_file(path)
        cells = self._files[path]
        return cells.raw_line(cell, line) if cells is not None else None


def _scan_file(path: str) -> _Cells | None:
    from kernel_guard.source import InputError, read_bytes

    try:
        return scan(read_bytes(path).decode("utf-8"))
    except (InputError, UnicodeDecodeError, ValueError):
        return None


def scan(text: str) -> _Cells:
    """The source strings of every cell of a notebook's JSON text (format 4
    ``cells[i].source``, format 3 ``worksheets[w].cells[i].input``/``source``)."""
    newlines = [match.start() for match in re.finditer("\n", text)]
    cells = _Cells()
    # Each open container: [is_object, path to it, key or index of the next value, expecting a key].
    stack: list[list] = []
    numbers: dict[tuple, int] = {}  # path of a cell object -> its number on screen
    position = 0
    while True:
        match = _TOKEN.match(text, position)
        if match is None:
            if text[position:].strip():
                raise ValueError("not JSON")
            return cells
        punctuation, quote, _ = match.groups()
        start, position = match.end() - 1, match.end()  # where the token starts: its last character
        punctuation = punctuation or ""
        top = stack[-1] if stack else None
        if quote:
            value, position = _scanstring(text, position)
            if top is not None and top[0] and top[3]:  # a key
                top[2], top[3] = value, False
                continue
            _found_string(cells, numbers, _value_path(top), value, bisect.bisect_left(newlines, start) + 1)
        elif punctuation and punctuation in "{[":
            path = _value_path(top)
            if punctuation == "{" and _is_cell(path):
                numbers[path] = len(numbers) + 1
            if _is_source(path) and numbers.get(path[:-1]) is not None:
                number = numbers[path[:-1]]
                cells.pieces[number] = []
                cells.start[number] = bisect.bisect_left(newlines, start) + 1
            stack.append([punctuation == "{", path, None if punctuation == "{" else 0, punctuation == "{"])
        elif punctuation and punctuation in "}]":
            if not stack:
                raise ValueError("not JSON")
            stack.pop()
        elif punctuation == "," and top is not None:
            if top[0]:
                top[3] = True
            else:
                top[2] += 1
        if not stack and punctuation and punctuation in "}]":
            return cells


def _value_path(top: list | None) -> tuple:
    return () if top is None else (*top[1], top[2])


def _is_cell(path: tuple) -> bool:
    return (len(path) == 2 and path[0] == "cells") or (
        len(path) == 4 and path[0] == "worksheets" and path[2] == "cells"
    )


def _is_source(path: tuple) -> bool:
    return len(path) >= 1 and path[-1] in ("source", "input") and _is_cell(path[:-1])


def _found_string(cells: _Cells, numbers: dict[tuple, int], path: tuple, value: str, line: int) -> None:
    if _is_source(path) and path[:-1] in numbers:  # a source written as one string
        number = numbers[path[:-1]]
        cells.pieces[number] = [(line, value)]
        cells.start[number] = line
    elif len(path) >= 2 and _is_source(path[:-1]) and path[:-2] in numbers:  # one string of a list
        number = numbers[path[:-2]]
        cells.pieces.setdefault(number, []).append((line, value))
