"""The "Export to zarr" dock widget: a layer (or its visible slice) to OME-Zarr.

A thin front end to :func:`napari_bigvol.ops.export.export_zarr`: it collects the options,
runs the streamed export in the background (progress bar, Cancel button) and reports the
outcome. An existing output is replaced only when "Overwrite existing" is ticked; even
then the old store is removed only after the new one is complete.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from magicgui.widgets import FileEdit
from napari.layers import Image, Labels
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QCheckBox, QComboBox, QLineEdit, QProgressBar, QPushButton, QWidget

from napari_bigvol._models._layers import Scope
from napari_bigvol._napari.scope import scoped_data
from napari_bigvol._qt._runner import BackgroundTask, ProgressCallback, StopCheck
from napari_bigvol._qt.base import LayerWidget
from napari_bigvol.errors import OperationError
from napari_bigvol.ops.export import export_zarr

if TYPE_CHECKING:
    import napari

_COMPRESSORS = {"zstd + bitshuffle (small)": "zstd", "lz4 (fastest)": "lz4", "none": None}
_FORMATS = {"2 (NGFF 0.4, widest support)": 2, "3 (NGFF 0.5)": 3}


class ExportZarrWidget(LayerWidget):
    """Export an image or labels layer, or its visible slice, to OME-Zarr with a pyramid.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer the widget is docked in.
    parent : QWidget, optional
        Qt parent.

    Attributes
    ----------
    path_edit : magicgui.widgets.FileEdit
        The output store (save mode).
    chunks_edit : QLineEdit
        Level-0 chunk shape, ``z,y,x``; empty for the default 64-voxel cubes.
    compressor_combo, format_combo : QComboBox
        Compressor and zarr format.
    pyramid_check, sharding_check, overwrite_check : QCheckBox
        Write a pyramid; shard (zarr v3); replace an existing output.
    export_button : QPushButton
        Starts the export.
    progress_bar : QProgressBar
        Work units written so far.
    last_task : BackgroundTask or None
        The most recent export.

    Examples
    --------
    >>> widget = ExportZarrWidget(viewer)  # doctest: +SKIP
    >>> widget.path_edit.value = "/data/brain.ome.zarr"  # doctest: +SKIP
    >>> widget.export()  # doctest: +SKIP
    """

    layer_types = (Image, Labels)
    _progressed = Signal(int, int)

    def __init__(self, napari_viewer: napari.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(napari_viewer, parent)
        self.scope = Scope.VOLUME
        self.last_task: BackgroundTask | None = None
        self.path_edit = FileEdit(mode="w", filter="*.zarr")
        self.path_edit.native.setToolTip("The OME-Zarr store to create (a .zarr folder)")
        self.chunks_edit = QLineEdit()
        self.chunks_edit.setPlaceholderText("64,64,64")
        self.chunks_edit.setToolTip(
            "Chunk shape z,y,x. Cubes make XY and XZ views equally fast; whole planes\n"
            "(1,Y,X) make XY fastest and XZ slowest. Empty: 64-voxel cubes."
        )
        self.compressor_combo = QComboBox()
        self.compressor_combo.addItems(list(_COMPRESSORS))
        self.format_combo = QComboBox()
        self.format_combo.addItems(list(_FORMATS))
        self.pyramid_check = QCheckBox("Pyramid (down to about 512 px)")
        self.pyramid_check.setChecked(True)
        self.sharding_check = QCheckBox("Sharding (zarr v3: fewer, larger files)")
        self.sharding_check.setEnabled(False)
        self.overwrite_check = QCheckBox("Overwrite existing")
        self.overwrite_check.setToolTip(
            "Replace the output if it exists; the old store is deleted only after the new "
            "one is complete"
        )
        self.export_button = QPushButton("Export")
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)

        self.form.addRow("Output", self.path_edit.native)
        self.form.addRow("Chunks", self.chunks_edit)
        self.form.addRow("Compressor", self.compressor_combo)
        self.form.addRow("Zarr format", self.format_combo)
        self.form.addRow(self.pyramid_check)
        self.form.addRow(self.sharding_check)
        self.form.addRow(self.overwrite_check)
        self.body.addWidget(self.export_button)
        self.body.addWidget(self.progress_bar)

        self.format_combo.currentIndexChanged.connect(self._on_format_chosen)
        self.export_button.clicked.connect(self.export)
        self._progressed.connect(self._show_progress)
        self.on_update_layers()

    # ---- hooks ---------------------------------------------------------------------------

    def on_update_layers(self) -> None:
        """Enable Export for a chosen layer and suggest ``~/<layer name>.ome.zarr`` as output."""
        if not hasattr(self, "export_button"):  # called once by the base, before our controls
            return
        layer = self.layer
        self.export_button.setEnabled(layer is not None)
        if layer is not None and not str(self.path_edit.value).endswith(".zarr"):
            self.path_edit.value = os.path.join(
                os.path.expanduser("~"), f"{_file_name(layer.name)}.ome.zarr"
            )

    def on_slice_change(self) -> None:
        """Nothing to redraw: exports run only on request."""

    def on_scope_change(self) -> None:
        """Nothing to redraw: exports run only on request."""

    # ---- options -------------------------------------------------------------------------

    @property
    def output_path(self) -> str:
        """The chosen output, absolute, with ``.zarr`` appended when it has no such suffix."""
        path = os.path.abspath(os.path.expanduser(os.fspath(self.path_edit.value)))
        return path if path.endswith(".zarr") else path + ".ome.zarr"

    def options(self) -> dict[str, Any]:
        """Return the export options chosen in the widget, as :func:`export_zarr` keywords.

        Returns
        -------
        dict
            ``chunks``, ``compressor``, ``pyramid``, ``zarr_format``, ``sharding``.

        Raises
        ------
        OperationError
            If the chunk text is not a list of positive integers.
        """
        text = self.chunks_edit.text().strip()
        chunks = None
        if text:
            try:
                chunks = tuple(int(part) for part in text.replace(" ", "").split(","))
            except ValueError:
                raise OperationError(
                    f"chunks must be integers like 64,64,64, not {text!r}"
                ) from None
        zarr_format = _FORMATS[self.format_combo.currentText()]
        return {
            "chunks": chunks,
            "compressor": _COMPRESSORS[self.compressor_combo.currentText()],
            "pyramid": self.pyramid_check.isChecked(),
            "zarr_format": zarr_format,
            "sharding": zarr_format == 3 and self.sharding_check.isChecked(),
        }

    def _on_format_chosen(self, index: int) -> None:
        self.sharding_check.setEnabled(_FORMATS[self.format_combo.currentText()] == 3)

    # ---- export --------------------------------------------------------------------------

    def export(self) -> BackgroundTask | None:
        """Start exporting the chosen layer and scope; return the background task.

        Returns
        -------
        BackgroundTask or None
            The running export, or None when the input was refused (the message line
            says why).
        """
        try:
            layer = self.require_layer(numeric=True)
            path = self.output_path
            options = self.options()
            if os.path.lexists(path) and not self.overwrite_check.isChecked():
                raise OperationError(
                    f"{path} already exists: tick 'Overwrite existing' to replace it"
                )
            source, keywords = self._source(layer)
        except OperationError as exc:
            self.show_message(str(exc), error=True)
            return None
        overwrite = self.overwrite_check.isChecked()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)

        def compute(progress: ProgressCallback, should_stop: StopCheck) -> str:
            def report(done: int, total: int) -> None:
                progress(done, total)
                self._progressed.emit(done, total)

            return export_zarr(
                source,
                path,
                overwrite=overwrite,
                progress=report,
                should_stop=should_stop,
                **options,
                **keywords,
            )

        self.export_button.setEnabled(False)
        task = self.run_task(
            compute,
            description=f"Export '{layer.name}' to {os.path.basename(path)}",
            on_done=self._done,
            layer=layer,
        )
        task.finished.connect(lambda: self.export_button.setEnabled(self.layer is not None))
        self.last_task = task
        return task

    def _source(self, layer: Image | Labels) -> tuple[Any, dict[str, Any]]:
        if self.effective_scope(layer) is Scope.VOLUME:
            return layer, {}
        scoped = scoped_data(layer, self.viewer, "slice")
        keywords: dict[str, Any] = {
            "scale": scoped.scale,
            "translate": scoped.translate,
            "axis_labels": scoped.axis_labels,
            "units": scoped.units,
            "rgb": scoped.rgb,
            "name": layer.name,
            "is_labels": isinstance(layer, Labels),
        }
        if isinstance(layer, Image):
            keywords["contrast_limits"] = layer.contrast_limits
            keywords["channel_colors"] = None if scoped.rgb else [layer.colormap]
        return scoped.data, keywords

    def _show_progress(self, done: int, total: int) -> None:
        self.progress_bar.setRange(0, total)
        self.progress_bar.setValue(done)

    def _done(self, path: str) -> None:
        self.show_message(f"Wrote {path}")


def _file_name(name: str) -> str:
    return (
        "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name).strip("._") or "layer"
    )
