"""Note templates: the built-in ones load, validate and render; broken ones are reported
with file and line; ``scribe templates`` in-process. Synthetic text only."""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import pytest

from app.cli_templates import add_templates_parser, cmd_templates, draft_for_render
from summarize.errors import TemplateError
from summarize.templates.discovery import BUILTIN_DIR, template_dirs
from summarize.templates.model import NoteTemplate
from summarize.templates.schema import LANGUAGE_TEXT, TemplateProblem
from summarize.templates.template import list_templates, load_template, validate_template
from summarize.types import NoteDraft, NoteSection, Sentence

SPECIALTIES = (
    "allmennmedisin",
    "psykiatri",
    "ortopedi",
    "indremedisin",
    "pediatri",
    "revmatologi",
    "akuttmedisin",
    "alderspsykiatri",
)
ALL_IDS = (*SPECIALTIES, "allmennmedisin-nn")
NB = LANGUAGE_TEXT["nb"]
NN = LANGUAGE_TEXT["nn"]


@pytest.fixture(autouse=True)
def _no_env_dirs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCRIBE_TEMPLATE_DIR", raising=False)


def synthetic_draft(t: NoteTemplate, *, extractive: bool = False) -> NoteDraft:
    """Two made-up sentences per section (not patient data)."""
    return NoteDraft(
        template_id=t.id,
        template_version=t.version,
        sections=[
            NoteSection(s.id, s.title, [Sentence(f"Setning en i {s.id}.", (0,)),
                                        Sentence(f"Setning to i {s.id}.", (1,))])
            for s in t.sections
        ],
        extractive=extractive,
        language=t.language,
        llm="test-llm",
    )


HEADER = """---
id: {id}
version: "1.0.0"
title: Testmal
language: nb
sections:
  - id: anamnese
    title: Anamnese
    instruction: Kun det pasienten forteller.
    required: true
  - id: vurdering
    title: Vurdering
    instruction: Legens vurdering.
    required: true
  - id: plan
    title: Plan
    instruction: Videre plan.
    required: true
---
"""
EXTENDS = '{% extends "_base.md.j2" %}\n'
BODY_LINE = HEADER.count("\n") + 1  # the first line after the front matter


def write(tmp_path: Path, tid: str, body: str, header: str = HEADER) -> Path:
    path = tmp_path / f"{tid}.md.j2"
    path.write_text(header.format(id=tid) + body, encoding="utf-8")
    return path


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


def one(problems: list[TemplateProblem]) -> TemplateProblem:
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


# -- built-in templates ------------------------------------------------------------------
def test_all_builtin_templates_are_listed() -> None:
    ids = [t.id for t in list_templates()]
    assert sorted(ids) == sorted(ALL_IDS)


@pytest.mark.parametrize("tid", ALL_IDS)
def test_builtin_template_loads_validates_and_renders(tid: str) -> None:
    t = load_template(tid)
    assert t.id == tid and t.path == BUILTIN_DIR / f"{tid}.md.j2"
    assert validate_template(t.path) == []
    assert t.version.count(".") == 2 and t.title and t.description
    assert {"anamnese", "vurdering", "plan"} <= {s.id for s in t.required_sections}
    assert "legemidler" in t.section_ids and "funn" in t.section_ids
    assert all(s.instruction and s.title for s in t.sections)
    assert t.vocabulary and all(isinstance(w, str) and w for w in t.vocabulary)

    text = t.render(synthetic_draft(t), {"date": "02.03.2025"})
    # every section, in the declared order, with its text
    positions = [text.index(f"{s.title}:\n") for s in t.sections]
    assert positions == sorted(positions)
    for s in t.sections:
        assert f"Setning en i {s.id}." in text and f"Setning to i {s.id}." in text
    texts = LANGUAGE_TEXT[t.language]
    assert texts["disclosure"] in text
    assert texts["extractive_notice"] not in text
    assert "02.03.2025" in text and "test-llm" in text and f"{t.id} {t.version}" in text
    assert text.rstrip().endswith("02.03.2025)")

    marked = t.render(synthetic_draft(t, extractive=True))
    assert marked.startswith(texts["extractive_notice"])
    assert t.render_sample()


def test_allmennmedisin_sections_match_the_shared_test_data() -> None:
    t = load_template("allmennmedisin")
    assert t.section_ids == ("anamnese", "funn", "vurdering", "legemidler", "plan")
    assert [s.title for s in t.sections] == ["Anamnese", "Funn", "Vurdering", "Legemidler", "Plan"]


def test_specialty_sections() -> None:
    psyk = load_template("psykiatri")
    assert psyk.section("suicidalvurdering").required  # type: ignore[union-attr]
    assert psyk.section("psykisk_status").title == "Psykisk status"  # type: ignore[union-attr]
    assert "funksjon" in load_template("ortopedi").section_ids
    alders = load_template("alderspsykiatri")
    assert {"funksjon", "kognitiv_testing"} <= set(alders.section_ids)
    assert alders.section("kognitiv_testing").title == "Kognitiv testing"  # type: ignore[union-attr]
    assert "tiltak" in load_template("akuttmedisin").section_ids
    assert "sertralin" in psyk.vocabulary


def test_render_keeps_template_order_whatever_the_draft_order() -> None:
    t = load_template("allmennmedisin")
    draft = synthetic_draft(t)
    draft.sections.reverse()
    text = t.render(draft)
    positions = [text.index(f"{s.title}:") for s in t.sections]
    assert positions == sorted(positions)


def test_required_empty_section_says_not_mentioned_and_optional_is_left_out() -> None:
    t = load_template("allmennmedisin")
    draft = t.empty_draft()
    draft.sections[0].sentences = [Sentence("Hoste i 3 dager.")]
    text = t.render(draft)
    assert "Anamnese:\nHoste i 3 dager." in text
    assert "Vurdering:\nIkke omtalt." in text and "Plan:\nIkke omtalt." in text
    assert "Funn:" not in text and "Legemidler:" not in text


def test_lines_style_puts_each_sentence_on_its_own_line() -> None:
    t = load_template("allmennmedisin")
    draft = t.empty_draft()
    plan = next(s for s in draft.sections if s.id == "plan")
    anam = next(s for s in draft.sections if s.id == "anamnese")
    plan.sentences = [Sentence("Kontroll om 2 uker."), Sentence("Råd om salt.")]
    anam.sentences = [Sentence("Hodepine."), Sentence("Dårlig søvn.")]
    text = t.render(draft)
    assert "Plan:\nKontroll om 2 uker.\nRåd om salt." in text
    assert "Anamnese:\nHodepine. Dårlig søvn." in text


def test_sections_unknown_to_the_template_are_not_lost() -> None:
    t = load_template("allmennmedisin")
    draft = synthetic_draft(t)
    draft.sections.append(NoteSection("annet", "Annet", [Sentence("Ekstra opplysning.")]))
    text = t.render(draft)
    assert "Annet:\nEkstra opplysning." in text
    assert text.index("Annet:") > text.index("Plan:")


def test_nynorsk_template_renders_nynorsk() -> None:
    t = load_template("allmennmedisin-nn")
    assert t.language == "nn"
    assert t.section_ids == load_template("allmennmedisin").section_ids
    assert "Berre" in t.section("anamnese").instruction  # type: ignore[union-attr]
    draft = t.empty_draft()
    draft.sections[3].sentences = [Sentence("Amlodipin 5 mg x 1.")]
    draft.extractive = True
    text = t.render(draft)
    assert "Legemiddel:\nAmlodipin 5 mg x 1." in text
    assert "Vurdering:\nIkkje omtalt." in text
    assert NN["disclosure"] in text and NN["extractive_notice"] in text
    assert NB["disclosure"] not in text and "Ikke omtalt" not in text


def test_meta_cannot_override_the_disclosure() -> None:
    t = load_template("pediatri")
    text = t.render(synthetic_draft(t), {"disclosure": "", "extractive": True})
    assert NB["disclosure"] in text and NB["extractive_notice"] in text


# -- validation failures -------------------------------------------------------------------
def test_valid_custom_template_with_block_override(tmp_path: Path) -> None:
    body = (
        '{% extends "_base.md.j2" %}\n'
        '{% import "_macros.md.j2" as m with context %}\n'
        "{% block header %}\nInnkomstnotat {{ meta.date }}\n{% endblock %}\n"
    )
    path = write(tmp_path, "lokal", body)
    assert validate_template(path) == []
    t = load_template(path)
    assert t.render(t.empty_draft(), {"date": "01.02.2025"}).startswith("Innkomstnotat 01.02.2025")


def test_syntax_error_has_file_and_line(tmp_path: Path) -> None:
    body = '{% extends "_base.md.j2" %}\n{% block header %}\n{% if x %}\n{% endblock %}\n'
    path = write(tmp_path, "syntaks", body)
    p = one(validate_template(path))
    assert (p.file, p.line) == (str(path), BODY_LINE + 3)
    assert "syntax error" in p.message
    assert str(p).startswith(f"{path}:{BODY_LINE + 3}: template syntax error")


def test_undefined_variable_has_file_and_line(tmp_path: Path) -> None:
    body = EXTENDS + "{% block header %}\nHei {{ pasientnavn }}\n{% endblock %}\n"
    path = write(tmp_path, "udefinert", body)
    p = one(validate_template(path))
    assert p.line == BODY_LINE + 2
    assert "undefined variable" in p.message and "pasientnavn" in p.message


def test_unknown_section_in_macro_points_to_the_caller(tmp_path: Path) -> None:
    body = (
        '{% extends "_base.md.j2" %}\n{% import "_macros.md.j2" as m with context %}\n'
        '{% block sections %}\n{{ m.section("anamnese") }}\n{{ m.section("ukjent") }}\n'
        "{% endblock %}\n"
    )
    path = write(tmp_path, "ukjent", body)
    p = validate_template(path)[0]
    assert (p.file, p.line) == (str(path), BODY_LINE + 4)
    assert "ukjent" in p.message and "_macros.md.j2" in p.message


@pytest.mark.parametrize(
    "expr", ["{{ ''.__class__.__mro__ }}", "{{ note.__class__ }}", "{{ 'a' * 100000000 }}"]
)
def test_sandbox_escape_is_unsafe_expression(tmp_path: Path, expr: str) -> None:
    body = '{% extends "_base.md.j2" %}\n{% block header %}\n' + expr + "\n{% endblock %}\n"
    path = write(tmp_path, "sandkasse", body)
    p = one(validate_template(path))
    assert p.line == BODY_LINE + 2 and p.message.startswith("unsafe expression")
    with pytest.raises(TemplateError, match="unsafe expression"):
        load_template(path)


def test_body_that_drops_a_required_section(tmp_path: Path) -> None:
    body = (
        '{% extends "_base.md.j2" %}\n{% import "_macros.md.j2" as m with context %}\n'
        '{% block sections %}\n{{ m.section("anamnese") }}\n{{ m.section("vurdering") }}\n'
        "{% endblock %}\n"
    )
    path = write(tmp_path, "mangler", body)
    p = one(validate_template(path))
    assert (p.file, p.line) == (str(path), line_of(HEADER, "  - id: plan"))
    assert "required section 'plan'" in p.message and "does not render" in p.message


def test_body_in_wrong_order_and_without_disclosure(tmp_path: Path) -> None:
    body = "{{ sections.plan.text }}{{ sections.vurdering.text }}{{ sections.anamnese.text }}\n"
    msgs = " | ".join(p.message for p in validate_template(write(tmp_path, "rekkefolge", body)))
    assert "different order" in msgs
    assert "AI transparency line" in msgs and "extractive marker" in msgs


def test_missing_schema_fields(tmp_path: Path) -> None:
    header = HEADER.replace("title: Testmal\n", "")
    header = header.replace("    instruction: Legens vurdering.\n", "")
    path = write(tmp_path, "skjema", EXTENDS, header)
    problems = validate_template(path)
    msgs = {p.message: p.line for p in problems}
    assert msgs["missing field 'title'"] == 2
    line = line_of(header, "  - id: vurdering")
    assert msgs["missing field 'instruction' in sections[1]"] == line
    assert all(str(p).startswith(f"{path}:{p.line}: ") for p in problems)


def test_missing_standard_section_and_other_schema_errors(tmp_path: Path) -> None:
    header = (
        HEADER.replace('version: "1.0.0"', "version: 1.0")
        .replace("language: nb", "language: se\nrequried: true")
        .replace("  - id: plan\n    title: Plan", "  - id: anamnese\n    title: Plan")
    )
    path = write(tmp_path, "feil", EXTENDS, header)
    msgs = [p.message for p in validate_template(path)]
    text = "\n".join(msgs)
    assert "quoted semantic version" in text
    assert "language 'se' must be 'nb' (bokmål) or 'nn' (nynorsk)" in text
    assert "unknown field 'requried'" in text


def test_missing_standard_section(tmp_path: Path) -> None:
    header = HEADER.replace("  - id: plan\n    title: Plan", "  - id: oppfolging\n    title: Plan")
    p = one(validate_template(write(tmp_path, "standard", EXTENDS, header)))
    assert "standard section 'plan' is missing" in p.message


def test_duplicate_section_id(tmp_path: Path) -> None:
    header = HEADER.replace("  - id: plan\n    title: Plan", "  - id: vurdering\n    title: Plan")
    path = write(tmp_path, "dobbel", EXTENDS, header)
    second = line_of(header, "    title: Plan") - 1  # the second '- id: vurdering'
    text = "\n".join(str(p) for p in validate_template(path))
    assert f"{path}:{second}: duplicate section id 'vurdering' (also section 2)" in text
    assert "standard section 'plan' is missing" in text


def test_id_must_match_file_name_and_title_characters(tmp_path: Path) -> None:
    path = write(tmp_path, "filnavn", EXTENDS, HEADER.replace("id: {id}", "id: annet", 1))
    assert "must match the file name" in one(validate_template(path)).message
    header = HEADER.replace("title: Plan", "title: Plan (2)")
    p = one(validate_template(write(tmp_path, "tittel", EXTENDS, header)))
    assert "may only contain letters" in p.message and p.line == line_of(header, "title: Plan (2)")


def test_yaml_error_and_missing_front_matter(tmp_path: Path) -> None:
    path = tmp_path / "yaml.md.j2"
    path.write_text('---\nid: yaml\nversion: "1.0.0"\ntitle: [oops\nlanguage: nb\n---\nx\n')
    p = one(validate_template(path))
    assert p.message.startswith("YAML error in the front matter") and p.line in (4, 5)
    bare = tmp_path / "bare.md.j2"
    bare.write_text("Anamnese: {{ sections.anamnese.text }}\n", encoding="utf-8")
    assert "no front matter" in one(validate_template(bare)).message
    unclosed = tmp_path / "open.md.j2"
    unclosed.write_text("---\nid: open\n", encoding="utf-8")
    assert "not closed" in one(validate_template(unclosed)).message


def test_missing_file_and_shared_files(tmp_path: Path) -> None:
    assert "file not found" in one(validate_template(tmp_path / "nope.md.j2")).message
    with pytest.raises(TemplateError, match="template file not found"):
        load_template(tmp_path / "nope.md.j2")
    assert validate_template(BUILTIN_DIR / "_base.md.j2") == []
    assert validate_template(BUILTIN_DIR / "_macros.md.j2") == []
    with pytest.raises(TemplateError, match="shared layout"):
        load_template(BUILTIN_DIR / "_base.md.j2")


def test_render_errors_are_template_errors(tmp_path: Path) -> None:
    # valid on the sample draft (one sentence per section), fails on a longer one
    body = (
        '{% extends "_base.md.j2" %}\n{% block header %}\n'
        "{% if sections.anamnese.sentences|length > 3 %}{{ 1 / 0 }}{% endif %}\n{% endblock %}\n"
    )
    t = load_template(write(tmp_path, "senere", body))
    draft = t.empty_draft()
    draft.sections[0].sentences = [Sentence(f"S{i}.") for i in range(5)]
    with pytest.raises(TemplateError, match=r"senere.md.j2:\d+: error while rendering: ZeroDiv"):
        t.render(draft)


# -- lookup ----------------------------------------------------------------------------
def test_unknown_id_names_the_available_ones() -> None:
    with pytest.raises(TemplateError) as exc:
        load_template("kardiologi")
    msg = str(exc.value)
    assert "kardiologi" in msg and "\n" not in msg
    assert all(tid in msg for tid in ALL_IDS)


def test_env_dir_adds_and_overrides_templates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = tmp_path / "sykehus"
    local.mkdir()
    write(local, "lokal", EXTENDS)
    write(local, "ortopedi", EXTENDS)  # same id as a built-in one
    write(local, "odelagt", "{% if %}\n")
    monkeypatch.setenv("SCRIBE_TEMPLATE_DIR", str(local))
    assert template_dirs()[0] == local.resolve() and template_dirs()[-1] == BUILTIN_DIR
    ids = {t.id: t for t in list_templates()}
    assert "lokal" in ids and "odelagt" not in ids
    assert ids["ortopedi"].path.parent == local.resolve() and ids["ortopedi"].title == "Testmal"
    with pytest.raises(TemplateError, match="template directory not found"):
        template_dirs([tmp_path / "finnes-ikke"])


# -- CLI -------------------------------------------------------------------------------
def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="scribe")
    add_templates_parser(parser.add_subparsers(dest="command"))
    return cmd_templates(parser.parse_args(["templates", *argv]))


def test_cli_list_and_show(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("list") == 0
    out = capsys.readouterr().out
    assert all(tid in out for tid in ALL_IDS)
    assert run("show", "psykiatri") == 0
    out = capsys.readouterr().out
    assert "suicidalvurdering: Suicidalvurdering  [required]" in out
    assert run("show", "allmennmedisin-nn", "--sample") == 0
    assert NN["disclosure"] in capsys.readouterr().out
    assert run("show", "kardiologi") == 2
    err = capsys.readouterr().err
    assert err.startswith("scribe: error: unknown note template 'kardiologi'")
    assert err.count("\n") == 1


def test_cli_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("validate") == 0
    assert run("validate", str(BUILTIN_DIR)) == 0
    good = write(tmp_path, "god", EXTENDS)
    assert run("validate", str(good)) == 0
    capsys.readouterr()
    bad = write(tmp_path, "darlig", EXTENDS + "{% block header %}{{ x }}{% endblock %}\n")
    assert run("validate", str(tmp_path)) == 1
    out = capsys.readouterr().out
    assert out.strip() == f"{bad}:{BODY_LINE + 1}: undefined variable: 'x' is undefined"
    assert run("validate", str(tmp_path / "mangler.md.j2")) == 1
    assert "mangler.md.j2:1: file not found" in capsys.readouterr().out


def test_cli_render(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "summarize.draft.extractive", types.ModuleType("summarize.draft.extractive"))
    transcript = tmp_path / "samtale.txt"
    transcript.write_text("Lege: Hva er problemet?\n\nPasient: Hoste i 6 dager.\n")
    assert run("render", "allmennmedisin", "--transcript", str(transcript)) == 0
    out = capsys.readouterr().out
    assert "Anamnese:" in out and NB["disclosure"] in out
    assert run("render", "allmennmedisin", "--transcript", str(tmp_path / "nei.txt")) == 2
    err = capsys.readouterr().err
    assert err.startswith("scribe: error: transcript not found") and err.count("\n") == 1


def test_draft_for_render_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "summarize.draft.extractive", types.ModuleType("summarize.draft.extractive"))
    transcript = tmp_path / "samtale.txt"
    transcript.write_text(
        "Lege: Hva er problemet?\nPasient: Hoste i 6 dager.\nPårørende: Og feber.\n",
        encoding="utf-8",
    )
    t = load_template("psykiatri")
    draft = draft_for_render(t, transcript)
    assert draft.extractive and draft.template_id == "psykiatri"
    first = draft.sections[0]
    assert first.id == "anamnese"
    texts = [s.text for s in first.sentences]
    assert texts == ["Hva er problemet?", "Hoste i 6 dager.", "Og feber."]
    assert [s.evidence for s in first.sentences] == [(0,), (1,), (2,)]
    assert all(not s.sentences for s in draft.sections[1:])
    text = t.render(draft)
    assert text.startswith(NB["extractive_notice"])
    assert "Suicidalvurdering:\nIkke omtalt." in text


def test_render_of_a_bad_draft_is_a_template_error() -> None:
    t = load_template("ortopedi")
    with pytest.raises(TemplateError, match="cannot render this draft"):
        t.render("not a draft")  # type: ignore[arg-type]
    with pytest.raises(TemplateError, match="cannot render this draft"):
        t.render(t.empty_draft(), meta=["x"])  # type: ignore[arg-type]


# -- output form: a section's example and its structured records (issue #16) -------------


def test_every_builtin_template_shows_the_model_an_example_per_main_section() -> None:
    from summarize.draft import lines
    from summarize.draft.lines import Unit
    from summarize.types import Utterance

    for tid in ALL_IDS:
        t = load_template(tid)
        by_id = {s.id: s for s in t.sections}
        assert all(by_id[k].example for k in ("anamnese", "funn", "vurdering", "plan")), tid
        assert by_id["legemidler"].records and by_id["funn"].records == ("measurements",)
        system = lines.build_messages(t, Unit(Utterance(0, "Hei.", speaker="pasient")))[0].content
        assert by_id["vurdering"].example in system


@pytest.mark.parametrize(("example", "word"), [
    ("Du har hatt hoste i en uke.", "'Du'"), ("Jeg henviser til MR.", "'Jeg'"),
    ("Vi tar blodprøver.", "'Vi'"), ("Har hatt feber?", "a question"),
])
def test_an_example_in_spoken_language_is_refused_with_its_line(tmp_path: Path, example: str, word: str) -> None:
    header = HEADER.replace("    instruction: Legens vurdering.\n",
                            f'    instruction: Legens vurdering.\n    example: "{example}"\n')
    problem = one(validate_template(write(tmp_path, "eksempel", EXTENDS, header)))
    assert word in problem.message and "journal style" in problem.message
    assert problem.line == line_of(header, "    example:")


def test_a_kind_of_record_goes_to_one_section_only(tmp_path: Path) -> None:
    header = HEADER.replace("    instruction: Legens vurdering.\n", "    instruction: Legens vurdering.\n"
                            "    records: [medications]\n").replace(
        "    instruction: Videre plan.\n", "    instruction: Videre plan.\n    records: [medications, allergies]\n")
    problem = one(validate_template(write(tmp_path, "poster", EXTENDS, header)))
    assert "'medications'" in problem.message and "two sections" in problem.message
    bad = HEADER.replace("    instruction: Videre plan.\n", "    instruction: Videre plan.\n    records: [doses]\n")
    problem = one(validate_template(write(tmp_path, "poster2", EXTENDS, bad)))
    assert "'medications', 'measurements' or 'allergies'" in problem.message


def test_records_go_to_the_section_the_template_routes_them_to() -> None:
    from summarize.draft.records import Medication, Records, Vital, rendered_lines

    found = Records(medications=[Medication(substance="Metoprolol", dose="50", unit="mg", action="new")],
                    vitals=[Vital(name="BT", value="150/90")])
    ids = ["anamnese", "funn", "vurdering", "legemidler", "plan"]
    default = rendered_lines(found, "lege", ids)
    assert [sid for sid, _ in default] == ["legemidler", "funn"]
    routed = rendered_lines(found, "lege", ids, routes={"medications": "plan", "measurements": "vurdering"})
    assert [sid for sid, _ in routed] == ["plan", "vurdering"]
    assert [x for _, x in routed] == [x for _, x in default]


def test_a_draft_says_it_is_a_draft_and_only_the_approved_note_says_approved() -> None:
    """#17 item 3: the rendered draft must not claim an approval that has not happened."""
    from summarize.consultation.session import Session

    t = load_template("allmennmedisin")
    draft = t.render(synthetic_draft(t))
    assert NB["disclosure"] in draft and "UTKAST" in draft and "ikke godkjent" in draft
    assert "godkjent av" not in draft
    approved = t.render(synthetic_draft(t), {"approved": True})
    assert "gjennomgått og godkjent av behandlende lege." in approved and NB["disclosure"] not in approved
    named = t.render(synthetic_draft(t), {"approved": True, "approved_by": "lege Kari Nordmann"})
    assert "godkjent av lege Kari Nordmann." in named
    # a template cannot claim approval by overriding the fixed wording
    forged = t.render(synthetic_draft(t), {"disclosure": "Godkjent."})
    assert NB["disclosure"] in forged
    nn = load_template("allmennmedisin-nn")
    assert "ikkje godkjent" in nn.render(synthetic_draft(nn))
    assert "godkjent av behandlande lege." in nn.render(synthetic_draft(nn), {"approved": True})
    # the session's approved note carries the approved line
    s = Session(t)
    s.start()
    s.stop()
    s.set_draft(synthetic_draft(t), None)
    for i in range(len(s.flags)):
        s.resolve_flag(i, "accepted")
    note = s.approve()
    assert "gjennomgått og godkjent av behandlende lege." in note.text and "UTKAST" not in note.text


@pytest.mark.parametrize("typed", ["../../etc/passwd", "/etc/passwd", "allmennmedisin.md.j2", "Allmenn medisin",
                                   "x\n\x1b[31mred"])
def test_a_typed_template_is_an_id_never_a_file(typed: str) -> None:
    """#17: what a user types after --template is looked up as an id; it never reads a file."""
    with pytest.raises(TemplateError) as err:
        load_template(typed)
    msg = str(err.value)
    assert "is not a template id" in msg and "\n" not in msg and "\x1b" not in msg
    assert "root:" not in msg  # nothing of the file


def test_the_note_cli_refuses_a_path_as_template(capsys: pytest.CaptureFixture[str]) -> None:
    from app.cli import main

    assert main(["note", "--transcript", "/dev/null", "--template", "../../etc/passwd", "--no-llm"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a template id" in err


@pytest.mark.timeout(60)  # 9^9 nodes if expanded: without the fix this hangs
def test_yaml_aliases_in_the_front_matter_are_refused_not_expanded(tmp_path: Path) -> None:
    """#17 item 5: a billion-laughs front matter hung validation and pack import."""
    from summarize.templates.template import check_template_text
    from summarize.templates.versions import template_id_of

    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True))
    text = f"---\nid: latter\nversion: 1.0.0\n{laughs}---\n{{% extends '_base.md.j2' %}}\n"
    tpl, problems = check_template_text(text, tmp_path / "latter.md.j2")
    assert tpl is None and any("aliases" in p.message for p in problems)
    assert template_id_of(text) is None  # the pack importer's reader refuses it too


@pytest.mark.timeout(120)
@pytest.mark.parametrize("body, problem", [
    # nested loops: 10^10 iterations, no output
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "too long to render"),
    # loops over a long string, nested
    ("{% set s = 'x' * 90000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}", "too long to render"),
    # output of gigabytes, a little at a time
    ("{% set s = 'x' * 90000 %}{% for i in range(100000) %}{{ s }}{% endfor %}", "too long (over"),
])
def test_a_template_that_would_hang_or_fill_memory_is_stopped(tmp_path: Path, body: str, problem: str) -> None:
    """#17 item 5: such templates hung validation and import, or allocated ~2 GB per render."""
    from summarize.templates.template import check_template_text

    base = (BUILTIN_DIR / "allmennmedisin.md.j2").read_text(encoding="utf-8")
    text = base.replace("id: allmennmedisin", "id: tung") + "\n{% block footer %}" + body + "{{ super() }}{% endblock %}\n"
    tpl, problems = check_template_text(text, tmp_path / "tung.md.j2", [BUILTIN_DIR])
    assert tpl is None and any(problem in p.message for p in problems), [p.message for p in problems]
