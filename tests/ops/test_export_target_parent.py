"""Export targets whose parent is a file, not a folder."""

from __future__ import annotations

import numpy as np
import pytest

from napari_bigvol.errors import OperationError
from napari_bigvol.ops.export import export_zarr


@pytest.mark.parametrize("depth", [1, 2])
def test_a_parent_that_is_a_file_is_named_as_such(tmp_path, depth):
    """It said "the folder ... does not exist", which sends the user looking for a typo."""
    blocker = tmp_path / "notes.txt"
    blocker.write_text("not a folder")
    target = blocker.joinpath(*["sub"] * (depth - 1), "out.ome.zarr")

    with pytest.raises(OperationError, match=r"notes\.txt is a file, not a folder"):
        export_zarr(np.zeros((2, 4, 4), np.uint8), str(target))
    assert blocker.read_text() == "not a folder"
