"""The doctor's warning for a nearly full disk where the kernel works, on a real tmpfs."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile

import pytest

from kernel_guard.doctor import doctor


@contextlib.contextmanager
def tmpfs(size: str):
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    path = tempfile.mkdtemp(prefix="kgtest-doctor-disk-")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        os.rmdir(path)
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", path], check=True)
        os.rmdir(path)


def working_directory(path: str):
    return next(c for c in doctor(cwd=path).checks if c.label == "working directory")


def test_warns_when_the_working_directorys_disk_is_almost_full():
    with tmpfs("64m") as path:
        with open(os.path.join(path, "data.bin"), "wb") as f:
            f.write(b"\0" * (62 << 20))
        check = working_directory(path)
        assert check.value.startswith(f"{path}: 2.0 MiB free of 64.0 MiB")
        assert check.warning.startswith("the disk of the working directory is almost full (97% used)")
        assert "%%guard --max-disk" in check.warning
    with tmpfs("4g") as path:  # a size tmpfs only caps: nothing is taken
        assert working_directory(path).warning is None
