"""Notebooks and scripts as lists of Python cells, never executed.

IPython syntax (``%magic``, ``!cmd``, ``x = !cmd``, ``obj?``) is turned into plain
Python with IPython's own ``TransformerManager``; every cell keeps its line count so
that findings point at the line a person sees.  Bodies of Python cell magics
(``%%time``, ``%%guard``, ...) are linted in place; other cell magics are skipped.
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
import tokenize
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from kernel_guard.escapes import translate_escapes
from kernel_guard.parse_guard import PARSE_ERRORS

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
_LINE_AS_CELL_MAGIC = re.compile(
    r"^\s*%(bash|sh|bq|sql|html|javascript|js|latex|markdown|svg|script|perl|ruby|sx|system|gcs|storage|ml|mlalpha"
    r"|chart|writefile|file)\b[^\n]*\n\s*\S"
)


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
    shifts applied; ``None`` when the cell is not Python (``%%bash``, ``%%html``...).
    Text IPython's tokenizer rejects is returned as it is: its parse reports why."""
    head_lines = 0  # stacked Python cell magics (``%%time`` over ``%%capture``) are peeled one by one
    while True:
        if _LINE_AS_CELL_MAGIC.match(text):
            return None
        magic = _CELL_MAGIC.match(text)
        if not magic:
            break
        if magic.group(1) not in PYTHON_CELL_MAGICS:
            return None
        text = text.partition("\n")[2]
        head_lines += 1
    text, shifts = _dedent(text)
    if _IPYTHON_SYNTAX.search(text):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # IPython warns about odd line endings: KG001 says what matters
                text, magic_shifts = _translate_ipython(text)
        except PARSE_ERRORS:
            magic_shifts = {}
        shifts = {line: shifts.get(line, 0) + magic_shifts.get(line, 0) for line in {*shifts, *magic_shifts}}
    return "\n" * head_lines + text, {line + head_lines: shift for line, shift in shifts.items()}


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
    translated = translate_escapes(text)  # IPython's own result for plain %magic/!cmd lines, without IPython
    if translated is None:
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


MAX_BYTES = 64 * 2**20  # a larger "notebook" or script is not one a person edits


def read_bytes(path: str | Path) -> bytes:
    """The bytes of a regular file of at most ``MAX_BYTES``.  Anything else (a FIFO,
    a device, a link to ``/dev/zero``) is refused before a byte is read: it could
    block forever or never end."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise InputError("not a regular file: skipped")
        # O_NONBLOCK: should the path be swapped for a FIFO after the check, open does not wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise InputError("not a regular file: skipped")
            if info.st_size > MAX_BYTES:
                raise InputError(f"larger than {MAX_BYTES // 2**20} MiB: skipped")
            data = file.read(MAX_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise InputError(f"larger than {MAX_BYTES // 2**20} MiB: skipped")
    return data


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
    except (SyntaxError, LookupError, UnicodeError, ValueError, TypeError) as exc:
        # A declared codec may be no text encoding at all (``punycode``, ``rot13``, ``zlib``).
        raise InputError(f"cannot decode source file: {_one_line(exc)}") from None
    text = text.lstrip("\ufeff")
    return Document(path, [Cell(None, text, text)], is_notebook=False)


def _read_notebook(path: str, data: bytes) -> Document | None:
    try:
        raw = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"not a notebook: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except RecursionError:
        raise InputError("not a notebook: JSON nested too deeply") from None
    except ValueError as exc:
        raise InputError(f"not a notebook: invalid JSON ({_one_line(exc)})") from None
    notebook = _as_v4(raw)
    if not _is_python(_mapping(notebook.get("metadata"))):
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
    """The notebook in format 4, as ``nbformat.read(path, as_version=4)`` reads it.
    Full schema validation costs more than reading (nbformat's validator triples
    the time), so check the structure we rely on: cells, each with its text."""
    if not isinstance(raw, dict) or type(raw.get("nbformat")) is not int:
        raise InputError("not a notebook: no integer 'nbformat' field")
    if raw["nbformat"] < 4:
        raw = _upgrade(raw)
    elif raw["nbformat"] > 4:
        raise InputError(f"not a notebook: unsupported nbformat {raw['nbformat']}")
    cells = raw.get("cells")
    if not isinstance(cells, list):
        raise InputError("not a notebook: 'cells' is not a list")
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict):
            raise InputError(f"not a notebook: cell {number} is not a JSON object")
        source = cell.get("source", "")
        if not (isinstance(source, str) or isinstance(source, list) and all(isinstance(s, str) for s in source)):
            raise InputError(f"not a notebook: cell {number} has a 'source' that is not text")
    return raw


def _upgrade(raw: dict) -> dict:
    """nbformat 1-3 through nbformat's own reader and converter (which join
    ``input`` stored as a list of lines), with its validation log silenced."""
    import logging

    import nbformat

    version = raw["nbformat"]
    disabled = logging.root.manager.disable
    logging.disable(logging.CRITICAL)  # "Notebook JSON is not valid v3" goes to stderr otherwise
    try:
        reader = nbformat.versions[version].to_notebook_json
        return nbformat.convert(reader(raw, minor=raw.get("nbformat_minor", 0)), 4)
    except Exception as exc:  # nbformat raises many types on malformed v1-v3 files
        raise InputError(f"not a notebook: cannot convert nbformat {version}: {_one_line(exc)}") from None
    finally:
        logging.disable(disabled)


def _mapping(value: object) -> dict:
    """A metadata field as a dict: a value of another type says nothing."""
    return value if isinstance(value, dict) else {}


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def _is_python(metadata: dict) -> bool:
    """By ``language_info``, else the kernelspec; a notebook that says nothing is Python."""
    kernelspec = _mapping(metadata.get("kernelspec"))
    language = _mapping(metadata.get("language_info")).get("name") or kernelspec.get("language")
    if isinstance(language, str) and language:
        return language.lower().startswith("python")
    name = kernelspec.get("name", "")
    name = name.lower() if isinstance(name, str) else ""
    return not _OTHER_KERNEL.search(name)


_OTHER_KERNEL = re.compile(r"julia|^ir$|bash|scala|java|sql|ruby|rust|cling|xcpp|matlab|octave|powershell|kotlin")
