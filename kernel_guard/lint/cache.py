"""Lint results on disk, one entry per file, so an unchanged file is not linted again.

Rules look across cells (a name bound in cell 2 is known in cell 5), so the unit
is the whole file: an entry is keyed by the SHA-256 of the file's bytes, its path
as reported, and everything else a finding can depend on — the enabled codes, the
memory budget, the Python version, the installed libraries that parse and
translate (libcst, IPython, nbformat, numpy: where and when installed), and a
hash of kernel_guard's own source, so that editing a rule invalidates every entry.

Entries are written to a temporary file and renamed into place (``os.replace``),
so concurrent runs never read half an entry; an entry that cannot be read is a
miss, and a directory that cannot be written only costs speed.  The directory
is pruned, least recently used first, past ``max_bytes``.

Importing the rules (libcst, numpy) is most of the time of a run where every
file hits, so the list of rule codes is kept in the cache too, keyed by the same
source hash: such a run imports no rule at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import astuple
from functools import cache
from pathlib import Path

from kernel_guard.lint.finding import Finding

SCHEMA = "1"  # bump when the entry layout changes
MAX_BYTES = 128 * 1024 * 1024
_DEPENDENCIES = ("libcst", "IPython", "nbformat", "numpy")
_STALE_TEMP = 3600  # seconds: a temporary file this old was left by a killed run


def default_directory() -> Path:
    """``$KERNEL_LINT_CACHE_DIR``, else ``$XDG_CACHE_HOME/kernel-lint``, else ``~/.cache/kernel-lint``."""
    explicit = os.environ.get("KERNEL_LINT_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"  # XDG: relative values are ignored
    return base / "kernel-lint"


def rule_codes(directory: str | Path | None) -> list[str]:
    """Every rule code: from the cache in ``directory`` when kernel_guard's source
    is unchanged, else by importing the rules (and then remembered there)."""
    catalogue = Path(directory) / f"codes-{_source_hash()}.json" if directory is not None else None
    if catalogue is not None:
        try:
            codes = json.loads(catalogue.read_bytes())
            if isinstance(codes, list) and codes and all(isinstance(code, str) for code in codes):
                return codes
        except (OSError, ValueError):
            pass  # missing or corrupt: import the rules
    from kernel_guard.lint.registry import all_rules

    codes = [rule.code for rule in all_rules()]
    if catalogue is not None:
        try:
            _prepare(catalogue.parent)
            _write(catalogue, json.dumps(codes))
        except OSError:
            pass  # an unwritable cache costs speed, nothing else
    return codes


class Cache:
    """The entries of one configuration (codes, budget, versions) in ``directory``."""

    def __init__(self, directory: str | Path, codes, mem_budget: int | None, max_bytes: int = MAX_BYTES) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._settings = _settings_key(codes, mem_budget)
        self._written = 0
        self._usable = True

    def load(self, path: str) -> tuple[list[Finding], str | None] | None:
        """The cached ``(findings, error)`` for ``path`` as it is now, or ``None``."""
        from kernel_guard.source import InputError, read_bytes

        try:
            entry = self._entry(path, hashlib.sha256(read_bytes(path)).hexdigest())
            with open(entry, "rb") as file:
                data = json.loads(file.read())
            result = [Finding(*row) for row in data["findings"]], data["error"]
            os.utime(entry)  # recently used: pruned last
            return result
        except (OSError, ValueError, TypeError, KeyError, InputError):
            return None  # missing, unreadable or corrupt: lint the file

    def store(self, path: str, digest: str, findings: list[Finding], error: str | None) -> None:
        """Remember the result of linting ``path`` whose bytes hash to ``digest``."""
        if not self._usable:
            return
        data = json.dumps({"findings": [astuple(f) for f in findings], "error": error}, separators=(",", ":"))
        try:
            if not self._written:
                _prepare(self.directory)
            _write(self._entry(path, digest), data)
        except OSError:
            # Read-only or full: lint on without writing.  Silent, because the cache
            # must never change what a run prints.
            self._usable = False
            return
        self._written += 1

    def prune(self) -> None:
        """Remove the least recently used entries past ``max_bytes`` (after writing only)."""
        if not self._written:
            return
        entries, total, now = [], 0, time.time()
        try:
            with os.scandir(self.directory) as scan:
                for item in scan:
                    stat = item.stat()
                    if item.name.startswith(".tmp-"):
                        if now - stat.st_mtime > _STALE_TEMP:
                            _remove(item.path)
                    elif item.name.endswith(".json"):
                        size = stat.st_blocks * 512 or stat.st_size  # on-disk size
                        entries.append((stat.st_mtime, size, item.path))
                        total += size
        except OSError:
            return
        if total <= self.max_bytes:
            return
        for _, size, path in sorted(entries):
            if total <= self.max_bytes * 0.8:  # leave room, so the next run does not prune again
                break
            _remove(path)
            total -= size

    def _entry(self, path: str, digest: str) -> Path:
        key = hashlib.sha256(f"{self._settings}\0{Path(path)}\0{digest}".encode("utf-8", "surrogateescape"))
        return self.directory / f"{key.hexdigest()}.json"


def _write(path: Path, data: str) -> None:
    """Write ``path`` whole or not at all: a temporary file renamed into place."""
    import tempfile

    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _prepare(directory: Path) -> None:
    """The directory, with a CACHEDIR.TAG so that backup tools skip it."""
    tag = directory / "CACHEDIR.TAG"
    if not tag.exists():
        directory.mkdir(parents=True, exist_ok=True)
        tag.write_text(
            "Signature: 8a477f597d28d172789f06886806bc55\n"
            "# This file is a cache directory tag created by kernel-lint; the directory can be deleted.\n"
        )


def _settings_key(codes, mem_budget: int | None) -> str:
    parts = [SCHEMA, sys.version, _source_hash(), ",".join(sorted(codes)), str(mem_budget)]
    parts.extend(_installed(name) for name in _DEPENDENCIES)
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _installed(name: str) -> str:
    """Where a dependency is installed and when: an upgrade rewrites it.  (Found
    without importing it, and without importlib.metadata, which costs more.)"""
    from importlib.util import find_spec

    spec = find_spec(name)
    if spec is None or spec.origin is None:
        return f"{name}: absent"
    try:
        return f"{name}: {spec.origin} {os.stat(spec.origin).st_mtime_ns}"
    except OSError:
        return f"{name}: {spec.origin}"


@cache
def _source_hash() -> str:
    """Every file of the kernel_guard package (rules, engine, data): any edit invalidates the cache."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass  # another run pruned it first
