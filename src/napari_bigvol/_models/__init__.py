"""Widget models: the state and decisions of each dock widget, without Qt or napari.

napari-animation style: each dock widget in :mod:`napari_bigvol._qt` lays out controls
and forwards events to a plain, psygnal-evented model here, which remembers per-layer
settings, caches results, refuses bad requests with a message and says what to add to the
viewer. Layers and viewers are duck-typed (``layer.data``, ``layer.name``,
``viewer.dims`` ...), so the models test with napari's ``ViewerModel`` or with plain
stand-ins, and this package imports neither Qt nor napari (tests/test_architecture.py).
"""
