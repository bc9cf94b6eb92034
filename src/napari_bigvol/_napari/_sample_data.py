"""npe2 sample data contributions (File > Open Sample > napari-bigvol).

``synthetic_brain`` is the embedded default volume: 2 GiB of procedurally generated head,
built lazily so opening it computes nothing until napari shows a slice. ``real_mri`` opens
a small real T1 scan that nibabel ships with its tests, through the plugin's own reader.
"""

from __future__ import annotations

from pathlib import Path

from napari_bigvol._napari._anatomical import follow_current_viewer
from napari_bigvol.io import LayerData, read
from napari_bigvol.sample import brain_layer


def real_mri_path() -> Path:
    """Locate the anatomical MRI shipped inside the installed nibabel package.

    Returns
    -------
    pathlib.Path
        ``nibabel/tests/data/anatomical.nii``: a 33 x 41 x 25 T1 scan at 2 mm.

    Examples
    --------
    >>> real_mri_path().name
    'anatomical.nii'
    """
    import nibabel.tests

    return Path(nibabel.tests.__file__).parent / "data" / "anatomical.nii"


def synthetic_brain() -> list[LayerData]:
    """Open the 1024³ synthetic brain (2 GiB of uint16 at 0.2 mm) as a lazy pyramid.

    Returns
    -------
    list of tuple
        One image layer with four generated resolution levels, physical scale in
        millimetres and fixed contrast limits.

    Examples
    --------
    >>> [(data, kwargs, layer_type)] = synthetic_brain()
    >>> data[0].shape, kwargs["scale"], layer_type
    ((1024, 1024, 1024), (0.2, 0.2, 0.2), 'image')
    """
    layer_data = [brain_layer()]
    follow_current_viewer(layer_data)
    return layer_data


def real_mri() -> list[LayerData]:
    """Open nibabel's small real anatomical MRI with napari-bigvol's NIfTI reader.

    Returns
    -------
    list of tuple
        The layer data :func:`napari_bigvol.read` returns for the file.

    Examples
    --------
    >>> [(data, kwargs, layer_type)] = real_mri()
    >>> data.shape, kwargs["scale"], kwargs["axis_labels"]
    ((25, 41, 33), (2.0, 2.0, 2.0), ('I→S', 'P→A', 'L→R'))
    """
    layer_data = read(real_mri_path())
    follow_current_viewer(layer_data)
    return layer_data


__all__ = ["real_mri", "real_mri_path", "synthetic_brain"]
