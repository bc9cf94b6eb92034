"""Command line: ``napari-bigvol convert INPUT OUTPUT.zarr`` writes any volume as OME-Zarr.

This is what a user runs on a cluster node or overnight: the same lazy readers as napari,
the same streamed one-pass pyramid export, a progress bar on the terminal, and exit codes a
script can check (0 done, 1 failed with a message on stderr, 2 bad arguments, 130
interrupted). An interrupted or failed conversion leaves nothing at the output path.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from typing import Any

from napari_bigvol import __version__
from napari_bigvol.errors import BigVolError, Cancelled, OperationError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
_STORE_SUFFIXES = (".zarr", ".zarr/")


def _chunks(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 64,64,64, not {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"chunk sizes must be positive, not {text!r}")
    return sizes


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"a voxel size must be positive, not {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``napari-bigvol`` command.

    Returns
    -------
    argparse.ArgumentParser
        With one sub-command, ``convert``.

    Examples
    --------
    >>> args = build_parser().parse_args(["convert", "scan.nii.gz", "scan.zarr"])
    >>> args.inputs, args.output, args.zarr_format
    (['scan.nii.gz'], 'scan.zarr', 2)
    """
    parser = argparse.ArgumentParser(
        prog="napari-bigvol",
        description="Convert big image volumes for fast viewing in napari.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    convert = _add_convert_command(commands)
    _add_layout_options(convert)
    _add_run_options(convert)
    return parser


def _add_convert_command(commands: Any) -> argparse.ArgumentParser:
    """Add the ``convert`` sub-command with its INPUT and OUTPUT arguments."""
    convert = commands.add_parser(
        "convert",
        help="write a volume (TIFF folder or glob, NIfTI, zarr, ...) as OME-Zarr with a pyramid",
        description=(
            "Write INPUT as OME-Zarr at OUTPUT.zarr, streamed (memory stays bounded) with a "
            "pyramid. Quote glob patterns ('scan_*.tif') so napari-bigvol, not the shell, "
            "expands and naturally sorts them; several unquoted files also work and are "
            "stacked as slices, sorted naturally too (slice_2 before slice_10)."
        ),
    )
    convert.add_argument("inputs", nargs="+", metavar="INPUT", help="file, folder or glob")
    convert.add_argument("output", metavar="OUTPUT.zarr", help="the store to create")
    return convert


def _add_layout_options(convert: argparse.ArgumentParser) -> None:
    """Add the options that shape the store: chunks, compression, pyramid, voxel size."""
    convert.add_argument(
        "--chunks", type=_chunks, metavar="Z,Y,X", help="level-0 chunk shape (default 64,64,64)"
    )
    convert.add_argument(
        "--compressor",
        choices=("zstd", "lz4", "none"),
        default="zstd",
        help="Blosc zstd+bitshuffle (default, small), lz4 (fastest) or none",
    )
    convert.add_argument("--no-pyramid", action="store_true", help="write level 0 only")
    convert.add_argument(
        "--voxel-size",
        type=_positive,
        nargs="+",
        metavar="SIZE",
        help="voxel size of the last axes, e.g. --voxel-size 2 0.5 0.5 (Z Y X) or 0.5 0.5 "
        "(Y X); replaces what the files say (for slices without metadata)",
    )
    convert.add_argument(
        "--unit",
        help="unit of --voxel-size, any spelling pint knows (um, micron, mm, ...); "
        "default micrometer",
    )


def _add_run_options(convert: argparse.ArgumentParser) -> None:
    """Add the options of the run: zarr format, sharding, overwrite, scheduler, quiet."""
    convert.add_argument(
        "--zarr-format",
        type=int,
        choices=(2, 3),
        default=2,
        help="2: NGFF 0.4, widest support (default); 3: NGFF 0.5",
    )
    convert.add_argument(
        "--sharding", action="store_true", help="zarr v3 only: one shard file per work unit"
    )
    convert.add_argument(
        "--overwrite", action="store_true", help="replace OUTPUT if it exists (after success)"
    )
    convert.add_argument(
        "--scheduler", metavar="ADDRESS", help="dask.distributed scheduler, e.g. tcp://host:8786"
    )
    convert.add_argument("--quiet", action="store_true", help="no progress bar")


class _ProgressBar:
    """A tqdm bar on stderr, created at the first report (when the total is known)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="block", desc="export", file=sys.stderr)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def with_voxel_size(
    layer: tuple[Any, dict[str, Any], str], sizes: Sequence[float], unit: str | None
) -> tuple[Any, dict[str, Any], str]:
    """Return ``layer`` (napari layer data) with ``sizes`` as the scale of its last axes.

    Parameters
    ----------
    layer : tuple
        ``(data, kwargs, layer_type)`` as :func:`napari_bigvol.read` returns.
    sizes : sequence of float
        Voxel size of the last ``len(sizes)`` axes (after dropping a channel or RGB axis).
    unit : str or None
        Their unit; micrometres if None.

    Returns
    -------
    tuple
        The same data with new ``scale`` and ``units``.

    Raises
    ------
    OperationError
        If there are more sizes than axes, or the unit is not a length.

    Examples
    --------
    >>> import numpy as np
    >>> _, kwargs, _ = with_voxel_size((np.zeros((4, 8, 8)), {}, "image"), [2, 0.5, 0.5], "um")
    >>> kwargs["scale"], kwargs["units"]
    ((2.0, 0.5, 0.5), ('micrometer', 'micrometer', 'micrometer'))
    """
    # Imported here, like everything heavy: pint loads dask, and the CLI must be inside its
    # own Ctrl-C handling before anything heavy loads.
    from napari_bigvol.ops.export import layer_axis_count
    from napari_bigvol.units import length_unit

    data, kwargs, layer_type = layer
    unit_name = length_unit(unit or "micrometer")
    if unit_name is None:
        raise OperationError(f"--unit {unit}: not a unit of length")
    count = layer_axis_count(data, kwargs)
    if len(sizes) > count:
        raise OperationError(
            f"--voxel-size has {len(sizes)} values but the data have {count} axes"
        )
    scale = list(kwargs.get("scale") or [1.0] * count)
    units = list(kwargs.get("units") or ["pixel"] * count)
    scale[count - len(sizes) :] = [float(size) for size in sizes]
    units[count - len(sizes) :] = [unit_name] * len(sizes)
    return data, {**kwargs, "scale": tuple(scale), "units": tuple(units)}, layer_type


def convert(args: argparse.Namespace) -> str:
    """Run ``convert`` with parsed arguments; return the path written.

    Parameters
    ----------
    args : argparse.Namespace
        From :func:`build_parser`.

    Returns
    -------
    str
        The absolute output path.

    Raises
    ------
    BigVolError
        For unreadable input or a failed export; the message names the path.

    Examples
    --------
    >>> from napari_bigvol.sample import brain_volume, write_tiff_slices
    >>> _ = write_tiff_slices(brain_volume((4, 32, 32)), "axial")
    >>> convert(build_parser().parse_args(["convert", "axial", "axial.zarr", "--quiet"]))
    '...axial.zarr'
    """
    from napari_bigvol.io import read
    from napari_bigvol.ops.compute import set_scheduler
    from napari_bigvol.ops.export import export_layers

    if args.scheduler:
        set_scheduler(args.scheduler)
    source = args.inputs[0] if len(args.inputs) == 1 else args.inputs
    layers = read(source)
    if args.voxel_size:
        layers = [with_voxel_size(layer, args.voxel_size, args.unit) for layer in layers]
    bar = _ProgressBar(enabled=not args.quiet)
    try:
        return export_layers(
            args.output,
            layers,
            overwrite=args.overwrite,
            chunks=args.chunks,
            compressor=args.compressor,
            pyramid=not args.no_pyramid,
            zarr_format=args.zarr_format,
            sharding=args.sharding,
            progress=bar,
        )
    finally:
        bar.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``napari-bigvol`` console script.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns
    -------
    int
        Exit code: 0 done, 1 failed, 2 bad arguments, 130 interrupted.

    Examples
    --------
    >>> from napari_bigvol.sample import brain_volume, write_tiff_slices
    >>> _ = write_tiff_slices(brain_volume((4, 32, 32)), "slices")
    >>> main(["convert", "slices/Synthesized_FLASH25_Axial_*.tiff", "axial.zarr", "--quiet"])
    /.../axial.zarr
    0
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.output.endswith(_STORE_SUFFIXES):
        hint = ""
        if len(args.inputs) > 1:
            hint = (
                f" (the shell may have expanded an unquoted glob into {len(args.inputs) + 1} "
                "paths; quote it, e.g. 'slices_*.tif')"
            )
        parser.error(f"OUTPUT must end in .zarr or .ome.zarr, not {args.output!r}{hint}")
    try:
        written = convert(args)
    except KeyboardInterrupt:
        print("napari-bigvol: interrupted; nothing was written at the output", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Cancelled as error:
        print(f"napari-bigvol: {error}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BigVolError as error:
        print(f"napari-bigvol: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(written)
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover - python -m napari_bigvol.cli
    sys.exit(main())
