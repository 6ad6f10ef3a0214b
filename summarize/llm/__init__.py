"""LLM engines behind one protocol (:class:`summarize.llm.base.LlmEngine`), chosen by a registry."""
