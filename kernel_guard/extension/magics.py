"""``%%guard`` and ``%guard``: argument parsing, help texts and the small reports."""

from __future__ import annotations

import argparse

from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from kernel_guard.extension import checks, messages
from kernel_guard.extension.core import AUTO_FLAG
from kernel_guard.extension.options import status_parts, with_limit_arguments
from kernel_guard.extension.render import Message
from kernel_guard.sizes import format_bytes

_COMMANDS = ("status", "on", "off", "check", "doctor", "history", "mem", "free")


@magics_class
class GuardMagics(Magics):
    shell: InteractiveShell  # registered by a shell, never without one
    def __init__(self, shell, extension):
        super().__init__(shell)
        self.extension = extension

    @magic_arguments(name="%guard")  # shown as %%guard in the usage line
    @argument(AUTO_FLAG, action="store_true", help=argparse.SUPPRESS)
    @with_limit_arguments
    @cell_magic("guard")  # type: ignore[arg-type]  # IPython types cell_magic(name) as a union
    def guard_cell(self, line, cell):
        """Run this cell under guard: a memory cap, a time limit, a recursion limit
        and an output cap, with checks before it runs.

        Before the cell runs it is linted and its numpy allocations are estimated
        against the values in your namespace (no code of yours is called). A cell
        whose estimate does not fit in --max-mem (or, without it, in the memory the
        kernel can still get), or that would end the kernel process (os._exit,
        os.kill of itself, ...), is not run: you get GuardRefused with the line, the
        size and what to try. Other findings are shown as warnings.

        While it runs, passing a limit raises GuardMemoryError (a MemoryError),
        GuardTimeout (a BaseException, so `except Exception` cannot swallow it),
        RecursionError, GuardOutputLimit or GuardDiskLimit (an OSError) in the
        cell. The kernel stays alive, your variables from before the cell are
        intact, and every limit, signal
        handler, recursion limit and stream is restored afterwards. A long call
        into C (one huge numpy operation) cannot be interrupted before it returns.

        Options not given come from `%guard on` (auto mode) or from the
        configuration (`c.KernelGuard.max_mem = "4G"`, ...); `none` switches a
        default off for one cell (`--timeout none`). Lines are counted as shown:
        the first line under %%guard is line 2.

        Examples::

            %%guard --max-mem 4G --timeout 60
            %%guard --max-depth 5000 -v
            %%guard --dry-run
        """
        args = parse_argstring(self.guard_cell, line)
        extension = self.extension
        options = extension.base_options().merged(args)
        if args.auto_cell:
            extension.run(cell, options, shown=cell, offset=0)
        else:
            extension.run(cell, options, shown=f"%%guard {line}\n{cell}", offset=1)

    @magic_arguments(name="guard")
    @argument("command", nargs="?", default="status", metavar="COMMAND",
              help="status (default), on, off, check, doctor, history, mem or free.")
    @argument("arguments", nargs=argparse.REMAINDER, metavar="...",
              help="for `on`: the options of %%%%guard; for `check`: the code to check; "
                   "for `free`: the variables to delete.")
    @line_magic("guard")  # type: ignore[arg-type]  # IPython types line_magic(name) as a union
    def guard_line(self, line):
        """Control kernel_guard.

        %guard                  the status: auto mode, default limits, memory
        %guard on [OPTIONS]     guard every following cell with these %%guard options
        %guard off              stop guarding every cell
        %guard check [CODE]     lint and estimate CODE (or this session's cells) without running
        %guard doctor           what memory this kernel can really use, and known dangers
        %guard history          the guarded cells of this session: peak memory, time, limit hit
        %guard mem              what holds this kernel's memory, largest first, hidden caches included
        %guard free [NAME ...]  clear the output cache and the last error, delete NAMEs, give memory back

        See %%guard? for the options.
        """
        command, _, rest = line.strip().partition(" ")
        command = command or "status"
        if command not in _COMMANDS:
            raise UsageError(f"unknown %guard command {command!r}: use one of {', '.join(_COMMANDS)}")
        getattr(self, f"_{command}")(rest.strip())

    # -- commands ----------------------------------------------------------------

    def _status(self, rest: str) -> None:
        self._no_arguments("status", rest)
        from kernel_guard.memory import available_memory, read_cgroup_memory, usable_memory
        from kernel_guard.runtime import current_rss

        extension = self.extension
        options = extension.base_options()
        cgroup = read_cgroup_memory()
        usable = usable_memory(cgroup)
        limits = extension.resolve(options)
        auto = extension.auto is not None
        lines = [
            "defaults: " + ", ".join(status_parts(options, limits)),
            f"memory: this kernel holds {format_bytes(current_rss())}; it can get "
            f"{format_bytes(usable)} ({_limited_by(cgroup, usable)}), "
            f"{format_bytes(available_memory(cgroup))} available now",
        ]
        if extension.history:
            stopped = sum(entry.outcome != "ok" for entry in extension.history)
            lines.append(f"guarded cells so far: {len(extension.history)}, {stopped} refused or stopped "
                         "(`%guard history`)")
        lines.insert(0, _as_magic(options) if auto else "`%guard on [OPTIONS]` guards every cell")
        Message(f"auto mode {'on' if auto else 'off'}", "info", lines).show()

    def _on(self, rest: str) -> None:
        args = self.guard_cell.parser.parse_argstring(rest)
        if args.dry_run:
            raise UsageError("--dry-run cannot be used with `%guard on`: nothing would run")
        extension = self.extension
        extension.auto = extension.config.defaults().merged(args)
        extension.resolve(extension.auto)  # a percentage needs the memory: fail here, not in every cell
        Message("auto mode on", "info", [_as_magic(extension.auto),
                                         "`%guard off` stops it; a cell's own `%%guard` options override these"]).show()

    def _off(self, rest: str) -> None:
        self._no_arguments("off", rest)
        self.extension.auto = None
        Message("auto mode off", "info").show()

    def _check(self, code: str) -> None:
        extension = self.extension
        options = extension.base_options()
        limits = extension.resolve(options)
        if code:
            verdict = checks.check_cell(code, self.shell.user_ns, offset=0, lint=True,
                                        budget=lambda: extension.budget(options, limits))
            messages.check_report(verdict, "check").show()
            return
        raw = self.shell.history_manager.input_hist_raw  # type: ignore[union-attr]  # a shell has a history
        cells = [(number, raw[number]) for number in range(1, len(raw) - 1)]  # not this cell
        fresh = checks.Budget(limits.max_mem or extension.usable_memory(), "fit in a fresh kernel")
        found = checks.check_session(cells, budget=fresh)
        lines = [f"In [{number}] line {p.line}: {p.text}" for number, verdict in found
                 for p in sorted(verdict.refusals + verdict.warnings, key=lambda p: p.line)]
        refused = sum(bool(verdict.refusals) for _, verdict in found)
        title = (f"check of this session's {len(cells)} cells: "
                 + (f"{refused} would be refused under %%guard" if refused else "none would be refused"))
        Message(title, "error" if refused else "info", lines or ["nothing found"]).show()

    def _doctor(self, rest: str) -> None:
        self._no_arguments("doctor", rest)
        from IPython.display import display

        from kernel_guard.doctor import doctor

        report = doctor()
        display({"text/plain": str(report), "text/html": report._repr_html_()}, raw=True)

    def _history(self, rest: str) -> None:
        self._no_arguments("history", rest)
        from kernel_guard.extension.history import show_history

        show_history(list(self.extension.history))

    def _mem(self, rest: str) -> None:
        self._no_arguments("mem", rest)
        from kernel_guard.extension.memory_report import memory_message
        from kernel_guard.holders import memory_view

        memory_message(memory_view(self.shell)).show()

    def _free(self, rest: str) -> None:
        from kernel_guard.extension.memory_report import free_message
        from kernel_guard.release import check_names, release

        names = rest.replace(",", " ").split()
        try:
            check_names(self.shell, names)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        free_message(release(self.shell, names)).show()

    @staticmethod
    def _no_arguments(command: str, rest: str) -> None:
        if rest:
            raise UsageError(f"`%guard {command}` takes no arguments (got {rest!r})")


def _as_magic(options) -> str:
    described = options.describe()
    return f"every cell runs as `%%guard{' ' + described if described else ''}`"


def _limited_by(cgroup, usable: int) -> str:
    if cgroup is not None and cgroup.limit is not None and cgroup.limit <= usable:
        return f"cgroup v{cgroup.version} limit"
    return "RAM"
