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

The cache never deletes or overwrites a file it did not write: it writes only in
a folder it created and tagged (``CACHEDIR.TAG`` naming kernel-lint).  A
``--cache-dir`` that exists and is not such a folder is used through its
subfolder ``kernel-lint-cache``; a symlink to a folder that is not one already,
or a subfolder of that name that is not ours, disables the cache for the run.
Every entry read is validated field by field; one that fails is a miss.

Importing the rules (libcst, numpy) is most of the time of a run where every
file hits, so the list of rule codes is kept in the cache too, keyed by the same
source hash: such a run imports no rule at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import sys
import time
from dataclasses import astuple
from functools import cache
from pathlib import Path

from kernel_guard.lint.finding import Finding

SCHEMA = "1"  # bump when the entry layout changes
SUBFOLDER = "kernel-lint-cache"
_TAG_NAME = "CACHEDIR.TAG"
_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by kernel-lint; the directory can be deleted.\n"
)
_ENTRY = re.compile(r"[0-9a-f]{64}\.json")
_CODE = re.compile(r"KG[0-9]{3}")
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
    owned = owned_directory(directory) if directory is not None else None
    catalogue = owned / f"codes-{_source_hash()}.json" if owned is not None else None
    if catalogue is not None:
        try:
            codes = json.loads(_read_regular(catalogue))
            if type(codes) is list and "KG001" in codes and all(type(c) is str and _CODE.fullmatch(c) for c in codes):
                return codes
        except (OSError, ValueError, RecursionError):
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

    def __init__(self, directory: str | Path, codes, mem_budget: int | None, max_bytes: int | None = None) -> None:
        owned = owned_directory(directory)
        self.directory = Path(directory) if owned is None else owned
        self.max_bytes = MAX_BYTES if max_bytes is None else max_bytes
        self._codes = frozenset(codes)
        self._settings = _settings_key(codes, mem_budget)
        self._written = 0
        self._usable = owned is not None

    def load(self, path: str) -> tuple[list[Finding], str | None] | None:
        """The cached ``(findings, error)`` for ``path`` as it is now, or ``None``."""
        from kernel_guard.source import InputError, read_bytes

        if not self._usable:
            return None
        try:
            entry = self._entry(path, hashlib.sha256(read_bytes(path)).hexdigest())
            result = self._valid(json.loads(_read_regular(entry)), path)
            if result is not None:
                os.utime(entry, follow_symlinks=False)  # recently used: pruned last
            return result
        except (OSError, ValueError, RecursionError, InputError):
            return None  # missing, unreadable or corrupt: lint the file

    def _valid(self, data: object, path: str) -> tuple[list[Finding], str | None] | None:
        """The entry's result if every field has the type and value a run of this configuration writes."""
        if type(data) is not dict or type(data.get("findings")) is not list:
            return None
        error = data.get("error")
        if not (error is None or type(error) is str):
            return None
        reported_as = str(Path(path))  # as parse_document names it (``./nb.ipynb`` -> ``nb.ipynb``)
        findings = []
        for row in data["findings"]:
            if type(row) is not list or len(row) != len(_FIELDS):
                return None
            if not all(check(value) for check, value in zip(_FIELDS, row)):
                return None
            finding = Finding(*row)
            if finding.path != reported_as or finding.code not in self._codes:
                return None
            findings.append(finding)
        return findings, error

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
                    if not item.is_file(follow_symlinks=False):
                        continue
                    info = item.stat(follow_symlinks=False)
                    if item.name.startswith(".tmp-") and item.name.endswith(".json"):
                        if now - info.st_mtime > _STALE_TEMP:
                            _remove(item.path)
                    elif _ENTRY.fullmatch(item.name):  # an entry of ours: nothing else is ever pruned
                        size = info.st_blocks * 512 or info.st_size  # on-disk size
                        entries.append((info.st_mtime, size, item.path))
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
    """The directory, unless it is already a kernel-lint cache: made whole, with
    its CACHEDIR.TAG (which backup tools skip), under a temporary name and renamed
    into place, so that it never adopts a folder someone else made meanwhile."""
    if _is_ours(directory):
        return
    import tempfile

    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=".kernel-lint-"))
    (staging / _TAG_NAME).write_text(_TAG, encoding="utf-8")
    try:
        os.rename(staging, directory)  # fails on anything but a missing (or empty) folder
    except OSError:
        os.unlink(staging / _TAG_NAME)
        os.rmdir(staging)
        if not _is_ours(directory):  # else a concurrent run made it first
            raise


def owned_directory(directory: str | Path) -> Path | None:
    """Where the cache for ``directory`` lives: the folder itself if it is a
    kernel-lint cache or does not exist yet, else its subfolder ``kernel-lint-cache``
    under the same rule; ``None`` when neither may be written (a symlink into a
    tree that is not a kernel-lint cache, a file, a foreign folder of that name)."""
    directory = Path(directory)
    for candidate in (directory, directory / SUBFOLDER):
        if _is_ours(candidate) or not os.path.lexists(candidate):
            return candidate
        if not os.path.isdir(candidate) or os.path.islink(candidate):
            return None
    return None


def _is_ours(directory: Path) -> bool:
    try:
        return _read_regular(directory / _TAG_NAME, limit=4096).decode("utf-8", "replace") == _TAG
    except OSError:
        return False


def _read_regular(path: Path, limit: int = 64 * 2**20) -> bytes:
    """A regular file's bytes (a FIFO or device planted in the cache is never read)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            raise OSError(f"{path}: not a cache file")
        return file.read(limit)


def _is_int(value: object) -> bool:
    return type(value) is int


def _is_str(value: object) -> bool:
    return type(value) is str


# One check per Finding field, in order: exact types, as ``astuple`` wrote them.
_FIELDS = (
    _is_str,
    lambda v: v is None or (type(v) is int and v > 0),
    _is_int,
    _is_int,
    _is_int,
    _is_int,
    _is_str,
    _is_str,
    lambda v: v in ("error", "warning"),
    _is_str,
    lambda v: v is None or type(v) is int,
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
