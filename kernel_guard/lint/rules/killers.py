"""KG5: calls that end or cripple the kernel process itself.

Names are resolved through imports and aliases by ``lint.names`` (``from os
import _exit as bye`` is still ``os._exit``), across cells and from a kernel's
namespace.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from kernel_guard.estimator import evaluate
from kernel_guard.lint.names import CellNames, cell_names, cell_text
from kernel_guard.lint.rule import Case, Rule
from kernel_guard.source import Cell


class _CallRule(Rule):
    """A rule about calls to particular functions, named by qualified name."""

    targets: frozenset[str] = frozenset()
    notebook_only = False
    names: CellNames

    def visit_cell(self, cell: Cell, tree: ast.Module) -> None:
        if self.notebook_only and not self.context.is_notebook:
            return
        self.names = cell_names(self.context, cell, tree)
        for node in _preorder(tree):
            if isinstance(node, ast.Call):
                names = self.names.names(node.func) & self.targets
                if names:
                    self.check(node, min(names))

    message = ""  # formatted with the qualified ``name`` and its last part, ``short``

    def check(self, node: ast.Call, name: str) -> None:
        self.report(node, self.message.format(name=name, short=name.rsplit(".", 1)[-1]))


class OsExit(_CallRule):
    """
    ## What it does
    Flags `os._exit(...)`.

    ## Why is this bad?
    `os._exit` ends the process at once, without cleanup. In a notebook the
    process is the kernel: every variable is lost and Jupyter only reports that
    the kernel died.

    ## Example
    ```python
    import os
    if failed:
        os._exit(1)
    ```

    ## Use instead
    ```python
    if failed:
        raise RuntimeError("stopping here")
    ```
    """

    code = "KG501"
    name = "os-exit"
    summary = "`os._exit()` ends the kernel process"
    severity = "error"
    triggers = ("_exit",)
    targets = frozenset({"os._exit", "posix._exit"})
    VALID = [
        """
        import sys
        sys.exit(0)
        """,
        """
        def _exit():
            pass
        _exit()
        """,
        """
        import os
        os.exit = print
        print(os.path.exists('x'))
        """,
    ]
    INVALID = [
        Case(
            """
            import os
            os._exit(0)
            """,
            line=2, column=1, message="os._exit",
        ),
        Case(
            """
            from os import _exit as bye
            bye(1)
            """,
            line=2,
        ),
        Case(("import os", "x = 1", "os._exit(1)"), line=1),
        Case(
            """
            import os
            os._exit(0)
            """,
            script=True,
        ),
    ]
    message = "`os._exit()` ends the kernel process at once; raise an exception to stop instead"


class OsAbort(_CallRule):
    """
    ## What it does
    Flags `os.abort()`.

    ## Why is this bad?
    `os.abort` sends SIGABRT to the process: the kernel dies (and may dump core)
    with no Python traceback.

    ## Example
    ```python
    import os
    os.abort()
    ```

    ## Use instead
    ```python
    raise RuntimeError("stopping here")
    ```
    """

    code = "KG502"
    name = "os-abort"
    summary = "`os.abort()` kills the kernel with SIGABRT"
    severity = "error"
    triggers = ("abort",)
    targets = frozenset({"os.abort", "posix.abort"})
    VALID = [
        """
        import numpy as np
        np.seterr(all='raise')
        abort = False
        """,
        "task.abort()",
    ]
    INVALID = [
        Case(
            """
            import os
            os.abort()
            """,
            line=2,
        ),
        """
        from os import abort
        abort()
        """,
    ]
    message = "`os.abort()` kills the kernel with SIGABRT; raise an exception instead"


class KillSelf(_CallRule):
    """
    ## What it does
    Flags `os.kill(os.getpid(), ...)`, `os.killpg` of the kernel's own process
    group, and `signal.raise_signal(...)` of a fatal signal.

    ## Why is this bad?
    The kernel sends the signal to itself: SIGKILL and SIGTERM end it, and so does
    any signal whose default action is to terminate.

    ## Example
    ```python
    import os, signal
    os.kill(os.getpid(), signal.SIGTERM)
    ```

    ## Use instead
    ```python
    raise SystemExit  # IPython catches it and the kernel stays alive
    ```
    """

    code = "KG503"
    name = "kill-self"
    summary = "the kernel sends itself a fatal signal"
    severity = "error"
    triggers = ("kill", "raise_signal")
    targets = frozenset({"os.kill", "os.killpg", "signal.raise_signal"})
    _SELF = frozenset({"os.getpid", "os.getpgrp", "os.getpgid"})
    _HARMLESS = frozenset({"signal.SIGINT", "signal.SIGUSR1", "signal.SIGUSR2", "signal.SIGCHLD", "signal.SIGWINCH"})
    VALID = [
        """
        import os, signal
        os.kill(child_pid, signal.SIGTERM)
        """,
        """
        import os, signal
        os.kill(os.getpid(), signal.SIGINT)
        """,
        """
        import os
        os.kill(os.getpid(), 0)
        """,
        """
        import signal
        signal.raise_signal(signal.SIGINT)
        """,
    ]
    INVALID = [
        Case(
            """
            import os, signal
            os.kill(os.getpid(), signal.SIGKILL)
            """,
            line=2,
        ),
        """
        import os
        import signal as s
        os.kill(os.getpid(), s.SIGTERM)
        """,
        """
        from os import kill, getpid
        kill(getpid(), 9)
        """,
        """
        import os, signal
        os.killpg(os.getpgrp(), signal.SIGTERM)
        """,
        """
        import signal
        signal.raise_signal(signal.SIGTERM)
        """,
    ]

    def check(self, node: ast.Call, name: str) -> None:
        args = _arguments(node)
        if name == "signal.raise_signal":
            if args and self._fatal(args[0]):
                self.report(node, "`signal.raise_signal()` of a fatal signal kills the kernel")
            return
        if len(args) >= 2 and isinstance(args[0], ast.Call):
            if self.names.names(args[0].func) & self._SELF and self._fatal(args[1]):
                self.report(node, f"`{name}()` of the kernel's own process kills the kernel")

    def _fatal(self, signal: ast.expr) -> bool:
        if self.names.names(signal) & self._HARMLESS:
            return False
        value = evaluate(signal, self.context.constant)
        return not (isinstance(value, int) and value in (0, 2, 10, 12, 17, 28))


class ExitInNotebook(_CallRule):
    """
    ## What it does
    Flags `exit()` and `quit()` in a notebook.

    ## Why is this bad?
    In ipykernel, `exit()` and `quit()` are not `sys.exit`: they ask the kernel
    to shut down. The notebook loses its kernel and all its variables.
    (`sys.exit()` and `raise SystemExit` only stop the cell: IPython catches them.)

    ## Example
    ```python
    if df.empty:
        exit()
    ```

    ## Use instead
    ```python
    if df.empty:
        raise SystemExit("no data")  # stops the cell, keeps the kernel
    ```

    ## Fix
    `kernel-lint --fix` replaces `exit()` or `quit()` written as a statement with
    `raise SystemExit`, keeping its argument: the cell stops, the kernel lives.
    """

    code = "KG504"
    name = "exit-in-notebook"
    summary = "`exit()`/`quit()` shut the kernel down"
    severity = "error"
    triggers = ("exit", "quit")
    targets = frozenset({"builtins.exit", "builtins.quit"})
    notebook_only = True
    VALID = [
        """
        import sys
        sys.exit(1)
        """,
        "raise SystemExit",
        Case(
            """
            if __name__ == '__main__':
                exit(main())
            """,
            script=True,
        ),
        Case("exit()", script=True),
        """
        def exit():
            print('bye')
        exit()
        """,
        "app.exit()",
    ]
    INVALID = [
        Case("exit()", line=1, column=1),
        """
        if done:
            quit()
        """,
        (
            "x = 1",
            """
            for i in range(3):
                exit(0)
            """,
        ),
    ]
    message = "`{short}()` shuts the kernel down; use `raise SystemExit` to stop only the cell"


class SigintIgnored(_CallRule):
    """
    ## What it does
    Flags `signal.signal(SIGINT, SIG_IGN)` and `signal.signal(SIGINT, SIG_DFL)`.

    ## Why is this bad?
    Jupyter's *Interrupt* button sends SIGINT. Ignored, the kernel can no longer
    be interrupted: a long cell can only be stopped by restarting the kernel.
    With the default action restored, the next interrupt kills the kernel.

    ## Example
    ```python
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ```

    ## Use instead
    ```python
    try:
        long_running()
    except KeyboardInterrupt:
        print("stopped")
    ```
    """

    code = "KG505"
    name = "sigint-disabled"
    summary = "SIGINT ignored or reset: the kernel cannot be interrupted"
    severity = "error"
    triggers = ("SIGINT",)
    targets = frozenset({"signal.signal"})
    VALID = [
        """
        import signal
        signal.signal(signal.SIGINT, handler)
        """,
        """
        import signal
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        """,
        """
        import signal
        signal.signal(signal.SIGINT, signal.default_int_handler)
        """,
    ]
    INVALID = [
        Case(
            """
            import signal
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            """,
            line=2, message="interrupt",
        ),
        """
        from signal import signal, SIGINT, SIG_DFL
        signal(SIGINT, SIG_DFL)
        """,
    ]

    def check(self, node: ast.Call, name: str) -> None:
        args = _arguments(node)
        if len(args) < 2 or "signal.SIGINT" not in self.names.names(args[0]):
            return
        action = self.names.names(args[1])
        if "signal.SIG_IGN" in action:
            self.report(node, "SIGINT ignored: the kernel can no longer be interrupted")
        elif "signal.SIG_DFL" in action:
            self.report(node, "SIGINT reset to its default action: the next interrupt kills the kernel")


class ForkInKernel(_CallRule):
    """
    ## What it does
    Flags `os.fork()` and `os.forkpty()` in a notebook.

    ## Why is this bad?
    The child is a copy of the kernel, with its ZeroMQ sockets and threads: it
    answers the notebook's messages too, or deadlocks on a lock a thread held.
    Either copy can hang or take the kernel down.

    ## Example
    ```python
    import os
    pid = os.fork()
    ```

    ## Use instead
    ```python
    import subprocess
    subprocess.run(["python", "worker.py"])
    ```
    """

    code = "KG506"
    name = "fork-in-kernel"
    summary = "`os.fork()` copies the kernel process"
    severity = "error"
    triggers = ("fork",)
    targets = frozenset({"os.fork", "os.forkpty", "posix.fork", "pty.fork"})
    notebook_only = True
    VALID = [
        Case(
            """
            import os
            pid = os.fork()
            """,
            script=True,
        ),
        """
        import os
        os.register_at_fork(after_in_child=f)
        """,
    ]
    INVALID = [
        Case(
            """
            import os
            pid = os.fork()
            """,
            line=2,
        ),
        """
        from os import fork
        fork()
        """,
    ]
    message = "`{name}()` copies the kernel, sockets and threads included; use subprocess or multiprocessing"


class SpawnNotebookFunction(Rule):
    """
    ## What it does
    Flags a `multiprocessing` pool or process given a function defined in the
    notebook when the notebook asks for the `spawn` or `forkserver` start method.

    ## Why is this bad?
    Under `spawn` and `forkserver`, the workers start a fresh interpreter and look
    the function up by name in `__main__`, which in a kernel is not the notebook.
    Every worker fails with `AttributeError: Can't get attribute ...`, the pool
    replaces it, and `pool.map` waits forever: the cell hangs.

    ## Example
    ```python
    import multiprocessing as mp
    mp.set_start_method("spawn")
    def square(x):
        return x * x
    with mp.Pool(4) as pool:
        pool.map(square, range(10))
    ```

    ## Use instead
    ```python
    # workers.py: def square(x): return x * x
    from workers import square
    with mp.Pool(4) as pool:
        pool.map(square, range(10))
    ```
    """

    code = "KG507"
    name = "spawn-notebook-function"
    summary = "multiprocessing under spawn with a function defined in the notebook hangs"
    severity = "error"
    triggers = None  # it needs the functions of every cell
    _TRIGGERS = ("Pool", "Process", "spawn", "forkserver")
    _POOL_METHODS = frozenset(
        {"map", "imap", "imap_unordered", "starmap", "apply", "apply_async", "map_async", "starmap_async"}
    )
    _START = frozenset({
        "multiprocessing.set_start_method",
        "multiprocessing.get_context",
        "multiprocessing.context.BaseContext.get_context",
    })
    VALID = [
        """
        import multiprocessing as mp
        def f(x):
            return x
        with mp.Pool(2) as pool:
            pool.map(f, range(3))
        """,
        """
        import multiprocessing as mp
        from workers import f
        mp.set_start_method('spawn')
        with mp.Pool(2) as pool:
            pool.map(f, range(3))
        """,
        Case(
            """
            import multiprocessing as mp
            mp.set_start_method('spawn')
            def f(x):
                return x
            if __name__ == '__main__':
                with mp.Pool(2) as pool:
                    pool.map(f, range(3))
            """,
            script=True,
        ),
        """
        import multiprocessing as mp
        mp.set_start_method('fork')
        def f(x):
            return x
        p = mp.Process(target=f)
        """,
    ]
    INVALID = [
        Case((
            """
            import multiprocessing as mp
            mp.set_start_method('spawn')
            """,
            """
            def square(x):
                return x * x
            """,
            """
            with mp.Pool(4) as pool:
                print(pool.map(square, range(10)))
            """,
        ), line=2, message="square"),
        """
        import multiprocessing as mp
        def f(x):
            return x
        ctx = mp.get_context('spawn')
        pool = ctx.Pool(2)
        pool.map(f, [1])
        """,
        """
        from multiprocessing import Process, set_start_method
        set_start_method('forkserver')
        def work():
            pass
        p = Process(target=work)
        p.start()
        """,
    ]

    @classmethod
    def applies_to(cls, document) -> bool:
        # Only a notebook that asks for spawn or forkserver can hang this way.
        return document.is_notebook and any("spawn" in c.source or "forkserver" in c.source for c in document.cells)

    def __init__(self, context) -> None:
        super().__init__(context)
        self.functions: set[str] = set()
        self.pools: set[str] = set()
        self.spawn = False
        self.candidates: list[tuple] = []

    def visit_cell(self, cell: Cell, tree: ast.Module) -> None:
        self.functions.update(
            node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        )
        text = cell_text(cell.source, self.context.known)
        if self.context.is_notebook and any(word in text for word in self._TRIGGERS):
            names = cell_names(self.context, cell, tree)
            for node in _preorder(tree):
                if isinstance(node, ast.Call):
                    self._call(cell, node, names)
                elif isinstance(node, ast.Assign) and _is_pool(node.value):
                    self.pools.update(target.id for target in node.targets if isinstance(target, ast.Name))
                elif (isinstance(node, ast.withitem) and _is_pool(node.context_expr)
                      and isinstance(node.optional_vars, ast.Name)):
                    self.pools.add(node.optional_vars.id)

    def _call(self, cell: Cell, node: ast.Call, names: CellNames) -> None:
        qualified = names.names(node.func)
        args = _arguments(node)
        if qualified & self._START and args:
            method = evaluate(args[0], self.context.constant)
            self.spawn = self.spawn or method in ("spawn", "forkserver")
        if any(name.endswith("Process") for name in qualified) or _attr(node.func) == "Process":
            target = next((k.value for k in node.keywords if k.arg == "target"), None)
            self._candidate(cell, node, target, "Process")
        elif (isinstance(node.func, ast.Attribute) and node.func.attr in self._POOL_METHODS
              and isinstance(node.func.value, ast.Name)):
            if node.func.value.id in self.pools and args:
                self._candidate(cell, node, args[0], f"pool.{node.func.attr}")

    def _candidate(self, cell: Cell, node: ast.Call, function: ast.expr | None, via: str) -> None:
        if isinstance(function, ast.Name) and function.id in self.functions:
            self.candidates.append((cell, self.context.ast_position(cell, node), function.id, via))

    def end_document(self) -> None:
        if not self.spawn:
            return
        for cell, position, function, via in self.candidates:
            self.report_at(
                cell,
                position,
                f"`{via}` runs `{function}`, defined in the notebook, under the spawn/forkserver start method: "
                "the workers cannot find it and the cell hangs; move it to a module and import it",
            )


def _preorder(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node in source order, each before its children."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(list(ast.iter_child_nodes(node))))


def _arguments(call: ast.Call) -> list[ast.expr]:
    """A call's argument values in order, positional then keyword (``*a`` as ``a``)."""
    values = [*call.args, *(keyword.value for keyword in call.keywords)]
    return [value.value if isinstance(value, ast.Starred) else value for value in values]


def _attr(func: ast.expr) -> str | None:
    return func.attr if isinstance(func, ast.Attribute) else None


def _is_pool(value: ast.expr) -> bool:
    if not isinstance(value, ast.Call):
        return False
    func = value.func
    return (isinstance(func, ast.Name) and func.id == "Pool") or _attr(func) == "Pool"
