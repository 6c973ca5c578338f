"""Plain %magic and !command lines are translated exactly as IPython does, without IPython."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from kernel_guard.escapes import translate_escapes

IPython = pytest.importorskip("IPython.core.inputtransformer2")
MANAGER = IPython.TransformerManager()

HANDLED = [
    "%matplotlib inline\nimport numpy as np",
    "!pip install -q 'torch>=2'  \nimport torch",
    "import os\nif os.name:\n    !ls *.txt\n    %time x = 1\nelse:\n    pass",
    "%env A=1 # not a comment to IPython\n!echo é ünï",
    "%load_ext autoreload\n%autoreload 2",
    "s = '''\n%not a magic\n'''\nx = 5 % 3",
    "%",
]
FALLS_BACK = [
    "files = !ls",
    "x = %pwd",
    "np.zeros?",
    "!!ls",
    "!echo a \\\n  b",
    "!echo (",
    "x = [\n1]\n%who\n  \n",  # a line of blanks: IPython's dedent empties it
    "  %who",
    ">>> 1 + 1",
    "In [1]: x = 1",
    "%%time\nx = 1",
    "x = 1\r\n%who",
    "s = '''\n%who",
]


@pytest.mark.parametrize("cell", HANDLED)
def test_plain_escapes_translate_as_ipython_does(cell):
    assert translate_escapes(cell) == MANAGER.transform_cell(cell)


@pytest.mark.parametrize("cell", FALLS_BACK)
def test_other_ipython_syntax_is_left_to_ipython(cell):
    assert translate_escapes(cell) is None


def test_random_cells_are_ipythons_translation_or_left_to_it():
    pieces = ["%matplotlib inline", "!ls *.txt  ", "x = !ls", "obj?", "!!ls", "%%time", "%", "!", "if x:",
              "    !echo hi", "    y = 3", "s = '''", "'''", "a = (1,", "% 2)", "!echo (", "!echo it's", "x = [", "]",
              "\\", "  ", "", "z = 5 % 3", "x != 1", ">>> 1", "... 2", "def f():", "    return 1",
              "  %who", "f'{x}'", "# %c"]
    rng = random.Random(13)
    handled = 0
    for _ in range(3000):
        cell = "\n".join(rng.choice(pieces) for _ in range(rng.randint(1, 6))) + rng.choice(["", "\n"])
        fast = translate_escapes(cell)
        if fast is not None:
            handled += 1
            assert fast == MANAGER.transform_cell(cell), cell
    assert handled > 300  # the comparison is not vacuous


def test_linting_plain_magics_does_not_import_ipython(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    path = tmp_path / "nb.ipynb"
    cells = ["%matplotlib inline\n!pip install -q x", "import os\nos._exit(0)"]
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), path)
    probe = (
        "import sys\nfrom kernel_guard.cli import main\n"
        f"code = main(['--no-cache', '-j', '1', '--select', 'KG5', {str(path)!r}])\n"
        "print(code, 'IPython' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "KG501" in done.stdout
    assert done.stdout.splitlines()[-1] == "1 False"
