"""Reader placeholder while this module is being written; accepts nothing yet."""

from __future__ import annotations


def accepts(path: str) -> bool:
    """Whether this reader takes ``path``."""
    return False


def read(path):  # noqa: D103
    raise NotImplementedError
