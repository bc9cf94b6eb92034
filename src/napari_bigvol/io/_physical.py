"""Voxel sizes from file headers, made safe for napari: unknown rather than NaN, inf or <= 0.

napari refuses a ``scale`` holding NaN or infinity ("array must not contain infs or NaNs")
after it has already added some channel layers, so a bad size in a header must never
reach it. A size that is not a positive finite number is dropped (the axis is then
measured in pixels) and a :class:`~napari_bigvol.errors.ReadWarning` names the file, which
napari shows as a notification.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

from napari_bigvol.errors import ReadWarning


def usable_sizes(
    sizes: Mapping[str, Any], path: str, source: str, *, positions: bool = False
) -> dict[str, float]:
    """Return the sizes that are positive finite numbers; warn about the others.

    Parameters
    ----------
    sizes : mapping
        Physical size per axis name, as read from a header.
    path : str
        The file, named in the warning.
    source : str
        Which header field the sizes come from, for example ``"OME PhysicalSize"``.
    positions : bool, optional
        The values are positions (napari's ``translate``): any finite number will do.

    Returns
    -------
    dict
        The usable sizes, as floats.

    Warns
    -----
    ReadWarning
        Once, naming the file and every size left out.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     usable_sizes({"X": 0.5, "Y": float("nan")}, "a.tif", "OME PhysicalSize")
    {'X': 0.5}
    >>> str(caught[0].message).split(";")[0]
    'a.tif: the voxel size is not a positive finite number (OME PhysicalSize Y=nan)'
    """
    usable: dict[str, float] = {}
    refused = []
    for axis, value in sizes.items():
        number = _as_float(value)
        if number is not None and math.isfinite(number) and (positions or number > 0):
            usable[axis] = number
        else:
            refused.append(f"{axis}={value}")
    if refused and positions:
        warnings.warn(
            f"{path}: the position is not a finite number ({source} {', '.join(refused)}); "
            "that axis starts at 0 instead",
            ReadWarning,
            stacklevel=2,
        )
    elif refused:
        warnings.warn(
            f"{path}: the voxel size is not a positive finite number ({source} "
            f"{', '.join(refused)}); that axis is measured in pixels instead",
            ReadWarning,
            stacklevel=2,
        )
    return usable


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None
