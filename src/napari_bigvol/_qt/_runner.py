"""Run whole-volume work in a napari thread worker, with progress, cancel and notifications.

Every dock widget starts its long computations through :func:`run_in_background`. The
work runs in a napari ``FunctionWorker`` (a Qt thread-pool thread), so the viewer stays
responsive. Progress goes to a ``napari.utils.cancelable_progress`` bar, which napari
shows in the activity dock (with a Cancel button) and, outside Qt, in the console. The
outcome is delivered on the GUI thread to exactly one of three callbacks: ``on_done``,
``on_cancelled`` or ``on_error``; an error the caller does not handle becomes a napari
error notification, so no worker ever dies silently.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from napari.qt.threading import FunctionWorker, create_worker
from napari.utils import cancelable_progress
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QObject, Signal

from napari_bigvol.errors import BigVolError, Cancelled
from napari_bigvol.ops.compute import ProgressCallback, StopCheck, describe_scheduler

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

#: Seconds between progress-bar updates sent to the GUI thread. Each update repaints
#: the window (napari's bar processes events on every value), which under software
#: OpenGL cost a third of a whole-volume histogram's CPU at 10 updates a second.
PROGRESS_INTERVAL = 0.5
_INITIAL_TOTAL = 1


class Computation(Protocol[T_co]):
    """Work to run in the background: ``compute(progress, should_stop) -> result``.

    ``progress(done, total)`` may be called from the worker thread as often as wanted;
    ``should_stop()`` turns True once the user cancels. Both match the keywords of
    :func:`napari_bigvol.ops.compute.stream_blocks`, so an operation can be passed
    straight through.
    """

    def __call__(self, progress: ProgressCallback, should_stop: StopCheck) -> T_co: ...


class BackgroundTask(QObject, Generic[T]):
    """One computation running in a napari thread worker.

    Create it with :func:`run_in_background`, which also starts it.

    Attributes
    ----------
    description : str
        Shown on the progress bar and in messages.
    progress_bar : napari.utils.cancelable_progress
        The bar napari shows in its activity dock while the task runs.
    worker : napari.qt.threading.FunctionWorker
        The underlying worker.
    outcome : str
        ``"running"``, then one of ``"done"``, ``"cancelled"`` or ``"failed"``.
    result : object
        What the computation returned, once ``outcome == "done"``.
    error : Exception or None
        What the computation raised, once ``outcome == "failed"``.
    is_finished : bool
        True once the worker has ended and the outcome callback has run.
    cancel_reason : str
        Why it was cancelled (``"cancelled"`` unless :meth:`cancel` was given a reason).

    Signals
    -------
    finished
        Emitted once on the GUI thread, after the outcome callback has run.
    progressed(int, int)
        ``(done, total)`` on the GUI thread, as the activity dock's bar advances; dock
        widgets show the same figures in their own bar.
    """

    finished = Signal()
    progressed = Signal(int, int)
    # Emitted from the worker thread; Qt queues it to the GUI thread, where the bar lives.
    _advanced = Signal(int, int)

    def __init__(
        self, compute: Computation[T], description: str, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.description = description
        self.outcome = "running"
        self.result: T | None = None
        self.error: Exception | None = None
        self._compute = compute
        self._stop_requested = threading.Event()
        self.cancel_reason = "cancelled"
        self.is_finished = False
        self._last_report = 0.0
        self.progress_bar = self._progress_bar()
        self._advanced.connect(self._show_progress)
        self.worker: FunctionWorker = self._worker()

    def _progress_bar(self) -> cancelable_progress:
        # Names where the work runs: local threads, a configured scheduler or the client.
        # A total of 1 until the first report gives the real one: total=0 would make the
        # bar indeterminate, whose busy animation repaints the window without pause and
        # took half the CPU of a whole-volume histogram (benchmarks/bench_dock_parity.py).
        return cancelable_progress(
            desc=f"{self.description} on {describe_scheduler()}", total=_INITIAL_TOTAL
        )

    def _worker(self) -> FunctionWorker:
        """Return napari's (unstarted) thread worker for the computation, wired to this task."""
        worker = create_worker(self._work, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(self._on_returned)
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_finished)
        return worker

    # -- called from the GUI thread -------------------------------------------------------

    def start(
        self,
        on_done: Callable[[T], None],
        on_error: Callable[[Exception], None] | None = None,
        on_cancelled: Callable[[], None] | None = None,
    ) -> None:
        """Start the worker thread; its outcome goes to one of the callbacks.

        The callbacks are those of :func:`run_in_background`, which calls this.
        """
        self._on_done = on_done
        self._on_error = on_error or self._notify_error
        self._on_cancelled = on_cancelled
        _FrozenHeap.enter()
        self.worker.start()

    def cancel(self, reason: str = "cancelled") -> None:
        """Ask the computation to stop; its ``on_cancelled`` callback follows.

        Parameters
        ----------
        reason : str
            Why, for messages; kept in :attr:`cancel_reason`.
        """
        if not self._stop_requested.is_set():
            self.cancel_reason = reason
        self._stop_requested.set()

    @property
    def running(self) -> bool:
        """True until the outcome is known."""
        return self.outcome == "running"

    # -- called from the worker thread ----------------------------------------------------

    def should_stop(self) -> bool:
        """Tell whether cancel was requested (from a widget, the activity dock or napari)."""
        return (
            self._stop_requested.is_set()
            or self.progress_bar.is_canceled  # the activity dock's Cancel button
            or self.worker.abort_requested  # napari's task-status cancel
        )

    def _report(self, done: int, total: int) -> None:
        # Each update repaints the window; two per second read as moving progress and
        # leave the CPU (and the GIL) to the workers.
        now = time.monotonic()
        if done >= total or now - self._last_report >= PROGRESS_INTERVAL:
            self._last_report = now
            self._advanced.emit(done, total)

    def _work(self) -> T:
        result = self._compute(self._report, self.should_stop)
        if self.should_stop():
            # Finished just as the user cancelled: honour the cancel, deliver nothing.
            raise Cancelled("cancelled by the user")
        return result

    # -- outcome, on the GUI thread -------------------------------------------------------

    def _show_progress(self, done: int, total: int) -> None:
        if self.progress_bar.total != total:
            self.progress_bar.total = total
        self.progress_bar.update(done - self.progress_bar.n)
        self.progressed.emit(done, total)

    def _on_returned(self, result: T) -> None:
        self.outcome = "done"
        self.result = result
        try:
            self._on_done(result)
        except BigVolError as exc:
            # The result arrived but cannot be used any more (e.g. its layer was removed).
            self.outcome = "failed"
            self.error = exc
            self._on_error(exc)

    def _on_errored(self, exc: Exception) -> None:
        if isinstance(exc, Cancelled):
            self._mark_cancelled()
            return
        self.outcome = "failed"
        self.error = exc
        self._on_error(exc)

    def _on_finished(self) -> None:
        if self.outcome == "running":
            # napari's own task-status cancel calls worker.quit(), after which the worker
            # emits neither returned nor errored.
            self._mark_cancelled()
        self.progress_bar.close()
        self.is_finished = True
        _FrozenHeap.leave()
        self.finished.emit()

    def _mark_cancelled(self) -> None:
        self.outcome = "cancelled"
        if self._on_cancelled is not None:
            self._on_cancelled()
        else:
            show_info(f"{self.description}: {self.cancel_reason}")

    def _notify_error(self, exc: Exception) -> None:
        show_error(error_message(self.description, exc))


def error_message(description: str, exc: BaseException) -> str:
    """Word the message a user sees when ``description`` failed with ``exc``.

    Our own errors already name the file or layer and the problem; anything else is an
    unexpected failure, so its type is kept to make a bug report useful.

    Examples
    --------
    >>> from napari_bigvol.errors import OperationError
    >>> error_message("Histogram", OperationError("layer 'mri' has dtype complex64"))
    "Histogram failed: layer 'mri' has dtype complex64"
    >>> error_message("Histogram", MemoryError("out of memory"))
    'Histogram failed: MemoryError: out of memory'
    """
    detail = str(exc) if isinstance(exc, BigVolError) else f"{type(exc).__name__}: {exc}"
    return f"{description} failed: {detail}"


class _FrozenHeap:
    """Python's full collections skip the viewer's objects while background work runs.

    Whole-volume work builds dask graphs of many small objects, and their allocation
    triggers full (generation 2) garbage collections. In a napari process each walks every
    object of the viewer while holding the GIL, so the event loop stops too: 164 ms when the
    View cache dock built the cache of a 2,000-file folder, the only stall over 100 ms
    (``benchmarks/bench_view_cache.py --only gui``). :func:`gc.freeze` moves the objects
    alive when the first task starts out of those collections; :func:`gc.unfreeze` returns
    them when the last task ends, so nothing stays uncollectable.
    """

    running = 0

    @classmethod
    def enter(cls) -> None:
        """Freeze the heap for the first of the running tasks."""
        if cls.running == 0:
            gc.freeze()
        cls.running += 1

    @classmethod
    def leave(cls) -> None:
        """Unfreeze it when the last running task has ended."""
        cls.running -= 1
        if cls.running == 0:
            gc.unfreeze()


def run_in_background(
    compute: Computation[T],
    *,
    description: str,
    on_done: Callable[[T], None],
    on_error: Callable[[Exception], None] | None = None,
    on_cancelled: Callable[[], None] | None = None,
    parent: QObject | None = None,
) -> BackgroundTask[T]:
    """Start ``compute`` in a napari thread worker and return its task handle.

    Parameters
    ----------
    compute : callable
        ``compute(progress, should_stop)`` does the work in the worker thread and returns
        the result. It should call ``progress(done, total)`` as it goes and return early
        by raising :class:`~napari_bigvol.errors.Cancelled` once ``should_stop()`` is True
        (the operations in :mod:`napari_bigvol.ops` do both when given these keywords).
    description : str
        A short name for the work (``"Histogram of 'brain'"``), shown on the progress bar
        and in notifications.
    on_done : callable
        ``on_done(result)``, called on the GUI thread when the work succeeded and was not
        cancelled. If it raises a :class:`~napari_bigvol.errors.BigVolError` (for example
        because the layer it was for is gone), that error is handled like a failure.
    on_error : callable, optional
        ``on_error(exception)`` on the GUI thread when the work failed. By default the
        failure becomes a napari error notification.
    on_cancelled : callable, optional
        Called on the GUI thread when the work was cancelled. By default an info
        notification says so. Nothing of the result is delivered.
    parent : QObject, optional
        Qt parent of the task object.

    Returns
    -------
    BackgroundTask
        The running task: ``cancel()`` it, read its ``outcome`` or connect to ``finished``.

    Examples
    --------
    >>> import dask.array as da
    >>> from napari_bigvol.ops.compute import reduce_blocks
    >>> volume = da.ones((64, 256, 256), chunks=(8, 256, 256))
    >>> task = run_in_background(  # doctest: +SKIP
    ...     lambda progress, should_stop: reduce_blocks(
    ...         volume, lambda block, index: block.sum(), lambda a, b: a + b,
    ...         progress=progress, should_stop=should_stop,
    ...     ),
    ...     description="Sum of volume",
    ...     on_done=lambda total: print(total),
    ... )
    """
    task = BackgroundTask(compute, description, parent)
    task.start(on_done, on_error, on_cancelled)
    return task


__all__ = ["BackgroundTask", "Computation", "error_message", "run_in_background"]
