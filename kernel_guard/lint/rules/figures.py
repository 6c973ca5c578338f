"""KG6: matplotlib figures opened on every pass of a loop and never closed.

pyplot keeps every figure it creates until ``plt.close``: a figure made on each
pass of a long loop stays in memory, and under ``%matplotlib inline`` every one of
them is rendered into the cell's output when the cell ends.
"""

from __future__ import annotations

import ast

from kernel_guard.lint import flow
from kernel_guard.lint.rule import Case, Rule
from kernel_guard.lint.rules.output import _continues, _loops_between, passes

# Measured with matplotlib 3.11 (Agg, one line of 1,000 points): 0.3 MiB per figure
# before it is drawn, 2.1 MiB once drawn, a 90 KB PNG each in the output.  A
# thousand figures are 2 GiB drawn and 90 MB of notebook output.
_MANY_FIGURES = 1_000
# pyplot and seaborn calls that open a new figure on each call (pyplot's only
# when no ``num`` names an existing one).
_NEW_FIGURE = frozenset({
    "matplotlib.pyplot.figure", "matplotlib.pyplot.subplots", "matplotlib.pyplot.subplot_mosaic",
    "seaborn.relplot", "seaborn.displot", "seaborn.catplot", "seaborn.lmplot", "seaborn.jointplot",
    "seaborn.pairplot", "seaborn.clustermap", "seaborn.FacetGrid", "seaborn.PairGrid", "seaborn.JointGrid",
})
_NUMBERED = frozenset({"matplotlib.pyplot.figure", "matplotlib.pyplot.subplots", "matplotlib.pyplot.subplot_mosaic"})
_HINTS = ("figure", "subplots", "subplot_mosaic", "sns", "seaborn")
# Calls that close or clear figures (``show`` closes them under the inline backend).
_CLOSING = frozenset({"close", "clf", "cla", "clear", "show"})


class FigureInLoop(Rule):
    """
    ## What it does
    Flags a matplotlib figure created on every pass of a loop that never ends or
    runs more than 1,000 times (`plt.figure()`, `plt.subplots()`,
    `plt.subplot_mosaic()`, seaborn's figure-level `relplot`, `catplot`,
    `pairplot`...), when nothing in the loop closes figures (`plt.close`,
    `fig.clf()`, `plt.show()`).

    ## Why is this bad?
    pyplot keeps every figure until it is closed, even after the variable holding
    it is reassigned or deleted. Each one holds about 0.3 MiB, and 2 MiB once it is
    drawn or saved; a thousand of them take gigabytes, and under
    `%matplotlib inline` every open figure is rendered into the cell's output when
    the cell ends (about 90 MB for a thousand plots), which freezes the browser.
    `%matplotlib inline` closes figures only at the end of the cell, not during
    the loop (matplotlib/matplotlib#870).

    ## Example
    ```python
    for i in range(5_000):
        fig, ax = plt.subplots()
        ax.plot(samples[i])
        fig.savefig(f"plots/{i}.png")
    ```

    ## Use instead
    ```python
    for i in range(5_000):
        fig, ax = plt.subplots()
        ax.plot(samples[i])
        fig.savefig(f"plots/{i}.png")
        plt.close(fig)
    ```

    ## Known limitations
    Only figures created directly in the loop's body are seen, not those created by
    a function the loop calls, nor pandas' `DataFrame.plot()`. `plt.show()`
    counts as closing (it does under the inline backend, not under `%matplotlib
    widget`). `plt.plot()` in a loop draws on the current figure rather than a new
    one and is not flagged.
    """

    code = "KG604"
    name = "figure-in-loop"
    summary = "a new matplotlib figure on every pass of a long or endless loop, never closed"
    severity = "warning"
    triggers = None
    VALID = [
        """
        import matplotlib.pyplot as plt
        for i in range(5_000):
            fig, ax = plt.subplots()
            ax.plot(samples[i])
            fig.savefig(f"plots/{i}.png")
            plt.close(fig)
        """,
        """
        import matplotlib.pyplot as plt
        for i in range(20):
            plt.figure()
            plt.plot(data[i])
        """,
        """
        import matplotlib.pyplot as plt
        for i in range(5_000):
            plt.figure(1)
            plt.plot(data[i])
        """,
        """
        import matplotlib.pyplot as plt
        for i in range(5_000):
            plt.plot(data[i])
        """,
        """
        import matplotlib.pyplot as plt
        for i in range(5_000):
            plt.figure()
            plt.imshow(images[i])
            plt.show()
        """,
        """
        import matplotlib.pyplot as plt
        for i in range(5_000):
            if i % 1_000 == 0:
                plt.figure()
                plt.plot(history[:i])
        """,
        """
        import matplotlib.pyplot as plt
        for epoch in range(100):
            for step in range(100):
                plt.figure()
                plt.plot(batch(step))
            plt.close("all")
        """,
        """
        import matplotlib.pyplot as plt
        for i in range(5_000):
            fig = plt.figure()
            if error(i) < 0.1:
                break
        """,
        """
        import matplotlib.pyplot as plt
        for i in range(5_000):
            def show(i):
                plt.figure()
        """,
    ]
    INVALID = [
        Case(
            """
            import matplotlib.pyplot as plt
            for i in range(5_000):
                fig, ax = plt.subplots()
                ax.plot(samples[i])
                fig.savefig(f"plots/{i}.png")
            """,
            line=3, column=15, message="each of 5,000 passes",
        ),
        Case(
            """
            import matplotlib.pyplot as plt
            while True:
                frame = camera.read()
                plt.figure(figsize=(4, 4))
                plt.imshow(frame)
            """,
            line=4, column=5, message="on every pass of a loop that never ends",
        ),
        Case((
            "N = 100",
            """
            from matplotlib import pyplot
            for a in range(N):
                for b in range(N):
                    pyplot.figure()
                    pyplot.scatter(xs[a], ys[b])
            """,
        )),
        """
        import matplotlib.pyplot as plt
        for epoch in range(10):
            for step in range(5_000):
                fig, axes = plt.subplots(2, 2)
            plt.close("all")
        """,
        """
        import seaborn as sns
        for name in range(2_000):
            sns.relplot(data=frames[name], x="t", y="v")
        """,
    ]

    def visit_cell(self, cell, tree: ast.Module) -> None:
        source = cell.source
        if not flow.LOOP_LINE.search(source) or not any(hint in source for hint in _HINTS):
            return
        facts = flow.facts(self.context)
        reported: set[int] = set()
        for node, ancestors in flow.with_ancestors(tree, (ast.Call,)):
            if not isinstance(node, ast.Call) or not self._new_figure(node, facts):
                continue
            loops = _loops_between(ancestors, node)
            if not loops:
                continue
            open_in = self._unclosed(loops, facts)
            if not open_in or id(open_in[-1]) in reported:
                continue
            many = self._many(open_in, ancestors)
            if many:
                reported.add(id(open_in[-1]))
                self.report_at(
                    cell,
                    self.context.ast_position(cell, node),
                    f"`{flow.source_of(node.func, source)}()` opens a new figure {many} and nothing closes "
                    "them: pyplot keeps each one in memory until `plt.close(fig)`",
                )

    @staticmethod
    def _new_figure(call: ast.Call, facts: flow.Facts) -> bool:
        name = facts.resolve(call.func)
        if name not in _NEW_FIGURE:
            return False
        if name not in _NUMBERED:
            return True
        num = call.args[0] if call.args and name == "matplotlib.pyplot.figure" else None
        num = next((k.value for k in call.keywords if k.arg == "num"), num)
        return num is None or (isinstance(num, ast.Constant) and num.value is None)

    def _unclosed(self, loops: list[flow.Loop], facts: flow.Facts) -> list[flow.Loop]:
        """The loops (outermost first) across whose passes the figures pile up:
        those inside the innermost loop that closes figures."""
        for index in range(len(loops) - 1, -1, -1):
            loop = loops[index]
            if isinstance(loop, flow.LOOPS) and _closes(loop, facts):
                return loops[index + 1:]
        return loops

    def _many(self, loops: list[flow.Loop], ancestors: tuple[ast.AST, ...]) -> str | None:
        """How often the figure is made, when the loops run more than the limit
        or never end; ``None`` otherwise."""
        if any(_continues(loop) for loop in loops):
            return None
        for loop in loops:
            if flow.endless_loop(loop, ancestors[: ancestors.index(loop)], self.context):
                return "on every pass of a loop that never ends"
        if any(flow.facts(self.context).escapes(loop) for loop in loops if isinstance(loop, flow.LOOPS)):
            return None
        count = passes(loops, self.context)
        return f"on each of {count:,} passes" if count is not None and count > _MANY_FIGURES else None


def _closes(loop: ast.For | ast.AsyncFor | ast.While, facts: flow.Facts) -> bool:
    """Whether anything in the loop (or a function of the notebook it calls) may
    close or clear figures."""
    for node in flow.body_nodes(loop.body):
        if isinstance(node, ast.Call):
            name = flow.callee(node)
            if name in _CLOSING:
                return True
            for definition, _ in facts.defs.get(name or "", ()):
                if any(isinstance(sub, ast.Call) and flow.callee(sub) in _CLOSING for sub in ast.walk(definition)):
                    return True
    return False
