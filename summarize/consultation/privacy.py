"""Keeping patient data in memory only: process-level measures.

A core dump would write the whole process memory (audio, transcript, draft) to disk, so
the front ends disable them at start where the OS allows (Linux/macOS: ``RLIMIT_CORE`` =
0, which also covers the children the process starts). Windows writes no core files by
default; WER crash dumps are a machine policy for IT (documented in the README).
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def disable_core_dumps() -> bool:
    """Set the core file size limit to 0; True when the limit is now 0."""
    try:
        import resource
    except ImportError:  # Windows
        return False
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError) as exc:
        logger.warning("could not disable core dumps (%s)", type(exc).__name__)
    return resource.getrlimit(resource.RLIMIT_CORE)[0] == 0
