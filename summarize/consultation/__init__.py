"""One consultation from Record to wipe: the review session (state machine, edits, flags,
approval) and the process-level privacy measures."""
