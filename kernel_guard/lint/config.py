"""``[tool.kernel-lint]`` from the nearest ``pyproject.toml``."""

from __future__ import annotations

from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

KEYS = {"select", "ignore", "mem-budget", "format", "statistics", "exit-zero", "jobs", "cache"}


class ConfigError(ValueError):
    """A bad ``[tool.kernel-lint]`` table; the message is one line."""


def find_pyproject(start: Path) -> Path | None:
    start = start.resolve()
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
        raise ConfigError(f"{path}: unknown key {unknown[0]!r} in [tool.kernel-lint] (known: {', '.join(sorted(KEYS))})")
    for key in ("select", "ignore"):
        if isinstance(table.get(key), str):
            table[key] = [code for code in table[key].split(",") if code.strip()]
    return table
