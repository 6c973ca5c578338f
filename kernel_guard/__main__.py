"""``python -m kernel_guard``: the linter (same as ``kernel-lint``), plus ``doctor``, ``enable`` and ``disable``."""

# `python -m` puts the working directory first on sys.path: a `numpy.py` or `libcst.py` there would run
# on our next import. Drop it before importing anything (os and sys are loaded by the interpreter itself).
import os
import sys


def _working_directory() -> str | None:
    try:
        return os.getcwd()
    except OSError:  # deleted while we run: nothing is imported from it
        return None


# (sys.flags.safe_path, -P, came in 3.11: on 3.10 sys.path[0] is always the working directory)
_SAFE_PATH = sys.version_info >= (3, 11) and sys.flags.safe_path
if not _SAFE_PATH and sys.path and sys.path[0] in ("", _working_directory()):
    del sys.path[0]

import argparse  # after the sys.path fix, on purpose
import json

PROG = "python -m kernel_guard"
COMMANDS = """\
commands:
  [lint] PATH...   find code that will kill or hang a kernel (the same as `kernel-lint`; options below)
  doctor           the memory this kernel can really use, and settings known to kill kernels
  enable [--auto]  load the extension in every IPython kernel of this user (--auto: guard every cell)
  disable          undo `enable`

`python -m kernel_guard COMMAND --help` for a command's options; a path named like a command
is linted as `./doctor`."""


def doctor_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} doctor",
        description="Show the memory this kernel can really use and why, with a warning "
        "beside each setting known to kill kernels.",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    from kernel_guard.doctor import doctor

    report = doctor()
    try:
        print(json.dumps(report.as_dict(), indent=2) if args.json else report)
    except BrokenPipeError:  # `... doctor | head`
        sys.stdout = None
    return 0


def lint_help() -> int:
    from kernel_guard.cli import build_parser

    parser = build_parser()
    parser.prog = f"{PROG} [lint]"
    parser.description = f"{parser.description}\n\n{COMMANDS}"
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.print_help()
    return 0


def main(argv: list[str] | None = None) -> int | None:
    argv = sys.argv[1:] if argv is None else argv
    command = argv[0] if argv else ""
    if command == "doctor":
        return doctor_main(argv[1:])
    if command in ("enable", "disable"):
        from kernel_guard.enable import main as enable_main

        return enable_main(command, argv[1:])
    if command == "lint":
        argv = argv[1:]
    if argv[:1] in (["-h"], ["--help"]):
        return lint_help()
    from kernel_guard.cli import main as lint_main

    return lint_main(argv)


if __name__ == "__main__":
    sys.exit(main())
