"""Histograms and component counts of arrays with no voxels (a zero-length axis)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_bigvol.ops.histogram import histogram, histogram_stats
from napari_bigvol.ops.threshold import count_components


@pytest.mark.parametrize("dtype", ["uint8", "float64"])
def test_histogram_of_an_empty_array_is_numpys(dtype):
    """histogram(np.zeros((5, 0, 5))) raised ZeroDivisionError."""
    empty = np.zeros((5, 0, 5), dtype)

    counts, edges = histogram(empty, bins=4)

    expected_counts, expected_edges = np.histogram(empty, bins=4)
    np.testing.assert_array_equal(counts, expected_counts)
    np.testing.assert_allclose(edges, expected_edges)
    assert histogram_stats(empty, bins=4).count == 0


@pytest.mark.parametrize("shape", [(0,), (5, 0, 5), (0, 4)])
def test_an_empty_mask_has_no_components(shape):
    """count_components on an empty array raised ValueError."""
    assert count_components(np.zeros(shape, bool)) == 0
