"""Columns as users count them: the stdlib ``ast`` counts UTF-8 bytes, editors count characters."""

from __future__ import annotations


def char_offset(line: str, byte_offset: int) -> int:
    """The 0-based character offset in ``line`` of an ``ast`` column (a UTF-8 byte offset)."""
    return byte_offset if line.isascii() else len(line.encode()[:byte_offset].decode(errors="replace"))
