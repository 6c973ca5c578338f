"""``python -m kernel_guard enable [--auto]`` / ``disable``: every IPython kernel of this user loads the extension.

``enable`` appends one marked block to the default profile's ``ipython_kernel_config.py`` (which
kernels read and terminal IPython does not), creating the file if there is none; ``disable``
removes exactly that block, so the file is byte for byte what it was (or gone, if enable made it).
The user's own lines are never rewritten.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

CONFIG_NAME = "ipython_kernel_config.py"
START = "# >>> kernel_guard >>> added by `python -m kernel_guard enable`; `python -m kernel_guard disable` removes it"
END = "# <<< kernel_guard <<<"
# `enable` appends "\n" + block to a file that exists (which also ends the user's last line), and writes the
# block alone to a file it creates: a block at offset 0 means "enable created this file".
BODY = """\
import importlib.util
c = get_config()  # noqa: F821 (IPython provides it)
if importlib.util.find_spec("kernel_guard"):  # kernels of environments without kernel_guard start as before
    c.InteractiveShellApp.extensions.append("kernel_guard")  # loaded before the first cell, crash recorder too
"""
AUTO = 'c.KernelGuard.auto = True  # guard every cell, as `%guard on` does\n'


class EnableError(Exception):
    """The config file cannot be read or written as it is; reported in one line."""


def config_path() -> Path:
    """The default profile's kernel config, under $IPYTHONDIR (IPython's own rule for finding it)."""
    from IPython.paths import get_ipython_dir

    return Path(get_ipython_dir()) / "profile_default" / CONFIG_NAME


def block(auto: bool) -> str:
    return f"{START}\n{BODY}{AUTO if auto else ''}{END}\n"


def find_block(text: str) -> tuple[int, int, bool] | None:
    """Start and end of the block enable added (with the newline before it when the file was the user's),
    and whether enable created the file."""
    start = text.find(START + "\n")
    if start < 0:
        return None
    end = text.find("\n" + END + "\n", start)
    if end < 0 or text.find(START + "\n", start + 1) >= 0:
        raise EnableError(f"the kernel_guard block of {config_path()} was edited by hand; remove it yourself")
    if start == 0:
        return 0, end + len(END) + 2, True
    if text[start - 1] != "\n":
        raise EnableError(f"the kernel_guard block of {config_path()} was edited by hand; remove it yourself")
    return start - 1, end + len(END) + 2, False


def read(path: Path) -> str | None:
    try:
        with open(path, encoding="utf-8", newline="") as file:  # newline="": keep \r\n as it is
            return file.read()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise EnableError(f"cannot read {path}: {error}") from None


def write(path: Path, text: str) -> None:
    """Replace the file in one step, keeping its permissions, so that a kernel starting now reads old or new;
    through a symlink (dotfiles kept elsewhere), so that it stays one."""
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.kernel_guard.tmp")
    try:
        mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
        with open(tmp, "w", encoding="utf-8", newline="") as file:
            file.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise EnableError(f"cannot write {path}: {error}") from None


def enable(auto: bool) -> str:
    path = config_path()
    text = read(path)
    if text is None:
        write(path, block(auto))
        return f"created {path}"
    found = find_block(text)
    if found is None:
        write(path, text + "\n" + block(auto))
        return f"added the kernel_guard block to {path}"
    start, end, created = found
    new = text[:start] + ("" if created else "\n") + block(auto) + text[end:]
    if new == text:
        return f"already enabled in {path}"
    write(path, new)
    return f"updated the kernel_guard block of {path}"


def disable() -> str:
    path = config_path()
    text = read(path)
    found = None if text is None else find_block(text)
    if text is None or found is None:
        return f"not enabled: {path} has no kernel_guard block"
    start, end, created = found
    rest = text[:start] + text[end:]
    if created and not rest:  # enable created the file and nobody added to it
        try:
            path.unlink()
        except OSError as error:
            raise EnableError(f"cannot remove {path}: {error}") from None
        return f"removed {path} (enable had created it)"
    write(path, rest)
    return f"removed the kernel_guard block from {path}"


def main(command: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m kernel_guard {command}",
        description="Load kernel_guard in every IPython kernel of this user (the default profile's "
        f"{CONFIG_NAME}, under $IPYTHONDIR)." if command == "enable" else "Undo `python -m kernel_guard enable`.",
    )
    if command == "enable":
        parser.add_argument("--auto", action="store_true", help="also guard every cell (auto mode, as `%%guard on`)")
    args = parser.parse_args(argv)
    try:
        done = enable(args.auto) if command == "enable" else disable()
    except EnableError as error:
        print(f"python -m kernel_guard {command}: {error}", file=sys.stderr)
        return 2
    print(f"kernel_guard: {done}")
    if command == "enable":
        print("  new kernels load it; restart running kernels (or `%load_ext kernel_guard` in them)")
    else:
        print("  new kernels no longer load it")
    return 0
