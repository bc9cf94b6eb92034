"""The view cache: reuse, invalidation, killed builds, a full disk, eviction, 3-D levels.

Every check counts file opens or bytes, never time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import dask
import dask.array as da
import nibabel as nib
import numpy as np
import platformdirs
import pytest
import tifffile
import zarr

import napari_bigvol as bv
from napari_bigvol.errors import Cancelled, OperationError
from napari_bigvol.ops import view_cache as vc
from napari_bigvol.ops._pyramid import downsample_mean


def _volume(shape=(40, 48, 56), seed=0, dtype=np.uint16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4000, shape).astype(dtype)


def _tiff_folder(folder: Path, volume: np.ndarray) -> Path:
    folder.mkdir(parents=True)
    for index, plane in enumerate(volume):
        tifffile.imwrite(folder / f"slice_{index:04d}.tif", plane)
    return folder


@pytest.fixture
def tiff_folder(tmp_path: Path) -> tuple[Path, np.ndarray]:
    volume = _volume()
    return _tiff_folder(tmp_path / "data" / "slices", volume), volume


def _plain(kwargs: dict) -> dict:
    return {k: v for k, v in kwargs.items() if k not in ("multiscale", "metadata")}


# --- what the cache gives -----------------------------------------------------------------


def _write_source(kind: str, tmp_path: Path, volume: np.ndarray) -> str:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    if kind == "folder":
        return str(_tiff_folder(data / "slices", volume))
    if kind == "glob":
        _tiff_folder(data / "slices", volume)
        return str(data / "slices" / "slice_*.tif")
    if kind == "multipage":
        tifffile.imwrite(
            data / "stack.tif",
            volume,
            imagej=True,
            resolution=(2.0, 2.0),
            metadata={"axes": "ZYX", "spacing": 3.0, "unit": "um"},
        )
        return str(data / "stack.tif")
    if kind in ("nii", "nii.gz"):
        path = data / f"scan.{kind}"
        nib.save(nib.Nifti1Image(volume.astype(np.int16), np.diag([1.5, 1.0, 2.0, 1.0])), path)
        return str(path)
    if kind == "zarr":
        array = zarr.create_array(
            data / "plain.zarr", shape=volume.shape, chunks=(4, 48, 56), dtype=volume.dtype
        )
        array[:] = volume
        return str(data / "plain.zarr")
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["folder", "glob", "multipage", "nii", "nii.gz", "zarr"])
def test_cached_read_gives_the_same_layer_backed_by_a_cube_chunked_pyramid(
    kind, tmp_path, cache_dir
):
    source = _write_source(kind, tmp_path, _volume())
    [(plain_data, plain_kwargs, plain_kind)] = bv.read(source)
    [(levels, kwargs, layer_kind)] = bv.read(source, cache=True)
    assert layer_kind == plain_kind == "image"
    assert kwargs["multiscale"] is True
    assert isinstance(levels, list)
    assert _plain(kwargs) == _plain(plain_kwargs)
    facts = dict(kwargs["metadata"]["bigvol"])
    assert facts.pop("view_cache").startswith(str(cache_dir))
    assert facts == plain_kwargs["metadata"]["bigvol"]
    assert levels[0].shape == plain_data.shape
    assert levels[0].dtype == plain_data.dtype
    assert levels[0].chunksize == plain_data.shape  # smaller than one 64-voxel cube
    np.testing.assert_array_equal(levels[0].compute(), plain_data.compute())


def test_channel_and_rgb_axes_come_back_where_the_reader_put_them(tmp_path, cache_dir):
    rgb = _volume((6, 20, 24, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    [(levels, kwargs, _)] = bv.read(tmp_path / "rgb.tif", cache=True)
    assert kwargs["rgb"] is True
    np.testing.assert_array_equal(levels[0].compute(), rgb)
    channels = _volume((6, 2, 20, 24))
    tifffile.imwrite(tmp_path / "zcyx.tif", channels, imagej=True, metadata={"axes": "ZCYX"})
    [(levels, kwargs, _)] = bv.read(tmp_path / "zcyx.tif", cache=True)
    assert kwargs["channel_axis"] == 1
    np.testing.assert_array_equal(levels[0].compute(), channels)


def test_a_big_volume_gets_pyramid_levels_of_64_voxel_cubes(tmp_path, cache_dir):
    volume = _volume((130, 600, 520))
    source = tmp_path / "big.tif"
    tifffile.imwrite(source, volume)
    [(levels, _, _)] = bv.read(source, cache=True)
    assert [level.shape for level in levels] == [(130, 600, 520), (65, 300, 260)]
    entry = vc.find_cache(source)
    assert zarr.open_array(f"{entry.stores[0]}/0").chunks == (64, 64, 64)
    # One cube per dask block: napari slices with dask's fusion off, so a larger block
    # would be read whole for a plane that crosses a few of its cubes.
    assert levels[0].chunksize == (64, 64, 64)
    np.testing.assert_array_equal(
        levels[1][10:11, 20:24, 30:34].compute(),
        downsample_mean(volume[20:22, 40:48, 60:68], (2, 2, 2)),
    )


def test_a_pyramid_needs_no_cache(tmp_path, cache_dir):
    store = tmp_path / "pyramid.ome.zarr"
    bv.export_zarr(_volume((64, 1100, 600)), store)
    [(levels, kwargs, _)] = bv.read(store, cache=True)
    assert kwargs["multiscale"]
    assert len(levels) > 1
    assert not cache_dir.exists() or not any(cache_dir.iterdir())


def test_the_cache_lives_in_the_platform_cache_folder_by_default(monkeypatch):
    monkeypatch.delenv(vc.CACHE_ENV, raising=False)
    assert vc.cache_root() == platformdirs.user_cache_dir("napari-bigvol")


def test_the_cache_is_never_written_into_the_data(tiff_folder, monkeypatch):
    folder, _ = tiff_folder
    monkeypatch.setenv(vc.CACHE_ENV, str(folder / "cache"))
    with pytest.raises(OperationError, match="inside the data folder"):
        bv.read(folder, cache=True)
    assert not (folder / "cache").exists() or not any((folder / "cache").iterdir())


# --- reuse and invalidation ---------------------------------------------------------------


def test_a_second_open_reuses_the_cache_and_reads_no_source_plane_for_a_side_view(
    tiff_folder, cache_dir, open_counter
):
    folder, volume = tiff_folder
    first = bv.read(folder, cache=True)
    entry = vc.find_cache(folder)
    with open_counter.watch(folder) as opened:
        [(levels, _, _)] = bv.read(folder, cache=True)
    # The uncached open reads one header and the middle plane for contrast limits.
    assert sum(opened.values()) <= 2
    assert vc.find_cache(folder).stamp == entry.stamp
    assert levels[0].name == first[0][0][0].name  # same store, not rebuilt
    with open_counter.watch(folder) as opened:
        sagittal = levels[0][:, :, 17].compute()
    assert sum(opened.values()) == 0
    np.testing.assert_array_equal(sagittal, volume[:, :, 17])


@pytest.mark.parametrize("fusion", [True, False], ids=["fused", "as napari slices"])
def test_a_side_view_opens_each_cube_it_crosses_once(tmp_path, cache_dir, open_counter, fusion):
    volume = _volume((150, 200, 136))
    source = tmp_path / "stack.tif"
    tifffile.imwrite(source, volume)
    [(levels, _, _)] = bv.read(source, cache=True)
    folder = vc.find_cache(source).folder
    # napari turns dask's task fusion off while it slices (napari.utils._dask_utils).
    napari_like = dask.config.set({"optimization.fuse.active": fusion})
    with napari_like, open_counter.watch(folder) as opened:
        sagittal = levels[0][:, :, 70].compute()
    np.testing.assert_array_equal(sagittal, volume[:, :, 70])
    assert len(opened) == 3 * 4  # ceil(150 / 64) x ceil(200 / 64) cubes
    assert set(opened.values()) == {1}


def test_an_entry_of_an_older_layout_is_removed_and_rebuilt(tiff_folder, cache_dir, monkeypatch):
    folder, volume = tiff_folder
    with monkeypatch.context() as earlier_version:
        earlier_version.setattr(vc, "_LAYOUT", vc._LAYOUT - 1)
        old = vc.build_cache(folder)
        with open(os.path.join(old.folder, vc.MARKER), encoding="utf-8") as file:
            assert json.load(file)["layout"] == old.layout == vc._LAYOUT
    assert vc.find_cache(folder) is None  # never read as if it were of this layout
    [(levels, _, _)] = bv.read(folder, cache=True)
    np.testing.assert_array_equal(levels[0].compute(), volume)
    assert not os.path.exists(old.folder)
    assert [entry.layout for entry in vc.cache_entries()] == [vc._LAYOUT]
    assert vc.find_cache(folder).folder.startswith(str(cache_dir))


@pytest.mark.parametrize("change", ["mtime", "size"])
def test_a_changed_source_file_is_never_served_stale(change, tiff_folder, cache_dir):
    folder, volume = tiff_folder
    bv.read(folder, cache=True)
    target = folder / "slice_0007.tif"
    if change == "mtime":
        stat = target.stat()
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    else:
        volume[7] = 1
        tifffile.imwrite(target, volume[7], description="edited " * 50)
    assert vc.find_cache(folder) is None
    [(levels, _, _)] = bv.read(folder, cache=True)
    np.testing.assert_array_equal(levels[0].compute(), volume)
    assert len(vc.cache_entries()) == 1


def test_a_cancelled_build_leaves_nothing(tiff_folder, cache_dir):
    folder, _ = tiff_folder
    with pytest.raises(Cancelled):
        vc.cached_read(folder, should_stop=lambda: True)
    assert vc.find_cache(folder) is None
    assert list(cache_dir.iterdir()) == []


_KILLED_BUILD = """
import os, sys, time
from napari_bigvol.ops import view_cache
def progress(done, total):
    open(sys.argv[2], "w").close()
    time.sleep(600)
view_cache.build_cache(sys.argv[1], progress=progress)
"""


@pytest.mark.slow
def test_a_killed_build_is_never_taken_for_a_cache(tmp_path, cache_dir, open_counter):
    folder = _tiff_folder(tmp_path / "data" / "slices", _volume((70, 80, 90)))
    started = tmp_path / "started"
    env = {**os.environ, "PYTHONPATH": str(Path(vc.__file__).parents[2])}
    process = subprocess.Popen(
        [sys.executable, "-c", _KILLED_BUILD, str(folder), str(started)], env=env
    )
    try:
        for _ in range(1200):
            if started.exists() or process.poll() is not None:
                break
            time.sleep(0.1)
        assert started.exists(), "the build never started"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    leftovers = [p.name for p in cache_dir.iterdir()]
    assert leftovers
    assert all(".partial-" in name for name in leftovers)
    assert vc.find_cache(folder) is None
    with open_counter.watch(folder) as opened:
        [(levels, _, _)] = bv.read(folder, cache=True)
    assert len(opened) == 70  # rebuilt from every slice
    np.testing.assert_array_equal(levels[0][:, 5].compute(), bv.read(folder)[0][0][:, 5])
    assert [p.name for p in cache_dir.iterdir()] == [
        os.path.basename(vc.find_cache(folder).folder)
    ]


def _traced_build_peak(folder: Path) -> int:
    """Peak bytes numpy and Python allocate while the cache of ``folder`` is built."""
    tracemalloc.start()
    try:
        bv.read(folder, cache=True)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_build_memory_is_flat_in_the_plane_size_of_planes_read_by_rows(
    tmp_path, cache_dir, monkeypatch
):
    # Units of a budget, not of 64 whole slices: slices twice as tall cost no more.
    unit = 4 * 2**20
    monkeypatch.setattr(vc, "CACHE_UNIT_BYTES", unit)
    tall_volume = _volume((64, 1024, 512), seed=1)
    tall = _tiff_folder(tmp_path / "tall", tall_volume)
    taller = _tiff_folder(tmp_path / "taller", _volume((64, 2048, 512), seed=2))
    strips, compressed = tmp_path / "strips", tmp_path / "compressed"
    strips.mkdir()
    compressed.mkdir()
    zlib = {"compression": "zlib", "compressionargs": {"level": 1}}
    for index, plane in enumerate(tall_volume):
        name = f"slice_{index:04d}.tif"
        tifffile.imwrite(strips / name, plane, rowsperstrip=64, **zlib)
        tifffile.imwrite(compressed / name, plane, rowsperstrip=1024, **zlib)
    pages = tmp_path / "pages.tif"  # the same planes as the pages of one file
    tifffile.imwrite(pages, tall_volume, photometric="minisblack")
    # Two threads, each with a unit, its halving's temporaries and at most one more unit
    # read: a bound set by the unit, not by the slices (64 of them are 64 or 128 MiB).
    for source in (tall, taller, strips, pages):
        assert _traced_build_peak(source) < 10 * unit, source.name
    # A slice in one compressed strip is read whole, so a unit is 64 slices: 64 MiB.
    assert _traced_build_peak(compressed) > 64 * 2**20
    for source in (tall, strips, pages):
        [(levels, _, _)] = bv.read(source, cache=True)
        np.testing.assert_array_equal(levels[0].compute(), tall_volume)


# --- space --------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path):
    mount = tmp_path / "small"
    mount.mkdir()
    # Not skipped: a machine that cannot mount a tmpfs fails this test loudly.
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_is_reported_before_anything_is_written(tmp_path, small_disk, monkeypatch):
    monkeypatch.setenv(vc.CACHE_ENV, str(small_disk / "cache"))
    source = tmp_path / "big.tif"
    tifffile.imwrite(source, _volume((32, 256, 512)))  # 8 MiB, over 8 MiB once with a pyramid
    with pytest.raises(OperationError, match="not enough free disk space for the view cache"):
        bv.read(source, cache=True)
    assert list((small_disk / "cache").iterdir()) == []


def test_least_recently_used_entries_are_evicted_under_the_cap(tmp_path, cache_dir, monkeypatch):
    sources = [
        _tiff_folder(tmp_path / "data" / name, _volume((16, 48, 56), seed=i))
        for i, name in enumerate("abc")
    ]
    a, b, c = sources
    bv.read(a, cache=True)
    bv.read(b, cache=True)
    size_a, size_b = vc.find_cache(a).size, vc.find_cache(b).size
    os.utime(os.path.join(vc.find_cache(b).folder, vc.MARKER), (1, 1))  # b: used long ago
    bv.read(a, cache=True)  # a: used just now
    estimate = vc._estimate(bv.read(c))
    monkeypatch.setenv(vc.CACHE_SIZE_ENV, str(size_a + size_b + estimate - 1))
    bv.read(c, cache=True)
    assert vc.find_cache(b) is None
    assert vc.find_cache(a) is not None
    assert vc.find_cache(c) is not None
    assert sum(e.size for e in vc.cache_entries()) <= vc.cache_size_limit()


def test_a_volume_over_the_cap_is_refused_clearly(tiff_folder, cache_dir, monkeypatch):
    folder, _ = tiff_folder
    monkeypatch.setenv(vc.CACHE_SIZE_ENV, "100KiB")
    with pytest.raises(OperationError, match=r"its size cap is 100\.00 kiB"):
        bv.read(folder, cache=True)


def test_a_bad_size_setting_says_how_to_write_it(monkeypatch):
    monkeypatch.setenv(vc.CACHE_SIZE_ENV, "lots")
    with pytest.raises(OperationError, match="is not a size"):
        vc.cache_size_limit()


def test_clear_cache_removes_every_entry(tiff_folder, cache_dir):
    folder, _ = tiff_folder
    bv.read(folder, cache=True)
    assert vc.clear_cache() > 0
    assert vc.cache_entries() == []
    assert list(cache_dir.iterdir()) == []


# --- levels for 3-D -----------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2000, 512, 512), (300, 1024, 900), (64, 64, 64)])
def test_budget_factors_fit_the_budget(shape):
    budget = 256 * 2**20
    factors = vc.factors_for_budget(shape, 2, budget)
    size = np.prod([-(-n // f) for n, f in zip(shape, factors, strict=True)]) * 2
    assert size <= budget
    assert size * 8 > budget or factors == (1, 1, 1)  # no smaller than needed


def test_a_3d_level_reads_each_slice_once_and_holds_only_the_budget(
    tiff_folder, open_counter, monkeypatch
):
    folder, volume = tiff_folder
    [(data, _, _)] = bv.read(folder)
    budget = volume.nbytes // 10
    factors = vc.factors_for_budget(data.shape, data.dtype.itemsize, budget)
    with open_counter.watch(folder) as opened:
        level = vc.downsampled_level(data, factors)
    assert set(opened.values()) == {1}
    assert len(opened) == len(volume)
    assert level.nbytes <= budget
    assert level.dtype == volume.dtype
    expected = vc.lazy_downsampled(da.from_array(volume, chunks=(8, 48, 56)), factors)
    np.testing.assert_array_equal(level, expected.compute())


def test_the_smallest_cached_level_fits_the_3d_budget(tiff_folder, cache_dir, monkeypatch):
    folder, volume = tiff_folder
    monkeypatch.setenv(vc.BUDGET_3D_ENV, str(volume.nbytes // 5))
    [(levels, _, _)] = bv.read(folder, cache=True)
    assert levels[-1].nbytes <= volume.nbytes // 5
    assert len(levels) == 2


def test_a_pyramid_whose_smallest_level_is_over_the_budget_gets_one_more(
    tmp_path, cache_dir, monkeypatch
):
    store = tmp_path / "pyramid.ome.zarr"
    bv.export_zarr(_volume((64, 1100, 600)), store)
    [(plain, _, _)] = bv.read(store)
    smallest = plain[-1]
    monkeypatch.setenv(vc.BUDGET_3D_ENV, str(smallest.nbytes * vc.TEXTURE_COPIES // 2))
    [(levels, kwargs, _)] = vc.read_for_viewer(str(store))
    assert len(levels) == len(plain) + 1
    assert levels[-1].nbytes <= smallest.nbytes // 2
    assert kwargs["multiscale"]


def test_a_plain_2d_image_gets_no_3d_level(tmp_path, cache_dir, monkeypatch):
    monkeypatch.setenv(vc.BUDGET_3D_ENV, "1kB")
    tifffile.imwrite(tmp_path / "plane.tif", _volume((1, 64, 64))[0])
    [(_, kwargs, _)] = vc.read_for_viewer(str(tmp_path / "plane.tif"))
    assert not kwargs["multiscale"]
