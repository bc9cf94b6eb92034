"""Path expansion: natural order, globs like the shell's, folders."""

from __future__ import annotations

import glob
import os

import pytest

from napari_bigvol.errors import ReadError
from napari_bigvol.io._paths import expand_glob, list_folder, natural_key, natural_sorted


def test_natural_order_puts_slice_2_before_slice_10():
    names = ["slice_10.tif", "slice_2.tif", "Slice_1.tif", "slice_2b.tif", "slice.tif"]
    assert natural_sorted(names) == [
        "slice.tif",
        "Slice_1.tif",
        "slice_2.tif",
        "slice_2b.tif",
        "slice_10.tif",
    ]


def test_natural_key_never_compares_text_with_numbers():
    mixed = ["10", "a", "1a", "a1", "", "a10", "a2"]
    expected = ["", "1a", "10", "a", "a1", "a2", "a10"]
    assert sorted(mixed, key=natural_key) == expected
    assert natural_sorted(mixed) == expected


@pytest.fixture
def messy_folder(tmp_path):
    for index in (1, 2, 10, 11):
        (tmp_path / f"img_{index}.tif").touch()
    (tmp_path / ".img_0.tif").touch()  # macOS resource fork
    (tmp_path / "img_5.tif").mkdir()  # a folder that matches the pattern
    (tmp_path / "notes.txt").touch()
    sub = tmp_path / "run_1"
    sub.mkdir()
    (sub / "img_3.tif").touch()
    return tmp_path


def test_glob_matches_files_like_the_shell_in_natural_order(messy_folder):
    found = expand_glob(messy_folder / "img_*.tif")
    assert [os.path.basename(p) for p in found] == [
        "img_1.tif",
        "img_2.tif",
        "img_10.tif",
        "img_11.tif",
    ]
    shell = [p for p in glob.glob(str(messy_folder / "img_*.tif")) if os.path.isfile(p)]
    assert sorted(found) == sorted(shell)


def test_glob_with_a_pattern_in_the_folder_part(messy_folder):
    found = expand_glob(messy_folder / "run_*" / "*.tif")
    assert found == [str(messy_folder / "run_1" / "img_3.tif")]


@pytest.mark.parametrize("pattern", ["nothing_*.tif", "missing_folder/*.tif"])
def test_glob_matching_nothing_names_the_pattern(messy_folder, pattern):
    with pytest.raises(ReadError, match="matches no files") as excinfo:
        expand_glob(messy_folder / pattern)
    assert pattern.split("/")[-1] in str(excinfo.value)


def test_folder_listing_skips_hidden_files_and_other_types(messy_folder):
    found = list_folder(messy_folder, (".tif",))
    assert [os.path.basename(p) for p in found] == [
        "img_1.tif",
        "img_2.tif",
        "img_10.tif",
        "img_11.tif",
    ]
    with pytest.raises(ReadError, match="no image files"):
        list_folder(messy_folder / "run_1", (".png",))


@pytest.mark.parametrize(
    "expected",
    [
        [f"Synthesized_FLASH25_Axial_{i}.tiff" for i in (0, 1, 2, 10, 11, 100)],
        ["slice_1", "slice_10", "slice_11", "slice_100"],  # shared prefix ends in a digit
        ["a_001.tif", "a_01.tif", "a_1.tif", "a_2.tif"],  # zero-padding ties: by the name
        ["x1y2.tif", "x1y10.tif", "x2y1.tif"],  # two numbers: the general path
        ["scan.tif", "scan_2.tif"],  # no number in one name: "." sorts before "_"
        ["SLICE_1.tif", "Slice_2.tif", "slice_10.tif"],  # case ignored
        ["a.tif", "b.tif"],
    ],
)
def test_fast_and_general_natural_orders_give_the_written_order(expected):
    # Orders written out by hand, as natsort's default (plus case folding) gives them.
    import random

    for seed in range(3):
        shuffled = expected[:]
        random.Random(seed).shuffle(shuffled)
        assert natural_sorted(shuffled) == expected
