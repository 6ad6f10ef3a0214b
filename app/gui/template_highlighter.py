"""Syntax highlighting of a note template in the template editor: the YAML front matter and
the Jinja2 body."""

from __future__ import annotations

from PySide6.QtCore import QRegularExpression
from PySide6.QtGui import QColor, QFont, QSyntaxHighlighter, QTextCharFormat, QTextDocument


def _fmt(color: str, *, bold: bool = False, italic: bool = False) -> QTextCharFormat:
    f = QTextCharFormat()
    f.setForeground(QColor(color))
    if bold:
        f.setFontWeight(QFont.Weight.Bold)
    f.setFontItalic(italic)
    return f


class TemplateHighlighter(QSyntaxHighlighter):
    """YAML front matter (keys, strings, comments) and the Jinja2 body
    (``{{ }}``, ``{% %}``, ``{# #}``, also multi-line comments)."""

    NONE, FRONT, BODY, COMMENT = -1, 1, 2, 3

    def __init__(self, document: QTextDocument) -> None:
        super().__init__(document)
        self.formats = {
            "marker": _fmt("#7a7a7a", bold=True),
            "key": _fmt("#1f4e9c", bold=True),
            "dash": _fmt("#1f4e9c"),
            "string": _fmt("#2e7d32"),
            "comment": _fmt("#8a8a8a", italic=True),
            "expr": _fmt("#7b1fa2"),
            "tag": _fmt("#b35900", bold=True),
            "jcomment": _fmt("#8a8a8a", italic=True),
        }
        self._key = QRegularExpression(r"^\s*(?:-\s+)?([A-Za-z_][\w-]*)\s*:(?=\s|$)")
        self._dash = QRegularExpression(r"^\s*(-)(?=\s)")
        self._string = QRegularExpression(r"\"(?:[^\"\\]|\\.)*\"?|'(?:[^']|'')*'?")

    def highlightBlock(self, text: str) -> None:  # noqa: N802 (Qt override)
        prev = self.previousBlockState()
        if prev == self.NONE:
            if text.strip() == "---":
                self.setFormat(0, len(text), self.formats["marker"])
                self.setCurrentBlockState(self.FRONT)
                return
            prev = self.BODY
        if prev == self.FRONT:
            if text.rstrip() in ("---", "..."):
                self.setFormat(0, len(text), self.formats["marker"])
                self.setCurrentBlockState(self.BODY)
            else:
                self._yaml(text)
                self.setCurrentBlockState(self.FRONT)
            return
        self.setCurrentBlockState(self._jinja(text, prev == self.COMMENT))

    def _yaml(self, text: str) -> None:
        strings: list[tuple[int, int]] = []
        it = self._string.globalMatch(text)
        while it.hasNext():
            m = it.next()
            strings.append((m.capturedStart(), m.capturedEnd()))
            self.setFormat(m.capturedStart(), m.capturedLength(), self.formats["string"])
        m = self._dash.match(text)
        if m.hasMatch():
            self.setFormat(m.capturedStart(1), 1, self.formats["dash"])
        m = self._key.match(text)
        if m.hasMatch():
            self.setFormat(m.capturedStart(1), m.capturedLength(1), self.formats["key"])
        for i, ch in enumerate(text):
            if ch == "#" and (i == 0 or text[i - 1].isspace()):
                if not any(a <= i < b for a, b in strings):
                    self.setFormat(i, len(text) - i, self.formats["comment"])
                    break

    def _jinja(self, text: str, in_comment: bool) -> int:
        """Highlight one body line; the state for the next line."""
        pos = 0
        if in_comment:
            end = text.find("#}")
            if end < 0:
                self.setFormat(0, len(text), self.formats["jcomment"])
                return self.COMMENT
            self.setFormat(0, end + 2, self.formats["jcomment"])
            pos = end + 2
        while True:
            starts = [(text.find(o, pos), o) for o in ("{{", "{%", "{#")]
            starts = [(i, o) for i, o in starts if i >= 0]
            if not starts:
                return self.BODY
            start, opener = min(starts)
            closer = {"{{": "}}", "{%": "%}", "{#": "#}"}[opener]
            end = text.find(closer, start + 2)
            if opener == "{#":
                if end < 0:
                    self.setFormat(start, len(text) - start, self.formats["jcomment"])
                    return self.COMMENT
                self.setFormat(start, end + 2 - start, self.formats["jcomment"])
            else:
                stop = len(text) if end < 0 else end + 2
                kind = "expr" if opener == "{{" else "tag"
                self.setFormat(start, stop - start, self.formats[kind])
                it = self._string.globalMatch(text[start:stop])
                while it.hasNext():
                    m = it.next()
                    self.setFormat(start + m.capturedStart(), m.capturedLength(),
                                   self.formats["string"])
                if end < 0:
                    return self.BODY
            pos = end + 2

