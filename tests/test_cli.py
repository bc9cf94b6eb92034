"""The napari-bigvol convert command: real files in, OME-Zarr out, exit codes, errors."""

from __future__ import annotations

import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
import tifffile
import zarr

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
