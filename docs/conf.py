"""Sphinx configuration of the commpress documentation (Sphinx + furo, MyST Markdown).

Build, strict (a warning, a broken reference or an undocumented public name fails)::

    sphinx-build -W --keep-going -n -b html docs docs/_build/html

``docs/api/`` is written at every build by ``docs/_ext/commpress_api.py`` from the package's
``__all__`` lists and registries.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))  # the package from this checkout, installed or not
os.environ.setdefault("MPLBACKEND", "Agg")

import commpress  # noqa: E402

project = "commpress"
author = "the commpress authors"
copyright = "the commpress authors"  # noqa: A001
release = commpress.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "myst_parser",
    "commpress_api",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "README.md"]
templates_path: list[str] = []

# -- autodoc / napoleon ------------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_inherit_docstrings = False  # an override without its own docstring is not listed again
autodoc_class_signature = "mixed"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True
python_use_unqualified_type_names = True

# -- strict mode: references outside the package -----------------------------------------------
# No intersphinx (the build machines reach no documentation server): references to torch, NumPy,
# SciPy, pydantic and the standard library are not checked; everything of commpress is.
nitpicky = True
nitpick_ignore_regex = [
    # Private names (a module or object whose name starts with "_") are not part of the API
    # reference (STYLE.md: helpers start with "_"); a docstring may still name them, as code.
    (r"py:.*", r"(.*\.)?_[A-Za-z0-9].*"),
    (r"py:.*", r"(torch|numpy|np|scipy|sp|pydantic|matplotlib|tqdm|sklearn)(\..*)?"),
    (r"py:.*", r"(Tensor|Generator|ndarray|csr_matrix|Figure|Axes|BaseModel|ConfigDict|Path|PathLike)"),
    (r"py:.*", r"PydanticUndefined|annotated_types\..*"),
    (r"py:.*", r"(abc|argparse|collections\.abc|concurrent|dataclasses|datetime|enum|io|multiprocessing|os"
               r"|pathlib|socket|subprocess|threading|types|typing)\..*"),
]

# -- MyST ----------------------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# -- HTML ----------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"commpress {release}"
html_theme_options = {"navigation_with_keys": True}
