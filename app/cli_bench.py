"""``scribe bench``: hospital IT's measurements of the machine, the microphone and the models.

    scribe bench hardware [--json OUT] [--html OUT]      probe + model benchmark + recommendation
    scribe bench mic [--file REC.wav] [--reference TEXT.txt] [--json OUT] [--html OUT]
    scribe bench models --dataset DIR [--json OUT] [--html OUT]

Each subcommand lives in its own module (``app.cli_bench_hw``, ``app.cli_bench_mic``); this
one only wires them under ``bench``.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_bench_parser(sub: Any) -> None:
    b = sub.add_parser("bench", help="measure this machine, its microphone and the models (reports for IT)")
    bsub = b.add_subparsers(dest="bench_command", metavar="WHAT", required=True)
    from app.cli_bench_hw import add_hardware_parser, add_models_parser
    from app.cli_bench_mic import add_mic_parser

    add_hardware_parser(bsub)
    add_mic_parser(bsub)
    add_models_parser(bsub)


def cmd_bench(args: argparse.Namespace) -> int:
    if args.bench_command == "mic":
        from app.cli_bench_mic import cmd_bench_mic

        return cmd_bench_mic(args)
    from app.cli_bench_hw import cmd_bench_hardware, cmd_bench_models

    return cmd_bench_hardware(args) if args.bench_command == "hardware" else cmd_bench_models(args)
