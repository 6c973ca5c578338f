"""The options of ``%%guard`` / ``%guard on`` and the ``c.KernelGuard`` defaults behind them."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields, replace

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument
from traitlets import Bool, Float, Int, TraitError, Unicode, validate
from traitlets.config import Configurable

from kernel_guard.sizes import format_bytes, parse_size

_OFF = ("none", "off")  # turns a configured default off for one cell


class Unset:
    """Marks a limit switched off explicitly (``--timeout none``), as opposed to not given."""

    def __repr__(self) -> str:
        return "none"


NONE = Unset()


def _size(text: str, *, percent: bool) -> str | Unset:
    if text.strip().lower() in _OFF:
        return NONE
    if "%" in text and not percent:
        raise ValueError(f"invalid size {text!r}: a percentage is not allowed here")
    parse_size(text, total=1 << 40)  # syntax only; percentages resolve when the cell runs
    return text.strip()


def memory_size(text: str) -> str | Unset:
    try:
        return _size(text, percent=True)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def output_size(text: str) -> str | Unset:
    try:
        return _size(text, percent=False)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def seconds(text: str) -> float | Unset:
    if text.strip().lower() in _OFF:
        return NONE
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"invalid time {text!r}: a positive number of seconds, e.g. 30 or 0.5")
    return value


def depth(text: str) -> int | Unset:
    if text.strip().lower() in _OFF:
        return NONE
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid depth {text!r}: a positive integer, e.g. 2000")
    return value


# The options shared by ``%%guard`` and ``%guard on``; applied bottom-up by magic_arguments.
LIMIT_ARGUMENTS = [
    argument("-v", "--verbose", action="store_true", default=None,
             help="after the cell, print a summary: peak memory, time, limits used."),
    argument("--no-lint", dest="lint", action="store_false", default=None,
             help="skip the static checks (the size estimate still runs)."),
    argument("--dry-run", action="store_true", default=None,
             help="check and estimate only; do not run the cell."),
    argument("--force", action="store_true", default=None,
             help="run even if the pre-run checks say the cell will not fit or will kill the kernel."),
    argument("--max-disk", type=output_size, metavar="SIZE",
             help="bytes the cell may add to the filesystem of the working directory; past it, or "
                  "when that filesystem gets below 1%% or 256 MiB free (the lower), the cell stops "
                  "with GuardDiskLimit (an OSError), with room left to save the notebook."),
    argument("--max-output", type=output_size, metavar="SIZE",
             help="cap on the bytes of text (stdout + stderr, UTF-8) the cell may print; "
                  "past it the cell stops with GuardOutputLimit."),
    argument("--max-depth", type=depth, metavar="N",
             help="recursion limit for the cell (as sys.setrecursionlimit); a value the stack "
                  "cannot hold is lowered to a safe one, with a notice. Past it: RecursionError."),
    argument("--timeout", type=seconds, metavar="SECONDS",
             help="wall-clock limit for the cell; past it the cell stops with GuardTimeout, "
                  "also in time.sleep and in loops that catch Exception."),
    argument("--max-mem", type=memory_size, metavar="SIZE",
             help="cap on the kernel's total resident memory while the cell runs; past it the "
                  "cell gets GuardMemoryError (a MemoryError). SIZE: bytes, or a number with "
                  "K, M, G, T (powers of 1024; KB, KiB, GB, GiB, lower case accepted), or a "
                  "percentage such as 80%% of the memory this kernel can really get."),
]


def with_limit_arguments(func):
    for decorator in LIMIT_ARGUMENTS:
        func = decorator(func)
    return func


@dataclass(frozen=True)
class Options:
    """What one guarded cell runs with. Sizes stay as typed until ``resolve``."""

    max_mem: str | None = None
    timeout: float | None = None
    max_depth: int | None = None
    max_output: str | None = None
    max_disk: str | None = None
    force: bool = False
    dry_run: bool = False
    lint: bool = True
    verbose: bool = False

    def merged(self, namespace) -> Options:
        """These options overridden by the ones given in ``namespace`` (parsed arguments)."""
        changes = {}
        for f in fields(self):
            value = getattr(namespace, f.name, None)
            if value is not None:
                changes[f.name] = None if value is NONE else value
        return replace(self, **changes)

    def describe(self) -> str:
        """``--max-mem 4G --timeout 30``: the options as a user would type them."""
        parts = []
        for name in ("max_mem", "timeout", "max_depth", "max_output", "max_disk"):
            value = getattr(self, name)
            if value is not None:
                value = f"{value:g}" if isinstance(value, float) else value
                parts.append(f"--{name.replace('_', '-')} {value}")
        parts += [f"--{flag}" for flag in ("force", "verbose") if getattr(self, flag)]
        if not self.lint:
            parts.append("--no-lint")
        return " ".join(parts)


class KernelGuard(Configurable):
    """Defaults for ``%%guard`` and ``%guard on``, e.g. ``c.KernelGuard.max_mem = "4G"``.

    Options given on a ``%%guard`` line override these for that cell.
    """

    max_mem = Unicode(
        "90%", allow_none=True, config=True,
        help="Default --max-mem: a SIZE (4G, 512MiB, 80%) or None for no cap while a guarded cell runs.",
    )
    timeout = Float(None, allow_none=True, config=True, help="Default --timeout in seconds, or None.")
    max_depth = Int(None, allow_none=True, config=True, help="Default --max-depth, or None.")
    max_output = Unicode(None, allow_none=True, config=True, help="Default --max-output SIZE, or None.")
    max_disk = Unicode(None, allow_none=True, config=True, help="Default --max-disk SIZE, or None.")
    lint = Bool(True, config=True, help="Run the static checks before each guarded cell.")
    verbose = Bool(False, config=True, help="Print a summary after each guarded cell.")
    auto = Bool(False, config=True, help="Guard every cell from the start, as after `%guard on`.")

    @validate("max_mem")
    def _check_max_mem(self, proposal):
        return self._check(proposal, memory_size)

    @validate("max_output", "max_disk")
    def _check_max_output(self, proposal):
        return self._check(proposal, output_size)

    @validate("timeout")
    def _check_timeout(self, proposal):
        value = proposal["value"]
        if value is not None and not 0 < value < float("inf"):
            raise TraitError(f"c.KernelGuard.timeout = {value!r}: a positive number of seconds, or None")
        return value

    @validate("max_depth")
    def _check_max_depth(self, proposal):
        value = proposal["value"]
        if value is not None and value < 1:
            raise TraitError(f"c.KernelGuard.max_depth = {value!r}: a positive integer, or None")
        return value

    @staticmethod
    def _check(proposal, parse):
        value = proposal["value"]
        if value is None or value.strip().lower() in _OFF:
            return None
        try:
            parse(value)
        except argparse.ArgumentTypeError as exc:
            raise TraitError(f"c.KernelGuard.{proposal['trait'].name}: {exc}") from None
        return value

    def defaults(self) -> Options:
        return Options(
            max_mem=self.max_mem, timeout=self.timeout, max_depth=self.max_depth,
            max_output=self.max_output, max_disk=self.max_disk, lint=self.lint, verbose=self.verbose,
        )


def make_config(shell) -> KernelGuard:
    """The ``KernelGuard`` configurable for ``shell``; a bad value is a one-line UsageError."""
    try:
        return KernelGuard(parent=shell)
    except TraitError as exc:
        raise UsageError(f"kernel_guard: {exc}") from None


@dataclass(frozen=True)
class Resolved:
    """Options turned into numbers for the runtime: bytes, seconds, depth.
    ``notice``: one line when ``max_mem`` was lowered to the memory the kernel can use."""

    max_mem: int | None
    timeout: float | None
    max_depth: int | None
    max_output: int | None
    max_disk: int | None = None
    notice: str | None = None


def resolve(options: Options, usable_memory: int, limited_by: str = "RAM") -> Resolved:
    """Sizes in bytes; a percentage of ``max_mem`` is of ``usable_memory``, and a
    ``max_mem`` above it is lowered to it: past it the out-of-memory killer (or the
    machine) stops the kernel before any cap could. ``limited_by`` says what sets
    ``usable_memory`` ("RAM", "container limit")."""
    max_mem = None if options.max_mem is None else parse_size(options.max_mem, total=usable_memory)
    notice = None
    if max_mem is not None and max_mem > usable_memory:
        usable = format_bytes(usable_memory)
        notice = (f"--max-mem {options.max_mem} is above the {usable} this kernel can use ({limited_by}); "
                  f"capped at {usable}")
        max_mem = usable_memory
    return Resolved(
        max_mem=max_mem,
        timeout=options.timeout,
        max_depth=options.max_depth,
        max_output=None if options.max_output is None else parse_size(options.max_output),
        max_disk=None if options.max_disk is None else parse_size(options.max_disk),
        notice=notice,
    )


def describe_size(text: str | None, nbytes: int | None) -> str:
    """``80% (819.2 MiB)`` for percentages, ``600.0 MiB`` otherwise."""
    if nbytes is None:
        return "none"
    if text is not None and "%" in text:
        return f"{text.strip()} ({format_bytes(nbytes)})"
    return format_bytes(nbytes)

