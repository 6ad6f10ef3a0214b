"""What every ``scribe`` command shares: logging set-up, progress bars, the ASR settings as
an engine configuration, the live transcript printer and the error handling that turns a
user error into one line on stderr. Front ends import these public names; they never
import each other's private ones."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from collections.abc import Callable
from typing import Any, TextIO

from asr.errors import ScribeError, printable

EXIT_INTERNAL = 70


def add_global_flags(parser: argparse.ArgumentParser) -> None:
    """``--debug`` and ``-v/--verbose``, on ``scribe`` and on a command run alone."""
    parser.add_argument("--debug", action="store_true", help="debug logging (may include transcript text)")
    parser.add_argument("-v", "--verbose", action="store_true", help="informational logging (no patient text)")


def configure_logging(debug: bool, verbose: bool) -> None:
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not debug:  # third-party loggers could carry decoded text at DEBUG
        for name in ("faster_whisper", "ctranslate2", "httpx", "huggingface_hub"):
            logging.getLogger(name).setLevel(logging.WARNING)


def progress_factory(stream: TextIO) -> Callable[[str, int], Callable[[int], None]] | None:
    """tqdm bars on ``stream``, one per stage (bytes, or steps where a stage counts steps)."""
    from app.cli_llm_models import progress_factory as bars

    return bars(stream)


def fmt_time(t: float) -> str:
    m, s = divmod(max(t, 0.0), 60)
    return f"{int(m):02d}:{s:04.1f}"


ROLE_NAMES = {"lege": "Lege", "pasient": "Pasient", "pårørende": "Pårørende"}


class Printer:
    """Prints committed segments; on a terminal also the tentative tail, greyed."""

    def __init__(self, out: TextIO, as_json: bool, show_tentative: bool, json_tentative: bool = False) -> None:
        self.out = out
        self.as_json = as_json
        self.show_tentative = show_tentative and not as_json
        self.json_tentative = json_tentative and as_json
        self._tentative_shown = False

    def _clear_tentative(self) -> None:
        if self._tentative_shown:
            self.out.write("\r\033[K")
            self._tentative_shown = False

    def event(self, ev: Any) -> None:
        from asr.types import Segment

        if isinstance(ev, Segment):
            self._clear_tentative()
            if self.as_json:
                self.out.write(json.dumps(ev.to_dict(), ensure_ascii=False) + "\n")
            else:
                who = ROLE_NAMES.get(ev.speaker or "") or (f"Stemme {ev.speaker_id + 1}" if ev.speaker_id is not None else "")
                who = f"{who}: " if who else ""
                self.out.write(f"[{fmt_time(ev.start)} → {fmt_time(ev.end)}] {who}{ev.text}\n")
            self.out.flush()
        elif self.json_tentative:
            self.out.write(json.dumps(ev.to_dict(), ensure_ascii=False) + "\n")
            self.out.flush()
        elif self.show_tentative:
            self._clear_tentative()
            if ev.text:
                width = shutil.get_terminal_size((100, 20)).columns - 4
                self.out.write("\033[2m… " + ev.text[-width:] + "\033[0m")
                self._tentative_shown = True
            self.out.flush()

    def speakers(self, changes: dict[int, tuple[str | None, int | None]]) -> None:
        """Earlier segments' new speakers (a ``speakers`` line in JSON; nothing on a terminal,
        which shows each line as it was first heard)."""
        if self.as_json and changes:
            self._clear_tentative()
            line = {"type": "speakers", "changes": [{"id": i, "speaker": r, "speaker_id": v}
                                                    for i, (r, v) in sorted(changes.items())]}
            self.out.write(json.dumps(line, ensure_ascii=False) + "\n")
            self.out.flush()

    def close(self) -> None:
        self._clear_tentative()
        self.out.flush()


def run_guarded(fn: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a command with the CLI's error handling: a user error is one line on stderr with
    its exit status; anything else is an internal error without a traceback (unless --debug)."""
    try:
        return fn(args)
    except ScribeError as exc:
        print(f"scribe: error: {printable(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("scribe: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # never a traceback for the user, unless --debug
        if getattr(args, "debug", False):
            raise
        print(
            f"scribe: internal error: {type(exc).__name__} (run with --debug for details)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
