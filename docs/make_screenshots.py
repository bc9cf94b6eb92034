"""Make the documentation's screenshots from real napari windows, under Xvfb.

Every picture in the docs comes from here: a real napari viewer runs each tutorial script
of ``examples/`` through napari-bigvol, and the window is grabbed and saved into
``docs/images/``. Run it after changing a tutorial or a widget::

    xvfb-run -a -s "-screen 0 1600x1200x24" .venv/bin/python docs/make_screenshots.py

Generated data go to a temporary folder (or ``--workdir``) and are reused across runs.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import napari
import numpy as np
from PIL import Image
from qtpy.QtWidgets import QApplication

from napari_bigvol._models._layers import Scope
from napari_bigvol._qt.channels_widget import SplitChannelsWidget
from napari_bigvol._qt.export_widget import ExportZarrWidget
from napari_bigvol._qt.histogram_widget import HistogramWidget
from napari_bigvol._qt.ortho_widget import OrthogonalViewsWidget
from napari_bigvol._qt.threshold_widget import ThresholdMaskWidget
from napari_bigvol._qt.view_cache_widget import ViewCacheWidget
from napari_bigvol.ops import view_cache
from napari_bigvol.sample import brain_voxel_size

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent / "examples"))

import dicom_to_ome_zarr  # noqa: E402
import histology_channels  # noqa: E402
import mri_tiff_folder  # noqa: E402
import nifti_planes  # noqa: E402
import tiff_to_ome_zarr  # noqa: E402

WINDOW_SIZE = (1280, 860)
MAX_WIDTH = 1100


def _settle(viewer: Any, rounds: int = 20) -> None:
    """Let napari finish its (asynchronous) slicing and drawing before a grab."""
    app = QApplication.instance()
    for _ in range(rounds):
        app.processEvents()
    viewer.window._qt_window.repaint()
    app.processEvents()


def save(viewer: Any, name: str, canvas_only: bool = False) -> Path:
    """Grab the window (or only the canvas) and save it small enough for the docs."""
    _settle(viewer)
    pixels = viewer.screenshot(canvas_only=canvas_only, flash=False)
    image = Image.fromarray(np.asarray(pixels)).convert("RGB")
    if image.width > MAX_WIDTH:
        height = round(image.height * MAX_WIDTH / image.width)
        image = image.resize((MAX_WIDTH, height), Image.Resampling.LANCZOS)
    target = DOCS / "images" / f"{name}.png"
    # A 256-colour palette keeps a napari window (flat UI, grey images) to ~100-300 KB.
    image.quantize(256, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)
    print(f"saved {target.relative_to(DOCS.parent)} ({target.stat().st_size // 1024} KB)")
    return target


def new_viewer() -> Any:
    """Open a napari window of the size every screenshot uses."""
    viewer = napari.Viewer(title="napari-bigvol")
    viewer.window._qt_window.resize(*WINDOW_SIZE)
    return viewer


def dock(viewer: Any, widget_class: type) -> Any:
    """Dock one of napari-bigvol's widgets under the name Plugins > napari-bigvol gives it.

    The widget gets the real viewer. Through the Plugins menu napari hands widgets a
    ``PublicOnlyProxy`` of it, on which napari-bigvol's widgets currently misbehave (layer
    identity checks fail); that is reported to the widgets' owner.
    """
    widget = widget_class(viewer)
    title = {
        "HistogramWidget": "Histogram",
        "ThresholdMaskWidget": "Threshold mask",
        "SplitChannelsWidget": "Split channels",
        "ExportZarrWidget": "Export to zarr",
        "ViewCacheWidget": "View cache",
        "OrthogonalViewsWidget": "Orthogonal views",
    }[widget_class.__name__]
    viewer.window.add_dock_widget(widget, name=f"{title} (napari-bigvol)")
    _settle(viewer)
    return widget


def sample_brain(workdir: Path) -> None:
    """File > Open Sample > napari-bigvol: the synthetic brain and the real MRI."""
    viewer = new_viewer()
    viewer.open_sample("napari-bigvol", "synthetic_brain")
    viewer.dims.set_point(0, 20.0)  # 20 mm above the centre of the head
    save(viewer, "sample_brain")
    viewer.close()

    viewer = new_viewer()
    viewer.open_sample("napari-bigvol", "real_mri")
    save(viewer, "sample_real_mri")
    viewer.close()


def tiff_folder(workdir: Path) -> None:
    """Tutorial 1: the axial TIFF folder."""
    viewer = new_viewer()
    folder = mri_tiff_folder.prepare(workdir, shape=(256, 512, 512))
    mri_tiff_folder.run(viewer, folder)
    save(viewer, "tutorial_tiff_folder")
    viewer.close()


def nifti(workdir: Path) -> None:
    """Tutorial 2: the NIfTI brain in three planes, contrast from the histogram."""
    viewer = new_viewer()
    path = nifti_planes.prepare(workdir)
    nifti_planes.run(viewer, path)
    # Through the centre of the head, except sagittal: 15 mm left of the midline fissure
    # (R = -15 mm).
    for plane, position in (("axial", 0.0), ("coronal", 0.0), ("sagittal", -15.0)):
        nifti_planes.show_plane(viewer, plane, position=position)
        save(viewer, f"tutorial_nifti_{plane}", canvas_only=True)
    nifti_planes.show_plane(viewer, "axial", position=0.0)
    save(viewer, "tutorial_nifti_window")
    viewer.close()


def histology(workdir: Path) -> None:
    """Tutorial 3: ihc.png, its channels and the stain masks."""
    viewer = new_viewer()
    histology_channels.run(viewer, histology_channels.prepare(workdir))
    # The original alone first: the channel layers (additive) and masks hidden.
    for layer in viewer.layers:
        layer.visible = layer is viewer.layers[0]
    save(viewer, "tutorial_histology_rgb", canvas_only=True)
    viewer.layers[0].visible = False
    # viewer.canvas.grid from napari 0.9, viewer.grid before.
    grid = getattr(viewer, "canvas", viewer).grid
    grid.enabled = True
    grid.shape = (1, 3)
    for layer in viewer.layers:
        layer.visible = layer.name in histology_channels.CHANNELS
    save(viewer, "tutorial_histology_channels", canvas_only=True)
    grid.enabled = False
    for layer in viewer.layers:
        layer.visible = layer.name.endswith("mask") or layer is viewer.layers[0]
    save(viewer, "tutorial_histology_masks")
    viewer.close()


def ome_zarr(workdir: Path) -> None:
    """Tutorial 4: the TIFF stack reopened from tiled OME-Zarr."""
    viewer = new_viewer()
    tiff_to_ome_zarr.run(viewer, tiff_to_ome_zarr.prepare(workdir))
    save(viewer, "tutorial_ome_zarr_sagittal")
    viewer.close()


def dicom(workdir: Path) -> None:
    """Tutorial 5: a DICOM series opened by position, then its OME-Zarr export reopened."""
    viewer = new_viewer()
    converted = dicom_to_ome_zarr.run(viewer, dicom_to_ome_zarr.prepare(workdir))
    series, store = viewer.layers
    viewer.layers.selection.active = series
    save(viewer, "tutorial_dicom_series")
    series.visible, store.visible = False, True
    viewer.layers.selection.active = store
    # A sagittal plane of the store 15 mm off the midline, superior up: the series' world
    # frame, kept by the export.
    nifti_planes.show_plane(viewer, "sagittal", position=15.0)
    save(viewer, "tutorial_dicom_ome_zarr")
    print(converted)
    viewer.close()


def _finish_tasks(widget: Any, timeout: float = 120.0) -> None:
    """Run the event loop until the widget's background tasks are done."""
    app = QApplication.instance()
    deadline = time.monotonic() + timeout
    while widget.tasks and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)
    if widget.tasks:
        raise TimeoutError(f"{type(widget).__name__} still busy after {timeout} s")
    # Results reach the widget through queued signals: let them arrive and draw.
    for _ in range(50):
        app.processEvents()
        time.sleep(0.01)


def _brain_viewer(workdir: Path) -> Any:
    viewer = new_viewer()
    viewer.window._qt_window.resize(1400, 900)
    viewer.open(str(nifti_planes.prepare(workdir)), plugin="napari-bigvol")
    return viewer


def widgets(workdir: Path) -> None:
    """One picture per dock widget, each doing its job on tutorial data."""
    viewer = _brain_viewer(workdir)
    histogram = dock(viewer, HistogramWidget)
    histogram.scope = Scope.VOLUME
    histogram.zeros_check.setChecked(True)
    histogram.log_check.setChecked(True)
    histogram.compute_button.click()
    _finish_tasks(histogram)
    if histogram.result is None:
        raise RuntimeError(f"no whole-volume histogram: {histogram.message.text()}")
    save(viewer, "widget_histogram")
    viewer.close()

    viewer = _brain_viewer(workdir)
    threshold = dock(viewer, ThresholdMaskWidget)
    threshold.threshold = 1400
    save(viewer, "widget_threshold")
    viewer.close()

    viewer = _brain_viewer(workdir)
    export = dock(viewer, ExportZarrWidget)
    target = workdir / "brain_124x256x256.ome.zarr"
    shutil.rmtree(target, ignore_errors=True)  # an overwrite would ask in a dialog
    export.path_edit.value = str(target)
    export.export_button.click()
    _finish_tasks(export)
    save(viewer, "widget_export")
    viewer.close()

    viewer = new_viewer()
    viewer.open(str(histology_channels.prepare(workdir)), plugin="napari-bigvol")
    channels = dock(viewer, SplitChannelsWidget)
    channels.split_button.click()
    viewer.layers[0].visible = False
    save(viewer, "widget_channels")
    viewer.close()


def cache(workdir: Path) -> None:
    """Show the view cache: the offer on a sagittal view, the dock after a build, 3-D."""
    import os

    os.environ[view_cache.CACHE_ENV] = str(workdir / "view-cache")
    # The tutorial folder is 128 MiB; a 64 MiB budget makes it "big" like a real scan.
    os.environ[view_cache.BUDGET_3D_ENV] = "64MiB"
    view_cache.clear_cache()
    folder = mri_tiff_folder.prepare(workdir, shape=(256, 512, 512))
    viewer = new_viewer()
    [layer] = viewer.open(str(folder), plugin="napari-bigvol")
    layer.scale = brain_voxel_size(layer.data[0].shape)
    viewer.reset_view()
    viewer.dims.order = (2, 0, 1)  # sagittal: napari-bigvol offers the cache
    viewer.dims.set_current_step(2, 200)
    viewer.scene.camera.orientation2d = ("up", "right")
    viewer.reset_view()
    _settle(viewer)
    save(viewer, "view_cache_offer")
    widget = dock(viewer, ViewCacheWidget)
    viewer.layers.selection.active = layer
    task = widget.build()
    app = QApplication.instance()
    while not task.is_finished:
        app.processEvents()
        time.sleep(0.02)
    save(viewer, "view_cache_dock")
    viewer.window.remove_dock_widget("all")
    viewer.dims.ndisplay = 3
    viewer.reset_view()
    viewer.scene.camera.angles = (0, 30, 120)
    save(viewer, "view_cache_3d")


def orthogonal_views(workdir: Path) -> None:
    """Dock Orthogonal views beside an axial NIfTI brain and an axial TIFF folder."""
    viewer = _brain_viewer(workdir)
    dock(viewer, OrthogonalViewsWidget)
    viewer.dims.point = (10.0, -20.0, 15.0)  # mm: above the centre, anterior, left
    save(viewer, "widget_ortho")
    viewer.close()

    viewer = new_viewer()
    viewer.window._qt_window.resize(1400, 900)
    folder = mri_tiff_folder.prepare(workdir, shape=(256, 512, 512))
    mri_tiff_folder.run(viewer, folder)
    dock(viewer, OrthogonalViewsWidget)
    save(viewer, "widget_ortho_tiff")
    viewer.close()


SHOTS: dict[str, Callable[[Path], None]] = {
    "sample": sample_brain,
    "tiff": tiff_folder,
    "nifti": nifti,
    "histology": histology,
    "zarr": ome_zarr,
    "dicom": dicom,
    "widgets": widgets,
    "cache": cache,
    "ortho": orthogonal_views,
}


def main(argv: list[str] | None = None) -> None:
    """Make the screenshots named on the command line, or all of them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shots", nargs="*", choices=[*SHOTS, []], help="default: all")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "napari-bigvol-tutorials"
    )
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    (DOCS / "images").mkdir(exist_ok=True)
    for name in args.shots or SHOTS:
        SHOTS[name](args.workdir)


if __name__ == "__main__":
    main()
