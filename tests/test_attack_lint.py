"""Attack suite for kernel-lint: generated malformed notebooks and sources, deep
nesting and special files.  Whatever the input, no traceback, no hang: the
input is linted, or named on stderr in one line with exit 2, and every other
input of the run is still linted."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernel_guard.cli import main
from kernel_guard.estimator import estimate
from kernel_guard.lint.engine import lint_source

KILLER = "import os\nos._exit(0)\n"
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],  # capsys is read per example
)


@contextlib.contextmanager
def no_hang(seconds: float = 20.0):
    """Fail, rather than wait forever, when one run takes past ``seconds`` (generous: a busy machine)."""

    def expired(signum, frame):
        raise TimeoutError(f"kernel-lint ran past {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def lint_with_a_witness(capsys, bad: Path, witness: Path) -> tuple[int, str, str]:
    """Run kernel-lint in-process on ``bad`` and a known file: the witness must
    always be reported, whatever happens to ``bad``."""
    with no_hang():
        code = main(["--no-cache", "-j", "1", str(bad), str(witness)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert code in (1, 2)
    assert f"{witness}:" in out and " KG501 " in out
    for line in err.splitlines():
        assert line.startswith(f"{bad}: ") and len(line) < 600
    assert (code == 2) == bool(err)
    return code, out, err


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as name:
        root = Path(name)
        (root / "witness.py").write_text(KILLER)
        yield root


# -- JSON of every shape, wherever a notebook has a field --------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
CODE_LINES = st.lists(
    st.sampled_from(["import os\n", "os._exit(0)\n", "%%time\n", "!ls\n", "x = 1\n", "while True:\n", "    pass\n",
                     "def f(n): return f(n)\n", "if x:\n", "        a = 1\n", "    b = 2\n", "%time y = 2\n", "\x00"]),
    max_size=6,
)


def cell(value_at: dict) -> dict:
    base = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": "x = 1"}
    base.update(value_at)
    return base


@st.composite
def notebooks(draw) -> object:
    """A v4 (or v3) notebook with one field, anywhere, replaced by arbitrary JSON."""
    lines = draw(CODE_LINES)
    notebook = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"},
                     "language_info": {"name": "python"}},
        "cells": [cell({"source": lines}), cell({"source": "".join(lines)}), {"cell_type": "markdown", "source": ""}],
    }
    where = draw(st.sampled_from([
        (), ("nbformat",), ("nbformat_minor",), ("metadata",), ("metadata", "kernelspec"),
        ("metadata", "language_info"), ("metadata", "language_info", "name"), ("metadata", "kernelspec", "name"),
        ("cells",), ("cells", 0), ("cells", 0, "cell_type"), ("cells", 0, "source"), ("cells", 1, "source"),
        ("cells", 0, "source", 0), ("cells", 2, "cell_type"), ("cells", 0, "metadata"),
    ]))
    value = draw(JSON)
    if not where:
        return value
    target = notebook
    for key in where[:-1]:
        target = target[key]
    if isinstance(target, list) and where[-1] >= len(target):
        target.append(value)
    else:
        target[where[-1]] = value
    if draw(st.booleans()) and where[:1] != ("nbformat",):  # the same cells as nbformat 3 wrote them
        cells = notebook.pop("cells")
        notebook.update(nbformat=3, nbformat_minor=0, worksheets=[{"cells": cells, "metadata": {}}])
        for item in cells if isinstance(cells, list) else []:
            if isinstance(item, dict) and "source" in item and item.get("cell_type") == "code":
                item["input"] = item.pop("source")
    return notebook


@SETTINGS
@given(data=notebooks())
def test_notebooks_with_any_json_anywhere(folder, capsys, data):
    bad = folder / "generated.ipynb"
    bad.write_text(json.dumps(data))
    lint_with_a_witness(capsys, bad, folder / "witness.py")


@SETTINGS
@given(data=st.binary(max_size=300), suffix=st.sampled_from([".ipynb", ".py"]))
def test_random_bytes(folder, capsys, data, suffix):
    bad = folder / f"bytes{suffix}"
    bad.write_bytes(data)
    lint_with_a_witness(capsys, bad, folder / "witness.py")


@SETTINGS
@given(prefix=st.sampled_from(["", "# coding: ", "# -*- coding: ", "\ufeff# coding: "]),
       codec=st.sampled_from(["punycode", "rot13", "zlib_codec", "base64", "utf-16", "idna", "latin-1", "nonesuch"]),
       body=st.binary(max_size=40))
def test_declared_encodings(folder, capsys, prefix, codec, body):
    bad = folder / "encoded.py"
    bad.write_bytes(f"{prefix}{codec}\n".encode() + body)
    lint_with_a_witness(capsys, bad, folder / "witness.py")


# -- sources: IPython syntax, fragments, nesting ---------------------------------------

FRAGMENTS = ["np.zeros(", "(", ")", "[", "]", "{", "}", "10**", "200", ", ", "+", "-", "*", "not ", "lambda: ", ".b",
             "()", "[0]", "\n", "    ", "%%time\n", "%time ", "!", "?", "def f(n):", " return ", "f(n - 1)", "while ",
             "True", ":", "import numpy as np\n", "x = ", "'", '"""', "\\", "#", "if x:", "else", "yield", "\t", "é",
             "\x00", "\r", "async ", "await ", "*args", "**", "@", "=", "==", ";", "0x", "1e999", "j"]


@SETTINGS
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=40))
def test_fragments_of_code_lint_and_estimate(pieces):
    source = "".join(pieces)
    with no_hang():
        for finding in lint_source(source):
            assert finding.code.startswith("KG") and "\n" not in finding.message
        lint_source(source, filename="x.py")
        estimate(source, {})


NESTERS = [
    ("(", ")"), ("[", "]"), ("{", "}"), ("f(", ")"), ("-", ""), ("not ", ""), ("lambda: ", ""), ("1 + ", ""),
    ("a if b else ", ""), ("", ".b"), ("", "()"), ("", "[0]"), ("", " ** 2"), ("np.sqrt(", ")"), ("await ", ""),
    ("{'a': ", "}"), ("(yield ", ")"), ("f'{", "}'"), ("[x for x in ", "]"),
]


@pytest.mark.parametrize("opening, closing", NESTERS)
@pytest.mark.parametrize("depth", [50, 150, 1000, 5000])
def test_nesting_of_every_kind(opening, closing, depth):
    source = "import numpy as np\nx = " + opening * depth + "a" + closing * depth + "\nimport os\nos._exit(0)"
    with no_hang():
        findings = lint_source(source)
        estimate(source, {})
    codes = {finding.code for finding in findings}
    assert codes in ({"KG501"}, {"KG001"}, {"KG001", "KG501"}, set()) or "KG501" in codes


def test_deep_statements_and_many_cells(tmp_path, capsys):
    nested_ifs = "".join("    " * level + "if x:\n" for level in range(99)) + "    " * 99 + "pass\n"
    nested_defs = "".join("    " * level + f"def f{level}():\n" for level in range(99)) + "    " * 99 + "pass\n"
    cells = [nested_ifs, nested_defs, "%%time\n" * 1000 + "x = 1", "x = 1\n" * 20000] + ["y = 2"] * 2000 + [KILLER]
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                                "cells": [{"cell_type": "code", "source": source} for source in cells]}))
    with no_hang(60):
        code = main(["--no-cache", str(path)])
    out, err = capsys.readouterr()
    assert (code, err) == (1, "")
    assert out.endswith(f"cell {len(cells)}:2:1: KG501 `os._exit()` ends the kernel process at once; "
                        "raise an exception to stop instead\n")


# -- special files, through the real console script -----------------------------------


KERNEL_LINT = Path(sys.executable).with_name("kernel-lint")


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The console script users run (``python -m kernel_guard`` is tested with ``__main__``)."""
    if not KERNEL_LINT.exists():
        pytest.skip("the kernel-lint console script is not installed next to this Python")
    return subprocess.run([str(KERNEL_LINT), "--no-cache", *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_special_files_in_a_real_run(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    os.mkfifo(project / "fifo.ipynb")
    os.mkfifo(project / "fifo.py")
    (project / "zero.ipynb").symlink_to("/dev/zero")
    (project / "urandom.py").symlink_to("/dev/urandom")
    (project / "loop.ipynb").symlink_to(project / "loop.ipynb")
    (project / "dangling.py").symlink_to(project / "nowhere")
    (project / "sub").mkdir()
    (project / "sub" / "up").symlink_to(project, target_is_directory=True)  # a folder loop: not followed
    (project / "ok.py").write_text(KILLER)
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    result = run_cli("-j", "2", str(project), str(project / "fifo.ipynb"), str(tmp_path / "loop"), cwd=tmp_path)
    assert "Traceback" not in result.stderr
    assert result.returncode == 2
    assert f"{project / 'ok.py'}:2:1: KG501" in result.stdout
    reasons = dict(line.split(": ", 1) for line in result.stderr.splitlines())
    assert reasons == {
        str(project / "fifo.ipynb"): "not a regular file: skipped",
        str(project / "fifo.py"): "not a regular file: skipped",
        str(project / "zero.ipynb"): "not a regular file: skipped",
        str(project / "urandom.py"): "not a regular file: skipped",
        str(project / "loop.ipynb"): "cannot read file: Too many levels of symbolic links",
        str(project / "dangling.py"): "cannot read file: No such file or directory",
        str(tmp_path / "loop"): "symlink loop",
    }


def test_a_folder_holding_modules_named_like_libraries_runs_none_of_them(tmp_path):
    """``kernel-lint .`` in a folder of scripts named like the libraries it uses:
    what the folder holds is linted, never imported (here it would write a file)."""
    for name in ("libcst", "numpy", "nbformat", "IPython", "json", "re", "tokenize", "attr"):
        (tmp_path / f"{name}.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'a').write('{name}')\n")
    result = run_cli(".", cwd=tmp_path)
    assert not (tmp_path / "ran").exists(), (tmp_path / "ran").read_text()
    assert (result.returncode, result.stderr) == (0, "")
