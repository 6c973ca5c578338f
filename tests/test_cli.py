"""kernel-lint end to end: the real console script on real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from kernel_guard.cli import main

KILLER = "import os\nos._exit(0)"


def notebook(path: Path, *cells: str, language: str = "python", markdown_first: bool = False) -> Path:
    nb = nbformat.v4.new_notebook()
    if markdown_first:
        nb.cells.append(nbformat.v4.new_markdown_cell("# Title"))
    nb.cells.extend(nbformat.v4.new_code_cell(source) for source in cells)
    nb.metadata["kernelspec"] = {"name": language, "language": language, "display_name": language}
    nb.metadata["language_info"] = {"name": language}
    nbformat.write(nb, path)
    return path


def codes(out: str) -> list[str]:
    return [line.split(": ", 1)[1].split()[0] for line in out.splitlines()]


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_text_output_counts_all_cells_and_exits_1(tmp_path, capsys):
    path = notebook(tmp_path / "nb.ipynb", "x = 1", "import os\n\nos._exit(0)", markdown_first=True)
    code, out, err = run(capsys, str(path))
    assert code == 1 and err == ""
    assert out == f"{path}:cell 3:3:1: KG501 `os._exit()` ends the kernel process at once; raise an exception to stop instead\n"


def test_clean_notebook_exits_0_with_no_output(tmp_path, capsys):
    path = notebook(tmp_path / "nb.ipynb", "import numpy as np\nx = np.zeros(10)\nprint(x)")
    assert run(capsys, str(path)) == (0, "", "")


def test_script_location_has_no_cell(tmp_path, capsys):
    script = tmp_path / "job.py"
    script.write_text("# -*- coding: latin-1 -*-\nimport os\nname = 'caf\xe9'\nos._exit(1)\n", encoding="latin-1")
    code, out, _ = run(capsys, str(script))
    assert code == 1 and out.startswith(f"{script}:4:1: KG501 ")


def test_directory_search_skips_checkpoints_git_and_venvs(tmp_path, capsys):
    notebook(tmp_path / "a.ipynb", KILLER)
    for skipped in (".ipynb_checkpoints", ".git", "__pycache__", "env"):
        (tmp_path / skipped).mkdir()
        notebook(tmp_path / skipped / "b.ipynb", KILLER)
    (tmp_path / "env" / "pyvenv.cfg").write_text("home = /usr\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.py").write_text(KILLER)
    code, out, _ = run(capsys, str(tmp_path))
    assert code == 1
    assert sorted(Path(line.split(":")[0]).name for line in out.splitlines()) == ["a.ipynb", "c.py"]


def test_json_fields(tmp_path, capsys):
    path = notebook(tmp_path / "nb.ipynb", KILLER)
    code, out, _ = run(capsys, "--format", "json", str(path))
    (finding,) = json.loads(out)
    assert code == 1
    assert finding == {
        "path": str(path),
        "cell": 1,
        "line": 2,
        "column": 1,
        "end_line": 2,
        "end_column": 12,
        "code": "KG501",
        "name": "os-exit",
        "severity": "error",
        "message": finding["message"],
    }


def test_json_of_clean_input_is_an_empty_array(tmp_path, capsys):
    path = notebook(tmp_path / "nb.ipynb", "x = 1")
    assert run(capsys, "--format", "json", str(path))[:2] == (0, "[]\n")


# The parts of the SARIF 2.1.0 schema (sarif-schema-2.1.0.json) that GitHub code
# scanning requires and that kernel-lint writes; the full schema cannot be fetched here.
SARIF_SUBSET = {
    "type": "object",
    "required": ["version", "runs"],
    "properties": {
        "version": {"const": "2.1.0"},
        "$schema": {"type": "string", "format": "uri"},
        "runs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["tool"],
                "properties": {
                    "tool": {
                        "type": "object",
                        "required": ["driver"],
                        "properties": {
                            "driver": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "version": {"type": "string"},
                                    "rules": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": ["id"],
                                            "properties": {
                                                "id": {"type": "string"},
                                                "shortDescription": {"$ref": "#/$defs/message"},
                                                "fullDescription": {"$ref": "#/$defs/message"},
                                                "defaultConfiguration": {
                                                    "type": "object",
                                                    "properties": {"level": {"$ref": "#/$defs/level"}},
                                                },
                                            },
                                        },
                                    },
                                },
                            }
                        },
                    },
                    "results": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["message"],
                            "properties": {
                                "ruleId": {"type": "string"},
                                "ruleIndex": {"type": "integer", "minimum": -1},
                                "level": {"$ref": "#/$defs/level"},
                                "message": {"$ref": "#/$defs/message"},
                                "locations": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "physicalLocation": {
                                                "type": "object",
                                                "properties": {
                                                    "artifactLocation": {
                                                        "type": "object",
                                                        "properties": {"uri": {"type": "string"}},
                                                    },
                                                    "region": {
                                                        "type": "object",
                                                        "properties": {
                                                            key: {"type": "integer", "minimum": 1}
                                                            for key in ("startLine", "startColumn", "endLine", "endColumn")
                                                        },
                                                    },
                                                },
                                            }
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
    "$defs": {
        "level": {"enum": ["none", "note", "warning", "error"]},
        "message": {"type": "object", "anyOf": [{"required": ["text"]}, {"required": ["id"]}]},
    },
}


def test_sarif_is_valid_and_indexes_rules(tmp_path, capsys):
    jsonschema = pytest.importorskip("jsonschema")
    path = notebook(tmp_path / "nb.ipynb", KILLER, "exit()")
    code, out, _ = run(capsys, "--format", "sarif", str(path))
    log = json.loads(out)
    jsonschema.validate(log, SARIF_SUBSET)
    run_ = log["runs"][0]
    rules = run_["tool"]["driver"]["rules"]
    assert code == 1 and len(run_["results"]) == 2
    for result in run_["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] == "error" and result["message"]["text"].startswith("cell ")


def test_github_annotations(tmp_path, capsys):
    script = tmp_path / "job.py"
    script.write_text(KILLER)
    nb = notebook(tmp_path / "nb.ipynb", KILLER)
    code, out, _ = run(capsys, "--format", "github", str(script), str(nb))
    lines = out.splitlines()
    assert code == 1
    assert lines[0].startswith(f"::error file={script},line=2,col=1,endLine=2,endColumn=12,title=KG501 os-exit::")
    raw = nb.read_text().splitlines().index('    "os._exit(0)"') + 1  # the .ipynb line holding the source line
    assert lines[1].startswith(f"::error file={nb},line={raw},endLine={raw},title=KG501 os-exit::cell 1:2:1: ")


def test_select_ignore_and_unknown_codes(tmp_path, capsys):
    path = notebook(tmp_path / "nb.ipynb", KILLER, "exit()")
    assert codes(run(capsys, str(path))[1]) == ["KG501", "KG504"]
    assert codes(run(capsys, "--select", "KG504", str(path))[1]) == ["KG504"]
    assert codes(run(capsys, "--ignore", "KG50", str(path))[1]) == []
    assert codes(run(capsys, "--select", "KG5", "--ignore", "KG504", str(path))[1]) == ["KG501"]
    code, out, err = run(capsys, "--select", "KG999", str(path))
    assert (code, out) == (2, "") and err == "kernel-lint: error: unknown rule code 'KG999' (see --list-rules)\n"


def test_noqa(tmp_path, capsys):
    path = notebook(
        tmp_path / "nb.ipynb",
        "import os\nos._exit(0)  # noqa",
        "import os\nos._exit(0)  # noqa: KG501",
        "import os\nos._exit(0)  # noqa: KG5",
        "import os\nos._exit(0)  # noqa: KG201",
    )
    code, out, _ = run(capsys, str(path))
    assert code == 1 and [line.split(":")[1] for line in out.splitlines()] == ["cell 4"]


def test_statistics_and_exit_zero(tmp_path, capsys):
    path = notebook(tmp_path / "nb.ipynb", KILLER, KILLER, "exit()")
    code, out, _ = run(capsys, "--statistics", "--exit-zero", str(path))
    assert code == 0
    assert out.splitlines()[-2:] == ["     2  KG501  os-exit", "     1  KG504  exit-in-notebook"]


def test_explain_and_list_rules(capsys):
    code, out, _ = run(capsys, "--explain", "KG501")
    assert code == 0 and out.startswith("KG501 os-exit (error)") and "## Why is this bad?" in out
    code, out, err = run(capsys, "--explain", "KG000")
    assert code == 2 and "unknown rule code or name 'KG000'" in err
    code, out, _ = run(capsys, "--list-rules")
    assert code == 0 and any(line.startswith("KG504  exit-in-notebook") for line in out.splitlines())


def test_pyproject_config_and_command_line_wins(tmp_path, capsys, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.kernel-lint]\nignore = ["KG504"]\nformat = "json"\n')
    path = notebook(tmp_path / "nb.ipynb", KILLER, "exit()")
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "nb.ipynb")
    assert code == 1 and [f["code"] for f in json.loads(out)] == ["KG501"]
    code, out, _ = run(capsys, "--format", "text", "--ignore", "KG501", "nb.ipynb")
    assert code == 1 and codes(out) == ["KG504"]
    (tmp_path / "pyproject.toml").write_text('[tool.kernel-lint]\nselct = ["KG5"]\n')
    code, _, err = run(capsys, str(path))
    assert code == 2 and "unknown key 'selct'" in err and len(err.splitlines()) == 1


def test_bad_inputs_are_named_and_others_still_linted(tmp_path, capsys):
    good = notebook(tmp_path / "good.ipynb", KILLER)
    (tmp_path / "broken.ipynb").write_text('{"cells": [')
    (tmp_path / "schema.ipynb").write_text('{"nbformat": 4, "cells": {"a": 1}}')
    (tmp_path / "latin.ipynb").write_bytes(b'{"nbformat": 4, "cells": [], "x": "\xe9"}')
    code, out, err = run(capsys, str(tmp_path), str(tmp_path / "missing.ipynb"))
    assert code == 2
    assert out.startswith(f"{good}:cell 1:2:1: KG501")
    messages = dict(line.split(": ", 1) for line in err.splitlines())
    assert messages[str(tmp_path / "broken.ipynb")].startswith("not a notebook: invalid JSON")
    assert messages[str(tmp_path / "schema.ipynb")].startswith("not a notebook: 'cells'")
    assert messages[str(tmp_path / "latin.ipynb")].startswith("not a notebook: not UTF-8")
    assert messages[str(tmp_path / "missing.ipynb")] == "no such file or directory"
    assert "Traceback" not in err


def test_syntax_error_cell_reports_kg001_and_lints_the_rest(tmp_path, capsys):
    path = notebook(tmp_path / "nb.ipynb", 'print "py2"', KILLER)
    code, out, _ = run(capsys, str(path))
    lines = out.splitlines()
    assert code == 1 and len(lines) == 2
    assert lines[0].startswith(f"{path}:cell 1:1:") and " KG001 cell does not parse" in lines[0]
    assert lines[1].startswith(f"{path}:cell 2:2:1: KG501")


def test_ipython_syntax_is_understood(tmp_path, capsys):
    path = notebook(
        tmp_path / "nb.ipynb",
        "%matplotlib inline\nfiles = !ls\n!pip install numpy \\\n    pandas\nlen?\n??len\nimport os\n%time os._exit(0)",
        "%%time\nimport os\nos._exit(1)",
        "%%bash\nexit 1\nkill -9 $$",
        "%%capture out\n    exit()",
        "%bash\nif [ -f x ]; then exit 1; fi",
        "  import os\n  os._exit(2)",
    )
    code, out, _ = run(capsys, str(path))
    locations = [line.split(": KG")[0].split(":", 1)[1] for line in out.splitlines()]
    assert code == 1
    assert locations == ["cell 1:8:7", "cell 2:3:1", "cell 4:2:5", "cell 6:2:3"]


def test_non_python_notebooks_are_skipped(tmp_path, capsys):
    notebook(tmp_path / "julia.ipynb", "exit()", language="julia")
    assert run(capsys, str(tmp_path)) == (0, "", "")


def test_nbformat_3_is_converted(tmp_path, capsys):
    nb = nbformat.v3.new_notebook(
        worksheets=[nbformat.v3.new_worksheet(cells=[nbformat.v3.new_code_cell(input=KILLER)])],
        metadata={"name": "old"},
    )
    path = tmp_path / "old.ipynb"
    path.write_text(nbformat.v3.writes_json(nb))
    code, out, _ = run(capsys, str(path))
    assert code == 1 and out.startswith(f"{path}:cell 1:2:1: KG501")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_jobs_give_identical_findings(tmp_path, capsys, jobs):
    for index in range(6):
        notebook(tmp_path / f"nb{index}.ipynb", "x = 1", KILLER)
    code, out, _ = run(capsys, "-j", jobs, str(tmp_path))
    assert code == 1 and len(out.splitlines()) == 6
    assert out.splitlines() == sorted(out.splitlines())


def test_bad_options_are_one_line_usage_errors(tmp_path, capsys):
    path = notebook(tmp_path / "nb.ipynb", "x = 1")
    for args in (["--mem-budget", "lots", str(path)], ["-j", "0", str(path)], []):
        code, out, err = run(capsys, *args)
        assert code == 2 and out == "" and len(err.splitlines()) == 1 and err.startswith("kernel-lint: error:")


def test_console_script_and_module_entry_point(tmp_path):
    path = notebook(tmp_path / "nb.ipynb", KILLER)
    script = Path(sys.executable).with_name("kernel-lint")
    for command in ([str(script)], [sys.executable, "-m", "kernel_guard"]):
        result = subprocess.run([*command, str(path)], capture_output=True, text=True, env={**os.environ})
        assert result.returncode == 1, result.stderr
        assert result.stdout.startswith(f"{path}:cell 1:2:1: KG501")
