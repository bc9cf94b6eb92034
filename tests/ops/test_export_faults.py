"""Export faults: nothing is lost and nothing half-written is left at the target.

Covers an existing target (refused; replaced only with overwrite, after success), a
read-only folder, a source file vanishing mid-way, a file-size limit hit mid-write (the
same failure path as a full disk) and a kill -9 in the middle of an export.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

import napari_bigvol
from napari_bigvol.cli import main
from napari_bigvol.errors import OperationError
from napari_bigvol.io._planes import stack_planes
from napari_bigvol.ops.export import (
    LayerDescription,
    check_export_target,
    default_export_path,
    export_layers,
    export_zarr,
    recover_interrupted_swap,
)


def tree(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_existing_target_is_refused_and_left_intact(tmp_path):
    target = tmp_path / "precious.zarr"
    export_zarr(np.ones((4, 32, 32), np.uint8), target)
    before = tree(target)
    with pytest.raises(OperationError, match=r"precious\.zarr: already exists"):
        export_zarr(np.zeros((4, 32, 32), np.uint8), target)
    assert tree(target) == before
    plain_file = tmp_path / "notes.zarr"
    plain_file.write_text("not a store")
    with pytest.raises(OperationError, match="already exists"):
        export_zarr(np.zeros((4, 32, 32), np.uint8), plain_file)
    assert plain_file.read_text() == "not a store"


def test_overwrite_replaces_only_after_success(tmp_path):
    target = tmp_path / "data.zarr"
    export_zarr(np.ones((4, 32, 32), np.uint8), target)
    export_zarr(np.full((4, 32, 32), 9, np.uint8), target, overwrite=True)
    assert (zarr.open_array(target / "0", mode="r")[:] == 9).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.zarr"]  # no temp or old copy

    def fail_midway(index: int) -> np.ndarray:
        if index == 3:
            raise OSError("device not ready")
        return np.zeros((32, 32), np.uint8)

    before = tree(target)
    with pytest.raises(OperationError, match=r"data\.zarr: export failed"):
        export_zarr(stack_planes(fail_midway, 4, (32, 32), np.uint8), target, overwrite=True)
    assert tree(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.zarr"]


def test_refuses_to_write_over_its_source(tmp_path):
    target = tmp_path / "src.zarr"
    export_zarr(np.ones((4, 32, 32), np.uint8), target)

    # What a reader records for data opened from a file: the export refuses to overwrite it.
    description = LayerDescription(name="src", sources=(str(target),))
    source = zarr.open_array(target / "0", mode="r")
    with pytest.raises(OperationError, match="refusing to write over or inside the source"):
        export_zarr(source, target, description=description, overwrite=True)
    assert (zarr.open_array(target / "0", mode="r")[:] == 1).all()


def run_python(
    code: str, *, user: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        user=user,
        check=False,
    )


@contextmanager
def unprivileged() -> Iterator[None]:
    """Run as ``nobody`` inside the block when we are root, who ignores permission bits."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)


def test_read_only_folder_is_a_clear_error():
    export_zarr(np.zeros((2, 8, 8), np.uint8), tempfile.mkdtemp() + "/warm.zarr")  # imports
    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o555)
        target = os.path.join(folder, "out.zarr")
        with unprivileged(), pytest.raises(OperationError) as error:
            export_zarr(np.zeros((2, 8, 8), np.uint8), target)
        assert str(error.value).startswith(f"{target}: permission denied")
        assert os.listdir(folder) == []


def test_source_file_vanishing_midway_leaves_nothing(tmp_path):
    slices = tmp_path / "slices"
    slices.mkdir()
    files = []
    for i in range(12):
        files.append(slices / f"s{i:02d}.tif")
        tifffile.imwrite(files[-1], np.full((64, 64), i, np.uint16))

    started = threading.Event()

    def load(index: int) -> np.ndarray:
        # Another process deletes the last slice once the export has started reading.
        if index == 0:
            files[11].unlink()
            started.set()
        elif index == 11:
            started.wait(timeout=30)
        return tifffile.imread(files[index])

    source = stack_planes(load, 12, (64, 64), np.uint16)
    target = tmp_path / "out.zarr"
    with pytest.raises(OperationError, match=r"out.zarr: export failed: .*s11.tif"):
        export_zarr(source, target, chunks=(4, 64, 64))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slices"]
    assert len(list(slices.iterdir())) == 11  # the source was read, never written


@pytest.mark.slow
def test_write_failure_midway_is_reported_and_cleaned(tmp_path):
    # A file-size limit makes chunk writes fail like a full disk does (an OSError from
    # write), without filling the real disk.
    target = tmp_path / "big.zarr"
    result = run_python(
        f"""
        import resource, signal, sys, numpy as np
        from napari_bigvol.errors import OperationError
        from napari_bigvol.ops.export import export_zarr
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
        noise = np.random.default_rng(0).integers(0, 65535, (8, 256, 256), dtype=np.uint16)
        try:
            export_zarr(noise, {str(target)!r}, compressor=None, chunks=(8, 128, 128))
        except OperationError as error:
            print(error)
            sys.exit(3)
        """
    )
    assert result.returncode == 3, result.stderr
    assert "big.zarr: export failed: File too large" in result.stdout
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_kill_minus_nine_midway_leaves_no_store_and_rerun_succeeds(tmp_path):
    target = tmp_path / "killed.zarr"
    code = f"""
        import time, numpy as np
        from napari_bigvol.io._planes import stack_planes
        from napari_bigvol.ops.export import export_zarr

        def slow_plane(index):
            time.sleep(0.05)
            return np.full((128, 128), index, np.uint16)

        export_zarr(stack_planes(slow_plane, 400, (128, 128), np.uint16), {str(target)!r},
                    chunks=(8, 64, 64))
    """
    process = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)])
    try:
        deadline = time.monotonic() + 60
        partial = []
        while time.monotonic() < deadline:
            partial = [p for p in tmp_path.iterdir() if ".partial-" in p.name]
            if partial and any(
                p.is_file() and p.parent.name == "0" for p in partial[0].rglob("*")
            ):
                break  # chunks are being written
            time.sleep(0.05)
        assert partial, "the export never started writing"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert not target.exists()
    assert all(p.name.startswith(".killed.zarr.partial-") for p in tmp_path.iterdir())

    export_zarr(np.ones((4, 32, 32), np.uint8), target)
    assert (zarr.open_array(target / "0", mode="r")[:] == 1).all()
    # The dead export's leftovers (its process is gone) were removed by the rerun.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["killed.zarr"]


def test_target_created_by_someone_else_meanwhile_is_left_alone(tmp_path):
    target = tmp_path / "race.zarr"

    def someone_else_writes(done: int, total: int) -> None:
        if not target.exists():
            target.mkdir()
            (target / "theirs.txt").write_text("theirs")

    kept = tmp_path / "race-2.zarr"
    with pytest.raises(
        OperationError, match=f"appeared while exporting; the export is kept at {kept}"
    ):
        export_zarr(np.zeros((8, 32, 32), np.uint8), target, progress=someone_else_writes)
    assert tree(target) == {"theirs.txt": b"theirs"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["race-2.zarr", "race.zarr"]
    assert (zarr.open_array(kept / "0", mode="r")[:] == 0).all()


def test_two_exports_to_one_target_keep_both_stores(tmp_path):
    # The second export starts and finishes while the first runs: the first one loses the
    # race, and keeps its finished store beside the target, as the message promises.
    target = tmp_path / "same.ome.zarr"

    def second_export(done: int, total: int) -> None:
        if not target.exists():
            export_zarr(np.full((8, 32, 32), 2, np.uint8), target)

    with pytest.raises(OperationError, match="the export is kept at") as error:
        export_zarr(np.full((8, 32, 32), 1, np.uint8), target, progress=second_export)
    kept = tmp_path / "same-2.ome.zarr"
    assert str(error.value).endswith(str(kept))
    assert (zarr.open_array(target / "0", mode="r")[:] == 2).all()
    assert (zarr.open_array(kept / "0", mode="r")[:] == 1).all()
    assert len(napari_bigvol.read(kept)) == 1  # a complete, readable store


@pytest.fixture
def linked_source(tmp_path) -> Path:
    """``data/group.zarr``, with ``alias`` a symbolic link to ``data``."""
    (tmp_path / "data").mkdir()
    source = tmp_path / "data" / "group.zarr"
    export_zarr(np.full((4, 32, 32), 7, np.uint8), source)
    (tmp_path / "alias").symlink_to(tmp_path / "data")
    return source


def test_symlinked_parent_cannot_overwrite_the_source(tmp_path, linked_source):
    source = linked_source
    before = tree(source)
    alias = tmp_path / "alias" / "group.zarr"
    with pytest.raises(OperationError, match="refusing to write over or inside the source"):
        check_export_target(alias, [source], overwrite=True)
    with pytest.raises(OperationError, match="refusing to write over or inside the source"):
        export_layers(alias, napari_bigvol.read(source), overwrite=True)
    # Inside the source through the link, and the source inside the target, are refused too.
    with pytest.raises(OperationError, match="refusing"):
        check_export_target(alias / "inner.zarr", [source])
    with pytest.raises(OperationError, match="refusing"):
        check_export_target(tmp_path / "alias", [source / "0"], overwrite=True)
    assert tree(source) == before
    # A different store in the linked folder is fine.
    assert check_export_target(tmp_path / "alias" / "other.zarr", [source]) == str(
        tmp_path / "alias" / "other.zarr"
    )


def test_cli_convert_through_a_symlinked_parent_leaves_the_source(tmp_path, linked_source, capsys):
    source = linked_source
    before = tree(source)
    code = main(["convert", str(source), str(tmp_path / "alias/group.zarr"), "--overwrite"])
    assert code == 1
    assert "refusing to write over or inside the source" in capsys.readouterr().err
    assert tree(source) == before


CRASH_BETWEEN_RENAMES = """
    import os, sys, numpy as np
    from napari_bigvol.ops.export import export_zarr

    real_rename = os.rename

    def rename_then_die(source, destination):
        real_rename(source, destination)
        if ".old-" in os.path.basename(destination):
            os._exit(9)  # the power fails right after the old store went aside

    os.rename = rename_then_die
    export_zarr(np.full((4, 32, 32), 2, np.uint8), sys.argv[1], overwrite=True)
"""


def crash_between_renames(target: Path) -> None:
    export_zarr(np.full((4, 32, 32), 1, np.uint8), target)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CRASH_BETWEEN_RENAMES), str(target)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 9, result.stderr
    assert not target.exists()
    names = sorted(p.name.split("-")[0] for p in target.parent.iterdir())
    assert names == [f".{target.name}.old", f".{target.name}.partial"]


@pytest.mark.slow
def test_crash_between_renames_is_finished_by_opening_the_target(tmp_path):
    target = tmp_path / "swap.zarr"
    crash_between_renames(target)
    layers = napari_bigvol.read(target)
    assert (np.asarray(layers[0][0][0]) == 2).all()  # the new store, finished
    assert sorted(p.name for p in tmp_path.iterdir()) == ["swap.zarr"]


@pytest.mark.slow
def test_crash_between_renames_is_recovered_by_the_next_export(tmp_path):
    target = tmp_path / "swap.zarr"
    crash_between_renames(target)
    with pytest.raises(OperationError, match="already exists"):
        export_zarr(np.full((4, 32, 32), 3, np.uint8), target)
    assert (zarr.open_array(target / "0", mode="r")[:] == 2).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["swap.zarr"]


@pytest.mark.slow
def test_crash_between_renames_without_the_new_store_restores_the_old(tmp_path):
    target = tmp_path / "swap.zarr"
    crash_between_renames(target)
    for partial in tmp_path.glob(".swap.zarr.partial-*"):
        shutil.rmtree(partial)
    assert recover_interrupted_swap(str(target)) == "restored"
    assert (zarr.open_array(target / "0", mode="r")[:] == 1).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["swap.zarr"]


def test_default_export_path_goes_beside_the_source(tmp_path):
    scan = tmp_path / "scan.nii.gz"
    scan.write_bytes(b"")
    assert default_export_path("scan", [scan]) == str(tmp_path / "scan.ome.zarr")
    # A store never lands over or inside its source, nor over another store.
    source = tmp_path / "brain.ome.zarr"
    export_zarr(np.zeros((2, 8, 8), np.uint8), source)
    assert default_export_path("brain", [source]) == str(tmp_path / "brain-2.ome.zarr")
    (tmp_path / "brain-2.ome.zarr").mkdir()
    assert default_export_path("brain", [source]) == str(tmp_path / "brain-3.ome.zarr")
    # A folder of slices: beside the folder; a glob: named after the layer.
    assert default_export_path("x", [tmp_path / "slices/"]) == str(tmp_path / "slices.ome.zarr")
    pattern = str(tmp_path / "brain_*.tif")
    assert default_export_path("brain", [pattern]) == str(tmp_path / "brain-3.ome.zarr")


def test_default_export_path_without_a_writable_source_folder(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    expected = str(elsewhere / "cells__z_3.ome.zarr")
    assert default_export_path("cells [z=3]", [], fallback_folder=str(elsewhere)) == expected
    assert (
        default_export_path("cells [z=3]", ["https://host/a.zarr"], fallback_folder=str(elsewhere))
        == expected
    )
    with tempfile.TemporaryDirectory() as folder:  # reachable when we drop to nobody
        os.chmod(folder, 0o755)
        read_only = Path(folder) / "read_only"
        read_only.mkdir()
        (read_only / "scan.tif").write_bytes(b"")
        read_only.chmod(0o555)
        with unprivileged():
            path = default_export_path("scan", [read_only / "scan.tif"], fallback_folder=folder)
        assert path == os.path.join(folder, "scan.ome.zarr")
