"""Split an array into its channels as lazy views: no copies, so a 100 GB split is instant."""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np

from napari_bigvol.errors import OperationError

__all__ = ["split_channels"]


def split_channels(data: Any, axis: int = -1) -> list[Any]:
    """Split ``data`` along ``axis`` into one array per channel, without copying.

    Each channel is ``data[..., i, ...]`` with the channel axis removed: a numpy view for
    numpy input, a lazy dask array for dask input. Nothing is read or computed. When the
    channel axis lies within one chunk (RGB data, interleaved channels) each channel is a
    single blockwise step, built in constant time whatever the number of chunks; a
    chunked channel axis is indexed with dask's slicing, whose graph grows with the
    number of chunks but reads nothing either.

    Parameters
    ----------
    data : array-like
        numpy or dask array, for example ``(y, x, 3)`` RGB or ``(c, z, y, x)``.
    axis : int, optional
        The channel axis; negative values count from the end. Default: the last axis,
        where RGB(A) images keep their colours.

    Returns
    -------
    list
        One array per channel, each of ``data.ndim - 1`` dimensions.

    Raises
    ------
    OperationError
        When ``axis`` is out of range or the channel axis has a single channel.

    Examples
    --------
    >>> import numpy as np
    >>> rgb = np.zeros((4, 5, 3), np.uint8)
    >>> red, green, blue = split_channels(rgb)
    >>> red.shape, np.shares_memory(red, rgb)
    ((4, 5), True)
    """
    ndim = len(data.shape)
    if not -ndim <= axis < ndim:
        raise OperationError(
            f"cannot split channels along axis {axis}: the data have {ndim} "
            f"dimensions (shape {tuple(data.shape)})"
        )
    axis %= ndim
    channels = data.shape[axis]
    if channels < 2:
        raise OperationError(
            f"nothing to split: axis {axis} of the data (shape {tuple(data.shape)}) "
            f"holds {channels} channel"
        )
    if isinstance(data, da.Array) and data.numblocks[axis] == 1:
        meta = np.empty((0,) * (ndim - 1), dtype=data.dtype)
        return [
            data.map_blocks(
                _select_channel, channel, axis, drop_axis=axis, dtype=data.dtype, meta=meta
            )
            for channel in range(channels)
        ]
    leading = (slice(None),) * axis
    return [data[(*leading, channel)] for channel in range(channels)]


def _select_channel(block: np.ndarray, channel: int, axis: int) -> np.ndarray:
    # A module-level function so the task graph pickles for a dask.distributed cluster.
    return block[(slice(None),) * axis + (channel,)]
