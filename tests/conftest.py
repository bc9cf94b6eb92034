"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
from dask.callbacks import Callback


class OpenCounter:
    """Counts files opened below a folder, through Python's ``open`` audit event.

    This is how laziness is tested: not by timing, but by counting which files a
    reader actually opens. Every pure-Python file open (``open``, ``io.open``,
    ``Path.read_bytes``, tifffile, zarr's LocalStore, nibabel's uncompressed files) raises
    the event.
    """

    def __init__(self) -> None:
        self.root: str | None = None
        self.opened: Counter[str] = Counter()
        self._lock = threading.Lock()

    def _hook(self, event: str, args: tuple) -> None:
        if event != "open" or self.root is None or not args:
            return
        target = args[0]
        if isinstance(target, int):  # os.fdopen on an existing descriptor
            return
        path = os.fspath(target) if isinstance(target, str | bytes | os.PathLike) else None
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if path and os.path.abspath(path).startswith(self.root):
            with self._lock:
                self.opened[os.path.abspath(path)] += 1

    @contextmanager
    def watch(self, root: str | os.PathLike) -> Iterator[Counter[str]]:
        """Count opens below ``root`` inside the ``with`` block; yields the counter."""
        self.opened = Counter()
        self.root = os.path.abspath(os.fspath(root))
        try:
            yield self.opened
        finally:
            self.root = None


_COUNTER = OpenCounter()
# Audit hooks cannot be removed, so one hook serves the whole session and is idle
# unless a test is inside ``watch``.
sys.addaudithook(_COUNTER._hook)


@pytest.fixture
def open_counter() -> OpenCounter:
    """The session's :class:`OpenCounter`; use ``with open_counter.watch(tmp_path) as c:``."""
    return _COUNTER


@pytest.fixture
def nibabel_data() -> Path:
    """Folder of the real NIfTI files nibabel ships with its tests."""
    import nibabel.tests

    return Path(nibabel.tests.__file__).parent / "data"


@pytest.fixture
def skimage_data() -> Path:
    """Folder of the real images scikit-image ships (``ihc.png``, ``astronaut.png``, ...)."""
    import skimage.data

    return Path(skimage.data.__file__).parent


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty view-cache folder for the test, with the cache settings at their defaults."""
    from napari_bigvol.ops import view_cache

    folder = tmp_path / "cache"
    monkeypatch.setenv(view_cache.CACHE_ENV, str(folder))
    monkeypatch.delenv(view_cache.CACHE_SIZE_ENV, raising=False)
    monkeypatch.delenv(view_cache.BUDGET_3D_ENV, raising=False)
    return folder


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


class TaskCount(Callback):
    """Counts the dask tasks run while it is active (``with TaskCount() as count:``).

    Every compute counts, napari's own included: it is a global dask callback.
    """

    def __init__(self) -> None:
        super().__init__()
        self.tasks = 0

    def _posttask(self, key, result, dsk, state, worker_id) -> None:
        self.tasks += 1


@pytest.fixture
def task_count() -> TaskCount:
    """A counter of dask tasks: ``with task_count:`` counts, ``task_count.tasks`` is the sum."""
    return TaskCount()


@pytest.fixture
def block_loads() -> BlockLoads:
    """A counter of block computations; ``block_loads.wrap(array)`` instruments an array."""
    return BlockLoads()
