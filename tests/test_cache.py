"""The lint cache: a cached run prints exactly what an uncached run prints."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from kernel_guard.cli import main
from kernel_guard.lint import runner
from kernel_guard.lint.cache import Cache, default_directory
from kernel_guard.lint.finding import Finding

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path("/work/shared/corpus")
# A few real notebooks when the shared corpus is on this machine: syntax errors,
# IPython magics, nbformat 3, broken JSON, a Julia notebook.
CORPUS_SAMPLES = [
    "GoogleCloudPlatform__training-data-analyst/quests/endtoendml/labs/serving/python_streaming.ipynb",
    "rasbt__deeplearning-models/pytorch-lightning_ipynb/mlp/template_classification_basic.ipynb",
    "GoogleCloudPlatform__training-data-analyst/blogs/t2t/translate_ende.ipynb",
    "tensorflow__docs/site/en/guide/tensor.ipynb",
    "JuliaAcademy__JuliaTutorials/introductory-tutorials/intro-to-julia/long-version/001 Variations on Sum.ipynb",
]


def notebook(path: Path, *cells: str, language: str = "python") -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells.extend(nbformat.v4.new_code_cell(source) for source in cells)
    nb.metadata["kernelspec"] = {"name": language, "language": language, "display_name": language}
    nbformat.write(nb, path)
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The examples, notebooks whose findings need several cells, broken inputs, a script."""
    root = tmp_path / "project"
    shutil.copytree(ROOT / "examples", root)
    notebook(
        root / "spawn.ipynb",
        "import multiprocessing as mp\nmp.set_start_method('spawn')",
        "def square(x):\n    return x * x",
        "with mp.Pool(4) as pool:\n    print(pool.map(square, range(10)))",
    )
    notebook(root / "mixed.ipynb", "%matplotlib inline\nimport os", "print 'py2'", "!ls\nos._exit(1)  # noqa: KG502")
    notebook(root / "julia.ipynb", "exit()", language="julia")
    (root / "broken.ipynb").write_text('{"cells": [', encoding="utf-8")
    (root / "job.py").write_text("import os\n\nos.abort()\n", encoding="utf-8")
    if CORPUS.is_dir():
        for sample in CORPUS_SAMPLES:
            if (CORPUS / sample).is_file():
                shutil.copy(CORPUS / sample, root / Path(sample).name)
    return root


def lint(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["--format", "json", *args])
    out, err = capsys.readouterr()
    return code, out, err


def count_lints(monkeypatch) -> list[str]:
    """Record the files actually linted (not served from the cache)."""
    linted: list[str] = []
    real = runner.lint_file

    def recording(path, *args):
        linted.append(Path(path).name)
        return real(path, *args)

    monkeypatch.setattr(runner, "lint_file", recording)
    return linted


def entries(directory: Path) -> list[Path]:
    """One per file linted (the other file there is the list of rule codes)."""
    return sorted(path for path in directory.glob("*.json") if not path.name.startswith("codes-"))


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_cached_runs_print_exactly_what_uncached_runs_print(project, tmp_path, capsys, monkeypatch, jobs):
    cache_dir = tmp_path / "cache"
    baseline = lint(capsys, "--no-cache", "-j", "1", str(project))
    assert baseline[0] == 2 and "broken.ipynb: not a notebook" in baseline[2]  # findings, and an unreadable file
    assert len(json.loads(baseline[1])) >= 6
    assert not cache_dir.exists()

    assert lint(capsys, "--cache-dir", str(cache_dir), "-j", jobs, str(project)) == baseline  # cold, fills
    assert len(entries(cache_dir)) == len([*project.glob("*.ipynb"), *project.glob("*.py")])
    assert (cache_dir / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")

    linted = count_lints(monkeypatch)
    for warm_jobs in ("1", "2"):
        assert lint(capsys, "--cache-dir", str(cache_dir), "-j", warm_jobs, str(project)) == baseline
    assert linted == []  # everything came from the cache


def test_text_format_and_statistics_from_the_cache(project, tmp_path, capsys):
    args = ["--cache-dir", str(tmp_path / "cache"), "--statistics", str(project)]
    first = main(args), capsys.readouterr()
    assert main(args) == first[0] and capsys.readouterr() == first[1]


def test_changed_file_is_linted_again_and_only_it(project, tmp_path, capsys, monkeypatch):
    cache_dir = str(tmp_path / "cache")
    lint(capsys, "--cache-dir", cache_dir, "-j", "1", str(project))
    notebook(project / "spawn.ipynb", "x = 1", "exit()")  # same name, new content
    linted = count_lints(monkeypatch)
    code, out, _ = lint(capsys, "--cache-dir", cache_dir, "-j", "1", str(project))
    assert linted == ["spawn.ipynb"]
    spawn = [f for f in json.loads(out) if f["path"].endswith("spawn.ipynb")]
    assert [(f["code"], f["cell"]) for f in spawn] == [("KG504", 2)]
    assert out == lint(capsys, "--no-cache", "-j", "1", str(project))[1]


def test_selection_and_budget_are_part_of_the_key(project, tmp_path, capsys, monkeypatch):
    cache_dir = str(tmp_path / "cache")
    lint(capsys, "--cache-dir", cache_dir, "-j", "1", str(project))
    linted = count_lints(monkeypatch)
    only_kg5 = lint(capsys, "--cache-dir", cache_dir, "-j", "1", "--select", "KG5", str(project))
    assert linted and {f["code"][:3] for f in json.loads(only_kg5[1])} == {"KG5"}
    assert only_kg5 == lint(capsys, "--no-cache", "-j", "1", "--select", "KG5", str(project))

    linted.clear()
    lint(capsys, "--cache-dir", cache_dir, "-j", "1", "--select", "KG50", str(project))
    assert linted == []  # the same codes enabled, spelled differently: same entries

    lint(capsys, "--cache-dir", cache_dir, "-j", "1", "--mem-budget", "1G", str(project))
    assert len(linted) == len(entries(Path(cache_dir))) // 3  # a third configuration


def test_editing_kernel_guard_source_changes_the_key(tmp_path):
    """Every .py of the package is hashed: editing a rule invalidates the cache."""
    copy = tmp_path / "copy"
    shutil.copytree(ROOT / "kernel_guard", copy / "kernel_guard", ignore=shutil.ignore_patterns("__pycache__"))
    probe = "from kernel_guard.lint.cache import _source_hash; print(_source_hash())"

    def source_hash() -> str:
        env = {**os.environ, "PYTHONPATH": str(copy)}
        command = [sys.executable, "-c", probe]
        done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    before = source_hash()
    rule = copy / "kernel_guard" / "lint" / "rules" / "killers.py"
    rule.write_text(rule.read_text() + "\n# edited\n")
    assert source_hash() != before


def test_corrupt_and_truncated_entries_are_ignored_and_rewritten(project, tmp_path, capsys):
    cache_dir = tmp_path / "cache"
    baseline = lint(capsys, "--cache-dir", str(cache_dir), "-j", "1", str(project))
    garbage = [b"", b"{", b"\x00\xff garbage", b'{"findings": [[1, 2]], "error": null}', b'{"findings": 3}']
    for index, entry in enumerate(entries(cache_dir)):
        entry.write_bytes(garbage[index % len(garbage)])
    assert lint(capsys, "--cache-dir", str(cache_dir), "-j", "2", str(project)) == baseline
    for entry in entries(cache_dir):
        json.loads(entry.read_text())  # rewritten whole


def test_concurrent_runs_share_one_cache(project, tmp_path):
    cache_dir = tmp_path / "cache"
    command = [sys.executable, "-m", "kernel_guard.cli", "-j", "1", "--format", "json"]
    command += ["--cache-dir", str(cache_dir), str(project)]
    expected = subprocess.run([*command[:-3], "--no-cache", str(project)], capture_output=True, text=True)
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for run in runs:
        out, err = run.communicate(timeout=120)
        assert (run.returncode, out, err) == (expected.returncode, expected.stdout, expected.stderr)
    warm = subprocess.run(command, capture_output=True, text=True)
    assert (warm.returncode, warm.stdout, warm.stderr) == (expected.returncode, expected.stdout, expected.stderr)
    assert not list(cache_dir.glob(".tmp-*"))  # every write was renamed into place
    assert not (cache_dir / "kernel-lint-cache").exists()  # one run made the folder, the others used it
    assert not list(tmp_path.glob(".kernel-lint-*"))  # no staging folder left behind


def test_no_cache_and_config_false_write_nothing(project, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KERNEL_LINT_CACHE_DIR", str(tmp_path / "env-cache"))
    lint(capsys, "--no-cache", str(project))
    assert not (tmp_path / "env-cache").exists()

    (project / "pyproject.toml").write_text("[tool.kernel-lint]\ncache = false\n")
    lint(capsys, str(project))
    assert not (tmp_path / "env-cache").exists()
    lint(capsys, "--cache-dir", str(tmp_path / "explicit"), str(project))  # the command line wins
    assert entries(tmp_path / "explicit")

    (project / "pyproject.toml").write_text("[tool.kernel-lint]\ncache = 'yes'\n")
    code, _, err = lint(capsys, str(project))
    assert code == 2 and "cache must be true or false" in err


def test_default_directory_follows_env_then_xdg_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KERNEL_LINT_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert default_directory() == tmp_path / "home" / ".cache" / "kernel-lint"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/is/ignored")
    assert default_directory() == tmp_path / "home" / ".cache" / "kernel-lint"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_directory() == tmp_path / "xdg" / "kernel-lint"
    monkeypatch.setenv("KERNEL_LINT_CACHE_DIR", str(tmp_path / "mine"))
    assert default_directory() == tmp_path / "mine"


def test_env_directory_is_used_by_default(project, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KERNEL_LINT_CACHE_DIR", str(tmp_path / "env-cache"))
    lint(capsys, str(project))
    assert entries(tmp_path / "env-cache")


def test_unwritable_cache_directory_changes_nothing(project, tmp_path, capsys):
    (tmp_path / "file").write_text("not a directory")
    baseline = lint(capsys, "--no-cache", str(project))
    assert lint(capsys, "--cache-dir", str(tmp_path / "file" / "cache"), str(project)) == baseline


def test_cache_is_pruned_least_recently_used_first(tmp_path):
    files = []
    for index in range(40):
        path = tmp_path / f"nb{index}.py"
        path.write_text(f"x = {index}\n")
        files.append(path)
    cache = Cache(tmp_path / "cache", ["KG501"], 1 << 30, max_bytes=20 * 4096)
    finding = Finding("p", None, 1, 1, 1, 2, "KG501", "os-exit", "error", "m" * 2000)
    for index, path in enumerate(files):
        cache.store(str(path), f"{index:064x}", [finding], None)
        os.utime(cache._entry(str(path), f"{index:064x}"), (index, index))  # older first
    cache.prune()
    kept = entries(tmp_path / "cache")
    assert sum(entry.stat().st_blocks * 512 for entry in kept) <= 20 * 4096
    assert cache._entry(str(files[-1]), f"{39:064x}") in kept  # the most recent survives
    assert cache._entry(str(files[0]), f"{0:064x}") not in kept


def test_a_hit_needs_the_same_bytes_codes_and_budget(tmp_path):
    path = tmp_path / "a.py"
    path.write_text("import os\nos._exit(0)\n")
    cache = Cache(tmp_path / "cache", ["KG501"], 1 << 30)
    found, error, digest = runner.lint_file(str(path), _selection(), 1 << 30)
    cache.store(str(path), digest, found, error)
    assert found and cache.load(str(path)) == (found, None)
    assert Cache(tmp_path / "cache", ["KG501", "KG502"], 1 << 30).load(str(path)) is None
    assert Cache(tmp_path / "cache", ["KG501"], 1 << 31).load(str(path)) is None
    path.write_text("import os\nos._exit(1)\n")
    assert cache.load(str(path)) is None


def _selection():
    from kernel_guard.lint.engine import Selection

    return Selection()


def test_a_run_served_from_the_cache_imports_no_rule(project, tmp_path):
    """Importing the rules is most of a warm run's time."""
    probe = (
        "import sys\nfrom kernel_guard.cli import main\n"
        f"code = main(['--exit-zero', '--cache-dir', {str(tmp_path / 'cache')!r}, {str(project)!r}])\n"
        "print(code, 'libcst' in sys.modules, 'numpy' in sys.modules, 'kernel_guard.lint.registry' in sys.modules)"
    )

    def run() -> str:
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
        return done.stdout.splitlines()[-1]

    assert run() == "2 False False True"  # cold: the rules are imported to lint (libcst never, numpy in workers)
    assert run() == "2 False False False"  # warm: codes and results from the cache


def test_entries_that_fail_validation_are_misses(tmp_path, capsys):
    """Crafted entries (code null, message a dict, a finding for another file or
    code) are linted again, and every format renders the true result."""
    path = tmp_path / "a.py"
    path.write_text("import os\nos._exit(0)\n")
    cache_dir = tmp_path / "cache"
    baseline = {fmt: lint(capsys, "--format", fmt, "--no-cache", str(path)) for fmt in ("json", "sarif", "github")}
    lint(capsys, "--cache-dir", str(cache_dir), str(path))
    (entry,) = entries(cache_dir)
    good = json.loads(entry.read_text())
    row = good["findings"][0]
    crafted = [
        {**good, "findings": [[*row[:6], None, *row[7:]]]},
        {**good, "findings": [[*row[:9], {"text": "x"}, row[10]]]},
        {**good, "findings": [[*row[:6], "KG999", *row[7:]]]},
        {**good, "findings": [["other.py", *row[1:]]]},
        {**good, "findings": [[*row[:8], "fatal", *row[9:]]]},
        {**good, "findings": [[*row[:2], True, *row[3:]]]},
        {**good, "error": {"a": 1}},
        {"findings": {}, "error": None},
        [good],
    ]
    for data in crafted:
        entry.write_text(json.dumps(data))
        for fmt, expected in baseline.items():
            assert main(["--format", fmt, "--cache-dir", str(cache_dir), str(path)]) == expected[0]
            assert capsys.readouterr() == expected[1:]
            entry.write_text(json.dumps(data))


def test_a_crafted_rule_catalogue_is_a_miss(tmp_path, capsys):
    path = tmp_path / "a.py"
    path.write_text("import os\nos._exit(0)\n")
    cache_dir = tmp_path / "cache"
    expected = lint(capsys, "--no-cache", str(path))
    lint(capsys, "--cache-dir", str(cache_dir), str(path))
    (catalogue,) = cache_dir.glob("codes-*.json")
    for data in (["X"], [], ["KG501"], [None], {"KG001": 1}, "KG001"):
        catalogue.write_text(json.dumps(data))
        assert lint(capsys, "--cache-dir", str(cache_dir), str(path)) == expected
        assert lint(capsys, "--cache-dir", str(cache_dir), str(path)) == expected


def user_folder(folder: Path, count: int = 30) -> dict[str, bytes]:
    """A folder of the user's own JSON files, with a CACHEDIR.TAG of another tool."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        (folder / f"{index:064x}.json").write_bytes(json.dumps({"user": index, "pad": "x" * 4000}).encode())
    (folder / "CACHEDIR.TAG").write_text("Signature: 8a477f597d28d172789f06886806bc55\n# another tool\n")
    return {path.name: path.read_bytes() for path in folder.iterdir()}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}


def test_a_folder_that_is_not_a_kernel_lint_cache_is_used_through_its_own_subfolder(tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    before = user_folder(data)
    files = []
    for index in range(20):
        files.append(tmp_path / f"f{index}.py")
        files[-1].write_text(f"import os\nos._exit({index})\n")
    monkeypatch.setattr("kernel_guard.lint.cache.MAX_BYTES", 4096)  # prune on every run
    expected = lint(capsys, "--no-cache", *map(str, files))
    for _ in range(2):
        assert lint(capsys, "--cache-dir", str(data), *map(str, files)) == expected
    assert snapshot(data) == before  # nothing of the user's deleted or overwritten
    own = data / "kernel-lint-cache"
    assert (own / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55\n")
    assert list(own.glob("codes-*.json"))  # its entries were written there (and pruned there)


def test_prune_touches_only_its_own_entries(tmp_path):
    cache_dir = tmp_path / "cache"
    cache = Cache(cache_dir, ["KG501"], 1 << 30, max_bytes=4096)
    finding = Finding("p", None, 1, 1, 1, 2, "KG501", "os-exit", "error", "m" * 8000)
    cache.store("p", "0" * 64, [finding], None)  # creates and tags the folder
    for name in ("notes.json", "data.JSON", "results.json", "1234.json"):
        (cache_dir / name).write_text("mine" * 4000)
    for index in range(10):
        cache.store(f"p{index}", f"{index:064x}", [finding], None)
    cache.prune()
    assert {p.name for p in cache_dir.iterdir()} >= {"notes.json", "data.JSON", "results.json", "1234.json"}


def test_a_symlinked_cache_folder_is_never_followed_to_write(tmp_path, capsys):
    other = tmp_path / "other-tree"
    before = user_folder(other, count=3)
    link = tmp_path / "link"
    link.symlink_to(other)
    path = tmp_path / "a.py"
    path.write_text("import os\nos._exit(0)\n")
    expected = lint(capsys, "--no-cache", str(path))
    assert lint(capsys, "--cache-dir", str(link), str(path)) == expected
    assert snapshot(other) == before and [p.name for p in other.iterdir() if p.is_dir()] == []
    # A link to a folder that already is a kernel-lint cache is used as it is.
    real = tmp_path / "real-cache"
    lint(capsys, "--cache-dir", str(real), str(path))
    (tmp_path / "to-cache").symlink_to(real)
    count = len(list(real.iterdir()))
    assert lint(capsys, "--cache-dir", str(tmp_path / "to-cache"), str(path)) == expected
    assert len(list(real.iterdir())) == count  # a hit: nothing new written


def test_a_path_given_with_dot_slash_hits(tmp_path, capsys, monkeypatch):
    (tmp_path / "a.py").write_text("import os\nos._exit(0)\n")
    monkeypatch.chdir(tmp_path)
    first = lint(capsys, "--cache-dir", "cache", "./a.py")
    linted = count_lints(monkeypatch)
    assert lint(capsys, "--cache-dir", "cache", "./a.py") == first and linted == []
