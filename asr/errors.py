"""User-facing errors of the ASR core.

Every error a user can cause (bad file, missing device, broken model) is a
:class:`ScribeError` whose ``str()`` is one line that says what is wrong and, where
there is one, the fix. Front ends print that line and exit non-zero; they never show a
traceback for these.
"""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """The first line of an error's message, else its type's name: the one line a user sees
    (never a traceback, which could quote patient text)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def printable(text: str, limit: int | None = None) -> str:
    """``text`` safe to print on one terminal line: control characters (newlines, terminal
    escape sequences in a file name) as ``\\xNN``; cut to ``limit`` characters."""
    cut = text if limit is None or len(text) <= limit else text[:limit] + "…"
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in cut)


class ScribeError(Exception):
    """Base class of errors with a one-line, user-facing message (runs of whitespace
    become one space; other control characters, e.g. from a file name, are escaped)."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(printable(" ".join(message.split())))


class AudioInputError(ScribeError):
    """An audio file cannot be read (missing, a directory, corrupt, unsupported)."""

    exit_code = 2


class TruncatedAudioError(AudioInputError):
    """The file decoded only partly; what was decoded is still transcribed."""


class DeviceError(ScribeError):
    """No usable input device, or PortAudio is missing."""

    exit_code = 3


class DeviceLostError(DeviceError):
    """The input device stopped delivering audio mid-stream."""


class ModelError(ScribeError):
    """A model directory is missing, incomplete or fails its checksum."""

    exit_code = 4


class ConfigError(ScribeError):
    """The configuration file or a command-line option is invalid."""

    exit_code = 2
