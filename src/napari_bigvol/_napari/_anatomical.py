"""Per-viewer controller: an upright camera and orientation letters for RAS layers.

NIfTI and DICOM layers carry RAS world coordinates with axis labels ``("I→S", "P→A",
"L→R")`` (:mod:`napari_bigvol.io._orientation`). Whenever the axes a viewer displays are
such axes (after a layer is added or removed, ``dims.order`` changes through napari's
roll and transpose buttons, or 2-D/3-D is switched), :class:`AnatomicalView` sets
the camera's ``orientation`` from :func:`napari_bigvol._display.camera_orientation`, so
axial, coronal and sagittal planes come out upright, and shows the anatomical letters at
the four canvas edges and the cursor's RAS position (napari text overlays). When the
displayed axes stop being RAS axes it puts back the camera orientation it found and hides
the letters: viewers showing other data are left alone. World coordinates are never touched.
"""

from __future__ import annotations

import weakref
from typing import Any

from napari.components.overlays import TextOverlay

from napari_bigvol._display import camera_orientation, edge_letters, ras_readout, settings
from napari_bigvol.io._orientation import LABEL_AXCODES

__all__ = ["LETTER_POSITIONS", "AnatomicalView", "follow_current_viewer", "install", "installed"]

# Canvas edge -> napari canvas position of its orientation letter.
LETTER_POSITIONS = {
    "top": "top_center",
    "bottom": "bottom_center",
    "left": "middle_left",
    "right": "middle_right",
}
_OVERLAY_PREFIX = "bigvol_orientation_"
_VIEWS: weakref.WeakKeyDictionary[Any, AnatomicalView] = weakref.WeakKeyDictionary()


class AnatomicalView:
    """Keeps one viewer's camera upright and its orientation letters current.

    Parameters
    ----------
    viewer : napari.components.ViewerModel
        The viewer to follow; see :func:`install`.

    Attributes
    ----------
    letters : dict
        The text overlay of each canvas edge (``"top"``, ``"bottom"``, ``"left"``,
        ``"right"``), in ``viewer.canvas.overlays`` under ``bigvol_orientation_<edge>``.
    readout : TextOverlay
        The cursor's position in RAS order, bottom left, under ``bigvol_ras_position``.
    """

    def __init__(self, viewer: Any) -> None:
        self._viewer = weakref.ref(viewer)
        self._found_orientation: tuple[str, ...] | None = None
        self.letters = {
            edge: TextOverlay(text="", position=position, font_size=14, visible=False)
            for edge, position in LETTER_POSITIONS.items()
        }
        self.readout = TextOverlay(text="", position="bottom_left", font_size=11, visible=False)
        # napari 0.9 keeps any number of canvas overlays; earlier versions show none.
        overlays = getattr(getattr(viewer, "canvas", None), "overlays", None)
        if overlays is not None:
            for edge, overlay in self.letters.items():
                overlays[_OVERLAY_PREFIX + edge] = overlay
            overlays["bigvol_ras_position"] = self.readout
        viewer.dims.events.order.connect(self.update)
        viewer.dims.events.ndisplay.connect(self.update)
        viewer.dims.events.axis_labels.connect(self.update)
        viewer.layers.events.inserted.connect(self.update)
        viewer.layers.events.removed.connect(self.update)
        _camera(viewer).events.orientation.connect(self.update_letters)
        viewer.cursor.events.position.connect(self.update_readout)
        settings.changed.connect(self.update)
        self.update()

    def displayed_codes(self) -> tuple[str | None, str | None, str | None]:
        """RAS codes of the depth, vertical and horizontal axes (None where not RAS)."""
        viewer = self._viewer()
        if viewer is None:
            return None, None, None
        dims = viewer.dims
        last_three = (None,) * (3 - len(dims.order[-3:])) + tuple(dims.order[-3:])
        return tuple(  # type: ignore[return-value]
            None if axis is None else LABEL_AXCODES.get(dims.axis_labels[axis])
            for axis in last_three
        )

    def shows_ras(self) -> bool:
        """Whether the displayed axes are all RAS axes of a scanner layer."""
        viewer = self._viewer()
        if viewer is None or not any(_is_ras_layer(layer) for layer in viewer.layers):
            return False
        codes = self.displayed_codes()
        needed = codes if viewer.dims.ndisplay == 3 else codes[1:]
        return all(code is not None for code in needed)

    def update(self, event: Any = None) -> None:
        """Set or restore the camera orientation for what is displayed now."""
        viewer = self._viewer()
        if viewer is None:
            return
        camera = _camera(viewer)
        if self.shows_ras():
            if self._found_orientation is None:
                self._found_orientation = tuple(map(str, camera.orientation))
            camera.orientation = camera_orientation(self.displayed_codes())
        elif self._found_orientation is not None:
            camera.orientation = self._found_orientation
            self._found_orientation = None
        self.update_letters()

    def update_letters(self, event: Any = None) -> None:
        """Show the anatomical letter of each canvas edge of a 2-D RAS view, else none."""
        viewer = self._viewer_in_2d_ras()
        texts: dict[str, str] = {}
        if viewer is not None:
            _, vertical, horizontal = self.displayed_codes()
            texts = edge_letters((vertical, horizontal), _camera(viewer).orientation2d)
        for edge, overlay in self.letters.items():
            _show(overlay, texts.get(edge))
        self.update_readout()

    def update_readout(self, event: Any = None) -> None:
        """Show the cursor's RAS position in a 2-D RAS view."""
        viewer = self._viewer_in_2d_ras()
        text = None
        if viewer is not None:
            text = ras_readout(viewer.dims.axis_labels, viewer.cursor.position)
        _show(self.readout, text)

    def _viewer_in_2d_ras(self) -> Any:
        """Return the viewer while it shows a 2-D view of RAS axes, else None."""
        viewer = self._viewer()
        if viewer is None or viewer.dims.ndisplay != 2 or not self.shows_ras():
            return None
        return viewer


def _show(overlay: TextOverlay, text: str | None) -> None:
    """Show ``text`` on ``overlay``, or hide the overlay when there is none."""
    if text is not None:
        overlay.text = text
    overlay.visible = text is not None


def _camera(viewer: Any) -> Any:
    """``viewer.scene.camera`` from napari 0.9, ``viewer.camera`` before."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None else viewer.camera


def _is_ras_layer(layer: Any) -> bool:
    return _are_ras_labels(getattr(layer, "axis_labels", ()))


def _are_ras_labels(labels: Any) -> bool:
    labels = tuple(labels or ())
    return len(labels) >= 3 and all(label in LABEL_AXCODES for label in labels[-3:])


def install(viewer: Any) -> AnatomicalView:
    """Return the viewer's :class:`AnatomicalView`, creating it on first call.

    Parameters
    ----------
    viewer : napari.components.ViewerModel
        A napari viewer (or viewer model).

    Returns
    -------
    AnatomicalView
        The one controller of this viewer.

    Examples
    --------
    >>> from napari.components import ViewerModel
    >>> viewer = ViewerModel()
    >>> install(viewer) is install(viewer)
    True
    """
    view = _VIEWS.get(viewer)
    if view is None:
        view = _VIEWS[viewer] = AnatomicalView(viewer)
    return view


def follow_current_viewer(layer_data: list[Any]) -> None:
    """Install the controller on napari's current viewer if ``layer_data`` holds RAS layers.

    npe2 readers and sample-data functions return layer data without seeing the viewer
    that will show it; napari adds the layers to its current viewer right after.

    Parameters
    ----------
    layer_data : list of tuple
        ``(data, kwargs, layer_type)`` tuples about to be added.
    """
    if not any(_are_ras_labels(kwargs.get("axis_labels")) for _, kwargs, *_ in layer_data):
        return
    from napari import current_viewer

    viewer = current_viewer()
    if viewer is not None:
        install(viewer)


def installed(viewer: Any) -> AnatomicalView | None:
    """Return the viewer's controller if :func:`install` made one, else None."""
    return _VIEWS.get(viewer)
