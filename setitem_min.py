import numpy as np, zarr
from napari_bigvol.io._zarr_chunks import ChunkFiles, ChunkedLevel
from napari_bigvol.io._tiled_array import tiled_array
arr = zarr.create_array("/tmp/tprop/si.zarr", shape=(4, 6), chunks=(2, 4), dtype="uint16", zarr_format=2,
                        chunk_key_encoding={"name": "v2", "separator": "/"}, fill_value=0, overwrite=True)
arr[:] = np.arange(24, dtype="uint16").reshape(4, 6)
files = ChunkFiles.of(arr)
level = tiled_array(ChunkedLevel(files), files.chunks, "name")
level[1, 1] = 999                      # dask's in-place __setitem__
print(level.compute()[1, 1])           # 999
print(level[1, 1].compute())           # expected 999
print(level[1].compute())              # expected [6 999 8 9 10 11]
print(level[:].compute()[1, 1])        # region == self.region -> self: 999
