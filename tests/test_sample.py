"""The synthetic brain: independent, deterministic, lazy blocks; the plane-by-plane writers."""

from __future__ import annotations

import pickle

import nibabel
import numpy as np
import pytest
import tifffile

from napari_bigvol import sample


@pytest.fixture
def generated_blocks(monkeypatch) -> list[list[tuple[int, int]]]:
    """Array locations of every brain block generated while the test runs.

    Laziness is measured by counting the blocks the generator really produced, not by time.
    """
    locations: list[list[tuple[int, int]]] = []
    generate = sample._BrainBlock.__call__

    def counting(self, block_info):
        locations.append(block_info[None]["array-location"])
        return generate(self, block_info)

    monkeypatch.setattr(sample._BrainBlock, "__call__", counting)
    return locations


@pytest.mark.parametrize(
    ("shape", "chunks"),
    [((48, 40, 36), None), ((48, 40, 36), (7, 16, 10)), ((33, 64, 17), (33, 8, 17))],
)
def test_a_block_alone_equals_the_same_region_of_a_larger_compute(shape, chunks):
    brain = sample.brain_volume(shape, chunks=chunks)
    whole = brain.compute()
    for index in [(0, 0, 0), tuple(n - 1 for n in brain.numblocks), (1, 0, 1)]:
        index = tuple(min(i, n - 1) for i, n in zip(index, brain.numblocks, strict=True))
        region = tuple(
            slice(sum(c[:i]), sum(c[: i + 1])) for c, i in zip(brain.chunks, index, strict=True)
        )
        np.testing.assert_array_equal(brain.blocks[index].compute(), whole[region])


def test_chunking_does_not_change_the_values():
    shape = (40, 32, 32)
    by_plane = sample.brain_volume(shape).compute()
    by_cube = sample.brain_volume(shape, chunks=(16, 16, 16)).compute()
    np.testing.assert_array_equal(by_plane, by_cube)


def test_generation_is_deterministic_and_the_seed_matters():
    shape = (32, 48, 40)
    first = sample.brain_volume(shape).compute()
    again = sample.brain_volume(shape).compute()
    other = sample.brain_volume(shape, seed=1).compute()
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert sample.brain_volume(shape).name == sample.brain_volume(shape).name


def test_the_default_volume_is_gigabytes_but_building_it_computes_nothing(generated_blocks):
    brain = sample.brain_volume()
    assert brain.nbytes == 2 * 1024**3
    assert generated_blocks == []
    plane = brain[512].compute()
    # Showing one axial slice generates exactly that plane's block.
    assert generated_blocks == [[(512, 513), (0, 1024), (0, 1024)]]
    assert plane.shape == (1024, 1024)


def test_the_graph_has_one_task_per_chunk_and_pickles():
    brain = sample.brain_volume((64, 32, 32), chunks=(8, 32, 32))
    assert len(brain.__dask_graph__()) == 8
    restored = pickle.loads(pickle.dumps(brain))
    np.testing.assert_array_equal(restored[10].compute(), brain[10].compute())


def test_the_head_has_tissue_contrast_and_dark_background():
    brain = sample.brain_volume((64, 128, 128))
    centre = brain[40].compute()
    low, high = sample.BRAIN_CONTRAST_LIMITS
    assert centre[0, 0] < 150  # air in the corner
    assert low <= centre.min()
    assert centre.max() <= high
    # Scalp, bone, CSF, grey and white matter give several distinct intensity modes.
    histogram, _ = np.histogram(centre, bins=22, range=(low, high))
    assert (histogram > 0.01 * centre.size).sum() >= 4


@pytest.mark.parametrize("dtype", [np.uint16, np.int16, np.uint8])
def test_integer_dtypes_are_clipped_into_range(dtype):
    plane = sample.brain_volume((16, 32, 32), dtype=dtype)[8].compute()
    assert plane.dtype == dtype
    if dtype == np.uint8:
        assert plane.max() == 255  # white matter saturates rather than wrapping


def test_bad_shapes_and_dtypes_are_refused():
    with pytest.raises(ValueError, match="three positive sizes"):
        sample.brain_volume((0, 10, 10))
    with pytest.raises(ValueError, match="integers"):
        sample.brain_volume((4, 4, 4), dtype=np.float32)


def test_pyramid_levels_halve_and_are_generated_at_their_own_resolution():
    levels = sample.brain_pyramid((64, 64, 64), levels=3)
    assert [level.shape for level in levels] == [(64, 64, 64), (32, 32, 32), (16, 16, 16)]
    coarse = levels[2].compute()
    # Same anatomy: the coarse level's centre voxel matches the fine level's tissue.
    fine_centre = levels[0][32, 32, 44].compute()
    assert abs(int(coarse[8, 8, 11]) - int(fine_centre)) < 300


def test_layer_data_carries_scale_units_labels_and_fixed_contrast():
    data, kwargs, layer_type = sample.brain_layer((128, 128, 128), levels=2)
    assert layer_type == "image"
    assert isinstance(data, list)
    assert len(data) == 2
    assert kwargs["scale"] == (1.6, 1.6, 1.6)
    assert kwargs["units"] == ("mm", "mm", "mm")
    assert kwargs["axis_labels"] == sample.BRAIN_AXIS_LABELS
    assert kwargs["contrast_limits"] == sample.BRAIN_CONTRAST_LIMITS
    single, single_kwargs, _ = sample.brain_layer((16, 16, 16), levels=1)
    assert not single_kwargs["multiscale"]
    assert single.shape == (16, 16, 16)


def test_tiff_slices_are_one_file_per_plane_and_match_the_volume(tmp_path):
    brain = sample.brain_volume((6, 40, 30), chunks=(4, 40, 30))
    seen = []
    files = sample.write_tiff_slices(
        brain, tmp_path / "axial", progress=lambda done, total: seen.append((done, total))
    )
    assert [f.name for f in sorted((tmp_path / "axial").iterdir())] == [f.name for f in files]
    assert files[0].name == "Synthesized_FLASH25_Axial_0001.tiff"
    stack = np.stack([tifffile.imread(f) for f in files])
    np.testing.assert_array_equal(stack, brain.compute())
    assert seen[-1] == (6, 6)
    assert [p.name for p in tmp_path.iterdir()] == ["axial"]  # no partial folder left


def test_writers_never_replace_existing_data(tmp_path):
    existing = tmp_path / "axial"
    existing.mkdir()
    (existing / "keep.tiff").write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="axial"):
        sample.write_tiff_slices(sample.brain_volume((2, 8, 8)), existing)
    assert (existing / "keep.tiff").read_bytes() == b"precious"
    nifti = tmp_path / "brain.nii"
    nifti.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match=r"brain\.nii"):
        sample.write_nifti(sample.brain_volume((2, 8, 8)), nifti, (1, 1, 1))
    assert nifti.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["axial", "brain.nii"]


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    brain = sample.brain_volume((3, 8, 8))

    def stop(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sample.write_tiff_slices(brain, tmp_path / "axial", progress=stop)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_nifti_round_trip_through_nibabel(tmp_path, suffix):
    brain = sample.brain_volume((10, 14, 12), chunks=(3, 14, 12))
    target = sample.write_nifti(brain, tmp_path / f"brain{suffix}", (2.0, 1.5, 1.0))
    image = nibabel.load(target)
    assert image.shape == (12, 14, 10)
    assert nibabel.aff2axcodes(image.affine) == ("L", "A", "S")
    assert image.header.get_zooms() == (1.0, 1.5, 2.0)
    stored = np.asanyarray(image.dataobj)
    expected = brain.compute()  # (S, P, L)
    # Voxel (i, j, k) runs left, anterior, superior: it is brain[k, last - j, i].
    np.testing.assert_array_equal(stored, expected[:, ::-1, :].transpose(2, 1, 0))
    # The field of view is centred on scanner 0.
    centre = image.affine @ [*((n - 1) / 2 for n in image.shape), 1]
    np.testing.assert_allclose(centre[:3], 0, atol=1e-9)
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


@pytest.mark.slow
def test_blocks_generated_on_a_distributed_cluster_match_local_ones():
    """The graph pickles to worker processes, which generate the same voxels."""
    distributed = pytest.importorskip("distributed")
    brain = sample.brain_volume((24, 48, 40), chunks=(5, 48, 40))
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        remote = client.compute(brain).result()
    np.testing.assert_array_equal(remote, brain.compute(scheduler="threads"))
