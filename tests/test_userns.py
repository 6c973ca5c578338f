"""The one reader of a user's namespace: no user code runs, and an entry it cannot
read is skipped alone (issue 12, items 5 and 6)."""

from __future__ import annotations

import os
import types

import numpy as np

from kernel_guard.estimator import estimate
from kernel_guard.extension import checks
from kernel_guard.lint.names import namespace_names
from kernel_guard.userns import entries, qualified_name

RAN: list[str] = []


class ClassProperty:
    @property
    def __class__(self):
        RAN.append("__class__")
        return str


class TrickyStr(str):
    def __eq__(self, other):
        RAN.append("__eq__")
        return False

    def __hash__(self):
        return str.__hash__(self)

    def isidentifier(self):
        RAN.append("isidentifier")
        return True

    def startswith(self, *args):
        RAN.append("startswith")
        return False


class SameHash:
    """A non-str key whose hash equals a name the estimator looks up."""

    def __init__(self, name):
        self.name = name

    def __hash__(self):
        return hash(self.name)

    def __eq__(self, other):
        RAN.append(f"__eq__ {self.name}")
        return False


class Hooked(type):
    def __getattribute__(cls, name):
        RAN.append(f"metaclass {name}")
        return type.__getattribute__(cls, name)


class HookedDict(dict, metaclass=Hooked):
    pass


def trapped_namespace() -> dict:
    def with_module():
        pass

    def with_qualname():
        pass

    with_module.__module__ = ClassProperty()
    with_qualname.__qualname__ = TrickyStr("with_qualname")
    module = types.ModuleType("m")
    module.__name__ = ClassProperty()
    module_with_key = types.ModuleType("k")
    vars(module_with_key)[SameHash("__name__")] = 1
    namespace = {
        "np": np, "os": os, "with_module": with_module, "with_qualname": with_qualname, "module": module,
        "module_with_key": module_with_key, "bound": HookedDict().get, 1: "x",
        SameHash("range"): 2, SameHash("np"): 3, TrickyStr("tricky"): 4,
    }
    RAN.clear()
    return namespace


def test_entries_keep_exact_str_keys_only():
    namespace = trapped_namespace()
    kept = entries(namespace)
    assert "np" in kept and "tricky" not in kept and 1 not in kept
    assert all(type(key) is str for key in kept)
    assert RAN == []


def test_namespace_names_read_no_user_code_and_skip_only_what_they_cannot_read():
    namespace = trapped_namespace()
    found = namespace_names(namespace)
    assert found == {"np": "numpy", "os": "os", "module_with_key": "k"}
    assert RAN == []


def test_estimate_runs_no_key_eq_and_still_reads_the_namespace():
    namespace = trapped_namespace()
    found = estimate("a = list(range(10**6))\nx = np.zeros((1000, 1000))", namespace)
    assert (1000, 1000) in [a.shape for a in found.allocations]
    assert RAN == []


def test_an_odd_entry_never_switches_the_checks_off_for_the_cell():
    namespace = trapped_namespace()
    budget = checks.Budget(2**30, "are available")
    verdict = checks.check_cell("import os; os._exit(3)", namespace, offset=1, lint=True, budget=lambda: budget)
    assert [p.code for p in verdict.refusals] == ["KG501"]
    verdict = checks.check_cell("x = np.zeros((10**6, 10**6))", namespace, offset=1, lint=True,
                                budget=lambda: budget)
    assert verdict.refusals and verdict.refusals[0].code is None  # the size refusal: numpy was read
    assert RAN == []


class HookedClassDict(type):
    """Never applies: a class with this metaclass is not a plain class, and is skipped."""

    def __getattribute__(cls, name):
        RAN.append(f"metaclass {name}")
        return type.__getattribute__(cls, name)


def test_qualified_names_of_modules_functions_and_classes_run_no_user_code():
    import collections

    class Local:
        pass

    Colliding = type("Colliding", (), {SameHash("__module__"): 1, "__module__": "pkg.mod"})
    trapped = trapped_namespace()
    RAN.clear()
    assert qualified_name(np) == "numpy"
    assert qualified_name(os._exit) in ("posix._exit", "nt._exit")
    assert qualified_name(np.zeros) == "numpy.zeros"
    assert qualified_name(collections.OrderedDict) == "collections.OrderedDict"
    assert qualified_name(dict) is None  # builtins: not worth naming
    assert qualified_name(Local) is None  # `<locals>`: nothing an import could bind
    assert qualified_name(Colliding) == "pkg.mod.Colliding"
    assert qualified_name(HookedClassDict("H", (), {})) is None
    for value in trapped.values():
        qualified_name(value)
    assert RAN == []
