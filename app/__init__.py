"""Front ends: the `scribe` command line and (issue #4) the PySide6 desktop app.

Only this package may import Qt, and only lazily (``scribe app``), so the headless
commands run on a machine without a display.
"""
