"""The doctor's warning for a nearly full disk where the kernel works, on a real tmpfs."""

from __future__ import annotations

import os

from kgtest_tmpfs import tmpfs

from kernel_guard.doctor import doctor


def working_directory(path: str):
    return next(c for c in doctor(cwd=path).checks if c.label == "working directory")


def test_warns_when_the_working_directorys_disk_is_almost_full():
    with tmpfs("64m", "doctor-disk") as path:
        with open(os.path.join(path, "data.bin"), "wb") as f:
            f.write(b"\0" * (62 << 20))
        check = working_directory(path)
        assert check.value.startswith(f"{path}: 2.0 MiB free of 64.0 MiB")
        assert check.warning.startswith("the disk of the working directory is almost full (97% used)")
        assert "%%guard --max-disk" in check.warning
    with tmpfs("4g", "doctor-disk") as path:  # a size tmpfs only caps: nothing is taken
        assert working_directory(path).warning is None
