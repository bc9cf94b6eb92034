"""Replace a store folder safely, and finish a replacement a crash interrupted.

An export builds its store in a hidden sibling, ``.NAME.partial-HOST-PID-TOKEN``, and
renames it into place at the end. Replacing an existing store takes two renames: the old
store goes aside to ``.NAME.old-HOST-PID-TOKEN`` (same host, pid and token), then the new
one comes in. A crash between them leaves no store at ``NAME``.
:func:`recover_interrupted_swap` repairs that: when the finished new store is still there
it completes the swap, otherwise it puts the old store back. The export runs it before
writing, and the zarr reader runs it when asked to open a store that is missing.

This lives in ``io`` (not ``ops``) because the reader needs it and ``io`` never imports
``ops``.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid

import psutil

PARTIAL = ".partial-"
OLD = ".old-"

__all__ = [
    "OLD",
    "PARTIAL",
    "owned_by_dead_process",
    "recover_interrupted_swap",
    "remove",
    "sibling",
]


def sibling(target: str, kind: str, token: str | None = None) -> str:
    """Return the hidden sibling of ``target`` for this process: a partial or an old store.

    Parameters
    ----------
    target : str
        The store path.
    kind : str
        :data:`PARTIAL` or :data:`OLD`.
    token : str, optional
        Shared by the partial and the old store of one export; a new one if None.

    Returns
    -------
    str
        ``<folder>/.<name><kind><host>-<pid>-<token>``.

    Examples
    --------
    >>> path = sibling("/data/a.zarr", PARTIAL, "cafe1234")
    >>> path.startswith("/data/.a.zarr.partial-"), path.endswith("-cafe1234")
    (True, True)
    """
    token = token or uuid.uuid4().hex[:8]
    folder, name = os.path.split(target)
    return os.path.join(folder, f".{name}{kind}{socket.gethostname()}-{os.getpid()}-{token}")


def owned_by_dead_process(entry: str, prefix: str) -> str | None:
    """Return the ``PID-TOKEN`` tail of a leftover of a dead process on this host.

    None if ``entry`` does not start with ``prefix``, was made on another host, or its
    process still runs.

    Examples
    --------
    >>> owned_by_dead_process(".a.zarr.old-otherhost-1-cafe", ".a.zarr.old-") is None
    True
    """
    if not entry.startswith(prefix):
        return None
    parts = entry[len(prefix) :].rsplit("-", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return None
    return None if psutil.pid_exists(int(parts[1])) else f"{parts[1]}-{parts[2]}"


def recover_interrupted_swap(target: str) -> str | None:
    """Finish or undo an overwrite of ``target`` that a crash cut between its two renames.

    Only leftovers of processes on this host that are gone are touched.

    * ``target`` missing, old store and finished new store present: the new one is renamed
      into place (the swap completes) and the old one deleted, as the overwrite intended.
    * ``target`` missing, only the old store present: it is renamed back.
    * ``target`` present, an old store without its new one: the swap completed but the
      old store was not yet deleted; it is deleted now.

    Parameters
    ----------
    target : str
        The store path.

    Returns
    -------
    str or None
        ``"finished"``, ``"restored"`` or ``"cleaned"`` for what was done, None if there
        was nothing to recover.

    Examples
    --------
    >>> recover_interrupted_swap("/no/such/folder/a.zarr") is None
    True
    """
    folder, name = os.path.split(os.path.abspath(target))
    try:
        entries = os.listdir(folder)
    except OSError:
        return None
    olds = {}
    for entry in entries:
        tail = owned_by_dead_process(entry, f".{name}{OLD}")
        if tail is not None:
            olds[tail] = os.path.join(folder, entry)
    done = None
    host = socket.gethostname()
    # Newest first: if several swaps were cut (unlikely), the latest one wins.
    for tail, old in sorted(olds.items(), key=lambda item: -os.lstat(item[1]).st_mtime):
        new = os.path.join(folder, f".{name}{PARTIAL}{host}-{tail}")
        target_path = os.path.join(folder, name)
        if not os.path.lexists(target_path):
            if os.path.isdir(new):
                os.rename(new, target_path)
                done = "finished"
            else:
                os.rename(old, target_path)
                done = "restored"
                continue
        elif os.path.lexists(new):
            continue  # both halves left and a new target: not ours to decide
        else:
            done = done or "cleaned"
        remove(old)
    return done


def remove(path: str) -> None:
    """Delete a store folder, or a file or symbolic link in its place."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.remove(path)
