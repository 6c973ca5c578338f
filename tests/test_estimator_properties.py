"""Property tests: for generated shapes, dtypes and operators, the estimate is numpy's own answer."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel_guard.estimator import estimate

DTYPES = ["bool", "int8", "uint8", "int16", "int32", "int64", "uint64", "float16", "float32", "float64", "complex64",
          "complex128"]
SPELLINGS = {
    "float64": ["float", "np.float64", "'f8'", "'float64'", "np.double"],
    "float32": ["np.float32", "'f4'", "'float32'", "np.single"],
    "int64": ["int", "np.int64", "'i8'", "'int64'"],
    "bool": ["bool", "np.bool_", "'?'", "'bool'"],
    "complex128": ["complex", "np.complex128", "'c16'"],
    "uint8": ["np.uint8", "'u1'", "'B'"],
}
OPERATORS = ["+", "-", "*", "/", "//", "%", "**", "&", "|", "^", "<", ">=", "==", "@"]
SCALARS = ["2", "-3", "1.5", "True", "0.5j", "300"]

shapes = st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple)


def _numpy(source):
    namespace: dict = {}
    try:
        exec(source, namespace)  # the test's own generated code: numpy's real answer
    except Exception:  # numpy refuses the combination: then no estimate is expected either
        return None
    return namespace["result"]


def _kept(source):
    line = source.count("\n")
    return [a for a in estimate(source).allocations if a.line == line and a.kept]


@settings(max_examples=150, deadline=None)
@given(
    function=st.sampled_from(["zeros", "ones", "empty"]),
    shape=shapes,
    dtype=st.sampled_from(sorted(SPELLINGS)),
    spelling=st.integers(0, 4),
)
def test_creation_in_every_spelling(function, shape, dtype, spelling):
    names = SPELLINGS[dtype]
    source = f"import numpy as np\nresult = np.{function}({shape!r}, dtype={names[spelling % len(names)]})\n"
    found = _kept(source)
    if not shape:
        assert found == [] or found[0].shape == ()
        return
    (allocation,) = found
    result = _numpy(source)
    assert (allocation.shape, allocation.dtype, allocation.nbytes) == (result.shape, result.dtype.name, result.nbytes)


@settings(max_examples=300, deadline=None)
@given(
    left_dtype=st.sampled_from(DTYPES),
    right_dtype=st.sampled_from(DTYPES),
    left_shape=st.lists(st.sampled_from([1, 3]), min_size=1, max_size=3).map(tuple),
    right_shape=st.lists(st.sampled_from([1, 3]), min_size=1, max_size=3).map(tuple),
    operator=st.sampled_from(OPERATORS),
)
def test_array_operators_follow_numpy_promotion_and_broadcasting(left_dtype, right_dtype, left_shape, right_shape,
                                                                 operator):
    source = (
        "import numpy as np\n"
        f"a = np.ones({left_shape!r}, dtype='{left_dtype}')\n"
        f"b = np.ones({right_shape!r}, dtype='{right_dtype}')\n"
        f"result = a {operator} b\n"
    )
    result = _numpy(source)
    found = _kept(source)
    if result is None or np.ndim(result) == 0:
        assert found == []
        return
    (allocation,) = found
    assert (allocation.shape, allocation.dtype) == (result.shape, result.dtype.name)


@settings(max_examples=200, deadline=None)
@given(
    dtype=st.sampled_from(DTYPES),
    scalar=st.sampled_from(SCALARS),
    operator=st.sampled_from([op for op in OPERATORS if op != "@"]),
    scalar_first=st.booleans(),
)
def test_python_scalars_are_weak_as_in_numpy(dtype, scalar, operator, scalar_first):
    expression = f"{scalar} {operator} a" if scalar_first else f"a {operator} {scalar}"
    source = f"import numpy as np\na = np.ones((2, 3), dtype='{dtype}')\nresult = {expression}\n"
    result = _numpy(source)
    found = _kept(source)
    if result is None:
        assert found == []
        return
    (allocation,) = found
    assert (allocation.shape, allocation.dtype) == (result.shape, result.dtype.name)
