"""The flask-convex example: the Convex server-rendering page's four uses, ported to Flask."""

from pathlib import Path

FUNCTIONS_DIR = Path(__file__).parent / "convex"
"""The example's Convex functions, which `flask --app example.app convex dev` serves."""
