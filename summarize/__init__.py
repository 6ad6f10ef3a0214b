"""Small-talk filter, note templates, local LLM engines, verification and EPJ sinks (issue #3+)."""

import os as _os

# See asr/__init__.py: OpenMP threads sleep while they wait (measured: two llama.cpp decodes
# side by side 174 s spinning, 4.3 s sleeping). Set before the native libraries load.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
