"""evaluate(): constant folding of ast expressions, bounded in time and size."""

import ast
import time

import pytest

from kernel_guard.estimator import UNKNOWN, evaluate

NAMES = {"n": 100_000, "k": 3, "shape": (4, 5), "name": "abc", "ratio": 0.5}


def lookup(name):
    return NAMES.get(name, UNKNOWN)


def ev(text, lookup=lookup):
    return evaluate(ast.parse(text, mode="eval").body, lookup)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("10**5", 100_000),
        ("1_000", 1000),
        ("n // 2", 50_000),
        ("n * n * 8", 80_000_000_000),
        ("-k", -3),
        ("+k", 3),
        ("~k", -4),
        ("not k", False),
        ("7 % 3", 1),
        ("1 << 10", 1024),
        ("2.5 * 2", 5.0),
        ("n / 4", 25_000.0),
        ("(n, k)", (100_000, 3)),
        ("[n, 2]", [100_000, 2]),
        ("(*shape, 3)", (4, 5, 3)),
        ("shape[0] * shape[-1]", 20),
        ("shape[1:]", (5,)),
        ("'ab' + name", "ababc"),
        ("None", None),
        ("True", True),
        ("min(n, 10)", 10),
        ("max(shape)", 5),
        ("len(shape)", 2),
        ("len(name)", 3),
        ("int(ratio * 10)", 5),
        ("int('12')", 12),
        ("abs(-k)", 3),
        ("float(k)", 3.0),
        ("round(2.6)", 3),
        ("sum(shape)", 9),
        ("sum(range(10**12))", sum(range(10)) * 0 + (10**12 - 1) * 10**12 // 2),
        ("len(range(0, n, 7))", len(range(0, 100_000, 7))),
        ("k if n > 10 else 0", 3),
        ("n > 10 and k", 3),
        ("0 < k < 5", True),
        ("k in shape", False),
        ("n or 0", 100_000),
    ],
)
def test_folds_constants(text, expected):
    result = ev(text)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    "text",
    [
        "m * 2",  # unknown name
        "f(3)",  # user function
        "n.bit_length()",
        "x.shape",
        "shape[10]",  # IndexError
        "1 / 0",
        "n // 0",
        "len(n)",
        "int(x)",
        "min()",
        "max([])",
        "'%9999999999d' % 1",
        "[0] * 10**9",
        "'x' * 10**9",
        "f'{n}'",
        "lambda: 1",
        "{1: 2}",
        "(n, m)",
        "len(range(10**9)) and max(range(10**9))",
    ],
)
def test_unknown(text):
    assert ev(text) is UNKNOWN


@pytest.mark.parametrize("text", ["10**10**10", "2**10**9", "(1 << 10**9)", "10**10**10 // 3", "9**9**9**9"])
def test_huge_work_is_refused_quickly(text):
    start = time.perf_counter()
    assert ev(text) is UNKNOWN
    assert time.perf_counter() - start < 0.05


def test_float_overflow_is_unknown():
    assert ev("2.0 ** 10**6") is UNKNOWN


def test_rebound_builtin_is_not_folded():
    assert ev("len((1, 2))", lambda name: {"len": 7}.get(name, UNKNOWN)) is UNKNOWN
    assert ev("len((1, 2))") == 2


def test_lookup_values_that_are_not_constants_are_unknown():
    class Sneaky:
        def __index__(self):
            raise AssertionError("touched")

    assert ev("x + 1", lambda name: Sneaky()) is UNKNOWN
    assert ev("(x, 1)", lambda name: Sneaky()) is UNKNOWN


def test_unknown_is_a_singleton_with_a_readable_repr():
    import copy
    import pickle

    assert copy.deepcopy(UNKNOWN) is UNKNOWN
    assert pickle.loads(pickle.dumps(UNKNOWN)) is UNKNOWN
    assert repr(UNKNOWN) == "UNKNOWN"
