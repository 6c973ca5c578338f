"""Output formats: text (flake8/ruff style), JSON, SARIF 2.1.0, GitHub annotations."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence

from kernel_guard.lint.finding import Finding
from kernel_guard.lint.notebook_lines import RawLines

FORMATS = ("text", "json", "sarif", "github")


def render(findings: Sequence[Finding], fmt: str) -> str:
    """The whole report (empty string when a text report has nothing to say)."""
    return {"text": _text, "json": _json, "sarif": _sarif, "github": _github}[fmt](findings)


def statistics(findings: Sequence[Finding]) -> str:
    """One line per code, most frequent first: ``count  CODE  name``."""
    counts = Counter(finding.code for finding in findings)
    names = {finding.code: finding.name for finding in findings}
    return "".join(
        f"{count:>6}  {code}  {names[code]}\n" for code, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    )


def _text(findings: Sequence[Finding]) -> str:
    return "".join(f"{f.location}: {f.code} {f.message}\n" for f in findings)


def _json(findings: Sequence[Finding]) -> str:
    return json.dumps([f.to_dict() for f in findings], indent=2) + "\n"


def _github(findings: Sequence[Finding]) -> str:
    lines = []
    files = RawLines()
    for f in findings:
        level = "error" if f.severity == "error" else "warning"
        title = _escape_property(f"{f.code} {f.name}")
        if f.cell is None:
            where = f"line={f.line},col={f.column},endLine={f.end_line},endColumn={f.end_column},"
            text = f.message
        else:  # GitHub counts lines of the .ipynb JSON, not of a cell: say the cell in the message.
            raw = _raw_lines(f, files)
            where = f"line={raw[0]},endLine={raw[1]}," if raw else ""
            text = f"cell {f.cell}:{f.line}:{f.column}: {f.message}"
        lines.append(f"::{level} file={_escape_property(f.path)},{where}title={title}::{_escape_data(text)}\n")
    return "".join(lines)


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _raw_lines(finding: Finding, files: RawLines) -> tuple[int, int] | None:
    """The lines of the notebook file holding the finding's first and last source line."""
    cell = finding.cell
    start = files.of(finding.path, cell, finding.line) if cell is not None else None
    if cell is None or start is None:
        return None
    end = files.of(finding.path, cell, finding.end_line) or start
    return start, max(start, end)


def _sarif(findings: Sequence[Finding]) -> str:
    from kernel_guard import __version__
    from kernel_guard.lint.registry import all_rules

    rules = all_rules()
    index = {rule.code: i for i, rule in enumerate(rules)}
    results = []
    files = RawLines()
    for f in findings:
        location: dict = {"artifactLocation": {"uri": f.path}}
        if f.cell is None:
            message = f.message
            location["region"] = {
                "startLine": f.line, "startColumn": f.column, "endLine": f.end_line, "endColumn": f.end_column
            }
        else:  # viewers count lines of the .ipynb JSON: the file lines holding the cell's source lines
            message = f"cell {f.cell}:{f.line}:{f.column}: {f.message}"
            raw = _raw_lines(f, files)
            if raw:
                location["region"] = {"startLine": raw[0], "endLine": raw[1]}
        result = {
            "ruleId": f.code,
            "ruleIndex": index[f.code],
            "level": "error" if f.severity == "error" else "warning",
            "message": {"text": message},
            "locations": [{"physicalLocation": location}],
        }
        if f.cell is not None:
            result["properties"] = {"cell": f.cell}
        if f.nbytes is not None:
            result.setdefault("properties", {})["nbytes"] = f.nbytes
        results.append(result)
    driver = {
        "name": "kernel-lint",
        "version": __version__,
        "rules": [
            {
                "id": rule.code,
                "name": rule.name,
                "shortDescription": {"text": rule.summary},
                "fullDescription": {"text": rule.summary},
                "help": {"text": rule.documentation(), "markdown": rule.documentation()},
                "defaultConfiguration": {"level": "error" if rule.severity == "error" else "warning"},
            }
            for rule in rules
        ],
    }
    log = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{"tool": {"driver": driver}, "results": results}],
    }
    return json.dumps(log, indent=2) + "\n"
