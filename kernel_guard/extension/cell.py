"""Run a ``%%guard`` body as IPython runs a cell: same namespace, same display of the
last expression, IPython syntax inside, tracebacks that point at the cell as shown."""

from __future__ import annotations

import ast
import linecache
import os
import sysconfig
from types import CodeType, TracebackType

from IPython.core.displayhook import DisplayHook

from kernel_guard.errors import GuardMemoryError, GuardOutputLimit, GuardTimeout

# A traceback longer than this many frames of the cell is shown as its first and last
# few: IPython spends about a millisecond per frame formatting one (34 s at depth 30,000).
_KEEP_FRAMES = 3
# Where installed packages and the standard library live: frames there are not the user's.
_LIBRARY_DIRS = tuple({os.path.join(path, "") for key, path in sysconfig.get_paths().items()
                       if key in ("stdlib", "platstdlib", "purelib", "platlib")})
_RED, _RESET = "\x1b[0;31m", "\x1b[0m"  # as IPython shows an exception's name


class CompiledCell:
    """The body of a guarded cell (``source``: IPython syntax already turned into
    Python; ``tree``: it parsed, if already done) compiled as IPython would compile
    a whole cell.

    ``shown`` is the cell as the user sees it and ``offset`` the number of lines above
    the body (1 under ``%%guard``, 0 in auto mode), so line numbers in tracebacks and
    syntax errors match the screen.
    """

    def __init__(self, shell, source: str, tree: ast.Module | None, *, shown: str, offset: int, number: int):
        self.filename = shell.compile.cache(shown, number)
        if tree is None:  # raises its SyntaxError, with the cell's name and line numbers
            tree = shell.compile.ast_parse("\n" * offset + source, filename=self.filename)
        tree = shell.transform_ast(tree)
        quiet = ";" in source[source.rstrip().rfind("\n") + 1:] and DisplayHook.semicolon_at_end_of_expression(source)
        self.codes = _compile(shell, tree.body, self.filename, quiet)
        self.shell = shell

    def run(self) -> None:
        """Execute in the user's namespace; the last expression goes to the displayhook."""
        user_global_ns, user_ns = self.shell.user_global_ns, self.shell.user_ns
        for code in self.codes:
            exec(code, user_global_ns, user_ns)

    def show_like_a_cell(self, exc: BaseException) -> None:
        """Make IPython show ``exc`` from the first frame of this cell, not from the
        magic machinery around it, and shorten very deep tracebacks."""
        try:
            exc._render_traceback_ = _CellTraceback(  # type: ignore[attr-defined]  # IPython's per-exception hook
                self.shell, exc, self.filename
            )
        except (AttributeError, TypeError):  # exceptions that refuse attributes keep IPython's view
            pass


def _compile(shell, nodes: list[ast.stmt], filename: str, quiet: bool) -> list[CodeType]:
    """Split like ``InteractiveShell.run_ast_nodes``: statements run in "exec" mode,
    the nodes that display their value in "single" mode (none if the cell ends in ';')."""
    if not nodes:
        return []
    interactivity = "none" if quiet else shell.ast_node_interactivity
    if interactivity == "last_expr_or_assign":
        target = _assigned_name(nodes[-1])
        if target is not None:
            nodes = [*nodes, ast.fix_missing_locations(ast.copy_location(
                ast.Expr(ast.Name(target, ast.Load())), nodes[-1]))]
        interactivity = "last_expr"
    if interactivity == "last_expr":
        interactivity = "last" if isinstance(nodes[-1], ast.Expr) else "none"
    split = {"none": len(nodes), "last": len(nodes) - 1, "all": 0}[interactivity]
    codes = []
    if split:
        codes.append(shell.compile(ast.Module(nodes[:split], []), filename, "exec"))
    for node in nodes[split:]:
        codes.append(shell.compile(ast.Interactive([node]), filename, "single"))
    return codes


def _assigned_name(node: ast.stmt) -> str | None:
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target = node.targets[0]
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        target = node.target
    else:
        return None
    return target.id if isinstance(target, ast.Name) else None


class _CellTraceback:
    """``_render_traceback_`` for an exception that left a guarded cell."""

    def __init__(self, shell, exc: BaseException, filename: str):
        self.shell, self.exc, self.filename = shell, exc, filename
        self.seen = exc.__traceback__  # stays in the chain while this raise propagates

    def __call__(self) -> list[str]:
        exc, tb = self.exc, self.exc.__traceback__
        frames = _frames(tb)
        if not any(frame is self.seen for frame in frames):  # raised again elsewhere since
            return self.shell.InteractiveTB.structured_traceback(type(exc), exc, tb)
        start = next((i for i, frame in enumerate(frames)
                      if frame.tb_frame.f_code.co_filename == self.filename), None)
        if start is None:  # the guard stopped it before the cell ran: its message says it all
            return self.shell.InteractiveTB.get_exception_only(type(exc), exc)
        # Frames of compiled code (numpy's Cython) would only say "Could not get source".
        frames = [frame for frame in frames[start:] if _has_source(frame)]
        if isinstance(exc, GuardOutputLimit):  # where it stopped is all there is to show
            return [f"{_RED}GuardOutputLimit{_RESET}: {exc} at line {_last_line_in(frames, self.filename)}"]
        below = []
        if isinstance(exc, (GuardMemoryError, GuardTimeout)):  # the user's lines, not a library's insides
            last = max((i for i, frame in enumerate(frames) if not _in_library(frame)), default=0)
            frames, below = frames[:last + 1], frames[last + 1:]
        tail = 1 + len(getattr(exc, "__notes__", ()))  # the exception's line, then its notes
        if len(frames) > 4 * _KEEP_FRAMES:  # first and last frames, the marker where the cut is
            omitted = len(frames) - 2 * _KEEP_FRAMES
            top = self._structured(frames[:_KEEP_FRAMES])[:-tail]
            bottom = self._structured(frames[-_KEEP_FRAMES:])[-(_KEEP_FRAMES + tail):]
            stb = [*top, _marker(f"{omitted:,} frames in between"), *bottom]
        else:
            stb = self._structured(frames)
        if below:
            stb.insert(len(stb) - tail, _marker(f"{_count(len(below))} inside {_libraries(below)}"))
        return stb

    def _structured(self, frames: list[TracebackType]) -> list[str]:
        exc = self.exc
        return self.shell.InteractiveTB.structured_traceback(type(exc), exc, _chain(frames), tb_offset=0)


def _marker(what: str) -> str:
    return f"    [... {what} not shown by kernel_guard]\n"


def _count(frames: int) -> str:
    return f"{frames:,} frame{'s' * (frames != 1)}"


def _has_source(tb: TracebackType) -> bool:
    frame = tb.tb_frame
    return bool(linecache.getlines(frame.f_code.co_filename, frame.f_globals))


def _in_library(tb: TracebackType) -> bool:
    return tb.tb_frame.f_code.co_filename.startswith(_LIBRARY_DIRS)


def _libraries(frames: list[TracebackType]) -> str:
    names = dict.fromkeys(str(frame.tb_frame.f_globals.get("__name__", "?")).partition(".")[0] for frame in frames)
    return ", ".join(names)


def _last_line_in(frames: list[TracebackType], filename: str) -> int:
    return [frame.tb_lineno for frame in frames if frame.tb_frame.f_code.co_filename == filename][-1]


def _frames(tb: TracebackType | None) -> list[TracebackType]:
    frames = []
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    return frames


def _chain(frames: list[TracebackType]) -> TracebackType | None:
    """A new traceback chain through ``frames``; the original is left untouched."""
    tb_next = None
    for tb in reversed(frames):
        tb_next = TracebackType(tb_next, tb.tb_frame, tb.tb_lasti, tb.tb_lineno)
    return tb_next
