"""``[tool.kernel-lint]`` from the nearest ``pyproject.toml``."""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

KEYS = {"select", "ignore", "mem-budget", "format", "statistics", "exit-zero", "jobs", "cache"}


class ConfigError(ValueError):
    """A bad ``[tool.kernel-lint]`` table; the message is one line."""


def find_pyproject(start: Path) -> Path | None:
    try:
        start = start.resolve()
    except (OSError, RuntimeError):  # a symlink loop: the path itself is reported by the caller
        try:
            start = start.absolute()
        except OSError:  # a relative path in a working directory that was deleted: no configuration
            return None
    for folder in [start, *start.parents] if start.is_dir() else start.parents:
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_config(start: Path) -> dict:
    """The table, keys as written (``mem-budget``), lists for select/ignore."""
    path = find_pyproject(start)
    if path is None:
        return {}
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {}).get("kernel-lint", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.kernel-lint] must be a table")
    unknown = sorted(set(table) - KEYS)
    if unknown:
        known = ", ".join(sorted(KEYS))
        raise ConfigError(f"{path}: unknown key {unknown[0]!r} in [tool.kernel-lint] (known: {known})")
    for key in ("select", "ignore"):
        if isinstance(table.get(key), str):
            table[key] = [code for code in table[key].split(",") if code.strip()]
    for key, value in table.items():
        if not _TYPES[key][0](value):
            raise ConfigError(f"{path}: [tool.kernel-lint] {key} must be {_TYPES[key][1]}, not {value!r}"[:300])
    return table


def _is_codes(value: object) -> bool:
    return type(value) is list and all(type(code) is str for code in value)


# key -> (check, what it must be), for a one-line error naming the key
_TYPES = {
    "select": (_is_codes, "a list of codes such as [\"KG1\", \"KG201\"]"),
    "ignore": (_is_codes, "a list of codes such as [\"KG1\", \"KG201\"]"),
    "mem-budget": (lambda v: type(v) in (str, int), "a size such as \"16G\" or \"80%\""),
    "format": (lambda v: type(v) is str, "a format name"),
    "statistics": (lambda v: type(v) is bool, "true or false"),
    "exit-zero": (lambda v: type(v) is bool, "true or false"),
    "jobs": (lambda v: type(v) is int and v >= 1, "a positive whole number"),
    "cache": (lambda v: type(v) is bool, "true or false"),
}
