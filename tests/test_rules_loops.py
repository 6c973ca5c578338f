"""KG2 through the real engine: notebooks as one program, positions, messages,
and the cases that look like hangs but are not."""

from __future__ import annotations

import nbformat

from kernel_guard.cli import main
from kernel_guard.lint.engine import Selection, lint_document
from kernel_guard.source import Cell, Document, python_source


def lint_cells(*cells: str, select: str = "KG2"):
    document = Document(
        "nb.ipynb", [Cell(n, text, *python_source(text)) for n, text in enumerate(cells, start=1)], is_notebook=True
    )
    return lint_document(document, Selection(select=(select,)), mem_budget=2**34)


def lint_script(source: str, select: str = "KG2"):
    document = Document("job.py", [Cell(None, source, source)], is_notebook=False)
    return lint_document(document, Selection(select=(select,)))


def test_message_position_and_severity_of_a_while_true():
    (finding,) = lint_cells("import time\n\nwhile True:\n    time.sleep(1)")
    assert (finding.code, finding.name, finding.severity) == ("KG201", "infinite-while-loop", "error")
    assert (finding.cell, finding.line, finding.column, finding.end_line, finding.end_column) == (1, 3, 1, 3, 11)
    assert finding.message == "`while True` loop has no reachable break, return or raise: it never ends"


def test_script_findings_have_no_cell():
    (finding,) = lint_script("def serve():\n    pass\n\nwhile True:\n    serve()\n")
    assert (finding.cell, finding.line, finding.column) == (None, 4, 1)


def test_flag_bound_in_another_cell_is_a_constant_condition():
    findings = lint_cells("running = True", "x = 1", "while running:\n    step()")
    assert [(f.code, f.cell) for f in findings] == [("KG201", 3)]
    assert "`while running`" in findings[0].message


def test_a_flag_that_a_later_cell_or_a_callback_changes_is_not_constant():
    # A later cell cannot run while this one loops: the condition still never changes.
    findings = lint_cells("running = True", "while running:\n    step()", "running = False")
    assert [(f.code, f.cell) for f in findings] == [("KG202", 2)]
    assert lint_cells(
        "running = True", "def stop(*_):\n    global running\n    running = False", "while running:\n    step()",
    ) == []


def test_function_defined_in_one_cell_and_called_in_another():
    findings = lint_cells("def spin():\n    while True:\n        pass", "spin()")
    assert [(f.code, f.cell, f.line) for f in findings] == [("KG201", 1, 2)]


def test_function_never_called_or_run_in_a_thread_is_not_a_hang():
    worker = "def worker():\n    while True:\n        handle(jobs.get())"
    assert lint_cells(worker) == []
    assert lint_cells(worker, "import threading\nthreading.Thread(target=worker, daemon=True).start()") == []
    assert lint_cells(worker, "pool.submit(worker)") == []
    assert lint_cells(worker, "t = Thread(target=lambda: worker())") == []


def test_a_function_from_another_cell_that_raises_is_a_way_out():
    assert lint_cells(
        "def check(value):\n    if value > 10:\n        raise StopIteration", "while True:\n    check(read())"
    ) == []
    assert lint_cells(
        "def check(value):\n    validate(value)", "def validate(v):\n    assert v < 3", "while True:\n    check(1)"
    ) == []


def test_loops_that_end_by_an_exception_on_purpose():
    assert lint_cells("while True:\n    frame = next(frames)\n    show(frame)") == []
    assert lint_cells("while True:\n    x, y = sess.run(batch)\n    data.append(x)") == []
    assert lint_cells("while True:\n    item = q.get(timeout=1)\n    handle(item)") == []
    assert lint_cells("try:\n    while True:\n        step()\nexcept KeyboardInterrupt:\n    print('stopped')") == []


def test_break_of_an_inner_loop_does_not_leave_the_outer_one():
    findings = lint_cells(
        "while True:\n    for x in xs:\n        if x:\n            break\n    while ok():\n        break"
    )
    assert [f.code for f in findings] == ["KG201"]
    assert lint_cells("while True:\n    for x in xs:\n        pass\n    else:\n        break") == []


def test_noqa_silences_the_loop():
    assert lint_cells("while True:  # noqa: KG201\n    pass") == []


def test_unchanging_condition_across_cells():
    findings = lint_cells("n = len(data)", "while n > 0:\n    print(n)")
    assert [(f.code, f.cell, f.severity) for f in findings] == [("KG202", 2, "warning")]
    assert "nothing in the loop changes `n`" in findings[0].message


def test_condition_changed_through_an_alias_or_a_thread_is_silent():
    assert lint_cells("q = load()", "worker = Worker(q)", "while q:\n    time.sleep(1)") == []
    assert lint_cells("results = []", "def on_done(r):\n    results.append(r)", "while not results:\n    wait()") == []
    assert lint_cells("i = first()", "while i < 10:\n    i = advance(i)") == []


def test_itertools_through_an_alias_from_an_earlier_cell():
    findings = lint_cells("import itertools as it", "for i in it.count(10):\n    print(i)")
    assert [(f.code, f.cell, f.line, f.column) for f in findings] == [("KG203", 2, 1, 1)]


def test_a_function_of_the_notebook_named_count_is_not_itertools():
    gen = "def count(stop):\n    i = 0\n    while i < stop:\n        yield i\n        i += 1"
    assert lint_cells("from itertools import count", gen, "for n in count(5):\n    print(n)") == []


def test_growing_the_iterated_list_across_cells():
    findings = lint_cells("queue = [start]", "for node in queue:\n    queue.append(node * 2)")
    assert [(f.code, f.cell, f.line, f.column) for f in findings] == [("KG204", 2, 2, 5)]


def test_a_name_that_is_not_always_a_list_is_silent():
    assert lint_cells("queue = [start]", "queue = pd.DataFrame()", "for node in queue:\n    queue.append(node)") == []
    assert lint_cells("def f(queue):\n    for node in queue:\n        queue.append(node)") == []


def test_cli_reports_the_loop_with_its_cell_number(tmp_path, capsys):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Monitor"), nbformat.v4.new_code_cell("while True:\n    poll()")]
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    path = tmp_path / "monitor.ipynb"
    nbformat.write(nb, path)
    assert main(["--select", "KG2", "--no-cache", str(path)]) == 1
    out = capsys.readouterr().out
    assert out == f"{path}:cell 2:1:1: KG201 `while True` loop has no reachable break, return or raise: it never ends\n"
