"""Sphinx configuration for the statsmodels_lmm_ext documentation.

Build with::

    python -m sphinx -b html docs docs/_build
"""

from __future__ import annotations

import os
import sys

# Make the package importable from the checkout, so that autodoc works without installing it.
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import statsmodels_lmm_ext  # noqa: E402

# -- Project information ------------------------------------------------------------------------
project = "statsmodels_lmm_ext"
author = "statsmodels_lmm_ext developers"
copyright = "statsmodels_lmm_ext developers"
release = statsmodels_lmm_ext.__version__
version = ".".join(release.split(".")[:2])

# -- General configuration ----------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
]

templates_path: list[str] = []
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
root_doc = "index"
language = "en"

# -- autodoc / napoleon (numpydoc-style docstrings) ----------------------------------------------
# Members are listed explicitly in api.rst: several statsmodels methods are overridden only to
# raise NotImplementedError and would otherwise inherit statsmodels' docstrings.
autodoc_default_options = {
    "member-order": "bysource",
    "show-inheritance": True,
}
autodoc_typehints = "description"
autoclass_content = "class"
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False
napoleon_use_param = True
napoleon_use_ivar = True

# -- HTML output --------------------------------------------------------------------------------
html_theme = "alabaster"
html_theme_options = {
    "description": "Residual covariance structures for statsmodels MixedLM",
    "fixed_sidebar": True,
}
html_static_path = ["_static"]
