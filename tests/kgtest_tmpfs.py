"""A throw-away tmpfs for tests that really fill a filesystem: mounted on a new folder,
unmounted and removed afterwards. Skips where this machine cannot mount one."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator

import pytest


@contextlib.contextmanager
def tmpfs(size: str, purpose: str) -> Iterator[str]:
    """Yield the path of a tmpfs of ``size`` (``64m``, as mount takes it)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    path = tempfile.mkdtemp(prefix=f"kgtest-{purpose}-")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", f"kgtest-{purpose}", path],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        os.rmdir(path)
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", path], check=True)
        os.rmdir(path)
