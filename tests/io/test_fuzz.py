"""Fuzzing every reader with mutated real files: a BigVolError or correct data, nothing else.

The driver (``fuzz_driver.py`` beside this file) writes real TIFF, OME-TIFF, ImageJ,
NIfTI, zarr, OME-Zarr and DICOM files and folders of TIFF slices, mutates them (byte
flips, truncation at many offsets, edited header fields, descriptions and DICOM values,
broken JSON, missing, empty or damaged chunks or slices) and opens each case, computing
every plane (and, for plane stacks, the work units whole-volume work reads by rows), in
worker processes under a 2 GiB address-space cap and a per-case time limit. The CI run is
seeded and bounded; set ``NAPARI_BIGVOL_FUZZ_CASES`` (and ``NAPARI_BIGVOL_FUZZ_SEED``) for
a bigger campaign.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DRIVER = Path(__file__).with_name("fuzz_driver.py")
# About 1,000 cases take ~1.5 minutes on two busy cores.
CASES = int(os.environ.get("NAPARI_BIGVOL_FUZZ_CASES", "1000"))
SEED = int(os.environ.get("NAPARI_BIGVOL_FUZZ_SEED", "20261129"))


@pytest.mark.slow
def test_mutated_files_give_a_clean_error_or_correct_data():
    result = subprocess.run(
        [sys.executable, str(DRIVER), "--cases", str(CASES), "--seed", str(SEED)],
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)

    assert summary["tried"] == CASES
    outcomes = summary["outcomes"]
    assert outcomes.get("other", 0) == 0, json.dumps(summary["failures"][:20], indent=1)
    # The campaign exercised both sides: files that open and files that are refused.
    assert outcomes.get("error", 0) > CASES // 5
    assert outcomes.get("same", 0) > CASES // 10
