"""The documentation that is generated stays in sync with the code."""

from pathlib import Path

from kernel_guard.lint.docs import rules_markdown
from kernel_guard.lint.registry import all_rules

ROOT = Path(__file__).resolve().parent.parent


def test_rules_md_is_generated_from_the_rules():
    text = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    assert text == rules_markdown(), "docs/rules.md is stale: python -m kernel_guard.lint.docs > docs/rules.md"
    for rule in all_rules():
        assert f"### {rule.code}" in text
