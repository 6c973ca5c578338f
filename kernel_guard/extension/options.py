"""The options of ``%%guard`` / ``%guard on`` and the ``c.KernelGuard`` defaults behind them."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields, replace
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument
from traitlets import Bool, Float, Int, TraitError, Unicode, validate
from traitlets.config import Configurable

from kernel_guard.runtime.limits import LIMITS, Limits, TypedLimits
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


# How each kind of limit (``Limit.kind``) is typed: parser and metavar.
_PARSERS = {"memory": (memory_size, "SIZE"), "size": (output_size, "SIZE"), "seconds": (seconds, "SECONDS"),
            "count": (depth, "N")}

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
    *(argument(limit.option, type=_PARSERS[limit.kind][0], metavar=_PARSERS[limit.kind][1], help=limit.help)
      for limit in reversed(LIMITS)),
]


def with_limit_arguments(func):
    for decorator in LIMIT_ARGUMENTS:
        func = decorator(func)
    return func


# What each kind of limit is as a trait.
_TRAITS = {"memory": Unicode, "size": Unicode, "seconds": Float, "count": Int}


@dataclass(frozen=True)
class Options(TypedLimits):
    """What one guarded cell runs with: the limits as typed (sizes stay text until
    ``resolve``), and the flags."""

    force: bool = False
    dry_run: bool = False
    lint: bool = True
    verbose: bool = False

    def merged(self, namespace) -> Options:
        """These options overridden by the ones given in ``namespace`` (parsed arguments)."""
        changes: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(namespace, f.name, None)
            if value is not None:
                changes[f.name] = None if value is NONE else value
        return replace(self, **changes)

    def describe(self) -> str:
        """``--max-mem 4G --timeout 30``: the options as a user would type them."""
        parts = []
        for limit in LIMITS:
            value = getattr(self, limit.name)
            if value is not None:
                value = f"{value:g}" if isinstance(value, float) else value
                parts.append(f"{limit.option} {value}")
        parts += [f"--{flag}" for flag in ("force", "verbose") if getattr(self, flag)]
        if not self.lint:
            parts.append("--no-lint")
        return " ".join(parts)


_BY_NAME = {limit.name: limit for limit in LIMITS}


def _check_size(proposal, parse):
    value = proposal["value"]
    if value is None or value.strip().lower() in _OFF:
        return None
    try:
        parse(value)
    except argparse.ArgumentTypeError as exc:
        raise TraitError(f"c.KernelGuard.{proposal['trait'].name}: {exc}") from None
    return value


class KernelGuard(Configurable):
    """Defaults for ``%%guard`` and ``%guard on``, e.g. ``c.KernelGuard.max_mem = "4G"``.

    Options given on a ``%%guard`` line override these for that cell.
    """

    # A trait per limit, made from its row (a class body's locals() is the class's namespace).
    locals().update({limit.name: _TRAITS[limit.kind](limit.default, allow_none=True, config=True,
                                                     help=limit.config_help) for limit in LIMITS})
    lint = Bool(True, config=True, help="Run the static checks before each guarded cell.")
    verbose = Bool(False, config=True, help="Print a summary after each guarded cell.")
    auto = Bool(False, config=True, help="Guard every cell from the start, as after `%guard on`.")

    @validate(*_BY_NAME)
    def _check_limit(self, proposal):
        value = proposal["value"]
        kind = _BY_NAME[proposal["trait"].name].kind
        if kind in ("memory", "size"):
            return _check_size(proposal, _PARSERS[kind][0])
        name = proposal["trait"].name
        if kind == "seconds" and value is not None and not 0 < value < float("inf"):
            raise TraitError(f"c.KernelGuard.{name} = {value!r}: a positive number of seconds, or None")
        if kind == "count" and value is not None and value < 1:
            raise TraitError(f"c.KernelGuard.{name} = {value!r}: a positive integer, or None")
        return value

    def defaults(self) -> Options:
        return Options(**{limit.name: getattr(self, limit.name) for limit in LIMITS},
                       lint=self.lint, verbose=self.verbose)


def make_config(shell) -> KernelGuard:
    """The ``KernelGuard`` configurable for ``shell``; a bad value is a one-line UsageError."""
    try:
        return KernelGuard(parent=shell)
    except TraitError as exc:
        raise UsageError(f"kernel_guard: {exc}") from None


@dataclass
class Resolved(Limits):
    """Options turned into numbers for the runtime: bytes, seconds, depth.
    ``notice``: one line when ``max_mem`` was lowered to the memory the kernel can use."""

    notice: str | None = None


def resolve(options: Options, usable_memory: int, limited_by: str = "RAM") -> Resolved:
    """Sizes in bytes; a percentage of a memory limit is of ``usable_memory``, and a
    ``max_mem`` above it is lowered to it: past it the out-of-memory killer (or the
    machine) stops the kernel before any cap could. ``limited_by`` says what sets
    ``usable_memory`` ("RAM", "container limit")."""
    values, notice = {}, None
    for limit in LIMITS:
        value = getattr(options, limit.name)
        if value is not None and limit.kind == "memory":
            typed, value = value, parse_size(value, total=usable_memory)
            if value > usable_memory:
                usable = format_bytes(usable_memory)
                notice = (f"{limit.option} {typed} is above the {usable} this kernel can use ({limited_by}); "
                          f"capped at {usable}")
                value = usable_memory
        elif value is not None and limit.kind == "size":
            value = parse_size(value)
        values[limit.name] = value
    return Resolved(**values, notice=notice)


def describe_size(text: str | None, nbytes: int | None) -> str:
    """``80% (819.2 MiB)`` for percentages, ``600.0 MiB`` otherwise."""
    if nbytes is None:
        return "none"
    if text is not None and "%" in text:
        return f"{text.strip()} ({format_bytes(nbytes)})"
    return format_bytes(nbytes)



# How each kind of limit is shown in messages.
_SHOWN = {"memory": lambda value, typed: describe_size(typed, value), "size": lambda value, typed: format_bytes(value),
          "seconds": lambda value, typed: f"{value:g} s", "count": lambda value, typed: f"{value:,}"}


def status_parts(options: Options, limits: Resolved) -> list[str]:
    """Each limit as ``%guard status`` lists it: ``--max-mem 4.0 GiB``, or ``no timeout``."""
    parts = []
    for limit in LIMITS:
        value = getattr(limits, limit.name)
        if limit.is_on(value):
            parts.append(f"{limit.option} {_SHOWN[limit.kind](value, getattr(options, limit.name))}")
        else:
            parts.append(limit.when_off() if limit.when_off else f"no {limit.noun}")
    return parts


def summary_parts(limits: Resolved, in_force: dict[str, int]) -> list[str]:
    """The limits of a cell as ``-v``'s summary lists them (``timeout 30 s``), but
    the ones it shows apart; ``in_force``: values the runtime changed for the cell."""
    parts = []
    for limit in LIMITS:
        value = in_force.get(limit.name, getattr(limits, limit.name))
        if limit.in_summary == "apart":
            continue
        if limit.is_on(value):
            parts.append(f"{limit.noun} {_SHOWN[limit.kind](value, None)}")
        elif limit.in_summary == "always":
            parts.append(f"no {limit.noun}")
    return parts
