"""Edit a notebook's cell sources in its raw JSON text, leaving every other byte alone.

Re-serialising a notebook changes what the tool that wrote it chose (indentation,
key order, escapes, a final newline) and may touch outputs and metadata.  Instead,
the JSON text is scanned for the string tokens of each cell's source and only the
tokens of the changed lines are replaced, each escaped as its old token was.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

# One JSON token after optional whitespace: a string, a punctuation mark, or a bare
# scalar (number, true, false, null).  The string pattern is the unrolled form,
# linear on long base64 outputs.
_TOKEN = re.compile(r'\s*(?:("[^"\\]*(?:\\.[^"\\]*)*")|([{}\[\],:])|([^\s{}\[\],:"]+))', re.DOTALL)


class LayoutError(ValueError):
    """The text is not JSON this scanner can follow; nothing is edited."""


@dataclass
class Source:
    """Where one cell's source lives: the spans of its string tokens (one for a
    single-string source) and their decoded values."""

    number: int  # 1-based position among all the notebook's cells
    spans: list[tuple[int, int]]
    values: list[str]
    is_list: bool

    @property
    def text(self) -> str:
        return "".join(self.values)


def cell_sources(text: str) -> dict[int, Source]:
    """Every cell's source, by cell number, in nbformat 4 (``cells[i].source``) or 3
    (``worksheets[w].cells[i].input``, numbered across worksheets)."""
    cells: list[tuple] = []  # every cell object, empty ones too, in order
    found: dict[tuple, Source] = {}
    for path, span, value in _values(text):
        if span is None:
            if len(path) == 2 and path[0] == "cells" or len(path) == 4 and path[:3:2] == ("worksheets", "cells"):
                cells.append(path)
            continue
        where = _source_of(path)
        if where is not None:
            cell, is_list = where
            source = found.setdefault(cell, Source(0, [], [], is_list))
            source.spans.append(span)
            source.values.append(value)
    numbers = {_cell_key(path): number for number, path in enumerate(cells, start=1)}
    sources = {}
    for cell, source in found.items():
        if cell in numbers:
            source.number = numbers[cell]
            sources[source.number] = source
    return sources


def _cell_key(path: tuple) -> tuple:
    return (0, path[1]) if path[0] == "cells" else (path[1], path[3])


def _source_of(path: tuple) -> tuple[tuple, bool] | None:
    """``(cell key, is a list)`` when ``path`` is a string of a cell's source."""
    if len(path) in (3, 4) and path[0] == "cells" and path[2] == "source" and isinstance(path[1], int):
        return (0, path[1]), len(path) == 4
    if (len(path) in (5, 6) and path[0] == "worksheets" and path[2] == "cells" and path[4] == "input"
            and isinstance(path[1], int) and isinstance(path[3], int)):
        return (path[1], path[3]), len(path) == 6
    return None


def _values(text: str):
    """``(path, (start, end), value)`` of every string value in the JSON ``text``,
    and ``(path, None, None)`` where an object starts; ``path`` holds the keys and
    indices leading to it."""
    stack: list[list] = []  # frames: [is_object, key or index, expecting a key]
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            if text[position:].strip():
                raise LayoutError(f"unexpected text at offset {position}")
            break
        position = match.end()
        string, mark = match.group(1), match.group(2)
        top = stack[-1] if stack else None
        if string is not None:
            value = json.loads(string)
            if top is not None and top[0] and top[2]:
                top[1], top[2] = value, False
            else:
                yield tuple(frame[1] for frame in stack), match.span(1), value
        elif mark in ("{", "["):
            if mark == "{":
                yield tuple(frame[1] for frame in stack), None, None
            stack.append([mark == "{", None if mark == "{" else 0, mark == "{"])
        elif mark in ("}", "]"):
            if not stack:
                raise LayoutError("unbalanced brackets")
            stack.pop()
        elif mark == "," and top is not None:
            if top[0]:
                top[2] = True
            else:
                top[1] += 1
    if stack:
        raise LayoutError("unbalanced brackets")


def replace_sources(text: str, changes: dict[int, str]) -> str:
    """``text`` with the sources of the cells numbered in ``changes`` replaced,
    token by token; ``LayoutError`` when a cell's source cannot be edited in place
    (its lines are not one string each, or it is not the source that was linted)."""
    sources = cell_sources(text)
    edits: list[tuple[int, int, str]] = []
    for number, new in changes.items():
        source = sources.get(number)
        if source is None:
            raise LayoutError(f"cell {number} has no source in the file")
        if source.is_list:
            old_lines = source.values
            new_lines = _lines(new)
            if old_lines != _lines(source.text) or len(new_lines) != len(old_lines):
                raise LayoutError(f"cell {number}: source is not stored one line per string")
        else:
            old_lines, new_lines = source.values, [new]
        for span, old, line in zip(source.spans, old_lines, new_lines):
            if old != line:
                token = text[span[0]:span[1]]
                edits.append((span[0], span[1], _encode_like(line, old, token)))
    for start, end, token in sorted(edits, reverse=True):
        text = text[:start] + token + text[end:]
    return text


def _lines(text: str) -> list[str]:
    """Lines ending in ``\n`` (not at other line breaks, which Jupyter keeps inside a line)."""
    return re.findall(r"[^\n]*\n|[^\n]+$", text)


def _encode_like(value: str, old: str, token: str) -> str:
    """``value`` as a JSON string escaped the way ``token`` (holding ``old``) was:
    non-ASCII as ``\\uXXXX`` only if the old token wrote it so."""
    ascii_only = json.dumps(old, ensure_ascii=True) == token and json.dumps(old, ensure_ascii=False) != token
    return json.dumps(value, ensure_ascii=ascii_only)
