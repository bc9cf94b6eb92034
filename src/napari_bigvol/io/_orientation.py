"""Scanner geometry for napari: voxel axes reoriented to napari's, world = scanner millimetres.

Any reader of scanner images (NIfTI, DICOM) describes its voxels with a 4x4 affine from
voxel indices ``(i, j, k)`` to RAS+ millimetres (nibabel's convention). This module turns
such an affine into

* a :class:`Reorientation`: which source voxel axis, run which way, becomes each of
  napari's spatial axes ``(z, y, x)``, chosen with nibabel's
  :func:`~nibabel.orientations.io_orientation` (permutations and flips only, so a reader
  serves any plane as a numpy view of its stored data, never resampled); and
* napari layer keywords (``scale``, ``translate``, ``affine`` for oblique scans,
  ``axis_labels``, ``units``) under which a layer's world coordinates are exactly the
  scanner millimetres ``nibabel.affines.apply_affine(affine, ijk)``, in napari's
  ``(z, y, x)`` axis order.

The convention: napari ``z`` is +S (superior), ``y`` is +A (anterior), ``x`` is +R (the
patient's right), all in RAS+ millimetres, the frame of nibabel, FSLeyes, freeview,
nilearn, SPM and MNI coordinates; a world point ``(z, y, x)`` is the RAS point
``(x, y, z)`` and the status bar reads ``[S A R]``. The axis labels ``("I→S", "P→A",
"L→R")`` say so on the sliders. Shown with napari's default camera (y down, x right)
this grid would be upside down and mirrored; :mod:`napari_bigvol._napari._anatomical`
turns the camera (``camera.orientation``, never the coordinates) so that anterior or
superior is up and the patient's left is on the screen's right, in every plane.

The API, shared by the readers: :func:`layer_geometry` (the whole job), built from
:func:`reorient` and :func:`world_placement`; :data:`NAPARI_AXCODES` and
:data:`SPATIAL_AXIS_LABELS` name the spatial axes; :class:`LeadingAxis` describes a
non-spatial axis (time) placed before them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from nibabel.orientations import axcodes2ornt, inv_ornt_aff, io_orientation, ornt_transform

__all__ = [
    "LABEL_AXCODES",
    "NAPARI_AXCODES",
    "SPATIAL_AXIS_LABELS",
    "LeadingAxis",
    "Reorientation",
    "layer_geometry",
    "reorient",
    "world_placement",
]

NAPARI_AXCODES = ("S", "A", "R")
"""nibabel axis codes of napari's spatial axes ``(z, y, x)``: the way each one increases."""
# Rows of RAS+ mm rearranged into napari's world order (z, y, x) = (S, A, R).
_RAS_TO_NAPARI_WORLD = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
SPATIAL_AXIS_LABELS = ("I→S", "P→A", "L→R")
"""napari ``axis_labels`` of the spatial axes ``(z, y, x)``: from which side to which."""
LABEL_AXCODES = dict(zip(SPATIAL_AXIS_LABELS, NAPARI_AXCODES, strict=True))
"""The RAS+ axis code each spatial axis label increases toward: ``{"I→S": "S", ...}``."""
# A rotation whose direction cosines differ from a permutation by more is oblique.
_OBLIQUE_TOLERANCE = 1e-6


class LeadingAxis(NamedTuple):
    """A non-spatial napari axis (time, ...) placed before the spatial ones.

    Parameters
    ----------
    label : str
        napari axis label, e.g. ``"t"``.
    scale, translate : float
        World step and origin along the axis.
    unit : str
        Unit napari (pint) understands, ``"pixel"`` when unknown.
    """

    label: str
    scale: float = 1.0
    translate: float = 0.0
    unit: str = "pixel"


@dataclass(frozen=True)
class Reorientation:
    """How source voxel axes become napari's spatial axes ``(z, y, x)``.

    Attributes
    ----------
    spatial_axis : tuple of int
        Source voxel axis (0, 1 or 2: i, j or k of the affine) that becomes napari z,
        y and x respectively.
    spatial_flip : tuple of bool
        Whether napari z, y and x run against their source axis.
    affine : numpy.ndarray
        4x4 map from reoriented voxel indices ``(z, y, x)`` to RAS+ millimetres.
    """

    spatial_axis: tuple[int, int, int]
    spatial_flip: tuple[bool, bool, bool]
    affine: np.ndarray


def reorient(affine_ras: np.ndarray, spatial_shape: Sequence[int]) -> Reorientation:
    """Choose the permutation and flips that bring voxel axes closest to napari's axes.

    Parameters
    ----------
    affine_ras : array_like
        4x4 map from voxel indices ``(i, j, k)`` to RAS+ millimetres.
    spatial_shape : sequence of int
        The source shape along ``i, j, k``.

    Returns
    -------
    Reorientation
        The axis mapping and the affine of the reoriented voxel grid.

    Examples
    --------
    >>> import numpy as np
    >>> las = np.diag([-2.0, 2.0, 3.0, 1.0])  # i runs to the left, j anterior, k superior
    >>> r = reorient(las, (10, 20, 30))
    >>> r.spatial_axis, r.spatial_flip
    ((2, 1, 0), (False, False, True))
    """
    affine_ras = np.asarray(affine_ras, dtype=float)
    transform = ornt_transform(io_orientation(affine_ras), axcodes2ornt(NAPARI_AXCODES))
    # transform[source_axis] = (napari spatial axis, +1 or -1)
    spatial_axis = [0, 0, 0]
    spatial_flip = [False, False, False]
    for source_axis, (napari_axis, direction) in enumerate(transform):
        spatial_axis[int(napari_axis)] = source_axis
        spatial_flip[int(napari_axis)] = bool(direction < 0)
    reoriented = affine_ras @ inv_ornt_aff(transform, tuple(spatial_shape)[:3])
    return Reorientation(tuple(spatial_axis), tuple(spatial_flip), reoriented)  # type: ignore[arg-type]


def world_placement(
    reoriented_affine: np.ndarray, leading_axes: Sequence[LeadingAxis] = ()
) -> dict[str, Any]:
    """Return napari ``scale``/``translate`` (and ``affine`` if oblique) of a reoriented grid.

    Parameters
    ----------
    reoriented_affine : array_like
        4x4 map from reoriented voxel indices ``(z, y, x)`` to RAS+ millimetres, as
        :attr:`Reorientation.affine`.
    leading_axes : sequence of LeadingAxis
        Non-spatial axes before ``(z, y, x)``.

    Returns
    -------
    dict
        ``scale`` and ``translate`` per napari axis; for an oblique grid also ``affine``,
        an ``(ndim + 1)``-square matrix carrying the residual rotation and the origin
        (``translate`` is then zero for the spatial axes).

    Examples
    --------
    >>> import numpy as np
    >>> reoriented = reorient(np.diag([-2.0, 2.0, 3.0, 1.0]), (10, 20, 30)).affine
    >>> placement = world_placement(reoriented)
    >>> placement["scale"], sorted(placement)
    ((3.0, 2.0, 2.0), ['scale', 'translate'])
    """
    reoriented_affine = np.asarray(reoriented_affine, dtype=float)
    linear = _RAS_TO_NAPARI_WORLD @ reoriented_affine[:3, :3]
    origin = _RAS_TO_NAPARI_WORLD @ reoriented_affine[:3, 3]
    voxel_sizes = np.linalg.norm(linear, axis=0)
    directions = linear / voxel_sizes
    leading_scale = tuple(float(axis.scale) for axis in leading_axes)
    leading_translate = tuple(float(axis.translate) for axis in leading_axes)
    scale = (*leading_scale, *map(float, voxel_sizes))
    if np.allclose(directions, np.eye(3), atol=_OBLIQUE_TOLERANCE):
        return {"scale": scale, "translate": (*leading_translate, *map(float, origin))}
    napari_affine = np.eye(len(scale) + 1)
    napari_affine[-4:-1, -4:-1] = directions
    napari_affine[-4:-1, -1] = origin
    return {
        "scale": scale,
        "translate": (*leading_translate, 0.0, 0.0, 0.0),
        "affine": napari_affine,
    }


def layer_geometry(
    affine_ras: np.ndarray,
    spatial_shape: Sequence[int],
    *,
    space_unit: str = "millimeter",
    leading_axes: Sequence[LeadingAxis] = (),
) -> tuple[Reorientation, dict[str, Any]]:
    """Axis mapping and napari layer keywords for voxels with a voxel-to-RAS affine.

    Parameters
    ----------
    affine_ras : array_like
        4x4 map from source voxel indices ``(i, j, k)`` to RAS+ millimetres.
    spatial_shape : sequence of int
        The source shape along ``i, j, k`` (further entries are ignored).
    space_unit : str
        Unit of the spatial axes, as napari (pint) spells it.
    leading_axes : sequence of LeadingAxis
        Non-spatial napari axes before ``(z, y, x)``, e.g. time.

    Returns
    -------
    reorientation : Reorientation
        Which source axis, run which way, each napari spatial axis reads.
    kwargs : dict
        ``scale``, ``translate`` (and ``affine`` when oblique), ``axis_labels`` and
        ``units`` for ``viewer.add_image``: the layer's world coordinates are then the
        scanner millimetres of ``affine_ras``.

    Examples
    --------
    >>> import numpy as np
    >>> r, kwargs = layer_geometry(np.diag([-2.0, 2.0, 3.0, 1.0]), (10, 20, 30))
    >>> r.spatial_axis, kwargs["scale"], kwargs["axis_labels"], kwargs["units"]
    ((2, 1, 0), (3.0, 2.0, 2.0), ('I→S', 'P→A', 'L→R'), ('millimeter', 'millimeter', 'millimeter'))
    """
    reorientation = reorient(affine_ras, spatial_shape)
    kwargs = world_placement(reorientation.affine, leading_axes)
    kwargs["axis_labels"] = (*(axis.label for axis in leading_axes), *SPATIAL_AXIS_LABELS)
    kwargs["units"] = (*(axis.unit for axis in leading_axes), *[space_unit] * 3)
    return reorientation, kwargs
