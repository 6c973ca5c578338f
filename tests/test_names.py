"""The one name resolver: imports of this cell, earlier cells and a kernel's namespace."""

from __future__ import annotations

import ast
import itertools
import os
import signal
import types

import pytest

from kernel_guard.lint.engine import lint_source
from kernel_guard.lint.names import CellNames, namespace_names

ENDLESS = "for i in it.count():\n    print(i)"


def codes(source: str, namespace=None) -> list[str]:
    return [finding.code for finding in lint_source(source, namespace=namespace)]


def test_loop_and_output_rules_see_a_module_bound_in_the_namespace():
    # The bug: with `it = itertools` run in an earlier cell, nothing was reported.
    assert codes(ENDLESS, {"it": itertools}) == ["KG203", "KG601"]
    assert codes("import itertools as it\n" + ENDLESS) == ["KG203", "KG601"]
    assert codes("for i in count():\n    print(i)", {"count": itertools.count}) == ["KG203", "KG601"]


def test_a_function_imported_earlier_keeps_its_public_name():
    display = pytest.importorskip("IPython.display").display  # says it is IPython.core.display_functions.display
    assert codes("while True:\n    display(1)", {"display": display}) == ["KG201", "KG601"]


def test_a_name_the_namespace_binds_to_something_else_is_not_guessed():
    assert codes(ENDLESS, {"it": object()}) == []
    assert codes(ENDLESS) == []
    # `iter` shadowed by the user's own function is not the builtin's endless `iter(int, 1)`
    endless_iter = "for i in iter(int, 1):\n    print(i)"
    assert codes(endless_iter) == ["KG203", "KG601"]
    assert codes(endless_iter, {"iter": lambda *args: []}) == []
    # a name bound in the cell wins over the namespace
    assert codes("it = [1]\nfor i in it.count():\n    print(i)", {"it": itertools}) == []


def test_kernel_killers_resolve_through_the_namespace():
    assert codes("bye(1)", {"bye": os._exit}) == ["KG501"]
    assert codes("system._exit(1)", {"system": os}) == ["KG501"]
    assert codes("s.signal(s.SIGINT, s.SIG_IGN)", {"s": signal}) == ["KG505"]
    # os.kill says it is posix.kill, signal.raise_signal _signal.raise_signal: their public names count
    assert codes("kill(getpid(), 9)", {"kill": os.kill, "getpid": os.getpid}) == ["KG503"]
    assert codes("raise_signal(SIGTERM)", {"raise_signal": signal.raise_signal}) == ["KG503"]
    assert codes("bye(1)", {"bye": print}) == []
    # IPython binds `exit` in every user namespace: it is still the kernel's exit
    assert codes("exit()", {"exit": object()}) == ["KG504"]


class _Hostile:
    """Every way of running code on access raises."""

    def __getattribute__(self, name):
        raise AssertionError(f"read {name}")

    def __eq__(self, other):
        raise AssertionError("compared")

    __hash__ = object.__hash__


class _HostileStr(str):
    def isidentifier(self):
        raise AssertionError("called isidentifier")

    def startswith(self, *args):
        raise AssertionError("called startswith")


class _HostileMeta(type):
    def __getattribute__(cls, name):
        raise AssertionError(f"read {name} of a class")


class _Watched(metaclass=_HostileMeta):
    pass


def test_namespace_values_are_read_by_exact_type_only():
    function = types.FunctionType((lambda: 0).__code__, {})
    function.__module__ = _Hostile()  # type: ignore[assignment]
    module_subclass = type("Sneaky", (types.ModuleType,), {"__getattr__": lambda self, name: _Hostile()})("np")
    fake_module = types.ModuleType("m")
    vars(fake_module)["__name__"] = _HostileStr("os")
    namespace = {
        "f": function,
        "np": module_subclass,
        "m": fake_module,
        "h": _Hostile(),
        _HostileStr("k"): os,
        3: os,
        "np2": __import__("json"),
        "bound": _Watched().__sizeof__,  # a builtin method: its __qualname__ would ask _Watched
        "cls": _Watched,
    }
    assert namespace_names(namespace) == {"np2": "json"}


@pytest.mark.parametrize(
    "source, expected",
    [
        ("import os\nos._exit(0)", {"os._exit"}),
        ("from os import _exit as bye\nbye(0)", {"os._exit"}),
        ("import os\ndef f(os):\n    os._exit(0)", {"<locals>.os._exit"}),
        ("import os\ndef f():\n    os._exit(0)", {"os._exit"}),
        ("import os\nclass C:\n    os = 1\n    def m(self):\n        os._exit(0)", {"os._exit"}),
        ("import os\nclass C:\n    os = 1\n    os._exit(0)", {"<locals>.os._exit"}),
        ("import os\n[os._exit(os) for os in range(3)]", {"<locals>.os._exit"}),
        ("def f():\n    global os\n    import os\n    os._exit(0)", {"os._exit"}),
        ("from . import os\nos._exit(0)", {".os._exit"}),
        ("_exit(0)", set()),
        ("exit(0)", {"builtins.exit"}),
    ],
)
def test_cell_names_follow_pythons_scopes(source, expected):
    tree = ast.parse(source)
    call = next(node for node in ast.walk(tree) if isinstance(node, ast.Call))
    assert CellNames(tree, {}).names(call.func) == expected


def test_cell_names_add_what_was_bound_before_the_cell():
    tree = ast.parse("bye(0)\nprint(1)")
    calls = [node.value.func for node in tree.body]
    names = CellNames(tree, {"bye": "os._exit", "print": "?"})
    assert names.names(calls[0]) == {"os._exit"}
    assert names.names(calls[1]) == set()  # bound before to something unknown: not the builtin


@pytest.mark.kernel
def test_guard_sees_names_bound_in_earlier_cells():
    from kernel_harness import Kernel

    with Kernel("names") as kernel:
        kernel.run("%load_ext kernel_guard")
        kernel.run("import itertools\nit = itertools")
        checked = kernel.run("%guard check for i in it.count(): print(i)").plain
        assert "KG203" in checked and "KG601" in checked, checked
        dry = kernel.run("%%guard --dry-run\nfor i in it.count():\n    print(i)").plain
        assert "KG203" in dry and "KG601" in dry, dry
        assert "KG203" not in kernel.run("%guard check for i in it.count(): break").plain


def test_an_attribute_chain_thousands_long_is_resolved_without_recursion():
    chain = ".x" * 2000
    source = f"import os\nos{chain}._exit(0)\nos._exit(1)\nfor i in it{chain}.count():\n    print(i)\n" + ENDLESS
    found = [(finding.code, finding.line) for finding in lint_source(source, namespace={"it": itertools})]
    assert found == [("KG501", 3), ("KG203", 6), ("KG601", 7)]
