"""``python -m kernel_guard``: the linter (same as ``kernel-lint``), plus ``doctor``."""

from __future__ import annotations

import argparse
import json
import sys


def doctor_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kernel_guard doctor",
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


def main(argv: list[str] | None = None) -> int | None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["doctor"]:
        return doctor_main(argv[1:])
    from kernel_guard.cli import main as lint_main

    return lint_main(argv)


if __name__ == "__main__":
    sys.exit(main())
