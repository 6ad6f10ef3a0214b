"""Checking the draft against what was said: numbers and units, drug names (the lexicon),
sides, dates, impossible values, and utterances addressed to the software."""
