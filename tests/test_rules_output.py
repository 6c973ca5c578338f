"""KG6 through the real engine: trip counts from other cells, captured output,
progress prints, and files that grow in loops that never end."""

from __future__ import annotations

from kernel_guard.lint.engine import Selection, lint_document
from kernel_guard.source import Cell, Document, python_source


def lint_cells(*cells: str, select: str = "KG6"):
    document = Document(
        "nb.ipynb",
        [Cell(n, text, *translated) for n, text in enumerate(cells, start=1) if (translated := python_source(text))],
        is_notebook=True,
    )
    return lint_document(document, Selection(select=(select,)), mem_budget=2**34)


def where(findings):
    return [(f.code, f.cell, f.line, f.column) for f in findings]


def test_flood_counts_nested_loops_with_sizes_from_another_cell():
    findings = lint_cells(
        "ROWS = 300\nCOLS = 200", "for r in range(ROWS):\n    for c in range(COLS):\n        print(r, c)"
    )
    assert where(findings) == [("KG602", 2, 3, 9)]
    assert findings[0].severity == "warning"
    assert findings[0].message.startswith("`print()` runs 60,000 times (`for r in range(ROWS)`)")
    # A size bound twice is not known.
    assert lint_cells("ROWS, COLS = 300, 200", "ROWS = 300\nCOLS = 200", "for r in range(ROWS):\n    for c in "
                      "range(COLS):\n        print(r, c)") == []


def test_the_threshold_is_more_than_ten_thousand_lines():
    assert lint_cells("for i in range(10_000):\n    print(i)") == []
    assert [f.code for f in lint_cells("for i in range(10_001):\n    print(i)")] == ["KG602"]


def test_progress_prints_and_output_that_never_reaches_the_notebook():
    assert lint_cells("for i in range(10**6):\n    if i % 10_000 == 0:\n        print(i)") == []
    assert lint_cells("for i in range(10**6):\n    print(f'{i}', end='\\r')") == []
    assert lint_cells("%%capture\nfor i in range(10**6):\n    print(i)") == []
    assert lint_cells("with open('log.txt', 'w') as log:\n    for i in range(10**6):\n        print(i, file=log)") == []
    assert lint_cells("from IPython.display import clear_output\nfor i in range(10**6):\n    clear_output(wait=True)\n"
                      "    print(i)") == []
    assert lint_cells("%%time\nfor i in range(10**6):\n    print(i)") != []  # %%time shows the output


def test_stderr_and_display_count_as_output():
    found = lint_cells("import sys\nfor i in range(10**5):\n    print(i, file=sys.stderr)")
    assert [f.code for f in found] == ["KG602"]
    found = lint_cells("from IPython.display import display\nfor i in range(10**5):\n    display(i)")
    assert [f.code for f in found] == ["KG602"]


def test_print_in_a_loop_that_never_ends_and_the_paced_monitor():
    flood = lint_cells("n = 0\nwhile True:\n    n += 1\n    print(n)")
    assert where(flood) == [("KG601", 1, 4, 5)] and flood[0].severity == "error"
    assert lint_cells("import time\nwhile True:\n    print(poll())\n    time.sleep(30)") == []
    # KG201 still reports the monitor: it never ends.
    found = lint_cells("import time\nwhile True:\n    print(poll())\n    time.sleep(30)", select="KG2")
    assert [f.code for f in found] == ["KG201"]


def test_endless_print_in_a_function_called_from_another_cell():
    findings = lint_cells("def spam():\n    while True:\n        print(compute())", "spam()")
    assert where(findings) == [("KG601", 1, 3, 9)]
    assert lint_cells("def spam():\n    while True:\n        print(compute())") == []
    assert lint_cells("def tail(f):\n    while True:\n        print(f.readline())", "tail(log)") == []  # paced by reads


def test_files_that_grow_in_a_loop_that_never_ends():
    findings = lint_cells("log = open('events.log', 'a')", "while True:\n    log.write(event())")
    assert where(findings) == [("KG603", 2, 2, 5)]
    assert lint_cells("log = open('events.log')", "while True:\n    log.write(event())") == []  # not opened for writing
    frames = lint_cells("import matplotlib.pyplot as plt\nstep = 0\nwhile True:\n    plt.savefig(f'frame{step}.png')"
                        "\n    step += 1")
    assert where(frames) == [("KG603", 1, 4, 5)]
    assert lint_cells("import matplotlib.pyplot as plt\nwhile True:\n    plt.savefig('latest.png')") == []


def test_torch_save_takes_the_path_second():
    findings = lint_cells("import torch, itertools\nfor epoch in itertools.count():\n"
                          "    torch.save(model.state_dict(), f'ckpt_{epoch}.pt')")
    assert where(findings) == [("KG603", 1, 3, 5)]
