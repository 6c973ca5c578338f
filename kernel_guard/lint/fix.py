"""``kernel-lint --fix``: the safe rewrites, made with libcst on the reported nodes.

A fix rewrites only what cannot change what a working cell computes:

* KG504 ``exit()``/``quit()`` as a statement -> ``raise SystemExit`` (same argument);
* KG404 a bare ``except:`` -> ``except Exception:``;
* KG304 ``sys.setrecursionlimit(N)`` -> the largest limit the C stack holds.

Each cell (or ``.py`` file) is parsed with libcst and only the reported nodes are
replaced, so the rest keeps its formatting byte for byte.  In a notebook only the
changed source lines are rewritten, in the raw JSON text: its layout, outputs and
metadata stay as they are (see ``kernel_guard.lint.notebook_text``).
"""

from __future__ import annotations

import io
import os
import tempfile
import tokenize
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from kernel_guard.lint.callgraph import C_STACK_FRAMES
from kernel_guard.lint.engine import lint_document
from kernel_guard.lint.finding import Finding
from kernel_guard.lint.notebook_text import LayoutError, replace_sources
from kernel_guard.lint.selection import Selection
from kernel_guard.source import Cell, Document, InputError, parse_document, read_bytes

Position = tuple[int, int]  # 1-based line, 0-based column, in the Python text libcst parses


def _raise_system_exit(node: cst.CSTNode) -> cst.CSTNode | None:
    """``exit(...)`` as a whole statement -> ``raise SystemExit(...)``."""
    if not (isinstance(node, cst.Expr) and isinstance(node.value, cst.Call)):
        return None
    call = node.value
    if len(call.args) > 1 or any(arg.keyword or arg.star for arg in call.args):
        return None  # exit(code=1) or exit(*a): SystemExit takes neither
    exception: cst.BaseExpression = cst.Name("SystemExit")
    if call.args:
        exception = call.with_changes(func=exception)
    return cst.Raise(exc=exception)


def _except_exception(node: cst.CSTNode) -> cst.CSTNode | None:
    if not (isinstance(node, cst.ExceptHandler) and node.type is None):
        return None
    return node.with_changes(type=cst.Name("Exception"), whitespace_after_except=cst.SimpleWhitespace(" "))


def _safe_recursion_limit(node: cst.CSTNode) -> cst.CSTNode | None:
    if not (isinstance(node, cst.Call) and len(node.args) == 1 and not node.args[0].keyword
            and not node.args[0].star):
        return None
    return node.with_changes(args=[node.args[0].with_changes(value=cst.Integer(f"{C_STACK_FRAMES:_}"))])


# Code -> (the kinds of node a finding of it starts at, the rewrite).
FIXES: dict[str, tuple[tuple[type[cst.CSTNode], ...], Callable[[cst.CSTNode], cst.CSTNode | None]]] = {
    "KG504": ((cst.Expr,), _raise_system_exit),
    "KG404": ((cst.ExceptHandler,), _except_exception),
    "KG304": ((cst.Call,), _safe_recursion_limit),
}


class _Rewriter(cst.CSTTransformer):
    """Replaces the nodes of the wanted kinds that start at the wanted positions."""

    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, wanted: dict[Position, set[str]]) -> None:
        super().__init__()
        self.wanted = wanted
        self.done: set[tuple[Position, str]] = set()

    def on_leave(self, original: cst.CSTNode, updated: cst.CSTNode):  # type: ignore[override]
        start = self._start(original)
        if start is None:
            return updated
        for code in self.wanted.get(start, ()):
            kinds, rewrite = FIXES[code]
            if isinstance(original, kinds) and (start, code) not in self.done:
                replaced = rewrite(updated)
                if replaced is not None:
                    self.done.add((start, code))
                    return replaced
        return updated

    def _start(self, node: cst.CSTNode) -> Position | None:
        position = self.get_metadata(PositionProvider, node, None)
        return None if position is None else (position.start.line, position.start.column)


def fix_python(code: str, wanted: dict[Position, set[str]]) -> tuple[str, int]:
    """``code`` with the fixes at ``wanted`` applied, and how many were.  Code that
    libcst cannot parse is returned unchanged."""
    if not wanted:
        return code, 0
    try:
        module = cst.parse_module(code)
    except cst.ParserSyntaxError:
        return code, 0
    rewriter = _Rewriter(wanted)
    fixed = MetadataWrapper(module).visit(rewriter)
    return fixed.code, len(rewriter.done)


def fixable(findings: Iterable[Finding]) -> list[Finding]:
    return [finding for finding in findings if finding.code in FIXES]


def fix_cell(cell: Cell, findings: list[Finding]) -> tuple[str, int]:
    """The cell's raw text with the fixes applied: only its changed lines differ,
    and a line is changed only where its raw text is the Python libcst saw (after
    the columns IPython syntax shifted)."""
    wanted: dict[Position, set[str]] = {}
    for finding in findings:
        column = finding.column - 1 - cell.col_shift.get(finding.line, 0)
        wanted.setdefault((finding.line, column), set()).add(finding.code)
    fixed, count = fix_python(cell.source, wanted)
    if not count:
        return cell.raw, 0
    raw_lines = cell.raw.split("\n")
    old_lines, new_lines = cell.source.split("\n"), fixed.split("\n")
    if len(new_lines) != len(old_lines) or len(raw_lines) != len(old_lines):
        return cell.raw, 0  # a fix never adds lines; refuse rather than guess
    for index, (old, new) in enumerate(zip(old_lines, new_lines)):
        if old == new:
            continue
        shift = cell.col_shift.get(index + 1, 0)
        if raw_lines[index][shift:] != old:
            return cell.raw, 0  # IPython syntax rewrote this line: leave the cell alone
        raw_lines[index] = raw_lines[index][:shift] + new
    return "\n".join(raw_lines), count


def fix_document(document: Document, findings: list[Finding]) -> tuple[dict[int, str], int]:
    """New raw text of each changed cell, by its index in ``document.cells``, and
    how many fixes were made."""
    changed: dict[int, str] = {}
    total = 0
    for index, cell in enumerate(document.cells):
        mine = [f for f in fixable(findings) if f.cell == cell.number]
        if mine:
            text, count = fix_cell(cell, mine)
            if count:
                changed[index] = text
                total += count
    return changed, total


@dataclass
class FileFix:
    """One file before and after its fixes, and the findings left in it."""

    path: str
    before: bytes
    after: bytes
    fixed: int
    remaining: list[Finding]


def fix_file(path: str, selection: Selection, mem_budget: int | None) -> FileFix:
    """Lint ``path``, apply the fixes in memory and lint the result; ``InputError``
    when it cannot be read.  Nothing is written."""
    data = read_bytes(path)
    document = parse_document(path, data)
    if document is None:  # a notebook in another language
        return FileFix(path, data, data, 0, [])
    findings = lint_document(document, selection, mem_budget)
    changed, fixed = fix_document(document, findings)
    after = _file_bytes(document, data, changed) if fixed else data
    if after == data:
        return FileFix(path, data, data, 0, findings)
    fixed_document = parse_document(path, after)
    remaining = lint_document(fixed_document, selection, mem_budget) if fixed_document else []
    return FileFix(path, data, after, fixed, remaining)


def _file_bytes(document: Document, data: bytes, changed: dict[int, str]) -> bytes:
    if document.is_notebook:
        try:
            # (a notebook's cells have numbers)
            numbers = {document.cells[i].number or 0: raw for i, raw in changed.items()}
            text = replace_sources(data.decode("utf-8"), numbers)
        except LayoutError:
            return data  # a layout we cannot edit in place: leave the file as it is
        return text.encode("utf-8")
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    return changed[0].encode(encoding)  # "utf-8-sig" when the file starts with a BOM: it is kept


def write(fix: FileFix) -> None:
    """Replace the file's content with ``fix.after`` (through a symlink, keeping its
    mode), unless it changed since it was read."""
    target = os.path.realpath(fix.path)
    if read_bytes(target) != fix.before:
        raise InputError("changed while it was being fixed; not written")
    folder, name = os.path.split(target)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".kernel-lint-fix")
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(fix.after)
        os.chmod(temporary, os.stat(target).st_mode & 0o7777)
        os.replace(temporary, target)
    except OSError as exc:
        os.unlink(temporary)
        raise InputError(f"cannot write the fixed file: {exc.strerror or exc}") from None
