"""Turning what a user hands us (a path, a glob, a folder, a list) into sorted file lists."""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable, Sequence

from napari_bigvol.errors import ReadError

PathLike = str | os.PathLike[str]
GLOB_CHARS = re.compile(r"[*?\[]")
_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders embedded numbers numerically: ``slice_2`` before ``slice_10``.

    Parameters
    ----------
    name : str
        A file name or path.

    Returns
    -------
    tuple
        A key whose text parts compare case-insensitively and whose digit runs compare as
        integers.

    Examples
    --------
    >>> sorted(["s10.tif", "s2.tif", "S1.tif"], key=natural_key)
    ['S1.tif', 's2.tif', 's10.tif']
    """
    # Tag each part so an int never meets a str in a comparison.
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part.lower())
        for part in _DIGITS.split(name)
        if part
    )


def natural_sorted(paths: Iterable[str]) -> list[str]:
    """Return ``paths`` in natural order (see :func:`natural_key`)."""
    return sorted(paths, key=natural_key)


def is_glob(path: PathLike) -> bool:
    """Whether ``path`` is a glob pattern rather than a literal path."""
    text = os.fspath(path)
    return bool(GLOB_CHARS.search(text)) and not os.path.exists(text)


def expand_glob(pattern: PathLike) -> list[str]:
    """Files matching a glob pattern, naturally sorted.

    Raises
    ------
    ReadError
        If nothing matches.
    """
    text = os.fspath(pattern)
    matches = [p for p in glob.glob(os.path.expanduser(text)) if os.path.isfile(p)]
    if not matches:
        raise ReadError(text, "the pattern matches no files")
    return natural_sorted(matches)


def list_folder(folder: PathLike, suffixes: Sequence[str]) -> list[str]:
    """Files in ``folder`` whose names end with one of ``suffixes``, naturally sorted.

    Hidden files (``.DS_Store``, ``._slice.tif`` from macOS) are skipped.

    Raises
    ------
    ReadError
        If the folder holds no such file.
    """
    text = os.fspath(folder)
    lowered = tuple(s.lower() for s in suffixes)
    with os.scandir(text) as entries:
        names = [
            e.path
            for e in entries
            if not e.name.startswith(".") and e.name.lower().endswith(lowered) and e.is_file()
        ]
    if not names:
        raise ReadError(text, f"the folder holds no image files ({', '.join(suffixes)})")
    return natural_sorted(names)


def require_exists(path: PathLike) -> str:
    """Return ``path`` as a string, or raise a :class:`ReadError` if it does not exist."""
    text = os.fspath(path)
    if not os.path.exists(text):
        raise ReadError(text, "no such file or folder")
    return text
