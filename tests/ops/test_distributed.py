"""Whole-volume operations give identical results on a real multi-process dask cluster.

The arrays come from the project's own readers (a TIFF folder, a NIfTI file), so this
also proves that every task they and the operations build pickles.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import dask
import nibabel
import numpy as np
import pytest
import tifffile

import napari_bigvol
from napari_bigvol.ops import compute
from napari_bigvol.ops.histogram import histogram, histogram_stats, value_counts
from napari_bigvol.ops.threshold import (
    apply_mask,
    count_components,
    mask_statistics,
    otsu_threshold_of,
    threshold_mask,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster_address() -> Iterator[str]:
    from distributed import LocalCluster

    # A loaded CI machine can take longer than the default 30 s to start two processes.
    with (
        dask.config.set({"distributed.comm.timeouts.connect": "120s"}),
        LocalCluster(
            # ":0": a free port; None would still try 8787 and warn when it is taken.
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
        ) as cluster,
    ):
        yield cluster.scheduler_address
        compute.close_clients()


@pytest.fixture
def on_cluster(cluster_address: str) -> Iterator[None]:
    """Inside the test, whole-volume work runs on the cluster; outside, locally."""
    compute.set_scheduler(cluster_address)
    try:
        yield
    finally:
        compute.set_scheduler(None)


@pytest.fixture
def tiff_volume(tmp_path) -> tuple[object, np.ndarray]:
    rng = np.random.default_rng(7)
    volume = (rng.gamma(2.0, 300.0, (12, 48, 40))).astype(np.uint16)
    volume[:, :5] = 0
    folder = tmp_path / "slices"
    folder.mkdir()
    for index, plane in enumerate(volume):
        tifffile.imwrite(folder / f"Axial_{index}.tiff", plane)
    [(data, _, _)] = napari_bigvol.read(str(folder))
    return data, volume


@pytest.fixture
def nifti_volume(tmp_path) -> tuple[object, np.ndarray]:
    rng = np.random.default_rng(8)
    volume = rng.normal(50.0, 20.0, (20, 24, 10)).astype(np.float32)
    path = tmp_path / "scan.nii.gz"
    nibabel.save(nibabel.Nifti1Image(volume, np.eye(4)), path)
    [(data, _, _)] = napari_bigvol.read(str(path))
    return data, np.asarray(data.compute())


def _process_id(block: np.ndarray, index: tuple[int, ...]) -> int:
    return os.getpid()


def results_of(data) -> dict[str, object]:
    mask = threshold_mask(data, 600, mode="above")
    stats = histogram_stats(data, bins=64, percentiles=(5, 50, 95))
    return {
        "histogram": histogram(data, 50),
        "histogram_range": histogram(data, 17, (100.5, 2000.25), exclude_zeros=True),
        "stats": (stats.count, stats.minimum, stats.maximum, stats.mean, stats.std),
        "percentiles": stats.percentiles,
        "mask_statistics": mask_statistics(mask, (2.0, 0.5, 0.5), "mm"),
        "otsu": otsu_threshold_of(data),
        "masked_histogram": histogram(apply_mask(data, mask), 30, exclude_zeros=True),
        # Rechunked: every block's tasks depend on other tasks, which must travel along.
        "rechunked_histogram": histogram(data.rechunk((5, 20, 40)), 50),
    }


def assert_identical(left: dict, right: dict) -> None:
    assert left.keys() == right.keys()
    for key in left:
        a, b = left[key], right[key]
        if isinstance(a, tuple) and isinstance(a[0], np.ndarray):
            for x, y in zip(a, b, strict=True):
                np.testing.assert_array_equal(x, y, err_msg=key)
        else:
            assert a == b, key


def test_the_cluster_really_runs_the_blocks(tiff_volume, on_cluster):
    data, _ = tiff_volume
    assert compute.get_client() is not None
    workers = {pid for _, pid in compute.stream_blocks(data, _process_id)}
    assert os.getpid() not in workers
    assert 1 <= len(workers) <= 2


def local_and_on_cluster(address: str, work):
    """Run ``work()`` with local threads, then on the cluster; return both results."""
    local = work()
    compute.set_scheduler(address)
    try:
        return local, work()
    finally:
        compute.set_scheduler(None)


def test_tiff_folder_results_are_identical(tiff_volume, cluster_address):
    data, volume = tiff_volume
    local, remote = local_and_on_cluster(cluster_address, lambda: results_of(data))
    assert_identical(local, remote)
    (_, local_counts), (_, remote_counts) = local_and_on_cluster(
        cluster_address, lambda: value_counts(data)
    )
    np.testing.assert_array_equal(local_counts, remote_counts)
    components = local_and_on_cluster(
        cluster_address, lambda: count_components(threshold_mask(data, 1500))
    )
    assert components[0] == components[1]
    # ... and both equal numpy on the pixels themselves.
    np.testing.assert_array_equal(local["histogram"][0], np.histogram(volume, 50)[0])
    assert local["mask_statistics"].masked == int(np.count_nonzero(volume > 600))


def test_nifti_float_results_are_identical(nifti_volume, cluster_address):
    data, volume = nifti_volume
    local, remote = local_and_on_cluster(cluster_address, lambda: results_of(data))
    assert_identical(local, remote)
    np.testing.assert_array_equal(local["histogram"][0], np.histogram(volume, 50)[0])


def test_in_memory_arrays_stay_local_with_a_cluster_configured(on_cluster):
    values = np.arange(1000, dtype=np.uint16).reshape(10, 100)
    array, in_memory = compute.as_dask_array(values)
    pids = {pid for _, pid in compute.stream_blocks(array, _process_id, local=in_memory)}
    assert pids == {os.getpid()}
    np.testing.assert_array_equal(histogram(values, 10)[0], np.histogram(values, 10)[0])


@pytest.fixture
def default_client(cluster_address: str) -> Iterator[object]:
    """A distributed.Client made the process's default, as a user does in the console."""
    from distributed import Client

    with Client(cluster_address) as client:  # set_as_default=True, dask's convention
        yield client


def test_the_active_default_client_runs_the_work(tiff_volume, default_client):
    data, volume = tiff_volume
    assert compute.get_client() is default_client
    assert compute.describe_scheduler() == (
        f"dask scheduler {default_client.scheduler.address} (the active distributed client)"
    )
    workers = {pid for _, pid in compute.stream_blocks(data, _process_id)}
    assert workers
    assert os.getpid() not in workers
    on_cluster = results_of(data)
    np.testing.assert_array_equal(on_cluster["histogram"][0], np.histogram(volume, 50)[0])


def test_default_client_results_equal_local_threads(tiff_volume, cluster_address):
    from distributed import Client

    data, _ = tiff_volume
    local = results_of(data)
    assert compute.describe_scheduler().startswith("local threads")
    with Client(cluster_address) as client:
        on_cluster = results_of(data)
        ran = {str(key) for key in client.run_on_scheduler(_tasks_seen)}
    assert_identical(local, on_cluster)
    assert any("bigvol-kernel" in key for key in ran)
    assert compute.get_client() is None  # the closed client is no longer the default


def _tasks_seen(dask_scheduler) -> list:
    """On the scheduler: the keys of every task it has run (its transition log)."""
    return [entry[0] for entry in dask_scheduler.transition_log]


def test_an_explicit_scheduler_takes_precedence_over_the_default_client(
    cluster_address, default_client, monkeypatch
):
    monkeypatch.setenv(compute.SCHEDULER_ENV, "tcp://127.0.0.1:9")
    assert "NAPARI_BIGVOL_SCHEDULER" in compute.describe_scheduler()
    compute.set_scheduler(cluster_address)
    try:
        assert compute.get_client() is not default_client
        assert compute.describe_scheduler().endswith("(set_scheduler)")
    finally:
        compute.set_scheduler(None)
