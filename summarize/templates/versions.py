"""A template's id, version and change log as written in its text: semantic versions
(compare, bump) and edits of the front matter that keep the rest of the text as it was."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from summarize.errors import TemplateError
from summarize.templates.front_matter import FrontMatterLoader, front_matter_yaml

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)
_TEMPLATE_ID = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")


# -- versions -------------------------------------------------------------------------------
def _parse_version(version: str) -> tuple[int, int, int, str | None]:
    m = _SEMVER.match(version.strip()) if isinstance(version, str) else None
    if m is None:
        raise TemplateError(
            f'invalid template version {version!r}: expected "MAJOR.MINOR.PATCH", e.g. "1.0.0"'
        )
    return int(m[1]), int(m[2]), int(m[3]), m[4]


def version_key(version: str) -> tuple[int, int, int, int, str]:
    """A sort key for semantic versions (a pre-release sorts before its release)."""
    major, minor, patch, pre = _parse_version(version)
    return major, minor, patch, 0 if pre else 1, pre or ""


def bump_version(version: str) -> str:
    """The next patch version: ``"1.2.3"`` → ``"1.2.4"``; a pre-release ``"1.3.0-rc.1"``
    → ``"1.3.0"`` (its release). Raises :class:`TemplateError` for an invalid version."""
    major, minor, patch, pre = _parse_version(version)
    return f"{major}.{minor}.{patch}" if pre else f"{major}.{minor}.{patch + 1}"


# -- front matter text ------------------------------------------------------------------------
def _normalize(text: str) -> str:
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _front_matter(text: str) -> tuple[int, int] | None:
    """(start, end) character offsets of the YAML between the '---' lines, or None."""
    if not text.startswith("---"):
        return None
    first = text.find("\n")
    if first < 0 or text[:first].strip() != "---":
        return None
    pos = first + 1
    while pos <= len(text):
        nl = text.find("\n", pos)
        line = text[pos:] if nl < 0 else text[pos:nl]
        if line.rstrip() in ("---", "..."):
            return first + 1, pos
        if nl < 0:
            return None
        pos = nl + 1
    return None


def _front_matter_data(text: str) -> dict[str, Any] | None:
    span = _front_matter(_normalize(text))
    if span is None:
        return None
    try:
        data = front_matter_yaml(_normalize(text)[span[0] : span[1]])
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def template_id_of(text: str) -> str | None:
    """The ``id`` declared in the front matter, when it is a valid template id."""
    data = _front_matter_data(text)
    tid = data.get("id") if data else None
    return tid.strip() if isinstance(tid, str) and _TEMPLATE_ID.match(tid.strip()) else None


def version_of(text: str) -> str | None:
    """The ``version`` declared in the front matter, when it is a valid semantic version."""
    data = _front_matter_data(text)
    v = data.get("version") if data else None
    return v.strip() if isinstance(v, str) and _SEMVER.match(v.strip()) else None


def _file_version(path: Path) -> str | None:
    try:
        return version_of(path.read_bytes().decode("utf-8-sig"))
    except (OSError, UnicodeDecodeError):
        return None


def _top_level(text: str, key: str) -> tuple[int, int, yaml.Node | None] | None:
    """Where the top-level field ``key`` is (key start, value end) as text offsets."""
    span = _front_matter(text)
    if span is None:
        return None
    try:
        node = yaml.compose(text[span[0] : span[1]], Loader=FrontMatterLoader)
    except yaml.YAMLError:
        return None
    if not isinstance(node, yaml.MappingNode):
        return None
    for k, v in node.value:
        if getattr(k, "value", None) == key:
            return span[0] + k.start_mark.index, span[0] + v.end_mark.index, v
    return None


def set_version(text: str, version: str) -> str:
    """``text`` with the front matter's ``version`` set to ``version`` (formatting and
    comments elsewhere kept). Raises :class:`TemplateError`."""
    _parse_version(version)
    text = _normalize(text)
    try:
        span = _front_matter(text)
        found = _top_level(text, "version")
    except yaml.YAMLError:
        raise TemplateError("cannot set the version: the front matter is not valid YAML") from None
    if span is None or found is None or found[2] is None:
        raise TemplateError("cannot set the version: the front matter has no 'version' field")
    node = found[2]
    start, end = span[0] + node.start_mark.index, span[0] + node.end_mark.index
    return text[:start] + f'"{version}"' + text[end:]


def _change_line(entry: Mapping[str, str]) -> str:
    return "  - {version: %s, date: %s, note: %s}" % tuple(  # noqa: UP031
        json.dumps(entry[k], ensure_ascii=False) for k in ("version", "date", "note")
    )


def _with_changes(text: str, changes: Sequence[Mapping[str, str]]) -> str:
    """``text`` with the ``changes:`` log replaced by ``changes`` (or added at the end of
    the front matter)."""
    block = "changes:\n" + "\n".join(_change_line(c) for c in changes)
    span = _front_matter(text)
    if span is None:
        raise TemplateError("cannot record the change: the template has no front matter")
    found = _top_level(text, "changes")
    if found is None:
        head = text[: span[1]]
        if not head.endswith("\n"):
            head += "\n"
        return head + block + "\n" + text[span[1] :]
    start, end, _ = found
    region = text[start:end].split("\n")
    tail: list[str] = []
    while len(region) > 1 and (not region[-1].strip() or region[-1].lstrip().startswith("#")):
        tail.insert(0, region.pop())
    rest = "\n".join(tail)
    return text[:start] + block + ("\n" + rest if tail else "") + text[end:]
