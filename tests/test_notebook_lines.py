"""SARIF and GitHub annotations of notebook findings point at the line of the
.ipynb file that holds the reported source line, as nbformat writes it."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from kernel_guard.cli import main
from kernel_guard.lint.notebook_lines import scan

CELLS = ["# Title\nSome text", "import os\nimport numpy as np\n\nx = 1\nos._exit(0)", "while True:\n    pass"]


def write(path: Path, indent: int | None = None) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(CELLS[0])])
    nb.cells += [nbformat.v4.new_code_cell(source) for source in CELLS[1:]]
    nbformat.write(nb, path) if indent is None else path.write_text(json.dumps(nb, indent=indent))
    return path


def line_of(path: Path, text: str) -> int:
    (number,) = [n for n, line in enumerate(path.read_text().splitlines(), start=1) if text in line]
    return number


def sarif_regions(capsys, path: Path) -> list[tuple[str, dict | None]]:
    assert main(["--no-cache", "--format", "sarif", str(path)]) == 1
    log = json.loads(capsys.readouterr().out)
    assert "informationUri" not in log["runs"][0]["tool"]["driver"]  # no page that does not exist
    return [
        (r["message"]["text"], r["locations"][0]["physicalLocation"].get("region")) for r in log["runs"][0]["results"]
    ]


def test_sarif_points_at_the_raw_line_of_a_notebook_written_by_nbformat(tmp_path, capsys):
    path = write(tmp_path / "nb.ipynb")
    (exit_, exit_region), (loop, loop_region) = sarif_regions(capsys, path)
    assert exit_.startswith("cell 2:5:1: ") and exit_region == {"startLine": line_of(path, '"os._exit(0)"')} | {
        "endLine": line_of(path, '"os._exit(0)"')
    }
    assert loop.startswith("cell 3:1:1: ") and loop_region["startLine"] == line_of(path, '"while True:\\n"')


def test_github_annotations_point_at_the_raw_line(tmp_path, capsys):
    path = write(tmp_path / "nb.ipynb")
    assert main(["--no-cache", "--format", "github", str(path)]) == 1
    first = capsys.readouterr().out.splitlines()[0]
    raw = line_of(path, '"os._exit(0)"')
    assert first.startswith(f"::error file={path},line={raw},endLine={raw},title=KG501 os-exit::cell 2:5:1: ")


def test_a_single_string_source_points_at_the_line_holding_it(tmp_path, capsys):
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({
        "nbformat": 4, "nbformat_minor": 5, "metadata": {},
        "cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "source": CELLS[1]}],
    }, indent=2))
    ((message, region),) = sarif_regions(capsys, path)
    assert message.startswith("cell 1:5:1: ") and region["startLine"] == line_of(path, '"source": "import os')


def test_a_notebook_on_one_line(tmp_path, capsys):
    path = write(tmp_path / "nb.ipynb", indent=None)
    path.write_text(json.dumps(json.loads(path.read_text())))
    assert [region for _, region in sarif_regions(capsys, path)] == [{"startLine": 1, "endLine": 1}] * 2


def test_an_nbformat_3_notebook(tmp_path, capsys):
    path = tmp_path / "old.ipynb"
    path.write_text(json.dumps({
        "nbformat": 3, "nbformat_minor": 0, "metadata": {"name": ""},
        "worksheets": [
            {"metadata": {}, "cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# a"]}]},
            {"metadata": {}, "cells": [{"cell_type": "code", "language": "python", "metadata": {}, "outputs": [],
                                        "collapsed": False, "input": ["import os\n", "os._exit(0)"]}]},
        ],
    }, indent=1))
    ((message, region),) = sarif_regions(capsys, path)
    assert message.startswith("cell 2:2:1: ") and region["startLine"] == line_of(path, '"os._exit(0)"')


@pytest.mark.parametrize(
    "pieces, expected",
    [
        (["a\n", "b\n", "c"], [2, 3, 4]),
        (["a\nb\n", "c"], [2, 2, 3]),
        (["a", "b\n", "c"], [2, 4]),
        (["a\n", "", "b"], [2, 4]),
    ],
)
def test_source_lines_in_any_split(pieces, expected):
    text = '{"cells": [{"source": [\n' + ",\n".join(json.dumps(p) for p in pieces) + "\n]}]}"
    cells = scan(text)
    assert [cells.raw_line(1, line) for line in range(1, len(expected) + 1)] == expected
    assert cells.raw_line(1, 99) == 1  # past the source: the line where the cell's source starts


def test_an_nbformat_3_file_written_by_nbformat(tmp_path, capsys):
    """As nbformat's own v3 writer lays it out (``input`` split into lines), linted and located."""
    from nbformat import v3
    from nbformat.v3 import nbjson

    cells = [v3.new_text_cell("markdown", source="# Old"), v3.new_code_cell(input="import os\nn = 3\nos._exit(n)")]
    path = tmp_path / "v3.ipynb"
    path.write_text(nbjson.writes(v3.new_notebook(worksheets=[v3.new_worksheet(cells=cells)])))
    assert json.loads(path.read_text())["worksheets"][0]["cells"][1]["input"][0] == "import os\n"
    ((message, region),) = sarif_regions(capsys, path)
    raw = line_of(path, '"os._exit(n)"')
    assert message.startswith("cell 2:3:1: ") and region == {"startLine": raw, "endLine": raw}
