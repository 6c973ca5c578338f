"""One loaded kernel_guard: its configuration, auto mode, history and the guarded run
of a cell. The magics (``magics.py``) are the thin user-facing layer on top; what a
guarded cell says (refusals, reports, summaries) is built in ``messages.py``."""

from __future__ import annotations

import ast
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from IPython.core.error import UsageError

from kernel_guard.errors import GuardMemoryError
from kernel_guard.extension import checks, messages
from kernel_guard.extension.cell import CompiledCell
from kernel_guard.extension.options import Options, Resolved, describe_size, make_config, resolve
from kernel_guard.extension.render import Message
from kernel_guard.runtime.limits import LIMITS
from kernel_guard.sizes import format_bytes

if TYPE_CHECKING:
    from kernel_guard.runtime import RunReport

# Cells auto mode leaves alone: they manage the guard itself.
_NOT_AUTO = ("%%guard", "%guard", "%load_ext", "%unload_ext", "%reload_ext")
AUTO_FLAG = "--auto-cell"  # marks the %%guard line auto mode adds (hidden option)
HISTORY_SIZE = 1000
USABLE_TTL = 5.0  # seconds
FREEING_ROOM = 64 * 1024 * 1024  # what a cell may add to a kernel already over its cap




@dataclass(frozen=True)
class Prepared:
    """A body parsed once, by the input transformer, for the magic that runs it."""

    body: str
    offset: int  # blank lines put above it, so that line numbers count the cell as shown
    transformed: str  # Python source
    tree: ast.Module | None  # None: does not parse (or has top-level await)
    is_async: bool  # has top-level await

    @property
    def valid(self) -> bool:
        return self.tree is not None or self.is_async


@dataclass
class HistoryEntry:
    number: int | None
    source: str
    outcome: str  # "ok", "refused", or the name of the exception that stopped the cell
    cap: int | None = None
    peak_rss: int | None = None
    elapsed: float | None = None
    limit_hit: str | None = None
    samples: list = field(default_factory=list)


class KernelGuardExtension:
    """Everything ``%load_ext kernel_guard`` adds to a shell, removed by ``unload``."""

    def __init__(self, shell):
        from kernel_guard.extension.magics import GuardMagics
        from kernel_guard.recorder import Recorder

        self.shell = shell
        self.config = make_config(shell)
        self.auto: Options | None = self.config.defaults() if self.config.auto else None
        self.history: deque[HistoryEntry] = deque(maxlen=HISTORY_SIZE)
        self.magics = GuardMagics(shell, extension=self)
        self.recorder = Recorder()
        self._running: Resolved | None = None  # the limits of the guarded cell running now
        self._transforming = False  # transforming a body: auto mode must not wrap it again
        self._prepared: Prepared | None = None  # the last body transform() looked at
        self._guarding_next = False  # transform() saw a cell %%guard will run and journal
        self._usable: tuple[float, int, str] | None = None  # (when, usable memory, limited by): cached briefly
        self._noticed: set[str] = set()  # notices shown once per session
        self._saved_magics: dict[str, object] = {}
        self._pending: list[Message] = []  # shown at the start of the next cell
        self._transformer = _InputTransformer(self.transform)

    # -- load / unload ---------------------------------------------------------

    def load(self) -> None:
        from kernel_guard.runtime import watchdog

        watchdog.keep()  # one watchdog thread for every guarded cell, idle in between
        shell = self.shell
        for kind in ("line", "cell"):
            self._saved_magics[kind] = shell.magics_manager.magics[kind].get("guard")
        shell.register_magics(self.magics)
        shell.configurables.append(self.config)  # so that %config KernelGuard.timeout = 30 works
        shell.input_transformers_cleanup.append(self._transformer)
        self._stock_cleanup = list(shell.input_transformers_cleanup)
        self._stock_line_transforms = list(shell.input_transformer_manager.line_transforms)
        shell.events.register("pre_run_cell", self.pre_run_cell)
        shell.events.register("post_run_cell", self.post_run_cell)
        post_mortem = self.recorder.start()
        messages = []
        if post_mortem:
            messages.append(Message("the previous kernel of this notebook died", "error", pre=post_mortem))
        if self.recorder.skipped:
            messages.append(Message("crash journals skipped", "warning", [
                f"{problem} (set aside in {self.recorder.folder})" for problem in self.recorder.skipped]))
        for message in messages:
            if shell.displayhook.exec_result is not None:  # loaded from a cell: say it now
                message.show()
            else:  # loaded at startup: nobody would see it before the first cell
                self._pending.append(message)

    def unload(self) -> None:
        """Remove everything ``load`` added; also after a ``load`` that failed half way."""
        from kernel_guard.runtime import watchdog

        shell = self.shell
        watchdog.release()
        self.recorder.stop()
        for event, callback in (("pre_run_cell", self.pre_run_cell), ("post_run_cell", self.post_run_cell)):
            if callback in shell.events.callbacks.get(event, ()):
                shell.events.unregister(event, callback)
        while self._transformer in shell.input_transformers_cleanup:
            shell.input_transformers_cleanup.remove(self._transformer)
        for configurable in (self.config, self.magics):  # Magics add themselves
            if configurable in shell.configurables:
                shell.configurables.remove(configurable)
        manager = shell.magics_manager
        for kind, previous in self._saved_magics.items():
            if previous is None:
                manager.magics[kind].pop("guard", None)
            else:
                manager.magics[kind]["guard"] = previous
        manager.registry.pop(type(self.magics).__name__, None)

    # -- every cell ------------------------------------------------------------

    def pre_run_cell(self, info) -> None:
        while self._pending:
            self._pending.pop(0).show()
        if self._guarding_next:  # the guard journals it, with its limits
            self._guarding_next = False
            return
        from kernel_guard.recorder import cell_number  # exec_result is not set yet here

        self.recorder.cell_started(cell_number(self.shell, info), info.raw_cell or "")

    def post_run_cell(self, result) -> None:
        self.recorder.cell_finished()

    def transform(self, lines: list[str]) -> list[str]:
        """Input transformer (runs before IPython's own): puts ``%%guard`` in front of
        every cell in auto mode, and hands a ``%%guard`` cell whose body does not parse
        back to IPython, so that its SyntaxError looks like any cell's and nothing runs."""
        if self._transforming or not lines:
            return lines
        first = lines[0].strip()
        self._guarding_next = False
        if first.startswith("%%guard"):
            prepared = self.prepare("".join(lines[1:]), offset=1)
            if prepared is not None and not prepared.valid:
                return ["\n", *lines[1:]]
            self._guarding_next = True
            return lines
        if self.auto is None or first.startswith(_NOT_AUTO):
            return lines
        prepared = self.prepare("".join(lines), offset=0)
        if prepared is None or not prepared.valid or prepared.is_async:
            return lines  # IPython reports the syntax error, or runs the await itself
        self._guarding_next = True
        return [f"%%guard {AUTO_FLAG}\n", *lines]

    def prepare(self, body: str, offset: int) -> Prepared | None:
        """The body with IPython syntax turned into Python and parsed, kept for the
        magic that will run it. None if even IPython cannot transform it."""
        prepared = self._prepared
        if prepared is not None and prepared.body == body and prepared.offset == offset:
            return prepared
        tree = self._parse_as_python(body, offset)
        if tree is not None:
            self._prepared = Prepared(body, offset, body, tree, False)
            return self._prepared
        try:
            transformed = self._transform_body(body)
        except Exception:
            return None
        is_async = "await" in transformed and self.shell.should_run_async(body, transformed_cell=transformed)
        try:
            tree = None if is_async else self.shell.compile.ast_parse("\n" * offset + transformed)
        except (SyntaxError, ValueError):
            tree = None
        self._prepared = Prepared(body, offset, transformed, tree, is_async)
        return self._prepared

    def _parse_as_python(self, body: str, offset: int) -> ast.Module | None:
        """The tree of a body IPython's transformation would leave as it is, else None.

        Transforming is the slowest step of a guarded cell (tokenizing it several
        times). Every IPython syntax (``%``, ``!``, ``?``, prompts, indentation) is a
        syntax error in Python, so a body that parses needs none, unless it is a single
        line (autocall, ``ls -l`` automagic) or someone added input transformers.
        """
        shell = self.shell
        if (
            "\n" not in body.strip()
            or "await" in body  # parses, yet needs IPython's async runner
            or shell.input_transformers_post
            or shell.input_transformers_cleanup != self._stock_cleanup
            or shell.input_transformer_manager.line_transforms != self._stock_line_transforms
        ):
            return None
        try:
            return shell.compile.ast_parse("\n" * offset + body)
        except (SyntaxError, ValueError):
            return None

    def cell_number(self) -> int | None:
        result = self.shell.displayhook.exec_result
        return result.execution_count if result is not None else None

    # -- options -----------------------------------------------------------------

    def base_options(self) -> Options:
        """What a ``%%guard`` cell starts from: ``%guard on``'s options, else the config."""
        return self.auto if self.auto is not None else self.config.defaults()

    def resolve(self, options: Options) -> Resolved:
        _, usable, limited_by = self._read_usable()
        return resolve(options, usable, limited_by)

    def usable_memory(self) -> int:
        """``memory.usable_memory()``, the base of percentages, re-read every few seconds
        (the cgroup lookup costs about half a millisecond)."""
        return self._read_usable()[1]

    def _read_usable(self) -> tuple[float, int, str]:
        from kernel_guard.memory import read_cgroup_memory, usable_memory

        now = time.monotonic()
        if self._usable is None or now - self._usable[0] > USABLE_TTL:
            cgroup = read_cgroup_memory()
            usable = usable_memory(cgroup)
            container = cgroup is not None and cgroup.limit is not None and cgroup.limit <= usable
            self._usable = (now, usable, "container limit" if container else "RAM")
        return self._usable

    # -- a guarded cell ------------------------------------------------------------

    def run(self, body: str, options: Options, *, shown: str, offset: int) -> None:
        """Check, then run ``body`` under ``options``; raises what the cell raised,
        or ``GuardRefused`` if the checks refused it."""
        shell = self.shell
        number = self.cell_number()
        outer = self._running
        if outer is not None and not offset:  # auto mode's own %%guard (e.g. %%capture's body): the outer holds
            self._compile(body, shown, offset, number).run()
            return
        from kernel_guard.runtime import Guard, Limits

        limits = self.resolve(options)
        if limits.notice:
            self._notice("--max-mem capped", limits.notice, once=offset == 0)  # auto mode: not before every cell
        prepared = self.prepare(body, offset)
        plain_tree = prepared.tree if prepared is not None and prepared.transformed == body else None
        try:
            verdict = checks.check_cell(body, shell.user_ns, offset=offset, lint=options.lint,
                                        budget=lambda: self.budget(options, limits),
                                        tree=plain_tree)
            report = messages.check_report(verdict, "dry run") if options.dry_run else None
        except Exception as exc:  # a bug of ours must not stop the user's cell: fail open
            detail = " ".join(str(exc).split())[:200]
            failed = f"pre-run checks failed ({type(exc).__name__}{': ' + detail if detail else ''})"
            self._notice("pre-run checks skipped",
                         failed + ("" if options.dry_run else "; running the cell under its limits"))
            verdict, report = checks.Verdict(lambda: self.budget(options, limits)), None  # (never read: empty)
        if options.dry_run:
            if report is not None:
                report.show()
            return
        if verdict.refusals and not options.force:
            self.history.append(HistoryEntry(number, _first_line(body), "refused", cap=limits.max_mem))
            holders = self._holders(limits) if any(p.code is None for p in verdict.refusals) else []
            raise messages.refusal(verdict, holders)
        notes = verdict.warnings + (verdict.refusals if options.force else [])
        if notes:
            title = "running anyway (--force)" if verdict.refusals else "warnings; the cell runs under its limits"
            Message(title, "warning", [f"line {p.line}: {p.text}" for p in sorted(notes, key=messages.by_line)]).show()

        cell = self._compile(body, shown, offset, number)
        values = {limit.name: getattr(limits, limit.name) for limit in LIMITS}
        guard = Guard(Limits(**{**values, "max_mem": self._cell_cap(options, limits)}), on_sample=self.recorder.sample)
        if outer is None:  # a nested guard runs within the cell journalled already
            self.recorder.cell_started(number, shown, _journal_limits(limits))
        outcome = "ok"
        self._running = limits
        try:
            _run_guarded(guard, cell)
        except BaseException as exc:
            outcome = type(exc).__name__
            if isinstance(exc, GuardMemoryError) and sys.version_info >= (3, 11):  # notes came in 3.11
                for line in self._holders(limits):
                    exc.add_note(line.replace("`", ""))
            cell.show_like_a_cell(exc)
            raise
        finally:
            self._running = outer
            run = cast("RunReport", guard.report)  # set by the guard's __exit__
            self.history.append(HistoryEntry(
                number, _first_line(body), outcome, cap=limits.max_mem,
                peak_rss=run.peak_rss, elapsed=run.elapsed, limit_hit=run.limit_hit,
                samples=list(run.samples or ()),
            ))
            if run.depth_change:
                messages.depth_notice(run.depth_change).show()
            for notice in run.notices:  # limits this platform cannot fully enforce
                self._notice("limit not fully enforced here", notice, once=True)
            if options.verbose:
                messages.summary(run, limits, options).show()

    def _notice(self, title: str, text: str, *, once: bool = False, key: str | None = None) -> None:
        """A warning: a short title, ``text`` under it; with ``once``, only the first time
        in this session (the first time for ``key``, if given)."""
        key = text if key is None else key
        if once and key in self._noticed:
            return
        self._noticed.add(key)
        Message(title, "warning", [text]).show()

    def _cell_cap(self, options: Options, limits: Resolved) -> int | None:
        """The memory cap the cell runs under.

        A kernel already over its cap could not run even ``del big``: every allocation
        would be refused, and the runtime refuses to start a cell over its cap. There
        the cap holds the kernel's memory where it is, with ``FREEING_ROOM`` to spare:
        a cell that frees memory (or only reads it) runs, one that grows it is stopped,
        and the pre-run check, which counts against the cap itself, refuses every
        allocation it sees.
        """
        from kernel_guard.runtime.rss import rss_and_anon

        cap = limits.max_mem
        if cap is None:
            return None
        used = rss_and_anon()[1]
        if used < cap:
            return cap
        self._notice("over the memory cap", (
            f"the kernel already holds {format_bytes(used)}, over the {describe_size(options.max_mem, cap)} cap: "
            f"cells still run, but may grow its memory by {format_bytes(FREEING_ROOM)} at most; "
            "free memory with `del NAME` or `%guard free`"), once=True, key=f"over the cap {cap}")
        return used + FREEING_ROOM

    def budget(self, options: Options, limits: Resolved) -> checks.Budget:
        """What a new allocation may take now: the cap less what the kernel holds,
        no more than the memory still available."""
        from kernel_guard.memory import available_memory
        from kernel_guard.runtime.rss import rss_and_anon

        # What the cap counts (anonymous and shared memory), as the runtime's own messages do.
        return checks.make_budget(cap=limits.max_mem, cap_text=describe_size(options.max_mem, limits.max_mem),
                                  rss=rss_and_anon()[1], available=available_memory())

    def _holders(self, limits: Resolved) -> list[str]:
        """The largest holders worth freeing, for a cell refused or stopped for memory:
        at least 16 MiB and a twentieth of the cap (or of the memory the kernel can get)."""
        from kernel_guard.holders import advice

        try:
            return advice(self.shell, minimum=max(16 << 20, (limits.max_mem or self.usable_memory()) // 20))
        except Exception:  # naming holders is a courtesy: never the reason a message is lost
            return []

    def _transform_body(self, body: str) -> str:
        self._transforming = True  # a body is not a new cell: auto mode leaves it alone
        try:
            return self.shell.transform_cell(body)
        finally:
            self._transforming = False

    def _compile(self, body: str, shown: str, offset: int, number: int | None) -> CompiledCell:
        prepared = self.prepare(body, offset)
        self._prepared = None  # its tree is compiled (and may be changed by AST transformers) once
        if prepared is None:  # IPython's transformer failed: let it raise its own error
            prepared = Prepared(body, offset, self._transform_body(body), None, False)
        if prepared.is_async:
            raise UsageError("%%guard cannot run a cell with top-level `await`; run it without %%guard")
        return CompiledCell(self.shell, prepared.transformed, prepared.tree, shown=shown, offset=offset,
                            number=number if number is not None else self.shell.execution_count)

    # -- messages --------------------------------------------------------------------

class _InputTransformer:
    """``transform`` as an input transformer that IPython's ``check_complete`` skips.

    The terminal (and ipykernel's ``is_complete_request``) asks ``check_complete``
    whether a cell is finished; it runs every cleanup transformer without
    ``has_side_effects``, and a cell that then starts with ``%%`` is complete only
    after a blank line: with auto mode on, Enter after ``40 + 2`` would wait at
    ``...:``. Whether a cell is complete does not depend on the guard, and
    ``transform`` does keep state for the cell about to run.
    """

    has_side_effects = True

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, lines: list[str]) -> list[str]:
        return self.transform(lines)


def _journal_limits(limits: Resolved) -> dict:
    return {k: v for k, v in vars(limits).items() if v is not None and k != "notice"}


def _run_guarded(guard, cell) -> None:
    """``with guard: cell.run()``, alone in a tiny function: keep it so.

    While the memory cap is armed, a ``MemoryError`` that unwinds into a frame whose
    handler keeps the position of the raising instruction (a ``with`` block, an
    ``except`` or ``finally`` body: "lasti" in ``dis``'s exception table) makes
    CPython 3.11, 3.12 and 3.13 push that position as an int object,
    ``PyLong_FromLong(_PyInterpreterFrame_LASTI(frame))``: the index, in 2-byte code
    units, of the instruction running in that frame (here the call of ``cell.run``;
    3.11-3.12 point at its last inline cache entry). Ints up to 256 are preallocated;
    a larger one needs memory the cap has just refused, its failure unwinds to the
    same handler and CPython loops there forever holding the GIL (gh-132508, fixed
    in 3.14 with tagged ints). Here the call ends well below code unit 256 (byte
    512), so the ``with`` always reaches ``Guard.__exit__``, which frees the cap
    first. tests/test_extension_unwind.py checks the offsets.
    """
    with guard:
        cell.run()


def _first_line(source: str) -> str:
    return next((line.strip() for line in source.splitlines() if line.strip()), "")
