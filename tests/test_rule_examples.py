"""Every rule's VALID and INVALID examples, run through the real engine (Fixit-style)."""

from __future__ import annotations

import nbformat
import pytest

from kernel_guard.lint.engine import Selection, lint_document
from kernel_guard.lint.registry import all_rules
from kernel_guard.lint.rule import Case
from kernel_guard.source import Cell, Document, parse_document, python_source


def _lint(case: Case, code: str, tmp_path):
    if case.saved_output:
        document = _notebook_file(case, tmp_path / "example.ipynb")
    elif case.script:
        document = Document("example.py", [Cell(None, case.cells[0], case.cells[0])], is_notebook=False)
    else:
        cells = [Cell(number, text, *python_source(text)) for number, text in enumerate(case.cells, start=1)]
        document = Document("example.ipynb", cells, is_notebook=True)
    return [f for f in lint_document(document, Selection(select=(code,)), mem_budget=16 * 2**30) if f.code == code]


def _notebook_file(case: Case, path) -> Document:
    """The example as a notebook file whose last cell has ``case.saved_output`` characters of output."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(text) for text in case.cells]
    notebook.cells[-1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * case.saved_output)]
    nbformat.write(notebook, path)
    return parse_document(path, path.read_bytes())


def _cases(kind: str):
    for rule in all_rules():
        for index, example in enumerate(getattr(rule, kind)):
            case = example if isinstance(example, Case) else Case(example)
            yield pytest.param(rule, case, id=f"{rule.code}-{kind.lower()}-{index}")


@pytest.mark.parametrize(("rule", "case"), list(_cases("VALID")))
def test_valid_example_is_clean(rule, case, tmp_path):
    assert _lint(case, rule.code, tmp_path) == []


@pytest.mark.parametrize(("rule", "case"), list(_cases("INVALID")))
def test_invalid_example_is_flagged(rule, case, tmp_path):
    findings = _lint(case, rule.code, tmp_path)
    assert findings, f"{rule.code} missed:\n{case.code}"
    last = findings[-1]
    if not case.script:
        assert last.cell == len(case.cells)
    if case.line is not None:
        assert last.line == case.line
    if case.column is not None:
        assert last.column == case.column
    if case.message is not None:
        assert case.message in last.message
    assert last.name == rule.name and last.severity == rule.severity


@pytest.mark.parametrize("rule", all_rules(), ids=lambda rule: rule.code)
def test_rule_is_documented(rule):
    assert rule.code[:2] == "KG" and len(rule.code) == 5 and rule.code[2:].isdigit()
    assert rule.name == rule.name.lower() and " " not in rule.name
    doc = rule.documentation()
    for heading in ("## What it does", "## Why is this bad?", "## Example", "## Use instead"):
        assert heading in doc, f"{rule.code} docs lack {heading!r}"
    assert rule.VALID and rule.INVALID, f"{rule.code} needs VALID and INVALID examples"
