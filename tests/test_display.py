"""Display decisions for scanner images, without a viewer."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import numpy as np
import pytest

import napari_bigvol as bv
from napari_bigvol import _display
from napari_bigvol._display import camera_orientation, edge_letters

SCREEN = {"right": (1, 0, 0), "left": (-1, 0, 0), "up": (0, 1, 0), "down": (0, -1, 0)}
SCREEN |= {"towards": (0, 0, 1), "away": (0, 0, -1)}
RAS = {"R": (1, 0, 0), "A": (0, 1, 0), "S": (0, 0, 1)}


@pytest.fixture
def convention():
    """Restore the process-wide convention after a test changes it."""
    before = bv.display_convention()
    yield
    bv.set_display_convention(before)


@pytest.mark.parametrize(
    ("codes", "convention", "expected"),
    [
        # Axial: anterior up; patient's right on the left (radiological) or right.
        (("S", "A", "R"), "radiological", ("away", "up", "left")),
        (("S", "A", "R"), "neurological", ("towards", "up", "right")),
        # Coronal: superior up.
        (("A", "S", "R"), "radiological", ("towards", "up", "left")),
        (("A", "S", "R"), "neurological", ("away", "up", "right")),
        # Sagittal: superior up, anterior on the left, whatever the convention.
        (("R", "S", "A"), "radiological", ("away", "up", "left")),
        (("R", "S", "A"), "neurological", ("away", "up", "left")),
        # 2-D data: no depth axis.
        ((None, "A", "R"), "radiological", ("towards", "up", "left")),
    ],
)
def test_camera_orientation_per_plane(codes, convention, expected):
    assert camera_orientation(codes, convention) == expected


@pytest.mark.parametrize("convention", _display.CONVENTIONS)
@pytest.mark.parametrize("codes", list(itertools.permutations("SAR")))
def test_every_view_is_a_rotation_never_a_mirror(codes, convention):
    orientation = camera_orientation(codes, convention)
    anatomy = np.array([RAS[c] for c in codes]).T
    screen = np.array([SCREEN[d] for d in orientation]).T
    assert np.linalg.det(screen @ np.linalg.inv(anatomy)) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("codes", "orientation", "expected"),
    [
        (("A", "R"), ("up", "left"), {"top": "A", "bottom": "P", "left": "R", "right": "L"}),
        (("A", "R"), ("up", "right"), {"top": "A", "bottom": "P", "left": "L", "right": "R"}),
        (("S", "A"), ("up", "left"), {"top": "S", "bottom": "I", "left": "A", "right": "P"}),
        (("S", "R"), ("down", "right"), {"top": "I", "bottom": "S", "left": "L", "right": "R"}),
    ],
)
def test_edge_letters(codes, orientation, expected):
    assert edge_letters(codes, orientation) == expected


@pytest.mark.parametrize(
    ("labels", "position", "expected"),
    [
        (("I→S", "P→A", "L→R"), (10.0, 40.0, -50.0), "RAS (-50.0, 40.0, 10.0) mm"),
        (("t", "I→S", "P→A", "L→R"), (3.0, -1.25, 0.0, 7.5), "RAS (7.5, 0.0, -1.2) mm"),
        (("z", "y", "x"), (1.0, 2.0, 3.0), None),
        (("I→S", "y", "L→R"), (1.0, 2.0, 3.0), None),
    ],
)
def test_ras_readout_lists_r_a_s(labels, position, expected):
    assert _display.ras_readout(labels, position) == expected


def test_set_display_convention_emits_and_validates(convention):
    seen = []
    _display.settings.changed.connect(seen.append)
    try:
        bv.set_display_convention("Neurological")
        bv.set_display_convention("neurological")  # unchanged: no second signal
        assert bv.display_convention() == "neurological"
        assert seen == ["neurological"]
        with pytest.raises(ValueError, match="unknown display convention 'upside-down'"):
            bv.set_display_convention("upside-down")
    finally:
        _display.settings.changed.disconnect(seen.append)


@pytest.mark.slow  # starts a Python subprocess
@pytest.mark.parametrize(
    ("value", "expected"),
    [("neurological", "neurological"), ("", "radiological"), ("sideways", "radiological")],
)
def test_environment_variable_sets_the_start_up_convention(value, expected):
    probe = "import napari_bigvol as bv; print(bv.display_convention())"
    env = {"NAPARI_BIGVOL_DISPLAY": value}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    assert result.stdout.strip() == expected
