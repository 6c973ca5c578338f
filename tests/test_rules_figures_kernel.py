"""KG604's premises in a real kernel with the inline backend: figures made in a loop
stay open until the cell ends, then each is rendered into the output; `plt.show()`
in the loop closes them (so KG604 stays silent on it)."""

from __future__ import annotations

import pytest

from kernel_guard.lint.engine import lint_source

pytest.importorskip("matplotlib")
pytest.importorskip("matplotlib_inline")

from kernel_harness import Kernel  # noqa: E402

LOOP = """\
import matplotlib.pyplot as plt
for i in range({n}):
    fig, ax = plt.subplots()
    ax.plot([0, i]){show}
    open_now = len(plt.get_fignums())
"""


def test_figures_pile_up_in_the_loop_and_show_closes_them():
    with Kernel(purpose="figures") as kernel:
        assert kernel.execute("%matplotlib inline").ok
        piled = kernel.execute(LOOP.format(n=30, show=""))
        assert piled.ok, piled.error_text
        assert kernel.eval("open_now") == 30  # nothing closed them during the loop
        assert sum("image/png" in d for d in piled.displays) == 30  # all rendered when the cell ends
        assert kernel.eval("len(plt.get_fignums())") == 0

        shown = kernel.execute(LOOP.format(n=30, show="\n    plt.show()"))
        assert shown.ok, shown.error_text
        assert kernel.eval("open_now") == 0

    assert [f.code for f in lint_source(LOOP.format(n=3_000, show=""), select=("KG604",))] == ["KG604"]
    assert lint_source(LOOP.format(n=3_000, show="\n    plt.show()"), select=("KG604",)) == []
