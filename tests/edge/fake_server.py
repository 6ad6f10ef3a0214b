"""An edge server on fakes (scripted transcriber and LLM, a recording sink, a real audit log)
for the protocol and security tests; the real-model tests use the real engine."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from app.edge.run import EdgeThread, build_state
from app.settings import EdgeSettings
from summarize.consultation.engine import Scribe
from summarize.delivery.audit import AuditLog
from summarize.delivery.sinks import Receipt
from tests.fakes import FakeLlm, ScriptedAsr, note_template

SCRIPT = [
    ("Vi var på hytta i helgen og fisket ørret.", 1.0),
    ("Jeg har hatt vondt i brystet i tre dager.", 2.0),
    ("Du fortsetter med amlodipin fem milligram daglig.", 3.0),
    ("Vi tar en ny kontroll om to uker.", 4.0),
]
PATIENT = "13897248098"  # a synthetic (Tenor, month + 80) fødselsnummer with valid check digits


def answer(messages: list[Any]) -> str:
    said = messages[-1].content.rsplit("\n", 1)[-1]
    if "brystet" in said:
        return "Anamnese: Vondt i brystet i 3 dager."
    if "amlodipin" in said:
        return "Legemidler: Amlodipin 10 mg daglig."  # 10 was never said: flagged
    return "Ingen."


class RecordingSink:
    name = "test"

    def __init__(self, notes: list[Any], user: str, patient: str) -> None:
        self.notes, self.user, self.patient = notes, user, patient

    def deliver(self, note: Any) -> Receipt:
        from datetime import UTC, datetime

        self.notes.append((self.user, self.patient, note))
        return Receipt(self.name, datetime.now(UTC), "lagret i testmottaket", f"DocumentReference/{len(self.notes)}")


class FakeEdge:
    def __init__(self, tmp_path: Path, tls: Any, **edge: Any) -> None:
        self.audit_path = tmp_path / "audit.jsonl"
        audit = AuditLog(self.audit_path, b"k" * 32)
        self.settings = SimpleNamespace(
            edge=EdgeSettings(**{"grace_s": 120, "max_consultations": 4, **edge}),
            app=SimpleNamespace(sink="test", default_template="test"),
            audit=SimpleNamespace(open=lambda: audit))
        self.scribe = Scribe(self.settings, asr=ScriptedAsr(SCRIPT), llm=FakeLlm(answer))
        self.notes: list[Any] = []
        self.socket = tmp_path / "ctl" / "edge.sock"
        self.state = build_state(self.settings, self.scribe, templates={"test": note_template()},
                                 sink_for=lambda user, patient: RecordingSink(self.notes, user, patient))
        self.thread = EdgeThread(self.state, cert=tls.cert, key=tls.key, control_socket=self.socket)
        self.url = self.thread.url

    def start(self) -> FakeEdge:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.thread.stop()

    def code(self, user: str = "PractitionerRole/lege-1", name: str = "Dr. Test") -> str:
        from app.edge.control import request

        return str(request(self.socket, {"op": "pair", "user": user, "name": name})["token"])
