"""KG0: input the linter cannot read."""

from kernel_guard.lint.rule import Case, Rule


class ParseError(Rule):
    """
    ## What it does
    Reports a cell (or file) that is not valid Python 3, after IPython syntax
    (`%magic`, `!cmd`, `obj?`) has been translated.

    ## Why is this bad?
    A cell that does not parse never runs, and nothing else in it can be checked.
    The other cells of the notebook are still linted.

    ## Example
    ```python
    print "hello"
    ```

    ## Use instead
    ```python
    print("hello")
    ```
    """

    code = "KG001"
    name = "syntax-error"
    summary = "cell or file does not parse as Python"
    severity = "error"
    triggers = None
    VALID = [
        "x = 1",
        "%time x = 1",
        """
        !ls
        files = !ls
        """,
        "len?",
    ]
    INVALID = [
        Case('print "hello"', line=1),
        Case((
            "x = 1",
            """
            def f(:
                pass
            """,
        ), line=1),
    ]
