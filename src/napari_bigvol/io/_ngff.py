"""OME-Zarr (NGFF) metadata: read leniently (0.1 to 0.5), written strictly (0.4 and 0.5).

The one NGFF module of the package: the reader (:mod:`napari_bigvol.io.zarr_store`) and
the export (:mod:`napari_bigvol.ops.export`) both use it.

*Reading* works on plain attribute dictionaries (no file access here; the zarr reader
hands them in) and tolerates old and odd files. Everything it returns is what napari
needs: per-axis scale and translation, axis labels, units napari's pint registry
understands, and per-channel names, colormaps and contrast windows. Kept hand-written on
purpose: it accepts NGFF 0.1 to 0.3 and files that ome-zarr-models refuses.

*Writing* builds the metadata with ome-zarr-models, which validates it as it is built, and
validates the finished store with it too. One writer object per NGFF version
(:data:`NGFF_WRITERS`: 0.4 on zarr v2, 0.5 on zarr v3), as ome-zarr-py keeps one Format
class per version.
"""

from __future__ import annotations

import importlib
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

HEX_COLOUR = re.compile(r"^#?([0-9a-fA-F]{6})([0-9a-fA-F]{2})?$")
#: napari's named colormaps of pure colours and their ``omero`` hex colours, both ways:
#: the reader shows ``FF0000`` as "red" (reads better in the layer list), the export
#: writes "red" as ``FF0000``.
COLORMAP_HEX = {
    "red": "FF0000",
    "green": "00FF00",
    "blue": "0000FF",
    "magenta": "FF00FF",
    "cyan": "00FFFF",
    "yellow": "FFFF00",
    "gray": "FFFFFF",
}
_NAMED_COLOURS = {hex_colour.lower(): name for name, hex_colour in COLORMAP_HEX.items()}


@dataclass(frozen=True)
class Axis:
    """One axis of an OME-Zarr image: its name, type (space, time, channel...) and unit."""

    name: str
    type: str | None
    unit: str | None = None


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
    outer = _transform_list(entry, where, "the multiscale")
    scales, translations = [], []
    for dataset, path in zip(entry["datasets"], paths, strict=True):
        transforms = _transform_list(dataset, where, f"dataset {path!r}") + outer
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


def _transform_list(owner: Mapping[str, Any], where: str, what: str) -> list[Any]:
    """Return the ``coordinateTransformations`` of a multiscale or dataset entry, checked."""
    transforms = owner.get("coordinateTransformations") or []
    if not isinstance(transforms, list):
        raise ReadError(
            where, f"{what}: the OME-Zarr coordinateTransformations are not a list: {transforms!r}"
        )
    return transforms


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
    match = HEX_COLOUR.match(colour.strip()) if isinstance(colour, str) else None
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


# --- writing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageDescription:
    """What the export knows about one multiscale image (or label image) to describe.

    Attributes
    ----------
    name : str
        Image name.
    axes : tuple of Axis
        In NGFF order (time, channel, space), units as NGFF names.
    scale, translate : tuple of float
        Level-0 voxel size and origin per axis.
    cumulative : tuple of tuple of int
        Downsampling factor of each level relative to level 0; arrays are named
        ``"0"``, ``"1"``, ...
    method : str
        How the levels were made (``"mean"`` or ``"mode"``).
    image_of_labels : bool
        The image only copies its labels (see :data:`IMAGE_OF_LABELS`).
    """

    name: str
    axes: tuple[Axis, ...]
    scale: tuple[float, ...]
    translate: tuple[float, ...]
    cumulative: tuple[tuple[int, ...], ...]
    method: str
    image_of_labels: bool = False


@dataclass(frozen=True)
class ChannelWindow:
    """One channel's ``omero`` rendering: name, ``RRGGBB`` colour, data range and window."""

    label: str
    color: str
    minimum: float
    maximum: float
    start: float
    end: float


def _level_datasets(image: ImageDescription, models: Any) -> list[Any]:
    # A downsampled voxel's centre is the mean of the centres it merges: shift by
    # (factor - 1) / 2 level-0 voxels so every level overlays level 0 exactly.
    datasets = []
    for level, factors in enumerate(image.cumulative):
        scale = [float(s) * f for s, f in zip(image.scale, factors, strict=True)]
        translation = [
            float(t) + (f - 1) / 2 * float(s)
            for t, s, f in zip(image.translate, image.scale, factors, strict=True)
        ]
        datasets.append(
            models.Dataset.build(
                path=str(level), scale=scale, translation=translation if any(translation) else None
            )
        )
    return datasets


class NgffWriter:
    """Build, store and validate the metadata of one NGFF version with ome-zarr-models."""

    version: str
    zarr_format: int

    def __init__(self) -> None:
        self._models: Any = None

    @property
    def models(self) -> Any:
        """The ome-zarr-models classes of this version, imported on first use (pydantic)."""
        if self._models is None:
            self._models = self._import_models()
        return self._models

    def _import_models(self) -> _Models:
        def module(name: str) -> Any:
            return importlib.import_module(
                f"ome_zarr_models.v{self.version.replace('.', '')}.{name}"
            )

        return _Models(
            Axis=module("axes").Axis,
            Dataset=module("multiscales").Dataset,
            Multiscale=module("multiscales").Multiscale,
            ImageAttrs=module("image").ImageAttrs,
            LabelsAttrs=module("labels").LabelsAttrs,
            ImageLabelAttrs=module("image_label").ImageLabelAttrs,
            Label=module("image_label_types").Label,
            Image=module("image").Image,
        )

    def _multiscale(self, image: ImageDescription) -> Any:
        models = self.models
        metadata: dict[str, Any] = {
            "method": f"napari_bigvol.ops.export ({image.method} of 2 per halved axis)"
        }
        if image.image_of_labels:
            metadata[IMAGE_OF_LABELS] = True
        axes = [
            models.Axis(name=axis.name, type=axis.type, unit=axis.unit)
            if axis.unit
            else models.Axis(name=axis.name, type=axis.type)
            for axis in image.axes
        ]
        return models.Multiscale(
            axes=axes,
            datasets=_level_datasets(image, models),
            name=image.name,
            type=image.method,
            metadata=metadata,
            **self._multiscale_extra(),
        )

    def _multiscale_extra(self) -> dict[str, Any]:
        return {}

    def _omero(self, name: str, channels: Sequence[ChannelWindow]) -> dict[str, Any]:
        from ome_zarr_models.common.omero import Channel, Omero, Window

        omero = Omero(
            channels=[
                Channel(
                    label=c.label,
                    color=c.color,
                    window=Window(min=c.minimum, max=c.maximum, start=c.start, end=c.end),
                    active=True,
                    coefficient=1.0,
                    family="linear",
                    inverted=False,
                )
                for c in channels
            ],
            name=name,
            rdefs={"model": "color" if len(channels) > 1 else "greyscale"},
            **self._omero_extra(),
        )
        return _json(omero)

    def _omero_extra(self) -> dict[str, Any]:
        return {}

    def image_attributes(
        self, image: ImageDescription, channels: Sequence[ChannelWindow]
    ) -> dict[str, Any]:
        """Return the zarr attributes of an image group: ``multiscales`` and ``omero``.

        Examples
        --------
        >>> image = ImageDescription("a", (Axis("y", "space"), Axis("x", "space")),
        ...                          (1.0, 1.0), (0.0, 0.0), ((1, 1), (2, 2)), "mean")
        >>> attrs = NGFF_WRITERS[2].image_attributes(
        ...     image, [ChannelWindow("a", "FFFFFF", 0, 255, 0, 255)])
        >>> attrs["multiscales"][0]["datasets"][1]["coordinateTransformations"][0]["scale"]
        [2.0, 2.0]
        >>> NGFF_WRITERS[3].image_attributes(image, [])["ome"]["version"]
        '0.5'
        """
        attributes = self.models.ImageAttrs(
            multiscales=[self._multiscale(image)],
            omero=self._omero(image.name, channels) if channels else None,
            **self._attrs_extra(),
        )
        return self._nest(_json(attributes))

    def labels_attributes(self, names: Sequence[str]) -> dict[str, Any]:
        """Return the zarr attributes of a ``labels`` group listing ``names``.

        Examples
        --------
        >>> NGFF_WRITERS[3].labels_attributes(["mask"])
        {'ome': {'version': '0.5', 'labels': ['mask']}}
        """
        return self._nest(
            _json(self.models.LabelsAttrs(labels=list(names), **self._attrs_extra()))
        )

    def label_image_attributes(self, image: ImageDescription) -> dict[str, Any]:
        """Return the zarr attributes of a label image, pointing back at its image."""
        attributes = self.models.ImageLabelAttrs(
            multiscales=[self._multiscale(image)],
            image_label=self.models.Label(source={"image": "../../"}, **self._label_extra()),
            **self._attrs_extra(),
        )
        return self._nest(_json(attributes))

    def _attrs_extra(self) -> dict[str, Any]:
        return {}

    def _label_extra(self) -> dict[str, Any]:
        return {}

    def _nest(self, attributes: dict[str, Any]) -> dict[str, Any]:
        return attributes

    def validate(self, group: Any) -> None:
        """Validate a finished image group, its arrays and its labels, with ome-zarr-models.

        Raises
        ------
        pydantic.ValidationError
            If the store does not follow this NGFF version.
        """
        self.models.Image.from_zarr(group)


class NgffV04(NgffWriter):
    """NGFF 0.4 on zarr v2: attributes at the top level, a ``version`` in each entry."""

    version = "0.4"
    zarr_format = 2

    def _multiscale_extra(self) -> dict[str, Any]:
        return {"version": self.version}

    def _omero_extra(self) -> dict[str, Any]:
        return {"version": self.version}

    def _label_extra(self) -> dict[str, Any]:
        return {"version": self.version}


class NgffV05(NgffWriter):
    """NGFF 0.5 on zarr v3: attributes under ``ome``, with the version there only."""

    version = "0.5"
    zarr_format = 3

    def _attrs_extra(self) -> dict[str, Any]:
        return {"version": self.version}

    def _nest(self, attributes: dict[str, Any]) -> dict[str, Any]:
        return {"ome": attributes}


@dataclass(frozen=True)
class _Models:
    Axis: Any
    Dataset: Any
    Multiscale: Any
    ImageAttrs: Any
    LabelsAttrs: Any
    ImageLabelAttrs: Any
    Label: Any
    Image: Any


def _json(model: Any) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


#: The metadata writer for each zarr format: NGFF 0.4 on zarr v2, NGFF 0.5 on zarr v3.
NGFF_WRITERS: dict[int, NgffWriter] = {2: NgffV04(), 3: NgffV05()}
