"""How scanner images are shown: which way is up, and on which side the patient's left is.

NIfTI and DICOM layers have RAS world coordinates (see :mod:`napari_bigvol.io._orientation`),
which napari's default camera (y down, x right) would draw upside down. The plugin's
napari glue (:mod:`napari_bigvol._napari._anatomical`) turns the camera instead, using the
decisions made here, which need neither napari nor Qt:

* :func:`camera_orientation`: napari ``camera.orientation`` for the displayed anatomical
  axes. Superior (coronal, sagittal) or anterior (axial) is up; the patient's left is on
  the screen's right (``"radiological"``, the default, as clinical viewers and freeview
  show it) or left (``"neurological"``, as FSLeyes and SPM show it); a sagittal plane has
  anterior on the left. The depth direction keeps 3-D views a rotation, never a mirror.
* :func:`edge_letters`: the letters (R/L, A/P, S/I) at the four canvas edges.
* :func:`ras_readout`: the cursor position as FSLeyes, freeview and nilearn print it,
  ``RAS (-50.0, 40.0, 10.0) mm``, since napari's status bar lists it in axis order
  ``[S, A, R]``.
* :func:`set_display_convention` / :func:`display_convention`: the convention, initially
  from the ``NAPARI_BIGVOL_DISPLAY`` environment variable.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from psygnal import Signal

from napari_bigvol.io._orientation import LABEL_AXCODES

__all__ = [
    "CONVENTIONS",
    "ENV_VAR",
    "DisplaySettings",
    "anatomical_view",
    "camera_orientation",
    "display_convention",
    "edge_letters",
    "ras_readout",
    "set_display_convention",
    "settings",
]

CONVENTIONS = ("radiological", "neurological")
ENV_VAR = "NAPARI_BIGVOL_DISPLAY"
_OPPOSITE = {"R": "L", "A": "P", "S": "I"}
_RAS_VECTOR = {"R": (1, 0, 0), "A": (0, 1, 0), "S": (0, 0, 1)}
# Screen directions in a right-handed frame: x to the right, y up, z towards the viewer.
_SCREEN_VECTOR = {
    "right": (1, 0, 0),
    "left": (-1, 0, 0),
    "up": (0, 1, 0),
    "down": (0, -1, 0),
    "towards": (0, 0, 1),
    "away": (0, 0, -1),
}


class DisplaySettings:
    """The display convention, with a signal for viewers that follow it.

    Parameters
    ----------
    convention : str
        ``"radiological"`` or ``"neurological"``.

    Examples
    --------
    >>> shown = DisplaySettings("radiological")
    >>> shown.changed.connect(print)
    <built-in function print>
    >>> shown.convention = "neurological"
    neurological
    """

    changed = Signal(str)

    def __init__(self, convention: str = "radiological") -> None:
        self._convention = _checked(convention)

    @property
    def convention(self) -> str:
        """``"radiological"`` (patient's left on the right) or ``"neurological"``."""
        return self._convention

    @convention.setter
    def convention(self, value: str) -> None:
        value = _checked(value)
        if value != self._convention:
            self._convention = value
            self.changed.emit(value)


def _checked(convention: str) -> str:
    text = str(convention).strip().lower()
    if text not in CONVENTIONS:
        raise ValueError(
            f"unknown display convention {convention!r}: use 'radiological' or 'neurological'"
        )
    return text


def _from_environment() -> str:
    value = os.environ.get(ENV_VAR, "").strip().lower()
    return value if value in CONVENTIONS else "radiological"


settings = DisplaySettings(_from_environment())
"""The convention every anatomical viewer follows."""


def set_display_convention(convention: str) -> None:
    """Show scanner images radiologically (the default) or neurologically.

    Radiological puts the patient's left on the screen's right, as if looking up from
    the feet (clinical viewers, freeview); neurological puts it on the left, as if looking
    down from above (FSLeyes, SPM). Viewers showing NIfTI or DICOM layers turn at once.
    The environment variable ``NAPARI_BIGVOL_DISPLAY=neurological`` sets it at start-up.
    World coordinates never change.

    Parameters
    ----------
    convention : {"radiological", "neurological"}
        The convention.

    Raises
    ------
    ValueError
        For any other name.

    Examples
    --------
    >>> import napari_bigvol as bv
    >>> bv.set_display_convention("neurological")
    >>> bv.display_convention()
    'neurological'
    >>> bv.set_display_convention("radiological")
    """
    settings.convention = convention


def display_convention() -> str:
    """Return the current display convention, ``"radiological"`` or ``"neurological"``.

    Returns
    -------
    str
        The convention set by :func:`set_display_convention` or the environment.

    Examples
    --------
    >>> display_convention() in ("radiological", "neurological")
    True
    """
    return settings.convention


def camera_orientation(
    codes: Sequence[str | None], convention: str | None = None
) -> tuple[str, str, str]:
    """Return the napari ``camera.orientation`` that shows the given anatomical axes upright.

    Parameters
    ----------
    codes : sequence of str or None
        RAS code (``"S"``, ``"A"`` or ``"R"``: the way the axis increases) of the
        displayed depth, vertical and horizontal axes: the last three of
        ``viewer.dims.order``. The depth code may be None (2-D data).
    convention : str, optional
        ``"radiological"`` or ``"neurological"``; the current setting by default.

    Returns
    -------
    tuple of str
        ``(depth, vertical, horizontal)``, e.g. ``("away", "up", "left")``.

    Examples
    --------
    >>> camera_orientation(("S", "A", "R"), "radiological")  # axial, seen from the feet
    ('away', 'up', 'left')
    >>> camera_orientation(("S", "A", "R"), "neurological")  # axial, seen from above
    ('towards', 'up', 'right')
    >>> camera_orientation(("A", "S", "R"), "radiological")  # coronal, seen from the front
    ('towards', 'up', 'left')
    >>> camera_orientation(("R", "S", "A"))  # sagittal: superior up, anterior left
    ('away', 'up', 'left')
    """
    convention = _checked(convention or settings.convention)
    depth_code, vertical_code, horizontal_code = codes
    vertical = "up"
    horizontal = {
        "R": "right" if convention == "neurological" else "left",
        "A": "left",
        "S": "right",
    }[str(horizontal_code)]
    if depth_code is None:
        return "towards", vertical, horizontal
    # Choose the depth direction that makes anatomy -> screen a rotation (determinant +1).
    anatomy = np.array([_RAS_VECTOR[c] for c in (depth_code, vertical_code, horizontal_code)]).T
    screen = np.array([_SCREEN_VECTOR[d] for d in ("towards", vertical, horizontal)]).T
    mirrored = np.linalg.det(screen) * np.linalg.det(anatomy) < 0
    return ("away" if mirrored else "towards"), vertical, horizontal


def edge_letters(codes: Sequence[str], orientation: Sequence[Any]) -> dict[str, str]:
    """Letters naming the anatomical side at each edge of a 2-D view.

    Parameters
    ----------
    codes : sequence of str
        RAS codes of the displayed vertical and horizontal axes.
    orientation : sequence
        The camera's ``(vertical, horizontal)`` directions (``orientation2d``), e.g.
        ``("up", "left")``.

    Returns
    -------
    dict
        Letter per edge: keys ``"top"``, ``"bottom"``, ``"left"``, ``"right"``.

    Examples
    --------
    >>> edge_letters(("A", "R"), ("up", "left"))  # axial, radiological
    {'top': 'A', 'bottom': 'P', 'left': 'R', 'right': 'L'}
    """
    vertical_code, horizontal_code = codes
    vertical, horizontal = (str(direction) for direction in orientation)
    top = vertical_code if vertical == "up" else _OPPOSITE[vertical_code]
    left = horizontal_code if horizontal == "left" else _OPPOSITE[horizontal_code]
    letter = {**_OPPOSITE, **{v: k for k, v in _OPPOSITE.items()}}
    return {"top": top, "bottom": letter[top], "left": left, "right": letter[left]}


def ras_readout(axis_labels: Sequence[str], position: Sequence[float]) -> str | None:
    """Format the RAS millimetres of a world position in R, A, S order.

    Parameters
    ----------
    axis_labels : sequence of str
        The viewer's axis labels (``viewer.dims.axis_labels``).
    position : sequence of float
        A world position with one value per axis (``viewer.cursor.position``).

    Returns
    -------
    str or None
        ``"RAS (r, a, s) mm"``, or None unless the labels name all three RAS axes.

    Examples
    --------
    >>> ras_readout(("I→S", "P→A", "L→R"), (10.0, 40.0, -50.0))
    'RAS (-50.0, 40.0, 10.0) mm'
    >>> ras_readout(("z", "y", "x"), (10.0, 40.0, -50.0)) is None
    True
    """
    ras = {
        LABEL_AXCODES[label]: float(value)
        for label, value in zip(axis_labels, position, strict=False)
        if label in LABEL_AXCODES
    }
    if len(ras) != 3:
        return None
    return "RAS ({R:.1f}, {A:.1f}, {S:.1f}) mm".format(**ras)


def anatomical_view(viewer: Any) -> Any:
    """Keep a napari viewer's camera anatomical while it shows NIfTI/DICOM (RAS) layers.

    Files opened through the plugin (drag and drop, ``viewer.open(...,
    plugin="napari-bigvol")``, File > Open Sample) do this for their viewer; call it
    when adding layers from :func:`napari_bigvol.read` in a script. The camera turns only
    while the displayed axes are RAS axes (labels ``"I→S"``, ``"P→A"``, ``"L→R"``), on
    every change of ``dims.order`` or of the layers; orientation letters are shown at the
    canvas edges and the cursor's RAS position at the bottom left.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer; calling again returns the same controller.

    Returns
    -------
    napari_bigvol._napari._anatomical.AnatomicalView
        The viewer's controller.

    Examples
    --------
    >>> import napari_bigvol as bv
    >>> from napari.components import ViewerModel  # napari.Viewer() without a window
    >>> from napari_bigvol.sample import brain_volume, write_nifti
    >>> _ = write_nifti(brain_volume((16, 24, 20)), "T1w.nii.gz", (2.0, 1.0, 1.0))
    >>> viewer = ViewerModel()
    >>> [(data, kwargs, _)] = bv.read("T1w.nii.gz")
    >>> _ = viewer.add_image(data, **kwargs)
    >>> _ = bv.anatomical_view(viewer)
    >>> [direction.value for direction in viewer.scene.camera.orientation]  # anterior up
    ['away', 'up', 'left']
    """
    from napari_bigvol._napari._anatomical import install

    return install(viewer)
