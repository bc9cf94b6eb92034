"""File > Open Sample > napari-bigvol: the lazy synthetic brain and nibabel's real MRI."""

from __future__ import annotations

import nibabel
import numpy as np
import pytest

from napari_bigvol import sample
from napari_bigvol._napari import _sample_data


@pytest.fixture
def generated_blocks(monkeypatch) -> list:
    """Array locations of every brain block generated while the test runs."""
    locations: list = []
    generate = sample._BrainBlock.__call__

    def counting(self, block_info):
        locations.append((self.shape, block_info[None]["array-location"]))
        return generate(self, block_info)

    monkeypatch.setattr(sample._BrainBlock, "__call__", counting)
    return locations


def test_synthetic_brain_is_a_lazy_2_gib_pyramid(generated_blocks):
    [(data, kwargs, layer_type)] = _sample_data.synthetic_brain()
    assert layer_type == "image"
    assert kwargs["multiscale"] is True
    assert [level.shape for level in data] == [(1024,) * 3, (512,) * 3, (256,) * 3, (128,) * 3]
    assert data[0].nbytes == 2 * 1024**3
    assert kwargs["scale"] == (0.2, 0.2, 0.2)
    assert kwargs["contrast_limits"] == sample.BRAIN_CONTRAST_LIMITS
    assert generated_blocks == []


def test_real_mri_is_nibabels_anatomical_scan_read_by_the_plugin():
    [(data, kwargs, layer_type)] = _sample_data.real_mri()
    assert layer_type == "image"
    original = nibabel.load(_sample_data.real_mri_path())
    assert sorted(data.shape) == sorted(original.shape)
    assert kwargs["scale"] == (2.0, 2.0, 2.0)
    # Same voxels, only reoriented: the plugin never resamples.
    on_disk = np.asanyarray(original.dataobj)
    assert int(data.sum().compute()) == int(on_disk.sum())


def test_written_nifti_reads_back_as_the_same_layer(tmp_path):
    """The synthetic brain follows the NIfTI reader's convention exactly (axes and world)."""
    from napari_bigvol import read

    shape = (12, 20, 16)
    brain, brain_kwargs, _ = sample.brain_layer(shape, levels=1)
    volume = sample.brain_volume(shape)  # screen order; the layer is its (S, A, R) view
    path = sample.write_nifti(volume, tmp_path / "brain.nii.gz", sample.brain_voxel_size(shape))
    [(data, kwargs, _)] = read(path)
    np.testing.assert_array_equal(np.asarray(data), brain.compute())
    np.testing.assert_allclose(kwargs["scale"], brain_kwargs["scale"])
    np.testing.assert_allclose(kwargs["translate"], brain_kwargs["translate"])
    assert tuple(kwargs["axis_labels"]) == brain_kwargs["axis_labels"]


def test_open_sample_in_a_real_viewer_generates_only_what_is_shown(
    make_napari_viewer, generated_blocks
):
    viewer = make_napari_viewer()
    layers = viewer.open_sample("napari-bigvol", "synthetic_brain")
    [layer] = layers
    assert layer.multiscale
    assert layer.data[0].shape == (1024, 1024, 1024)
    assert tuple(layer.contrast_limits) == sample.BRAIN_CONTRAST_LIMITS
    # napari draws one axial plane of one pyramid level: a handful of plane blocks out of
    # the 1920 the pyramid has, never a whole volume.
    assert 1 <= len(generated_blocks) <= 8
    assert all(stop - start == 1 for _, ((start, stop), _, _) in generated_blocks)
    # An RAS layer: the plugin turned the camera, anterior up and radiological.
    assert tuple(map(str, viewer.scene.camera.orientation)) == ("away", "up", "left")


def test_open_real_mri_sample_in_a_real_viewer(make_napari_viewer):
    viewer = make_napari_viewer()
    [layer] = viewer.open_sample("napari-bigvol", "real_mri")
    assert layer.data.shape == (25, 41, 33)
    assert layer.scale.tolist() == [2.0, 2.0, 2.0]
