"""The Histogram model: settings, cached whole-volume results and one task per request.

The visible slice is histogrammed from the plane napari already holds; the whole volume
is streamed by :func:`~napari_bigvol.ops.histogram.channel_histogram_stats`, which
reads each block once for all RGB channels. Whole-volume results are cached per layer
and settings until the layer's data change, and a request already running is not
started twice.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from napari_bigvol._models._layers import axis_names
from napari_bigvol._napari.scope import ScopedData
from napari_bigvol.errors import OperationError
from napari_bigvol.ops.histogram import HistogramStats, channel_histogram_stats, histogram_stats

RGB_NAMES = ("red", "green", "blue", "alpha")


@dataclass(frozen=True)
class HistogramSettings:
    """What a histogram depends on besides the data: the cache key with the layer."""

    bins: int
    exclude_zeros: bool
    percentiles: tuple[float, ...]


@dataclass(frozen=True)
class HistogramResult:
    """The histograms shown: one :class:`HistogramStats` per channel, and what they cover."""

    channels: tuple[str, ...]
    stats: tuple[HistogramStats, ...]
    description: str


def parse_percentiles(text: str) -> tuple[float, ...]:
    """Read a comma-separated list of percentiles such as ``"1, 50, 99"``.

    Raises
    ------
    OperationError
        When an entry is not a number or lies outside [0, 100].

    Examples
    --------
    >>> parse_percentiles("99, 1 50")
    (1.0, 50.0, 99.0)
    """
    values = []
    for item in text.replace(",", " ").split():
        try:
            value = float(item)
        except ValueError:
            raise OperationError(f"percentile {item!r} is not a number") from None
        if not 0.0 <= value <= 100.0:
            raise OperationError(f"percentile {value:g} is outside 0-100")
        values.append(value)
    return tuple(sorted(set(values)))


def histogram_channels(
    data: Any,
    rgb: bool,
    settings: HistogramSettings,
    *,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[tuple[str, ...], tuple[HistogramStats, ...]]:
    """Histogram ``data``: one result per RGB(A) channel (one pass), or one for grey data.

    Examples
    --------
    >>> import numpy as np
    >>> names, stats = histogram_channels(np.zeros((4, 4, 3), np.uint8), True,
    ...                                   HistogramSettings(8, False, (50.0,)))
    >>> names, [s.count for s in stats]
    (('red', 'green', 'blue'), [16, 16, 16])
    """
    keywords = {
        "bins": settings.bins,
        "exclude_zeros": settings.exclude_zeros,
        "percentiles": settings.percentiles,
        "progress": progress,
        "should_stop": should_stop,
    }
    if rgb:
        stats = channel_histogram_stats(data, axis=-1, **keywords)
        return RGB_NAMES[: len(stats)], tuple(stats)
    return ("values",), (histogram_stats(data, **keywords),)


def describe(layer: Any, scoped: ScopedData) -> str:
    """Say what ``scoped`` covers: "whole volume ..." or "visible slice at z = 3, level 1"."""
    values = f"{math.prod(scoped.data.shape):,} values"
    if scoped.axes == tuple(range(layer.ndim)) and scoped.level == 0:
        return f"whole {'image' if layer.ndim <= 2 else 'volume'}, {values} (exact)"
    labels = axis_names(layer)
    fixed = [
        f"{labels[axis]} = {index}"
        for axis, index in enumerate(scoped.index[: layer.ndim])
        if isinstance(index, int)
    ]
    where = f" at {', '.join(fixed)}" if fixed else ""
    level = f", level {scoped.level}" if getattr(layer, "multiscale", False) else ""
    return f"visible slice{where}{level}, {values}"


def request_key(layer: Any, settings: HistogramSettings, scoped: ScopedData) -> tuple:
    """Identify a background request: same key, same result."""
    # Slices are unhashable before Python 3.12: key on the fixed positions only.
    fixed = tuple(i if isinstance(i, int) else None for i in scoped.index)
    return (id(layer), settings, fixed, scoped.level)


class HistogramModel:
    """Cached whole-volume histograms per layer, and the requests on their way.

    Examples
    --------
    >>> model = HistogramModel()
    >>> model.start(("key",)), model.start(("key",))
    (True, False)
    """

    def __init__(self) -> None:
        self._cache: weakref.WeakKeyDictionary[Any, dict[HistogramSettings, HistogramResult]]
        self._cache = weakref.WeakKeyDictionary()
        self._running: set[tuple] = set()

    def cached(self, layer: Any, settings: HistogramSettings) -> HistogramResult | None:
        """Return the whole-volume histogram of ``layer`` with ``settings``, if computed."""
        return self._cache.get(layer, {}).get(settings)

    def store(self, layer: Any, settings: HistogramSettings, result: HistogramResult) -> None:
        """Keep a whole-volume result until :meth:`forget` (new data)."""
        self._cache.setdefault(layer, {})[settings] = result

    def forget(self, layer: Any) -> None:
        """Drop ``layer``'s cached results: its data changed."""
        self._cache.pop(layer, None)

    def start(self, key: tuple) -> bool:
        """Record that ``key`` is being computed; False when it already is."""
        if key in self._running:
            return False
        self._running.add(key)
        return True

    def finish(self, key: tuple) -> None:
        """Record that ``key`` is no longer being computed."""
        self._running.discard(key)


def _format(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.6g}"


def stats_html(result: HistogramResult) -> str:
    """Tabulate the statistics: one row per statistic, one column per channel."""
    rows: list[tuple[str, Sequence[str]]] = [
        ("count", [f"{s.count:,}" for s in result.stats]),
        ("min", [_format(s.minimum) for s in result.stats]),
        ("max", [_format(s.maximum) for s in result.stats]),
        ("mean", [_format(s.mean) for s in result.stats]),
        ("std", [_format(s.std) for s in result.stats]),
    ]
    for q in result.stats[0].percentiles:
        rows.append((f"p{q:g}", [_format(s.percentiles[q]) for s in result.stats]))
    header = "".join(f"<th align='right'>{name}</th>" for name in result.channels)
    body = "".join(
        f"<tr><td>{name}</td>{''.join(f'<td align=right>{v}</td>' for v in values)}</tr>"
        for name, values in rows
    )
    tolerance = max(s.percentile_tolerance for s in result.stats)
    note = f"<br>percentiles within ±{tolerance:.3g}" if tolerance else ""
    return (
        f"<b>{result.description}</b><table cellspacing=4><tr><th></th>{header}</tr>"
        f"{body}</table>{note}"
    )
