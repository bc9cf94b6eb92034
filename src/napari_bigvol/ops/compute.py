"""Streaming whole-volume computation: block by block, with progress, cancel and a cluster.

Every whole-volume operation (histogram, masked-volume counts, export) runs through
:func:`stream_blocks`. It computes one dask block at a time per worker, hands each
result back as soon as it is ready and keeps only a bounded number of blocks in flight,
so memory stays at a few chunks per thread however large the volume is. Between blocks
it reports progress and checks for cancellation.

When a ``dask.distributed`` scheduler is configured (:func:`set_scheduler` or the
``NAPARI_BIGVOL_SCHEDULER`` environment variable), the same blocks run on the cluster
instead of local threads; nothing else changes for the caller. Each block is shipped as
the few tasks it depends on (the graph culled to that block), so submitting is cheap
whatever the size of the volume, and every task must pickle. Arrays that already sit in
this process's memory (:func:`as_dask_array` reports them) stay on local threads.

Kernels run in the block threads, so a kernel that releases the GIL (numpy's large
ufuncs, the numba kernels of :mod:`napari_bigvol.ops._kernels`) uses every core.
"""

from __future__ import annotations

import operator
import os
import queue
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import reduce
from itertools import product
from typing import Any, TypeVar

import dask
import dask.array as da
import numpy as np
from dask.array.core import normalize_chunks, slices_from_chunks
from dask.optimization import cull

from napari_bigvol.errors import Cancelled, OperationError

T = TypeVar("T")
BlockIndex = tuple[int, ...]
BlockKernel = Callable[[np.ndarray, BlockIndex], T]
ProgressCallback = Callable[[int, int], None]
StopCheck = Callable[[], bool]

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


def set_scheduler(address: str | None) -> None:
    """Run whole-volume work on the ``dask.distributed`` scheduler at ``address``.

    Parameters
    ----------
    address : str or None
        A scheduler address such as ``"tcp://10.0.0.5:8786"``; None returns to the
        ``NAPARI_BIGVOL_SCHEDULER`` environment variable, or to local threads when that is
        unset too.

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
    """Return a ``distributed.Client`` for the configured scheduler, or None to run locally.

    Clients are created once per address and reused.

    Raises
    ------
    OperationError
        When the scheduler does not answer within :data:`CONNECT_TIMEOUT`.
    """
    address = scheduler_address()
    if not address:
        return None
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


class _Opaque:
    """Wraps a task graph so ``distributed`` ships it as data.

    Passed bare, its task references would be read as dependencies on cluster keys that
    do not exist, and the block would fail with "lost dependencies".
    """

    def __init__(self, graph: dict) -> None:
        self.graph = graph


def _run_block(graph: dict | _Opaque, key: tuple, kernel: BlockKernel, index: BlockIndex) -> Any:
    if isinstance(graph, _Opaque):
        graph = graph.graph
    # cull from one key walks only that block's dependencies, not the whole graph.
    subgraph, _ = cull(graph, [key])
    block = dask.get(subgraph, key)
    return kernel(np.asarray(block), index)


def stream_blocks(
    array: da.Array,
    kernel: BlockKernel[T],
    *,
    progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
    max_in_flight: int | None = None,
    local: bool = False,
) -> Iterator[tuple[BlockIndex, T]]:
    """Apply ``kernel`` to every block of ``array`` and yield results as they finish.

    Parameters
    ----------
    array : dask.array.Array
        The input; it is never materialised as a whole.
    kernel : callable
        ``kernel(block, index)`` receives one block as a numpy array and its block index,
        and returns a (small) result. It must pickle when a cluster is configured.
    progress : callable, optional
        Called as ``progress(done, total)`` after each block.
    should_stop : callable, optional
        Polled between blocks; when it returns True, pending blocks are abandoned and
        :class:`~napari_bigvol.errors.Cancelled` is raised.
    max_in_flight : int, optional
        Blocks computed concurrently; defaults to twice the worker count. This bounds
        memory to about that many chunks.
    local : bool, optional
        Run on local threads even when a cluster is configured; for arrays whose data
        already sit in this process's memory, which a cluster would have to copy.

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
    indices = _block_indices(array)
    total = len(indices)
    (optimized,) = dask.optimize(array)
    graph = dict(optimized.__dask_graph__())
    name = optimized.name
    client = None if local else get_client()
    finished: queue.SimpleQueue = queue.SimpleQueue()
    if client is None:
        workers = os.cpu_count() or 1
        pool = ThreadPoolExecutor(workers, thread_name_prefix="bigvol-block")

        def submit(index: BlockIndex) -> Any:
            return pool.submit(_run_block, graph, (name, *index), kernel, index)

    else:
        workers = max(1, sum(client.nthreads().values()))
        run_id = uuid.uuid4().hex

        def submit(index: BlockIndex) -> Any:
            # Ship only the tasks this block needs; the worker runs them like a thread here.
            subgraph, _ = cull(graph, [(name, *index)])
            return client.submit(
                _run_block,
                _Opaque(subgraph),
                (name, *index),
                kernel,
                index,
                key=f"bigvol-block-{run_id}-{'-'.join(map(str, index))}",
                pure=False,
            )

    limit = max_in_flight or 2 * workers
    pending: dict[Any, BlockIndex] = {}
    remaining = iter(indices)
    done_count = 0
    try:
        while True:
            while len(pending) < limit:
                index = next(remaining, None)
                if index is None:
                    break
                future = submit(index)
                pending[future] = index
                future.add_done_callback(finished.put)
            if not pending:
                break
            ready = _next_finished(finished)
            if not ready and should_stop is not None and should_stop():
                raise Cancelled("cancelled by the user")
            for future in ready:
                index = pending.pop(future)
                result = future.result()
                done_count += 1
                if progress is not None:
                    progress(done_count, total)
                yield index, result
                # Checked after every block, so a stop is honoured within one block.
                if should_stop is not None and should_stop():
                    raise Cancelled("cancelled by the user")
    finally:
        for future in pending:
            future.cancel()
        if client is None:
            pool.shutdown(wait=True, cancel_futures=True)


def _next_finished(finished: queue.SimpleQueue) -> list[Any]:
    """Futures that finished: waits up to ``_POLL_SECONDS`` for the first, then drains."""
    try:
        ready = [finished.get(timeout=_POLL_SECONDS)]
    except queue.Empty:
        return []
    while True:
        try:
            ready.append(finished.get_nowait())
        except queue.Empty:
            return ready


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
