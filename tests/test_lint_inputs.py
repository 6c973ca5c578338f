"""kernel-lint on inputs a tool meets in the wild: old notebook formats, wrong JSON
types, code nested past the parser's stack, special files, unreadable folders and
bad configuration.  Each must be linted, or named on stderr in one line (exit 2),
with every other input still linted — never a traceback, never a hang."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import nbformat
import pytest

from kernel_guard.cli import main
from kernel_guard.estimator import estimate
from kernel_guard.lint import runner
from kernel_guard.lint.engine import lint_source
from kernel_guard.sizes import format_bytes

KILLER = "import os\nos._exit(0)"


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["--no-cache", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def write_notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nbformat.write(nb, path)
    return path


def raw_notebook(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


# -- nbformat 3 (issue 11.3) ------------------------------------------------------


def v3_notebook(path: Path) -> Path:
    """As nbformat 3 wrote them to disk: worksheets, and ``input`` as a list of lines."""
    data = {
        "metadata": {"name": "old"},
        "nbformat": 3,
        "nbformat_minor": 0,
        "worksheets": [{"cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["# Old notebook\n", "from 2014"]},
            {"cell_type": "code", "collapsed": False, "input": ["import os\n", "n = 3\n", "os._exit(n)"],
             "language": "python", "metadata": {}, "outputs": [], "prompt_number": 1},
            {"cell_type": "code", "collapsed": False, "input": "%matplotlib inline\nwhile True:\n    pass",
             "language": "python", "metadata": {}, "outputs": []},
        ], "metadata": {}}],
    }
    path.write_text(json.dumps(data, indent=1))
    return path


def test_nbformat_3_with_input_as_lines_is_linted_like_jupyter_reads_it(tmp_path, capsys):
    path = v3_notebook(tmp_path / "old.ipynb")
    nbformat.read(path, as_version=4)  # what Jupyter opens
    code, out, err = run(capsys, str(path))
    assert err == ""
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith(f"{path}:cell 2:3:1: KG501")
    assert lines[1].startswith(f"{path}:cell 3:2:1: KG201")


def test_nbformat_3_conversion_says_nothing_on_stderr(tmp_path, capfd):
    path = v3_notebook(tmp_path / "old.ipynb")
    data = json.loads(path.read_text())
    del data["worksheets"][0]["cells"][1]["collapsed"]  # invalid v3: nbformat would log it
    path.write_text(json.dumps(data))
    assert main(["--no-cache", "--exit-zero", str(path)]) == 0
    assert capfd.readouterr().err == ""


# -- wrong types, deep nesting, big numbers (issue 12.1, 12.2) --------------------


@pytest.mark.parametrize(
    "data",
    [
        {"nbformat": 4, "nbformat_minor": 5, "metadata": "x", "cells": [{"cell_type": "code", "source": KILLER}]},
        {"nbformat": 4, "metadata": {"language_info": "python"}, "cells": [{"cell_type": "code", "source": KILLER}]},
        {"nbformat": 4, "metadata": {"language_info": ["x"], "kernelspec": "python3"},
         "cells": [{"cell_type": "code", "source": KILLER}]},
        {"nbformat": 4, "metadata": {"kernelspec": [1], "language_info": {"name": 5}},
         "cells": [{"cell_type": "code", "source": KILLER}]},
    ],
)
def test_metadata_of_the_wrong_type_says_nothing_and_the_cells_are_linted(tmp_path, capsys, data):
    code, out, err = run(capsys, str(raw_notebook(tmp_path / "nb.ipynb", data)))
    assert (code, err) == (1, "")
    assert " KG501 " in out


@pytest.mark.parametrize(
    "data, reason",
    [
        ({"nbformat": 4, "metadata": {}, "cells": [{"cell_type": "code", "source": [1]}]}, "cell 1"),
        ({"nbformat": 4, "metadata": {}, "cells": ["x"]}, "cell 1"),
        ({"nbformat": 4, "metadata": {}, "cells": {"a": 1}}, "'cells'"),
        ({"nbformat": "4", "cells": []}, "nbformat"),
        ({"nbformat": 3, "worksheets": "x"}, "nbformat 3"),
        ([[[]]], "nbformat"),
    ],
)
def test_a_broken_notebook_is_named_in_one_line_and_the_others_still_linted(tmp_path, capsys, data, reason):
    bad = raw_notebook(tmp_path / "bad.ipynb", data)
    good = write_notebook(tmp_path / "good.ipynb", KILLER)
    code, out, err = run(capsys, str(bad), str(good))
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"{bad}: not a notebook") and reason in err
    assert out.startswith(f"{good}:cell 1:2:1: KG501")


def test_json_nested_a_thousand_deep(tmp_path, capsys):
    bad = tmp_path / "deep.ipynb"
    bad.write_text('{"nbformat": 4, "cells": ' + "[" * 1000 + "]" * 1000 + "}")
    code, out, err = run(capsys, str(bad))
    assert (code, out) == (2, "")
    assert err == f"{bad}: not a notebook: JSON nested too deeply\n"


DEEP_SOURCES = [
    "x = " + "+".join(["1"] * 3000),
    "x = " + "-" * 10000 + "1",
    "x = a" + ".b" * 3000,
    "x = f" + "()" * 3000,
    "x = a" + "[0]" * 3000,
    "if x:\n        a = 1\n    b = 2\n!ls",
]


@pytest.mark.parametrize("source", DEEP_SOURCES, ids=["plus", "minus", "attr", "call", "subscript", "dedent"])
def test_code_that_cannot_be_parsed_is_one_kg001_for_its_cell(tmp_path, capsys, source):
    path = write_notebook(tmp_path / "nb.ipynb", source, KILLER)
    code, out, err = run(capsys, str(path))
    assert (code, err) == (1, "")
    first, second = out.splitlines()
    assert first.startswith(f"{path}:cell 1:") and " KG001 cell does not parse: " in first
    assert second.startswith(f"{path}:cell 2:2:1: KG501")
    (finding,) = lint_source(source)
    assert finding.code == "KG001"
    assert estimate(source).allocations == []


def test_the_dedent_error_is_reported_where_python_reports_it():
    (finding,) = lint_source("if x:\n        a = 1\n    b = 2\n!ls")
    assert finding.line == 3
    assert finding.message == "cell does not parse: unindent does not match any outer indentation level"


def test_deep_code_that_parses_is_linted_or_reported_never_raised():
    for depth in (200, 500, 900):
        source = "import numpy as np\nx = " + "+".join(["np.zeros(3)"] * depth)
        assert all(f.code == "KG001" for f in lint_source(source))


def test_a_thousand_stacked_cell_magics(tmp_path, capsys):
    source = "%%time\n" * 1000 + KILLER
    path = write_notebook(tmp_path / "nb.ipynb", source)
    code, out, err = run(capsys, str(path))
    assert (code, err) == (1, "")
    assert out.startswith(f"{path}:cell 1:1002:1: KG501")


def test_an_allocation_past_any_float_is_reported_with_its_size(tmp_path, capsys):
    source = "import numpy as np\nx = np.zeros((10**200, 10**200))"
    (finding,) = lint_source(source, select=("KG1",))
    assert "7.2e+388 TiB" in finding.message and finding.nbytes == 8 * 10**400
    path = tmp_path / "big.py"
    path.write_text(source)
    for fmt in ("text", "json", "sarif", "github"):
        code, out, err = run(capsys, "--format", fmt, str(path))
        assert (code, err) == (1, "") and "KG101" in out


def test_format_bytes_of_any_size():
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(80 * 2**30) == "80.0 GiB"
    assert format_bytes(8 * 10**400) == "7.2e+388 TiB"
    assert format_bytes(10**5000) == "9.0e+4987 TiB"
    assert format_bytes(2e300) == "1.8e+288 TiB"


@pytest.mark.parametrize("codec", ["punycode", "rot13", "zlib_codec", "utf-32", "no-such-codec"])
def test_a_script_declaring_a_codec_that_is_no_text_encoding(tmp_path, capsys, codec):
    bad = tmp_path / "bad.py"
    bad.write_bytes(f"# coding: {codec}\nx = 1\n".encode())
    good = tmp_path / "good.py"
    good.write_text(KILLER)
    code, out, err = run(capsys, str(bad), str(good))
    assert code == 2
    assert err.startswith(f"{bad}: cannot decode source file: ") and err.count("\n") == 1
    assert " KG501 " in out


# -- special files, folders and paths (issue 12.3) --------------------------------


def test_fifo_device_and_link_to_dev_zero_are_named_and_never_read(tmp_path, capsys):
    folder = tmp_path / "project"
    folder.mkdir()
    os.mkfifo(folder / "pipe.ipynb")
    (folder / "zero.ipynb").symlink_to("/dev/zero")
    (folder / "null.py").symlink_to("/dev/null")
    good = write_notebook(folder / "good.ipynb", KILLER)
    code, out, err = run(capsys, str(folder), str(folder / "pipe.ipynb"))
    assert code == 2
    assert sorted(err.splitlines()) == [
        f"{folder / name}: not a regular file: skipped" for name in ("null.py", "pipe.ipynb", "zero.ipynb")
    ]
    assert out.startswith(f"{good}:cell 1:2:1: KG501")


def test_a_fifo_is_skipped_by_a_cached_run_too(tmp_path, capsys):
    os.mkfifo(tmp_path / "pipe.ipynb")
    code = main(["--cache-dir", str(tmp_path / "cache"), str(tmp_path / "pipe.ipynb")])
    assert code == 2 and capsys.readouterr().err == f"{tmp_path / 'pipe.ipynb'}: not a regular file: skipped\n"


def test_a_file_over_64_mib_is_skipped_unread(tmp_path, capsys):
    big = tmp_path / "big.ipynb"
    with open(big, "wb") as file:
        file.truncate(64 * 2**20 + 1)  # sparse: no disk used
    code, out, err = run(capsys, str(big))
    assert (code, out, err) == (2, "", f"{big}: larger than 64 MiB: skipped\n")


def test_a_symlink_loop_as_path_is_one_line(tmp_path, capsys):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    good = tmp_path / "good.py"
    good.write_text(KILLER)
    code, out, err = run(capsys, str(loop), str(good))
    assert (code, err) == (2, f"{loop}: symlink loop\n")
    assert " KG501 " in out


def test_unreadable_folders_are_named_for_a_user_who_cannot_read_them():
    """As an ordinary user (root reads everything): a folder given without read
    permission and a subfolder without permission are named, exit 2."""
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' on this machine")
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to another user")
    with tempfile.TemporaryDirectory() as name:  # pytest's own tmp_path is private to root
        root = Path(name)
        project = root / "project"
        (project / "locked").mkdir(parents=True)
        (project / "locked" / "a.py").write_text(KILLER)
        good = write_notebook(project / "good.ipynb", KILLER)
        closed = root / "closed"
        closed.mkdir()
        (closed / "b.py").write_text(KILLER)
        for path in (root, project, closed):
            path.chmod(0o755)
        (project / "good.ipynb").chmod(0o644)
        (project / "locked").chmod(0o000)
        closed.chmod(0o311)  # may be entered, not listed
        script = (
            "import contextlib, io, os, sys\n"
            "from kernel_guard import cli\n"
            "with contextlib.redirect_stdout(io.StringIO()):  # import all it needs while root\n"
            f"    cli.main(['--no-cache', '-j', '1', {str(good)!r}])\n"
            f"os.setgid({nobody.pw_gid}); os.setuid({nobody.pw_uid})\n"
            "sys.exit(cli.main(sys.argv[1:]))\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", script, "--no-cache", "-j", "1", str(project), str(closed)],
            capture_output=True, text=True, timeout=120, cwd="/",
        )
        (project / "locked").chmod(0o755)
        closed.chmod(0o755)
    assert "Traceback" not in result.stderr
    assert result.returncode == 2
    assert sorted(result.stderr.splitlines()) == [
        f"{closed}: cannot search directory: permission denied",
        f"{project / 'locked'}: cannot search directory: permission denied",
    ]
    assert " KG501 " in result.stdout


# -- configuration (issue 12.4) ---------------------------------------------------


@pytest.mark.parametrize(
    "line, key",
    [("select = 5", "select"), ("select = [5]", "select"), ("ignore = {a = 1}", "ignore"), ("jobs = true", "jobs"),
     ("jobs = 0", "jobs"), ("mem-budget = [1]", "mem-budget"), ("format = 3", "format"),
     ("statistics = 'yes'", "statistics"), ("exit-zero = 1", "exit-zero"), ("cache = 'no'", "cache")],
)
def test_a_bad_configuration_value_is_one_line_naming_the_key(tmp_path, capsys, line, key):
    (tmp_path / "pyproject.toml").write_text(f"[tool.kernel-lint]\n{line}\n")
    (tmp_path / "a.py").write_text("x = 1\n")
    code, out, err = run(capsys, str(tmp_path / "a.py"))
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and f"] {key} must be " in err


# -- --explain ----------------------------------------------------------------------


@pytest.mark.parametrize("query", ["infinite-while-loop", "KG201", "kg201", " Infinite-While-Loop "])
def test_explain_takes_a_code_or_a_name(capsys, query):
    assert main(["--explain", query]) == 0
    assert capsys.readouterr().out.startswith("KG201 infinite-while-loop (error)\n")


def test_explain_of_an_unknown_rule(capsys):
    assert main(["--explain", "no-such-rule"]) == 2
    err = capsys.readouterr().err
    assert err == "kernel-lint: error: unknown rule code or name 'no-such-rule' (see --list-rules)\n"


def test_a_cell_nested_as_deep_as_python_parses_is_analysed_like_any_other(tmp_path, capsys):
    """Python parses a list nested 190 deep (libcst's visitors recursed past the limit on it)."""
    deep = "x = " + "[" * 190 + "]" * 190 + "\n" + KILLER
    path = write_notebook(tmp_path / "nb.ipynb", deep, KILLER)
    code, out, err = run(capsys, str(path))
    assert (code, err) == (1, "")
    first, second = out.splitlines()
    assert first.startswith(f"{path}:cell 1:3:1: KG501")
    assert second.startswith(f"{path}:cell 2:2:1: KG501")


_real_lint_file = runner.lint_file


def _dies_on_doomed(path, selection, mem_budget):
    if path.endswith("doomed.py"):
        os._exit(9)  # as the out-of-memory killer would end a worker
    return _real_lint_file(path, selection, mem_budget)


def test_a_worker_that_dies_is_named_not_a_traceback(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(runner, "lint_file", _dies_on_doomed)
    paths = [tmp_path / "doomed.py", *(tmp_path / f"ok{index}.py" for index in range(3))]
    for path in paths:
        path.write_text(KILLER)
    code = main(["--no-cache", "-j", "2", *map(str, paths)])
    out, err = capsys.readouterr()
    assert code == 2 and "Traceback" not in out + err
    assert f"{paths[0]}: not linted: the worker process linting it died\n" in err
    for line in err.splitlines():
        assert line.endswith(": not linted: the worker process linting it died")


@pytest.mark.parametrize("separator", ["\u2028", "\x1c", "\x85"])
def test_unicode_line_separators_in_ipython_syntax_say_nothing_on_stderr(tmp_path, capfd, separator):
    """IPython's tokenizer warns on line separators other than newlines: no warning reaches the user."""
    path = write_notebook(tmp_path / "nb.ipynb", f"!ls{separator}x = 1", KILLER)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lint_source(f"!ls{separator}x = 1")
        assert main(["--no-cache", str(path)]) == 1
    assert capfd.readouterr().err == ""


def test_file_names_that_are_not_utf8_are_printed_escaped(tmp_path):
    """A name of arbitrary bytes, on a terminal that is strict UTF-8 (or ASCII)."""
    folder = os.fsencode(tmp_path)
    with open(os.path.join(folder, b"\xff\xfe.py"), "w") as file:
        file.write(KILLER)
    os.mkfifo(os.path.join(folder, b"\xfe.ipynb"))
    for encoding in ("utf-8", "ascii"):
        result = subprocess.run(
            [sys.executable, "-m", "kernel_guard.cli", "--no-cache", str(tmp_path)], capture_output=True,
            env={**os.environ, "PYTHONIOENCODING": f"{encoding}:strict"}, timeout=120, cwd="/",
        )
        assert result.returncode == 2 and b"Traceback" not in result.stderr
        assert result.stdout.startswith(os.fsencode(tmp_path) + b"/\\udcff\\udcfe.py:2:1: KG501")
        assert result.stderr == os.fsencode(tmp_path) + b"/\\udcfe.ipynb: not a regular file: skipped\n"


def test_a_working_directory_that_was_deleted(tmp_path):
    # The folder a terminal sits in was removed: a relative path cannot be found, an absolute one is linted.
    gone = tmp_path / "gone"
    gone.mkdir()
    notebook = write_notebook(tmp_path / "nb.ipynb", "import os\nos._exit(1)")
    code = (f"import os, sys; os.chdir({str(gone)!r}); os.rmdir({str(gone)!r}); "
            f"from kernel_guard.cli import main; sys.exit(main(['--no-cache', 'examples', {str(notebook)!r}]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr == "examples: no such file or directory\n"
    assert ":cell 1:2:1: KG501 " in result.stdout
