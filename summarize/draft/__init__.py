"""Drafting the note: the small-talk filter, spoken self-corrections, one utterance → journal
lines (LLM or extractive), typed records (medications, vital signs, allergies), spoken →
written style, and the note as a whole (batch and incremental)."""
