"""The engine's contract: cross-cell names, constants, triggers, the public API."""

from __future__ import annotations

import ast

import kernel_guard
from kernel_guard.estimator import UNKNOWN
from kernel_guard.lint.context import LintContext
from kernel_guard.lint.engine import Selection, lint_document, lint_source
from kernel_guard.source import Cell, Document, python_source


def document(*cells: str) -> Document:
    return Document("nb.ipynb", [Cell(n, text, *python_source(text)) for n, text in enumerate(cells, 1)], True)


def test_lint_source_public_api_returns_findings_with_spec_fields():
    (finding,) = kernel_guard.lint_source("import os\n%time os._exit(0)")
    assert (finding.cell, finding.line, finding.column, finding.code) == (None, 2, 7, "KG501")
    assert set(finding.to_dict()) >= {
        "path", "cell", "line", "column", "end_line", "end_column", "code", "name", "severity", "message"
    }
    assert kernel_guard.lint_source("%%bash\nexit 1") == []
    assert kernel_guard.lint_source("exit()", filename="job.py") == []


def test_imports_resolve_across_cells_and_aliases():
    findings = lint_document(document("import os as system", "x = 1", "system._exit(3)"))
    assert [(f.cell, f.line, f.code) for f in findings] == [(3, 1, "KG501")]


def test_a_later_rebinding_hides_nothing_before_it():
    # `os` rebound in cell 2: cell 3's call is no longer os._exit.
    findings = lint_document(document("import os", "class os:\n    _exit = print", "os._exit(3)"))
    assert findings == []


def _context(*cells: str) -> LintContext:
    doc = document(*cells)
    context = LintContext(doc, mem_budget=1)
    for cell in doc.cells:
        context.trees[id(cell)] = ast.parse(cell.source)
    return context


def test_constants_are_single_module_level_assignments():
    context = _context("n = 10 ** 5\nm = n // 2", "k = 3\nk += 1", "def f(q):\n    return q\nq = 4", "s = (1, 2)\nl = [1]")
    assert context.constant("n") == 100_000 and context.constant("m") == 50_000
    assert context.constant("k") is UNKNOWN  # rebound by +=
    assert context.constant("q") is UNKNOWN  # also a parameter name
    assert context.constant("s") == (1, 2)
    assert context.constant("l") is UNKNOWN  # mutable
    assert context.constant("missing") is UNKNOWN


def test_selection_prefixes():
    selection = Selection(select=("KG5",), ignore=("KG504",))
    assert selection.enabled("KG501") and not selection.enabled("KG504") and not selection.enabled("KG101")


def test_cells_without_triggers_are_not_parsed_by_libcst(monkeypatch):
    import libcst

    parsed = []
    real = libcst.parse_module
    monkeypatch.setattr(libcst, "parse_module", lambda code, *a, **k: parsed.append(code) or real(code, *a, **k))
    lint_document(document("x = 1\ny = x + 1", "print(y)"), Selection(select=("KG5",)))
    assert parsed == []


def test_lint_source_selects_by_prefix():
    source = "import os\nos._exit(0)\nexit()"
    assert [f.code for f in kernel_guard.lint_source(source)] == ["KG501", "KG504"]
    assert [f.code for f in kernel_guard.lint_source(source, select=("KG504",))] == ["KG504"]
    assert [f.code for f in kernel_guard.lint_source(source, ignore=("KG50",))] == []


def test_lint_source_knows_imports_from_a_live_namespace():
    import os
    import signal

    class Trap:
        def __getattr__(self, name):
            raise AssertionError("user code ran")

    namespace = {"os": os, "bye": os._exit, "sig": signal, "trap": Trap(), "_": os}
    findings = kernel_guard.lint_source("os._exit(0)\nbye(1)\nsig.signal(sig.SIGINT, sig.SIG_IGN)", namespace=namespace)
    assert [(f.line, f.code) for f in findings] == [(1, "KG501"), (2, "KG501"), (3, "KG505")]
    assert kernel_guard.lint_source("os._exit(0)") == []  # without the namespace, `os` is unknown


def test_an_alias_from_an_earlier_cell_triggers_its_rule():
    findings = lint_document(document("from os import _exit as bye", "bye(1)"))
    assert [(f.cell, f.code) for f in findings] == [(2, "KG501")]


def test_an_analysis_across_cells_too_deep_for_the_stack_is_one_kg001(monkeypatch):
    from kernel_guard.lint import callgraph

    def too_deep(context):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(callgraph, "analysis", too_deep)
    monkeypatch.setattr("kernel_guard.lint.rules.recursion.analysis", too_deep)
    findings = lint_source("def f(n):\n    return f(n - 1)\nimport os\nos._exit(0)")
    assert [(f.code, f.line) for f in findings] == [("KG001", 1), ("KG501", 4)]
    assert findings[0].message == (
        "KG301, KG302, KG303 cannot analyse the code across cells, their findings are unknown: "
        "code nested too deeply to analyse"
    )
