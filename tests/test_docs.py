"""The documentation builds with warnings as errors, and its troubleshooting page keeps up."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SOURCE = ROOT / "src" / "napari_bigvol"


@pytest.mark.slow
def test_sphinx_builds_with_warnings_as_errors(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            str(DOCS),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    html = tmp_path / "html"
    for page in ("index", "installation", "troubleshooting", "api", "performance"):
        assert (html / f"{page}.html").is_file()
    # Every screenshot a page shows was copied into the site.
    for image in re.findall(r"\]\(((?:\.\./)?images/[^)]+\.png)\)", _all_pages()):
        assert (html / "_images" / Path(image).name).is_file(), image


def _all_pages() -> str:
    return "\n".join(p.read_text() for p in DOCS.rglob("*.md") if "_build" not in p.parts)


def _error_messages() -> list[tuple[str, str]]:
    """Literal text of every ReadError/OperationError the package raises, with its file."""
    found = []
    for path in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in {"ReadError", "OperationError"}
            ):
                continue
            message = node.args[-1] if node.args else None
            text = _leading_literal(message)
            if text:
                found.append((f"{path.relative_to(ROOT)}:{node.lineno}", text))
    return found


def _leading_literal(node: ast.expr | None) -> str:
    """The constant words a message starts with, up to its first interpolated value."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        words = []
        for part in node.values:
            if not (isinstance(part, ast.Constant) and isinstance(part.value, str)):
                break
            words.append(part.value)
        return "".join(words)
    if isinstance(node, ast.BinOp):
        return _leading_literal(node.left)
    return ""


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("`", "")).strip().lower()


def test_troubleshooting_lists_every_error_message_the_code_raises():
    page = _normalise((DOCS / "troubleshooting.md").read_text())
    messages = _error_messages()
    assert messages, "no ReadError/OperationError found: has the package moved?"
    missing = [
        f"{where}: {text!r}"
        for where, text in messages
        # The first words of a message are what a user searches the page for.
        if len(_normalise(text)) >= 12 and _normalise(text)[:40] not in page
    ]
    assert not missing, "add these messages to docs/troubleshooting.md:\n" + "\n".join(missing)


def _python_blocks() -> list[tuple[str, str]]:
    """Every fenced ``python`` block of the pages, with the page it is on."""
    blocks = []
    for page in sorted(DOCS.rglob("*.md")):
        if "_build" in page.parts:
            continue
        for code in re.findall(r"^```python\n(.*?)^```", page.read_text(), re.S | re.M):
            blocks.append((str(page.relative_to(DOCS)), code))
    return blocks


def test_every_python_example_in_the_docs_is_valid_python():
    blocks = _python_blocks()
    assert len(blocks) >= 20
    for page, code in blocks:
        try:
            ast.parse(code)
        except SyntaxError as error:
            pytest.fail(f"{page}: {error}\n{code}")


def test_python_examples_import_only_what_napari_bigvol_has():
    """``from napari_bigvol... import name`` and ``bv.name`` in the docs must exist."""
    import importlib
    import importlib.util

    import napari_bigvol

    for page, code in _python_blocks():
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "napari_bigvol"
            ):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    name = f"{node.module}.{alias.name}"
                    # An attribute, or a submodule that ``from ... import`` loads.
                    assert hasattr(module, alias.name) or importlib.util.find_spec(name), (
                        f"{page}: {name}"
                    )
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "bv"
            ):
                assert hasattr(napari_bigvol, node.attr), f"{page}: bv.{node.attr}"
