"""The exceptions a guarded cell can raise (SPEC section 3)."""


class GuardRefused(Exception):
    """The pre-run checks refused the cell: it would not fit, or it kills the kernel.

    Shown as its message alone, without a traceback.
    """


class GuardMemoryError(MemoryError):
    """The cell went over ``--max-mem``."""


class GuardTimeout(BaseException):
    """The cell ran past ``--timeout``.

    A ``BaseException``, like ``KeyboardInterrupt``, so that ``except Exception``
    in the user's code cannot swallow it.
    """


class GuardOutputLimit(Exception):
    """The cell printed more than ``--max-output`` bytes."""


class GuardDiskLimit(OSError):
    """The cell wrote more than ``--max-disk`` to the filesystem of the working
    directory, or left it with less free space than the notebook needs to be saved."""
