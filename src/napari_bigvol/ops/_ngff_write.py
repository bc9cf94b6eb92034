"""OME-Zarr (NGFF 0.4 on zarr v2, NGFF 0.5 on zarr v3) metadata for the export.

Only plain dictionaries here: the attributes of an image group (``multiscales`` and
``omero``), of a ``labels`` group and of a label image (``image-label``), in the layout
each NGFF version prescribes. The export writes them after all pixel data, so a group only
carries image metadata once its arrays are complete.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import zarr

from napari_bigvol.io._ngff import IMAGE_OF_LABELS

NGFF_VERSION = {2: "0.4", 3: "0.5"}


@dataclass(frozen=True)
class Axis:
    """One NGFF axis: a name, a type (``space``, ``time`` or ``channel``) and a unit."""

    name: str
    type: str
    unit: str | None = None

    def to_json(self) -> dict[str, str]:
        """Return the axis as NGFF JSON."""
        entry = {"name": self.name, "type": self.type}
        if self.unit:
            entry["unit"] = self.unit
        return entry


def _level_transforms(
    scale: Sequence[float], translate: Sequence[float], factors: Sequence[int]
) -> list[dict[str, Any]]:
    # A downsampled voxel's centre is the mean of the centres it merges: shift by
    # (factor - 1) / 2 level-0 voxels so every level overlays level 0 exactly.
    level_scale = [float(s) * f for s, f in zip(scale, factors, strict=True)]
    level_translate = [
        float(t) + (f - 1) / 2 * float(s)
        for t, s, f in zip(translate, scale, factors, strict=True)
    ]
    transforms: list[dict[str, Any]] = [{"type": "scale", "scale": level_scale}]
    if any(level_translate):
        transforms.append({"type": "translation", "translation": level_translate})
    return transforms


def multiscales(
    *,
    name: str,
    axes: Sequence[Axis],
    scale: Sequence[float],
    translate: Sequence[float],
    cumulative: Sequence[Sequence[int]],
    method: str,
    zarr_format: int,
    image_of_labels: bool = False,
) -> dict[str, Any]:
    """Build the ``multiscales`` entry of an image group.

    Parameters
    ----------
    name : str
        Image name.
    axes : sequence of Axis
        In NGFF order (time, channel, space).
    scale, translate : sequence of float
        Level-0 voxel size and origin per axis.
    cumulative : sequence of sequence of int
        Downsampling factor of each level relative to level 0; arrays are named
        ``"0"``, ``"1"``, ...
    method : str
        How levels were made (``"mean"`` or ``"mode"``); stored as the multiscale type.
    zarr_format : int
        2 (NGFF 0.4, carries ``version``) or 3 (NGFF 0.5, version lives under ``ome``).

    Returns
    -------
    dict
        One multiscale description.

    Examples
    --------
    >>> axes = [Axis("y", "space"), Axis("x", "space")]
    >>> entry = multiscales(name="a", axes=axes, scale=[1, 1], translate=[0, 0],
    ...                     cumulative=[(1, 1), (2, 2)], method="mean", zarr_format=2)
    >>> entry["datasets"][1]["coordinateTransformations"][0]["scale"]
    [2.0, 2.0]
    """
    entry: dict[str, Any] = {
        "name": name,
        "axes": [axis.to_json() for axis in axes],
        "datasets": [
            {
                "path": str(level),
                "coordinateTransformations": _level_transforms(scale, translate, f),
            }
            for level, f in enumerate(cumulative)
        ],
        "type": method,
        "metadata": {"method": f"napari_bigvol.ops.export ({method} of 2 per halved axis)"},
    }
    if image_of_labels:
        entry["metadata"][IMAGE_OF_LABELS] = True
    if zarr_format == 2:
        entry = {"version": NGFF_VERSION[2], **entry}
    return entry


def omero(
    *,
    name: str,
    labels: Sequence[str],
    colors: Sequence[str],
    windows: Sequence[tuple[float, float, float, float]],
    zarr_format: int,
) -> dict[str, Any]:
    """Build the ``omero`` rendering settings: one entry per channel.

    Parameters
    ----------
    name : str
        Image name.
    labels : sequence of str
        Channel names.
    colors : sequence of str
        Channel colours as ``RRGGBB`` hex.
    windows : sequence of tuple
        ``(min, max, start, end)`` per channel: data range and display window.
    zarr_format : int
        2 or 3; only NGFF 0.4 carries a version here.

    Returns
    -------
    dict
        The ``omero`` attribute.

    Examples
    --------
    >>> omero(name="a", labels=["dapi"], colors=["0000FF"], windows=[(0, 255, 10, 200)],
    ...       zarr_format=3)["channels"][0]["window"]
    {'min': 0.0, 'max': 255.0, 'start': 10.0, 'end': 200.0}
    """
    channels = [
        {
            "label": label,
            "color": color,
            "window": dict(zip(("min", "max", "start", "end"), map(float, window), strict=True)),
            "active": True,
            "coefficient": 1.0,
            "family": "linear",
            "inverted": False,
        }
        for label, color, window in zip(labels, colors, windows, strict=True)
    ]
    entry: dict[str, Any] = {
        "name": name,
        "channels": channels,
        "rdefs": {"model": "color" if len(channels) > 1 else "greyscale"},
    }
    if zarr_format == 2:
        entry["version"] = NGFF_VERSION[2]
    return entry


def image_label(zarr_format: int) -> dict[str, Any]:
    """Build the ``image-label`` attribute of a label image, pointing back at its image."""
    entry: dict[str, Any] = {"source": {"image": "../../"}}
    if zarr_format == 2:
        entry["version"] = NGFF_VERSION[2]
    return entry


def write_attributes(group: zarr.Group, attributes: dict[str, Any], zarr_format: int) -> None:
    """Store NGFF ``attributes`` on ``group``: top level for 0.4, under ``ome`` for 0.5.

    Parameters
    ----------
    group : zarr.Group
        An open, writable group.
    attributes : dict
        For example ``{"multiscales": [...], "omero": {...}}`` or ``{"labels": [...]}``.
    zarr_format : int
        2 or 3.

    Examples
    --------
    >>> group = zarr.open_group(zarr.storage.MemoryStore(), mode="w", zarr_format=3)
    >>> write_attributes(group, {"labels": ["mask"]}, 3)
    >>> dict(group.attrs)
    {'ome': {'version': '0.5', 'labels': ['mask']}}
    """
    if zarr_format == 2:
        group.attrs.update(attributes)
    else:
        group.attrs.update({"ome": {"version": NGFF_VERSION[3], **attributes}})
