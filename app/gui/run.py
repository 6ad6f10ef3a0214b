"""``scribe app``: the desktop window, or a replay of a recording through the same path
as Record (for IT and CI), optionally with a screenshot once the draft is ready."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from app.argtypes import positive_float

logger = logging.getLogger(__name__)


def add_app_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    a = sub.add_parser("app", help="open the desktop app (default when no command is given)")
    a.add_argument("--replay", metavar="AUDIO", help="play this file as if it were the microphone, in real time")
    a.add_argument("--template", metavar="ID", help="note template (default: from the settings)")
    a.add_argument("--screenshot", metavar="PNG", help="save the whole window as PNG once the draft is ready")
    a.add_argument("--quit-after-draft", action="store_true", help="exit 0 once the draft is ready")
    a.add_argument("--speed", type=positive_float, default=1.0, help="replay speed (1 = real time)")
    a.add_argument("--lang", choices=("nb", "en"), help="language of the window (default: settings)")
    from app.cli_voice import add_speaker_args

    add_speaker_args(a)


_XCB_LIBS = {"xcb-cursor": "libxcb-cursor0", "xcb-icccm": "libxcb-icccm4", "xcb-keysyms": "libxcb-keysyms1",
             "xkbcommon-x11": "libxkbcommon-x11-0", "X11-xcb": "libx11-xcb1"}


def _display_problem() -> str | None:
    """Why Qt could not open a window here (Qt itself would abort with a core dump)."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return None
    if os.environ.get("WAYLAND_DISPLAY"):
        return None
    if not os.environ.get("DISPLAY"):
        return "no display for the window: run it in a desktop session, or set QT_QPA_PLATFORM=offscreen"
    from ctypes.util import find_library

    missing = [pkg for lib, pkg in _XCB_LIBS.items() if find_library(lib) is None]
    if missing:
        return f"system libraries for the window are missing: run ./install.sh or sudo apt-get install {' '.join(missing)}"
    return None


def cmd_app(args: argparse.Namespace) -> int:
    from app.cli_voice import speaker_settings
    from app.settings import is_superuser, load_settings
    from asr.errors import ConfigError
    from asr.sources import check_audio_path
    from summarize.templates.template import load_template

    settings = load_settings(speakers=speaker_settings(args))
    replay = getattr(args, "replay", None)
    template = getattr(args, "template", None)
    if replay:
        check_audio_path(replay)  # a missing or unreadable file fails before the window opens
    if template:
        load_template(template)  # an unknown or invalid template too
    if getattr(args, "speed", 1.0) <= 0:
        raise ConfigError("--speed must be above 0")
    problem = _display_problem()
    if problem:
        raise ConfigError(problem)

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.gui import i18n
    from app.gui.main_window import MainWindow
    from summarize.consultation.engine import Scribe

    i18n.set_language(getattr(args, "lang", None) or settings.app.ui_language)
    app = QApplication.instance() or QApplication([sys.argv[0]])
    win = MainWindow(Scribe(settings), template=template, superuser=is_superuser(settings),
                     replay=Path(replay) if replay else None, replay_speed=getattr(args, "speed", 1.0))
    outcome = {"code": 0}

    if replay:
        win.models_ready.connect(win.record)

        def drafted() -> None:
            QTimer.singleShot(300, shoot)  # let the new sections lay out and paint first

        def shoot() -> None:
            app.processEvents()
            shot = getattr(args, "screenshot", None)
            if shot:
                Path(shot).parent.mkdir(parents=True, exist_ok=True)
                if not win.grab().save(str(shot)):
                    print(f"scribe: error: cannot write the screenshot {shot}", file=sys.stderr)
                    outcome["code"] = 2
            if getattr(args, "quit_after_draft", False):
                win.quiet_close = True
                win.close()
                app.exit(outcome["code"])

        win.draft_ready.connect(drafted)

        def load_failed(why: str) -> None:
            print(f"scribe: error: {why}", file=sys.stderr)
            win.quiet_close = True
            win.close()
            app.exit(4)

        win.load_failed.connect(load_failed)
    win.show()
    win.load_models()
    code = app.exec()
    return code if code else outcome["code"]
