"""One finding, the unit every output format and the public API speak in."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True, order=True)
class Finding:
    path: str
    cell: int | None
    line: int
    column: int
    end_line: int
    end_column: int
    code: str
    name: str
    severity: str  # "error" | "warning"
    message: str
    nbytes: int | None = None  # KG1 findings: the estimated allocation

    def to_dict(self) -> dict:
        data = asdict(self)
        if self.nbytes is None:
            del data["nbytes"]
        return data

    @property
    def location(self) -> str:
        """``path:cell N:line:col`` for notebooks, ``path:line:col`` for scripts."""
        cell = f"cell {self.cell}:" if self.cell is not None else ""
        return f"{self.path}:{cell}{self.line}:{self.column}"
