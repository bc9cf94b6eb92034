"""The pure core and the widget models import neither Qt nor napari: they test without a viewer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PURE_MODULES = [
    "napari_bigvol",
    "napari_bigvol.io",
    "napari_bigvol.ops.compute",
    "napari_bigvol._napari.scope",
    "napari_bigvol.ops.threshold",
    "napari_bigvol.ops.channels",
    "napari_bigvol.ops.histogram",
    "napari_bigvol.ops.export",
    "napari_bigvol.ops.view_cache",
    "napari_bigvol._napari._reader",
    "napari_bigvol._models",
]
# Widget state and decisions live in napari_bigvol._models, never in the Qt classes:
# every module there must import without Qt or napari, so its tests need no viewer.
MODEL_MODULES = sorted(
    f"napari_bigvol._models.{path.stem}"
    for path in (Path(__file__).parents[1] / "src" / "napari_bigvol" / "_models").glob("*.py")
    if path.stem != "__init__"
)


@pytest.mark.parametrize("module", PURE_MODULES + MODEL_MODULES)
def test_pure_module_imports_neither_qt_nor_napari(module):
    probe = (
        f"import sys, {module}\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'napari', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'magicgui', 'vispy'})\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "", f"{module} pulls in {result.stdout.strip()}"
