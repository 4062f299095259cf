"""Sphinx configuration of the flask-convex documentation (built by tests/test_docs.py)."""

from __future__ import annotations

from flask_convex import __version__

project = "flask-convex"
author = "flask-convex contributors"
copyright = f"the {author}"
version = release = __version__

extensions = ["sphinx.ext.autodoc"]
exclude_patterns = ["_build"]

# Docstrings write `name` for code, as Markdown does.
default_role = "literal"
nitpicky = True
# Types of the standard library and other projects: their inventories cannot be
# fetched to link them. Type variables and aliases have no entry to link to either.
nitpick_ignore_regex = [
    ("py:class", r"(collections\.abc|typing|os|pathlib)\..*"),
    ("py:class", r"(flask|werkzeug|markupsafe|convex|joserfc|_?pytest)\..*"),
    ("py:class", r"JsonValue|ResponseReturnValue|P|ReturnT|flask_convex\.\w+\.(_\w+|ReturnT)"),
]

autodoc_member_order = "bysource"
autodoc_typehints_format = "short"

html_theme = "alabaster"
html_theme_options = {
    "description": "Convex server rendering for Flask and htmx",
    "github_button": False,
}
