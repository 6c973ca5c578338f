"""KG6: a notebook whose saved outputs are too large to open.

The engine keeps only the code of a notebook, so this rule reads the file again,
and only when the file itself is larger than the limit (outputs cannot be larger
than the file): ordinary notebooks cost one ``stat``.
"""

from __future__ import annotations

import json
import os
import stat

from kernel_guard.lint.rule import Case, Rule
from kernel_guard.sizes import format_bytes
from kernel_guard.source import Cell, Document

# Measured with benchmarks/bench_notebook_outputs.py (JupyterLab 4.6, headless Chromium 150,
# both in a 1 GiB cgroup): text outputs of 10 MB freeze the tab 2.4 s, 20 MB 5.1 s, and at
# 30 MB the tab is killed at 1 GiB; 40 MB of PNG outputs open in 6.5 s, frozen 0.6 s at most.
_FREEZING_BYTES = 20 * 2**20
_READ_AT_MOST = 256 * 2**20


class SavedOutputsTooLarge(Rule):
    """
    ## What it does
    Flags a notebook whose saved outputs hold more than 20 MiB of text (printed
    lines, HTML, tracebacks; images are not counted), at the cell with the most.

    ## Why is this bad?
    Opening the notebook renders every output: measured in JupyterLab 4.6 with
    Chromium (`benchmarks/bench_notebook_outputs.py`, browser and server capped at
    1 GiB together), 10 MB of text output froze the tab for 2.4 s, 20 MB for 5 s,
    and at 30 MB the tab ran out of memory and died. The same notebook then cannot
    be opened to clear the outputs (microsoft/vscode-jupyter#2452: an 87 MB
    notebook). Images weigh less: 40 MB of PNG outputs opened in 6.5 s with the
    tab frozen 0.6 s at most. Such outputs usually come from a print loop run once
    (see KG602).

    ## Example
    A notebook saved after `for i in range(10**6): print(i)` ran: one cell holds
    7 MB of text, and the file is 60 MB with the other cells' plots.

    ## Use instead
    Clear the outputs before saving (*Edit > Clear Outputs of All Cells*, or
    `jupyter nbconvert --clear-output --inplace notebook.ipynb`), print a summary
    instead of every step, and save plots to files instead of keeping hundreds of
    them in the notebook.

    ## Known limitations
    Sizes count the characters of the outputs' text; only notebook files are measured (not cells linted in a
    kernel), and files over 64 MiB are not linted at all.
    """

    code = "KG606"
    name = "saved-outputs-too-large"
    summary = "saved text outputs over 20 MiB: opening the notebook freezes or crashes the browser tab"
    severity = "warning"
    triggers = None
    VALID = [
        Case(
            """
            for i in range(100):
                print(i)
            """,
            saved_output=2**20,
        ),
        Case("print('a notebook without outputs')"),
    ]
    INVALID = [
        Case(
            """
            for i in range(3_000_000):
                print(f"step {i}")
            """,
            saved_output=30 * 2**20, line=1, column=1, message="saved outputs hold 30.0 MiB of text",
        ),
    ]

    @classmethod
    def applies_to(cls, document: Document) -> bool:
        try:
            info = os.stat(document.path)
        except (OSError, ValueError):
            return False
        return document.is_notebook and stat.S_ISREG(info.st_mode) and _FREEZING_BYTES < info.st_size <= _READ_AT_MOST

    def end_document(self) -> None:
        sizes = _output_sizes(self.context.path)
        total = sum(sizes.values())
        if total <= _FREEZING_BYTES:
            return
        number = max(sizes, key=sizes.__getitem__)
        cell = next((c for c in self.context.cells if c.number == number), None) or Cell(number, "", "")
        first = (cell.raw.splitlines() or [""])[0]
        self.report_at(
            cell,
            (1, 1, 1, len(first) + 1),
            f"the notebook's saved outputs hold {format_bytes(total)} of text ({format_bytes(sizes[number])} in this "
            "cell): opening it freezes or crashes the browser tab; clear the outputs before saving",
        )


def _output_sizes(path: str) -> dict[int, int]:
    """Characters of text in each cell's saved outputs, by the cell's 1-based position."""
    try:
        with open(path, "rb") as f:
            notebook = json.loads(f.read(_READ_AT_MOST + 1))
    except (OSError, ValueError, RecursionError):
        return {}  # the engine has already named what it could not read
    if not isinstance(notebook, dict):
        return {}
    cells = notebook.get("cells")
    if not isinstance(cells, list):  # nbformat 3: cells in worksheets
        worksheets = notebook.get("worksheets")
        cells = [c for w in worksheets if isinstance(w, dict) for c in w.get("cells") or ()] if isinstance(
            worksheets, list) else []
    sizes = {}
    for number, cell in enumerate(cells, start=1):
        outputs = cell.get("outputs") if isinstance(cell, dict) else None
        if isinstance(outputs, list) and outputs:
            sizes[number] = sum(_text_size(output) for output in outputs)
    return sizes


def _text_size(output: object) -> int:
    """Characters of text in an output: its strings, without ``image/*`` data
    (base64 that browsers decode lazily)."""
    size = 0
    stack = [output]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            size += len(value)
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, dict):
            stack.extend(item for key, item in value.items() if not str(key).startswith("image/"))
    return size
