"""Streaming whole-volume computation: block by block, with progress, cancel and a cluster.

Every whole-volume operation (histogram, masked-volume counts, export) runs through
:func:`stream_blocks`. It adds one small kernel task per block to the array's task graph
and runs that whole graph as one dask computation, so a task that several blocks share
(after a rechunk, an overlap or a concatenation) runs once. Each kernel result is handed
back as soon as it is ready and reduced by the caller, and dask's ordering
(``dask.order``) releases blocks as their kernels finish, so memory stays at a few
chunks per thread however large the volume is. Between blocks it reports progress and
checks for cancellation; a kernel that spends long on one block can do both inside it,
step by step, with :func:`block_checkpoint`.

Locally the graph runs on dask's threaded scheduler (a posttask callback stops it on
cancel). With a ``dask.distributed`` cluster (see :func:`get_client`) the same graph is
submitted with ``Client.get`` and results come back through ``distributed.as_completed``;
every task must then pickle. Arrays that already sit in this process's memory
(:func:`as_dask_array` reports them) stay on local threads.

Kernels run in the worker threads, so a kernel that releases the GIL (numpy's large
ufuncs, the numba kernels of :mod:`napari_bigvol.ops._kernels`) uses every core.
"""

from __future__ import annotations

import operator
import os
import queue
import sys
import threading
import uuid
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from functools import partial, reduce
from itertools import product
from typing import Any, TypeVar

import dask
import dask.array as da
import dask.threaded
import numpy as np
from dask._task_spec import Task, TaskRef
from dask.array.core import normalize_chunks, slices_from_chunks
from dask.callbacks import Callback

from napari_bigvol.errors import Cancelled, OperationError

T = TypeVar("T")
BlockIndex = tuple[int, ...]
BlockKernel = Callable[[np.ndarray, BlockIndex], T]
ProgressCallback = Callable[[int, int], None]
StopCheck = Callable[[], bool]
StepCount = Callable[[BlockIndex], int]

SCHEDULER_ENV = "NAPARI_BIGVOL_SCHEDULER"
_settings: dict[str, str | None] = {"scheduler": None}
_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()
# How often a cancel request is checked while no block finishes.
_POLL_SECONDS = 0.1
#: How long to wait for a configured scheduler before giving up with a clear error.
CONNECT_TIMEOUT = "10s"
#: Size of the blocks in-memory numpy input is streamed in (see as_dask_array).
IN_MEMORY_BLOCK_BYTES = 32 << 20
# The step function of the kernel running in this thread of a local run, and the run
# whose pool this thread belongs to (see block_checkpoint); unset in any other thread,
# such as a cluster worker's.
_running_kernel = threading.local()


def set_scheduler(address: str | None) -> None:
    """Run whole-volume work on the ``dask.distributed`` scheduler at ``address``.

    Parameters
    ----------
    address : str or None
        A scheduler address such as ``"tcp://10.0.0.5:8786"``; None returns to the
        ``NAPARI_BIGVOL_SCHEDULER`` environment variable, then to the active default
        ``distributed.Client``, then to local threads (see ``get_client``).

    Examples
    --------
    >>> set_scheduler(None)
    >>> scheduler_address() is None or isinstance(scheduler_address(), str)
    True
    """
    _settings["scheduler"] = address


def scheduler_address() -> str | None:
    """Return the configured scheduler address: the setting first, then the environment."""
    return _settings["scheduler"] or os.environ.get(SCHEDULER_ENV) or None


def get_client() -> Any | None:
    """Return the ``distributed.Client`` whole-volume work runs on, or None for local threads.

    In order: a client for the address given to :func:`set_scheduler`, then for
    ``NAPARI_BIGVOL_SCHEDULER``, then the active default client (``distributed``'s
    convention: the last ``Client(...)`` created in this process, as in the napari
    console). None when none of them exists; no client is ever created for the default.
    Clients for an address are created once and reused.

    Raises
    ------
    OperationError
        When a configured scheduler does not answer within :data:`CONNECT_TIMEOUT`.

    Examples
    --------
    >>> set_scheduler(None)
    >>> client = get_client()  # None unless a distributed.Client is active
    """
    address = scheduler_address()
    if not address:
        return _default_client()
    with _clients_lock:
        client = _clients.get(address)
        if client is None or client.status in ("closed", "closing"):
            from distributed import Client  # only needed when a cluster is configured

            try:
                client = Client(address, set_as_default=False, timeout=CONNECT_TIMEOUT)
            except (OSError, TimeoutError) as error:
                raise OperationError(
                    f"cannot reach the dask scheduler at {address} (from the setting or "
                    f"{SCHEDULER_ENV}): {error}"
                ) from error
            _clients[address] = client
        return client


def _default_client() -> Any | None:
    # A client can only exist once distributed was imported: importing it here would
    # cost half a second for nothing.
    if "distributed" not in sys.modules:
        return None
    from distributed import default_client

    try:
        client = default_client()
    except ValueError:  # "No clients found"
        return None
    return client if client.status == "running" else None


def describe_scheduler(local: bool = False) -> str:
    """Say where whole-volume work runs now, for a status line; never connects.

    Parameters
    ----------
    local : bool, optional
        The work stays on local threads whatever is configured (in-memory data).

    Returns
    -------
    str
        For example ``"local threads (8 cores)"``,
        ``"dask scheduler tcp://10.0.0.5:8786 (set_scheduler)"`` or
        ``"dask scheduler tcp://127.0.0.1:40101 (the active distributed client)"``.

    Examples
    --------
    >>> set_scheduler("tcp://10.0.0.5:8786")
    >>> describe_scheduler()
    'dask scheduler tcp://10.0.0.5:8786 (set_scheduler)'
    >>> describe_scheduler(local=True).startswith("local threads")
    True
    >>> set_scheduler(None)
    """
    threads = f"local threads ({os.cpu_count() or 1} cores)"
    if local:
        return threads
    if _settings["scheduler"]:
        return f"dask scheduler {_settings['scheduler']} (set_scheduler)"
    if os.environ.get(SCHEDULER_ENV):
        return f"dask scheduler {os.environ[SCHEDULER_ENV]} ({SCHEDULER_ENV})"
    client = _default_client()
    if client is not None:
        return f"dask scheduler {client.scheduler.address} (the active distributed client)"
    return threads


def close_clients() -> None:
    """Close every ``distributed.Client`` opened by :func:`get_client`.

    For shutdown, for tests, and after the scheduler at a configured address was
    replaced; the next :func:`get_client` connects afresh.

    Examples
    --------
    >>> close_clients()
    """
    with _clients_lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        client.close()


def _block_indices(array: da.Array) -> list[BlockIndex]:
    return list(product(*(range(n) for n in array.numblocks)))


class _KernelCall:
    """Task body on a cluster: the kernel on one block; a class so the task pickles."""

    def __init__(self, kernel: BlockKernel, index: BlockIndex) -> None:
        self.kernel = kernel
        self.index = index

    def __call__(self, block: Any) -> Any:
        return self.kernel(np.asarray(block), self.index)


class _KernelDelivery(_KernelCall):
    """Task body on local threads: hands the kernel's result to the consumer at once.

    The task itself returns None, so the threaded scheduler, which keeps the values of
    the keys it was asked for until the end, holds nothing per block.
    """

    def __init__(self, kernel: BlockKernel, index: BlockIndex, run: _ThreadedRun) -> None:
        super().__init__(kernel, index)
        self.run = run

    def __call__(self, block: Any) -> None:
        with self.run.kernel_running(self.index):
            result = super().__call__(block)
        self.run.deliver((self.index, result))


def block_checkpoint(index: BlockIndex | None = None) -> None:
    """Mark the end of one step of a long kernel: progress inside its block, and a stop.

    A kernel that spends long on each block (the export writes a work unit of hundreds
    of chunks) calls this between its steps, and :func:`stream_blocks` is told how many
    steps each block has (its ``steps`` argument). On local threads every call then
    advances the progress by one step and raises
    :class:`~napari_bigvol.errors.Cancelled` once the run is being stopped, so a cancel
    waits for one step instead of whole blocks. Elsewhere (on a cluster's workers, or
    when the kernel is called directly) it does nothing, and progress moves by whole
    blocks.

    A task of the streamed array's own graph that makes block ``index`` (a work unit
    read plane by plane) passes ``index``: its steps then count towards that block's.

    Raises
    ------
    Cancelled
        If the run this kernel belongs to is being stopped.

    Examples
    --------
    >>> import dask.array as da
    >>> def plane_sums(block, index):
    ...     sums = []
    ...     for plane in block:
    ...         sums.append(int(plane.sum()))
    ...         block_checkpoint()
    ...     return sums
    >>> reports = []
    >>> blocks = stream_blocks(da.ones((4, 3), chunks=(2, 3)), plane_sums,
    ...                        steps=lambda index: 2, progress=lambda d, t: reports.append(d))
    >>> sorted(sums for _, sums in blocks)
    [[3, 3], [3, 3]]

    Progress counted 2 steps in each of the 2 blocks, and the 4 tasks of the graph (2
    blocks of ones, 2 kernels):

    >>> reports
    [1, 2, 3, 4, 5, 6, 7, 8]
    """
    step = getattr(_running_kernel, "step", None)
    run = getattr(_running_kernel, "run", None)
    if step is None and index is not None and run is not None:
        step = partial(run.passed_step, tuple(index), wake=False)
    if step is not None:
        step()


def _join_run(run: _ThreadedRun) -> None:
    # Pool-thread initializer: block_checkpoint(index) in a source task finds its run.
    _running_kernel.run = run


class _StepCount:
    """Progress of a run in steps: ``steps(index)`` per block (1 without ``steps``).

    Kernels on local threads pass the steps of a block one at a time (block_checkpoint),
    from their threads; a block that finishes counts in full, whatever it passed. With
    ``steps``, a local run also counts every task of its graph (the source's reads) as
    a step, from the threaded scheduler's task progress, so the count moves before the
    first kernel starts.
    """

    def __init__(self, indices: list[BlockIndex], steps: StepCount | None) -> None:
        self.of_block = {index: steps(index) if steps else 1 for index in indices}
        self.counts_tasks = steps is not None
        self._finished = 0
        self._passed: dict[BlockIndex, int] = {}  # in blocks still running
        self._tasks = (0, 0)  # (done, total) tasks of a local graph
        self._lock = threading.Lock()

    def passed(self, index: BlockIndex) -> None:
        with self._lock:
            self._passed[index] = min(self._passed.get(index, 0) + 1, self.of_block[index])

    def finished(self, index: BlockIndex) -> None:
        with self._lock:
            self._passed.pop(index, None)
            self._finished += self.of_block[index]

    def tasks_done(self, done: int, total: int) -> None:
        with self._lock:
            self._tasks = (done, total)

    def progress(self) -> tuple[int, int]:
        """Return ``(done, total)`` steps."""
        with self._lock:
            tasks_done, tasks_total = self._tasks
            done = tasks_done + self._finished + sum(self._passed.values())
            return done, tasks_total + sum(self.of_block.values())


class _TaskWatch(Callback):
    """Threaded-scheduler callback: counts finished tasks, stops the run once asked to."""

    def __init__(self, stop: threading.Event, on_task: ProgressCallback | None) -> None:
        super().__init__()
        self.stop = stop
        self.on_task = on_task
        self.total = 0
        self.done = 0

    def _start_state(self, dsk: Any, state: dict) -> None:
        self.total = sum(len(state[key]) for key in ("ready", "waiting", "running"))

    def _posttask(self, key: Any, result: Any, dsk: Any, state: dict, worker_id: Any) -> None:
        self.done += 1
        if self.on_task is not None:
            self.on_task(self.done, self.total)
        if self.stop.is_set():
            raise Cancelled("cancelled by the user")


class _Finished:
    """Last item of a threaded run's queue: the scheduler returned, or raised ``error``."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class _ThreadedRun:
    """One computation of a whole graph on dask's threaded scheduler, in its own thread.

    Kernel results travel through a bounded queue to the consumer as they finish, so
    they are reduced on arrival and never pile up; when the consumer falls behind,
    workers wait, which bounds memory.
    """

    def __init__(
        self,
        workers: int,
        backlog: int,
        on_task: ProgressCallback | None = None,
        steps: _StepCount | None = None,
    ) -> None:
        self.workers = workers
        self.on_task = on_task
        self.steps = steps
        self.results: queue.Queue = queue.Queue(maxsize=backlog)
        self.stop = threading.Event()
        self._kernels = 0  # kernels running now
        self._kernels_changed = threading.Condition()

    @contextmanager
    def kernel_running(self, index: BlockIndex) -> Iterator[None]:
        """Run a kernel on block ``index`` in this thread: never once the run is stopping."""
        with self._kernels_changed:
            if self.stop.is_set():
                raise Cancelled("cancelled by the user")
            self._kernels += 1
        _running_kernel.step = partial(self.passed_step, index)
        try:
            yield
        finally:
            _running_kernel.step = None
            with self._kernels_changed:
                self._kernels -= 1
                self._kernels_changed.notify_all()

    def passed_step(self, index: BlockIndex, wake: bool = True) -> None:
        """Count a :func:`block_checkpoint`, or stop there if the run is stopping.

        A kernel's step wakes the consumer to report it. A source task's (a plane read,
        thousands a second) does not: waking the consumer that often competed with the
        GUI thread for the GIL (event-loop stalls of 114-148 ms during a 4 GB build,
        against 72 ms without). The consumer reports it at its next poll.
        """
        if self.stop.is_set():
            raise Cancelled("cancelled by the user")
        if self.steps is not None:
            self.steps.passed(index)
            if wake:
                with suppress(queue.Full):  # a full queue wakes the consumer anyway
                    self.results.put_nowait(None)  # wakes it to report the step

    def deliver(self, item: Any) -> None:
        # A full queue means the consumer is busy; give up only once it stopped for good.
        while not self.stop.is_set():
            try:
                self.results.put(item, timeout=_POLL_SECONDS)
                return
            except queue.Full:
                continue

    def start(self, graph: dict, keys: list) -> None:
        def schedule() -> None:
            error = None
            pool = ThreadPoolExecutor(
                self.workers,
                thread_name_prefix="bigvol-task",
                initializer=_join_run,
                initargs=(self,),
            )
            with pool:
                try:
                    dask.threaded.get(
                        graph,
                        keys,
                        pool=pool,
                        callbacks=[_TaskWatch(self.stop, self.on_task)._callback],
                    )
                except BaseException as exc:  # handed to the consumer, which raises it
                    error = exc
                self.deliver(_Finished(error))

        threading.Thread(target=schedule, name="bigvol-scheduler", daemon=True).start()

    def finished(self) -> Iterator[Any]:
        """Yield delivered items until the run ends; None when none arrived, or a step passed."""
        while True:
            try:
                item = self.results.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                yield None
                continue
            if isinstance(item, _Finished):
                if item.error is not None:
                    raise item.error
                return
            yield item

    def close(self) -> None:
        """Stop the run; return once no kernel runs, and none will start.

        Kernels are what act on the outside world (the export writes its store in them),
        so those are waited for; they stop at their next :func:`block_checkpoint`. A
        task of the source's graph that is still running (a chunk read, the copy that
        assembles a block) is not: it would keep a cancel waiting for seconds. It stops
        at its own next checkpoint if it passes any (a unit read plane by plane), or
        finishes on its own, and the scheduler thread ends after it.
        """
        with self._kernels_changed:
            self.stop.set()
            self._kernels_changed.wait_for(lambda: self._kernels == 0)


def stream_blocks(
    array: da.Array,
    kernel: BlockKernel[T],
    *,
    progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
    max_in_flight: int | None = None,
    local: bool = False,
    steps: StepCount | None = None,
) -> Iterator[tuple[BlockIndex, T]]:
    """Apply ``kernel`` to every block of ``array`` and yield results as they finish.

    The whole graph of ``array`` runs as one dask computation, with one kernel task per
    block added on top, so every task of the graph runs exactly once however the blocks
    share work (after a rechunk, an overlap or a concatenation). Locally it runs on
    dask's threaded scheduler, which orders tasks with ``dask.order`` to keep memory
    low; on a cluster (see :func:`get_client`) ``Client.get`` submits the same graph and
    ``distributed.as_completed`` collects the results.

    Parameters
    ----------
    array : dask.array.Array
        The input; it is never materialised as a whole.
    kernel : callable
        ``kernel(block, index)`` receives one block as a numpy array and its block index,
        and returns a (small) result. It must pickle when it runs on a cluster.
    progress : callable, optional
        Called as ``progress(done, total)`` in the calling thread, with every ``done``
        from 1 to ``total`` in order. It counts blocks, or with ``steps`` the steps of
        the blocks, which move as kernels pass :func:`block_checkpoint`.
    should_stop : callable, optional
        Polled between blocks and while waiting for one; when it returns True, pending
        work is abandoned and :class:`~napari_bigvol.errors.Cancelled` is raised.
        Kernels on local threads stop at their next :func:`block_checkpoint`.
    max_in_flight : int, optional
        Local worker threads (the tasks run at the same time); defaults to the number
        of cores. Results not yet consumed are bounded by twice that.
    local : bool, optional
        Run on local threads even when a cluster is configured; for arrays whose data
        already sit in this process's memory, which a cluster would have to copy.
    steps : callable, optional
        ``steps(index)`` is how many times the kernel calls :func:`block_checkpoint` on
        that block. Progress then counts steps instead of blocks and, on local threads,
        every task of the graph (such as a plane read) as a step too, so it moves from
        the first read on; ``total`` is known once the run has started.

    Yields
    ------
    tuple
        ``(block_index, kernel_result)`` in completion order.

    Raises
    ------
    Cancelled
        If ``should_stop`` returned True.

    Examples
    --------
    >>> import dask.array as da
    >>> x = da.arange(10, chunks=4)
    >>> sorted(r for _, r in stream_blocks(x, lambda b, i: int(b.sum())))
    [6, 17, 22]
    """
    return _stream(array, kernel, progress, None, should_stop, max_in_flight, local, steps)


def _stream(
    array: da.Array,
    kernel: BlockKernel[T],
    block_progress: ProgressCallback | None,
    task_progress: ProgressCallback | None,
    should_stop: StopCheck | None,
    max_in_flight: int | None,
    local: bool,
    steps: StepCount | None = None,
) -> Iterator[tuple[BlockIndex, T]]:
    indices = _block_indices(array)
    count = _StepCount(indices, steps)
    if count.counts_tasks:  # never with task_progress (compute_array counts only tasks)
        task_progress = count.tasks_done
    finished = _start_kernels(array, indices, kernel, task_progress, max_in_flight, local, count)
    reported = 0
    try:
        for item in finished:
            if item is not None:
                count.finished(item[0])
            reported = _report_steps(block_progress, count, reported)
            if item is not None:  # None: a poll interval or a kernel's step passed
                yield item
            # Checked after every block and poll, so a stop is honoured within one block.
            if should_stop is not None and should_stop():
                raise Cancelled("cancelled by the user")
        _report_steps(block_progress, count, reported)  # the last tasks, to the total
    finally:
        finished.close()


def _report_steps(progress: ProgressCallback | None, count: _StepCount, reported: int) -> int:
    # Every value once and in order, however many steps passed since the last report.
    done, total = count.progress()
    if progress is not None:
        for value in range(reported + 1, done + 1):
            progress(value, total)
    return done


def _start_kernels(
    array: da.Array,
    indices: list[BlockIndex],
    kernel: BlockKernel[T],
    task_progress: ProgressCallback | None,
    max_in_flight: int | None,
    local: bool,
    steps: _StepCount | None = None,
) -> Generator[Any, None, None]:
    """Add a ``kernel`` task on each block to ``array``'s graph and run it where configured.

    Returns the generator of finished ``(block_index, result)`` pairs (None when none
    finished within the poll interval); closing it stops the run.
    """
    (optimized,) = dask.optimize(array)
    graph = dict(optimized.__dask_graph__())
    client = None if local else get_client()
    run_name = f"bigvol-kernel-{uuid.uuid4().hex}"
    keys = [(run_name, *index) for index in indices]
    if client is None:
        workers = max_in_flight or os.cpu_count() or 1
        run = _ThreadedRun(workers, 2 * workers, task_progress, steps)
        for key, index in zip(keys, indices, strict=True):
            body = _KernelDelivery(kernel, index, run)
            graph[key] = Task(key, body, TaskRef((optimized.name, *index)))
        return _on_threads(run, graph, keys)
    for key, index in zip(keys, indices, strict=True):
        body = _KernelCall(kernel, index)
        graph[key] = Task(key, body, TaskRef((optimized.name, *index)))
    return _on_cluster(client, graph, keys)


def compute_array(
    array: da.Array,
    *,
    progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
    local: bool = False,
) -> np.ndarray:
    """Compute a small dask array, such as a reduction's result, on the same engine.

    It runs where :func:`stream_blocks` would (see :func:`get_client`), with the same
    cancellation; progress counts the tasks of the graph, so a long computation with a
    single output block still moves the bar (on local threads; a cluster reports at the
    end).

    Parameters
    ----------
    array : dask.array.Array
        The array to compute; its result must fit in memory.
    progress, should_stop : callable, optional
        As for :func:`stream_blocks`, but ``progress(done, total)`` counts tasks.
    local : bool, optional
        Run on local threads whatever is configured, as for :func:`stream_blocks`.

    Returns
    -------
    numpy.ndarray
        The computed values.

    Raises
    ------
    Cancelled
        As for :func:`stream_blocks`.

    Examples
    --------
    >>> import dask.array as da
    >>> int(compute_array(da.arange(10, chunks=3).sum()))
    45
    """
    out = np.empty(array.shape, array.dtype)
    regions = dict(zip(_block_indices(array), slices_from_chunks(array.chunks), strict=True))
    blocks = _stream(array, _as_is, None, progress, should_stop, None, local)
    for index, values in blocks:
        out[regions[index]] = values
    if progress is not None and not local and get_client() is not None:
        progress(1, 1)
    return out


def _as_is(block: np.ndarray, index: BlockIndex) -> np.ndarray:
    return block


def _on_threads(run: _ThreadedRun, graph: dict, keys: list) -> Generator[Any, None, None]:
    run.start(graph, keys)
    try:
        yield from run.finished()
    finally:
        run.close()


def _on_cluster(client: Any, graph: dict, keys: list) -> Generator[Any, None, None]:
    from distributed import as_completed

    futures = client.get(graph, keys, sync=False)
    index_of = {future.key: key[1:] for future, key in zip(futures, keys, strict=True)}
    completed = as_completed(futures, loop=client.loop, with_results=True)
    del futures  # as_completed holds each future until its result is consumed
    try:
        while not completed.is_empty():
            if not completed.has_ready():
                with completed.thread_condition:
                    completed.thread_condition.wait(_POLL_SECONDS)
                if not completed.has_ready():
                    yield None
                continue
            future, result = next(completed)  # raises a task's error here
            yield index_of[future.key], result
    finally:
        client.cancel(list(completed.futures))


def reduce_blocks(
    array: da.Array,
    kernel: BlockKernel[T],
    combine: Callable[[T, T], T],
    *,
    ordered: bool = False,
    **stream_options: Any,
) -> T:
    """Stream ``kernel`` over the blocks of ``array`` and fold the results with ``combine``.

    Parameters
    ----------
    array : dask.array.Array
        The input.
    kernel : callable
        ``kernel(block, index)`` returns a partial result for one block.
    combine : callable
        ``combine(a, b)`` merges two partial results; it must be associative and
        commutative because blocks finish in any order.
    ordered : bool, optional
        Fold in block order rather than completion order, so that floating-point results
        are the same on every run and scheduler. Keeps every partial result until the
        end: use it for small results only.
    **stream_options
        ``progress``, ``should_stop``, ``max_in_flight`` and ``local``, as for
        :func:`stream_blocks`.

    Returns
    -------
    object
        The combined result.

    Examples
    --------
    >>> import dask.array as da
    >>> import operator
    >>> reduce_blocks(da.ones(10, chunks=3), lambda b, i: int(b.sum()), operator.add)
    10
    """
    blocks = stream_blocks(array, kernel, **stream_options)
    if ordered:
        return reduce(
            combine, (result for _, result in sorted(blocks, key=operator.itemgetter(0)))
        )
    return reduce(combine, (result for _, result in blocks))


def as_dask_array(data: Any) -> tuple[da.Array, bool]:
    """Return ``data`` as a dask array, and whether its values are already in memory.

    Parameters
    ----------
    data : array-like
        A dask array (returned as it is) or anything numpy can view, such as a numpy
        array, which is wrapped without copying in chunks of dask's default size.

    Returns
    -------
    tuple
        ``(array, in_memory)``; pass ``local=in_memory`` to :func:`stream_blocks` so that
        in-memory data are never shipped to a cluster.

    Examples
    --------
    >>> import numpy as np
    >>> array, in_memory = as_dask_array(np.zeros((4, 5)))
    >>> array.shape, in_memory
    ((4, 5), True)
    """
    if isinstance(data, da.Array):
        return data, False
    values = np.asarray(data)
    # Not da.from_array: it copies numpy input whole and hashes every byte for a name.
    # Views of the caller's array cost no memory and no time. Slabs along the first axis
    # stay contiguous, and many equal ones keep every core busy to the end.
    chunks = normalize_chunks(
        ("auto", *(-1,) * (values.ndim - 1)) if values.ndim else (),
        values.shape,
        limit=IN_MEMORY_BLOCK_BYTES,
        dtype=values.dtype,
    )
    name = f"in-memory-{uuid.uuid4().hex}"
    graph = {
        (name, *index): values[region]
        for index, region in zip(
            product(*(range(len(c)) for c in chunks)), slices_from_chunks(chunks), strict=True
        )
    }
    return da.Array(graph, name, chunks, dtype=values.dtype), True


def require_numeric(dtype: Any, what: str = "the data") -> np.dtype:
    """Check that ``dtype`` holds real numbers (bool, integer or float) and return it.

    Parameters
    ----------
    dtype : numpy dtype, array or array-like
        The dtype to check, or an array (or list) whose dtype is checked.
    what : str, optional
        How to name the data in the error message, for example ``"layer 'brain'"``.

    Returns
    -------
    numpy.dtype
        The checked dtype.

    Raises
    ------
    OperationError
        For strings, objects, complex numbers, dates and other non-numeric dtypes.

    Examples
    --------
    >>> require_numeric(np.dtype("uint16"))
    dtype('uint16')
    """
    if hasattr(dtype, "dtype"):  # an array: its dtype, without touching its values
        dtype = dtype.dtype
    elif not isinstance(dtype, np.dtype | type | str):  # a list or scalar
        dtype = np.asarray(dtype).dtype
    dtype = np.dtype(dtype)
    if dtype.kind not in "biuf":
        raise OperationError(
            f"{what} has dtype {dtype}, which is not numeric: thresholds, masks and "
            "histograms need boolean, integer or floating-point values"
        )
    return dtype
