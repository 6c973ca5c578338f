"""The one guard around every parse of a user's code.

A cell can fail to parse for many reasons besides a syntax error: an
inconsistent dedent (``IndentationError``), a NUL byte (``ValueError``),
expressions nested past what the parser's stack holds (``RecursionError``,
``MemoryError``), a literal too large (``OverflowError``).  Every one of them is
a ``ParseFailure`` with a one-line reason and a position, for ``KG001``,
``lint_source``, ``estimate`` and ``kernel-lint`` alike.
"""

from __future__ import annotations

import ast
import warnings

# Everything ``ast.parse`` (and IPython's tokenizer) raises on hostile input.
PARSE_ERRORS: tuple[type[BaseException], ...] = (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError)


class ParseFailure(Exception):
    """Code that cannot be parsed: ``reason`` is one line, ``line``/``column`` 1-based."""

    def __init__(self, reason: str, line: int = 1, column: int = 1) -> None:
        super().__init__(reason)
        self.reason, self.line, self.column = reason, line, column


def parse_python(source: str) -> ast.Module:
    """``ast.parse(source)``, warnings silenced; any failure is a ``ParseFailure``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences are not our findings
            return ast.parse(source)
    except PARSE_ERRORS as exc:
        raise failure(exc) from None


def failure(exc: BaseException) -> ParseFailure:
    """The ``ParseFailure`` for an exception raised while parsing."""
    if isinstance(exc, RecursionError):
        return ParseFailure("code nested too deeply to analyse")
    if isinstance(exc, MemoryError):
        return ParseFailure("code too large or nested too deeply to analyse")
    if isinstance(exc, SyntaxError):
        line = exc.lineno if type(exc.lineno) is int and exc.lineno > 0 else 1
        column = exc.offset if type(exc.offset) is int and exc.offset > 0 else 1
        return ParseFailure(_one_line(exc.msg or str(exc)), line, column)
    return ParseFailure(_one_line(str(exc) or type(exc).__name__))


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:200]
