"""The desktop app (PySide6). Qt lives only here; the core (asr/, summarize/) stays Qt-free."""
