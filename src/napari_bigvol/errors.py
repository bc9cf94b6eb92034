"""Exceptions raised by napari-bigvol.

Every error names the file (or layer) it concerns and says what is wrong, so the
message alone is enough to act on, in a napari notification or a traceback.
"""

from __future__ import annotations

import os


class BigVolError(Exception):
    """Base class of every error napari-bigvol raises on purpose."""


class ReadError(BigVolError, ValueError):
    """A path cannot be opened: it is missing, empty, corrupt or inconsistent.

    Parameters
    ----------
    path : str or os.PathLike
        The file, folder or pattern concerned.
    problem : str
        What is wrong with it, in words a user can act on.

    Examples
    --------
    >>> str(ReadError("/data/scan.nii", "the file is truncated"))
    '/data/scan.nii: the file is truncated'
    """

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class OperationError(BigVolError, ValueError):
    """An operation cannot run on the given data or layer."""


class Cancelled(BigVolError):
    """A long-running computation was cancelled by the user."""


class ReadWarning(UserWarning):
    """A file opened, but part of what its header says was unusable and was left out.

    napari shows these as notifications; the message names the file and what was ignored.
    """
