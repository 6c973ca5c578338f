"""Notebooks and scripts as lists of Python cells, never executed.

IPython syntax (``%magic``, ``!cmd``, ``x = !cmd``, ``obj?``) is turned into plain
Python with IPython's own ``TransformerManager``; every cell keeps its line count so
that findings point at the line a person sees.  Bodies of Python cell magics
(``%%time``, ``%%guard``, ...) are linted in place; other cell magics are skipped.
"""

from __future__ import annotations

import io
import json
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

# Cell magics whose body is Python run in the user namespace.
PYTHON_CELL_MAGICS = frozenset(
    {"time", "timeit", "capture", "guard", "prun", "debug", "python", "python3", "ipython", "memit", "mprun"}
)
# Line magics whose argument is a Python statement: lint the statement itself
# (`%guard check CODE` is one; `%guard on --max-mem 80%` is not).
_PYTHON_LINE_MAGIC = re.compile(r"^(\s*)%(time|timeit|prun|memit|guard[ \t]+check)\b[ \t]*")
_TIMEIT_OPTION = re.compile(r"-[nr]\s*\d+\s+|-[qopc]\s+|-t\s+|-p\s*\d+\s+")
_IPYTHON_SYNTAX = re.compile(r"^\s*[%!?]|^[^#\n]*=\s*[%!]|\?\s*$|^\s*(>>>|In \[)", re.MULTILINE)
_CELL_MAGIC = re.compile(r"^\s*%%(\S+)")
# Datalab-era notebooks write `%bash` / `%bq query` on the first line of a cell whose
# body is shell or SQL: such a cell is not Python.
_LINE_AS_CELL_MAGIC = re.compile(r"^\s*%(bash|sh|bq|sql|html|javascript|js|latex|markdown|svg|script|perl|ruby|sx|system|gcs|storage|ml|mlalpha|chart|writefile|file)\b[^\n]*\n\s*\S")


class InputError(Exception):
    """A file that cannot be read as a notebook or a source file; its message is one line."""


@dataclass
class Cell:
    """One code cell (or a whole ``.py`` file) as Python.

    ``number`` is the 1-based position among ALL cells of the notebook, as a
    person counts them on screen; ``None`` for a ``.py`` file.  ``source`` has the
    same lines as ``raw``; ``col_shift[line]`` is how many columns were removed at
    the start of a line (``%time x = 1`` is linted as ``x = 1``).
    """

    number: int | None
    raw: str
    source: str
    col_shift: dict[int, int] = field(default_factory=dict)

    def raw_line(self, line: int) -> str:
        lines = self.raw.splitlines()
        return lines[line - 1] if 0 < line <= len(lines) else ""


@dataclass
class Document:
    path: str
    cells: list[Cell]
    is_notebook: bool


def python_source(text: str) -> tuple[str, dict[int, int]] | None:
    """Python for one cell's text, with the same number of lines, and the column
    shifts applied; ``None`` when the cell is not Python (``%%bash``, ``%%html``...)."""
    if _LINE_AS_CELL_MAGIC.match(text):
        return None
    magic = _CELL_MAGIC.match(text)
    if magic:
        if magic.group(1) not in PYTHON_CELL_MAGICS:
            return None
        head, _, body = text.partition("\n")
        translated = python_source(body)
        if translated is None:
            return None
        body_source, body_shift = translated
        return "\n" + body_source, {line + 1: shift for line, shift in body_shift.items()}
    text, shifts = _dedent(text)
    if not _IPYTHON_SYNTAX.search(text):
        return text, shifts
    translated, magic_shifts = _translate_ipython(text)
    return translated, {line: shifts.get(line, 0) + magic_shifts.get(line, 0) for line in {*shifts, *magic_shifts}}


def _dedent(text: str) -> tuple[str, dict[int, int]]:
    """IPython runs a cell whose first line is indented by removing that indent
    from every line that has it (its ``leading_indent`` cleanup); so do we."""
    first = next((line for line in text.split("\n") if line.strip()), "")
    indent = first[: len(first) - len(first.lstrip())]
    if not indent:
        return text, {}
    lines = text.split("\n")
    shifts = {}
    for index, line in enumerate(lines):
        if line.startswith(indent):
            lines[index] = line[len(indent):]
            shifts[index + 1] = len(indent)
    return "\n".join(lines), shifts


def _translate_ipython(text: str) -> tuple[str, dict[int, int]]:
    lines = text.split("\n")
    shifts: dict[int, int] = {}
    for index, line in enumerate(lines):
        match = _PYTHON_LINE_MAGIC.match(line)
        if match and line[match.end():].strip():
            rest = line[match.end():]
            if match.group(2) == "timeit":
                while (option := _TIMEIT_OPTION.match(rest)):
                    rest = rest[option.end():]
            lines[index] = match.group(1) + rest
            shifts[index + 1] = len(line) - len(lines[index])
    text = "\n".join(lines)
    translated = _transformer().transform_cell(text)
    if translated.endswith("\n") and not text.endswith("\n"):
        translated = translated[:-1]
    if translated.count("\n") != text.count("\n"):
        translated = _translate_lines(text)
    return translated, shifts


def _translate_lines(text: str) -> str:
    """When IPython's transforms merge lines (``!cmd \\`` continuations), translate
    each IPython line with its continuations alone and pad with blank lines."""
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        if not _IPYTHON_SYNTAX.match(line) and not re.search(r"\?\s*$", line):
            index += 1
            continue
        end = index
        while lines[end].rstrip().endswith("\\") and end + 1 < len(lines):
            end += 1
        indent = line[: len(line) - len(line.lstrip())]
        chunk = "\n".join(lines[index : end + 1]).strip()
        translated = _transformer().transform_cell(chunk).strip()
        lines[index] = indent + (translated if "\n" not in translated else "pass")
        lines[index + 1 : end + 1] = [""] * (end - index)
        index = end + 1
    return "\n".join(lines)


_TRANSFORMER = None


def _transformer():
    global _TRANSFORMER
    if _TRANSFORMER is None:
        from IPython.core.inputtransformer2 import TransformerManager

        _TRANSFORMER = TransformerManager()
    return _TRANSFORMER


def read_document(path: str | Path) -> Document | None:
    """Read a ``.ipynb`` or ``.py`` file.  ``None`` for a notebook in another
    language; ``InputError`` (one line) for anything that cannot be read."""
    return parse_document(path, read_bytes(path))


def read_bytes(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror or exc}") from None


def parse_document(path: str | Path, data: bytes) -> Document | None:
    """``read_document`` for bytes already read (the cache hashes what is linted)."""
    path = Path(path)
    if path.suffix == ".ipynb":
        return _read_notebook(str(path), data)
    return _read_script(str(path), data)


def _read_script(path: str, data: bytes) -> Document:
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        text = data.decode(encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot decode source file: {exc}") from None
    text = text.lstrip("\ufeff")
    return Document(path, [Cell(None, text, text)], is_notebook=False)


def _read_notebook(path: str, data: bytes) -> Document | None:
    try:
        raw = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"not a notebook: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except ValueError as exc:
        raise InputError(f"not a notebook: invalid JSON ({exc})") from None
    notebook = _as_v4(raw)
    if not _is_python(notebook.get("metadata") or {}):
        return None
    cells = []
    for number, cell in enumerate(notebook["cells"], start=1):
        if cell.get("cell_type") != "code":
            continue
        raw_source = cell.get("source", "")
        if isinstance(raw_source, list):
            raw_source = "".join(raw_source)
        translated = python_source(raw_source)
        if translated is not None:
            cells.append(Cell(number, raw_source, *translated))
    return Document(path, cells, is_notebook=True)


def _as_v4(raw: object) -> dict:
    """The notebook in format 4.  Full schema validation costs more than reading
    (nbformat's validator triples the time), so check the structure we rely on."""
    if not isinstance(raw, dict) or not isinstance(raw.get("nbformat"), int):
        raise InputError("not a notebook: no integer 'nbformat' field")
    if raw["nbformat"] < 4:
        import nbformat

        try:
            raw = nbformat.convert(nbformat.from_dict(raw), 4)
        except Exception as exc:  # nbformat raises many types on malformed v1-v3 files
            raise InputError(f"not a notebook: cannot convert nbformat {raw['nbformat']}: {exc}") from None
    elif raw["nbformat"] > 4:
        raise InputError(f"not a notebook: unsupported nbformat {raw['nbformat']}")
    cells = raw.get("cells")
    if not isinstance(cells, list) or not all(
        isinstance(cell, dict) and isinstance(cell.get("source", ""), (str, list)) for cell in cells
    ):
        raise InputError("not a notebook: 'cells' is not a list of cells with source text")
    return raw


def _is_python(metadata: dict) -> bool:
    """By ``language_info``, else the kernelspec; a notebook that says nothing is Python."""
    language = (metadata.get("language_info") or {}).get("name") or (
        metadata.get("kernelspec") or {}
    ).get("language")
    if language:
        return str(language).lower().startswith("python")
    name = str((metadata.get("kernelspec") or {}).get("name", "")).lower()
    return not _OTHER_KERNEL.search(name)


_OTHER_KERNEL = re.compile(r"julia|^ir$|bash|scala|java|sql|ruby|rust|cling|xcpp|matlab|octave|powershell|kotlin")
