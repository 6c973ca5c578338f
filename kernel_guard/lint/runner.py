"""Lint many files, in parallel processes when it pays."""

from __future__ import annotations

import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor

from kernel_guard.lint.engine import Selection, lint_document
from kernel_guard.lint.finding import Finding
from kernel_guard.source import InputError, read_document


def lint_file(path: str, selection: Selection, mem_budget: int | None) -> tuple[list[Finding], str | None]:
    """Findings for one file, or the one-line reason it could not be read."""
    try:
        document = read_document(path)
    except InputError as exc:
        return [], str(exc)
    if document is None:  # a notebook in another language
        return [], None
    return lint_document(document, selection, mem_budget), None


def lint_files(
    paths: list[str], selection: Selection, mem_budget: int | None, jobs: int
) -> tuple[list[Finding], list[tuple[str, str]]]:
    """All findings, sorted by path, and the ``(path, reason)`` of unreadable inputs."""
    if mem_budget is None and any(code.startswith("KG1") for code in _enabled_codes(selection)):
        from kernel_guard.memory import usable_memory

        mem_budget = usable_memory()  # once here, not once per worker
    if jobs > 1 and len(paths) > 1:
        results = _parallel(paths, selection, mem_budget, jobs)
    else:
        results = [lint_file(path, selection, mem_budget) for path in paths]
    findings: list[Finding] = []
    failures = []
    for path, (found, error) in zip(paths, results):
        findings.extend(found)
        if error:
            failures.append((path, error))
    return findings, failures


def _parallel(paths, selection, mem_budget, jobs):
    # fork starts workers in milliseconds with everything imported; elsewhere use the default.
    context = multiprocessing.get_context("fork") if sys.platform == "linux" else None
    workers = min(jobs, len(paths))
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        chunk = max(1, len(paths) // (workers * 8))
        return list(pool.map(lint_file, paths, [selection] * len(paths), [mem_budget] * len(paths), chunksize=chunk))


def _enabled_codes(selection: Selection):
    from kernel_guard.lint.registry import all_rules

    return [rule.code for rule in all_rules() if selection.enabled(rule.code)]
