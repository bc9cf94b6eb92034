"""napari's sliders reach every plane whatever the voxel size (napari issue 4861)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import tifffile
from napari.components import ViewerModel

import napari_bigvol
from napari_bigvol.io._slider_steps import keep_every_plane, napari_step_count

# (planes, voxel size) pairs for which napari 0.9.2 shows one plane too few.
PLANE_DROPPING = [(360, 0.2), (121, 1.1), (127, 0.35), (325, 0.2)]


@pytest.mark.parametrize(("planes", "size"), PLANE_DROPPING)
def test_the_raw_geometry_loses_a_plane_in_napari(planes, size):
    viewer = ViewerModel()
    viewer.add_image(np.zeros((planes, 2, 2), np.uint8), scale=(size, 1, 1))
    assert viewer.dims.nsteps[0] == planes - 1 == napari_step_count(planes, size)


@pytest.mark.parametrize(("planes", "size"), PLANE_DROPPING)
def test_a_tiff_stack_keeps_every_plane(tmp_path, planes, size):
    path = tmp_path / "stack.ome.tif"
    stack = np.arange(planes, dtype=np.uint16).repeat(4).reshape(planes, 2, 2)
    metadata = {"axes": "ZYX", "PhysicalSizeZ": size, "PhysicalSizeZUnit": "µm"}
    tifffile.imwrite(path, stack, ome=True, metadata=metadata)
    ((data, kwargs, _),) = napari_bigvol.read(path)
    assert kwargs["scale"][0] == pytest.approx(size, rel=1e-12)
    viewer = ViewerModel()
    layer = viewer.add_image(data, **kwargs)
    assert viewer.dims.nsteps[0] == planes
    viewer.dims.set_current_step(0, planes - 1)
    assert int(np.asarray(layer._slice.image.raw).max()) == planes - 1  # the last plane shows


def test_a_nifti_keeps_every_plane_and_its_world_coordinates(tmp_path):
    planes, size, origin = 267, 2.4704314149259283, -75.2589490081046
    affine = np.diag([1.0, 1.0, size, 1.0])
    affine[2, 3] = origin
    path = tmp_path / "scan.nii"
    nib.Nifti1Image(np.zeros((3, 3, planes), np.int16), affine).to_filename(path)
    ((data, kwargs, _),) = napari_bigvol.read(path)
    viewer = ViewerModel()
    layer = viewer.add_image(data, **kwargs)
    assert planes in viewer.dims.nsteps
    last = layer.data_to_world(np.array(data.shape) - 1)
    first = layer.data_to_world(np.zeros(data.ndim))
    stored_size = float(nib.load(path).affine[2, 2])  # the header keeps float32 voxel sizes
    assert np.ptp([first, last], axis=0).max() == pytest.approx(stored_size * (planes - 1))


def test_channel_rgb_multiscale_and_affine_layers():
    channels = keep_every_plane(
        (np.zeros((3, 360, 2, 2)), {"channel_axis": 0, "scale": (0.2, 1, 1)}, "image")
    )
    assert napari_step_count(360, channels[1]["scale"][0]) == 360
    rgb = keep_every_plane(
        (np.zeros((360, 2, 2, 3)), {"rgb": True, "scale": (0.2, 1, 1)}, "image")
    )
    assert napari_step_count(360, rgb[1]["scale"][0]) == 360
    levels = [np.zeros((360, 4, 4)), np.zeros((180, 2, 2))]
    multiscale = keep_every_plane((levels, {"scale": (0.2, 1, 1)}, "image"))
    assert napari_step_count(360, multiscale[1]["scale"][0]) == 360
    oblique = (np.zeros((360, 2, 2)), {"scale": (0.2, 1, 1), "affine": np.eye(4)}, "image")
    assert keep_every_plane(oblique) is oblique
    assert keep_every_plane((np.zeros((4, 4)), {}, "image"))[1] == {}
