"""Procedurally generated sample volumes, computed chunk by chunk and never held in memory.

The synthetic brain is a T1-weighted-looking head: scalp, skull with marrow, cerebrospinal
fluid, a folded cortex of grey matter over white matter, an interhemispheric fissure,
lateral ventricles, deep grey nuclei and a finely folded cerebellum. Every voxel is a pure
function of its physical position, so any block of the dask array is computed on its own,
from its coordinates alone: nothing is precomputed, nothing is cached, the same block is
bit-identical on every run and on every ``dask.distributed`` worker.

:func:`brain_volume` is in screen order, as a folder of axial TIFF slices usually is:
axis 0 runs inferior to superior, axis 1 anterior to posterior (the nose is at the top of
an axial slice) and axis 2 from the patient's right to left, so napari's default camera
shows an axial slice radiologically. :func:`brain_layer`, the sample layer, follows the
NIfTI reader's convention instead (:mod:`napari_bigvol.io.nifti`): the same voxels as a
lazy flipped view with axes (S, A, R), axis labels ``("I→S", "P→A", "L→R")`` and world
coordinates in RAS millimetres centred on the field of view, exactly what the NIfTI
reader reports for a file written by :func:`write_nifti`; the plugin's napari glue turns
the camera so that it, too, is shown anterior up and radiologically.

The writers turn a generated volume into real files plane by plane (a folder of axial
TIFFs, a NIfTI file) for tutorials and benchmarks. They write into a temporary sibling and
rename it into place only when everything is written, and never replace existing data.
"""

from __future__ import annotations

import gzip
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize

from napari_bigvol.io._orientation import SPATIAL_AXIS_LABELS

__all__ = [
    "BRAIN_AXIS_LABELS",
    "BRAIN_CONTRAST_LIMITS",
    "BRAIN_FIELD_OF_VIEW_MM",
    "BrainModel",
    "brain_layer",
    "brain_pyramid",
    "brain_volume",
    "brain_voxel_size",
    "write_nifti",
    "write_tiff_slices",
]

BRAIN_FIELD_OF_VIEW_MM = 204.8
"""Edge of the cubic field of view, in millimetres (1024 voxels of 0.2 mm)."""
BRAIN_CONTRAST_LIMITS = (0.0, 2200.0)
"""Display range of the synthetic brain: known from the model, never computed from data."""
BRAIN_AXIS_LABELS = SPATIAL_AXIS_LABELS
"""Axis labels of :func:`brain_layer`, as the NIfTI reader gives them (RAS: S, A, R)."""
_DEFAULT_SHAPE = (1024, 1024, 1024)

# Tissue intensities of a T1-weighted scan (arbitrary units, uint16 friendly).
_BACKGROUND = 30.0
_SCALP = 1500.0
_BONE = 220.0
_MARROW = 900.0
_CSF = 330.0
_GREY = 1080.0
_WHITE = 1650.0
_DEEP_GREY = 1250.0
_NOISE_SIGMA = 28.0


@dataclass(frozen=True)
class _Folds:
    """A smooth random field whose zero set draws sulci: a sum of plane waves."""

    directions: np.ndarray  # (k, 3) wave vectors in radians per millimetre
    phases: np.ndarray  # (k,)

    @classmethod
    def make(cls, rng: np.random.Generator, count: int, period_mm: float) -> _Folds:
        directions = rng.normal(size=(count, 3))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        return cls(
            (directions * (2 * math.pi / period_mm)).astype(np.float32),
            rng.uniform(0, 2 * math.pi, count).astype(np.float32),
        )

    def distance_mm(self, s: np.ndarray, p: np.ndarray, l: np.ndarray) -> np.ndarray:  # noqa: E741
        """Approximate distance (mm) to the zero set: |field| over its typical gradient."""
        field = np.zeros(np.broadcast_shapes(s.shape, p.shape, l.shape), np.float32)
        for (ws, wp, wl), phase in zip(self.directions, self.phases, strict=True):
            field += np.sin(ws * s + wp * p + wl * l + phase)
        wavenumber = float(np.linalg.norm(self.directions[0]))
        typical_gradient = wavenumber * math.sqrt(len(self.phases) / 2)
        return np.abs(field) / np.float32(typical_gradient)


def _ellipsoid_radius(
    s: np.ndarray,
    p: np.ndarray,
    l: np.ndarray,  # noqa: E741
    centre: tuple[float, float, float],
    semi_axes: tuple[float, float, float],
) -> np.ndarray:
    """Normalised ellipsoidal radius: below 1 inside, 1 on the surface."""
    return np.sqrt(
        ((s - centre[0]) / semi_axes[0]) ** 2
        + ((p - centre[1]) / semi_axes[1]) ** 2
        + ((l - centre[2]) / semi_axes[2]) ** 2
    )


def _hash_noise(indices: Sequence[np.ndarray], salt: int) -> np.ndarray:
    """Deterministic, roughly Gaussian noise (unit sigma) from integer voxel indices."""
    h = np.uint32(salt * 0x9E3779B1 & 0xFFFFFFFF)
    for index, prime in zip(indices, (0x85EBCA6B, 0xC2B2AE35, 0x27D4EB2F), strict=True):
        h = h ^ (index.astype(np.uint32) * np.uint32(prime))
        h = (h ^ (h >> np.uint32(15))) * np.uint32(0x2C1B3C6D)
    h = h ^ (h >> np.uint32(13))
    # Two 16-bit uniforms summed: a triangular distribution, close enough to Gaussian.
    low = (h & np.uint32(0xFFFF)).astype(np.float32)
    high = (h >> np.uint32(16)).astype(np.float32)
    return (low + high - 65535.0) / np.float32(65535.0 / math.sqrt(6))


@dataclass(frozen=True)
class BrainModel:
    """Geometry and contrast of the synthetic head, evaluated at physical positions.

    Parameters
    ----------
    seed : int
        Seed of the cortical and cerebellar folding patterns.

    Examples
    --------
    >>> import numpy as np
    >>> model = BrainModel(seed=0)
    >>> centre = model.intensity(np.zeros(1), np.zeros(1), np.array([30.0]))
    >>> bool(centre[0] > 900)  # white or grey matter 30 mm left of the midline
    True
    """

    seed: int = 0

    @property
    def _cortex(self) -> _Folds:
        return _Folds.make(np.random.default_rng([self.seed, 1]), 7, period_mm=15.0)

    @property
    def _cerebellum(self) -> _Folds:
        return _Folds.make(np.random.default_rng([self.seed, 2]), 5, period_mm=6.0)

    def intensity(self, s: np.ndarray, p: np.ndarray, l: np.ndarray) -> np.ndarray:  # noqa: E741
        """Noise-free T1-like intensity at positions given in millimetres from the centre.

        Parameters
        ----------
        s, p, l : numpy.ndarray
            Superior, posterior and left coordinates in millimetres; broadcastable.

        Returns
        -------
        numpy.ndarray
            float32 intensities of the broadcast shape.
        """
        s, p, l = (np.asarray(c, np.float32) for c in (s, p, l))  # noqa: E741
        shape = np.broadcast_shapes(s.shape, p.shape, l.shape)
        out = np.full(shape, _BACKGROUND, np.float32)

        head_semi = (88.0, 98.0, 76.0)
        head_depth = (1 - _ellipsoid_radius(s, p, l, (0.0, 0.0, 0.0), head_semi)) * 85.0
        out[head_depth > 0] = _SCALP
        out[head_depth > 5] = _BONE
        out[(head_depth > 7) & (head_depth < 10)] = _MARROW
        out[head_depth > 12] = _CSF

        # Cerebrum: a brain ellipsoid whose surface is folded by the sulci field.
        inside = head_depth > 13
        if not inside.any():
            return out
        si, pi, li = (np.broadcast_to(c, shape)[inside] for c in (s, p, l))
        tissue = self._cerebrum(si, pi, li)
        self._add_cerebellum(tissue, si, pi, li)
        # Slow intensity drift across the field, as a receive coil leaves it.
        tissue *= 1 + 0.06 * np.sin(si / 60.0) + 0.05 * np.cos(pi / 70.0)
        out[inside] = tissue
        return out

    def _cerebrum(self, si: np.ndarray, pi: np.ndarray, li: np.ndarray) -> np.ndarray:
        # Tissue inside the skull: folded cortex, white matter, deep nuclei, ventricles.
        brain_centre, brain_semi = (8.0, -4.0, 0.0), (70.0, 84.0, 64.0)
        brain_depth = (1 - _ellipsoid_radius(si, pi, li, brain_centre, brain_semi)) * 72.0
        # Sulci are walls running in from the surface: the fold field is mostly evaluated on
        # the surface point above each voxel (so it changes slowly with depth), and the
        # walls bend because part of the true position is mixed back in.
        offsets = [c - c0 for c, c0 in zip((si, pi, li), brain_centre, strict=True)]
        radius = np.sqrt(sum((c / a) ** 2 for c, a in zip(offsets, brain_semi, strict=True)))
        lift = np.float32(0.6) / (radius + np.float32(1e-6)) + np.float32(0.4)
        to_csf = self._cortex.distance_mm(*(c * lift for c in offsets))
        fold_depth = 15.0
        deep = brain_depth > fold_depth
        to_csf = np.where(deep, np.hypot(to_csf, brain_depth - fold_depth), to_csf)
        to_csf = np.minimum(to_csf, brain_depth)
        # Interhemispheric fissure, down to the corpus callosum, which bridges the
        # hemispheres under an arch in the middle third; in front and behind it cuts deeper.
        arch = np.clip(1 - ((pi + 4.0) / 36.0) ** 2, 0, 1)
        floor = -30.0 + 52.0 * np.sqrt(arch)
        fissure = np.where(si > floor, np.abs(li), np.hypot(li, si - floor))
        to_csf = np.minimum(to_csf, fissure)

        tissue = np.full(si.shape, _CSF, np.float32)
        tissue[to_csf > 0.7] = _GREY
        tissue[to_csf > 3.4] = _WHITE
        for side in (-1.0, 1.0):
            nuclei = _ellipsoid_radius(si, pi, li, (-2.0, 2.0, 15.0 * side), (13, 20, 9))
            tissue[nuclei < 1] = _DEEP_GREY
            ventricle = _ellipsoid_radius(si, pi, li, (12.0, -2.0, 8.0 * side), (7, 32, 4.5))
            tissue[ventricle < 1] = _CSF
        return tissue

    def _add_cerebellum(
        self, tissue: np.ndarray, si: np.ndarray, pi: np.ndarray, li: np.ndarray
    ) -> None:
        # Cerebellum: below the occipital lobe, with fine folia.
        cerebellum = _ellipsoid_radius(si, pi, li, (-40.0, 46.0, 0.0), (26, 32, 54))
        in_cerebellum = cerebellum < 1
        if in_cerebellum.any():
            depth = (1 - cerebellum[in_cerebellum]) * 25.0
            # Folia are thin sheets stacked from top to bottom.
            folia = self._cerebellum.distance_mm(
                si[in_cerebellum], pi[in_cerebellum] * 0.3, li[in_cerebellum] * 0.1
            )
            folia = np.minimum(np.where(depth > 6, np.hypot(folia, depth - 6), folia), depth)
            small = np.full(folia.shape, _CSF, np.float32)
            small[folia > 0.4] = _GREY
            small[folia > 2.2] = _WHITE
            tissue[in_cerebellum] = small


class _BrainBlock:
    """Dask block function: one block of the brain from its array location alone.

    A small class rather than a closure so the graph pickles for ``dask.distributed``.
    """

    def __init__(self, model: BrainModel, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.model = model
        self.shape = shape
        self.dtype = dtype
        self.spacing = brain_voxel_size(shape)

    def __call__(self, block_info: dict[Any, Any]) -> np.ndarray:
        location = block_info[None]["array-location"]
        indices = [np.arange(start, stop) for start, stop in location]
        grids = np.ix_(*indices)
        # Voxel centres in millimetres from the centre of the field of view.
        s, p, l = (  # noqa: E741
            ((grid + 0.5) - size / 2) * np.float32(step)
            for grid, size, step in zip(grids, self.shape, self.spacing, strict=True)
        )
        values = self.model.intensity(s, p, l)
        noise = _hash_noise(np.broadcast_arrays(*grids), salt=self.model.seed + self.shape[0])
        values += noise * np.float32(_NOISE_SIGMA)
        info = np.iinfo(self.dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(self.dtype)


def brain_voxel_size(shape: Sequence[int] = _DEFAULT_SHAPE) -> tuple[float, ...]:
    """Voxel size in millimetres that fits the synthetic head into ``shape``.

    Parameters
    ----------
    shape : sequence of int
        Volume shape ``(S, P, L)``.

    Returns
    -------
    tuple of float
        Voxel edge along each axis: the field of view divided by the voxel count.

    Examples
    --------
    >>> brain_voxel_size((1024, 1024, 1024))
    (0.2, 0.2, 0.2)
    >>> brain_voxel_size((128, 256, 256))
    (1.6, 0.8, 0.8)
    """
    return tuple(BRAIN_FIELD_OF_VIEW_MM / int(n) for n in shape)


def brain_volume(
    shape: Sequence[int] = _DEFAULT_SHAPE,
    *,
    chunks: Sequence[int] | None = None,
    dtype: np.dtype | type = np.uint16,
    seed: int = 0,
) -> da.Array:
    """Make a synthetic T1-weighted head as a lazy dask array, generated block by block.

    Nothing is computed when the array is made. Each block is generated from its voxel
    coordinates alone, so a block computed on its own equals the same region of any
    larger computation, results are identical on every run, and the graph pickles for a
    ``dask.distributed`` cluster.

    Parameters
    ----------
    shape : sequence of int, optional
        ``(S, P, L)`` voxel counts; the default ``(1024, 1024, 1024)`` is 2 GiB of uint16
        at 0.2 mm. The head always fills the same 204.8 mm field of view, so smaller
        shapes give coarser voxels (see :func:`brain_voxel_size`).
    chunks : sequence of int, optional
        Chunk shape. The default, one axial plane per chunk, makes showing an axial slice
        compute exactly one chunk, like a folder with one TIFF per slice.
    dtype : numpy integer dtype, optional
        Output type; ``uint16`` by default. Values run from about 0 to 2000.
    seed : int, optional
        Seed of the folding patterns.

    Returns
    -------
    dask.array.Array
        The lazy volume.

    Examples
    --------
    >>> brain = brain_volume((64, 64, 64))
    >>> brain.shape, brain.dtype.name, brain.numblocks
    ((64, 64, 64), 'uint16', (64, 1, 1))
    >>> plane = brain[32].compute()  # computes one block
    >>> bool(plane.max() > 1000)
    True
    """
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"the brain needs three positive sizes, got {shape}")
    dtype = np.dtype(dtype)
    if dtype.kind not in "ui":
        raise ValueError(f"the brain is generated as integers, not {dtype}")
    chunks = tuple(chunks) if chunks is not None else (1, shape[1], shape[2])
    model = BrainModel(seed=seed)
    return da.map_blocks(
        _BrainBlock(model, shape, dtype),
        chunks=da.core.normalize_chunks(chunks, shape),
        dtype=dtype,
        meta=np.empty((0, 0, 0), dtype),
        name=f"synthetic-brain-{tokenize(shape, chunks, dtype.str, seed)}",
    )


def brain_pyramid(
    shape: Sequence[int] = _DEFAULT_SHAPE,
    *,
    levels: int = 4,
    dtype: np.dtype | type = np.uint16,
    seed: int = 0,
) -> list[da.Array]:
    """Make the synthetic brain at ``levels`` resolutions, each half the last, finest first.

    Every level is generated directly at its own resolution (the model is sampled at the
    coarser voxel centres), so a coarse level costs only its own voxels and never reads the
    fine one. napari shows the coarse levels when zoomed out and in 3D.

    Parameters
    ----------
    shape : sequence of int, optional
        Shape of the finest level.
    levels : int, optional
        Number of levels; a level stops halving an axis once it reaches one voxel.
    dtype : numpy integer dtype, optional
        Output type.
    seed : int, optional
        Seed of the folding patterns.

    Returns
    -------
    list of dask.array.Array
        One lazy volume per level, finest first.

    Examples
    --------
    >>> [level.shape for level in brain_pyramid((64, 64, 64), levels=3)]
    [(64, 64, 64), (32, 32, 32), (16, 16, 16)]
    """
    shape = tuple(int(n) for n in shape)
    return [
        brain_volume(tuple(max(1, n >> level) for n in shape), dtype=dtype, seed=seed)
        for level in range(levels)
    ]


def brain_layer(
    shape: Sequence[int] = _DEFAULT_SHAPE, *, levels: int = 4, seed: int = 0
) -> tuple[list[da.Array] | da.Array, dict[str, Any], str]:
    """Return the synthetic brain as napari layer data, with physical scale and contrast.

    Parameters
    ----------
    shape : sequence of int, optional
        Shape of the finest level.
    levels : int, optional
        Multiscale levels; 1 gives a single (not multiscale) array.
    seed : int, optional
        Seed of the folding patterns.

    Returns
    -------
    tuple
        ``(data, kwargs, "image")`` for ``viewer.add_image(data, **kwargs)``; the scale is
        in millimetres, the contrast limits come from the model, not from the data.

    Examples
    --------
    >>> data, kwargs, layer_type = brain_layer((64, 64, 64), levels=2)
    >>> kwargs["scale"], kwargs["multiscale"], layer_type
    ((3.2, 3.2, 3.2), True, 'image')
    """
    # The screen-order volume (S, P, L) as a view with axes (S, A, R), like a NIfTI file.
    pyramid = [level[:, ::-1, ::-1] for level in brain_pyramid(shape, levels=levels, seed=seed)]
    shape = pyramid[0].shape
    voxel_size = brain_voxel_size(shape)
    kwargs = {
        "name": "synthetic brain",
        "scale": voxel_size,
        # RAS millimetres with the centre of the field of view at 0, as the NIfTI reader
        # reports for the same volume written by write_nifti.
        "translate": tuple(-step * (n - 1) / 2 for step, n in zip(voxel_size, shape, strict=True)),
        "axis_labels": BRAIN_AXIS_LABELS,
        "units": ("mm", "mm", "mm"),
        "contrast_limits": BRAIN_CONTRAST_LIMITS,
        "colormap": "gray",
        "multiscale": levels > 1,
        "metadata": {
            "bigvol": {
                "source": "napari_bigvol.sample.brain_volume",
                "shape": shape,
                "seed": seed,
            }
        },
    }
    return (pyramid if levels > 1 else pyramid[0]), kwargs, "image"


def _fresh_target(target: Path) -> None:
    if target.exists():
        raise FileExistsError(f"{target}: already exists; choose a new name or remove it first")
    if not target.parent.is_dir():
        raise FileNotFoundError(f"{target.parent}: the folder to write into does not exist")


def _planes(volume: da.Array) -> Any:
    """Axis-0 planes as numpy arrays, computing one chunk row (slab) at a time."""
    start = 0
    for depth in volume.chunks[0]:
        slab = np.asarray(volume[start : start + depth].compute())
        yield from slab
        start += depth


def write_tiff_slices(
    volume: da.Array,
    folder: str | os.PathLike[str],
    *,
    name_template: str = "Synthesized_FLASH25_Axial_{index:04d}.tiff",
    progress: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """Write a volume as a new folder holding one TIFF file per axis-0 plane.

    Planes are computed one chunk row at a time, so memory holds one slab, not the
    volume. Files are written into a temporary sibling folder that is renamed to
    ``folder`` only when every plane is written.

    Parameters
    ----------
    volume : dask.array.Array
        A 3D volume, for example :func:`brain_volume`.
    folder : str or os.PathLike
        The folder to create; it must not exist yet.
    name_template : str, optional
        File name with an ``{index}`` field, numbered from 1 like scanner exports.
    progress : callable, optional
        Called as ``progress(done, total)`` after each plane.

    Returns
    -------
    list of pathlib.Path
        The files written, in order.

    Raises
    ------
    FileExistsError
        If ``folder`` already exists: existing data is never replaced.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "axial"
    >>> files = write_tiff_slices(brain_volume((4, 32, 32)), target)
    >>> [f.name for f in files[:2]]
    ['Synthesized_FLASH25_Axial_0001.tiff', 'Synthesized_FLASH25_Axial_0002.tiff']
    """
    import tifffile

    target = Path(folder)
    _fresh_target(target)
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    total = volume.shape[0]
    try:
        for number, plane in enumerate(_planes(volume), start=1):
            tifffile.imwrite(partial / name_template.format(index=number), plane)
            if progress is not None:
                progress(number, total)
        partial.rename(target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return [target / name_template.format(index=number) for number in range(1, total + 1)]


def write_nifti(
    volume: da.Array,
    path: str | os.PathLike[str],
    voxel_size: Sequence[float],
) -> Path:
    """Write an ``(S, P, L)`` volume as a NIfTI-1 file, one axial plane at a time.

    The file is stored the way many scanners and FSL store axial scans: voxel axes
    ``i, j, k`` run towards left, anterior and superior (``LAS``), and the sform and
    qform map voxels to scanner millimetres with the field of view centred on 0. A
    ``.nii.gz`` name writes a gzip-compressed file.

    Parameters
    ----------
    volume : dask.array.Array
        A 3D volume with axes ``(S, P, L)`` as :func:`brain_volume` makes it.
    path : str or os.PathLike
        ``.nii`` or ``.nii.gz`` file to create; it must not exist yet.
    voxel_size : sequence of float
        Voxel size in millimetres along ``(S, P, L)``.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    FileExistsError
        If ``path`` already exists.

    Examples
    --------
    >>> import tempfile, pathlib, nibabel
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "brain.nii.gz"
    >>> _ = write_nifti(brain_volume((8, 16, 12)), target, (2.0, 1.0, 1.0))
    >>> image = nibabel.load(target)
    >>> image.shape, nibabel.aff2axcodes(image.affine)
    ((12, 16, 8), ('L', 'A', 'S'))
    """
    target = Path(path)
    _fresh_target(target)
    header = _las_header(volume.shape, voxel_size, volume.dtype)
    opener = gzip.open if target.name.endswith(".gz") else open
    handle, partial = tempfile.mkstemp(prefix=f".{target.name}.partial-", dir=target.parent)
    os.close(handle)
    try:
        with opener(partial, "wb") as stream:
            header.write_to(stream)
            stream.write(b"\0" * (352 - stream.tell()))
            for plane in _planes(volume):
                # NIfTI is Fortran ordered: within a k plane, i varies fastest. Row j of
                # that plane is anterior-first, so the posterior axis is reversed.
                stream.write(np.ascontiguousarray(plane[::-1, :]).tobytes())
        # A hard link, unlike a rename, fails rather than replace a file created meanwhile.
        os.link(partial, target)
    finally:
        Path(partial).unlink(missing_ok=True)
    return target


def _las_header(shape: Sequence[int], voxel_size: Sequence[float], dtype: np.dtype) -> Any:
    """NIfTI-1 header of an ``(S, P, L)`` volume stored ``LAS``, centred on 0 (scanner space).

    Examples
    --------
    >>> import nibabel
    >>> header = _las_header((8, 16, 12), (2.0, 1.0, 1.0), np.dtype("uint16"))
    >>> header.get_data_shape(), nibabel.aff2axcodes(header.get_best_affine())
    ((12, 16, 8), ('L', 'A', 'S'))
    """
    import nibabel

    n_s, n_p, n_l = shape
    d_s, d_p, d_l = (float(v) for v in voxel_size)
    # RAS+ world: i (left) lowers x, j (anterior) raises y, k (superior) raises z.
    affine = np.diag([-d_l, d_p, d_s, 1.0])
    affine[:3, 3] = [d_l * (n_l - 1) / 2, -d_p * (n_p - 1) / 2, -d_s * (n_s - 1) / 2]
    header = nibabel.Nifti1Header()
    header.set_data_dtype(dtype)
    header.set_data_shape((n_l, n_p, n_s))
    header.set_zooms((d_l, d_p, d_s))
    header.set_xyzt_units("mm")
    header.set_sform(affine, code="scanner")
    header.set_qform(affine, code="scanner")
    header["vox_offset"] = 352
    return header
