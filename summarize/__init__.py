"""Small-talk filter, note templates, local LLM engines, verification and EPJ sinks (issue #3+)."""
