"""Asynchronous slicing for the *Orthogonal views* side canvases, on napari's own slicer.

A side plane of a volume saved slice by slice reads every slice file: seconds on an
uncached folder of thousands of TIFFs. :class:`SidePlaneSlicer` reads it on a worker thread
so that a click returns at once, and the plane appears when it is read. It is napari's
:class:`~napari.components._layer_slicer._LayerSlicer` (napari's asynchronous slicing,
NAP-4), switched on for one ``ViewerModel`` only, with three changes:

* **No opportunistic dask cache on the worker thread.** napari computes dask slices inside
  its global ``dask.cache.Cache`` callback, whose bookkeeping is not thread-safe: with the
  main canvas slicing on the GUI thread at the same time, its callbacks failed with
  KeyErrors and slices went missing (which is why napari's experimental async setting is
  not used). Here a side request computes its dask arrays with callbacks of its own, so
  dask never touches the global callback registry from the worker.
* **Superseded reads stop.** A read whose layer has been asked for a newer plane (the user
  clicked again) stops at its next dask task instead of finishing a plane nobody will see;
  napari's slicer only drops requests not yet started. Clicking ten times while a slow
  plane is read costs two planes, not ten.
* **Pan and zoom too** (:func:`read_view_changes_off_thread`). napari reads a multiscale
  layer's new field of view or level from the canvas's draw, on the GUI thread, unless its
  experimental asynchronous setting is on for the whole application.
* **An unchanged plane is not read again.** napari asks its slicer twice per point change
  (``dims.events.point`` and ``current_step``); its synchronous path skips an unchanged
  slice, its asynchronous path does not.

Examples
--------
>>> from napari.components import ViewerModel
>>> viewer_model = ViewerModel()
>>> viewer_model._layer_slicer = SidePlaneSlicer()  # before a QtViewer is made for it
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable, Iterable, Mapping
from contextlib import nullcontext
from typing import Any

import dask.array as da
import numpy as np
from dask.callbacks import Callback, normalize_callback
from napari.components._layer_slicer import _LayerSlicer
from napari.layers import Layer

__all__ = ["SidePlaneSlicer", "read_view_changes_off_thread"]


class _Superseded(Exception):
    """A newer request for the same layer was submitted: this read is not wanted."""


class _PlaneRead:
    """A dask array that napari's slice request indexes and then converts to numpy.

    Indexing stays lazy; the conversion computes on dask's threaded scheduler with
    ``stop`` as its only callback (before every task), never napari's global cache.
    """

    def __init__(self, array: da.Array, stop: Callable[[], None]) -> None:
        self.array = array
        self.stop = stop

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    @property
    def ndim(self) -> int:
        return self.array.ndim

    def __getitem__(self, key: Any) -> _PlaneRead:
        return _PlaneRead(self.array[key], self.stop)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        # Local threads, as napari reads the main plane: an interactive read of one plane.
        check = Callback(pretask=lambda key, dsk, state: self.stop())
        values = self.array.compute(scheduler="threads", callbacks=(normalize_callback(check),))
        return np.asarray(values, dtype=dtype)


class SidePlaneSlicer(_LayerSlicer):
    """napari's layer slicer, asynchronous, for a side view's ``ViewerModel``.

    Assign it to ``viewer_model._layer_slicer`` before a ``QtViewer`` is made for the
    model (the canvas connects to the slicer's ``ready`` event, and applies each plane on
    the GUI thread). Layers that napari cannot slice asynchronously, and hidden layers,
    are sliced as napari always does.
    """

    def __init__(self) -> None:
        super().__init__()
        self._force_sync = False
        self._closing = False
        #: What each visible layer was last asked to show (see :meth:`_slice_key`).
        self._requested: weakref.WeakKeyDictionary[Layer, tuple] = weakref.WeakKeyDictionary()

    def submit(self, *, layers: Iterable[Layer], dims: Any, force: bool = False) -> Any:
        """Slice ``layers`` for ``dims``, leaving out those whose plane is already asked for."""
        if self._closing:  # the canvas is closing: nothing more to show
            return None
        if not self._force_sync and not force:
            layers = [layer for layer in layers if self._plane_changed(layer, dims)]
        return super().submit(layers=layers, dims=dims, force=force)

    def stop(self) -> None:
        """Take no more requests, and stop the running read at its next task."""
        self._closing = True

    def shutdown(self) -> None:
        """Stop (:meth:`stop`), then shut the worker down."""
        self.stop()
        super().shutdown()

    def _plane_changed(self, layer: Layer, dims: Any) -> bool:
        if not layer.visible:
            self._requested.pop(layer, None)  # shown again later: read afresh
            return True
        key = _slice_key(layer, dims)
        if self._requested.get(layer) == key:
            return False
        self._requested[layer] = key
        return True

    def _slice_layers(self, requests: Mapping[weakref.ref, Any]) -> dict:
        """Run each request on the worker thread (napari's own method, with our reads)."""
        responses = {}
        for weak_layer, request in requests.items():
            try:
                responses[weak_layer] = self._own_reads(weak_layer, request)()
            except _Superseded:
                continue
        if responses and not self._closing:
            self.events.ready(value=responses)
        return responses

    def _own_reads(self, weak_layer: weakref.ref, request: Any) -> Any:
        """Return ``request`` reading its dask levels through :class:`_PlaneRead`."""
        fields = {field.name for field in dataclasses.fields(request)}
        levels = ("data_at_data_level", "data_at_thumbnail_level")
        if not set(levels) <= fields or not isinstance(request.data_at_data_level, da.Array):
            return request

        def stop() -> None:
            layer = weak_layer()
            if self._closing or layer is None or layer._slicing_state._last_slice_id != request.id:
                raise _Superseded

        replaced = {
            name: _PlaneRead(getattr(request, name), stop)
            for name in levels
            if isinstance(getattr(request, name), da.Array)
        }
        # napari's dask_indexer would enter the global cache callback on this thread.
        return dataclasses.replace(request, dask_indexer=nullcontext, **replaced)


def read_view_changes_off_thread(layer: Layer) -> None:
    """Send ``layer``'s pan and zoom reads to its viewer's slicer, off the GUI thread.

    When a pan or zoom needs another pyramid level or a part of the plane not yet read,
    napari calls ``layer.refresh(extent=False, thumbnail=False)`` from the canvas's draw.
    With napari's asynchronous setting on, ``refresh`` emits ``events.reload`` and the
    viewer hands the layer to its slicer; otherwise it reads on the calling thread. For
    ``layer`` (a side view's copy, whose viewer's slicer is a :class:`SidePlaneSlicer`)
    that call takes the asynchronous way; every other refresh is napari's own.
    """
    synchronous = layer.refresh

    def refresh(event: Any = None, **options: Any) -> None:
        view_change = options.get("extent") is False and options.get("thumbnail") is False
        if view_change and layer.multiscale and layer.visible and not layer._refresh_blocked:
            layer.events.reload(layer=layer)
        else:
            synchronous(event, **options)

    layer.refresh = refresh


def _slice_key(layer: Layer, dims: Any) -> tuple:
    """Return what decides a layer's plane: napari's slice input, its data and level."""
    slice_input = layer._slicing_state.make_slice_input(dims)
    corners = np.asarray(layer.corner_pixels).tobytes() if layer.multiscale else b""
    return (slice_input, id(layer.data), getattr(layer, "data_level", 0), corners)
