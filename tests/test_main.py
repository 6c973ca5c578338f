"""``python -m kernel_guard``: its commands, a working directory it never imports from, and
``enable`` / ``disable``, checked in real kernels started afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from kernel_harness import Kernel

from kernel_guard import enable

# Modules kernel_guard imports after `python -m` has put the working directory on sys.path.
TRAPPED = ["numpy", "libcst", "nbformat", "psutil", "IPython", "traitlets", "argparse", "json", "tomllib",
           "concurrent", "hashlib", "tempfile", "textwrap", "dataclasses", "typing", "fnmatch"]


def python_m(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kernel_guard", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def test_help_lists_every_command(tmp_path):
    result = python_m("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m kernel_guard [lint]")
    for line in ("[lint] PATH...", "doctor ", "enable [--auto]", "disable "):
        assert f"\n  {line}" in result.stdout
    assert "--mem-budget" in result.stdout  # the linter's options follow
    assert python_m("lint", "--help", cwd=tmp_path).stdout == result.stdout
    assert "--auto" in python_m("enable", "--help", cwd=tmp_path).stdout


def test_lint_is_the_default_and_a_command(tmp_path):
    (tmp_path / "job.py").write_text("import os\nos._exit(1)\n")
    for args in (["--no-cache", "job.py"], ["lint", "--no-cache", "job.py"]):
        result = python_m(*args, cwd=tmp_path)
        assert result.returncode == 1 and result.stdout.startswith("job.py:2:1: KG501"), result


def test_never_imports_a_module_from_the_working_directory(tmp_path):
    """Issue 12 item 7: a `libcst.py` or `numpy.py` beside the notebooks must not run."""
    marks = tmp_path / "marks"
    marks.mkdir()
    trap = tmp_path / "folder"
    trap.mkdir()
    for name in TRAPPED:
        (trap / f"{name}.py").write_text(f"open({str(marks / name)!r}, 'w').close()\nraise SystemExit(99)\n")
    (trap / "nb.py").write_text("import numpy as np\nx = np.zeros((10, 10))\n")
    env = {"IPYTHONDIR": str(tmp_path / "ipython"), "KERNEL_LINT_CACHE_DIR": str(tmp_path / "cache")}
    for args, status in ((["."], 0), (["lint", "nb.py"], 0), (["--help"], 0), (["--version"], 0),
                         (["doctor"], 0), (["doctor", "--json"], 0), (["enable"], 0), (["disable"], 0)):
        result = python_m(*args, cwd=trap, env=env)
        assert result.returncode == status, (args, result.stdout, result.stderr)
        assert sorted(os.listdir(marks)) == [], args


# -- enable / disable ------------------------------------------------------------------


@pytest.fixture
def ipythondir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    return tmp_path / "ipython"


def config(ipythondir: Path) -> Path:
    return ipythondir / "profile_default" / "ipython_kernel_config.py"


def test_enable_creates_the_config_and_disable_removes_it(ipythondir, capsys):
    assert enable.main("enable", []) == 0
    assert "created" in capsys.readouterr().out
    assert 'c.InteractiveShellApp.extensions.append("kernel_guard")' in config(ipythondir).read_text()
    assert "KernelGuard.auto" not in config(ipythondir).read_text()
    assert enable.main("disable", []) == 0
    assert not config(ipythondir).exists()
    assert enable.main("disable", []) == 0 and "not enabled" in capsys.readouterr().out


@pytest.mark.parametrize("original", [
    b"",
    b"c.KernelGuard.max_mem = '4G'\n",
    b"c = get_config()\r\nc.InteractiveShellApp.exec_lines = ['x = 1']",  # CRLF, no newline at the end
])
def test_enable_is_idempotent_and_disable_restores_the_bytes(ipythondir, original, capsys):
    path = config(ipythondir)
    path.parent.mkdir(parents=True)
    path.write_bytes(original)
    path.chmod(0o600)
    assert enable.main("enable", []) == 0
    once = path.read_bytes()
    assert once.startswith(original) and enable.main("enable", []) == 0 and path.read_bytes() == once
    assert "already enabled" in capsys.readouterr().out
    assert enable.main("enable", ["--auto"]) == 0 and b"c.KernelGuard.auto = True" in path.read_bytes()
    assert enable.main("enable", []) == 0 and path.read_bytes() == once  # --auto off again
    assert enable.main("disable", []) == 0
    assert path.read_bytes() == original and path.stat().st_mode & 0o777 == 0o600


def test_a_symlinked_config_stays_a_symlink(ipythondir, tmp_path):
    dotfiles = tmp_path / "dotfiles" / "kernel_config.py"
    dotfiles.parent.mkdir()
    dotfiles.write_text("c.KernelGuard.timeout = 60\n")
    config(ipythondir).parent.mkdir(parents=True)
    config(ipythondir).symlink_to(dotfiles)
    assert enable.main("enable", []) == 0
    assert config(ipythondir).is_symlink() and "kernel_guard" in dotfiles.read_text()
    assert enable.main("disable", []) == 0
    assert config(ipythondir).is_symlink() and dotfiles.read_text() == "c.KernelGuard.timeout = 60\n"


def test_lines_the_user_added_after_the_block_are_kept(ipythondir):
    assert enable.main("enable", ["--auto"]) == 0
    path = config(ipythondir)
    path.write_text(path.read_text() + "c.KernelGuard.timeout = 600\n")
    assert enable.main("disable", []) == 0
    assert path.read_text() == "c.KernelGuard.timeout = 600\n"


def test_a_block_edited_by_hand_is_left_alone(ipythondir, capsys):
    assert enable.main("enable", []) == 0
    path = config(ipythondir)
    edited = path.read_text().replace(enable.END, "# the end")
    path.write_text(edited)
    assert enable.main("disable", []) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "edited by hand" in err
    assert path.read_text() == edited


def _guard_status(kernel: Kernel) -> str:
    loaded = kernel.eval("sorted(get_ipython().extension_manager.loaded)")
    return f"{loaded}\n{kernel.run('%guard').text}" if "kernel_guard" in loaded else str(loaded)


def test_kernels_started_after_enable_load_the_extension(tmp_path):
    ipythondir = tmp_path / "ipython"
    path = config(ipythondir)
    path.parent.mkdir(parents=True)
    users = b"c = get_config()\nc.KernelGuard.max_mem = '3G'\n"
    path.write_bytes(users)
    env = {"IPYTHONDIR": str(ipythondir)}

    assert python_m("enable", "--auto", cwd=tmp_path, env=env).returncode == 0
    with Kernel("enable-auto", env=env) as kernel:
        status = _guard_status(kernel)
    assert "kernel_guard" in status and "auto mode on" in status and "3.0 GiB" in status, status

    assert python_m("enable", cwd=tmp_path, env=env).returncode == 0
    with Kernel("enable", env=env) as kernel:
        status = _guard_status(kernel)
    assert "kernel_guard" in status and "auto mode off" in status, status

    assert python_m("disable", cwd=tmp_path, env=env).returncode == 0
    assert path.read_bytes() == users
    with Kernel("disabled", env=env) as kernel:
        assert "kernel_guard" not in _guard_status(kernel)


def test_a_kernel_that_cannot_load_the_extension_still_starts(tmp_path):
    """enable is per user: kernels of other environments read the same config."""
    ipythondir = tmp_path / "ipython"
    broken = tmp_path / "elsewhere" / "kernel_guard"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('a broken install')\n")
    env = {"IPYTHONDIR": str(ipythondir)}
    assert python_m("enable", "--auto", cwd=tmp_path, env=env).returncode == 0
    with Kernel("enable-broken", env={**env, "PYTHONPATH": str(broken.parent)}) as kernel:
        assert kernel.eval("6 * 7") == 42
        assert "kernel_guard" not in kernel.eval("sorted(get_ipython().extension_manager.loaded)")
