"""What `pip install kernel-guard` gives works: the built wheel, installed (not editable) into a fresh
venv outside the checkout, lints, imports every module, guards a cell in a real kernel of that venv,
and serves as a pre-commit hook.

One wheel and one venv per session (about 20 s); the pre-commit check adds about 20 s. Every
subprocess runs with its working directory outside the checkout, so nothing is imported from it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from kernel_guard.cli import main as editable_lint

pytestmark = pytest.mark.install

ROOT = Path(__file__).resolve().parent.parent
IGNORED = shutil.ignore_patterns(
    ".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis",
    ".ipynb_checkpoints", ".mypy_cache", ".ruff_cache",
)


@dataclass
class Installed:
    wheel: Path
    source: Path  # a git repository holding a copy of the checkout, as a clone would
    venv: Path
    work: Path  # the working directory of every command: outside the checkout
    env: dict[str, str]

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(argv, cwd=self.work, env=self.env, capture_output=True, text=True, timeout=timeout)

    def python(self, code: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return self.run(self.bin("python"), "-c", code, timeout=timeout)


def _check(process: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert process.returncode == 0, f"{process.args}\n{process.stdout}\n{process.stderr}"
    return process


def _git(cwd: Path, *argv: str) -> None:
    _check(subprocess.run(["git", "-c", "user.name=kg", "-c", "user.email=kg@test", *argv], cwd=cwd,
                          capture_output=True, text=True, timeout=60))


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> Installed:
    tmp = tmp_path_factory.mktemp("wheel")
    source, dist, venv, work = tmp / "source", tmp / "dist", tmp / "venv", tmp / "work"
    shutil.copytree(ROOT, source, ignore=IGNORED)  # what a clone has, with this worktree's changes
    if shutil.which("git"):  # a repository, for pre-commit
        _git(source, "init", "-q")
        _git(source, "add", "-A")
        _git(source, "commit", "-q", "-m", "snapshot")
    work.mkdir()
    env = dict(os.environ, KERNEL_LINT_CACHE_DIR=str(tmp / "cache"), PRE_COMMIT_HOME=str(tmp / "pre-commit"),
               IPYTHONDIR=str(tmp / "ipython"), XDG_STATE_HOME=str(tmp / "state"), PYDEVD_DISABLE_FILE_VALIDATION="1")
    env.pop("PYTHONPATH", None)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    run = {"cwd": work, "env": env, "capture_output": True, "text": True, "timeout": 300}
    _check(subprocess.run([*pip, "wheel", "--no-deps", "-w", str(dist), str(source)], **run))
    (wheel,) = dist.glob("kernel_guard-*.whl")
    _check(subprocess.run([sys.executable, "-m", "venv", str(venv)], **run))
    # A regular install of the wheel and its dependencies by the venv's own pip, plus what a user adds:
    # a kernel, pre-commit.
    _check(subprocess.run([str(venv / "bin" / "python"), *pip[1:], "install", str(wheel), "ipykernel", "pre-commit"],
                          **run))
    return Installed(wheel, source, venv, work, env)


def _wheel_modules(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    return sorted(name[:-3].replace("/", ".").removesuffix(".__init__") for name in names if name.endswith(".py"))


def test_wheel_carries_every_module_of_the_source(installed):
    source = sorted(
        str(path.relative_to(ROOT).with_suffix("")).replace(os.sep, ".").removesuffix(".__init__")
        for path in (ROOT / "kernel_guard").rglob("*.py") if "__pycache__" not in path.parts
    )
    assert _wheel_modules(installed.wheel) == source


def test_every_module_imports_from_the_installed_wheel(installed):
    modules = _wheel_modules(installed.wheel)
    result = _check(installed.python(
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "import kernel_guard\n"
        "print(json.dumps([kernel_guard.__file__, sorted(m for m in sys.modules if m.startswith('kernel_guard'))]))"
    ))
    origin, imported = json.loads(result.stdout)
    assert Path(origin).is_relative_to(installed.venv)
    assert imported == modules


def _lint_json(argv_prefix: list[str], examples: Path, installed: Installed) -> list[dict]:
    result = installed.run(*argv_prefix, "--format", "json", "--mem-budget", "16G", "--no-cache", str(examples))
    assert result.returncode == 1, result.stderr  # the examples have findings
    return json.loads(result.stdout)


def test_installed_kernel_lint_finds_what_the_editable_install_finds(installed, capsys):
    assert _check(installed.run(installed.bin("kernel-lint"), "--version")).stdout.strip() == "kernel-lint 0.1.0"
    examples = installed.source / "examples"
    installed_findings = _lint_json([installed.bin("kernel-lint")], examples, installed)
    assert editable_lint(["--format", "json", "--mem-budget", "16G", "--no-cache", "-j", "1", str(examples)]) == 1
    assert installed_findings == json.loads(capsys.readouterr().out)
    assert {Path(finding["path"]).name for finding in installed_findings} >= {"05_exit_and_kernel_killers.ipynb"}
    assert _lint_json([installed.bin("python"), "-m", "kernel_guard"], examples, installed) == installed_findings


def test_installed_python_m_kernel_guard_lists_its_commands(installed):
    help_text = _check(installed.run(installed.bin("python"), "-m", "kernel_guard", "--help")).stdout
    for command in ("lint", "doctor", "enable", "disable"):
        assert f"\n  {command}" in help_text or f"[{command}]" in help_text
    assert "memory" in _check(installed.run(installed.bin("python"), "-m", "kernel_guard", "doctor")).stdout


_KERNEL = r"""
import json, sys, tempfile
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

# Only the native kernel, this venv's own python: not a kernelspec installed elsewhere on the machine.
specs = KernelSpecManager(kernel_dirs=[], ensure_native_kernel=True)
km = KernelManager(kernel_name="python3", kernel_spec_manager=specs, transport="ipc", ip=tempfile.mkdtemp() + "/ipc")
km.start_kernel()
kc = km.client()
kc.start_channels()
results = []
try:
    kc.wait_for_ready(timeout=60)
    for code in json.loads(sys.argv[1]):
        out, errors = [], []

        def hook(msg):  # what the user reads: streams, plain-text displays, error values
            content = msg["content"]
            out.append(content.get("text", "") + content.get("data", {}).get("text/plain", ""))
            if msg["msg_type"] == "error":
                errors.append(content["ename"])
                out.append(content["evalue"])

        reply = kc.execute_interactive(code, timeout=60, output_hook=hook)
        results.append({"status": reply["content"]["status"], "out": "\n".join(out), "errors": errors,
                        "alive": km.is_alive()})
finally:
    kc.stop_channels()
    km.shutdown_kernel(now=True)
print(json.dumps(results))
"""


def test_guard_in_a_kernel_of_the_installed_venv(installed):
    cells = [
        "%load_ext kernel_guard\nimport kernel_guard, sys\nprint(kernel_guard.__file__, sys.executable)",
        "%%guard\nprint('leaving')\nexit()",
        "%%guard\nimport os\nos._exit(3)",
        "%%guard -v\ntotal = sum(range(10))\nprint('total', total)",
    ]
    result = _check(installed.run(installed.bin("python"), "-c", _KERNEL, json.dumps(cells), timeout=240))
    loaded, exit_cell, os_exit_cell, normal = json.loads(result.stdout.splitlines()[-1])
    origin, executable = loaded["out"].split()
    assert Path(origin).is_relative_to(installed.venv) and Path(executable).parent == installed.venv / "bin"
    for refused, code in ((exit_cell, "KG504"), (os_exit_cell, "KG501")):
        assert refused["errors"] == ["GuardRefused"] and code in refused["out"] and refused["alive"], refused
        assert "leaving" not in refused["out"] and "skipped" not in refused["out"]
    assert normal["status"] == "ok" and "total 45" in normal["out"] and normal["alive"], normal


def test_pre_commit_hook_from_a_clone(installed, tmp_path):
    """`pre-commit try-repo` installs the hook repository as pre-commit does (a regular pip install
    in an environment of its own) and runs the hook on a staged notebook."""
    if shutil.which("git") is None:
        pytest.skip("pre-commit needs git, which is not installed")
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "examples" / "05_exit_and_kernel_killers.ipynb", project / "analysis.ipynb")
    (project / "clean.py").write_text("print('hello')\n")
    _git(project, "init", "-q")
    _git(project, "add", "-A")
    result = subprocess.run([installed.bin("pre-commit"), "try-repo", str(installed.source), "kernel-lint",
                             "--files", "analysis.ipynb", "clean.py"],
                            cwd=project, env=installed.env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr  # findings fail the hook
    assert "analysis.ipynb:cell 5:4:5: KG504" in result.stdout
    assert "ModuleNotFoundError" not in result.stdout + result.stderr and "clean.py" not in result.stdout
