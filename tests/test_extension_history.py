"""``%guard history`` in a real ipykernel: a picture of each guarded cell's memory over
time against its cap when matplotlib is importable, the table with text sparklines
when it is not. The cells allocate about 80 MB each, far under their 2 GiB cap."""

from __future__ import annotations

import base64
import io

import pytest
from kernel_harness import Kernel

from kernel_guard.extension.history import sparkline

pytestmark = pytest.mark.kernel

# 80 MB in ten steps over about half a second, so that the watchdog sees it grow.
GROW = "%%guard --max-mem 2G\nparts = []\nfor _ in range(10):\n    parts.append(np.ones(10**6)); time.sleep(0.05)"
SLEEP = "%%guard --max-mem 2G --timeout 0.5\nheld = np.ones(10**7)\ntime.sleep(30)"

# Hides matplotlib from the kernel for one %guard history, as if it were not installed.
WITHOUT_MATPLOTLIB = """\
import sys
_kg_saved = {name: module for name, module in sys.modules.items()
             if name == "matplotlib" or name.startswith("matplotlib.")}
sys.modules.update(dict.fromkeys([*_kg_saved, "matplotlib"]))  # None: "not installed"
try:
    get_ipython().run_line_magic("guard", "history")
finally:
    for _kg_name in [n for n in sys.modules if n == "matplotlib" or n.startswith("matplotlib.")]:
        del sys.modules[_kg_name]
    sys.modules.update(_kg_saved)
    del _kg_saved
"""


@pytest.fixture(scope="module")
def kernel():
    with Kernel("history") as k:
        k.run("import numpy as np, time\n%load_ext kernel_guard")
        assert "no guarded cells yet" in k.run("%guard history").plain
        k.run(GROW)
        k.run(GROW.replace("parts", "more"))
        stopped = k.execute(SLEEP)
        assert stopped.ename == "GuardTimeout", str(stopped)
        yield k


def test_history_is_a_picture_with_the_table_as_its_text(kernel):
    pytest.importorskip("matplotlib")
    from PIL import Image

    before = kernel.eval("sorted(m for m in __import__('sys').modules if m.startswith('matplotlib.pyplot'))")
    result = kernel.run("%guard history")
    pictures = [d for d in result.displays if "image/png" in d]
    assert len(pictures) == 1, str(result)
    png = base64.b64decode(pictures[0]["image/png"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png))
    image.verify()  # the whole stream decodes
    assert image.size[0] >= 600 and image.size[1] >= 250

    text = pictures[0]["text/plain"]  # what a front end without images shows instead
    assert "3 guarded cells in this session" in text
    for first_line in ("parts = []", "more = []", "held = np.ones(10**7)"):
        assert first_line in text
    rows = [line.split() for line in text.splitlines()[2:]]
    assert [row[0] for row in rows] == ["3", "4", "5"]  # the cells, by execution count
    assert "GuardTimeout" in text and "timeout" in text
    assert any(spark in text for spark in "·▁▂▃▄▅▆▇█")

    html = "".join(d.get("text/html", "") for d in result.displays)
    assert "<code>parts = []</code>" in html and "GuardTimeout" in html
    assert result.plain.count("parts = []") == 1  # the table once for text front ends
    # Drawn without pyplot: the user's figures and backend are none of our business.
    assert kernel.eval("sorted(m for m in __import__('sys').modules if m.startswith('matplotlib.pyplot'))") == before


def test_history_without_matplotlib_is_the_table_with_sparklines(kernel):
    result = kernel.run(WITHOUT_MATPLOTLIB)
    assert not any("image/png" in d for d in result.displays), str(result)
    text = result.plain
    assert "3 guarded cells in this session" in text and "memory over time" in text
    for first_line in ("parts = []", "more = []", "held = np.ones(10**7)"):
        assert first_line in text
    sparks = [line.rsplit("  ", 1)[-1] for line in text.splitlines()[2:]]
    assert all(spark and (set(spark) == {"·"} or set(spark) <= set("▁▂▃▄▅▆▇█")) for spark in sparks), text
    # the first cell stays far under its 2 GiB cap: dots, not a row of ▁ that reads as an underline
    assert set(sparks[0]) == {"·"}, text
    assert kernel.eval("__import__('sys').modules.get('matplotlib', 0) is not None")  # restored


def test_sparkline_is_scaled_to_the_cap():
    mib = 1 << 20
    growing = [(t, (100 + 100 * t) * mib) for t in range(9)]  # 100 MiB to 900 MiB
    assert sparkline(growing, 1000 * mib) == "▁▂▃▄▅▅▆▇█"
    flat_high = [(t, 700 * mib) for t in range(4)]
    assert sparkline(flat_high, 1000 * mib) == "▆▆▆▆"
    flat_low = [(t, 100 * mib) for t in range(4)]  # under an eighth of the cap
    assert sparkline(flat_low, 1000 * mib) == "····"
    assert sparkline([], 1000 * mib) == "" and sparkline(flat_low, None) == ""
