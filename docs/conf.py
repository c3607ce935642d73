"""Sphinx configuration of the dlref documentation site (`make docs`).

The site is built offline and viewed offline: MathJax comes from the sphinx-mathjax-offline
wheel (one self-contained file, SVG output, no web fonts), the theme (furo) ships its assets,
and the notebooks are rendered from their committed outputs, never executed. Pages that depend
on the code (API, test sources, the study guide's questions, benchmark tables, `dlref verify`
coverage) are generated at build time by ``_ext/dlref_docs.py``, so a new function, test,
notebook or benchmark row appears without editing the docs.
"""

from __future__ import annotations

import pathlib
import sys

DOCS = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

import dlref  # noqa: E402  (installed: `make docs` installs the `docs` extra into .venv)

project = "dlref"
author = "the dlref authors"
copyright = "the dlref authors, Apache-2.0"
release = version = dlref.__version__

extensions = [
    "myst_nb",  # Markdown pages and the notebooks (includes myst_parser)
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.autosectionlabel",
    "dlref_docs",
]

root_doc = "index"
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "**/.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
language = "en"

# -- MyST and the notebooks ---------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
nb_execution_mode = "off"  # rendered from the outputs saved in notebooks/*.ipynb
nb_ipywidgets_js = {}  # no widget manager from a CDN (no notebook uses widgets)
nb_merge_streams = True

# -- API reference ------------------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
# Functions are not entries of the page tables of contents: each module page opens with a
# summary table linking to them, and 400 more entries made every page's navigation slower.
toc_object_entries = False
autosummary_generate = False  # the pages are written by dlref_docs from each module's __all__
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True  # "Attributes:" as fields: NamedTuple fields are documented once
napoleon_attr_annotations = True

# Sections are labelled "<docname>:<title>", so the questions can link to a notebook's section
# (notebooks/03_convolution:5. Where the pooling gradients go) or to a test's section.
autosectionlabel_prefix_document = True
suppress_warnings = [
    "autosectionlabel.*",  # two sections with one title in a page: only that label is ambiguous
    "myst.header",  # a notebook skipping a heading level is a style matter, not a broken page
]

# -- Math: MathJax 3 bundled, SVG output (no font files to load) -------------------------------
mathjax_path = "mathjax/tex-svg-full.js"

# -- HTML ---------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"dlref {release}"
html_static_path = ["_static"]
html_css_files = ["dlref.css"]
html_show_sourcelink = False
html_last_updated_fmt = None
html_theme_options = {
    "navigation_with_keys": True,
}
pygments_style = "friendly"
pygments_dark_style = "monokai"
