"""Ctrl-C while the command line is still importing: exit code 130, no traceback."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tifffile

SRC = Path(__file__).resolve().parents[1] / "src"

# What the console script does (``from napari_bigvol.cli import main; sys.exit(main())``),
# with a real SIGINT delivered the moment the first heavy library (dask) starts importing.
_INTERRUPT_DURING_IMPORT = textwrap.dedent(
    """
    import importlib.abc, os, signal, sys

    class InterruptOnDask(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "dask":
                sys.meta_path.remove(self)
                os.kill(os.getpid(), signal.SIGINT)
            return None

    sys.meta_path.insert(0, InterruptOnDask())
    sys.argv = ["napari-bigvol", "convert", sys.argv[1], sys.argv[2]]
    from napari_bigvol.cli import main
    sys.exit(main())
    """
)


def test_the_cli_module_imports_no_heavy_library():
    code = (
        "import sys, napari_bigvol.cli\n"
        "print(sorted({'dask', 'zarr', 'tifffile'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={"PYTHONPATH": str(SRC)},
    )  # fmt: skip
    assert result.stdout.strip() == "[]"


@pytest.mark.slow
def test_ctrl_c_during_import_exits_130_without_a_traceback(tmp_path):
    """It printed a KeyboardInterrupt traceback and exited -2."""
    source = tmp_path / "stack.tif"
    tifffile.imwrite(source, np.zeros((2, 8, 8), np.uint16))

    result = subprocess.run(
        [sys.executable, "-c", _INTERRUPT_DURING_IMPORT, str(source), str(tmp_path / "o.zarr")],
        capture_output=True, text=True, timeout=300, env={"PYTHONPATH": str(SRC)},
    )  # fmt: skip

    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr
    assert "interrupted" in result.stderr
    assert not (tmp_path / "o.zarr").exists()
