"""IPython's translation of ``%magic`` and ``!command`` lines, without importing IPython.

Most cells with IPython syntax only have whole lines like ``%matplotlib inline`` or
``!pip install x``.  ``translate_escapes`` gives, for exactly those cells, the text
``IPython.core.inputtransformer2.TransformerManager().transform_cell`` returns, at a
fraction of its cost (IPython's import alone is about 0.1 s, and it tokenizes the cell
again after every line it rewrites).  Any other IPython syntax (``x = !cmd``,
``obj?``, ``!!cmd``, prompts, continued lines, a cell IPython would dedent) gives
``None``: IPython itself translates those cells.
"""

from __future__ import annotations

import re
import tokenize

# Characters str.splitlines breaks on that the tokenizer does not: IPython's lines and
# the tokenizer's would disagree.
_ODD_BREAKS = re.compile("[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
# Anything IPython's cleanup could change: a prompt (``>>>``, ``...``, ``In [1]:``, any
# indent), or a line of blanks (its dedent makes it empty).
_CLEANED = re.compile(r"^\s*(?:>>>|\.\.\.)|^(?:\[(?:nav|ins)\] )?In \[|^[ \t]+$", re.MULTILINE)
_LIMIT = 400  # IPython gives up after 500 rewrites of one cell
_SKIPPED = (tokenize.INDENT, tokenize.DEDENT)


def translate_escapes(text: str) -> str | None:
    """``TransformerManager().transform_cell(text)`` for a cell whose only IPython
    syntax is ``%magic`` and ``!command`` lines, each a whole logical line; else ``None``."""
    if _ODD_BREAKS.search(text) or _CLEANED.search(text):
        return None
    lines = (text if text.endswith("\n") else text + "\n").splitlines(keepends=True)
    if lines[0].isspace() or lines[0][0] in " \t" or lines[0].startswith("%%"):
        return None  # IPython would drop leading blank lines, dedent, or run a cell magic
    escapes = _escaped_lines(lines)
    if escapes is None:
        return None
    for row, column in escapes:
        line = lines[row]
        content = line[column:].rstrip()
        lines[row] = line[:column] + _call(content[0], content[1:]) + "\n"
    return "".join(lines)


def _call(escape: str, content: str) -> str:
    if escape == "%":
        name, _, args = content.partition(" ")
        return f"get_ipython().run_line_magic({name!r}, {args!r})"
    return f"get_ipython().system({content!r})"


def _escaped_lines(lines: list[str]) -> list[tuple[int, int]] | None:
    """``(row, column)`` (0-based row) of each ``%``/``!`` line; ``None`` when the
    cell has any other IPython syntax or anything this module does not handle."""
    try:
        tokens = list(tokenize.generate_tokens(iter(lines).__next__))
    except (tokenize.TokenError, SyntaxError):
        return None
    escapes = []
    previous = None
    first_of_line = True
    depth = 0
    for index, token in enumerate(tokens):
        kind, string = token.type, token.string
        if first_of_line and kind not in _SKIPPED:
            first_of_line = False
            if string in ("%", "!"):
                row, column = token.start[0] - 1, token.start[1]
                rest = lines[row][column:]
                if rest.startswith(("%%", "!!")) or lines[row].endswith("\\\n") or not _whole_line(tokens, index):
                    return None
                escapes.append((row, column))
            elif string in (",", ";", "/", "?"):
                return None  # IPython's other escapes
        elif string == "?" or (string == "!" and kind == tokenize.ERRORTOKEN):
            return None  # obj?, x = !cmd, a stray escape
        elif string == "%" and previous is not None and previous.string == "=":
            return None  # x = %magic
        if kind == tokenize.OP and string in "([{":
            depth += 1
        elif kind == tokenize.OP and string in ")]}":
            depth = max(0, depth - 1)
        if kind == tokenize.NEWLINE or (kind == tokenize.NL and depth <= 0):
            first_of_line = True
        previous = token
    return escapes if len(escapes) <= _LIMIT else None


def _whole_line(tokens: list[tokenize.TokenInfo], index: int) -> bool:
    """Whether the escaped line at ``tokens[index]`` ends on its own row without a
    bracket: IPython tokenizes again after each rewrite, and a bracket (``!echo (``)
    read as Python would change how the lines after it group."""
    row = tokens[index].start[0]
    for token in tokens[index:]:
        if token.start[0] != row or (token.type == tokenize.OP and token.string in "()[]{}"):
            return False
        if token.type in (tokenize.NEWLINE, tokenize.NL):
            return True
    return False
