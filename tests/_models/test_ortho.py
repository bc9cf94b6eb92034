"""The Orthogonal views model, without Qt or a viewer: axes, point, clicks, crosshairs."""

from __future__ import annotations

import numpy as np
import pytest

from napari_bigvol._models.ortho import (
    AxisRange,
    OrthoViews,
    PlaneView,
    click_moves_point,
    is_click,
    main_view,
    side_camera_orientation,
    side_views,
)

RANGES = [(0, 19, 1), (0, 29, 1), (0, 39, 1)]


@pytest.mark.parametrize(
    ("order", "first", "second"),
    [
        # axial main view: coronal (z against x) and sagittal (z against y)
        ((0, 1, 2), (0, 2), (0, 1)),
        # coronal main view (y sliced, z down the rows, x across)
        ((1, 0, 2), (1, 2), (1, 0)),
        # napari's transpose button on the axial view
        ((0, 2, 1), (0, 1), (0, 2)),
        # a time axis first stays out of the planes
        ((0, 1, 2, 3), (1, 3), (1, 2)),
    ],
)
def test_side_views_show_the_sliced_axis_against_each_main_axis(order, first, second):
    views = side_views(order)
    assert [view.displayed for view in views] == [first, second]
    main = main_view(order)
    sliced = order[-3]
    for view in views:
        # each side view shows the main view's sliced axis and one of its displayed axes
        assert view.rows == sliced
        assert view.cols in main.displayed
        # napari displays the last two axes of a dims.order
        assert view.order[-2:] == view.displayed
        assert sorted(view.order) == sorted(order)
        assert view.order[:-3] == tuple(order[:-3])
    # together with the main view every spatial axis is sliced once
    assert {main.slice_axis, *(view.slice_axis for view in views)} == set(order[-3:])


def test_side_views_need_three_dimensions():
    with pytest.raises(ValueError, match="at least 3 dimensions"):
        side_views((0, 1))
    assert OrthoViews((0, 1), [(0, 9, 1), (0, 9, 1)]).views == ()


@pytest.mark.parametrize(
    ("value", "snapped"), [(13.2, 14.0), (12.9, 12.0), (-4.0, 10.0), (500.0, 48.0), (48.0, 48.0)]
)
def test_points_snap_to_the_samples_napari_displays(value, snapped):
    axis = AxisRange(10.0, 48.0, 2.0)
    assert axis.snap(value) == snapped
    # napari's dims.current_step for that value is the same sample
    index = round((snapped - axis.start) / axis.step)
    assert np.clip(round((value - axis.start) / axis.step), 0, 19) == index


def test_click_moves_only_the_displayed_axes_of_the_clicked_view():
    model = OrthoViews((0, 1, 2), RANGES, point=(3, 4, 5))
    seen = []
    model.point_changed.connect(seen.append)
    coronal, sagittal = model.views
    assert model.click(coronal, (7.2, 99.0, 12.4)) == (7.0, 4.0, 12.0)
    assert model.click(sagittal, (1.0, 2.0, 0.0)) == (1.0, 2.0, 12.0)
    assert model.click(main_view(model.order), (0.0, -5.0, 50.0)) == (1.0, 0.0, 39.0)
    assert seen == [(7.0, 4.0, 12.0), (1.0, 2.0, 12.0), (1.0, 0.0, 39.0)]


def test_point_changed_is_emitted_only_when_the_point_moves():
    model = OrthoViews((0, 1, 2), RANGES, point=(3, 4, 5))
    seen = []
    model.point_changed.connect(seen.append)
    assert not model.set_point((3.2, 4.0, 4.9))  # the same voxel
    assert not model.set_point((3.0, 4.0))  # another dimensionality: a viewer mid-update
    assert model.set_point((6.0, 4.0, 5.0))
    assert seen == [(6.0, 4.0, 5.0)]


def test_crosshair_spans_the_voxel_edges_through_the_point():
    model = OrthoViews((0, 1, 2), [(10, 48, 2), (0, 14.5, 0.5), (0, 19.5, 0.5)], (20, 3, 7))
    coronal, _ = model.views  # z (rows) against x (columns)
    horizontal, vertical = model.crosshair(coronal).reshape(2, 2, 2)
    np.testing.assert_allclose(horizontal, [[20, -0.25], [20, 19.75]])
    np.testing.assert_allclose(vertical, [[9, 7], [49, 7]])
    main = model.crosshair(main_view(model.order))
    np.testing.assert_allclose(main, [[3, -0.25], [3, 19.75], [-0.25, 7], [14.75, 7]])


def test_update_dims_follows_order_and_dimensionality():
    model = OrthoViews((0, 1, 2), RANGES, point=(3, 4, 5))
    axes, points = [], []
    model.axes_changed.connect(lambda: axes.append(model.views))
    model.point_changed.connect(points.append)
    model.update_dims((0, 1, 2), RANGES)  # nothing changed
    assert axes == points == []
    model.update_dims((1, 0, 2), RANGES)  # napari's transpose of the first two axes
    assert [view.displayed for view in axes[-1]] == [(1, 2), (1, 0)]
    assert points == []
    model.update_dims((1, 0, 2), [(0, 19, 1), (0, 2, 1), (0, 39, 1)])  # a smaller layer
    assert points == [(3.0, 2.0, 5.0)]
    model.update_dims((0, 1, 2, 3), [(0, 4, 1), *RANGES])  # a time axis appears
    assert model.point == (0.0, 0.0, 0.0, 0.0)
    assert len(axes) == 2


def test_crosshair_visibility_is_evented():
    model = OrthoViews((0, 1, 2), RANGES)
    seen = []
    model.crosshair_changed.connect(seen.append)
    model.crosshair_visible = True  # already shown
    model.crosshair_visible = False
    assert seen == [False]
    assert not model.crosshair_visible


def test_clicks_and_drags():
    assert is_click((10, 10), (10, 10))
    assert is_click((10, 10), (13, 7))
    assert not is_click((10, 10), (14, 10))
    assert click_moves_point(None)
    assert click_moves_point("pan_zoom")
    for mode in ("paint", "fill", "erase", "add", "select", "transform", "pick"):
        assert not click_moves_point(mode)


def test_side_cameras_copy_the_main_orientation():
    # The single point where side views follow the main viewer's conventions (the RAS
    # work sets the main camera; the side views must show the same anatomy upright).
    for orientation in [("towards", "down", "right"), ("away", "up", "left")]:
        assert side_camera_orientation(orientation) == orientation


def test_captions_name_the_plane_and_its_position():
    view = PlaneView(rows=0, cols=2, order=(1, 0, 2))
    labels = ("z", "y", "x")
    assert view.title(labels, (1.0, -12.5, 3.0), ("mm",) * 3) == "z-x plane at y = -12.5 mm"
    assert view.title(labels, (1.0, 7.0, 3.0), ("pixel",) * 3) == "z-x plane at y = 7"
    assert view.title(labels, (1.0, 7.0, 3.0)) == "z-x plane at y = 7"
