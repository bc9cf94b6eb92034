"""Fixtures for the pure-operation tests: a real MRI volume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def mri_int16(nibabel_data: Path) -> np.ndarray:
    """nibabel's real anatomical MRI (33 x 41 x 25, big-endian int16), read by nibabel."""
    import nibabel

    return np.asanyarray(nibabel.load(nibabel_data / "anatomical.nii").dataobj)
