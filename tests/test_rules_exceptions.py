"""KG4 through the real engine: values known from other cells, what makes an
error certain (and what does not), handlers inside loops."""

from __future__ import annotations

from kernel_guard.lint.engine import Selection, lint_document
from kernel_guard.source import Cell, Document, python_source


def lint_cells(*cells: str, select: str = "KG4"):
    document = Document(
        "nb.ipynb", [Cell(n, text, *python_source(text)) for n, text in enumerate(cells, start=1)], is_notebook=True
    )
    return lint_document(document, Selection(select=(select,)), mem_budget=2**34)


def where(findings):
    return [(f.code, f.cell, f.line, f.column) for f in findings]


def test_division_by_a_zero_bound_in_another_cell():
    findings = lint_cells("N_VALIDATION = 0", "import numpy as np", "ratio = len(train) / N_VALIDATION")
    assert where(findings) == [("KG401", 3, 1, 9)]
    assert findings[0].message == "`len(train) / N_VALIDATION` divides by zero: it raises ZeroDivisionError every time"
    assert findings[0].severity == "error"


def test_a_zero_rebound_in_any_cell_is_not_a_constant():
    assert lint_cells("N = 0", "N = count_rows()", "print(10 / N)") == []
    assert lint_cells("N = 0", "for N in range(1, 3):\n    pass", "print(10 / N)") == []


def test_numpy_operands_divide_by_zero_without_raising():
    assert lint_cells("import numpy as np\nx = np.arange(3)", "y = x / 0", "z = np.float64(1) / 0") == []


def test_handlers_decide_whether_the_error_is_expected():
    division = "try:\n    r = 1 / 0\nexcept {}:\n    r = None"
    for caught in ("ZeroDivisionError", "ArithmeticError", "Exception", "(ValueError, ZeroDivisionError)", "MyError"):
        assert lint_cells(division.format(caught)) == [], caught
    assert where(lint_cells(division.format("ValueError"))) == [("KG401", 1, 2, 9)]


def test_conditional_code_is_not_certain():
    assert lint_cells("n = 0", "if n:\n    print(1 / n)") == []
    assert lint_cells("n = 0", "ok = n > 0 and 1 / n < 0.5") == []
    assert lint_cells("n = 0", "vals = [1 / n for _ in items]") == []
    assert where(lint_cells("n = 0", "def rate():\n    return 1 / n")) == [("KG401", 2, 2, 12)]


def test_index_past_a_tuple_of_another_cell():
    findings = lint_cells("IMG_SHAPE = (224, 224)", "channels = IMG_SHAPE[2]")
    assert where(findings) == [("KG402", 2, 1, 12)]
    assert "sequence of length 2" in findings[0].message


def test_a_list_changed_anywhere_is_not_known():
    assert lint_cells("layers = [32, 64]", "layers.append(128)", "print(layers[2])") == []
    assert lint_cells("layers = [32, 64]", "layers += [128]", "print(layers[2])") == []
    assert lint_cells("layers = [32, 64]", "build(layers)", "print(layers[2])") == []
    assert lint_cells("layers = [32, 64]", "layers[1:] = [1, 2, 3]", "print(layers[2])") == []
    assert where(lint_cells("layers = [32, 64]", "for w in layers:\n    print(w)", "print(layers[2])")) == [
        ("KG402", 3, 1, 7)
    ]


def test_missing_key_of_a_dict_of_another_cell():
    findings = lint_cells("params = {'lr': 1e-3, 'epochs': 5}", "train(lr=params['lr'], bs=params['batch'])")
    assert where(findings) == [("KG403", 2, 1, 27)]


def test_a_dict_filled_later_is_not_known():
    assert lint_cells("params = {'lr': 1e-3}", "params['batch'] = 32", "print(params['batch'])") == []
    assert lint_cells("params = {'lr': 1e-3}", "params.update(batch=32)", "print(params['batch'])") == []
    assert lint_cells("params = {'lr': 1e-3}", "model = Model(**params)", "print(params['batch'])") == []
    assert lint_cells("params = {'lr': 1e-3}", "params.setdefault('batch', 32)", "print(params['batch'])") == []


def test_handler_in_a_loop_in_a_function_of_another_cell():
    findings = lint_cells("def scrape(urls):\n    for url in urls:\n        try:\n            fetch(url)\n"
                          "        except:\n            continue", "scrape(all_urls)")
    assert [(f.code, f.cell, f.line, f.column, f.end_column, f.severity) for f in findings] == [
        ("KG404", 1, 5, 9, 15, "warning")
    ]
    assert findings[0].message.startswith("bare `except:` inside a loop swallows KeyboardInterrupt")


def test_a_break_in_an_inner_loop_of_the_handler_does_not_leave_the_loop():
    cell = ("while True:\n    try:\n        step()\n    except BaseException:\n"
            "        for r in retries:\n            break")
    assert [f.code for f in lint_cells(cell)] == ["KG404"]


def test_short_loops_and_handlers_that_leave_are_fine():
    assert lint_cells("for attempt in range(3):\n    try:\n        connect()\n    except:\n        pass") == []
    assert lint_cells("while True:\n    try:\n        step()\n    except KeyboardInterrupt:\n        print('bye')\n"
                      "        break") == []
    assert lint_cells("import sys\nfor x in xs:\n    try:\n        f(x)\n    except:\n        sys.exit(1)") == []


def test_a_mixed_tuple_that_includes_keyboardinterrupt():
    cell = "for x in xs:\n    try:\n        f(x)\n    except (OSError, KeyboardInterrupt) as e:\n        print(e)"
    (finding,) = lint_cells(cell)
    assert "`except (OSError, KeyboardInterrupt)`" in finding.message and "re-raise" in finding.message
