"""Out-of-memory errors that libraries raise as something other than ``MemoryError``.

torch's CPU allocator reports a refused allocation as a plain ``RuntimeError``
("DefaultCPUAllocator: can't allocate memory: you tried to allocate N bytes"). Under
the guard's cap that refusal is the cap speaking, so the guard raises
``GuardMemoryError`` for it, like numpy's ``MemoryError``. torch is looked up in
``sys.modules`` only: never imported here.
"""

from __future__ import annotations

import re
import sys

# Older torch: "can't allocate memory"; newer wording: "not enough memory".
_TORCH_CPU = re.compile(
    r"DefaultCPUAllocator: (?:can't allocate memory|not enough memory): you tried to allocate (\d+) bytes"
)


def refused_allocation(exc: BaseException) -> tuple[str, int] | None:
    """(library, bytes asked for) when ``exc`` is a library's report of a host
    allocation it could not make; ``None`` otherwise. Exact types only: the message
    of a user's exception subclass is never read."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    kind = type(exc)
    if kind is not RuntimeError and kind is not vars(torch).get("OutOfMemoryError"):
        return None
    text = RuntimeError.__str__(exc)
    match = _TORCH_CPU.search(text)
    return None if match is None else ("torch", int(match.group(1)))
