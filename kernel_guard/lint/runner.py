"""Lint many files: cached results first, the rest in parallel processes."""

from __future__ import annotations

import gc
import hashlib
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kernel_guard.lint.finding import Finding
    from kernel_guard.lint.selection import Selection

# (findings, one-line reason the file could not be read, SHA-256 of the bytes linted)
Result = tuple[list["Finding"], "str | None", "str | None"]


def lint_file(path: str, selection: Selection, mem_budget: int | None) -> Result:
    """Findings for one file, or the reason it could not be read; the digest is
    ``None`` when the file could not be read at all (nothing to cache)."""
    from kernel_guard.lint.engine import lint_document
    from kernel_guard.parse_guard import failure
    from kernel_guard.source import InputError, parse_document, read_bytes

    try:
        data = read_bytes(path)
    except InputError as exc:
        return [], str(exc), None
    digest = hashlib.sha256(data).hexdigest()
    try:
        document = parse_document(path, data)
    except InputError as exc:
        return [], str(exc), digest
    if document is None:  # a notebook in another language
        return [], None, digest
    try:
        return lint_document(document, selection, mem_budget), None, digest
    except (RecursionError, MemoryError) as exc:
        return [], failure(exc).reason, digest
    except Exception as exc:  # a rule's defect must not cost the other files their findings
        return [], f"cannot analyse: {type(exc).__name__}: {exc} (a kernel-lint bug: please report it)", digest


def lint_files(
    paths: list[str], selection: Selection, mem_budget: int | None, jobs: int, cache_dir: str | Path | None = None
) -> tuple[list[Finding], list[tuple[str, str]]]:
    """All findings, in the order of ``paths``, and the ``(path, reason)`` of
    unreadable inputs.  With ``cache_dir``, unchanged files are not linted again."""
    if mem_budget is None:
        from kernel_guard.memory import usable_memory

        mem_budget = usable_memory()  # once here, not once per worker (and part of the cache key)
    cache = None
    if cache_dir is not None:
        from kernel_guard.lint.cache import Cache, rule_codes

        codes = [code for code in rule_codes(cache_dir) if selection.enabled(code)]
        cache = Cache(cache_dir, codes, mem_budget)
    results: list[tuple[list[Finding], str | None] | None] = [cache.load(p) if cache else None for p in paths]
    todo = [index for index, result in enumerate(results) if result is None]
    for index, (found, error, digest) in zip(todo, _lint([paths[i] for i in todo], selection, mem_budget, jobs)):
        results[index] = found, error
        if cache and digest:
            cache.store(paths[index], digest, found, error)
    if cache:
        cache.prune()
    findings: list[Finding] = []
    failures = []
    for path, (found, error) in zip(paths, results):
        findings.extend(found)
        if error:
            failures.append((path, error))
    return findings, failures


def _lint(paths: list[str], selection: Selection, mem_budget: int, jobs: int) -> list[Result]:
    if not paths:
        return []
    from kernel_guard.lint.engine import lint_document  # noqa: F401  (imported once, before the workers fork)

    with _few_collections():
        if jobs < 2 or len(paths) < 2:
            return [lint_file(path, selection, mem_budget) for path in paths]
        return _parallel(paths, selection, mem_budget, jobs)


def _parallel(paths: list[str], selection: Selection, mem_budget: int, jobs: int) -> list[Result]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    # Largest files first, one file per task: no worker is left with a big notebook at the end.
    order = sorted(range(len(paths)), key=lambda i: -_size(paths[i]))
    # fork starts workers in milliseconds with everything imported; elsewhere use the default.
    context = multiprocessing.get_context("fork") if sys.platform == "linux" else None
    results: list[Result] = [None] * len(paths)  # type: ignore[list-item]
    with ProcessPoolExecutor(min(jobs, len(paths)), mp_context=context) as pool:
        futures = {index: pool.submit(lint_file, paths[index], selection, mem_budget) for index in order}
        for index, future in futures.items():
            try:
                results[index] = future.result()
            except BrokenProcessPool:  # a worker killed (out of memory, a signal): name the files it took down
                results[index] = [], "not linted: the worker process linting it died", None
    return results


@contextmanager
def _few_collections():
    """Linting allocates many short-lived objects and few cycles: collect every
    20,000 allocations rather than 700, and never traverse what is already
    imported (nor, after a fork, touch and so copy it).  A tenth of a cold run."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(20_000, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
