"""User-visible strings in bokmål (default) and English.

Each GUI module keeps its own table ``{"nb": {key: text}, "en": {key: text}}`` and looks
strings up with :func:`text`; the language is chosen once per process with
:func:`set_language` (settings dialog, ``--lang``). A key missing in English falls back
to bokmål, so the window is never blank.
"""

from __future__ import annotations

LANGUAGES = {"nb": "Norsk (bokmål)", "en": "English"}
_current = "nb"


def set_language(lang: str) -> None:
    global _current
    if lang not in LANGUAGES:
        raise ValueError(f"unknown UI language {lang!r}; choose {', '.join(LANGUAGES)}")
    _current = lang


def language() -> str:
    return _current


def text(table: dict[str, dict[str, str]], key: str, **fmt: object) -> str:
    s = table.get(_current, {}).get(key) or table["nb"][key]
    return s.format(**fmt) if fmt else s
