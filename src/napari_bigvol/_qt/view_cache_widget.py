"""Viewer glue for the view cache: the "View cache" dock and the offers where they help.

* :class:`ViewCacheOffers` watches a viewer. When a coronal or sagittal view (a
  ``dims.order`` change, roll or transpose) or 3-D is asked of a big layer that the cache
  does not back yet, it shows a notification whose "Build view cache" button builds the
  cache in the background and then switches the layer to it. It is installed by the
  napari-bigvol reader and by the dock.
* :class:`ViewCacheWidget` (*Plugins > napari-bigvol > View cache*) shows where the cache
  lives and how full it is, builds the cache for a chosen layer, and clears it.

The build runs in a napari thread worker with a progress bar and Cancel
(:func:`~napari_bigvol._qt._runner.run_in_background`); the switch keeps the layer's
name, place in the layer list, contrast limits, colormap, opacity and the rest of its
display settings.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from dask.utils import format_bytes
from napari.layers import Image
from napari.utils.notifications import Notification, NotificationSeverity, notification_manager
from qtpy.QtWidgets import QComboBox, QLabel, QPushButton, QVBoxLayout, QWidget

from napari_bigvol._qt._runner import BackgroundTask, run_in_background
from napari_bigvol._qt.base import DockWidget
from napari_bigvol.errors import OperationError
from napari_bigvol.ops import view_cache

if TYPE_CHECKING:
    import napari

LayerData = view_cache.LayerData

__all__ = [
    "ViewCacheOffers",
    "ViewCacheWidget",
    "is_big_uncached",
    "layer_source",
    "switch_to_cache",
]


def layer_source(layer: Any) -> str | list[str] | None:
    """Return the path(s) a napari-bigvol layer was read from, or None (in-memory data).

    Examples
    --------
    >>> from napari.layers import Image
    >>> import numpy as np
    >>> layer_source(Image(np.zeros((2, 2)), metadata={"bigvol": {"source": "/d/a.nii"}}))
    '/d/a.nii'
    """
    facts = (getattr(layer, "metadata", None) or {}).get("bigvol", {})
    source = facts.get("source") or facts.get("path")
    if isinstance(source, list | tuple):
        return [os.fspath(s) for s in source]
    return os.fspath(source) if source else None


def is_big_uncached(layer: Any, budget: int | None = None) -> bool:
    """Whether ``layer`` is a file-backed image over ``budget`` bytes not yet on the cache.

    Examples
    --------
    >>> from napari.layers import Image
    >>> import numpy as np
    >>> is_big_uncached(Image(np.zeros((4, 4, 4))))
    False
    """
    if not isinstance(layer, Image) or layer_source(layer) is None:
        return False
    if "view_cache" in layer.metadata.get("bigvol", {}):
        return False
    level_zero = layer.data[0] if layer.multiscale else layer.data
    return level_zero.nbytes > (budget if budget is not None else view_cache.budget_3d())


def _side_view(viewer: napari.Viewer, layer: Any) -> bool:
    # The axes the layer was saved in plane by plane are its last two.
    offset = viewer.dims.ndim - layer.ndim
    shown = {axis - offset for axis in viewer.dims.displayed}
    return viewer.dims.ndisplay == 3 or shown != {layer.ndim - 2, layer.ndim - 1}


def _matching_layer(layer: Any, layers: Sequence[LayerData]) -> tuple[Any, int | None, int] | None:
    """Find the cached levels of napari layer ``layer``: (levels, channel axis, channel)."""
    for data, kwargs, _ in layers:
        if not kwargs.get("multiscale"):
            continue
        names = kwargs.get("name")
        channel_axis = kwargs.get("channel_axis")
        if channel_axis is None and (names == layer.name or len(layers) == 1):
            return data, None, 0
        if channel_axis is not None and isinstance(names, list | tuple) and layer.name in names:
            return data, int(channel_axis), names.index(layer.name)
    return None


def switch_to_cache(viewer: napari.Viewer, layer: Image, layers: Sequence[LayerData]) -> Image:
    """Make ``layer`` read from the cache levels in ``layers``, in place.

    The layer object stays the same, so its place in the layer list, its selection, every
    display setting and the widgets that follow it are kept. Only its data change, to the
    cache's multiscale levels, and its metadata gain ``bigvol["view_cache"]``.

    napari documents no switch from single-scale to multiscale after construction, but
    ``multiscale`` is a plain attribute read at every draw; replacing the layer instead
    costs a removal and an insertion (with a ``gc.collect``), a 0.9-1.4 s stall measured
    on a 256^2 x 200 folder, against no stall over 100 ms in place
    (``benchmarks/bench_view_cache.py``).

    Raises
    ------
    OperationError
        If the layer was removed meanwhile, or the cached layers do not include it.
    """
    if layer not in viewer.layers:
        raise OperationError(
            f"layer {layer.name!r} was removed before its view cache was ready; open it again"
        )
    match = _matching_layer(layer, layers)
    if match is None:
        raise OperationError(f"layer {layer.name!r}: the view cache holds no matching image")
    levels, channel_axis, channel = match
    if channel_axis is not None:
        index = (slice(None),) * channel_axis + (channel,)
        levels = [level[index] for level in levels]
    folder = next(
        (
            kw["metadata"]["bigvol"].get("view_cache")
            for _, kw, _ in layers
            if kw.get("multiscale")
        ),
        None,
    )
    bigvol = {**layer.metadata.get("bigvol", {}), "view_cache": folder}
    layer.metadata = {**layer.metadata, "bigvol": bigvol}
    layer.multiscale = True
    layer.data = levels
    return layer


class ViewCacheOffers:
    """Offers and builds the view cache for the big layers of one viewer.

    Use :meth:`install`: one instance per viewer, however often it is called.

    Attributes
    ----------
    viewer : napari.Viewer
        The viewer watched.
    offered : set of str
        Names of layers already offered the cache (each is offered once).
    tasks : list of BackgroundTask
        Builds started.
    """

    _instances: ClassVar[weakref.WeakKeyDictionary] = weakref.WeakKeyDictionary()

    def __init__(self, viewer: napari.Viewer) -> None:
        self.viewer = viewer
        self.offered: set[str] = set()
        self.tasks: list[BackgroundTask] = []
        viewer.dims.events.order.connect(self._on_view_changed)
        viewer.dims.events.ndisplay.connect(self._on_view_changed)

    @classmethod
    def install(cls, viewer: napari.Viewer) -> ViewCacheOffers:
        """Return the offers of ``viewer``, creating them on first use."""
        offers = cls._instances.get(viewer)
        if offers is None:
            offers = cls._instances[viewer] = cls(viewer)
        return offers

    def _on_view_changed(self, event: Any = None) -> None:
        for layer in list(self.viewer.layers):
            if (
                layer.visible
                and layer.name not in self.offered
                and is_big_uncached(layer)
                and _side_view(self.viewer, layer)
            ):
                self.offer(layer)

    def offer(self, layer: Image) -> Notification:
        """Show the "Build view cache" notification for ``layer``."""
        self.offered.add(layer.name)
        size = format_bytes(layer.data[0].nbytes if layer.multiscale else layer.data.nbytes)
        what = "3-D" if self.viewer.dims.ndisplay == 3 else "this view"
        notification = Notification(
            f"'{layer.name}' ({size}) is read plane by plane in the axis it was saved in, "
            f"so {what} is slow. A view cache (a chunked copy in {view_cache.cache_root()}) "
            "makes every axis and 3-D fast.",
            severity=NotificationSeverity.INFO,
            actions=[("Build view cache", lambda: self.build(layer))],
        )
        notification_manager.dispatch(notification)
        return notification

    def build(self, layer: Image) -> BackgroundTask | None:
        """Build (or reuse) the cache of ``layer`` in the background, then switch to it."""
        source = layer_source(layer)
        if source is None:
            notification_manager.dispatch(
                Notification(
                    f"layer {layer.name!r} was not read from a file; export it to "
                    "OME-Zarr instead",
                    severity=NotificationSeverity.WARNING,
                )
            )
            return None

        def compute(progress: Any, should_stop: Any) -> list[LayerData]:
            return view_cache.cached_read(source, progress=progress, should_stop=should_stop)

        task = run_in_background(
            compute,
            description=f"View cache of '{layer.name}'",
            on_done=lambda layers: switch_to_cache(self.viewer, layer, layers),
        )
        self.tasks.append(task)
        return task


class ViewCacheWidget(DockWidget):
    """*View cache* dock: build the cache for a layer, see its size, clear it.

    Constructed as every :class:`~napari_bigvol._qt.base.DockWidget`, from the viewer
    (and a Qt parent).

    Attributes
    ----------
    layer_combo : QComboBox
        Image layers of the viewer.
    build_button : QPushButton
        Builds (or reuses) the cache of the chosen layer and switches the layer to it.
    clear_button : QPushButton
        Deletes every cache entry no layer of this viewer uses.
    status : QLabel
        Where the cache lives, its size and cap, and the last outcome.
    offers : ViewCacheOffers
        The viewer's offers, which also run the builds.
    """

    def __init__(self, napari_viewer: napari.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(napari_viewer, parent)
        # The reader installs the offers on the viewer itself: share them.
        self.offers = ViewCacheOffers.install(self.viewer)
        self.layer_combo = QComboBox()
        self.build_button = QPushButton("Build view cache")
        self.build_button.setToolTip(
            "Write a chunked, multi-resolution copy of the layer's file to the cache folder "
            "and show the layer from it: fast planes along every axis and in 3-D"
        )
        self.clear_button = QPushButton("Clear cache")
        self.status = QLabel()
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        for widget in (self.layer_combo, self.build_button, self.clear_button, self.status):
            layout.addWidget(widget)
        layout.addStretch(1)
        self.build_button.clicked.connect(self.build)
        self.clear_button.clicked.connect(self.clear)
        layer_events = self.viewer.layers.events
        for emitter in (
            layer_events.inserted,
            layer_events.removed,
            self.viewer.layers.selection.events.active,
        ):
            self._connect(emitter, self._refresh_layers)
        self._refresh_layers()
        self.show_usage()

    def _refresh_layers(self, event: Any = None) -> None:
        active = self.viewer.layers.selection.active
        names = [layer.name for layer in self.viewer.layers if isinstance(layer, Image)]
        current = active.name if isinstance(active, Image) else self.layer_combo.currentText()
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self.layer_combo.addItems(names)
        if current in names:
            self.layer_combo.setCurrentText(current)
        self.layer_combo.blockSignals(False)
        self.build_button.setEnabled(bool(names))

    def show_usage(self, outcome: str = "") -> None:
        """Show the cache folder, its size and cap, and ``outcome``."""
        used = sum(entry.size for entry in view_cache.cache_entries())
        text = (
            f"Cache: {view_cache.cache_root()}\n"
            f"Used {format_bytes(used)} of {format_bytes(view_cache.cache_size_limit())} "
            f"(set {view_cache.CACHE_SIZE_ENV} to change)."
        )
        self.status.setText(f"{outcome}\n{text}" if outcome else text)

    def build(self) -> BackgroundTask | None:
        """Build the cache of the chosen layer (in the background) and switch to it."""
        name = self.layer_combo.currentText()
        if name not in self.viewer.layers:
            return None
        layer = self.viewer.layers[name]
        task = self.offers.build(layer)
        if task is not None:
            self.status.setText(f"Building the view cache of '{name}'…")
            task.finished.connect(lambda: self.show_usage(self._outcome(task, name)))
        return task

    @staticmethod
    def _outcome(task: BackgroundTask, name: str) -> str:
        if task.outcome == "done":
            return f"'{name}' now reads from the view cache."
        if task.outcome == "cancelled":
            return f"View cache of '{name}': cancelled."
        return f"View cache of '{name}' failed: {task.error}"

    def clear(self) -> int:
        """Delete the cache entries that no layer of this viewer reads; return bytes freed."""
        in_use = {
            os.path.realpath(folder)
            for layer in self.viewer.layers
            if (folder := layer.metadata.get("bigvol", {}).get("view_cache"))
        }
        freed = 0
        for entry in view_cache.cache_entries():
            if os.path.realpath(entry.folder) not in in_use:
                freed += entry.size
                view_cache.discard(entry)
        kept = f" ({len(in_use)} in use kept)" if in_use else ""
        self.show_usage(f"Freed {format_bytes(freed)}{kept}.")
        return freed
