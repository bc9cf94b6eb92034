"""Sphinx configuration of the napari-bigvol documentation (MyST Markdown + numpydoc).

Build with warnings as errors, as the test suite does::

    sphinx-build -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

from pathlib import Path

import napari_bigvol

DOCS = Path(__file__).parent

project = "napari-bigvol"
author = "napari-bigvol developers"
copyright = "napari-bigvol developers"
version = release = napari_bigvol.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
# performance/*.md are sections written beside the benchmarks; performance.md includes
# them, so they are not pages of their own.
exclude_patterns = ["_build", "performance/*.md", "Thumbs.db", ".DS_Store"]

# Every cross-reference in these pages must resolve (a renamed function breaks the build),
# except references in docstrings to internal modules and to nibabel, which are not
# documented here.
nitpicky = True
nitpick_ignore_regex = [
    ("py:(func|mod|class)", r"napari_bigvol\.(ops|io)\..*"),
    ("py:(func|mod|class)", r"nibabel\..*"),
]

myst_enable_extensions = ["colon_fence", "deflist", "attrs_inline"]
myst_heading_anchors = 3

autosummary_generate = False  # summary tables only; entries live on api.md
autodoc_typehints = "none"  # numpydoc's Parameters sections already give the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

html_theme = "pydata_sphinx_theme"
html_title = "napari-bigvol"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_show_sourcelink = False


def _performance_sections() -> str:
    """MyST include directives for every section file in docs/performance/."""
    sections = sorted((DOCS / "performance").glob("*.md"))
    if not sections:
        return "\nNo benchmark section has been written yet.\n"
    return "".join(
        f"\n```{{include}} performance/{section.name}\n:heading-offset: 1\n```\n"
        for section in sections
    )


def _nifti_orientation() -> str:
    """Return the "Orientation convention" section of the NIfTI reader's docstring (rST).

    The reader's docstring is the one statement of the convention; the NIfTI page shows
    it verbatim, so the two cannot drift apart.
    """
    from napari_bigvol.io import nifti

    text = nifti.__doc__.split("Orientation convention\n----------------------\n", 1)[1]
    section = text.split("\n\n``metadata", 1)[0].strip()
    return f"\n```{{eval-rst}}\n{section}\n```\n"


_INSERTIONS = {
    "performance": ("<!-- performance-sections -->", _performance_sections),
    "readers/nifti": ("<!-- nifti-orientation -->", _nifti_orientation),
}


def _insert_generated(app, docname: str, source: list[str]) -> None:
    if docname in _INSERTIONS:
        marker, make = _INSERTIONS[docname]
        source[0] = source[0].replace(marker, make())


def setup(app):  # noqa: D103 (Sphinx hook)
    app.connect("source-read", _insert_generated)
