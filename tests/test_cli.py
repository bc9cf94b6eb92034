"""The napari-bigvol convert command: real files in, OME-Zarr out, exit codes, errors."""

from __future__ import annotations

import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
import tifffile
import zarr

import napari_bigvol
from napari_bigvol.cli import main


@pytest.fixture
def tiff_folder(tmp_path):
    folder = tmp_path / "slices"
    folder.mkdir()
    planes = np.random.default_rng(0).integers(0, 60000, (12, 90, 110), dtype=np.uint16)
    for i, plane in enumerate(planes):
        tifffile.imwrite(folder / f"Axial_{i + 1}.tif", plane)  # natural order 1..12
    return folder, planes


def test_convert_a_quoted_glob(tiff_folder, tmp_path, capsys):
    folder, planes = tiff_folder
    out = tmp_path / "axial.zarr"
    code = main(["convert", str(folder / "Axial_*.tif"), str(out), "--chunks", "4,32,32"])
    assert code == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out)
    assert "export: 100%" in captured.err
    array = zarr.open_array(out / "0", mode="r")
    assert array.chunks == (4, 32, 32)
    np.testing.assert_array_equal(array[:], planes)


def test_convert_options(tiff_folder, tmp_path):
    folder, planes = tiff_folder
    out = tmp_path / "v3.zarr"
    args = ["convert", str(folder), str(out), "--zarr-format", "3", "--compressor", "lz4"]
    assert main([*args, "--no-pyramid", "--sharding", "--quiet"]) == 0
    group = zarr.open_group(out, mode="r")
    assert list(group.array_keys()) == ["0"]
    assert group["0"].metadata.zarr_format == 3
    np.testing.assert_array_equal(group["0"][:], planes)


def test_convert_nifti(nibabel_data, tmp_path):
    source = nibabel_data / "example4d.nii.gz"
    out = tmp_path / "example.zarr"
    assert main(["convert", str(source), str(out), "--quiet"]) == 0
    expected = np.asanyarray(nib.load(source).dataobj)
    group = zarr.open_group(out, mode="r")
    assert group["0"].size == expected.size


def test_existing_output_fails_with_exit_1_and_overwrite_replaces(tiff_folder, tmp_path, capsys):
    folder, _ = tiff_folder
    out = tmp_path / "o.zarr"
    assert main(["convert", str(folder), str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["convert", str(folder), str(out), "--quiet"]) == 1
    assert "o.zarr: already exists" in capsys.readouterr().err
    assert main(["convert", str(folder), str(out), "--quiet", "--overwrite"]) == 0


def test_missing_input_and_unquoted_glob(tmp_path, tiff_folder, capsys):
    assert main(["convert", str(tmp_path / "nope.tif"), str(tmp_path / "n.zarr")]) == 1
    assert "nope.tif" in capsys.readouterr().err
    folder, _ = tiff_folder
    expanded = sorted(str(p) for p in folder.iterdir())  # what an unquoted glob becomes
    with pytest.raises(SystemExit) as exit_info:
        main(["convert", *expanded])
    assert exit_info.value.code == 2
    assert "quote it" in capsys.readouterr().err


@pytest.mark.slow
def test_console_script_runs(tiff_folder, tmp_path):
    folder, _ = tiff_folder
    out = tmp_path / "script.zarr"
    result = subprocess.run(
        [sys.executable, "-m", "napari_bigvol.cli", "convert", str(folder), str(out)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (out / ".zattrs").exists()


@pytest.mark.slow
def test_convert_on_a_cluster(tiff_folder, tmp_path):
    from distributed import LocalCluster

    from napari_bigvol.ops import compute

    folder, planes = tiff_folder
    out = tmp_path / "cluster.zarr"
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        try:
            args = ["convert", str(folder), str(out), "--quiet", "--chunks", "4,32,32"]
            assert main([*args, "--scheduler", cluster.scheduler_address]) == 0
        finally:
            compute.set_scheduler(None)
            compute.close_clients()
    np.testing.assert_array_equal(zarr.open_array(out / "0", mode="r")[:], planes)


def test_convert_refuses_to_overwrite_its_own_input(tiff_folder, tmp_path, capsys):
    folder, planes = tiff_folder
    store = tmp_path / "same.zarr"
    assert main(["convert", str(folder), str(store), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["convert", str(store), str(store), "--quiet", "--overwrite"]) == 1
    assert "refusing to write over or inside the source" in capsys.readouterr().err
    np.testing.assert_array_equal(zarr.open_array(store / "0", mode="r")[:], planes)


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"napari-bigvol {napari_bigvol.__version__}"


def test_voxel_size_for_slices_without_metadata(tiff_folder, tmp_path):
    folder, _ = tiff_folder
    out = tmp_path / "sized.ome.zarr"
    args = ["convert", str(folder), str(out), "--voxel-size", "2", "0.5", "0.25", "--quiet"]
    assert main([*args, "--unit", "micron"]) == 0
    (_, kwargs, _), *_ = napari_bigvol.read(out)
    assert kwargs["scale"] == (2.0, 0.5, 0.25)
    assert kwargs["units"] == ("micrometer",) * 3
    # Two sizes set the in-plane axes only; the unit defaults to micrometres.
    out2 = tmp_path / "plane.ome.zarr"
    assert main(["convert", str(folder), str(out2), "--voxel-size", "0.5", "0.5", "--quiet"]) == 0
    (_, kwargs, _), *_ = napari_bigvol.read(out2)
    assert kwargs["scale"] == (1.0, 0.5, 0.5)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--voxel-size", "0", "1", "1"], "a voxel size must be positive"),
        (["--voxel-size", "1", "1", "1", "1"], "--voxel-size has 4 values but the data have 3"),
        (["--voxel-size", "1", "1", "--unit", "sec"], "--unit sec: not a unit of length"),
    ],
)
def test_bad_voxel_size(tiff_folder, tmp_path, capsys, extra, message):
    folder, _ = tiff_folder
    try:
        code = main(["convert", str(folder), str(tmp_path / "x.zarr"), *extra])
    except SystemExit as usage_error:  # argparse refuses bad numbers itself
        code = usage_error.code
    assert code in (1, 2)
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.zarr").exists()


def test_unquoted_files_are_sorted_naturally(tiff_folder, tmp_path):
    folder, planes = tiff_folder
    shuffled = [str(folder / f"Axial_{i}.tif") for i in (10, 2, 12, 1, 3, 4, 5, 6, 7, 8, 9, 11)]
    out = tmp_path / "listed.zarr"
    assert main(["convert", *shuffled, str(out), "--quiet"]) == 0
    np.testing.assert_array_equal(zarr.open_array(out / "0", mode="r")[:], planes)
