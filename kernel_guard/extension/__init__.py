"""The IPython extension: ``%load_ext kernel_guard`` (SPEC section 3).

``load_ipython_extension`` registers ``%%guard`` / ``%guard``, the auto-mode input
transformer and the cell hooks, and starts the crash recorder;
``unload_ipython_extension`` removes all of it.
"""

from __future__ import annotations

_loaded: dict = {}  # shell -> KernelGuardExtension


def load_ipython_extension(ipython) -> None:
    from kernel_guard.extension.core import KernelGuardExtension

    if ipython in _loaded:
        return
    extension = KernelGuardExtension(ipython)
    try:
        extension.load()
    except BaseException:  # half loaded is not loaded: a second try must not double the hooks
        extension.unload()
        raise
    _loaded[ipython] = extension


def unload_ipython_extension(ipython) -> None:
    extension = _loaded.pop(ipython, None)
    if extension is not None:
        extension.unload()


def loaded(ipython):
    """The extension loaded in ``ipython``, or None."""
    return _loaded.get(ipython)
