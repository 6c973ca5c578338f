"""%guard mem and %guard free in a real ipykernel inside a 1 GiB memory cgroup: the
300 MB that a variable, IPython's output cache and a failed call's frames hold is
listed at its real size, and %guard free gives it back to the system (measured from
outside the kernel). Refusals and memory stops name the holder to delete."""

from __future__ import annotations

import re

import psutil
import pytest
from kernel_harness import Kernel, require_cgroup

pytestmark = [pytest.mark.kernel, pytest.mark.cgroup]

MiB = 1 << 20
N = 37_500_000  # float64: 300 MB, 286.1 MiB
SIZE = "286.1 MiB"


@pytest.fixture(scope="module")
def kernel():
    require_cgroup()
    with Kernel("holders", mem_limit="1G") as k:
        k.run("import numpy as np\n%load_ext kernel_guard")
        yield k


@pytest.fixture
def clean(kernel):
    yield
    kernel.run("%guard free")
    kernel.execute("%reset -f")
    kernel.run("import numpy as np")


def rss(kernel) -> int:
    return psutil.Process(kernel.pid).memory_info().rss


def row(text: str, name: str) -> str:
    """The table row of holder ``name`` in %guard mem's text."""
    return next(line for line in text.splitlines() if line.strip().startswith(f"`{name}`"))


def test_mem_lists_a_variable_and_a_cached_result_at_their_size_and_free_returns_them(kernel, clean):
    kernel.run(f"big = np.ones({N})")
    kernel.run("big * 2")  # the result is shown, and kept in Out, _ and _N
    number = kernel.eval("len(Out) and max(Out)")
    shown = kernel.run("%guard mem")
    text = shown.plain
    assert f"  {SIZE}  float64 array 37,500,000" in row(text, "big")
    cached = row(text, f"Out[{number}]")
    assert SIZE in cached and "`_`" in cached and f"`_{number}`" in cached and "output cache" in cached
    held = re.search(r"this kernel holds ([\d.]+ \w+); the holders below account for ([\d.]+ \w+)", text)
    assert held, text
    assert "<table" in shown.html and "<code>big</code>" in shown.html

    before = rss(kernel)
    freed = kernel.run("%guard free big").plain
    after = rss(kernel)
    # Two arrays of 286 MiB went back to the system; the rest of the kernel stays.
    assert before - after > 2 * 286 * MiB * 0.9, (before, after)
    fell = re.search(r"resident memory fell by ([\d.]+) MiB", freed)
    assert fell and float(fell.group(1)) > 2 * 286 * 0.9, freed
    assert "the output cache (1 result)" in freed and "deleted `big`" in freed
    assert kernel.eval(f"['big' in globals(), len(Out), _ == '', '_{number}' in globals()]") == [False, 0, True, False]


def test_a_failed_calls_frames_are_listed_and_released(kernel, clean):
    result = kernel.execute(f"def load():\n    rows = np.ones({N})\n    raise ValueError('bad file')\nload()")
    assert result.ename == "ValueError"
    text = kernel.run("%guard mem").plain
    assert SIZE in row(text, "rows (in load)") and "last error" in row(text, "rows (in load)")
    before = rss(kernel)
    freed = kernel.run("%guard free").plain
    assert before - rss(kernel) > 286 * MiB * 0.9
    assert "the last error's traceback" in freed


def test_unknown_name_is_one_line_and_deletes_nothing(kernel, clean):
    kernel.run("a = np.ones(10); b = 2")
    result = kernel.execute("%guard free a nosuch")
    assert result.ename == "UsageError"
    assert result.evalue == "name 'nosuch' is not defined: nothing was deleted"
    assert kernel.eval("[int(a.sum()), b]") == [10, 2]


def test_refusal_names_the_holder_to_delete(kernel, clean):
    kernel.run(f"df_old = np.ones({N})")
    result = kernel.execute("%%guard --max-mem 700M\nnew = np.ones(60_000_000)")
    assert result.ename == "GuardRefused"
    box = "\n".join(d["text/plain"] for d in result.displays)
    assert f"`df_old` holds {SIZE}: `del df_old`, or `%guard free df_old`" in box


def test_memory_stop_names_the_holder_to_delete(kernel, clean):
    kernel.run(f"df_old = np.ones({N})")
    result = kernel.execute("%%guard --max-mem 800M\nparts = []\nwhile True:\n"
                            "    parts.append(bytearray(1 << 20))", timeout=120)
    assert result.ename == "GuardMemoryError", result
    assert f"df_old holds {SIZE}: del df_old, or %guard free df_old" in result.error_text
    assert kernel.eval("int(df_old.sum())") == N  # nothing of the user's touched


def test_booby_trapped_objects_never_run(kernel, clean):
    kernel.run(
        "marks = []\n"
        "class Trap:\n"
        "    def __init__(self):\n"
        "        object.__setattr__(self, 'data', np.ones(1000))\n"
        "    def __getattr__(self, name): marks.append(name)\n"
        "    def __sizeof__(self): marks.append('sizeof'); return 1\n"
        "    def __len__(self): marks.append('len'); return 1\n"
        "    def __iter__(self): marks.append('iter'); return iter(())\n"
        "    nbytes = property(lambda self: marks.append('nbytes'))\n"
        "    __class__ = property(lambda self: marks.append('class'))\n"
        "trap = Trap(); traps = [Trap(), {Trap(): Trap()}]"
    )
    text = kernel.run("%guard mem").plain
    assert "`trap`" in text and "`traps`" in text
    assert kernel.eval("marks") == []
