"""``kernel-lint``: find what will kill or hang a Jupyter kernel, before it runs."""

from __future__ import annotations

import argparse
import errno
import os
import stat
import sys
from pathlib import Path

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
_SKIP_DIRS = {".ipynb_checkpoints", ".git", "__pycache__", ".venv", "venv", ".tox", ".nox", "node_modules", ".hg"}


class UsageError(Exception):
    """A bad option or configuration; reported in one line, exit 2."""


def build_parser() -> argparse.ArgumentParser:
    from kernel_guard.lint.formats import FORMATS

    parser = argparse.ArgumentParser(
        prog="kernel-lint",
        description="Statically find code that will kill or hang a Jupyter kernel "
        "(memory, loops, recursion, exceptions, kernel killers, output floods). Nothing is executed.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help=".ipynb or .py files, or directories to search")
    parser.add_argument("--format", choices=FORMATS, help="output format (default: text)")
    parser.add_argument("--select", metavar="CODES", help="comma-separated codes or prefixes to check (e.g. KG1,KG201)")
    parser.add_argument("--ignore", metavar="CODES", help="comma-separated codes or prefixes to skip")
    parser.add_argument(
        "--mem-budget",
        metavar="SIZE",
        help="memory budget for KG1 checks, e.g. 16G or 80%% (default: RAM, or the container's limit if lower)",
    )
    parser.add_argument("--statistics", action="store_true", default=None, help="print the count per code at the end")
    parser.add_argument("-j", "--jobs", type=int, metavar="N", help="lint files in N processes (default: all cores)")
    parser.add_argument("--exit-zero", action="store_true", default=None, help="exit 0 even with findings")
    parser.add_argument("--no-cache", action="store_true", help="lint every file again; do not read or write the cache")
    parser.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="where results of unchanged files are kept (default: $KERNEL_LINT_CACHE_DIR, "
        "else $XDG_CACHE_HOME/kernel-lint or ~/.cache/kernel-lint); safe to delete",
    )
    parser.add_argument("--explain", metavar="CODE", help="print a rule's documentation (by code or name) and exit")
    parser.add_argument("--list-rules", action="store_true", help="list every code with its summary and exit")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except UsageError as exc:
        _write(sys.stderr, f"kernel-lint: error: {exc}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace) -> int:
    if args.version:
        from kernel_guard import __version__

        print(f"kernel-lint {__version__}")
        return EXIT_CLEAN
    if args.list_rules:
        from kernel_guard.lint.registry import all_rules

        for rule in all_rules():
            print(f"{rule.code}  {rule.name:<32} {rule.summary}")
        return EXIT_CLEAN
    if args.explain:
        from kernel_guard.lint.registry import all_rules, rule_for

        wanted = args.explain.strip()
        explained = rule_for(wanted) or next((r for r in all_rules() if r.name == wanted.lower()), None)
        if explained is None:
            raise UsageError(f"unknown rule code or name {args.explain!r} (see --list-rules)")
        print(f"{explained.code} {explained.name} ({explained.severity})\n\n{explained.documentation()}")
        return EXIT_CLEAN
    if not args.paths:
        raise UsageError("no PATH given (try: kernel-lint notebook.ipynb)")

    settings = _settings(args)
    files, missing = _collect(args.paths)
    for path, reason in missing:
        _write(sys.stderr, f"{path}: {reason}\n")
    from kernel_guard.lint.runner import lint_files

    findings, failures = lint_files(
        files, settings["selection"], settings["mem_budget"], settings["jobs"], settings["cache_dir"]
    )
    for path, reason in failures:
        _write(sys.stderr, f"{path}: {reason}\n")

    from kernel_guard.lint.formats import render, statistics

    fmt = settings["format"]
    output = render(findings, fmt)
    if settings["statistics"] and fmt == "text":
        output += statistics(findings)
    _write(sys.stdout, output)
    sys.stdout.flush()
    if missing or failures:
        return EXIT_ERROR
    return EXIT_FINDINGS if findings and not settings["exit_zero"] else EXIT_CLEAN


def _write(stream, text: str) -> None:
    """Write ``text``; a file name that is not valid in the stream's encoding
    (bytes that are no UTF-8, kept as surrogates) is written escaped."""
    try:
        stream.write(text)
    except UnicodeEncodeError:
        encoding = getattr(stream, "encoding", None) or "utf-8"
        stream.write(text.encode(encoding, "backslashreplace").decode(encoding))


def _settings(args: argparse.Namespace) -> dict:
    """Command line over ``[tool.kernel-lint]`` over defaults."""
    from kernel_guard.lint.cache import rule_codes
    from kernel_guard.lint.config import ConfigError, load_config
    from kernel_guard.lint.formats import FORMATS
    from kernel_guard.lint.selection import Selection, check_codes

    try:
        config = load_config(Path(args.paths[0]) if args.paths else Path.cwd())
    except ConfigError as exc:
        raise UsageError(str(exc)) from None

    def pick(option, key, default):
        return option if option is not None else config.get(key, default)

    select = _codes(args.select) if args.select is not None else config.get("select", ["KG"])
    ignore = _codes(args.ignore) if args.ignore is not None else config.get("ignore", [])
    cache_dir = _cache_dir(args, config)
    known = rule_codes(cache_dir)  # from the cache when it can: importing the rules is slow
    try:
        check_codes(select, known)
        check_codes(ignore, known)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    fmt = pick(args.format, "format", "text")
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    jobs = pick(args.jobs, "jobs", None)
    jobs = _cores() if jobs is None else jobs
    if not isinstance(jobs, int) or jobs < 1:
        raise UsageError(f"--jobs must be a positive whole number, not {jobs!r}")
    return {
        "selection": Selection(tuple(c.strip().upper() for c in select), tuple(c.strip().upper() for c in ignore)),
        "mem_budget": _mem_budget(pick(args.mem_budget, "mem-budget", None)),
        "format": fmt,
        "statistics": bool(pick(args.statistics, "statistics", False)),
        "exit_zero": bool(pick(args.exit_zero, "exit-zero", False)),
        "jobs": jobs,
        "cache_dir": cache_dir,
    }


def _cache_dir(args: argparse.Namespace, config: dict) -> Path | None:
    """``None`` with ``--no-cache`` or ``cache = false``; an explicit ``--cache-dir`` wins over the config."""
    if args.no_cache:
        return None
    if args.cache_dir:
        return Path(args.cache_dir).expanduser()
    enabled = config.get("cache", True)
    if not isinstance(enabled, bool):
        raise UsageError(f"[tool.kernel-lint] cache must be true or false, not {enabled!r}")
    if not enabled:
        return None
    from kernel_guard.lint.cache import default_directory

    return default_directory()


def _codes(text: str) -> list[str]:
    return [code.strip() for code in text.split(",") if code.strip()]


def _mem_budget(value) -> int | None:
    if value is None:
        return None
    from kernel_guard.sizes import parse_size

    total = None
    if isinstance(value, str) and value.strip().endswith("%"):
        from kernel_guard.memory import usable_memory

        total = usable_memory()
    try:
        return parse_size(value, total=total)
    except ValueError as exc:
        raise UsageError(f"--mem-budget: {exc}") from None


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _collect(paths: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Files to lint (explicit files as given; directories searched for .ipynb and .py),
    and the ``(path, reason)`` of every PATH or folder that cannot be searched."""
    files: list[str] = []
    problems: list[tuple[str, str]] = []
    for name in paths:
        try:
            is_dir = stat.S_ISDIR(os.stat(name).st_mode)
        except OSError as exc:
            problems.append((name, _reason(exc)))
            continue
        if is_dir:
            files.extend(_walk(Path(name), problems))
        else:
            files.append(name)  # a FIFO or device is named and skipped when read, never opened
    return list(dict.fromkeys(files)), problems


def _walk(root: Path, problems: list[tuple[str, str]]) -> list[str]:
    found: list[str] = []

    def unreadable(exc: OSError) -> None:
        problems.append((exc.filename or str(root), f"cannot search directory: {_reason(exc)}"))

    for folder, dirs, names in os.walk(root, onerror=unreadable):
        dirs[:] = sorted(
            d for d in dirs if d not in _SKIP_DIRS and not os.path.exists(os.path.join(folder, d, "pyvenv.cfg"))
        )
        found.extend(str(Path(folder, n)) for n in sorted(names) if n.endswith((".ipynb", ".py")))
    return found


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        return "no such file or directory"
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    return (exc.strerror or str(exc)).lower()


if __name__ == "__main__":
    sys.exit(main())
