"""Background tasks: results, progress, cancel, errors, and a live event loop meanwhile."""

from __future__ import annotations

import gc
import operator
import threading

import dask.array as da
import numpy as np
import pytest
from qtpy.QtCore import QTimer

from napari_bigvol._qt._runner import error_message, run_in_background
from napari_bigvol.errors import Cancelled, OperationError
from napari_bigvol.ops.compute import reduce_blocks


def block_sum(block, index):
    return int(block.sum(dtype=np.int64))


def test_result_and_progress_from_streamed_blocks(qtbot, wait_task):
    volume = da.arange(40 * 16 * 16, dtype=np.int64).reshape(40, 16, 16).rechunk((4, 16, 16))
    results, seen_totals = [], []
    task = run_in_background(
        lambda progress, should_stop: reduce_blocks(
            volume, block_sum, operator.add, progress=progress, should_stop=should_stop
        ),
        description="Sum",
        on_done=results.append,
    )
    task.progress_bar.events.total.connect(lambda event: seen_totals.append(event.value))
    wait_task(task)
    assert results == [int(np.arange(40 * 16 * 16).sum())]
    assert task.outcome == "done"
    assert task.result == results[0]
    assert seen_totals == [10]  # one progress step per block
    assert task.progress_bar.n == 10


def wait_until_stopped(started: threading.Event):
    """A computation that runs until it is told to stop."""

    def compute(progress, should_stop):
        started.set()
        while not should_stop():
            threading.Event().wait(0.005)
        raise Cancelled("cancelled by the user")

    return compute


@pytest.mark.parametrize("how", ["task", "activity dock", "napari task status"])
def test_cancel_delivers_no_result(qtbot, wait_task, how):
    started = threading.Event()
    delivered, cancelled = [], []
    task = run_in_background(
        wait_until_stopped(started),
        description="Endless",
        on_done=delivered.append,
        on_cancelled=lambda: cancelled.append(True),
    )
    assert started.wait(10)
    if how == "task":
        task.cancel("stopped in test")
    elif how == "activity dock":
        task.progress_bar.cancel()  # what the activity dock's Cancel button calls
    else:
        task.worker.quit()  # what napari's task-status cancel calls
    wait_task(task)
    assert task.outcome == "cancelled"
    assert delivered == []
    assert cancelled == [True]
    if how == "task":
        assert task.cancel_reason == "stopped in test"


def test_cancel_after_the_work_finished_still_delivers_nothing(qtbot, wait_task):
    release = threading.Event()
    delivered, cancelled = [], []

    def compute(progress, should_stop):
        release.wait(10)
        return 42  # ignores should_stop, like an operation finishing its last block

    task = run_in_background(
        compute,
        description="Quick",
        on_done=delivered.append,
        on_cancelled=lambda: cancelled.append(True),
    )
    task.cancel()
    release.set()
    wait_task(task)
    assert (task.outcome, delivered, cancelled) == ("cancelled", [], [True])


def test_error_becomes_a_notification(qtbot, wait_task, notifications):
    def compute(progress, should_stop):
        raise OperationError("layer 'brain' has dtype complex64")

    task = run_in_background(compute, description="Histogram", on_done=lambda r: None)
    wait_task(task)
    assert task.outcome == "failed"
    assert isinstance(task.error, OperationError)
    assert notifications.errors == ["Histogram failed: layer 'brain' has dtype complex64"]


def test_unexpected_error_names_its_type(qtbot, wait_task):
    errors = []

    def compute(progress, should_stop):
        return {}["missing"]

    task = run_in_background(
        compute, description="Count", on_done=lambda r: None, on_error=errors.append
    )
    wait_task(task)
    assert isinstance(errors[0], KeyError)
    assert error_message("Count", errors[0]) == "Count failed: KeyError: 'missing'"


def test_delivery_error_is_reported_not_raised(qtbot, wait_task):
    errors = []

    def deliver(result):
        raise OperationError("layer 'gone' was removed")

    task = run_in_background(
        lambda progress, should_stop: 1,
        description="Mask",
        on_done=deliver,
        on_error=errors.append,
    )
    wait_task(task)
    assert task.outcome == "failed"
    assert [str(e) for e in errors] == ["layer 'gone' was removed"]


def test_event_loop_keeps_running_during_the_work(qtbot, wait_task):
    started, release = threading.Event(), threading.Event()
    ticks = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(1))

    def compute(progress, should_stop):
        started.set()
        release.wait(20)
        return "done"

    task = run_in_background(compute, description="Slow", on_done=lambda r: None)
    timer.start()
    assert started.wait(10)
    # The worker is blocked until released; the GUI thread must keep ticking meanwhile.
    qtbot.waitUntil(lambda: len(ticks) >= 10, timeout=10_000)
    assert task.running
    release.set()
    wait_task(task)
    timer.stop()
    assert task.outcome == "done"


def test_full_collections_skip_the_viewers_objects_while_tasks_run(qtbot, wait_task):
    """A full gc walked the whole viewer for 164 ms during a cache build: the one stall."""
    releases = [threading.Event(), threading.Event()]
    heap_before = len(gc.get_objects())

    def blocked(release):
        return lambda progress, should_stop: release.wait(20)

    assert gc.get_freeze_count() == 0
    first = run_in_background(blocked(releases[0]), description="A", on_done=lambda r: None)
    assert gc.get_freeze_count() >= heap_before // 2  # the live heap is frozen
    second = run_in_background(blocked(releases[1]), description="B", on_done=lambda r: None)
    releases[0].set()
    wait_task(first)
    assert gc.get_freeze_count() > 0  # B still runs
    releases[1].set()
    wait_task(second)
    assert gc.get_freeze_count() == 0  # nothing stays out of collection
