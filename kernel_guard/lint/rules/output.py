"""KG6: output floods and files that grow without end.

Output counts when it certainly reaches the notebook: ``print`` (not to a file,
not with an ``end`` that adds no line), ``sys.stdout.write``, ``display``,
``pprint``, root ``logging`` warnings, not in a ``%%capture`` cell nor under
``redirect_stdout``/``capture_output``, and not in a loop that clears its output.
"""

from __future__ import annotations

import ast

from kernel_guard.lint import flow
from kernel_guard.lint.rule import Case, Rule

_FLOOD_LINES = 10_000
_OUTPUT = frozenset(
    {"builtins.print", "builtins.display", "IPython.display.display", "pprint.pprint", "pprint.pp",
     "sys.stdout.write", "sys.stderr.write", "sys.stdout.writelines", "sys.stderr.writelines",
     "logging.warning", "logging.error", "logging.critical", "logging.exception", "tqdm.tqdm.write"}
)
_OUTPUT_HINTS = ("print", "display", "write", "logging", "pprint")
# Calls that pace a loop or keep its output small: no flood.
_PACING = frozenset({"sleep", "wait", "pause", "clear_output", "input", "join", "get", "select", "poll", "recv",
                     "accept", "read", "readline", "wait_for", "urlopen", "request", "post"})
_CAPTURING = ("capture", "redirect_stdout", "redirect_stderr", "suppress_stdout", "Output", "silence", "quiet")


def _output_call(node: ast.AST, facts: flow.Facts, *, lines: bool = True) -> bool:
    """Whether ``node`` is a call that writes to the cell's output: a new line each
    time, or (``lines=False``) anything but a ``\r`` progress line."""
    if not isinstance(node, ast.Call):
        return False
    name = facts.resolve(node.func)
    if name not in _OUTPUT:
        return False
    if name == "builtins.print":
        for keyword in node.keywords:
            if keyword.arg == "file" and facts.resolve(keyword.value) not in ("sys.stdout", "sys.stderr"):
                return False
            if keyword.arg == "end":
                end = flow.quick_value(keyword.value, facts.context)
                if not isinstance(end, str) or "\r" in end or (lines and "\n" not in end):
                    return False  # "\r" progress, no new line, or unknown
            if keyword.arg is None:
                return False
    return True


def _captured(cell, ancestors) -> bool:
    if cell.raw.lstrip().startswith("%%capture"):
        return True
    for ancestor in ancestors:
        if isinstance(ancestor, (ast.With, ast.AsyncWith)):
            for item in ancestor.items:
                if any(hint in ast.unparse(item.context_expr) for hint in _CAPTURING):
                    return True
    return False


def _paced(loop: flow.Loop, pacing=_PACING) -> bool:
    return any(isinstance(node, ast.Call) and flow.callee(node) in pacing for node in flow.body_nodes(loop.body))


def _endless_loops(tree: ast.Module, context, skip=lambda loop, ancestors: False):
    """Each loop of the cell that never ends (and that ``skip`` keeps), with its
    ancestors and the calls it makes on every pass, each with its own ancestors."""
    for loop, ancestors in flow.statements_with_ancestors(tree, (ast.While, ast.For)):
        if skip(loop, ancestors) or not flow.endless_loop(loop, ancestors, context):
            continue
        inner = ancestors + (loop,)
        calls = (
            (node, inner + node_ancestors[1:])
            for node, node_ancestors in flow.with_ancestors(loop, (ast.Call,))
            if loop in (_loops_between(inner + node_ancestors[1:], node) or ())
        )
        yield loop, ancestors, calls


def _loops_between(ancestors, node) -> list[flow.Loop] | None:
    """The loops of the scope that ``node`` runs in on each of their iterations
    (outermost first); ``None`` when it is under a condition."""
    if not flow.unconditional(ancestors, node):
        return None
    chain = flow.local_ancestors(ancestors) + (node,)
    loops: list[flow.Loop] = []
    for parent, child in zip(chain, chain[1:]):
        if isinstance(parent, flow.LOOPS):
            if not any(child is statement for statement in parent.body):
                return None  # the loop's header or else clause
            loops.append(parent)
    return loops


class PrintInEndlessLoop(Rule):
    """
    ## What it does
    Flags output (`print`, `sys.stdout.write`, `display`, `logging.warning`...)
    on every pass of a loop that never ends (see KG201 and KG203), when nothing in
    the loop paces it (`time.sleep`, a blocking read) or clears the output.

    ## Why is this bad?
    Each pass sends output to the notebook as fast as the kernel can produce it:
    the browser tab freezes, the notebook file grows by megabytes per second, and
    the front end may lose its connection to the kernel.

    ## Example
    ```python
    i = 0
    while True:
        i += 1
        print(i)
    ```

    ## Use instead
    ```python
    for i in range(1_000):
        if i % 100 == 0:
            print(i)
    ```
    """

    code = "KG601"
    name = "print-in-endless-loop"
    summary = "output on every pass of a loop that never ends"
    severity = "error"
    triggers = None
    VALID = [
        """
        import time
        while True:
            print(status())
            time.sleep(60)
        """,
        """
        while True:
            line = compute()
            if line is None:
                break
            print(line)
        """,
        """
        while True:
            x = step()
            if x % 1000 == 0:
                print(x)
        """,
        """
        from IPython.display import clear_output
        while True:
            clear_output(wait=True)
            print(frame())
        """,
        r"""
        while True:
            print(progress(), end='\r')
        """,
        """
        def gen():
            while True:
                print('next')
                yield 1
        """,
        """
        with open('log.txt', 'w') as f:
            while True:
                print(step(), file=f)
        """,
    ]
    INVALID = [
        Case(
            """
            i = 0
            while True:
                i += 1
                print(i)
            """,
            line=4, column=5, message="never ends",
        ),
        r"""
        import sys
        while 1:
            sys.stdout.write('tick\n')
        """,
        """
        import itertools
        for i in itertools.count():
            print(i)
        """,
        (
            "import logging",
            """
            while True:
                logging.warning('retrying')
            """,
        ),
        """
        while True:
            print('.', end='')
        """,
    ]

    def visit_cell(self, cell, tree: ast.Module) -> None:
        source = cell.source
        if not flow.ENDLESS_LINE.search(source):
            return
        if not any(hint in source for hint in _OUTPUT_HINTS):
            return

        def quiet(loop, ancestors) -> bool:  # output that is captured, or paced by sleep
            return _captured(cell, ancestors) or _paced(loop)

        for _, _, calls in _endless_loops(tree, self.context, skip=quiet):
            facts = flow.facts(self.context)
            for node, _ in calls:
                if _output_call(node, facts, lines=False):
                    self.report_at(
                        cell,
                        self.context.ast_position(cell, node),
                        f"`{flow.source_of(node.func, source)}()` on every pass of a loop that never ends floods the "
                        "output until the browser freezes",
                    )
                    break


class PrintFlood(Rule):
    """
    ## What it does
    Flags output (`print`, `display`, `sys.stdout.write`...) that runs on every
    iteration of `for` loops whose trip counts are statically known and multiply
    to more than 10,000 lines — `for i in range(1_000_000): print(i)`.

    ## Why is this bad?
    Tens of thousands of output lines make the notebook's output area, and the
    notebook file, huge: the browser slows down or freezes and the file may no
    longer open. Nobody reads that many lines.

    ## Example
    ```python
    for step in range(100_000):
        loss = train_step()
        print(step, loss)
    ```

    ## Use instead
    ```python
    for step in range(100_000):
        loss = train_step()
        if step % 1_000 == 0:
            print(step, loss)
    ```
    """

    code = "KG602"
    name = "print-flood"
    summary = "output in loops with a known trip count above 10,000 lines"
    severity = "warning"
    triggers = None
    VALID = [
        """
        for i in range(100_000):
            if i % 1000 == 0:
                print(i)
        """,
        """
        for i in range(10_000):
            print(i)
        """,
        r"""
        for i in range(100_000):
            print(i, end='\r')
        """,
        """
        for i in range(100_000):
            total += i
        print(total)
        """,
        """
        for i in range(100_000):
            if i % 1000:
                continue
            print(i)
        """,
        """
        for i in range(100_000):
            print(i)
            if i > 10:
                break
        """,
        """
        %%capture
        for i in range(100_000):
            print(i)
        """,
        """
        import contextlib, io
        with contextlib.redirect_stdout(io.StringIO()):
            for i in range(100_000):
                print(i)
        """,
        """
        for i in range(100_000):
            print(i, file=log)
        """,
        """
        def print(*args):
            pass
        for i in range(100_000):
            print(i)
        """,
        """
        for i in range(100_000):
            def show():
                print(i)
        """,
    ]
    INVALID = [
        Case(
            """
            for i in range(100_000):
                print(i)
            """,
            line=2, column=5, message="100,000",
        ),
        (
            "N = 500",
            """
            for i in range(N):
                for j in range(N):
                    print(i, j)
            """,
        ),
        """
        from tqdm import tqdm
        for i in tqdm(range(20_000)):
            print(i)
        """,
        """
        for epoch in range(200):
            for batch in loader:
                for k in range(100):
                    print(epoch, k)
        """,
    ]

    def visit_cell(self, cell, tree: ast.Module) -> None:
        source = cell.source
        if "for" not in source or "range" not in source or not any(hint in source for hint in _OUTPUT_HINTS):
            return
        if _captured(cell, ()):
            return
        seen: set[int] = set()
        for loop, ancestors in self._big_loops(tree):
            for node, node_ancestors in flow.with_ancestors(loop, (ast.Call,)):
                if flow.callee(node) not in _OUTPUT_NAMES or id(node) in seen:
                    continue
                seen.add(id(node))
                full = ancestors + node_ancestors
                loops = _loops_between(full, node)
                if not loops or not self._lines(loops, flow.tentative_value):
                    continue
                lines = self._lines(loops)
                if lines is None or _captured(cell, full):
                    continue
                facts = flow.facts(self.context)
                if not _output_call(node, facts) or any(
                    isinstance(loop, ast.For) and trip_count(loop, self.context) and not _builtin_iteration(loop, facts)
                    for loop in loops
                ) or any(_continues(loop) or _paced(loop, ("clear_output",)) or facts.escapes(loop) for loop in loops):
                    continue
                counted = next(loop for loop in loops if isinstance(loop, ast.For) and trip_count(loop, self.context))
                self.report_at(
                    cell,
                    self.context.ast_position(cell, node),
                    f"`{flow.source_of(node.func, source)}()` runs {lines:,} times (`for "
                    f"{flow.source_of(counted.target, source)} in {flow.source_of(counted.iter, source)}`): more "
                    f"than {_FLOOD_LINES:,} lines flood the notebook; print every N iterations instead",
                )

    def _big_loops(self, tree: ast.Module):
        """Counted ``for`` loops that, with the counted loops around them, may run
        more than the limit (tentative counts: no walk of the notebook)."""
        for loop, ancestors in flow.statements_with_ancestors(tree, (ast.For,)):
            if _countable(loop):
                chain = [a for a in flow.local_ancestors(ancestors) if isinstance(a, ast.For)] + [loop]
                if self._lines(chain, flow.tentative_value):
                    yield loop, ancestors

    def _lines(self, loops, value=flow.quick_value) -> int | None:
        """Times the output runs, the product of the loops' known trip counts, when
        it is over the limit."""
        lines = passes(loops, self.context, value)
        return lines if lines is not None and lines > _FLOOD_LINES else None


def trip_count(loop: ast.AST, context, value=flow.quick_value) -> int | None:
    """The trip count of ``for x in range(...)`` (also through ``enumerate``,
    ``tqdm``, ``trange``) or of a literal sequence."""
    if not isinstance(loop, ast.For) or not _countable(loop):
        return None
    iterable = _unwrapped(loop.iter)
    if isinstance(iterable, ast.Call):
        if iterable.keywords:
            return None
        iterable = ast.Call(func=ast.Name("range", ast.Load()), args=iterable.args, keywords=[])
    found = value(iterable, context)
    return len(found) if type(found) in (range, list, tuple) else None


def passes(loops, context, value=flow.quick_value) -> int | None:
    """The product of the loops' known trip counts (unknown ones count once), or
    ``None`` when none is known."""
    counts = [trip_count(loop, context, value) for loop in loops]
    if not any(counts):
        return None
    total = 1
    for count in counts:
        total *= count or 1
    return total


def _unwrapped(iterable: ast.expr) -> ast.expr:
    while isinstance(iterable, ast.Call) and iterable.args and flow.callee(iterable) in ("enumerate", "tqdm"):
        iterable = iterable.args[0]
    return iterable


def _builtin_iteration(loop: ast.For, facts: flow.Facts) -> bool:
    """Whether the counted loop's ``range``/``enumerate`` are the builtins."""
    iterable = loop.iter
    while isinstance(iterable, ast.Call) and flow.callee(iterable) in ("enumerate", "tqdm"):
        if flow.callee(iterable) == "enumerate" and not facts.is_builtin(iterable.func, "enumerate"):
            return False
        iterable = iterable.args[0]
    return (
        not isinstance(iterable, ast.Call)
        or flow.callee(iterable) == "trange"
        or facts.is_builtin(iterable.func, "range")
    )


_OUTPUT_NAMES = frozenset({"print", "display", "write", "writelines", "warning", "error", "critical", "exception",
                           "pprint", "pp"})


def _countable(loop: ast.For) -> bool:
    """Whether a ``for`` loop's iterable has a shape whose length may be known."""
    iterable = _unwrapped(loop.iter)
    return isinstance(iterable, (ast.List, ast.Tuple)) or (
        isinstance(iterable, ast.Call) and flow.callee(iterable) in ("range", "trange")
    )


def _continues(loop: flow.Loop) -> bool:
    """Whether the loop has a ``continue`` of its own (a way to skip the output)."""
    stack: list[ast.AST] = list(loop.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Continue):
            return True
        if not isinstance(node, (*flow.SCOPES, *flow.LOOPS)):
            stack.extend(ast.iter_child_nodes(node))
        elif isinstance(node, flow.LOOPS):
            stack.extend(node.orelse)
    return False


# Calls that create or overwrite a file named by their first argument (or ``path=``).
_SAVES = frozenset({"save", "savez", "savez_compressed", "savetxt", "savefig", "imwrite", "imsave", "to_csv",
                    "to_parquet", "to_pickle", "to_json", "to_excel", "to_hdf", "to_feather", "write_text",
                    "write_bytes", "save_weights", "save_model", "dump", "urlretrieve", "copyfile", "copy"})
# Save functions whose names are too common to trust without their module.
_MODULE_SAVES = {"copy": "shutil.copy", "copyfile": "shutil.copyfile", "urlretrieve": "urllib.request.urlretrieve"}
_WRITE_MODES = ("w", "a", "x", "+")


class FileWriteInEndlessLoop(Rule):
    """
    ## What it does
    Flags, on every pass of a loop that never ends (see KG201 and KG203): writes
    to a file opened before the loop or in append mode, and saves to a new file
    name each time (`savefig(f"frame_{i}.png")`).

    ## Why is this bad?
    The file (or the directory) grows until the disk is full. A full disk then
    breaks everything else too: the notebook can no longer be saved, and other
    programs on the machine fail.

    ## Example
    ```python
    i = 0
    while True:
        plt.savefig(f"frames/{i}.png")
        i += 1
    ```

    ## Use instead
    ```python
    for i in range(n_frames):
        plt.savefig(f"frames/{i}.png")
    ```
    """

    code = "KG603"
    name = "file-write-in-endless-loop"
    summary = "file written on every pass of a loop that never ends"
    severity = "error"
    triggers = None
    VALID = [
        """
        with open('log.txt', 'a') as f:
            for i in range(10):
                f.write(str(i))
        """,
        """
        while True:
            torch.save(model.state_dict(), 'last.pt')
            if train() < 0.1:
                break
        """,
        """
        while True:
            with open('status.txt', 'w') as f:
                f.write(status())
            time.sleep(5)
        """,
        """
        while True:
            df.to_csv('latest.csv')
        """,
        """
        import sys
        while True:
            sys.stdout.write('x')
            if done():
                break
        """,
    ]
    INVALID = [
        Case(
            """
            f = open('log.txt', 'w')
            while True:
                f.write(read_sensor())
            """,
            line=3, column=5, message="`f.write()`",
        ),
        """
        i = 0
        while True:
            plt.savefig(f'frames/{i}.png')
            i += 1
        """,
        """
        while True:
            with open('log.txt', 'a') as log:
                log.write(step())
        """,
        (
            "import itertools",
            """
            for i in itertools.count():
                np.save('out_%d.npy' % i, sample())
            """,
        ),
        """
        with open('out.txt', 'w') as out:
            while True:
                print(step(), file=out)
        """,
    ]

    def visit_cell(self, cell, tree: ast.Module) -> None:
        source = cell.source
        if not flow.ENDLESS_LINE.search(source):
            return
        if not ("write" in source or "open" in source or "save" in source or "to_" in source or "dump" in source
                or "file=" in source or "copy" in source or "retrieve" in source):
            return
        for loop, ancestors, calls in _endless_loops(tree, self.context):
            facts = flow.facts(self.context)
            opened = _opened_before(ancestors, facts)
            for node, full in calls:
                what = self._growth(node, loop, full, opened, facts)
                if what:
                    self.report_at(cell, self.context.ast_position(cell, node),
                                   f"{what} on every pass of a loop that never ends: it grows until the disk is full")
                    break

    def _growth(self, call: ast.Call, loop, ancestors, opened: set[str], facts: flow.Facts) -> str | None:
        name = flow.callee(call)
        func = call.func
        if name in ("write", "writelines") and isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            handle = func.value.id
            if handle in opened or handle in _appending_in_loop(ancestors, loop):
                return f"`{handle}.{name}()` appends to a file"
        if name == "print":
            target = next((k.value for k in call.keywords if k.arg == "file"), None)
            if isinstance(target, ast.Name) and (
                target.id in opened or target.id in _appending_in_loop(ancestors, loop)
            ):
                return f"`print(..., file={target.id})` appends to a file"
        if name in _SAVES and (name not in _MODULE_SAVES or _MODULE_SAVES[name] == (facts.resolve(func) or "")):
            path = _target_path(call, facts)
            if path is not None and _varies(path, loop):
                return f"`{flow.source_of(func)}()` writes a new file"
        return None


def _target_path(call: ast.Call, facts: flow.Facts) -> ast.expr | None:
    """The file a save call writes: a ``path=``-like keyword, else the first
    argument (the second for ``torch.save(obj, path)``, ``shutil.copy(src, dst)``...)."""
    for keyword in call.keywords:
        if keyword.arg in ("path", "fname", "filename", "filepath", "path_or_buf", "file", "f", "dst"):
            return keyword.value
    module = (facts.resolve(call.func) or "").split(".")[0]
    index = 1 if module in ("torch", "joblib", "pickle", "json", "shutil", "urllib") else 0
    return call.args[index] if len(call.args) > index else None


def _opened_before(ancestors, facts: flow.Facts) -> set[str]:
    """Names of files opened for writing, before the loop: ``with open(..., "w") as f``
    around it, or ``f = open(..., "w")`` as the only binding of ``f``."""
    opened = set()
    for ancestor in ancestors:
        if isinstance(ancestor, (ast.With, ast.AsyncWith)):
            for item in ancestor.items:
                if _opens_for_writing(item.context_expr) and isinstance(item.optional_vars, ast.Name):
                    opened.add(item.optional_vars.id)
    for name, values in facts.assigned.items():
        if len(values) == 1 and facts.bindings[name] == 1 and _opens_for_writing(values[0]):
            opened.add(name)
    return opened


def _appending_in_loop(ancestors, loop) -> set[str]:
    """``with open(..., "a") as f`` inside the loop, around the write."""
    names = set()
    inside = False
    for ancestor in ancestors:
        inside = inside or ancestor is loop
        if inside and isinstance(ancestor, (ast.With, ast.AsyncWith)):
            for item in ancestor.items:
                if _mode(item.context_expr).startswith("a") and isinstance(item.optional_vars, ast.Name):
                    names.add(item.optional_vars.id)
    return names


def _mode(call: ast.expr) -> str:
    if not (isinstance(call, ast.Call) and flow.callee(call) == "open"):
        return ""
    mode = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "mode"), None)
    return mode.value if isinstance(mode, ast.Constant) and isinstance(mode.value, str) else "r"


def _opens_for_writing(call: ast.expr) -> bool:
    return any(flag in _mode(call) for flag in _WRITE_MODES)


def _varies(path: ast.expr, loop) -> bool:
    """Whether a file name is built from a name the loop rebinds (a counter)."""
    if not isinstance(path, (ast.JoinedStr, ast.BinOp, ast.Call)):
        return False
    rebound = {n.id for n in flow.body_nodes(loop.body) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    if isinstance(loop, ast.For):
        rebound |= {n.id for n in ast.walk(loop.target) if isinstance(n, ast.Name)}
    return any(isinstance(n, ast.Name) and n.id in rebound for n in ast.walk(path))
