"""``scribe voice``: the clinician's voice profile (who said it: lege or somebody else).

    scribe voice enroll (--mic [--input-device N] | --file AUDIO) [--out PATH] [--seconds S]
    scribe voice show [--profile PATH] [--json]
    scribe voice delete [--profile PATH]

``enroll`` records (or reads) the clinician reading the microphone test's passage (printed on
the screen), checks that it is long and clean enough and one voice (:mod:`hardware.voice`),
and stores only the averaged voice embedding, mode 0600, in the user data folder (or
``--out``, or the setting ``speakers.voice_profile``). The recording stays in memory and is
dropped. A recording that is not good enough gives one line saying why, exit status 2, and
nothing is stored. The profile is biometric data about the clinician: it is used only on this
machine, to tell their voice from the others', and ``delete`` removes it.

``--speakers auto|off`` and ``--voice-profile PATH`` (for ``transcribe``, ``note``, ``app``)
are defined here too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from asr.errors import ScribeError, printable

CONSENT = ("The voice profile is biometric data about you. It is used only on this machine, to tell your voice "
           "from the patient's and relatives', holds no audio, and can be deleted at any time: scribe voice delete.")


def add_speaker_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--speakers", choices=("auto", "off"), help="roles (lege/pasient/pårørende) from the voices "
                   "(default auto)")
    p.add_argument("--voice-profile", metavar="PATH", help="the clinician's voice profile (default: the one made "
                   "by 'scribe voice enroll', if any)")


def speaker_settings(args: argparse.Namespace) -> dict[str, Any]:
    return {"mode": getattr(args, "speakers", None), "voice_profile": getattr(args, "voice_profile", None)}


def warn_speakers(scribe: Any) -> None:
    """One line on stderr when roles from the voices are unavailable (transcription goes on)."""
    if scribe.speakers_problem:
        print(f"scribe: warning: no speaker roles: {printable(scribe.speakers_problem)}", file=sys.stderr)


def add_voice_parser(sub: argparse._SubParsersAction) -> None:
    v = sub.add_parser("voice", help="the clinician's voice profile (tells your voice from the patient's)")
    vsub = v.add_subparsers(dest="voice_command", metavar="ACTION", required=True)
    e = vsub.add_parser("enroll", help="record or read ~30 s of you reading the passage; store only a voice profile")
    src = e.add_mutually_exclusive_group(required=True)
    src.add_argument("--mic", action="store_true", help="record from the microphone")
    src.add_argument("--file", metavar="AUDIO", help="a recording of you reading the passage")
    e.add_argument("--input-device", metavar="NAME|N", help="microphone by name or index (see 'scribe devices')")
    e.add_argument("--seconds", type=float, default=35.0, help="seconds to record with --mic (default 35)")
    e.add_argument("--out", metavar="PATH", help="where to store the profile (default: the user data folder)")
    e.add_argument("--json", action="store_true", help="print the result as JSON")
    s = vsub.add_parser("show", help="when the profile was made, from how much speech, how clean")
    s.add_argument("--profile", metavar="PATH", help="the profile (default: the configured one)")
    s.add_argument("--json", action="store_true")
    d = vsub.add_parser("delete", help="delete the voice profile")
    d.add_argument("--profile", metavar="PATH", help="the profile (default: the configured one)")


def _path(explicit: str | None) -> Path:
    from app.settings import load_settings

    if explicit:
        return Path(explicit).expanduser()
    return load_settings().speakers.profile_path()


def cmd_voice(args: argparse.Namespace) -> int:
    from asr.speakers import profile as voice_profile

    if args.voice_command == "show":
        path = _path(args.profile)
        summary = {"path": str(path), **voice_profile.load(path).summary()}
        if args.json:
            print(json.dumps(summary, ensure_ascii=False))
        else:
            print(f"voice profile {printable(str(path))}: made {summary['created']}, {summary['speech_s']} s of speech, "
                  f"SNR {summary['snr_db']} dB, consistency {summary['consistency']}")
        return 0
    if args.voice_command == "delete":
        path = _path(args.profile)
        if voice_profile.delete(path):
            print(f"deleted the voice profile {printable(str(path))}", file=sys.stderr)
        else:
            print(f"no voice profile at {printable(str(path))}", file=sys.stderr)
        return 0
    return _enroll(args)


def _enroll(args: argparse.Namespace) -> int:
    from asr.speakers import profile as voice_profile
    from asr.speakers.encoder import VoiceEncoder
    from hardware.voice import enroll

    out = _path(args.out)
    if args.seconds <= 5 or args.seconds > 300:
        raise ScribeError("--seconds must be between 5 and 300")
    encoder = VoiceEncoder()  # missing weights fail before anybody reads aloud
    print(CONSENT, file=sys.stderr)
    if args.file:
        from asr.sources import decode_file

        audio, problem = decode_file(args.file)
        if problem is not None:
            raise problem
    else:
        audio = _record(args)
    profile = enroll(audio, encoder)
    del audio
    voice_profile.save(profile, out)
    summary = {"path": str(out), **profile.summary()}
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        print(f"voice profile saved to {printable(str(out))} ({summary['speech_s']} s of speech, "
              f"SNR {summary['snr_db']} dB); only the voice embedding is stored, no audio", file=sys.stderr)
    return 0


def _record(args: argparse.Namespace) -> Any:
    from tqdm import tqdm

    from hardware.mic_capture import record
    from hardware.passage import passage

    print("\nRead this aloud at your normal pace, as you speak with patients:\n", file=sys.stderr)
    print(passage("nb") + "\n", file=sys.stderr)
    bar = tqdm(total=100, desc="recording", unit="%", file=sys.stderr, leave=False)

    def on_progress(fraction: float, level: float) -> None:
        bar.update(int(fraction * 100) - bar.n)

    try:
        audio, _xruns = record(args.input_device or None, args.seconds, on_progress=on_progress, sample_rate=16000)
    finally:
        bar.close()
    return audio.mean(axis=1) if audio.ndim == 2 else audio
