"""Tutorial 3: split an RGB histology image into channels and estimate relative stain amounts.

This replays the image-handling lesson's exercise: read a colour image, show each colour
channel with its histogram, build one binary mask per channel with a threshold, and use the
masks to estimate the relative amounts of the stains. The image is scikit-image's
``ihc.png``, an immunohistochemistry section (hematoxylin counterstain, blue, and DAB
chromogen, brown), which ships with scikit-image so the tutorial runs offline.

In a bright-field image the stains *absorb* light, so a stained pixel is dark in the
colour its stain absorbs: hematoxylin absorbs red light, DAB absorbs blue light. Each mask
therefore keeps the pixels *below* a threshold, chosen automatically with Otsu's method on
the channel's histogram.

    python examples/histology_channels.py
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _tutorial import launch

from napari_bigvol import apply_mask, histogram, mask_statistics, split_channels, threshold_mask
from napari_bigvol.ops.threshold import otsu_threshold_of

CHANNELS = ("red", "green", "blue")
# The channel each stain darkens, and the colour napari shows its mask in.
STAINS = {"hematoxylin": ("red", "blue"), "DAB": ("blue", "orange")}


@dataclass
class StainAmounts:
    """Per-channel histograms, the thresholds used and the area fraction of each stain."""

    thresholds: dict[str, float]
    fractions: dict[str, float]
    # How the estimate moves when each threshold moves by -20, -10, +10 and +20.
    sensitivity: dict[str, dict[float, float]]
    histograms: dict[str, tuple[Any, Any]] = field(repr=False)

    @property
    def dab_to_hematoxylin(self) -> float:
        """DAB-stained area relative to the hematoxylin-stained area."""
        return self.fractions["DAB"] / self.fractions["hematoxylin"]


def prepare(workdir: Path) -> Path:
    """Locate ``ihc.png`` inside the installed scikit-image (nothing to download)."""
    import skimage.data

    return Path(skimage.data.__file__).parent / "ihc.png"


def run(viewer: Any, path: Path) -> StainAmounts:
    """Open the image, split its channels, histogram and threshold each, measure stains."""
    [rgb_layer] = viewer.open(str(path), plugin="napari-bigvol")
    rgb_layer.visible = False
    channels = dict(zip(CHANNELS, split_channels(rgb_layer.data), strict=True))
    for name, data in channels.items():
        viewer.add_image(data, name=name, colormap=name, blending="additive")

    # One bin per 4 intensity levels, over the whole 8-bit range, as the lesson plots them.
    histograms = {name: histogram(data, 64, (0, 256)) for name, data in channels.items()}
    thresholds, fractions, sensitivity = {}, {}, {}
    for stain, (channel, colour) in STAINS.items():
        threshold = otsu_threshold_of(channels[channel])
        mask = threshold_mask(channels[channel], threshold, mode="below")
        colours = {None: "transparent", 1: colour}
        viewer.add_labels(mask.astype("uint8"), name=f"{stain} mask", colormap=colours)
        # The lesson's masked image: the colour image where the stain is, black elsewhere.
        masked = apply_mask(rgb_layer.data, mask)
        viewer.add_image(masked, name=f"{stain} masked", rgb=True, visible=False)
        thresholds[stain] = threshold
        fractions[stain] = mask_statistics(mask).fraction
        sensitivity[stain] = {
            shift: mask_statistics(
                threshold_mask(channels[channel], threshold + shift, mode="below")
            ).fraction
            for shift in (-20.0, -10.0, 10.0, 20.0)
        }
    return StainAmounts(thresholds, fractions, sensitivity, histograms)


if __name__ == "__main__":
    launch(__doc__.splitlines()[0], prepare, run)
