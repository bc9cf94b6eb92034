"""Shared scanner geometry: napari world coordinates are nibabel's RAS+ millimetres."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from napari.layers import Image
from nibabel.affines import apply_affine, from_matvec
from nibabel.eulerangles import euler2mat
from nibabel.orientations import aff2axcodes, axcodes2ornt

from napari_bigvol.io._orientation import (
    LABEL_AXCODES,
    NAPARI_AXCODES,
    SPATIAL_AXIS_LABELS,
    LeadingAxis,
    layer_geometry,
    reorient,
)

SHAPE = (4, 5, 6)
ZOOMS = np.array([1.5, 2.0, 2.5])


def every_axis_order() -> list[np.ndarray]:
    """Linear parts for all 48 voxel orders (RAS, LAS, LPI, PSL, ...) of the cube's axes."""
    linears = []
    for permutation in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            linear = np.zeros((3, 3))
            for source_axis, (world_axis, sign) in enumerate(zip(permutation, signs, strict=True)):
                linear[world_axis, source_axis] = sign * ZOOMS[source_axis]
            linears.append(linear)
    return linears


def source_index(reorientation, napari_index: tuple[int, ...]) -> tuple[int, ...]:
    """The source voxel ``(i, j, k)`` a reoriented napari index reads."""
    ijk = [0, 0, 0]
    for n, (axis, flip) in enumerate(
        zip(reorientation.spatial_axis, reorientation.spatial_flip, strict=True)
    ):
        ijk[axis] = SHAPE[axis] - 1 - napari_index[n] if flip else napari_index[n]
    return tuple(ijk)


def assert_world_is_ras(affine: np.ndarray) -> None:
    reorientation, kwargs = layer_geometry(affine, SHAPE)
    napari_shape = tuple(SHAPE[a] for a in reorientation.spatial_axis)
    layer = Image(np.zeros(napari_shape, np.uint8), **kwargs)
    for index in itertools.product(*[(0, n - 1) for n in napari_shape]):
        s, a, r = layer.data_to_world(index)
        expected = apply_affine(affine, source_index(reorientation, index))
        np.testing.assert_allclose((r, a, s), expected, atol=1e-9)


def axcodes(linear: np.ndarray) -> str:
    return "".join(aff2axcodes(from_matvec(linear)))


@pytest.mark.parametrize("linear", every_axis_order(), ids=axcodes)
def test_world_is_apply_affine_in_every_voxel_order(linear):
    affine = from_matvec(linear, [-40.0, 25.0, 12.5])
    assert_world_is_ras(affine)
    reorientation, kwargs = layer_geometry(affine, SHAPE)
    assert "affine" not in kwargs  # axis-aligned: plain scale and translate
    # Reoriented index (z, y, x) runs to S, A and R: an anti-diagonal of positive sizes.
    assert (reorientation.affine[[2, 1, 0], [0, 1, 2]] > 0).all()


# napari warns when a layer whose affine rotates out of the displayed plane is sliced.
@pytest.mark.filterwarnings("ignore:Non-orthogonal slicing is being requested:UserWarning")
@pytest.mark.parametrize("angles", [(0.35, 0.0, 0.2), (1.2, -0.4, 0.9), (-2.5, 0.3, -0.1)])
def test_oblique_world_is_exact(angles):
    affine = from_matvec(euler2mat(*angles) @ np.diag(ZOOMS), [3.0, -7.0, 11.0])
    _, kwargs = layer_geometry(affine, SHAPE)
    assert "affine" in kwargs
    assert_world_is_ras(affine)


def test_leading_axes_and_labels():
    leading = [LeadingAxis("t", scale=0.8, translate=2.0, unit="s")]
    _, kwargs = layer_geometry(np.diag([2.0, 2.0, 2.0, 1.0]), (3, 4, 5, 7), leading_axes=leading)
    assert kwargs["axis_labels"] == ("t", "I→S", "P→A", "L→R")
    assert kwargs["units"] == ("s", "millimeter", "millimeter", "millimeter")
    assert kwargs["scale"] == (0.8, 2.0, 2.0, 2.0)
    assert kwargs["translate"] == (2.0, 0.0, 0.0, 0.0)


def test_labels_name_the_ras_codes():
    assert tuple(LABEL_AXCODES) == SPATIAL_AXIS_LABELS
    assert tuple(LABEL_AXCODES.values()) == NAPARI_AXCODES
    # Every label runs from the opposite code to its own.
    opposite = dict(zip("SAR", "IPL", strict=True))
    for label, code in LABEL_AXCODES.items():
        assert label == f"{opposite[code]}→{code}"
    np.testing.assert_array_equal(axcodes2ornt(NAPARI_AXCODES)[:, 1], 1)


def test_reorient_is_a_permutation_and_flips():
    psl = np.array([[0, 0, -2.5, 0], [-1.5, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 0, 1]])
    reorientation = reorient(psl, SHAPE)
    # i runs to P (against A), j to S, k to L (against R).
    assert reorientation.spatial_axis == (1, 0, 2)
    assert reorientation.spatial_flip == (False, True, True)
