"""Sphinx configuration for the Event Sourcing Deployment Cookbook."""

project = "Event Sourcing Deployment Cookbook"
author = "The cookbook's contributors"
copyright = "2026, the cookbook's contributors"

extensions: list[str] = []

html_theme = "furo"
html_title = project
html_static_path: list[str] = []

# Every code block comes from a tested file with literalinclude; none is pasted.
highlight_language = "python3"
nitpicky = True
exclude_patterns = ["_build"]

# linkcheck: only internal targets (anchors and documents); the network is closed.
linkcheck_ignore = [r"https?://.*"]
