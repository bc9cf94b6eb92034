"""Doctest set-up for the docstring Examples in ``src/napari_bigvol``.

The test fixtures live in ``tests/conftest.py``; this file only serves the
``--doctest-modules`` run over the package, which pytest collects from ``testpaths``.
"""

from __future__ import annotations

import numpy as np
import pytest
from _pytest.doctest import DoctestItem


@pytest.fixture(autouse=True)
def _doctest_in_scratch_folder(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Run each docstring example in a fresh empty folder with ``np`` at hand.

    Examples write their small generated files (``"scan.ome.zarr"``, ``"slices/"``)
    relative to the working folder, so they read as a user would type them and never
    touch the checkout; view caches they build go to a folder of their own, never to the
    user's cache.
    """
    if not isinstance(request.node, DoctestItem):
        return
    request.node.dtest.globs.setdefault("np", np)
    monkeypatch = request.getfixturevalue("monkeypatch")
    monkeypatch.chdir(tmp_path_factory.mktemp("doctest"))
    monkeypatch.setenv("NAPARI_BIGVOL_CACHE", str(tmp_path_factory.mktemp("view-cache")))
