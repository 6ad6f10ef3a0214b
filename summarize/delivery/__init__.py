"""Where an approved note leaves the machine: the sinks (clipboard, FHIR R4 for DIPS Arena /
Helseplattformen), the sink registry, person numbers, the hand-over (send, retry, end of
session) and the PHI-free audit log."""
