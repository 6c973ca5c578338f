"""Where a cold kernel-lint run spends its CPU: per phase of the engine and per rule.

    .venv/bin/python benchmarks/profile_lint.py [PATH] [--top 25]

One process, no cache, files linted one after the other (as ``-j 1``), CPU time
(``time.process_time``, so other work on the machine does not inflate it).  Each
rule's ``visit_cell``/``end_document`` is timed where it is defined.  Start-up
(imports) is measured apart.
"""

from __future__ import annotations

import argparse
import collections
import functools
import sys
import time

DEFAULT_PATH = "/work/shared/corpus"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path", nargs="?", default=DEFAULT_PATH)
    parser.add_argument("--top", type=int, default=25, help="rows to print (default 25)")
    args = parser.parse_args()

    started = time.process_time()
    from kernel_guard import source
    from kernel_guard.cli import _collect
    from kernel_guard.lint import engine, runner
    from kernel_guard.lint.registry import all_rules
    from kernel_guard.lint.rule import Rule
    from kernel_guard.lint.selection import Selection
    from kernel_guard.memory import usable_memory

    rules = all_rules()
    imports = time.process_time() - started

    cpu: collections.Counter = collections.Counter()
    calls: collections.Counter = collections.Counter()

    def timed(label, function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            start = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                cpu[label] += time.process_time() - start
                calls[label] += 1

        return wrapper

    for rule in rules:
        for name in ("visit_cell", "end_document"):
            owner = next(cls for cls in rule.__mro__ if name in cls.__dict__)
            if owner is not Rule and not hasattr(owner.__dict__[name], "__wrapped__"):
                label = f"rule {owner.__module__.rsplit('.', 1)[-1]}.{owner.__name__}.{name}"
                setattr(owner, name, timed(label, owner.__dict__[name]))

    engine._parse = timed("ast.parse of every cell", engine._parse)
    source._read_notebook = timed(
        "read notebook (JSON, nbformat 3 upgrade, IPython translation)", source._read_notebook
    )
    source.python_source = timed("  of which IPython translation (python_source)", source.python_source)

    files, _ = _collect([args.path])
    budget = usable_memory()
    start = time.process_time()
    with runner._few_collections():
        for path in files:
            runner.lint_file(path, Selection(), budget)
    total = time.process_time() - start

    print(f"start-up imports: {imports:.2f} s CPU; linting {len(files)} files: {total:.2f} s CPU (-j 1)\n")
    print("| CPU s | share | where | calls |")
    print("| ---: | ---: | --- | ---: |")
    for label, seconds in cpu.most_common(args.top):
        print(f"| {seconds:.3f} | {100 * seconds / total:.1f}% | {label} | {calls[label]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
