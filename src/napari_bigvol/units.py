"""Physical units: any spelling found in files, turned into one canonical name with pint.

pint (a napari dependency; napari's ``layer.units`` are pint units) parses the spellings
files carry (``um``, ``µm``, ``μm``, ``micron``, ``msec``, ``Angstrom``...). Every reader
and the export go through :func:`canonical_unit`, so a unit is spelled one way throughout:
the NGFF (UDUNITS-2) name when there is one (``micrometer``, ``millisecond``), pint's
name otherwise.
"""

from __future__ import annotations

import functools
import tokenize
from typing import Any

import pint

# Spellings pint cannot parse or reads wrongly, and only those: ImageJ escapes the micro
# sign in its description ("\u00b5m" as six characters); nibabel spells NIfTI's hertz
# "hz" and its radians per second "rads", which pint reads as rad/s².
_NOT_FOR_PINT = {"\\u00b5m": "micrometer", "hz": "hertz", "rads": "radian / second"}
# Not physical units: an axis measured in these has no unit.
_NO_UNIT = frozenset({"", "pixel", "pixels", "px", "none", "unknown"})
_SI_PREFIXES = (
    "", "atto", "centi", "deci", "exa", "femto", "giga", "hecto", "kilo", "mega", "micro",
    "milli", "nano", "peta", "pico", "tera", "yocto", "yotta", "zepto", "zetta",
)  # fmt: skip
#: The units the NGFF specification allows on space and time axes.
NGFF_UNITS = frozenset(
    [prefix + base for prefix in _SI_PREFIXES for base in ("meter", "second")]
    + ["angstrom", "foot", "inch", "mile", "parsec", "yard", "day", "hour", "minute"]
)

__all__ = [
    "NGFF_UNITS",
    "canonical_unit",
    "conversion_factor",
    "length_unit",
    "ngff_unit",
    "unit_kind",
    "unit_symbol",
]


def _registry() -> pint.UnitRegistry:
    # The application registry is the one napari uses for layer units.
    return pint.get_application_registry()


@functools.cache
def _ngff_names() -> dict[tuple[str, float], str]:
    # (dimensionality, size in base units) -> NGFF name, to map "micron" to "micrometer".
    names = {}
    for name in NGFF_UNITS:
        quantity = _registry().Quantity(1, name).to_base_units()
        names[str(quantity.dimensionality), _rounded(quantity.magnitude)] = name
    return names


def _rounded(value: float) -> float:
    return float(f"{value:.9g}")


@functools.cache
def _parse(text: str) -> pint.Unit | None:
    # Exact case first (Mm is a megameter), then lower case (MICRON, Um).
    for candidate in (text, text.lower()):
        try:
            return _registry().Unit(_NOT_FOR_PINT.get(candidate, candidate))
        except (
            pint.errors.PintError, ValueError, TypeError, AttributeError, KeyError,
            tokenize.TokenError,  # unbalanced brackets: pint tokenizes units as Python
        ):  # fmt: skip
            continue  # pint raises several kinds for text it cannot parse
    return None


@functools.cache
def _canonical(text: str) -> str | None:
    if text.lower() in _NO_UNIT:
        return None
    unit = _parse(text)
    if unit is None:
        return None
    quantity = _registry().Quantity(1, unit).to_base_units()
    key = (str(quantity.dimensionality), _rounded(quantity.magnitude))
    return _ngff_names().get(key, str(unit))


def canonical_unit(unit: Any) -> str | None:
    r"""Return the canonical name of ``unit``, or None if it has none (or is a pixel).

    Parameters
    ----------
    unit : str, pint.Unit or None
        As written in a file (``"µm"``, ``"micron"``, ``"MM"``, ``"msec"``), or a napari
        ``layer.units`` entry.

    Returns
    -------
    str or None
        The NGFF name for lengths and times (``"micrometer"``, ``"millisecond"``), pint's
        name for anything else (``"hertz"``); None for pixels, nothing, or text pint
        cannot read.

    Examples
    --------
    >>> canonical_unit("µm"), canonical_unit("micron"), canonical_unit("\\u00b5m")
    ('micrometer', 'micrometer', 'micrometer')
    >>> canonical_unit("msec"), canonical_unit("pixel"), canonical_unit("furlongs per nap")
    ('millisecond', None, None)
    >>> canonical_unit("Mm"), canonical_unit("UM")
    ('megameter', 'micrometer')
    """
    if unit is None:
        return None
    return _canonical(str(unit).strip())


def unit_kind(unit: Any) -> str | None:
    """Return ``"space"`` for a length, ``"time"`` for a time, else None.

    Examples
    --------
    >>> unit_kind("mm"), unit_kind("ms"), unit_kind("Hz"), unit_kind(None)
    ('space', 'time', None, None)
    """
    name = canonical_unit(unit)
    if name is None:
        return None
    dimensionality = _registry().Unit(name).dimensionality
    return {"[length]": "space", "[time]": "time"}.get(str(dimensionality))


def length_unit(unit: Any) -> str | None:
    """Return the canonical name of ``unit`` if it is a length, else None.

    Examples
    --------
    >>> length_unit("um"), length_unit("s")
    ('micrometer', None)
    """
    return canonical_unit(unit) if unit_kind(unit) == "space" else None


def ngff_unit(unit: Any, axis_type: str) -> str | None:
    """Return the NGFF name of ``unit`` for an axis of ``axis_type``, or None.

    Parameters
    ----------
    unit : str, pint.Unit or None
        Any spelling.
    axis_type : str
        ``"space"`` or ``"time"``; a unit of the other kind, or one outside the NGFF
        list, gives None (the axis is then written without a unit).

    Examples
    --------
    >>> ngff_unit("um", "space"), ngff_unit("pixel", "space"), ngff_unit("second", "space")
    ('micrometer', None, None)
    """
    name = canonical_unit(unit)
    return name if name in NGFF_UNITS and unit_kind(name) == axis_type else None


def conversion_factor(unit: str, to: str) -> float:
    """Return how many ``to`` one ``unit`` is; both canonical names of one kind.

    Examples
    --------
    >>> conversion_factor("millimeter", "micrometer")
    1000.0
    """
    return float(_registry().Quantity(1, unit).to(to).magnitude)


def unit_symbol(unit: str) -> str:
    """Return the short symbol of a canonical unit name, as a scale bar shows it.

    Examples
    --------
    >>> unit_symbol("micrometer"), unit_symbol("millimeter")
    ('µm', 'mm')
    """
    return f"{_registry().Unit(unit):~P}"
