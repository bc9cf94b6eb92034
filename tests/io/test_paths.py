"""Path expansion: natural order, globs like the shell's, folders."""

from __future__ import annotations

import glob
import os
import subprocess
import sys

import pytest

import napari_bigvol
from napari_bigvol.errors import ReadError, ReadWarning
from napari_bigvol.io._paths import (
    expand_glob,
    list_folder,
    natural_key,
    natural_sorted,
    require_exists,
)


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


# --- what is not a plain file or folder (issue 8) -----------------------------------------


def _slices(folder, count=3):
    import numpy as np
    import tifffile

    folder.mkdir()
    for index in range(count):
        tifffile.imwrite(folder / f"s{index}.tif", np.full((4, 4), index, np.uint8))
    return folder


def test_a_symlink_loop_among_slices_is_skipped_with_a_warning(tmp_path):
    """One looping link made the whole folder unreadable (Too many levels of symbolic links)."""
    folder = _slices(tmp_path / "slices")
    os.symlink("s9.tif", folder / "s9.tif")  # points at itself

    with pytest.warns(ReadWarning, match=r"s9\.tif: skipped, it cannot be opened"):
        files = list_folder(folder, (".tif",))

    assert [os.path.basename(f) for f in files] == ["s0.tif", "s1.tif", "s2.tif"]


def test_a_symlink_loop_opened_directly_says_so(tmp_path):
    loop = tmp_path / "loop.tif"
    os.symlink("loop.tif", loop)

    with pytest.raises(ReadError, match=r"loop\.tif: cannot be opened \(Too many levels"):
        napari_bigvol.read(str(loop))


@pytest.mark.parametrize("name", ["pipe.tif", "pipe.tiff"])
def test_a_fifo_is_refused_before_anything_opens_it(tmp_path, open_counter, name):
    """A FIFO named .tif reported "no such file" (one named .nii: see test_nifti.py)."""
    os.mkfifo(tmp_path / name)

    with open_counter.watch(tmp_path) as opened, pytest.raises(ReadError) as caught:
        napari_bigvol.read(str(tmp_path / name))

    assert "is a pipe, device or socket" in str(caught.value)
    assert not opened


def test_a_device_is_refused(tmp_path):
    with pytest.raises(ReadError, match=r"/dev/null: is a pipe, device or socket"):
        require_exists("/dev/null")


_READ_LOCKED_FOLDER = """
import sys
import napari_bigvol
from napari_bigvol.io import reader_for

assert reader_for(sys.argv[1]) is not None  # taken, so the message below is ours
try:
    napari_bigvol.read(sys.argv[1])
except napari_bigvol.ReadError as error:
    print(error)
"""


def test_an_unreadable_folder_says_permission_denied(tmp_path):
    """It said "napari-bigvol cannot read this kind of file".

    Root may list any folder, so as root the reader runs without the capabilities that
    bypass file permissions (util-linux's setpriv).
    """
    folder = _slices(tmp_path / "locked")
    folder.chmod(0)
    without_override = (
        ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    )
    try:
        result = subprocess.run(
            [*without_override, sys.executable, "-c", _READ_LOCKED_FOLDER, str(folder)],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
    finally:
        folder.chmod(0o755)
    assert f"{folder}: permission denied" in result.stdout, result.stderr
