"""Which rules run; no rule imported here, so that a run served from the cache
never pays for importing the rules (libcst, numpy)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Selection:
    """Which rules run: ``select``/``ignore`` are code prefixes (``KG1``, ``KG201``)."""

    select: tuple[str, ...] = ("KG",)
    ignore: tuple[str, ...] = ()

    def enabled(self, code: str) -> bool:
        return code.startswith(self.select) and not code.startswith(self.ignore or ("\0",))


def check_codes(codes, known) -> None:
    """``ValueError`` naming the first entry of ``codes`` that is no code nor prefix of one in ``known``."""
    for code in codes:
        if not any(known_code.startswith(code.upper()) for known_code in known) or not code:
            raise ValueError(f"unknown rule code {code!r} (see --list-rules)")
