"""The superuser's template editor (pytest-qt, offscreen): an invalid template shows its
problems and saves nothing; a valid one is saved with a bumped version and the change note;
the preview renders a shared consultation; packs go out and come back in."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor
from pytestqt.qtbot import QtBot

from app.gui.template_editor import TemplateEditor
from summarize.templates.discovery import BUILTIN_DIR
from summarize.templates.schema import LANGUAGE_TEXT
from summarize.templates.template import load_template, validate_template
from tests.conftest import CONSULTATIONS

NAME = "allmennmedisin.md.j2"
SHARED = ("_base.md.j2", "_macros.md.j2")


@pytest.fixture(autouse=True)
def _no_env_dirs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCRIBE_TEMPLATE_DIR", raising=False)


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "maler"
    d.mkdir()
    for name in (NAME, *SHARED):
        shutil.copy(BUILTIN_DIR / name, d / name)
    return d


@pytest.fixture()
def editor(qtbot: QtBot, folder: Path) -> Iterator[TemplateEditor]:
    w = TemplateEditor(folder)
    qtbot.addWidget(w)
    w.resize(1200, 700)
    w.show()
    qtbot.waitExposed(w)
    assert w.open_template("allmennmedisin")
    yield w
    assert w.wait_idle()  # no check left running on a worker thread when the widget goes


def snapshot(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def type_at_end(w: TemplateEditor, qtbot: QtBot, text: str) -> None:
    """Type ``text`` at the end of the template, like the superuser would."""
    w.editor.setFocus()
    cursor = w.editor.textCursor()
    cursor.movePosition(QTextCursor.MoveOperation.End)
    w.editor.setTextCursor(cursor)
    for i, line in enumerate(text.split("\n")):
        if i:
            qtbot.keyClick(w.editor, Qt.Key.Key_Return)
        qtbot.keyClicks(w.editor, line)


def red_lines(w: TemplateEditor) -> list[int]:
    return [sel.cursor.blockNumber() + 1 for sel in w.editor.extraSelections()]


def test_lists_own_and_builtin_templates(editor: TemplateEditor) -> None:
    ids = editor.template_ids()
    assert "allmennmedisin" in ids and "psykiatri" in ids  # built-in ones, read-only source
    assert editor.local_template_ids() == ["allmennmedisin"]
    assert editor.version_edit.text() == "1.0.0"
    assert editor.problems() == [] and editor.problem_list.count() == 0
    assert not editor.save_button.isEnabled()  # no change note yet


def test_error_is_shown_and_nothing_is_saved_then_fix_and_save(
    editor: TemplateEditor, folder: Path, qtbot: QtBot
) -> None:
    before = snapshot(folder)
    original = editor.editor.toPlainText()
    editor.change_note.setText("La til overskrift med dato")

    # (1) an unclosed {% if %}: validated by the debounce timer after typing
    with qtbot.waitSignal(editor.problems_changed, timeout=3000) as blocker:
        type_at_end(editor, qtbot, "{% block header %}\n{% if meta.extractive %}\n{% endblock %}")
    assert blocker.args[0] >= 1
    bad_line = editor.editor.document().blockCount()  # the {% endblock %} line
    [problem] = editor.problems()
    assert problem.line == bad_line and "syntax error" in problem.message
    assert editor.problem_list.count() == 1
    assert editor.problem_list.item(0).text().startswith(f"linje {bad_line}: template syntax")
    assert red_lines(editor) == [bad_line]
    assert not editor.save_button.isEnabled()
    assert "Malen har feil" in editor.preview_text()

    # clicking the problem moves the cursor to its line
    editor.go_to_line(1)
    item = editor.problem_list.item(0)
    rect = editor.problem_list.visualItemRect(item)
    qtbot.mouseClick(editor.problem_list.viewport(), Qt.MouseButton.LeftButton,
                     pos=rect.center())
    assert editor.editor.textCursor().blockNumber() + 1 == bad_line

    # the save action anyway: refused, message shown, nothing written
    with qtbot.assertNotEmitted(editor.saved):
        assert editor.save() is False
    status = editor.status_label.text()
    assert "Ikke lagret" in status and "syntax error" in status
    assert snapshot(folder) == before

    # (2) fixed: valid again, saved with a bumped version and the change note
    fixed = original + '\n{% block header %}\nKonsultasjon {{ meta.date }}\n{% endblock %}\n'
    editor.editor.setPlainText(fixed)
    assert editor.validate_now() == []
    assert editor.problem_list.count() == 0 and red_lines(editor) == []
    assert editor.version_hint.text() == "lagres som 1.0.1"
    assert editor.save_button.isEnabled()
    with qtbot.waitSignal(editor.saved, timeout=3000) as saved:
        qtbot.mouseClick(editor.save_button, Qt.MouseButton.LeftButton)
    assert saved.args == ["allmennmedisin", "1.0.1"]

    text = (folder / NAME).read_text(encoding="utf-8")
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["version"] == "1.0.1"
    assert meta["changes"][-1]["note"] == "La til overskrift med dato"
    assert meta["changes"][-1]["version"] == "1.0.1"
    assert "Konsultasjon {{ meta.date }}" in text
    assert validate_template(folder / NAME) == []
    assert sorted(p.name for p in folder.iterdir()) == sorted([NAME, *SHARED])
    assert editor.editor.toPlainText() == text and not editor.is_modified()
    assert editor.version_edit.text() == "1.0.1"
    assert editor.change_note.text() == "" and not editor.save_button.isEnabled()
    assert "Lagret allmennmedisin versjon 1.0.1" in editor.status_label.text()


def test_removing_a_required_section_is_reported_and_not_saved(
    editor: TemplateEditor, folder: Path, qtbot: QtBot
) -> None:
    before = snapshot(folder)
    text = editor.editor.toPlainText()
    editor.editor.setPlainText(text.replace("    required: true\n    style: lines\n",
                                            "    style: lines\n"))
    editor.change_note.setText("Plan valgfri")
    problems = editor.validate_now()
    assert [p.message for p in problems] == ["standard section 'plan' must have required: true"]
    assert "linje" in editor.problem_list.item(0).text()
    assert not editor.save_button.isEnabled()
    assert editor.save() is False and snapshot(folder) == before


@pytest.mark.parametrize(
    "expr", ["{{ ''.__class__.__mro__ }}", "{{ pasientnavn }}", "{% for %}", "{{ 1 / 0 }}"]
)
def test_hostile_or_broken_text_is_a_problem_not_a_crash(
    editor: TemplateEditor, folder: Path, expr: str
) -> None:
    before = snapshot(folder)
    editor.editor.setPlainText(editor.editor.toPlainText()
                               + "{% block header %}\n" + expr + "\n{% endblock %}\n")
    editor.change_note.setText("x")
    problems = editor.validate_now()
    assert problems and editor.problem_list.count() == len(problems)
    assert not editor.save_button.isEnabled() and editor.save() is False
    assert snapshot(folder) == before
    editor.editor.setPlainText("not a template at all {{")
    assert "no front matter" in editor.validate_now()[0].message


def test_version_field_edits_the_front_matter(editor: TemplateEditor, folder: Path,
                                              qtbot: QtBot) -> None:
    editor.version_edit.setText("1.1.0")
    with qtbot.waitSignal(editor.problems_changed, timeout=5000):  # checked on a worker thread
        editor.version_edit.editingFinished.emit()
    assert 'version: "1.1.0"' in editor.editor.toPlainText()
    assert editor.version_hint.text() == ""  # a raised version is kept as it is
    editor.change_note.setText("Ny seksjon")
    with qtbot.waitSignal(editor.saved) as saved:
        assert editor.save()
    assert saved.args == ["allmennmedisin", "1.1.0"]
    assert load_template(folder / NAME).version == "1.1.0"


def test_builtin_template_is_saved_as_a_local_copy(editor: TemplateEditor, folder: Path,
                                                   qtbot: QtBot) -> None:
    assert editor.open_template("psykiatri")
    editor.change_note.setText("Lokal kopi for avdelingen")
    editor.validate_now()
    with qtbot.waitSignal(editor.saved) as saved:
        assert editor.save()
    assert saved.args == ["psykiatri", "1.0.1"]
    assert (folder / "psykiatri.md.j2").is_file()
    assert (BUILTIN_DIR / "psykiatri.md.j2").read_text(encoding="utf-8").count("changes:") == 0
    assert "psykiatri" in editor.local_template_ids()


def test_file_changed_on_disk_is_not_overwritten(editor: TemplateEditor, folder: Path) -> None:
    other = (folder / NAME).read_text(encoding="utf-8") + "{# endret av en annen #}\n"
    (folder / NAME).write_text(other, encoding="utf-8")
    editor.change_note.setText("Min endring")
    editor.validate_now()
    assert editor.save() is False
    assert "endret på disk" in editor.status_label.text()
    assert (folder / NAME).read_text(encoding="utf-8") == other


def test_preview_renders_a_shared_consultation(qtbot: QtBot, folder: Path) -> None:
    w = TemplateEditor(folder, CONSULTATIONS)
    qtbot.addWidget(w)
    assert "allmenn-hypertensjon" in w.consultation_ids()
    assert w.open_template("allmennmedisin")
    assert w.select_consultation("allmenn-hypertensjon")
    preview = w.preview_text()
    for title in ("Anamnese:", "Vurdering:", "Plan:"):
        assert title in preview
    assert LANGUAGE_TEXT["nb"]["extractive_notice"] in preview  # extractive draft, marked
    assert LANGUAGE_TEXT["nb"]["disclosure"] in preview
    assert "(Eksempeltekst" not in preview  # text from the consultation, not the sample

    # the preview follows the edit: a renamed heading shows up
    w.editor.setPlainText(w.editor.toPlainText().replace("title: Vurdering",
                                                         "title: Vurdering og tiltak"))
    w.validate_now()
    assert "Vurdering og tiltak:" in w.preview_text()
    assert not any(p.name.endswith((".txt", ".md")) for p in folder.iterdir())
    assert w.wait_idle()


def test_preview_without_consultations_uses_the_sample(editor: TemplateEditor) -> None:
    assert editor.consultation_ids() == []
    assert "(Eksempeltekst: Anamnese)" in editor.preview_text()


def test_export_and_import_pack(editor: TemplateEditor, folder: Path, tmp_path: Path,
                                qtbot: QtBot) -> None:
    editor.change_note.setText("Første lokale versjon")
    editor.validate_now()
    assert editor.save()
    pack = tmp_path / "akutt-pakke.zip"
    entries = editor.export_pack_to(pack)
    assert entries is not None and pack.is_file()
    assert sorted(e.name for e in entries) == sorted([NAME, *SHARED])
    assert "Eksporterte 3 fil(er)" in editor.status_label.text()

    region = tmp_path / "region"
    other = TemplateEditor(region)
    qtbot.addWidget(other)
    assert other.local_template_ids() == []
    results = other.import_pack_from(pack)
    assert results is not None and all(r.written for r in results)
    assert other.local_template_ids() == ["allmennmedisin"]
    assert (region / NAME).read_bytes() == (folder / NAME).read_bytes()
    assert "3 fil(er) skrevet" in other.status_label.text()
    assert other.open_template("allmennmedisin") and other.version_edit.text() == "1.0.1"

    again = other.import_pack_from(pack)
    assert again is not None and not any(r.written for r in again)
    assert "0 fil(er) skrevet, 3 hoppet over" in other.status_label.text()

    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    assert other.import_pack_from(junk) is None
    assert "Ikke importert" in other.status_label.text()


def formats(w: TemplateEditor, line: int) -> dict[str, tuple[str, bool, bool]]:
    """The highlighted spans of a line: text → (colour, bold, italic)."""
    block = w.editor.document().findBlockByNumber(line - 1)
    out = {}
    for r in block.layout().formats():
        f = r.format
        out[block.text()[r.start : r.start + r.length]] = (
            f.foreground().color().name(), f.fontWeight() > 500, f.fontItalic()
        )
    return out


def test_highlighting_of_front_matter_and_jinja(editor: TemplateEditor) -> None:
    editor.editor.setPlainText(
        '---\n# kommentar\nid: test  # slug\nversion: "1.0.0"\n---\n'
        '{% extends "_base.md.j2" %}\nTekst {{ meta.date }}\n{#- fler-\nlinjers -#}\nid: x\n'
    )
    hl = editor.highlighter.formats
    name = {k: (v.foreground().color().name(), v.fontWeight() > 500, v.fontItalic())
            for k, v in hl.items()}
    assert formats(editor, 2) == {"# kommentar": name["comment"]}
    line3 = formats(editor, 3)
    assert line3["id"] == name["key"] and line3["# slug"] == name["comment"]
    assert formats(editor, 4)['"1.0.0"'] == name["string"]
    line6 = formats(editor, 6)
    assert line6['"_base.md.j2"'] == name["string"] and name["tag"] in line6.values()
    assert formats(editor, 7) == {"{{ meta.date }}": name["expr"]}
    assert formats(editor, 8) == {"{#- fler-": name["jcomment"]}
    assert formats(editor, 9) == {"linjers -#}": name["jcomment"]}
    assert formats(editor, 10) == {}  # body text after the front matter: not YAML


def test_choosing_a_template_in_the_list_opens_it(editor: TemplateEditor) -> None:
    row = editor.template_ids().index("ortopedi")
    editor.template_list.setCurrentRow(row)
    assert "id: ortopedi" in editor.editor.toPlainText()
    assert not editor.is_modified() and editor.problems() == []


HOSTILE_LOOP = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"


def test_a_slow_template_is_checked_off_the_ui_thread(editor: TemplateEditor, qtbot: QtBot) -> None:
    """Issue #17: a template that renders until the 5 s limit must not freeze the editor;
    the check runs on a worker thread and a progress bar shows meanwhile."""
    from PySide6.QtCore import QTimer

    ticks: list[bool] = []  # one per event-loop turn of a 20 ms timer while the check runs
    probe = QTimer()
    probe.setInterval(20)
    probe.timeout.connect(lambda: ticks.append(editor.is_checking()))
    probe.start()
    with qtbot.waitSignal(editor.problems_changed, timeout=20_000) as blocker:
        editor.editor.setPlainText(editor.editor.toPlainText() + "\n" + HOSTILE_LOOP + "\n")
        qtbot.waitUntil(lambda: editor.busy.isVisible(), timeout=3000)
        assert editor.problem_label.text() == "Kontrollerer malen …"
    probe.stop()
    assert blocker.args[0] == 1 and "too long to render" in editor.problems()[0].message
    assert ticks.count(True) >= 20  # the UI thread kept running through the check
    assert not editor.busy.isVisible() and not editor.save_button.isEnabled()


def test_typing_during_a_check_gets_the_new_text_checked(editor: TemplateEditor, qtbot: QtBot) -> None:
    editor.editor.setPlainText(editor.editor.toPlainText() + "\n" + HOSTILE_LOOP + "\n")
    qtbot.waitUntil(editor.busy.isVisible, timeout=3000)
    fixed = editor.editor.toPlainText().replace(HOSTILE_LOOP, "")
    editor.editor.setPlainText(fixed)  # the running check's result is now stale
    qtbot.waitUntil(lambda: not editor.is_checking() and editor.problem_label.text() == "Ingen feil",
                    timeout=20_000)
    assert editor.problems() == [] and editor.editor.toPlainText() == fixed


def test_the_import_button_imports_on_a_worker_thread(
    editor: TemplateEditor, tmp_path: Path, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    editor.change_note.setText("Lokal versjon")
    assert editor.save()
    pack = tmp_path / "pakke.zip"
    assert editor.export_pack_to(pack) is not None

    other = TemplateEditor(tmp_path / "region")
    qtbot.addWidget(other)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(pack), ""))
    import threading

    from app.gui import template_packs as module

    release = threading.Event()
    real_import = module._import

    def held(*args: object) -> object:  # the worker waits until the test has looked
        assert release.wait(20)
        return real_import(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(module, "_import", held)
    qtbot.mouseClick(other.import_button, Qt.MouseButton.LeftButton)
    qtbot.wait(100)  # the event loop runs meanwhile: the window is not frozen
    assert other.is_importing() and not other.import_button.isEnabled() and other.busy.isVisibleTo(other)
    assert other.status_label.text() == "Importerer pakke.zip …"
    release.set()
    qtbot.waitUntil(lambda: not other.is_importing(), timeout=20_000)
    assert "3 fil(er) skrevet" in other.status_label.text() and other.import_button.isEnabled()
    assert other.local_template_ids() == ["allmennmedisin"]

    # the same pack again: skipped (same version), the superuser is asked, says yes: the
    # pack is imported again with overwriting, also on the worker thread
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.Yes)
    qtbot.mouseClick(other.import_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(asked) and not other.is_importing(), timeout=20_000)
    assert len(asked) == 1 and "allmennmedisin.md.j2" in asked[0]
    assert "1 fil(er) skrevet, 2 hoppet over" in other.status_label.text()

    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(junk), ""))
    qtbot.mouseClick(other.import_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not other.is_importing(), timeout=20_000)
    assert other.status_label.text().startswith("Ikke importert") and "\n" not in other.status_label.text()
