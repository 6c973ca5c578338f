"""``read_csv`` and friends on a local file: its size (uncompressed) over the bytes
of its first rows gives the rows; pandas parsing those first rows, with the
user's own options, gives what a row takes in memory."""

from __future__ import annotations

import contextlib
import gzip
import os
import struct
import types
import zipfile
from typing import Any

from kernel_guard.estimator.libraries import Args, attr, cost
from kernel_guard.estimator.libraries.pandas.frames import Column, made_frame
from kernel_guard.estimator.values import UNKNOWN
from kernel_guard.sizes import format_bytes

SAMPLE_ROWS = 2_000
READERS = frozenset({"pandas.read_csv", "pandas.read_table", "pandas.read_fwf"})
# Options that change what is read but are safe to pass on to the sample (constants only).
_NOT_PASSED = frozenset({"nrows", "chunksize", "iterator", "skipfooter", "filepath_or_buffer", "memory_map"})
_COMPRESSED = {".gz": "gzip", ".zip": "zip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd", ".tar": "tar"}


def read(qualname: str, args: Args, module: types.ModuleType) -> object:
    path = args.constant(0, "filepath_or_buffer")
    if type(path) is not str or "://" in path or not os.path.isfile(path):
        return UNKNOWN
    if args.constant(None, "chunksize") is not None or args.constant(None, "iterator", False) is not False:
        return UNKNOWN  # a reader of pieces: nothing big at once
    options = {}
    for name, value in args.keywords.items():
        constant = args.unwrap(value)
        if constant is UNKNOWN or callable(constant):
            return UNKNOWN  # a converter, a parser: code we would run
        if name not in _NOT_PASSED:
            options[name] = constant
    if len(args.positional) > 1:
        return UNKNOWN
    nrows = args.constant(None, "nrows")
    on_disk = os.path.getsize(path)
    compression: Any = options.get("compression", "infer")
    kind = _COMPRESSED.get(os.path.splitext(path)[1].lower()) if compression == "infer" else compression
    size = _uncompressed(path, kind, on_disk)
    if size is None:
        raise cost.GiveUp(f"not checked before it runs: the uncompressed size of a {kind} file is not known "
                          "without reading it all; the memory cap still protects it")
    sample = attr(module, qualname.rpartition(".")[2])(path, nrows=SAMPLE_ROWS, **options)
    if type(sample) is not attr(module, "DataFrame") or not len(sample):
        return UNKNOWN
    sample_rows = len(sample)
    text = _first_lines(path, kind, sample_rows + 1 + _skipped(options))
    if text is None:
        return UNKNOWN
    per_row = text / (sample_rows + 1)
    rows = sample_rows if sample_rows < SAMPLE_ROWS else max(sample_rows, int(size / per_row))
    if type(nrows) is int:
        rows = min(rows, nrows)
    row_bytes = float(sample.memory_usage(deep=True, index=True).sum()) / sample_rows
    columns = [Column(None, "mixed", row_bytes, "x")]
    result = made_frame(rows, columns, "")
    result.shape = (rows, sample.shape[1])
    on_disk_text = format_bytes(on_disk) + (f" ({format_bytes(size)} uncompressed)" if size != on_disk else "")
    result.cause = (f"the file is {on_disk_text} and its first {sample_rows:,} rows take {format_bytes(row_bytes)} "
                    f"each once parsed: about {rows:,} rows, {format_bytes(result.nbytes)}; read it in pieces with "
                    "chunksize=, only the columns you need with usecols=, and smaller types with dtype=")
    return result


def _skipped(options: dict) -> int:
    skip = options.get("skiprows")
    return skip if type(skip) is int else 0


def _uncompressed(path: str, kind: str | None, on_disk: int) -> int | None:
    if kind is None:
        return on_disk
    if kind == "gzip":
        with open(path, "rb") as stream:  # ISIZE: the size modulo 4 GiB, at the end of the last member
            stream.seek(-4, os.SEEK_END)
            isize = struct.unpack("<I", stream.read(4))[0]
        wraps = max(0, -(-(on_disk - isize) // (1 << 32)))  # text does not shrink when compressed
        return isize + (wraps << 32)
    if kind == "zip":
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            return members[0].file_size if len(members) == 1 else None
    return None


def _first_lines(path: str, kind: str | None, lines: int) -> int | None:
    """Bytes of the first ``lines`` lines of the (uncompressed) text."""
    if kind not in (None, "gzip", "zip"):
        return None
    with contextlib.ExitStack() as stack:
        stream: Any  # a file, gzip or zip member: all read as bytes
        if kind == "gzip":
            stream = stack.enter_context(gzip.open(path, "rb"))
        elif kind == "zip":
            archive = stack.enter_context(zipfile.ZipFile(path))
            stream = stack.enter_context(archive.open(archive.infolist()[0]))
        else:
            stream = stack.enter_context(open(path, "rb"))
        return sum(len(stream.readline()) for _ in range(lines))
