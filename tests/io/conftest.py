"""Fixtures for the reader tests: real TIFF/PNG files written into ``tmp_path``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile

SliceWriter = Callable[..., tuple[Path, np.ndarray]]


def slice_values(count: int, shape: tuple[int, ...], dtype: np.dtype | str) -> np.ndarray:
    """A stack whose every plane is different and recognisable (plane i holds i + noise)."""
    rng = np.random.default_rng(count)
    dtype = np.dtype(dtype)
    planes = np.arange(count).reshape((count,) + (1,) * len(shape))
    noise = rng.integers(0, 50, size=(count, *shape))
    values = planes * 3 + noise
    if dtype == np.bool_:
        return (values % 2).astype(bool)
    return values.astype(dtype)


@pytest.fixture
def values() -> Callable[..., np.ndarray]:
    """:func:`slice_values`, for tests that write their own files."""
    return slice_values


@pytest.fixture
def write_slices(tmp_path: Path) -> SliceWriter:
    """Write a folder of single-page TIFF slices named ``{prefix}{i}{suffix}`` (unpadded)."""

    def write(
        count: int = 12,
        shape: tuple[int, ...] = (24, 32),
        dtype: np.dtype | str = "uint16",
        *,
        folder: str = "slices",
        prefix: str = "slice_",
        suffix: str = ".tif",
        **imwrite_kwargs,
    ) -> tuple[Path, np.ndarray]:
        target = tmp_path / folder
        target.mkdir(exist_ok=True)
        stack = slice_values(count, shape, dtype)
        for index, plane in enumerate(stack):
            tifffile.imwrite(target / f"{prefix}{index}{suffix}", plane, **imwrite_kwargs)
        return target, stack

    return write
