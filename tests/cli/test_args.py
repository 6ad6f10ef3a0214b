"""#17: a wrong command line is one line on stderr with exit 2 (argparse alone prints the
usage first), and numbers such as --speed must be finite and above 0."""

from __future__ import annotations

import pytest

from app.cli import main


@pytest.mark.parametrize("argv, pattern", [
    (["no-such-command"], "invalid choice"),
    (["note"], "required"),
    (["note", "--transcript", "x.txt"], "--template"),
    (["transcribe", "--beam-size", "five", "x.wav"], "invalid int value"),
    (["app", "--replay", "x.flac", "--speed", "nan"], "finite number above 0"),
    (["app", "--replay", "x.flac", "--speed", "inf"], "finite number above 0"),
    (["app", "--replay", "x.flac", "--speed", "0"], "finite number above 0"),
    (["app", "--replay", "x.flac", "--speed", "fast"], "is not a number"),
    (["bench", "models", "--dataset", "d", "--speed", "-1"], "finite number above 0"),
])
def test_a_wrong_command_line_is_one_line(argv: list[str], pattern: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("scribe: error: ") and pattern in lines[0], captured.err
    assert "usage:" not in captured.err and captured.out == ""
    assert "--help" in lines[0]  # where the usage is


def test_a_file_name_with_control_characters_is_escaped_in_the_error(tmp_path, capsys) -> None:
    """A newline or a terminal escape sequence in a file name must not split the error line
    or recolour the terminal."""
    name = str(tmp_path / "opptak\n\x1b[2Jslettet.wav")
    assert main(["transcribe", name]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err and "\\x1b[2J" in err
    assert main(["note", "--transcript", name, "--template", "allmennmedisin", "--no-llm"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err
