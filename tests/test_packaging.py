"""The plugin installs and registers with napari: editable, and from a wheel in a fresh venv."""

from __future__ import annotations

import importlib
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def _manifest_commands() -> list[dict]:
    return yaml.safe_load((REPO / "napari.yaml").read_text())["contributions"]["commands"]


def test_packaged_manifest_is_the_root_manifest():
    packaged = importlib.resources.files("napari_bigvol") / "napari.yaml"
    assert packaged.read_text() == (REPO / "napari.yaml").read_text()


def test_npe2_discovers_and_validates_the_manifest():
    from npe2 import PluginManager
    from npe2.manifest import PluginManifest

    manifest = PluginManifest.from_distribution("napari-bigvol")
    assert manifest.name == "napari-bigvol"
    pm = PluginManager()
    pm.discover(include_npe1=False)
    assert "napari-bigvol" in pm._manifests
    result = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", "napari-bigvol"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("command", _manifest_commands(), ids=lambda c: c["id"])
def test_every_manifest_command_resolves(command):
    module_name, attr = command["python_name"].split(":")
    target = getattr(importlib.import_module(module_name), attr)
    assert callable(target)
    assert command["id"].startswith("napari-bigvol.")


def test_widget_display_names_are_the_documented_ones():
    contributions = yaml.safe_load((REPO / "napari.yaml").read_text())["contributions"]
    names = {w["display_name"] for w in contributions["widgets"]}
    assert names == {
        "Threshold mask",
        "Split channels",
        "Histogram",
        "Export to zarr",
        "View cache",
        "Orthogonal views",
    }


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_venv_and_napari_finds_the_plugin(tmp_path):
    wheel_dir = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(wheel_dir), str(REPO)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheel_dir.glob("napari_bigvol-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read("napari_bigvol/napari.yaml") == (REPO / "napari.yaml").read_bytes()

    env_dir = tmp_path / "fresh"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
        check=True,
        capture_output=True,
    )
    probe = (
        "from npe2 import PluginManager\n"
        "pm = PluginManager(); pm.discover(include_npe1=False)\n"
        "m = pm.get_manifest('napari-bigvol')\n"
        "readers = [r.command for r in m.contributions.readers]\n"
        "print(m.name, readers)\n"
        "import napari_bigvol, napari_bigvol.io\n"
        "assert 'src' not in napari_bigvol.__file__, napari_bigvol.__file__\n"
    )
    result = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, check=False, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "napari-bigvol ['napari-bigvol.get_reader']" in result.stdout
