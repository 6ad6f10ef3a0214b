"""Saving edited templates (validation first, version bump, change log, atomic write) and
template packs (export → import, refusals, all or nothing). Synthetic template text only."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import pytest
import yaml

from summarize.errors import TemplateError
from summarize.templates.discovery import BUILTIN_DIR
from summarize.templates.pack import MANIFEST, PACK_FORMAT, export_pack
from summarize.templates.pack_import import import_pack
from summarize.templates.saving import TemplateInvalidError, save_template, validate_text
from summarize.templates.template import load_template, validate_template
from summarize.templates.versions import bump_version, set_version, template_id_of, version_of

TODAY = dt.date(2026, 11, 24)
NAME = "allmennmedisin.md.j2"
SHARED = ("_base.md.j2", "_macros.md.j2")


@pytest.fixture(autouse=True)
def _no_env_dirs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCRIBE_TEMPLATE_DIR", raising=False)


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """A department's template folder: allmennmedisin plus the shared layout files."""
    d = tmp_path / "avdeling"
    d.mkdir()
    for name in (NAME, *SHARED):
        shutil.copy(BUILTIN_DIR / name, d / name)
    return d


def source(folder: Path, name: str = NAME) -> str:
    return (folder / name).read_text(encoding="utf-8")


def snapshot(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


def with_header(text: str, header: str) -> str:
    """The template with a header block (a line of Jinja) added to its body."""
    return text.rstrip("\n") + "\n{% block header %}\n" + header + "\n{% endblock %}\n"


# -- versions --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("old", "new"),
    [("1.2.3", "1.2.4"), ("0.0.9", "0.0.10"), ("2.0.0+build.5", "2.0.1"), ("1.3.0-rc.1", "1.3.0")],
)
def test_bump_version(old: str, new: str) -> None:
    assert bump_version(old) == new


@pytest.mark.parametrize("bad", ["1.2", "v1.2.3", "01.2.3", "", "1.2.3.4"])
def test_bump_invalid_version_is_a_clear_template_error(bad: str) -> None:
    with pytest.raises(TemplateError, match="invalid template version") as exc:
        bump_version(bad)
    assert "\n" not in str(exc.value) and "MAJOR.MINOR.PATCH" in str(exc.value)


def test_set_version_keeps_the_rest_of_the_text(folder: Path) -> None:
    text = source(folder)
    new = set_version(text, "1.4.0")
    assert version_of(new) == "1.4.0" and template_id_of(new) == "allmennmedisin"
    assert new.replace('version: "1.4.0"', 'version: "1.0.0"') == text


# -- validate_text ---------------------------------------------------------------------------
def test_validate_text_of_a_valid_template_resolves_shared_files(folder: Path) -> None:
    assert validate_text(source(folder), NAME, folder) == []
    # the same text in a folder without _base/_macros still finds the built-in ones
    assert validate_text(source(folder), NAME, folder.parent) == []


def test_validate_text_syntax_error_has_file_and_line(folder: Path) -> None:
    text = with_header(source(folder), "{% if meta.extractive %}Uttrekk")
    problems = validate_text(text, NAME, folder)
    assert len(problems) == 1
    p = problems[0]
    assert p.file == str(folder / NAME)
    assert p.line == text.count("\n")  # the unclosed block ends at the last line
    assert "syntax error" in p.message
    assert (folder / NAME).read_text(encoding="utf-8") == source(folder)  # nothing written


def test_validate_text_undefined_variable_and_sandbox_escape(folder: Path) -> None:
    text = with_header(source(folder), "Pasient: {{ pasientnavn }}")
    [p] = validate_text(text, NAME, folder)
    assert p.line == line_of(text, "Pasient:") and "undefined variable" in p.message
    assert "pasientnavn" in p.message

    text = with_header(source(folder), "{{ ''.__class__.__mro__ }}")
    [p] = validate_text(text, NAME, folder)
    assert str(p) == f"{folder / NAME}:{line_of(text, '__mro__')}: {p.message}"
    assert p.message.startswith("unsafe expression")


def test_validate_text_missing_required_section(folder: Path) -> None:
    text = source(folder).replace("    required: true\n    style: lines\n", "    style: lines\n")
    problems = validate_text(text, NAME, folder)
    assert [p.message for p in problems] == ["standard section 'plan' must have required: true"]
    assert problems[0].line == line_of(text, "  - id: plan")


def test_validate_text_id_must_match_the_name(folder: Path) -> None:
    [p] = validate_text(source(folder), "annen.md.j2", folder)
    assert "must match the file name" in p.message


def test_change_log_is_part_of_the_schema(folder: Path) -> None:
    text = source(folder).replace(
        "sections:\n",
        'changes:\n  - {version: "1.0.0", date: 2026-01-02, note: Første versjon}\nsections:\n',
    )
    assert validate_text(text, NAME, folder) == []
    typo = text.replace("note: Første", "notat: Første")
    msgs = [p.message for p in validate_text(typo, NAME, folder)]
    assert "missing field 'note' in changes[0]" in msgs
    assert "unknown field 'changes[0].notat' (allowed: version, date, note)" in msgs
    bad_date = text.replace("date: 2026-01-02", "date: i går")
    assert "must be a date" in validate_text(bad_date, NAME, folder)[0].message


# -- save_template ---------------------------------------------------------------------------
def test_save_invalid_writes_nothing(folder: Path) -> None:
    before = snapshot(folder)
    text = with_header(source(folder), "{% if x %}")
    with pytest.raises(TemplateInvalidError) as exc:
        save_template(text, folder, change_note="La til overskrift", today=TODAY)
    msg = str(exc.value)
    assert msg.startswith(f"not saved: {NAME}:") and "syntax error" in msg and "\n" not in msg
    assert exc.value.problems and exc.value.problems[0].line == text.count("\n")
    assert snapshot(folder) == before  # same bytes, no stray temporary files


def test_save_needs_a_change_note_and_writes_nothing(folder: Path) -> None:
    before = snapshot(folder)
    with pytest.raises(TemplateError, match="change note is required"):
        save_template(source(folder), folder, change_note="  \n ", today=TODAY)
    assert snapshot(folder) == before


def test_save_bumps_version_and_appends_the_change_note(folder: Path) -> None:
    text = source(folder).replace("Ingen diagnoser som ikke er sagt.",
                                  "Ingen diagnoser som ikke er sagt av legen.")
    saved = save_template(text, folder, change_note='Presisert "sagt av legen"\n', today=TODAY)
    assert (saved.id, saved.old_version, saved.new_version) == ("allmennmedisin", "1.0.0", "1.0.1")
    assert saved.path == folder / NAME
    on_disk = source(folder)
    assert on_disk == saved.text and "sagt av legen" in on_disk
    assert validate_template(saved.path) == []
    meta = yaml.safe_load(on_disk.split("---\n")[1])
    assert meta["version"] == "1.0.1"
    assert meta["changes"] == [
        {"version": "1.0.1", "date": "2026-11-24", "note": 'Presisert "sagt av legen"'}
    ]
    assert load_template(saved.path).version == "1.0.1"
    assert sorted(p.name for p in folder.iterdir()) == sorted([NAME, *SHARED])  # no temp files

    again = save_template(on_disk, folder, change_note="Andre endring", today=TODAY)
    assert (again.old_version, again.new_version) == ("1.0.1", "1.0.2")
    meta = yaml.safe_load(source(folder).split("---\n")[1])
    assert [c["version"] for c in meta["changes"]] == ["1.0.1", "1.0.2"]
    assert meta["changes"][1]["note"] == "Andre endring"
    assert source(folder).count("changes:") == 1


def test_save_keeps_a_version_raised_by_hand_and_refuses_a_lower_one(folder: Path) -> None:
    minor = set_version(source(folder), "1.1.0")
    saved = save_template(minor, folder, change_note="Ny seksjon", today=TODAY)
    assert saved.new_version == "1.1.0" and version_of(source(folder)) == "1.1.0"
    before = snapshot(folder)
    with pytest.raises(TemplateError, match="lower than the saved version 1.1.0"):
        save_template(set_version(minor, "1.0.5"), folder, change_note="x", today=TODAY)
    assert snapshot(folder) == before


def test_save_new_template_and_previous_version(folder: Path) -> None:
    text = (BUILTIN_DIR / "ortopedi.md.j2").read_text(encoding="utf-8")
    saved = save_template(text, folder, change_note="Lokal kopi", previous_version="1.0.0",
                          today=TODAY)
    assert saved.path == folder / "ortopedi.md.j2" and saved.new_version == "1.0.1"
    assert saved.old_version == "1.0.0"
    fresh = save_template(text.replace("id: ortopedi", "id: ortopedi-lokal"), folder.parent,
                          change_note="Ny mal", today=TODAY)
    assert fresh.new_version == "1.0.0" and fresh.old_version is None  # nothing replaced


def test_atomic_write_leaves_no_temporary_files_on_failure(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import summarize.templates.saving as tp

    before = snapshot(folder)

    def broken_replace(src: str, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tp.os, "replace", broken_replace)
    with pytest.raises(TemplateError, match="cannot write .*No space left"):
        save_template(source(folder), folder, change_note="x", today=TODAY)
    assert snapshot(folder) == before


# -- packs -----------------------------------------------------------------------------------
def test_export_import_round_trip(folder: Path, tmp_path: Path) -> None:
    pack = tmp_path / "ut" / "pakke.zip"
    entries = export_pack(["allmennmedisin"], pack, directories=[folder])
    assert [e.name for e in entries] == [*SHARED, NAME]
    with zipfile.ZipFile(pack) as zf:
        assert sorted(zf.namelist()) == sorted([MANIFEST, *SHARED, NAME])
        manifest = json.loads(zf.read(MANIFEST))
        for row in manifest["files"]:
            assert row["sha256"] == hashlib.sha256(zf.read(row["name"])).hexdigest()
    assert manifest["format"] == PACK_FORMAT and manifest["format_version"] == 1
    assert dt.datetime.fromisoformat(manifest["created"]).tzinfo is not None
    row = next(r for r in manifest["files"] if r["name"] == NAME)
    assert (row["id"], row["version"], row["kind"]) == ("allmennmedisin", "1.0.0", "template")
    assert {r["name"]: r["kind"] for r in manifest["files"]}["_base.md.j2"] == "shared"

    region = tmp_path / "region"
    results = import_pack(pack, region)
    assert {(r.name, r.action) for r in results} == {(n, "added") for n in (*SHARED, NAME)}
    assert snapshot(region) == {n: (folder / n).read_bytes() for n in (*SHARED, NAME)}
    assert validate_template(region / NAME) == []

    # importing again: equal version and identical shared files are skipped
    again = {r.name: r for r in import_pack(pack, region)}
    assert all(not r.written for r in again.values())
    assert "newer than or equal" in again[NAME].reason and again[NAME].previous_version == "1.0.0"


def test_export_takes_only_shared_files_of_its_own_folder(folder: Path, tmp_path: Path) -> None:
    lone = tmp_path / "uten-felles"
    lone.mkdir()
    shutil.copy(BUILTIN_DIR / NAME, lone / NAME)  # uses the built-in _base/_macros
    entries = export_pack([lone / NAME], tmp_path / "p.zip")
    assert [e.name for e in entries] == [NAME]


def test_export_refuses_an_invalid_template(folder: Path, tmp_path: Path) -> None:
    (folder / NAME).write_text(with_header(source(folder), "{{ ukjent }}"), encoding="utf-8")
    with pytest.raises(TemplateError, match=r"not exported \(invalid\).*undefined variable"):
        export_pack(["allmennmedisin"], tmp_path / "p.zip", directories=[folder])
    assert not (tmp_path / "p.zip").exists()
    with pytest.raises(TemplateError, match="unknown note template 'kardiologi'"):
        export_pack(["kardiologi"], tmp_path / "p.zip", directories=[folder])


def make_pack(path: Path, files: dict[str, bytes], manifest: dict | None = None,
              extra: dict[str, bytes] | None = None) -> Path:
    """A pack written by hand (to break it)."""
    rows = [{"name": n, "kind": "shared" if n.startswith("_") else "template",
             "id": n.removesuffix(".md.j2"), "version": version_of(d.decode()),
             "sha256": hashlib.sha256(d).hexdigest()} for n, d in files.items()]
    data = manifest or {"format": PACK_FORMAT, "format_version": 1, "created": "x",
                        "files": rows}
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(MANIFEST, json.dumps(data))
        for n, d in {**files, **(extra or {})}.items():
            zf.writestr(n, d)
    return path


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../evil.md.j2", "path traversal"),
        ("/etc/evil.md.j2", "path traversal"),
        ("C:/evil.md.j2", "path traversal"),
        ("sub/evil.md.j2", "folders are not allowed"),
        ("evil.py", "not a template file"),
        ("Evil Name.md.j2", "invalid template file name"),
    ],
)
def test_import_refuses_unsafe_names(tmp_path: Path, name: str, why: str) -> None:
    good = (BUILTIN_DIR / NAME).read_bytes()
    pack = make_pack(tmp_path / "p.zip", {NAME: good}, extra={name: b"x"})
    target = tmp_path / "region"
    with pytest.raises(TemplateError, match=why) as exc:
        import_pack(pack, target)
    assert "p.zip" in str(exc.value) and "\n" not in str(exc.value)
    assert not target.exists() and not (tmp_path / "evil.md.j2").exists()


def test_import_refuses_files_missing_from_the_manifest_and_bad_checksums(tmp_path: Path) -> None:
    good = (BUILTIN_DIR / NAME).read_bytes()
    region = tmp_path / "region"
    pack = make_pack(tmp_path / "a.zip", {NAME: good}, extra={"ekstra.md.j2": good})
    with pytest.raises(TemplateError, match="'ekstra.md.j2' is not listed in manifest.json"):
        import_pack(pack, region)

    pack = make_pack(tmp_path / "b.zip", {NAME: good})
    with zipfile.ZipFile(pack) as zf:
        manifest = zf.read(MANIFEST)
    with zipfile.ZipFile(pack, "w") as zf:  # same manifest, content changed afterwards
        zf.writestr(MANIFEST, manifest)
        zf.writestr(NAME, good.replace(b"Anamnese", b"Sykehistorie"))
    with pytest.raises(TemplateError, match=f"'{NAME}' checksum mismatch"):
        import_pack(pack, region)
    assert not region.exists()


def test_import_refuses_a_corrupt_zip_and_a_bad_manifest(tmp_path: Path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(TemplateError, match="junk.zip: not a valid template pack"):
        import_pack(junk, tmp_path / "region")

    good = (BUILTIN_DIR / NAME).read_bytes()
    pack = make_pack(tmp_path / "p.zip", {NAME: good})
    data = bytearray(pack.read_bytes())
    start = data.index(b"Anamnese")  # damage the compressed member (CRC no longer matches)
    data[start:start + 8] = b"XXXXXXXX"
    pack.write_bytes(bytes(data))
    with pytest.raises(TemplateError, match="corrupt"):
        import_pack(pack, tmp_path / "region")

    other = make_pack(tmp_path / "m.zip", {NAME: good}, manifest={"format": "noe annet"})
    with pytest.raises(TemplateError, match="manifest.json is invalid"):
        import_pack(other, tmp_path / "region")
    assert not (tmp_path / "region").exists()


def test_import_skips_lower_or_equal_versions_unless_overwrite(
    folder: Path, tmp_path: Path
) -> None:
    pack = tmp_path / "p.zip"
    export_pack(["allmennmedisin"], pack, directories=[folder])  # 1.0.0
    region = tmp_path / "region"
    region.mkdir()
    newer = set_version(source(folder), "1.2.0")
    (region / NAME).write_text(newer, encoding="utf-8")

    [skipped] = [r for r in import_pack(pack, region) if r.name == NAME]
    assert skipped.action == "skipped" and skipped.previous_version == "1.2.0"
    assert "installed version 1.2.0 is newer than or equal to 1.0.0" in skipped.reason
    assert version_of(source(region)) == "1.2.0"

    [forced] = [r for r in import_pack(pack, region, overwrite_newer=True) if r.name == NAME]
    assert forced.action == "replaced" and version_of(source(region)) == "1.0.0"

    (region / NAME).write_text(set_version(source(folder), "0.9.0"), encoding="utf-8")
    [updated] = [r for r in import_pack(pack, region) if r.name == NAME]
    assert updated.action == "updated" and version_of(source(region)) == "1.0.0"


def test_import_is_all_or_nothing_when_one_template_is_invalid(
    folder: Path, tmp_path: Path
) -> None:
    good = (BUILTIN_DIR / "ortopedi.md.j2").read_bytes()
    bad = with_header(source(folder), "{{ ''.__class__.__mro__ }}").encode()
    base = (BUILTIN_DIR / "_base.md.j2").read_bytes()
    pack = make_pack(tmp_path / "p.zip", {"ortopedi.md.j2": good, NAME: bad, "_base.md.j2": base})
    region = tmp_path / "region"
    region.mkdir()
    with pytest.raises(TemplateError) as exc:
        import_pack(pack, region)
    msg = str(exc.value)
    assert msg.startswith(f"p.zip: {NAME}:") and "unsafe expression" in msg
    assert "nothing was imported" in msg
    assert list(region.iterdir()) == []


def test_import_keeps_a_different_shared_file_unless_overwrite(
    folder: Path, tmp_path: Path
) -> None:
    pack = tmp_path / "p.zip"
    export_pack(["allmennmedisin"], pack, directories=[folder])
    region = tmp_path / "region"
    region.mkdir()
    local_base = (BUILTIN_DIR / "_base.md.j2").read_text(encoding="utf-8").replace(
        "{% block header %}{% endblock %}", "{% block header %}Lokal{% endblock %}")
    (region / "_base.md.j2").write_text(local_base, encoding="utf-8")
    results = {r.name: r for r in import_pack(pack, region)}
    assert results["_base.md.j2"].action == "skipped" and "kept" in results["_base.md.j2"].reason
    assert results[NAME].action == "added"
    assert (region / "_base.md.j2").read_text(encoding="utf-8") == local_base
    assert load_template(region / NAME).render_sample().startswith("Lokal")


def test_replacing_a_shared_file_must_not_break_installed_templates(
    folder: Path, tmp_path: Path
) -> None:
    region = tmp_path / "region"
    region.mkdir()
    for name in SHARED:
        shutil.copy(BUILTIN_DIR / name, region / name)
    # an installed template that overrides a block the pack's _base no longer has
    installed = with_header((BUILTIN_DIR / "ortopedi.md.j2").read_text(encoding="utf-8"),
                            "{{ m.extractive_notice() }}")
    installed = installed.replace('{% extends "_base.md.j2" %}',
                                  '{% extends "_base.md.j2" %}\n'
                                  '{% import "_macros.md.j2" as m with context %}')
    (region / "ortopedi.md.j2").write_text(installed, encoding="utf-8")
    assert validate_template(region / "ortopedi.md.j2") == []
    changed = (BUILTIN_DIR / "_macros.md.j2").read_text(encoding="utf-8").replace(
        "{% macro extractive_notice() %}", "{% macro extractive_marker() %}").replace(
        "{{ m.extractive_notice() }}", "{{ m.extractive_marker() }}")
    (folder / "_macros.md.j2").write_text(changed, encoding="utf-8")
    base = (folder / "_base.md.j2").read_text(encoding="utf-8")
    (folder / "_base.md.j2").write_text(
        base.replace("m.extractive_notice()", "m.extractive_marker()"), encoding="utf-8")
    pack = tmp_path / "p.zip"
    export_pack(["allmennmedisin"], pack, directories=[folder])
    before = snapshot(region)
    with pytest.raises(TemplateError, match="would break the installed template ortopedi"):
        import_pack(pack, region, overwrite_newer=True)
    assert snapshot(region) == before
