"""What every ``scribe bench`` subcommand shares: the ``--json``/``--html`` report options
and the check that a report can be written before a long run."""

from __future__ import annotations

import argparse
from pathlib import Path

from asr.errors import ConfigError


def check_report_paths(*paths: Path | None) -> None:
    """Fail before a long run if a report could not be written."""
    for p in paths:
        if p is None:
            continue
        if p.is_dir():
            raise ConfigError(f"{p} is a folder: give a file name for the report")
        parent = p.expanduser().resolve().parent
        if not parent.is_dir():
            raise ConfigError(f"cannot write {p}: the folder {parent} does not exist")


def add_report_args(parser: argparse.ArgumentParser) -> None:
    """``--json OUT`` and ``--html OUT``, the same on every ``scribe bench`` subcommand."""
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the report as JSON")
    parser.add_argument("--html", type=Path, metavar="OUT",
                        help="write the report as one self-contained HTML file")
