"""Shared command line of the tutorial scripts: make the data, run the workflow, show it.

Each tutorial script defines ``prepare(workdir, ...)`` (writes its offline data set once)
and ``run(viewer, path)`` (replays the workflow through napari-bigvol in a real viewer) and
hands both to :func:`launch`.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def launch(
    description: str,
    prepare: Callable[..., Path],
    run: Callable[[Any, Path], Any],
    argv: list[str] | None = None,
    *,
    default_shape: tuple[int, ...] | None = None,
) -> Any:
    """Parse the command line, prepare the data, run the workflow in napari, then show it."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "napari-bigvol-tutorials",
        help="folder for the generated data (reused when it is already there)",
    )
    if default_shape is not None:
        parser.add_argument(
            "--shape",
            type=int,
            nargs=len(default_shape),
            default=default_shape,
            help="size of the generated volume, in voxels (z y x)",
        )
    parser.add_argument("--screenshot", type=Path, help="save a screenshot and exit")
    args = parser.parse_args(argv)

    import napari

    args.workdir.mkdir(parents=True, exist_ok=True)
    extra = {"shape": tuple(args.shape)} if default_shape is not None else {}
    path = prepare(args.workdir, **extra)
    viewer = napari.Viewer(title=description)
    result = run(viewer, path)
    print(result)
    if args.screenshot:
        viewer.screenshot(str(args.screenshot), canvas_only=False)
        viewer.close()
    else:
        napari.run()
    return result


def camera(viewer: Any) -> Any:
    """The viewer's camera: ``viewer.scene.camera`` from napari 0.9, ``viewer.camera`` before."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None else viewer.camera
