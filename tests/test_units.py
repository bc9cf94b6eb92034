"""One unit vocabulary (pint) for every reader and the export."""

from __future__ import annotations

import pint
import pytest

from napari_bigvol.units import canonical_unit, length_unit, ngff_unit, unit_kind


@pytest.mark.parametrize(
    ("unit", "expected"),
    [
        ("micrometer", "micrometer"),
        ("Micrometer", "micrometer"),
        ("µm", "micrometer"),  # MICRO SIGN, as ImageJ and OME write it
        ("μm", "micrometer"),  # GREEK SMALL LETTER MU
        ("\\u00b5m", "micrometer"),  # ImageJ's escaped micro sign, which pint cannot parse
        ("um", "micrometer"),
        ("micron", "micrometer"),
        ("microns", "micrometer"),
        ("mm", "millimeter"),
        ("Mm", "megameter"),  # abbreviations are case-sensitive
        ("UM", "micrometer"),  # all caps: read in lower case when pint knows no such unit
        ("msec", "millisecond"),
        ("sec", "second"),
        ("hz", "hertz"),  # nibabel's NIfTI spelling
        ("rads", "radian / second"),  # NIfTI's radians per second, not rad/s²
        ("parsec", "parsec"),
        ("Å", "angstrom"),
        ("furlong", "furlong"),
        ("pixel", None),
        ("unknown", None),
        ("", None),
        (None, None),
        ("no such unit", None),
        ("micron(", None),  # a damaged ImageJ unit: pint's tokenizer raised TokenError
    ],
)
def test_canonical_unit(unit, expected):
    assert canonical_unit(unit) == expected
    if expected is not None:  # and napari's pint registry really reads it
        assert pint.get_application_registry().Unit(expected) is not None


def test_a_pint_unit_napari_hands_us():
    registry = pint.get_application_registry()
    assert canonical_unit(registry.Unit("um")) == "micrometer"
    assert canonical_unit(registry.Unit("pixel")) is None


def test_kinds_and_ngff_names():
    assert [unit_kind(u) for u in ("nm", "ms", "Hz", None)] == ["space", "time", None, None]
    assert length_unit("micron") == "micrometer"
    assert length_unit("s") is None
    assert ngff_unit("um", "space") == "micrometer"
    assert ngff_unit("furlong", "space") is None  # not in the NGFF list
    assert ngff_unit("ms", "space") is None
    assert ngff_unit("ms", "time") == "millisecond"
