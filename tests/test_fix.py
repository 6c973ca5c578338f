"""``kernel-lint --fix`` and ``--diff`` on real files: only the fixed source lines
change, byte for byte; a second run changes nothing; magics stay as they are."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from kernel_guard.cli import main
from kernel_guard.lint.fix import FIXES
from kernel_guard.lint.registry import all_rules

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path("/work/shared/corpus")


def changed_lines(before: bytes, after: bytes) -> list[tuple[str, str]]:
    """The ``(old, new)`` lines that differ, when the files have the same lines otherwise."""
    old, new = before.decode().split("\n"), after.decode().split("\n")
    assert len(old) == len(new), "a fix added or removed lines"
    return [(a, b) for a, b in zip(old, new) if a != b]


def write_notebook(path: Path, *sources: str) -> Path:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [nbformat.v4.new_markdown_cell("# Analysis")]
    notebook.cells += [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(notebook, path)
    return path


def test_examples_change_only_the_fixed_lines_and_a_second_run_changes_nothing(tmp_path, capsys):
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    before = {p.name: p.read_bytes() for p in (tmp_path / "examples").glob("*.ipynb")}

    assert main(["--no-cache", "--fix", str(tmp_path / "examples")]) == 1  # other findings remain
    out, err = capsys.readouterr()
    assert "fixed 2 finding(s) in 2 file(s)" in err
    assert "KG504" not in out and "KG404" not in out and "KG501" in out

    after = {p.name: p.read_bytes() for p in (tmp_path / "examples").glob("*.ipynb")}
    changes = {name: changed_lines(before[name], after[name]) for name in before}
    assert changes["04_swallowed_interrupt.ipynb"] == [
        ('    "    except:\\n",', '    "    except Exception:\\n",')]
    assert changes["05_exit_and_kernel_killers.ipynb"] == [
        ('    "    exit()"', '    "    raise SystemExit"')]
    assert all(not changes[name] for name in before if name[:2] not in ("04", "05"))
    # The %%guard line of the fixed cell is untouched, and every notebook still reads.
    assert '"%%guard\\n"' in after["05_exit_and_kernel_killers.ipynb"].decode()
    for data in after.values():
        nbformat.validate(nbformat.reads(data.decode(), as_version=4))

    assert main(["--no-cache", "--fix", str(tmp_path / "examples")]) == 1
    assert "fixed 0 finding(s) in 0 file(s)" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (tmp_path / "examples").glob("*.ipynb")} == after


CORPUS_FILES = [
    "Azure__MachineLearningNotebooks/configuration.ipynb",
    "tensorflow__docs/site/en/guide/dtensor_overview.ipynb",
    "rasbt__deeplearning-models/pytorch_ipynb/mlp/mlp-fromscratch__sigmoid-mse.ipynb",
    "CamDavidsonPilon__Probabilistic-Programming-and-Bayesian-Methods-for-Hackers/sandbox/ABCtests.ipynb",  # v3
]


@pytest.mark.parametrize("name", CORPUS_FILES, ids=lambda name: name.split("/")[0])
def test_corpus_notebooks_keep_every_other_byte(tmp_path, capsys, name):
    if not (CORPUS / name).exists():
        pytest.skip(f"the shared corpus is not here ({CORPUS / name})")
    original = (CORPUS / name).read_text(encoding="utf-8")
    # Plant two fixable lines in place of two code lines that occur once in the
    # file, editing the raw text as a person's editor would.
    raw = json.loads(original)
    cells = raw["cells"] if raw["nbformat"] >= 4 else [c for w in raw["worksheets"] for c in w["cells"]]
    lines = [line for c in cells if c["cell_type"] == "code" for line in c.get("source", c.get("input"))]
    unique = [
        line for line in lines if line.endswith("\n") and original.count(json.dumps(line, ensure_ascii=False)) == 1
    ]
    planted, expected = original, original
    for line, new, fixed in zip(unique[:2], ["exit()\n", "import sys; sys.setrecursionlimit(10**6)\n"],
                                ["raise SystemExit\n", "import sys; sys.setrecursionlimit(13_000)\n"]):
        token = json.dumps(line, ensure_ascii=False)
        planted = planted.replace(token, json.dumps(new), 1)
        expected = expected.replace(token, json.dumps(fixed), 1)
    path = tmp_path / "notebook.ipynb"
    path.write_text(planted, encoding="utf-8")

    main(["--no-cache", "--fix", "--select", "KG504,KG304", str(path)])
    assert "fixed 2 finding(s) in 1 file(s), 0 remaining" in capsys.readouterr().err
    assert path.read_text(encoding="utf-8") == expected


def test_magics_and_shell_lines_stay_as_they_are(tmp_path, capsys):
    path = write_notebook(
        tmp_path / "nb.ipynb",
        "%matplotlib inline\n!pip install -q requests\nfiles = !ls\nexit()",
        "%%time\nfor url in urls:\n    try:\n        fetch(url)\n    except:  # keep going\n        pass",
    )
    before = path.read_bytes()
    assert main(["--no-cache", "--fix", str(path)]) == 0
    assert "fixed 2 finding(s) in 1 file(s), 0 remaining" in capsys.readouterr().err
    assert changed_lines(before, path.read_bytes()) == [
        ('    "exit()"', '    "raise SystemExit"'),
        ('    "    except:  # keep going\\n",', '    "    except Exception:  # keep going\\n",'),
    ]


def test_diff_prints_the_fix_and_writes_nothing(tmp_path, capsys):
    path = write_notebook(tmp_path / "nb.ipynb", "import sys\nsys.setrecursionlimit(1_000_000)")
    before, mtime = path.read_bytes(), path.stat().st_mtime_ns
    assert main(["--no-cache", "--diff", str(path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"--- {path}\n+++ {path}\n@@ ")
    assert '-    "sys.setrecursionlimit(1_000_000)"\n+    "sys.setrecursionlimit(13_000)"\n' in out
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime
    clean = write_notebook(tmp_path / "clean.ipynb", "raise SystemExit")
    assert main(["--no-cache", "--diff", str(clean)]) == 0
    assert capsys.readouterr().out == ""


def test_scripts_keep_their_formatting_line_endings_and_bom(tmp_path, capsys):
    path = tmp_path / "job.py"
    text = ("import sys\r\nsys.setrecursionlimit( 10 ** 6 )   # deep trees\r\n\r\nfor  job in jobs :\r\n"
            "    try:\r\n        run(job)\r\n    except :\r\n        pass\r\n")
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert main(["--no-cache", "--fix", str(path)]) == 0
    assert path.read_bytes() == b"\xef\xbb\xbf" + text.replace("10 ** 6", "13_000").replace(
        "except :", "except Exception:").encode()


def test_what_is_not_fixed_stays_reported(tmp_path, capsys):
    path = write_notebook(tmp_path / "nb.ipynb", "exit(code=1)", "ok = check() or quit()")
    before = path.read_bytes()
    assert main(["--no-cache", "--fix", "--select", "KG504", str(path)]) == 1
    assert capsys.readouterr().out.count("KG504") == 2
    assert path.read_bytes() == before


def test_a_source_not_stored_one_line_per_string_is_left_alone(tmp_path, capsys):
    path = write_notebook(tmp_path / "nb.ipynb", "import sys\nexit()")
    raw = json.loads(path.read_text())
    raw["cells"][1]["source"] = ["import sys\nexit()"]  # two lines in one string: nbformat reads it
    path.write_text(json.dumps(raw, indent=1))
    before = path.read_bytes()
    assert main(["--no-cache", "--fix", str(path)]) == 1
    assert path.read_bytes() == before
    # A source stored as one string is rewritten as one string.
    raw["cells"][1]["source"] = "import sys\nexit()"
    path.write_text(json.dumps(raw, indent=1))
    assert main(["--no-cache", "--fix", str(path)]) == 0
    assert json.loads(path.read_text())["cells"][1]["source"] == "import sys\nraise SystemExit"


def test_a_symlink_is_written_through_and_the_mode_kept(tmp_path, capsys):
    target = write_notebook(tmp_path / "real.ipynb", "exit()")
    target.chmod(0o640)
    link = tmp_path / "link.ipynb"
    link.symlink_to(target)
    assert main(["--no-cache", "--fix", str(link)]) == 0
    assert link.is_symlink() and "raise SystemExit" in target.read_text()
    assert target.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.ipynb", "real.ipynb"]  # no temporary file left


@pytest.mark.parametrize("rule", all_rules(), ids=lambda rule: rule.code)
def test_documentation_says_whether_a_rule_has_a_fix(rule):
    assert ("## Fix" in rule.documentation()) == (rule.code in FIXES)
