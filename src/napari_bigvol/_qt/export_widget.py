"""The "Export to zarr" dock widget: Qt controls for the export model.

A thin front end to :func:`napari_bigvol.ops.export.export_zarr`: it collects the
options, asks :class:`~napari_bigvol._models.export.ExportModel` where to write and
whether to ask first, confirms any overwrite in a dialog (every time), and runs the
streamed export in the background with progress in the dock and Cancel. Even an
overwrite removes the old store only after the new one is complete.
"""

from __future__ import annotations

import os
from typing import Any

from magicgui.widgets import FileEdit
from napari.layers import Image, Labels, Layer
from qtpy.QtWidgets import QCheckBox, QComboBox, QLineEdit, QPushButton

from napari_bigvol._models._layers import Scope
from napari_bigvol._models.export import (
    COMPRESSORS,
    FORMATS,
    ExportModel,
    ExportPlan,
    parse_chunks,
)
from napari_bigvol._qt._runner import BackgroundTask
from napari_bigvol._qt.base import LayerWidget
from napari_bigvol.errors import OperationError
from napari_bigvol.ops.compute import ProgressCallback, StopCheck
from napari_bigvol.ops.export import export_zarr


class ExportZarrWidget(LayerWidget):
    """Export an image or labels layer, or its visible slice, to OME-Zarr with a pyramid.

    Attributes
    ----------
    model : ExportModel
        The output path per layer and the overwrite decision.
    path_edit : magicgui.widgets.FileEdit
        The output store (save mode); follows the chosen layer.
    chunks_edit : QLineEdit
        Level-0 chunk shape, ``z,y,x``; empty for the default 64-voxel cubes.
    compressor_combo, format_combo : QComboBox
        Compressor and zarr format.
    pyramid_check, sharding_check, overwrite_check : QCheckBox
        Write a pyramid; shard (zarr v3); replace an existing output (after a question).
    export_button : QPushButton
        Starts the export.
    last_task : BackgroundTask or None
        The most recent export.

    Examples
    --------
    >>> widget = ExportZarrWidget(viewer)  # doctest: +SKIP
    >>> widget.path_edit.value = "/data/brain.ome.zarr"  # doctest: +SKIP
    >>> widget.export()  # doctest: +SKIP
    """

    layer_types = (Image, Labels)
    title = "Export to zarr"

    def build(self) -> None:
        """Add the output, format and option controls, and the Export button."""
        self.model = ExportModel()
        self.last_task: BackgroundTask | None = None
        self.scope = Scope.VOLUME
        self.path_edit = FileEdit(mode="w", filter="*.zarr")
        self.path_edit.native.setToolTip("The OME-Zarr store to create (a .zarr folder)")
        self.chunks_edit = QLineEdit()
        self.chunks_edit.setPlaceholderText("64,64,64")
        self.chunks_edit.setToolTip(
            "Chunk shape z,y,x. Cubes make XY and XZ views equally fast; whole planes\n"
            "(1,Y,X) make XY fastest and XZ slowest. Empty: 64-voxel cubes."
        )
        self.compressor_combo = QComboBox()
        self.compressor_combo.addItems(list(COMPRESSORS))
        self.format_combo = QComboBox()
        self.format_combo.addItems(list(FORMATS))
        self.pyramid_check = QCheckBox("Pyramid (down to about 512 px)")
        self.pyramid_check.setChecked(True)
        self.sharding_check = QCheckBox("Sharding (zarr v3: fewer, larger files)")
        self.sharding_check.setEnabled(False)
        self.overwrite_check = QCheckBox("Overwrite existing")
        self.overwrite_check.setToolTip(
            "Replace the output if it exists, after a confirmation; the old store is "
            "deleted only after the new one is complete"
        )
        self.export_button = QPushButton("Export")
        self._lay_out()
        self._connect_controls()

    def _connect_controls(self) -> None:
        self.format_combo.currentIndexChanged.connect(self._on_format_chosen)
        self.export_button.clicked.connect(self.export)
        self.path_edit.changed.connect(lambda value: self.model.set_path(os.fspath(value)))
        self.model.path_changed.connect(self._show_path)

    def _lay_out(self) -> None:
        for label, control in (
            ("Output", self.path_edit.native),
            ("Chunks", self.chunks_edit),
            ("Compressor", self.compressor_combo),
            ("Zarr format", self.format_combo),
        ):
            self.form.addRow(label, control)
        for check in (self.pyramid_check, self.sharding_check, self.overwrite_check):
            self.form.addRow(check)
        self.body.addWidget(self.export_button)

    # ---- hooks ---------------------------------------------------------------------------

    def on_update_layers(self) -> None:
        """Enable Export for a chosen layer; its output path follows it."""
        layer = self.layer
        self.export_button.setEnabled(layer is not None)
        self.model.set_layer(layer)

    def on_slice_change(self) -> None:
        """Nothing to redraw: exports run only on request."""

    def on_scope_change(self) -> None:
        """Nothing to redraw: exports run only on request."""

    def _show_path(self, path: str) -> None:
        with self.path_edit.changed.blocked():  # the model's choice, not the user's
            self.path_edit.value = path

    # ---- options -------------------------------------------------------------------------

    @property
    def output_path(self) -> str:
        """The chosen output, absolute, with ``.zarr`` appended when it has no such suffix."""
        return self.model.path

    def options(self) -> dict[str, Any]:
        """Return the export options chosen, as :func:`export_zarr` keywords.

        Raises
        ------
        OperationError
            If the chunk text is not a list of integers.
        """
        zarr_format = FORMATS[self.format_combo.currentText()]
        return {
            "chunks": parse_chunks(self.chunks_edit.text()),
            "compressor": COMPRESSORS[self.compressor_combo.currentText()],
            "pyramid": self.pyramid_check.isChecked(),
            "zarr_format": zarr_format,
            "sharding": zarr_format == 3 and self.sharding_check.isChecked(),
        }

    def _on_format_chosen(self, index: int) -> None:
        self.sharding_check.setEnabled(FORMATS[self.format_combo.currentText()] == 3)

    # ---- export --------------------------------------------------------------------------

    def export(self) -> BackgroundTask | None:
        """Start exporting the chosen layer and scope; return the task, or None if refused."""
        try:
            layer = self.require_layer(numeric=True)
            options = self.options()
            plan = self.model.plan(self.overwrite_check.isChecked())
            source, keywords = self._source(layer)
        except OperationError as exc:
            self.show_message(str(exc), error=True)
            return None
        if plan.question and not self.confirm(plan.question):
            self.show_message(f"Export cancelled: {plan.path} kept.")
            return None
        return self._start(layer, source, plan, options, keywords)

    def _start(
        self,
        layer: Layer,
        source: Any,
        plan: ExportPlan,
        options: dict[str, Any],
        keywords: dict[str, Any],
    ) -> BackgroundTask:
        """Export ``source`` (``layer``'s data in the chosen scope) with the store ``options``."""

        def compute(progress: ProgressCallback, should_stop: StopCheck) -> str:
            return export_zarr(
                source,
                plan.path,
                overwrite=plan.overwrite,
                progress=progress,
                should_stop=should_stop,
                **options,
                **keywords,
            )

        self.export_button.setEnabled(False)
        task = self.run_task(
            compute,
            description=f"Export '{layer.name}' to {os.path.basename(plan.path)}",
            on_done=lambda path: self.show_message(f"Wrote {path}"),
            layer=layer,
        )
        task.finished.connect(lambda: self.export_button.setEnabled(self.layer is not None))
        self.last_task = task
        return task

    def _source(self, layer: Image | Labels) -> tuple[Any, dict[str, Any]]:
        if self.effective_scope(layer) is Scope.VOLUME:
            return layer, {}
        scoped = self.scoped(layer)
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
