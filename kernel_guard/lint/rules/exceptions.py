"""KG4: errors certain to be raised, and handlers that make a loop impossible to
interrupt.

"Certain" means: the operands are statically known (literals, or names bound
once in the whole notebook and never changed), the expression runs whenever its
cell or function runs (not under an ``if``, a conditional expression, ``and``/
``or``, a comprehension or a handler), and no ``try`` around it catches the error.
"""

from __future__ import annotations

import ast
import re
from typing import cast

from kernel_guard.estimator import UNKNOWN, evaluate
from kernel_guard.lint import flow
from kernel_guard.lint.rule import Case, Rule

_NUMBER = (int, float, complex, bool)
_INT = re.compile(r"-?\d+")
_DIVISOR = re.compile(r"[/%]\s*\(*\s*([\w.]+)")  # what follows ``/``, ``//`` or ``%`` in a cell's text
_ZERO = re.compile(r"0+\.?0*|0*\.0+")
_SUBSCRIPT = re.compile(r"\b(\w+)\s*\[([^\[\]]+)\]")  # ``name[key]`` in a cell's text
_LITERALS = (ast.Tuple, ast.List, ast.Dict, ast.Constant)  # what ``_top_level_literals`` keeps
# Methods that read a dict or list without changing it.
_READ_METHODS = frozenset({"get", "keys", "values", "items", "copy", "index", "count"})


class _CertainError(Rule):
    triggers = None
    error: type[BaseException] = Exception

    def certain(self, node: ast.AST, ancestors) -> bool:
        return flow.unconditional(ancestors, node) and not flow.in_try_body(
            ancestors, node, lambda handler: flow.catches(handler, self.error)
        ) and not _expecting_error(ancestors)


def _expecting_error(ancestors) -> bool:
    """Inside ``with pytest.raises(...)``, ``self.assertRaises(...)``, ``suppress(...)``."""
    for ancestor in ancestors:
        if isinstance(ancestor, (ast.With, ast.AsyncWith)):
            for item in ancestor.items:
                call = item.context_expr
                if isinstance(call, ast.Call) and (flow.callee(call) or "").lower().endswith(("raises", "suppress")):
                    return True
    return False


class DivisionByZero(_CertainError):
    """
    ## What it does
    Flags `/`, `//` and `%` of a known Python number by zero — a literal `0`,
    or a name bound once in the notebook to `0` — where the division runs
    whenever its cell or function runs (not under an `if`, a conditional
    expression, `and`/`or`, or a comprehension) and no `try` around it catches
    `ZeroDivisionError`.

    ## Why is this bad?
    The cell fails with `ZeroDivisionError` every time it runs. (NumPy arrays and
    scalars divide by zero with a warning instead; they are not flagged.)

    ## Example
    ```python
    n_samples = 0
    mean = len(values) / n_samples
    ```

    ## Use instead
    ```python
    mean = len(values) / n_samples if n_samples else float("nan")
    ```
    """

    code = "KG401"
    name = "division-by-zero"
    summary = "division of a number by a constant zero"
    severity = "error"
    error = ZeroDivisionError
    VALID = [
        """
        try:
            x = 1 / 0
        except ZeroDivisionError:
            x = float('inf')
        """,
        """
        try:
            x = 1 / 0
        except Exception as e:
            print(e)
        """,
        """
        import numpy as np
        ratio = np.ones(3) / 0
        """,
        """
        n = 0
        if n:
            print(10 / n)
        """,
        """
        n = 0
        ratio = 10 / n if n else 0.0
        """,
        """
        n = 0
        n = 5
        print(10 / n)
        """,
        """
        count = 0
        for x in data:
            count += 1
        print(len(data) / count)
        """,
        "x = total / 0",
        Case(
            """
            RATE = 0
            def per_second():
                return 10 / RATE
            """,
            script=True,
        ),
        "print('%d items' % 0)",
        """
        import pytest
        with pytest.raises(ZeroDivisionError):
            1 / 0
        """,
        """
        n = 0
        ok = n != 0 and 1 / n > 0.5
        """,
    ]
    INVALID = [
        Case("x = 1 / 0", line=1, column=5, message="ZeroDivisionError"),
        ("N_RUNS = 0", "print(len(results) / N_RUNS)"),
        """
        def rate(hits):
            return 100 // 0
        """,
        """
        steps = 10
        warmup = 0
        for i in range(steps):
            print(i % warmup)
        """,
        "x = 5.0 % 0.0",
    ]

    def __init__(self, context) -> None:
        super().__init__(context)
        self._zeros: frozenset[str] | None = None

    def visit_cell(self, cell, tree: ast.Module) -> None:
        if "/" not in cell.source and "%" not in cell.source:
            return
        if self._zeros is None:
            self._zeros = frozenset(
                name for name, value in _top_level_literals(self.context).items()
                if isinstance(value, ast.Constant) and type(value.value) in _NUMBER and value.value == 0
                and self.context.is_notebook  # a module's globals may be set from outside
            )
        if not any(_ZERO.fullmatch(m) or m in self._zeros for m in _DIVISOR.findall(cell.source)):
            return
        for node, ancestors in flow.with_ancestors(tree, (ast.BinOp,)):
            if not isinstance(node.op, (ast.Div, ast.FloorDiv, ast.Mod)):
                continue
            divisor = (flow.quick_value(node.right, self.context) if self.context.is_notebook
                       else evaluate(node.right, lambda name: UNKNOWN))
            if type(divisor) not in _NUMBER or divisor != 0 or not self._number(node.left, ancestors):
                continue
            if self.certain(node, ancestors):
                self.report_at(
                    cell,
                    self.context.ast_position(cell, node),
                    f"`{flow.source_of(node, cell.source)}` divides by zero: it raises ZeroDivisionError every time",
                )

    def _number(self, node: ast.expr, ancestors) -> bool:
        """A Python number for certain: a constant, ``len()``/``int()``/``float()``,
        or the variable of an enclosing ``for ... in range(...)`` (not a NumPy array
        or scalar, which divide by zero without raising)."""
        if type(flow.quick_value(node, self.context)) in _NUMBER:
            return True
        facts = flow.facts(self.context)
        if isinstance(node, ast.Call):
            return any(facts.is_builtin(node.func, name) for name in ("len", "int", "float"))
        return isinstance(node, ast.Name) and any(
            isinstance(loop, ast.For) and isinstance(loop.target, ast.Name) and loop.target.id == node.id
            and isinstance(loop.iter, ast.Call) and facts.is_builtin(loop.iter.func, "range")
            for loop in flow.local_ancestors(ancestors)
        )


def _top_level_literals(context) -> dict[str, ast.expr]:
    """``name = <literal>`` statements at the top of cells (cheap: no walk)."""
    return context.shared(_top_level_literals, lambda: _find_top_level_literals(context))


def _find_top_level_literals(context) -> dict[str, ast.expr]:
    found: dict[str, ast.expr] = {}
    for tree in context.trees.values():
        for statement in tree.body:
            if (
                isinstance(statement, ast.Assign)
                and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name)
                and isinstance(statement.value, (*_LITERALS, ast.UnaryOp))
            ):
                found[statement.targets[0].id] = statement.value
    return found


class _LookupError(_CertainError):
    """A constant subscript of a container whose content is known."""

    def __init__(self, context) -> None:
        super().__init__(context)
        self._names: frozenset[str] | None = None
        self._contents: dict[str, object] = {}

    def names(self) -> frozenset[str]:
        """The names bound to a wanted literal at the top of a cell."""
        if self._names is None:
            self._names = frozenset(
                name for name, value in _top_level_literals(self.context).items() if self.wanted(value)
            )
        return self._names

    def visit_cell(self, cell, tree: ast.Module) -> None:
        if "[" not in cell.source or not self.names() or not self._worth_walking(cell.source):
            return
        for node, ancestors in flow.with_ancestors(tree, (ast.Subscript,)):
            if not isinstance(node.ctx, ast.Load) or isinstance(node.slice, ast.Slice):
                continue
            literal = self.literal(node.value)
            content = None if literal is None else self.content(literal)
            if literal is None or content is None:
                continue
            key = flow.quick_value(node.slice, self.context)
            message = None if key is UNKNOWN else self.missing(content, key)
            if message and self.certain(node, ancestors) and self.unchanged(node.value, literal):
                self.report_at(cell, self.context.ast_position(cell, node),
                               f"`{flow.source_of(node, cell.source)}` {message}")

    def _worth_walking(self, source: str) -> bool:
        """Whether some ``name[key]`` in the text may look up what is not there (a
        key written as a number or a plain string is checked here; any other key
        needs the walk)."""
        names = self.names()
        for match in _SUBSCRIPT.finditer(source):
            if match.group(1) not in names:
                continue
            content = self._content_of(match.group(1))
            text = match.group(2).strip()
            if content is None or ":" in text:
                continue
            key: int | str
            if _INT.fullmatch(text):
                key = int(text)
            elif len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"" and "\\" not in text:
                key = text[1:-1]
            else:
                return True
            if self.missing(content, key):
                return True
        return False

    def _content_of(self, name: str):
        if name not in self._contents:
            literal = self.literal(ast.Name(name, ast.Load()))
            self._contents[name] = None if literal is None else self.content(literal)
        return self._contents[name]

    def literal(self, node: ast.expr) -> ast.expr | None:
        """The literal subscripted: written in place, or bound to the name at the top
        of a notebook cell.  (A module's globals may be set from outside, and an
        empty literal is meant to be filled: neither is trusted.)"""
        found: ast.expr | None = node
        if isinstance(node, ast.Name):
            found = _top_level_literals(self.context).get(node.id) if self.context.is_notebook else None
            if found is not None and not getattr(found, "elts", getattr(found, "keys", True)):
                return None
        return found if found is not None and self.wanted(found) else None

    def unchanged(self, node: ast.expr, literal: ast.expr) -> bool:
        """Whether the name is bound only to this literal and, for a list or dict,
        every use of it only reads it (checked last: it needs the notebook's facts)."""
        if node is literal:
            return True
        name = cast(ast.Name, node).id  # ``literal`` found the literal bound to this name
        if isinstance(literal, (ast.List, ast.Dict)) and self._maybe_changed(name):
            return False
        facts = flow.facts(self.context)
        if facts.bindings[name] != 1 or facts.assigned[name] != [literal]:
            return False
        return isinstance(literal, ast.Tuple) or all(
            flow.reads_only(use, parent, facts, _READ_METHODS) for use, parent, _, _ in facts.loads[name]
        )

    def _maybe_changed(self, name: str) -> bool:
        """A cheap look at the text of every cell before the exact check: an item
        assignment, a method call other than a read, ``del``, or the name passed
        to a call."""
        pattern = re.compile(
            rf"\b{re.escape(name)}\s*(?:\[[^\]]*\]\s*(?:[-+*/|&]?=(?!=))|\.\s*(?!(?:{'|'.join(_READ_METHODS)})\b)\w)"
            rf"|\bdel\s+{re.escape(name)}\b|[(,]\s*\**{re.escape(name)}\s*[,)]"
        )
        return any(pattern.search(cell.source) for cell in self.context.cells)

    def wanted(self, literal: ast.expr) -> bool:
        raise NotImplementedError

    def content(self, literal: ast.expr):
        raise NotImplementedError

    def missing(self, container, key) -> str | None:
        raise NotImplementedError


class IndexOutOfRange(_LookupError):
    """
    ## What it does
    Flags a constant index past the end of a tuple or list whose length is
    known: a name bound once, at the top of a notebook cell, to a tuple or list
    literal (a list only if nothing ever changes it).

    ## Why is this bad?
    The cell fails with `IndexError` every time it runs.

    ## Example
    ```python
    image_size = (224, 224)
    channels = image_size[2]
    ```

    ## Use instead
    ```python
    image_size = (224, 224, 3)
    channels = image_size[2]
    ```
    """

    code = "KG402"
    name = "index-out-of-range"
    summary = "constant index past the end of a sequence of known length"
    severity = "error"
    error = IndexError
    VALID = [
        """
        size = (224, 224)
        print(size[1], size[-2])
        """,
        """
        items = [1, 2]
        items.append(3)
        print(items[2])
        """,
        """
        items = [1, 2]
        add(items)
        print(items[2])
        """,
        """
        size = (224, 224)
        if len(size) > 2:
            print(size[2])
        """,
        """
        size = (224, 224)
        try:
            c = size[2]
        except IndexError:
            c = 1
        """,
        """
        size = (224, 224)
        size = (1, 2, 3)
        print(size[2])
        """,
        "print(sys.argv[1])",
        "x = 'abc'[1:10]",
    ]
    INVALID = [
        Case(
            """
            size = (224, 224)
            channels = size[2]
            """,
            line=2, column=12, message="IndexError",
        ),
        ("layers = [64, 128]", "print(layers[-3])"),
        """
        names = ('a', 'b')
        print(names[5])
        """,
        """
        def channels():
            return SIZE[2]
        SIZE = (1, 2)
        """,
    ]

    def wanted(self, literal: ast.expr) -> bool:
        return isinstance(literal, (ast.Tuple, ast.List))

    def content(self, literal: ast.expr):
        elements = cast("ast.Tuple | ast.List", literal).elts  # ``wanted`` lets only these through
        if any(isinstance(element, ast.Starred) for element in elements):
            return None
        return elements

    def missing(self, container, key) -> str | None:
        if type(key) is not int or -len(container) <= key < len(container):
            return None
        return f"is past the end of a sequence of length {len(container)}: it raises IndexError every time"


class MissingKey(_LookupError):
    """
    ## What it does
    Flags a constant key that is not in a dict literal, looked up with `d[key]`,
    when the dict is a literal or a name bound once to one that nothing ever
    changes (no item assignment, no `update`, not passed to a function).

    ## Why is this bad?
    The cell fails with `KeyError` every time it runs.

    ## Example
    ```python
    config = {"lr": 0.01, "epochs": 10}
    batch_size = config["batch_size"]
    ```

    ## Use instead
    ```python
    batch_size = config.get("batch_size", 32)
    ```
    """

    code = "KG403"
    name = "missing-key"
    summary = "constant key missing from a dict literal"
    severity = "error"
    error = KeyError
    VALID = [
        """
        config = {'lr': 0.1}
        print(config['lr'])
        """,
        """
        config = {'lr': 0.1}
        config['epochs'] = 3
        print(config['epochs'])
        """,
        """
        config = {'lr': 0.1}
        config.update(extra)
        print(config['epochs'])
        """,
        """
        config = {'lr': 0.1}
        print(config.get('epochs', 3))
        """,
        """
        config = {'lr': 0.1}
        if 'epochs' in config:
            print(config['epochs'])
        """,
        """
        config = {'lr': 0.1, **defaults}
        print(config['epochs'])
        """,
        """
        config = {'lr': 0.1}
        train(config)
        print(config['epochs'])
        """,
        """
        config = {'lr': 0.1}
        try:
            e = config['epochs']
        except KeyError:
            e = 1
        """,
        """
        options = {}
        def build():
            return options['path']
        """,
        Case(
            """
            options = {'a': 1}
            def build():
                return options['path']
            """,
            script=True,
        ),
    ]
    INVALID = [
        Case(
            """
            config = {'lr': 0.1, 'epochs': 10}
            bs = config['batch_size']
            """,
            line=2, column=6, message="KeyError",
        ),
        (
            "labels = {0: 'cat', 1: 'dog'}",
            """
            for k in labels:
                print(labels[k])
            print(labels[2])
            """,
        ),
        """
        EMPTY = {'a': 1}
        print(EMPTY['x'])
        """,
    ]

    def wanted(self, literal: ast.expr) -> bool:
        return isinstance(literal, ast.Dict)

    def content(self, literal: ast.expr):
        keys = set()
        for key in cast(ast.Dict, literal).keys:  # ``wanted`` lets only dicts through
            value = None if key is None else flow.quick_value(key, self.context)
            if value is None or value is UNKNOWN:
                return None  # ``**other``, or a key we cannot know
            try:
                keys.add(value)
            except TypeError:
                return None
        return keys

    def missing(self, container, key) -> str | None:
        try:
            if key in container:
                return None
        except TypeError:
            return None
        return "looks up a key the dict does not have: it raises KeyError every time"


class InterruptSwallowedInLoop(Rule):
    """
    ## What it does
    Flags, inside a loop, a handler that catches `KeyboardInterrupt` — a bare
    `except:`, `except BaseException:`, `except KeyboardInterrupt:` — and neither
    re-raises, breaks, returns, keeps the exception for later
    (`errors.append(e)`) nor changes the loop's condition, when the loop's work
    happens inside the `try` (the rest of the loop body makes no calls but cheap
    ones). A `for` loop known to run 10 times or fewer, or retrying until the
    `try` succeeds and breaks out, ends soon enough and is not reported.

    ## Why is this bad?
    Jupyter's *Interrupt* raises `KeyboardInterrupt` in the running code. The
    handler swallows it and the loop goes on with its next iteration: the cell
    cannot be interrupted, and the only way out is to restart the kernel and lose
    its state.

    ## Example
    ```python
    for url in urls:
        try:
            download(url)
        except:
            pass
    ```

    ## Use instead
    ```python
    for url in urls:
        try:
            download(url)
        except Exception:
            pass
    ```

    ## Fix
    `kernel-lint --fix` turns a bare `except:` into `except Exception:`, which lets
    `KeyboardInterrupt` through; `except BaseException` and `except
    KeyboardInterrupt` are left for you to change.
    """

    code = "KG404"
    name = "interrupt-swallowed-in-loop"
    summary = "handler in a loop swallows KeyboardInterrupt: the cell cannot be interrupted"
    severity = "warning"
    triggers = None
    _SHORT = 10  # a loop known to run this few times is stopped by as many interrupts
    VALID = [
        """
        for url in urls:
            try:
                download(url)
            except Exception:
                pass
        """,
        """
        while True:
            try:
                step()
            except KeyboardInterrupt:
                break
        """,
        """
        for x in xs:
            try:
                f(x)
            except:
                log()
                raise
        """,
        """
        for x in xs:
            try:
                f(x)
            except BaseException as e:
                if isinstance(e, KeyboardInterrupt):
                    raise
                log(e)
        """,
        """
        try:
            run()
        except:
            pass
        """,
        """
        for attempt in range(3):
            try:
                connect()
                break
            except:
                sleep(1)
        """,
        """
        def f():
            for x in xs:
                try:
                    g(x)
                except:
                    return None
        """,
        """
        for x in xs:
            def safe():
                try:
                    g(x)
                except:
                    pass
        """,
        """
        errors = []
        for task in tasks:
            try:
                task()
            except BaseException as e:
                errors.append(e)
        if errors:
            raise errors[0]
        """,
        """
        running = True
        while running:
            try:
                step()
            except KeyboardInterrupt:
                running = False
        """,
        """
        for x in xs:
            try:
                f(x)
            except KeyboardInterrupt:
                raise
            except:
                pass
        """,
        """
        import sys
        while pending:
            try:
                pending.pop()()
            except:
                failure = sys.exc_info()
        """,
        """
        for source in (a, b, c):
            try:
                load(source)
            except:
                continue
        """,
        """
        def retry(f, attempts):
            for _ in range(attempts):
                try:
                    return f()
                except:
                    pass
        """,
        """
        for f in files:
            img = load(f)
            try:
                meta = img.info['exif']
            except:
                meta = None
            process(img, meta)
        """,
    ]
    INVALID = [
        Case(
            """
            for url in urls:
                try:
                    download(url)
                except:
                    pass
            """,
            line=4, column=5, message="bare",
        ),
        """
        while True:
            try:
                step()
            except BaseException:
                continue
        """,
        Case(
            """
            while running:
                try:
                    step()
                except KeyboardInterrupt:
                    print('ignored')
            """,
            message="KeyboardInterrupt",
        ),
        """
        for i in range(100):
            try:
                work(i)
            except (ValueError, KeyboardInterrupt):
                pass
        """,
    ]

    def visit_cell(self, cell, tree: ast.Module) -> None:
        source = cell.source
        if "except" not in source or not flow.LOOP_LINE.search(source):
            return
        for handler, ancestors in flow.statements_with_ancestors(tree, (ast.ExceptHandler,)):
            caught = self._caught(handler)
            if caught is None or self._leaves(handler.body) or _keeps(handler) or self._preceded(handler, ancestors):
                continue
            loop = self._loop(ancestors)
            if loop is None or _ends_condition(handler, loop):
                continue
            what = "bare `except:`" if handler.type is None else f"`except {flow.source_of(handler.type, source)}`"
            line, column, _, _ = self.context.ast_position(cell, handler)
            self.report_at(
                cell,
                (line, column, line, column + len("except")),
                f"{what} inside a loop swallows {caught} and goes on with the next iteration: the cell cannot be "
                "interrupted; " + ("catch `Exception` instead" if caught != "KeyboardInterrupt" else
                                   "`break` or re-raise in this handler"),
            )

    def _caught(self, handler: ast.ExceptHandler) -> str | None:
        names = flow.handler_names(handler)
        facts = None
        if names is None:
            return "KeyboardInterrupt (and every other exception)"
        for name in ("BaseException", "KeyboardInterrupt"):
            if name in names:
                facts = facts or flow.facts(self.context)
                if facts.bindings[name] == 0:
                    if name == "KeyboardInterrupt":
                        return "KeyboardInterrupt"
                    return "KeyboardInterrupt (and every other exception)"
        return None

    def _preceded(self, handler: ast.ExceptHandler, ancestors) -> bool:
        """Whether an earlier handler of the same ``try`` already catches KeyboardInterrupt."""
        statement = ancestors[-1]
        earlier = statement.handlers[: next(i for i, h in enumerate(statement.handlers) if h is handler)]
        return any(self._caught(other) is not None for other in earlier)

    def _leaves(self, body: list[ast.stmt]) -> bool:
        """Whether the handler may re-raise, break, return or exit."""
        for node in flow.body_nodes(body):
            if isinstance(node, (ast.Raise, ast.Return, ast.Assert)):
                return True
            if isinstance(node, ast.Break) and not self._in_inner_loop(node, body):
                return True
            if isinstance(node, ast.Call) and flow.callee(node) in flow.EXIT_NAMES:
                return True
        return False

    @staticmethod
    def _in_inner_loop(node: ast.Break, body: list[ast.stmt]) -> bool:
        for statement in flow.body_nodes(body):
            if isinstance(statement, flow.LOOPS) and any(node is sub for sub in flow.body_nodes(statement.body)):
                return True
        return False

    def _loop(self, ancestors) -> ast.AST | None:
        """The loop of the same scope whose body holds the handler, if it may run
        long and its work happens inside the ``try`` (an interrupt most likely
        lands there)."""
        chain = flow.local_ancestors(ancestors)
        for index, (parent, child) in enumerate(zip(chain, chain[1:])):
            if isinstance(parent, flow.LOOPS) and any(child is statement for statement in parent.body):
                # (chain[-1]: the handler's own ``try``)
                if isinstance(parent, ast.For) and (self._short(parent.iter) or _retries(cast(ast.Try, chain[-1]))):
                    continue
                return parent if _work_inside(chain[index:]) else None
        return None

    def _short(self, iterable: ast.expr) -> bool:
        if isinstance(iterable, (ast.Tuple, ast.List, ast.Set)):
            return len(iterable.elts) <= self._SHORT
        value = flow.quick_value(iterable, self.context)
        if type(value) not in (range, tuple, list, str):
            return False
        return len(cast("range | tuple | list | str", value)) <= self._SHORT


_REPORTING = frozenset({"print", "str", "repr", "format", "debug", "info", "warning", "warn", "error", "exception",
                        "log", "critical", "print_exc", "write"})


def _keeps(handler: ast.ExceptHandler) -> bool:
    """Whether the handler keeps the exception for later (``errors.append(e)``,
    ``error = e``), to re-raise it after the loop: only printing it does not count."""
    for node in flow.body_nodes(handler.body):
        if isinstance(node, ast.Call) and flow.callee(node) == "exc_info":
            return True
        if not handler.name:
            continue
        if isinstance(node, ast.Call) and flow.callee(node) not in _REPORTING and any(
            isinstance(arg, ast.Name) and arg.id == handler.name for arg in node.args
        ):
            return True
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Name) \
                and node.value.id == handler.name:
            return True
    return False


def _ends_condition(handler: ast.ExceptHandler, loop: ast.AST) -> bool:
    """Whether the handler rebinds a name the ``while`` condition reads (``running = False``)."""
    if not isinstance(loop, ast.While):
        return False
    tested = {node.id for node in ast.walk(loop.test) if isinstance(node, ast.Name)}
    return any(
        isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load) and node.id in tested
        for node in flow.body_nodes(handler.body)
    )


# Calls cheap enough that an interrupt hardly ever lands in them.
_CHEAP = frozenset({"print", "len", "str", "int", "float", "range", "append", "format", "isinstance", "get", "join",
                    "items", "keys", "values", "enumerate", "zip", "sleep"})


def _retries(statement: ast.Try) -> bool:
    """A retry: the ``try`` leaves the loop once it succeeds (``break``/``return``),
    so a ``for`` loop around it runs only as many attempts as it has items."""
    return any(isinstance(node, (ast.Break, ast.Return)) for node in flow.body_nodes(statement.body))


def _work_inside(chain: tuple[ast.AST, ...]) -> bool:
    """Whether, from the loop down to the ``try`` (the last node of ``chain``), the
    statements beside the path make no calls but cheap ones: the loop spends its
    time in the ``try``.  (``sleep`` counts as cheap: it is where a retry loop
    waits, and an interrupt there is not swallowed.)"""
    for parent, child in zip(chain, chain[1:]):
        for field in ("body", "orelse", "finalbody"):
            block = getattr(parent, field, None)
            if not isinstance(block, list) or not any(child is statement for statement in block):
                continue
            for statement in block:
                if statement is not child and any(
                    isinstance(node, ast.Call) and flow.callee(node) not in _CHEAP
                    for node in flow.body_nodes([statement])
                ):
                    return False
    return True
