"""Memory sizes as users write them (``4G``, ``512MiB``, ``80%``) and as we print them."""

from __future__ import annotations

import math
import re

_UNITS = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*%\s*$")


def parse_size(text: str, *, total: int | None = None) -> int:
    """Bytes for ``text``: an integer, a number with K/M/G/T (powers of 1024,
    ``KB``/``KiB``/lower case accepted), or a percentage of ``total``.

    Raises ``ValueError`` with a one-line message naming the bad value.
    """
    text = str(text)
    match = _PERCENT.match(text)
    if match:
        if total is None:
            raise ValueError(f"invalid size {text!r}: a percentage needs a known total")
        percent = float(match.group(1))
        if not 0 < percent <= 100:
            raise ValueError(f"invalid size {text!r}: a percentage must be in (0, 100]")
        return int(total * percent / 100)
    match = _SIZE.match(text)
    if not match or (match.group(3) and not match.group(2) and match.group(3).lower() == "ib"):
        raise ValueError(
            f"invalid size {text!r}: use bytes or a number with K, M, G or T (e.g. 512M, 4G, 80%)"
        )
    value = float(match.group(1)) * 1024 ** _UNITS[match.group(2).upper()]
    if value < 1:
        raise ValueError(f"invalid size {text!r}: must be at least one byte")
    if not math.isfinite(value):
        raise ValueError(f"invalid size {text[:40]!r}: too large")
    return int(value)


def format_bytes(nbytes: float) -> str:
    """``74.5 GiB``, ``512 MiB``, ``12 B``: one decimal place above KiB, like numpy;
    sizes past a float (``10**400`` bytes, statically estimated) in powers of ten."""
    if isinstance(nbytes, int) and abs(nbytes) >= _HUGE:
        return f"{_power_of_ten(nbytes // 1024**4)} TiB"
    nbytes = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(nbytes) < 1024 or unit == "TiB":
            break
        nbytes /= 1024
    if unit == "B":
        return f"{int(nbytes)} B"
    return f"{nbytes:.1e} {unit}" if abs(nbytes) >= 1e6 else f"{nbytes:.1f} {unit}"


_HUGE = 10**6 * 1024**4  # a million TiB: no memory holds it, and an int may be past any float


def _power_of_ten(value: int) -> str:
    """``1.2e+389`` for an int of any size, without converting it to float or str."""
    sign, value = ("-" if value < 0 else ""), abs(value)
    exponent = int(math.log10(value))
    while 10**exponent > value:  # log10 rounds: correct by at most a step
        exponent -= 1
    while 10 ** (exponent + 1) <= value:
        exponent += 1
    mantissa = value // 10 ** max(exponent - 1, 0)
    return f"{sign}{mantissa // 10}.{mantissa % 10}e+{exponent}"


def format_shape(shape: tuple[int, ...]) -> str:
    """``100,000 × 100,000``, as numpy users read a shape in our messages (``""`` for a scalar's)."""
    return " × ".join(f"{d:,}" for d in shape)
