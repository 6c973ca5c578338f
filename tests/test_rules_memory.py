"""KG1 through the real engine: messages, nbytes, budgets, cells, JSON."""

from __future__ import annotations

import json

import nbformat
import pytest

from kernel_guard.cli import main
from kernel_guard.lint.engine import Selection, lint_document
from kernel_guard.source import Cell, Document, python_source

GIB = 2**30


def lint_cells(cells, budget=16 * GIB, select=("KG1",)):
    document = Document(
        "nb.ipynb", [Cell(n, text, *python_source(text)) for n, text in enumerate(cells, start=1)], is_notebook=True
    )
    return lint_document(document, Selection(select=select), mem_budget=budget)


def test_over_budget_message_like_numpy_with_a_hint():
    (finding,) = lint_cells(["import numpy as np\nx = np.random.rand(100000, 100000)"])
    assert (finding.code, finding.severity, finding.line, finding.column, finding.end_column) == (
        "KG101", "error", 2, 5, 35,
    )
    assert finding.message.startswith(
        "np.random.rand(100000, 100000) allocates 74.5 GiB (float64), over the 16.0 GiB budget; "
    )
    assert "float32 it would take 37.3 GiB" in finding.message and "np.memmap" in finding.message
    assert finding.nbytes == 80_000_000_000


def test_budget_decides_between_error_warning_and_nothing():
    cell = ["import numpy as np\nx = np.ones((50_000, 25_000))"]  # 10.0e9 bytes = 9.3 GiB
    assert [f.code for f in lint_cells(cell, budget=8 * GIB)] == ["KG101"]
    assert [f.code for f in lint_cells(cell, budget=16 * GIB)] == ["KG102"]
    assert lint_cells(cell, budget=32 * GIB) == []


def test_sizes_flow_across_cells_in_notebook_order():
    findings = lint_cells(["import numpy as np", "n = 10**5", "# nothing", "grid = np.zeros((n, n), np.float32)"])
    (finding,) = findings
    assert (finding.cell, finding.line, finding.column) == (4, 1, 8)
    assert "37.3 GiB (float32)" in finding.message


def test_ipython_syntax_columns_point_at_the_raw_cell():
    (finding,) = lint_cells(["import numpy as np\n%time x = np.empty((10**6, 10**6))"])
    assert (finding.line, finding.column) == (2, 11)


def test_kept_in_a_loop_counts_every_copy():
    (finding,) = lint_cells(
        ["import numpy as np\nblocks = []\nfor i in range(100):\n    blocks.append(np.zeros((10_000, 10_000)))"]
    )
    assert finding.code == "KG101" and finding.line == 4
    assert "74.5 GiB (100 arrays of 762.9 MiB, float64)" in finding.message
    assert finding.nbytes == 100 * 800_000_000


def test_a_notebook_function_is_reported_once_at_its_call():
    cells = [
        "import numpy as np\ndef make(n):\n    a = np.zeros((n, n))\n    b = a * 2\n    return b + 1",
        "result = make(100_000)",
    ]
    (finding,) = [f for f in lint_cells(cells) if f.code == "KG101"]
    assert (finding.cell, finding.line, finding.message.split(" allocates")[0]) == (2, 1, "make(100_000)")


def test_live_arrays_report_names_and_total():
    cells = ["import numpy as np\nraw = np.random.rand(40_000, 40_000)", "normalized = (raw - raw.mean()) / raw.std()"]
    found = {f.code: f for f in lint_cells(cells)}
    live = found["KG103"]
    assert (live.cell, live.line, live.severity) == (2, 1, "error")
    assert "arrays kept alive reach 23.8 GiB (raw 11.9 GiB, normalized 11.9 GiB)" in live.message
    assert live.nbytes == 2 * 12_800_000_000


def test_live_arrays_reported_once_until_memory_is_released():
    cells = [
        "import numpy as np\na = np.ones((40_000, 40_000))\nb = np.ones((40_000, 40_000))",
        "c = np.ones((40_000, 40_000))",
        "del a, b, c",
        "d = np.ones((40_000, 40_000))\ne = np.ones((40_000, 40_000))",
    ]
    live = [(f.cell, f.line) for f in lint_cells(cells) if f.code == "KG103"]
    assert live == [(1, 3), (4, 2)]


def test_unbounded_growth_is_confirmed_by_the_loop_facts():
    grows = "frames = []\nwhile True:\n    frames.append(np.zeros((480, 640, 3), np.uint8))"
    (finding,) = lint_cells(["import numpy as np\n" + grows])
    assert (finding.code, finding.line, finding.column) == ("KG104", 4, 5)
    assert "grows `frames` in a loop that never ends (900.0 KiB per iteration)" in finding.message
    assert finding.nbytes == 480 * 640 * 3
    # inside a function that is only defined, or with a way out, nothing is said
    assert lint_cells(["import numpy as np\ndef record():\n    " + grows.replace("\n", "\n    ")]) == []
    assert lint_cells(["import numpy as np\n" + grows + "\n    if len(frames) > 9:\n        break"]) == []


def test_unknown_sizes_are_never_flagged():
    cells = [
        "import numpy as np\nimport pandas as pd\ndf = pd.read_csv('big.csv')",
        "x = np.zeros((len(df), 10**6))\ny = np.random.rand(*df.shape)\nz = df.values @ df.values.T",
    ]
    assert lint_cells(cells) == []


def test_default_budget_is_the_usable_memory(monkeypatch):
    import kernel_guard.memory

    monkeypatch.setattr(kernel_guard.memory, "usable_memory", lambda *a, **k: 4 * GIB)
    document = Document("nb.ipynb", [Cell(1, "import numpy as np\nx = np.ones((30_000, 30_000))",
                                          "import numpy as np\nx = np.ones((30_000, 30_000))")], is_notebook=True)
    (finding,) = lint_document(document, Selection(select=("KG1",)))
    assert finding.code == "KG101" and "over the 4.0 GiB budget" in finding.message


def test_json_output_carries_nbytes(tmp_path, capsys):
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# data"),
        nbformat.v4.new_code_cell("import numpy as np\nn = 100_000"),
        nbformat.v4.new_code_cell("a = np.random.rand(n, n)"),
    ]
    path = tmp_path / "big.ipynb"
    nbformat.write(notebook, path)
    status = main(["--select", "KG1", "--format", "json", "--mem-budget", "16G", "--no-cache", str(path)])
    (finding,) = json.loads(capsys.readouterr().out)
    assert status == 1
    assert (finding["code"], finding["cell"], finding["line"], finding["column"]) == ("KG101", 3, 1, 5)
    assert finding["nbytes"] == 80_000_000_000 and finding["severity"] == "error"


@pytest.mark.parametrize(
    "cell",
    [
        "import numpy as np\nx = np.zeros((1000, 1000))\ny = x @ x.T\nz = np.outer(x[0], x[0])",
        "import numpy as np\nimgs = [np.zeros((224, 224, 3), np.uint8) for _ in range(1000)]",
        "import numpy as np\nrng = np.random.default_rng(0)\nX = rng.normal(size=(100_000, 100))",
        "import numpy as np\nfor epoch in range(1_000_000):\n    batch = np.random.rand(256, 784)",
        "import numpy as np\nresults = []\nfor f in files:\n    results.append(np.load(f))",
        "import numpy as np\nwhile True:\n    x = np.random.rand(1000, 1000)\n    if x.mean() > 0.6:\n        break",
    ],
)
def test_ordinary_notebook_code_is_clean(cell):
    assert lint_cells([cell]) == []


PAIRWISE = (
    "import numpy as np\ns = np.random.rand(100_000, 3)\nd = np.sqrt(((s[:, None, :] - s[None, :, :]) ** 2).sum(-1))"
)


@pytest.mark.parametrize("budget, code", [(16 * GIB, "KG101"), (300 * GIB, "KG102")])
def test_one_allocation_one_finding_for_nested_sub_expressions(budget, code):
    """Every step of the pairwise distance allocates (difference, square, sum,
    sqrt); it is one allocation to the person reading: reported once, by its largest."""
    (finding,) = lint_cells([PAIRWISE], budget=budget)
    assert (finding.code, finding.line, finding.column) == (code, 3, 14)
    assert finding.message.startswith("(s[:, None, :] - s[None, :, :]) ** 2 allocates 223.5 GiB (float64)")


def test_separate_allocations_on_one_line_are_each_reported():
    source = "import numpy as np\na, b = np.zeros((10**5, 10**5)), np.ones((10**5, 10**5))"
    assert [(f.code, f.column) for f in lint_cells([source])] == [("KG101", 8), ("KG101", 34)]


def test_a_large_inner_allocation_is_kept_when_the_outer_result_is_small():
    source = "import numpy as np\ntotal = np.zeros((10**5, 10**5)).sum(axis=0)"
    assert [(f.code, f.column) for f in lint_cells([source])] == [("KG101", 9)]
