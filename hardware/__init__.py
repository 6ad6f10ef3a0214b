"""Hardware and microphone tests for hospital IT (issue #6)."""
