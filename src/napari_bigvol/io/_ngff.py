"""OME-Zarr (NGFF 0.1 to 0.5) metadata, parsed from plain attribute dictionaries.

No file access here: :mod:`napari_bigvol.io.zarr_store` reads the attributes with zarr
and hands them in. Everything this module returns is what napari needs: per-axis scale
and translation, axis labels, units napari's pint registry understands, and per-channel
names, colormaps and contrast windows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from napari_bigvol.errors import ReadError
from napari_bigvol.units import canonical_unit

# NGFF 0.1/0.2 had no "axes": the data were always (t, c, z, y, x), trailing axes kept.
_LEGACY_AXES = ("t", "c", "z", "y", "x")
_AXIS_TYPES = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}

# napari's pint registry reads axes without a unit as pixels.
PIXEL = "pixel"

_HEX_COLOUR = re.compile(r"^#?([0-9a-fA-F]{6})([0-9a-fA-F]{2})?$")
# Pure colours map to napari's named colormaps, which read better in the layer list.
_NAMED_COLOURS = {
    "ff0000": "red",
    "00ff00": "green",
    "0000ff": "blue",
    "ff00ff": "magenta",
    "00ffff": "cyan",
    "ffff00": "yellow",
    "ffffff": "gray",
}


@dataclass(frozen=True)
class Axis:
    """One axis of an OME-Zarr image: its name, type (space, time, channel...) and unit."""

    name: str
    type: str | None
    unit: str | None


@dataclass(frozen=True)
class Multiscale:
    """The first ``multiscales`` entry of an image group, resolved for one dimensionality.

    ``scales[i]`` and ``translations[i]`` map the pixels of dataset ``i`` to world
    coordinates: the dataset's own transformations followed by the multiscale-level
    ones, as the spec prescribes.
    """

    version: str | None
    name: str | None
    axes: tuple[Axis, ...]
    paths: tuple[str, ...]
    scales: tuple[tuple[float, ...], ...]
    translations: tuple[tuple[float, ...], ...]

    @property
    def channel_axis(self) -> int | None:
        """Index of the first axis of type ``channel``, or None."""
        for index, axis in enumerate(self.axes):
            if axis.type == "channel":
                return index
        return None


@dataclass(frozen=True)
class ChannelDisplay:
    """How the file asks one channel to be shown (from ``omero``); None where it is silent."""

    name: str | None
    colormap: str | None
    window: tuple[float, float] | None
    visible: bool


# The export saves a Labels layer alone as an image of its values (for viewers without
# labels support) plus the same data as NGFF labels; this multiscale metadata key says so,
# and the reader then opens the labels only.
IMAGE_OF_LABELS = "napari_bigvol_image_of_labels"


def is_image_of_labels(ome: Mapping[str, Any]) -> bool:
    """Whether an image group only carries a copy of its labels (see ``IMAGE_OF_LABELS``).

    Examples
    --------
    >>> is_image_of_labels({"multiscales": [{"metadata": {IMAGE_OF_LABELS: True}}]})
    True
    >>> is_image_of_labels({"multiscales": "junk"})
    False
    """
    entries = ome.get("multiscales")
    first = entries[0] if isinstance(entries, list) and entries else None
    metadata = first.get("metadata") if isinstance(first, Mapping) else None
    return isinstance(metadata, Mapping) and metadata.get(IMAGE_OF_LABELS) is True


def ome_attributes(attributes: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return the OME-Zarr attributes of a zarr node, whichever NGFF version wrote them.

    NGFF 0.5 (zarr v3) nests them under ``"ome"``; earlier versions keep them at the top.

    Parameters
    ----------
    attributes : mapping
        The node's zarr attributes.

    Returns
    -------
    mapping
        The dictionary holding ``multiscales``, ``omero``, ``labels``, ``image-label``...

    Examples
    --------
    >>> ome_attributes({"ome": {"version": "0.5", "labels": ["cells"]}})["labels"]
    ['cells']
    >>> ome_attributes({"labels": ["cells"]})["labels"]
    ['cells']
    """
    nested = attributes.get("ome")
    return nested if isinstance(nested, Mapping) else attributes


def dataset_paths(ome: Mapping[str, Any], where: str) -> tuple[str, ...]:
    """Paths of the datasets (pyramid levels) of the first multiscale, largest first.

    Parameters
    ----------
    ome : mapping
        OME attributes of an image group (see :func:`ome_attributes`).
    where : str
        The group's location, used in error messages.

    Returns
    -------
    tuple of str
        Array paths relative to the group.

    Raises
    ------
    ReadError
        If ``multiscales`` lists no datasets or a dataset has no path.

    Examples
    --------
    >>> dataset_paths({"multiscales": [{"datasets": [{"path": "0"}, {"path": "1"}]}]}, "a")
    ('0', '1')
    """
    datasets = _first_multiscale(ome, where).get("datasets")
    if not isinstance(datasets, list) or not datasets:
        raise ReadError(where, "the OME-Zarr multiscales metadata lists no datasets")
    paths = []
    for dataset in datasets:
        path = dataset.get("path") if isinstance(dataset, Mapping) else None
        if not isinstance(path, str) or not path.strip("/"):
            raise ReadError(where, f"an OME-Zarr multiscales dataset has no path: {dataset!r}")
        paths.append(path.strip("/"))
    return tuple(paths)


def describe_multiscale(ome: Mapping[str, Any], ndim: int, where: str) -> Multiscale:
    """Resolve the first multiscale's axes and coordinate transformations.

    Parameters
    ----------
    ome : mapping
        OME attributes of an image group (see :func:`ome_attributes`).
    ndim : int
        Dimensionality of the datasets, read from the arrays themselves.
    where : str
        The group's location, used in error messages.

    Returns
    -------
    Multiscale
        Axes, dataset paths and per-dataset world scale and translation.

    Raises
    ------
    ReadError
        If the axes do not match ``ndim``, or a transformation is malformed or of a kind
        napari cannot show (only scale, translation and identity are defined in NGFF 0.4
        and 0.5).

    Examples
    --------
    >>> ome = {"multiscales": [{
    ...     "axes": [{"name": "y", "type": "space", "unit": "micrometer"},
    ...              {"name": "x", "type": "space", "unit": "micrometer"}],
    ...     "datasets": [{"path": "0", "coordinateTransformations": [
    ...         {"type": "scale", "scale": [0.5, 0.5]},
    ...         {"type": "translation", "translation": [10.0, 0.0]}]}],
    ...     "coordinateTransformations": [{"type": "scale", "scale": [2.0, 2.0]}]}]}
    >>> spec = describe_multiscale(ome, 2, "image.zarr")
    >>> spec.scales[0], spec.translations[0]
    ((1.0, 1.0), (20.0, 0.0))
    """
    entry = _first_multiscale(ome, where)
    paths = dataset_paths(ome, where)
    axes = _parse_axes(entry.get("axes"), ndim, where)
    outer = entry.get("coordinateTransformations") or []
    scales, translations = [], []
    for dataset, path in zip(entry["datasets"], paths, strict=True):
        transforms = list(dataset.get("coordinateTransformations") or []) + list(outer)
        scale, translation = _compose(transforms, ndim, where, path)
        scales.append(scale)
        translations.append(translation)
    version = entry.get("version", ome.get("version"))
    name = entry.get("name")
    return Multiscale(
        version=str(version) if version is not None else None,
        name=name.strip("/") if isinstance(name, str) and name.strip("/") else None,
        axes=axes,
        paths=paths,
        scales=tuple(scales),
        translations=tuple(translations),
    )


def napari_units(axes: Sequence[Axis]) -> tuple[str, ...] | None:
    """Units for napari's ``units=``, or None when no axis has one.

    NGFF unit names pass through; common abbreviations (``µm``, ``um``, ``ms``) become
    their full names; axes without a unit, or with one napari would not understand,
    are shown in pixels.

    Parameters
    ----------
    axes : sequence of Axis
        The axes, in order.

    Returns
    -------
    tuple of str or None

    Examples
    --------
    >>> napari_units([Axis("z", "space", "µm"), Axis("x", "space", None)])
    ('micrometer', 'pixel')
    >>> napari_units([Axis("x", "space", None)]) is None
    True
    """
    known = [canonical_unit(axis.unit) for axis in axes]
    if all(unit is None for unit in known):
        return None
    return tuple(unit or PIXEL for unit in known)


def channel_displays(ome: Mapping[str, Any], count: int) -> list[ChannelDisplay]:
    """Per-channel names, colormaps, contrast windows and visibility from ``omero``.

    Parameters
    ----------
    ome : mapping
        OME attributes of an image group.
    count : int
        Number of channels in the data. Entries ``omero`` lacks are left unset; extra
        entries are ignored.

    Returns
    -------
    list of ChannelDisplay
        One per channel. ``colormap`` is a napari colormap name (``"green"``) or a hex
        colour (``"#ff8000"``), which napari turns into a black-to-colour ramp.

    Examples
    --------
    >>> ome = {"omero": {"channels": [
    ...     {"label": "DAPI", "color": "0000FF", "window": {"start": 5, "end": 900}}]}}
    >>> channel_displays(ome, 1)
    [ChannelDisplay(name='DAPI', colormap='blue', window=(5.0, 900.0), visible=True)]
    """
    omero = ome.get("omero")
    entries = omero.get("channels") if isinstance(omero, Mapping) else None
    entries = entries if isinstance(entries, list) else []
    rdefs = omero.get("rdefs") if isinstance(omero, Mapping) else None
    greyscale = isinstance(rdefs, Mapping) and rdefs.get("model") == "greyscale"
    displays = []
    for index in range(count):
        entry = entries[index] if index < len(entries) else None
        if not isinstance(entry, Mapping):
            displays.append(ChannelDisplay(None, None, None, True))
            continue
        label = entry.get("label")
        colormap = "gray" if greyscale else _colormap(entry.get("color"))
        displays.append(
            ChannelDisplay(
                name=str(label) if label not in (None, "") else None,
                colormap=colormap,
                window=_window(entry.get("window")),
                visible=entry.get("active", True) is not False,
            )
        )
    return displays


def _first_multiscale(ome: Mapping[str, Any], where: str) -> Mapping[str, Any]:
    multiscales = ome.get("multiscales")
    if not isinstance(multiscales, list) or not multiscales:
        raise ReadError(where, "the OME-Zarr 'multiscales' metadata is empty or not a list")
    # The spec: with several multiscales, the first is the default one to show.
    entry = multiscales[0]
    if not isinstance(entry, Mapping):
        raise ReadError(where, f"the OME-Zarr multiscales entry is not an object: {entry!r}")
    return entry


def _parse_axes(raw: Any, ndim: int, where: str) -> tuple[Axis, ...]:
    if raw is None:
        if ndim > len(_LEGACY_AXES):
            raise ReadError(where, f"the OME-Zarr image has {ndim} dimensions but no axes")
        names = _LEGACY_AXES[len(_LEGACY_AXES) - ndim :]
        return tuple(Axis(name, _AXIS_TYPES[name], None) for name in names)
    if not isinstance(raw, list):
        raise ReadError(where, f"the OME-Zarr axes are not a list: {raw!r}")
    if len(raw) != ndim:
        raise ReadError(
            where, f"the OME-Zarr metadata lists {len(raw)} axes but the data have {ndim}"
        )
    axes = []
    for item in raw:
        if isinstance(item, str):  # NGFF 0.3: axes were bare names
            axes.append(Axis(item, _AXIS_TYPES.get(item.lower()), None))
        elif isinstance(item, Mapping) and isinstance(item.get("name"), str):
            kind = item.get("type")
            unit = item.get("unit")
            axes.append(
                Axis(
                    item["name"],
                    kind if isinstance(kind, str) else None,
                    unit if isinstance(unit, str) else None,
                )
            )
        else:
            raise ReadError(where, f"an OME-Zarr axis has no name: {item!r}")
    return tuple(axes)


def _compose(
    transforms: Sequence[Any], ndim: int, where: str, dataset: str
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Fold a list of scale/translation transforms, applied in order, into one of each."""
    context = f"dataset {dataset!r}:"
    scale = [1.0] * ndim
    translation = [0.0] * ndim
    for transform in transforms:
        kind = transform.get("type") if isinstance(transform, Mapping) else None
        if kind == "identity":
            continue
        if kind not in ("scale", "translation"):
            raise ReadError(
                where,
                f"{context} unsupported OME-Zarr coordinate transformation {transform!r}; "
                "only scale and translation can be shown",
            )
        values = transform.get(kind)
        if values is None and "path" in transform:
            raise ReadError(
                where, f"{context} a {kind} stored in a separate array ('path') is not supported"
            )
        numbers = _numbers(values, ndim, f"{context} the OME-Zarr {kind} {values!r}", where)
        if kind == "scale":
            if any(value == 0 for value in numbers):
                raise ReadError(where, f"{context} the OME-Zarr scale {values!r} has a zero entry")
            # A scale after a translation scales the translation too: s2 * (s1 x + t1).
            scale = [s * v for s, v in zip(scale, numbers, strict=True)]
            translation = [t * v for t, v in zip(translation, numbers, strict=True)]
        else:
            translation = [t + v for t, v in zip(translation, numbers, strict=True)]
    return tuple(scale), tuple(translation)


def _numbers(values: Any, ndim: int, what: str, where: str) -> list[float]:
    if (
        not isinstance(values, list)
        or len(values) != ndim
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        or not all(math.isfinite(v) for v in values)
    ):
        raise ReadError(where, f"{what} is not a list of {ndim} finite numbers")
    return [float(v) for v in values]


def _colormap(colour: Any) -> str | None:
    match = _HEX_COLOUR.match(colour.strip()) if isinstance(colour, str) else None
    if match is None:
        return None
    rgb = match.group(1).lower()
    if rgb == "000000":  # a black ramp shows nothing; napari would even invert it
        return "gray"
    return _NAMED_COLOURS.get(rgb, f"#{rgb}")


def _window(window: Any) -> tuple[float, float] | None:
    if not isinstance(window, Mapping):
        return None
    start, end = window.get("start"), window.get("end")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (start, end)):
        return None
    if not (math.isfinite(start) and math.isfinite(end)) or start > end:
        return None
    # napari needs a non-empty range; a window of zero width is widened by one.
    return float(start), (float(end) if end > start else float(start) + 1.0)
