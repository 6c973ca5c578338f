"""KG606 on real notebook files: text outputs past the limit, wherever they are."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import nbformat

from kernel_guard.cli import main
from kernel_guard.lint.runner import lint_file
from kernel_guard.lint.selection import Selection

MiB = 2**20


def notebook(path, *cells):
    """``cells``: ``(source, outputs)`` pairs."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Results")]
    for source, outputs in cells:
        cell = nbformat.v4.new_code_cell(source)
        cell.outputs = outputs
        nb.cells.append(cell)
    path.write_text(json.dumps(nb, indent=1))  # as nbformat writes it, without its slow validation
    return str(path)


def printed(n: int):
    return [nbformat.v4.new_output("stream", name="stdout", text="123456789012345\n" * (n // 16))]


def findings(path):
    found, error, _ = lint_file(path, Selection(select=("KG606",)), 2**34)
    assert error is None
    return found


def test_text_spread_over_cells_is_reported_at_the_cell_with_the_most(tmp_path):
    path = notebook(tmp_path / "nb.ipynb", ("x = 1", []), ("for i in range(N):\n    print(i)", printed(14 * MiB)),
                    ("df", [nbformat.v4.new_output("execute_result", data={"text/html": "<td>1</td>" * (MiB // 10)})]),
                    ("for j in range(M):\n    print(j)", printed(8 * MiB)))
    [finding] = findings(path)
    assert (finding.cell, finding.line, finding.column, finding.end_column) == (3, 1, 1, 19)
    assert finding.message.startswith("the notebook's saved outputs hold 23.0 MiB of text (14.0 MiB in this cell)")
    assert "in this cell): opening it freezes or crashes the browser tab" in finding.message
    assert findings(notebook(tmp_path / "small.ipynb", ("print(1)", printed(19 * MiB)))) == []


def test_images_do_not_count(tmp_path):
    png = base64.b64encode(os.urandom(90_000)).decode()
    images = [nbformat.v4.new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"})
              for _ in range(300)]  # 36 MB of base64
    path = notebook(tmp_path / "plots.ipynb", ("for i in range(300):\n    plot(i)", images))
    assert os.path.getsize(path) > 30 * MiB
    assert findings(path) == []


def test_a_shell_cell_holding_the_output_is_named(tmp_path):
    path = notebook(tmp_path / "nb.ipynb", ("import os", []), ("%%bash\nyes | head -n 3000000", printed(25 * MiB)))
    [finding] = findings(path)
    assert finding.cell == 3 and finding.line == 1


def test_nbformat_3_notebooks_are_measured_across_worksheets(tmp_path):
    big = {"output_type": "stream", "stream": "stdout", "text": ["x" * 99 + "\n"] * (220_000)}
    raw = {"nbformat": 3, "nbformat_minor": 0, "metadata": {"name": "old"}, "worksheets": [
        {"cells": [{"cell_type": "code", "input": ["a = 1"], "outputs": [], "language": "python"}], "metadata": {}},
        {"cells": [{"cell_type": "markdown", "source": ["# Run"], "metadata": {}},
                   {"cell_type": "code", "input": ["for i in range(n):\n", "    print('x' * 99)"], "outputs": [big],
                    "language": "python", "metadata": {}}], "metadata": {}}]}
    path = tmp_path / "old.ipynb"
    path.write_text(json.dumps(raw))
    [finding] = findings(str(path))
    assert finding.cell == 3


def test_the_command_line_names_it_and_a_broken_big_file_gives_one_line(tmp_path, capsys):
    path = notebook(tmp_path / "nb.ipynb", ("for i in range(10**6):\n    print(i)", printed(25 * MiB)))
    assert main(["--no-cache", "--select", "KG606", path]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"{path}:cell 2:1:1: KG606 the notebook's saved outputs hold 25.0 MiB of text")
    broken = tmp_path / "broken.ipynb"
    broken.write_bytes(Path(path).read_bytes()[:-100])
    assert main(["--no-cache", "--select", "KG606", str(broken)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err
