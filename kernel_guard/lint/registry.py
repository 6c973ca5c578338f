"""Every rule, found by importing each module of ``kernel_guard.lint.rules``."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from kernel_guard.lint import rules as rules_package
from kernel_guard.lint.rule import Rule
from kernel_guard.lint.rules.input import ParseError

PARSE_ERROR = ParseError


@cache
def all_rules() -> tuple[type[Rule], ...]:
    """All rule classes, sorted by code."""
    for module in pkgutil.iter_modules(rules_package.__path__):
        importlib.import_module(f"{rules_package.__name__}.{module.name}")
    found = {}
    stack = list(Rule.__subclasses__())
    while stack:
        rule = stack.pop()
        stack.extend(rule.__subclasses__())
        if "code" in rule.__dict__:
            found[rule.code] = rule
    return tuple(sorted(found.values(), key=lambda rule: rule.code))


def rule_for(code: str) -> type[Rule] | None:
    return next((rule for rule in all_rules() if rule.code == code.upper()), None)

