"""The Export model: an output path that follows the chosen layer, and when to ask first.

Each layer gets its own output path: the one the user typed for it, else a default
beside its source file when that folder is writable (never the source itself, never an
existing store), else in the home folder. So choosing another layer after an export
never keeps the previous layer's path. An existing output is replaced only when
"Overwrite existing" is ticked *and* the user confirms, each time.
"""

from __future__ import annotations

import os
import weakref
from dataclasses import dataclass
from typing import Any

from psygnal import Signal

from napari_bigvol.errors import OperationError
from napari_bigvol.ops.export import default_export_path

#: Compressor choices shown, and their names for ``export_zarr``.
COMPRESSORS = {"zstd + bitshuffle (small)": "zstd", "lz4 (fastest)": "lz4", "none": None}
#: zarr format choices shown, and their numbers.
FORMATS = {"2 (NGFF 0.4, widest support)": 2, "3 (NGFF 0.5)": 3}


def source_path(layer: Any) -> str | None:
    """Return the file or folder ``layer`` was read from (napari records it), or None."""
    path = getattr(getattr(layer, "source", None), "path", None)
    return os.fspath(path) if path else None


def default_output(layer: Any, home: str | None = None) -> str:
    """Suggest where to export ``layer``: beside its source when writable, else ``home``.

    The suggestion (:func:`napari_bigvol.ops.export.default_export_path`) never names an
    existing path (a number is appended), so the default never overwrites anything, least
    of all the source.

    Examples
    --------
    >>> import tempfile
    >>> from types import SimpleNamespace
    >>> home = tempfile.mkdtemp()
    >>> default_output(SimpleNamespace(name="brain", source=None), home=home) == (
    ...     os.path.join(home, "brain.ome.zarr")
    ... )
    True
    """
    source = source_path(layer)
    return default_export_path(layer.name, [source] if source else [], fallback_folder=home)


def zarr_path(text: str) -> str:
    """Make ``text`` absolute, with ``.ome.zarr`` appended when it lacks a ``.zarr`` suffix.

    Examples
    --------
    >>> zarr_path("/data/brain")
    '/data/brain.ome.zarr'
    """
    path = os.path.abspath(os.path.expanduser(text))
    return path if path.endswith(".zarr") else path + ".ome.zarr"


def parse_chunks(text: str) -> tuple[int, ...] | None:
    """Read a chunk shape such as ``"8, 64, 64"``; None for an empty text.

    Examples
    --------
    >>> parse_chunks("8, 64,64"), parse_chunks(" ")
    ((8, 64, 64), None)
    """
    text = text.strip()
    if not text:
        return None
    try:
        return tuple(int(part) for part in text.replace(" ", "").split(","))
    except ValueError:
        raise OperationError(f"chunks must be integers like 64,64,64, not {text!r}") from None


@dataclass(frozen=True)
class ExportPlan:
    """An accepted export: where to, whether it replaces a store, and the question to ask."""

    path: str
    overwrite: bool
    question: str = ""


class ExportModel:
    """State and decisions of the Export to zarr widget.

    Attributes
    ----------
    layer : napari layer or None
        The layer to export; set with :meth:`set_layer`.
    path : str
        Its output path.

    Signals
    -------
    path_changed(str)
        The output path changed with the layer.

    Examples
    --------
    >>> import numpy as np
    >>> from napari.layers import Image
    >>> model = ExportModel(home="/tmp")
    >>> first, second = Image(np.zeros((2, 2)), name="a"), Image(np.zeros((2, 2)), name="b")
    >>> model.set_layer(first); model.set_path("/tmp/mine.zarr")
    >>> model.set_layer(second); model.path
    '/tmp/b.ome.zarr'
    >>> model.set_layer(first); model.path
    '/tmp/mine.zarr'
    """

    path_changed = Signal(str)

    def __init__(self, home: str | None = None) -> None:
        self.home = home
        self.layer: Any = None
        self.path = ""
        self._typed: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()

    def set_layer(self, layer: Any) -> None:
        """Choose ``layer``; the path becomes the one typed for it, or its default."""
        self.layer = layer
        if layer is not None:
            self.path = self._typed.get(layer) or default_output(layer, self.home)
            self.path_changed.emit(self.path)

    def set_path(self, text: str) -> None:
        """Take the path the user typed or picked, for the chosen layer only."""
        self.path = zarr_path(text) if text else ""
        if self.layer is not None and self.path:
            self._typed[self.layer] = self.path

    def plan(self, overwrite_ticked: bool) -> ExportPlan:
        """Decide whether the export may start, and what to ask before replacing a store.

        Raises
        ------
        OperationError
            When no path is given, or the target exists and Overwrite is not ticked.
        """
        if not self.path:
            raise OperationError("Choose an output path for the export.")
        if not os.path.lexists(self.path):
            return ExportPlan(self.path, overwrite=False)
        if not overwrite_ticked:
            raise OperationError(
                f"{self.path} already exists: tick 'Overwrite existing' to replace it"
            )
        name = self.layer.name if self.layer is not None else "the layer"
        question = f"{self.path} already exists. Replace it with '{name}'?"
        return ExportPlan(self.path, overwrite=True, question=question)
