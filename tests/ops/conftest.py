"""Fixtures for the pure-operation tests: real images and volumes, and block counters."""

from __future__ import annotations

import threading
from pathlib import Path

import dask.array as da
import numpy as np
import pytest


@pytest.fixture
def mri_int16(nibabel_data: Path) -> np.ndarray:
    """nibabel's real anatomical MRI (33 x 41 x 25, big-endian int16), read by nibabel."""
    import nibabel

    return np.asanyarray(nibabel.load(nibabel_data / "anatomical.nii").dataobj)


@pytest.fixture
def ihc_rgb(skimage_data: Path) -> np.ndarray:
    """scikit-image's immunohistochemistry slide, 512 x 512 x 3 uint8."""
    import imageio.v3 as iio

    return iio.imread(skimage_data / "ihc.png")


@pytest.fixture
def astronaut_rgb(skimage_data: Path) -> np.ndarray:
    """scikit-image's astronaut photograph, 512 x 512 x 3 uint8."""
    import imageio.v3 as iio

    return iio.imread(skimage_data / "astronaut.png")


class BlockLoads:
    """Counts how many times each block of a wrapped dask array is computed."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def wrap(self, array: da.Array) -> da.Array:
        def load(block: np.ndarray) -> np.ndarray:
            with self._lock:
                self.count += 1
            return block

        # An explicit meta keeps dask from calling ``load`` to infer one.
        return array.map_blocks(
            load, dtype=array.dtype, meta=np.empty((0,) * array.ndim, array.dtype)
        )


@pytest.fixture
def block_loads() -> BlockLoads:
    """A counter of block computations; ``block_loads.wrap(array)`` instruments an array."""
    return BlockLoads()
