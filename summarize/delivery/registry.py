"""The EPJ sinks by name: a registry, not an ``if`` chain. A new sink is one entry here
(a class with ``name`` and ``deliver(ApprovedNote) -> Receipt``, see
:class:`summarize.delivery.sinks.EpjSink`); the FHIR sink is imported only when it is chosen."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from summarize.delivery.sinks import ClipboardSink, EpjSink, SinkError

SinkFactory = Callable[..., EpjSink]


def _fhir(**kwargs: Any) -> EpjSink:
    from summarize.delivery.fhir import FhirDocumentReferenceSink

    return FhirDocumentReferenceSink(**kwargs)


SINKS: dict[str, SinkFactory] = {"clipboard": ClipboardSink, "fhir": _fhir}


def create_sink(name: str, **kwargs: Any) -> EpjSink:
    try:
        factory = SINKS[name]
    except KeyError:
        raise SinkError(f"unknown EPJ sink {name!r}; available: {', '.join(sorted(SINKS))}") from None
    return factory(**kwargs)
