"""docs/rules.md, generated from the rules' own docstrings.

Regenerate with ``python -m kernel_guard.lint.docs > docs/rules.md``; a test keeps
the file in sync.
"""

from __future__ import annotations

import re

from kernel_guard.lint.registry import all_rules

FAMILIES = {
    "KG0": "Input",
    "KG1": "Memory",
    "KG2": "Loops",
    "KG3": "Recursion",
    "KG4": "Exceptions",
    "KG5": "Kernel killers",
    "KG6": "Output and disk",
}


def rules_markdown() -> str:
    rules = all_rules()
    parts = [
        "# kernel-lint rules\n\n",
        "Generated from the rules' docstrings by `python -m kernel_guard.lint.docs`; "
        "`kernel-lint --explain CODE` (or `--explain NAME`) prints the same text.\n\n",
        "| code | name | severity | summary |\n| --- | --- | --- | --- |\n",
    ]
    parts += [f"| [{r.code}](#{r.code.lower()}) | `{r.name}` | {r.severity} | {r.summary} |\n" for r in rules]
    family = None
    for rule in rules:
        if rule.code[:3] != family:
            family = rule.code[:3]
            parts.append(f"\n## {family}xx — {FAMILIES.get(family, family)}\n")
        body = re.sub(r"^## ", "#### ", rule.documentation(), flags=re.MULTILINE)
        parts.append(f"\n### {rule.code}\n\n`{rule.name}` ({rule.severity}) — {rule.summary}\n\n{body}\n")
    return "".join(parts)


if __name__ == "__main__":
    print(rules_markdown(), end="")
