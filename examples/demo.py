"""Open napari with napari-bigvol on its embedded sample volume.

Run it through ``bash .ci/demo`` (which installs everything first), or directly::

    python examples/demo.py                      # a napari window
    python examples/demo.py --screenshot out.png # render, save a screenshot, exit

The sample is a procedurally generated brain-like volume of about 2 GB whose chunks are
computed only when napari displays them, so it opens instantly.
"""

from __future__ import annotations

import argparse

import napari


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenshot", metavar="PNG", help="save a screenshot and exit")
    args = parser.parse_args(argv)

    viewer = napari.Viewer(title="napari-bigvol demo", show=True)
    viewer.window.resize(1500, 950)
    viewer.open_sample("napari-bigvol", "synthetic_brain")
    viewer.window.add_plugin_dock_widget("napari-bigvol", "Histogram")
    if args.screenshot:
        _let_widgets_draw(seconds=2.0)
        viewer.screenshot(args.screenshot, canvas_only=False)
        viewer.close()
        print(f"saved {args.screenshot}")
        return
    napari.run()


def _let_widgets_draw(seconds: float) -> None:
    """Run the Qt event loop briefly so docks lay out and the histogram plots."""
    from qtpy.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


if __name__ == "__main__":
    main()
