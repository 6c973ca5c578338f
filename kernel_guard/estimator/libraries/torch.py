"""torch in the estimator: tensor constructors on the CPU, sized like numpy arrays.

``torch.zeros(30_000, 30_000)`` allocates 3.4 GiB of float32 at once. Shapes come
from the code (sizes as varargs or one sequence) and dtypes from ``torch.<dtype>``
names, so these forms are known without torch (``static``). A tensor on another
device (``device="cuda"``) takes no host memory: it is not counted against the
host's budget; when torch has already initialised CUDA in the kernel, it is checked
against the device's free memory (``torch.cuda.mem_get_info()``) and reported only
when it does not fit there.
"""

from __future__ import annotations

import math
import types
from typing import Any

import numpy as np

from kernel_guard.estimator.abstract import NEW, Array, Made, Ref
from kernel_guard.estimator.libraries import Args, Library, attr, loaded
from kernel_guard.estimator.signatures import new
from kernel_guard.estimator.values import UNKNOWN
from kernel_guard.sizes import format_bytes

FLOAT32 = np.dtype("float32")
INT64 = np.dtype("int64")
DTYPES: dict[str, np.dtype] = {
    **dict.fromkeys(("float32", "float"), FLOAT32),
    **dict.fromkeys(("float64", "double"), np.dtype("float64")),
    **dict.fromkeys(("float16", "half"), np.dtype("float16")),
    **dict.fromkeys(("int64", "long"), INT64),
    **dict.fromkeys(("int32", "int"), np.dtype("int32")),
    **dict.fromkeys(("int16", "short"), np.dtype("int16")),
    "int8": np.dtype("int8"),
    "uint8": np.dtype("uint8"),
    "bool": np.dtype("bool"),
    **dict.fromkeys(("complex64", "cfloat"), np.dtype("complex64")),
    **dict.fromkeys(("complex128", "cdouble"), np.dtype("complex128")),
}
_SIZED = ("zeros", "ones", "empty", "rand", "randn")


class Torch(Library):
    module = "torch"
    static = True

    def call(self, qualname: str, args: Args, ctx, module: types.ModuleType | None) -> object:
        name = qualname.removeprefix("torch.")
        if name not in _SIZED and name not in ("full", "eye", "randint"):
            return UNKNOWN
        device = args.constant(None, "device", None)
        on_host = device is None or type(device) is str and device.partition(":")[0] == "cpu"
        if not on_host and (type(device) is not str or device.partition(":")[0] != "cuda"):
            return UNKNOWN  # another device, or one not spelled as a constant
        dtype = _dtype(args.get(None, "dtype", None), INT64 if name == "randint" else FLOAT32)
        if name in _SIZED:
            shape = _size(args, 0)
        elif name == "full":
            shape = _size_arg(args.constant(0, "size"))
            fill = args.constant(1, "fill_value")
            if args.get(None, "dtype", None) is None:  # torch infers it from the fill value
                dtype = INT64 if type(fill) is int else np.dtype("bool") if type(fill) is bool else dtype
        elif name == "eye":
            n, m = args.constant(0, "n"), args.constant(1, "m", None)
            shape = _size_arg((n, n if m is None else m))
        else:  # randint(high, size) or randint(low, high, size)
            shape = _size_arg(args.constant(None, "size")) if "size" in args.keywords else None
            if shape is None and args.positional:
                shape = _size_arg(args.constant(len(args.positional) - 1, "size"))
        if shape is None or dtype is None:
            return UNKNOWN
        return new(shape, dtype) if on_host else _on_gpu(shape, dtype, device, module)


def _on_gpu(shape: tuple[int, ...], dtype: np.dtype, device: str, module: types.ModuleType | None) -> object:
    """A tensor on ``cuda[:N]`` against that device's free memory, read only where torch has
    initialised CUDA already (``mem_get_info`` would otherwise create a context in the kernel)."""
    cuda = loaded("torch.cuda") if module is not None else None
    if cuda is None or attr(cuda, "is_initialized") is None or not cuda.is_initialized():
        return UNKNOWN
    index = device.partition(":")[2]
    if index and not index.isdigit():
        return UNKNOWN
    free, total = cuda.mem_get_info(int(index) if index else cuda.current_device())
    nbytes = math.prod(shape) * dtype.itemsize
    if type(free) is not int or nbytes <= free:
        return UNKNOWN
    cause = (f"only {format_bytes(free)} of its {format_bytes(total)} are free (torch.cuda.mem_get_info()); "
             "use a smaller batch or dtype (torch.float16), or free tensors first (del, torch.cuda.empty_cache())")
    return Made(Array(shape, dtype, NEW), shape, dtype, nbytes, cause, device=device)


def _dtype(value: Any, default: np.dtype) -> np.dtype | None:
    if value is None:
        return default
    if type(value) is Ref and value.qualname.startswith("torch."):
        return DTYPES.get(value.qualname[6:])
    return None


def _size(args: Args, start: int) -> tuple[int, ...] | None:
    """``zeros(2, 3)``, ``zeros((2, 3))``, ``zeros([2, 3])``, ``zeros(size=(2, 3))``."""
    if "size" in args.keywords:
        return _size_arg(args.constant(None, "size"))
    dims = [args.unwrap(v) for v in args.positional[start:]]
    if len(dims) == 1 and type(dims[0]) in (tuple, list):
        return _size_arg(dims[0])
    return _size_arg(tuple(dims)) if dims else None


def _size_arg(value: Any) -> tuple[int, ...] | None:
    if type(value) is int:
        value = (value,)
    if type(value) not in (tuple, list) or not all(type(d) is int and d >= 0 for d in value):
        return None
    return tuple(value)
