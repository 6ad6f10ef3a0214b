"""Reading a template's front matter: splitting it from the body, parsing the YAML (no
aliases), validating it against the schema, and every problem with its line in the file."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from summarize.templates.discovery import SUFFIX
from summarize.templates.schema import STANDARD_SECTIONS, ChangeMeta, SectionMeta, TemplateMeta, TemplateProblem


@dataclass(slots=True)
class _FrontMatter:
    yaml_text: str
    end_line: int | None  # 1-based line of the closing '---'; None: not closed


def _split_front_matter(text: str) -> _FrontMatter | None:
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return None
    for i in range(1, len(lines)):
        if lines[i].rstrip() in ("---", "..."):
            return _FrontMatter("\n".join(lines[1:i]) + "\n", i + 1)
    return _FrontMatter("\n".join(lines[1:]) + "\n", None)


def _child(node: yaml.Node | None, key: Any) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        return next((v for k, v in node.value if getattr(k, "value", None) == key), None)
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
        return node.value[key]
    return None


def _yaml_line(node: yaml.Node | None, loc: Sequence[Any]) -> int:
    """The 1-based file line of the YAML node at ``loc`` (or its deepest existing parent)."""
    if node is None:
        return 1
    for key in loc:
        child = _child(node, key)
        if child is None:
            break
        node = child
    return node.start_mark.line + 2  # +1: 1-based; +1: the opening '---'


def _key_line(node: yaml.Node | None, loc: Sequence[Any]) -> int:
    """The line of the mapping key at ``loc`` (e.g. an unknown field)."""
    parent = node
    for key in loc[:-1]:
        parent = _child(parent, key)
    if isinstance(parent, yaml.MappingNode) and loc:
        for k, _ in parent.value:
            if getattr(k, "value", None) == loc[-1]:
                return k.start_mark.line + 2
    return _yaml_line(node, loc)


class FrontMatterLoader(yaml.SafeLoader):
    """YAML for a template's front matter: safe types, and no aliases (``*name``). Plain
    metadata never needs them, and nested aliases ("billion laughs") expand a few hundred
    bytes into billions of nodes: validation and pack import would hang."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in the front matter; write the value out",
                event.start_mark)
        return super().compose_node(parent, index)  # type: ignore[no-any-return]


def front_matter_yaml(text: str) -> Any:
    """``text`` parsed with :class:`FrontMatterLoader`."""
    return yaml.load(text, Loader=FrontMatterLoader)  # noqa: S506 (a SafeLoader)


def _duplicate_keys(node: yaml.Node | None, file: str) -> list[TemplateProblem]:
    out: list[TemplateProblem] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for k, v in node.value:
            key = getattr(k, "value", None)
            if key in seen:
                out.append(
                    TemplateProblem(
                        file,
                        k.start_mark.line + 2,
                        f"field {key!r} is given twice (the second would win)",
                    )
                )
            seen.add(key)
            out.extend(_duplicate_keys(v, file))
    elif isinstance(node, yaml.SequenceNode):
        for v in node.value:
            out.extend(_duplicate_keys(v, file))
    return out


def _loc_text(loc: Sequence[Any]) -> str:
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _schema_problems(
    err: ValidationError, node: yaml.Node | None, file: str
) -> list[TemplateProblem]:
    allowed_template = ", ".join(TemplateMeta.model_fields)
    allowed_section = ", ".join(SectionMeta.model_fields)
    allowed_change = ", ".join(ChangeMeta.model_fields)
    out = []
    for e in err.errors():
        loc = tuple(e["loc"])
        where = _loc_text(loc)
        kind = e["type"]
        if kind == "missing":
            parent = _loc_text(loc[:-1])
            msg = f"missing field {loc[-1]!r}" + (f" in {parent}" if parent else "")
            line = _yaml_line(node, loc[:-1])
        elif kind == "extra_forbidden":
            allowed = allowed_template
            if len(loc) > 1 and loc[0] == "sections":
                allowed = allowed_section
            elif len(loc) > 1 and loc[0] == "changes":
                allowed = allowed_change
            msg = f"unknown field {where!r} (allowed: {allowed})"
            line = _key_line(node, loc)
        else:
            text = str(e["msg"]).removeprefix("Value error, ")
            if kind == "too_short" and loc == ("sections",):
                text = "a template needs at least one section"
            elif kind == "string_too_short":
                text = "must not be empty"
            own = kind == "value_error" and len(loc) == 1  # our message names the field
            msg = f"{where}: {text}" if where and not own else text
            line = _yaml_line(node, loc)
        out.append(TemplateProblem(file, line, msg))
    return out


def _semantic_problems(
    meta: TemplateMeta, node: yaml.Node | None, file: str, stem: str
) -> list[TemplateProblem]:
    out = []
    if meta.id != stem:
        out.append(
            TemplateProblem(
                file,
                _yaml_line(node, ("id",)),
                f"id {meta.id!r} must match the file name ({meta.id}{SUFFIX} "
                f"expected, the file is {stem}{SUFFIX})",
            )
        )
    seen_ids: dict[str, int] = {}
    seen_titles: dict[str, int] = {}
    for i, s in enumerate(meta.sections):
        line = _yaml_line(node, ("sections", i))
        if s.id in seen_ids:
            out.append(
                TemplateProblem(
                    file, line, f"duplicate section id {s.id!r} (also section {seen_ids[s.id] + 1})"
                )
            )
        seen_ids.setdefault(s.id, i)
        norm = re.sub(r"[^a-zæøå]+", "", s.title.lower())
        if norm in seen_titles:
            out.append(
                TemplateProblem(
                    file,
                    line,
                    f"duplicate section title {s.title!r} (also section {seen_titles[norm] + 1})",
                )
            )
        seen_titles.setdefault(norm, i)
    for sid in STANDARD_SECTIONS:
        sec = next((s for s in meta.sections if s.id == sid), None)
        if sec is None:
            out.append(
                TemplateProblem(
                    file,
                    _yaml_line(node, ("sections",)),
                    f"standard section {sid!r} is missing: every template must have the sections "
                    f"{', '.join(STANDARD_SECTIONS)} with required: true",
                )
            )
        elif not sec.required:
            idx = meta.sections.index(sec)
            out.append(
                TemplateProblem(
                    file,
                    _yaml_line(node, ("sections", idx)),
                    f"standard section {sid!r} must have required: true",
                )
            )
    return out


def _read_meta(
    path: Path, text: str, file: str
) -> tuple[TemplateMeta | None, list[TemplateProblem], yaml.Node | None]:
    fm = _split_front_matter(text)
    if fm is None:
        return (
            None,
            [
                TemplateProblem(
                    file,
                    1,
                    "no front matter: a template starts with a '---' line, "
                    "the YAML metadata (id, version, title, language, sections) "
                    "and a closing '---' line",
                )
            ],
            None,
        )
    if fm.end_line is None:
        return (
            None,
            [
                TemplateProblem(
                    file, 1, "the front matter is not closed: add a '---' line after the metadata"
                )
            ],
            None,
        )
    try:
        node = yaml.compose(fm.yaml_text, Loader=FrontMatterLoader)
        data = front_matter_yaml(fm.yaml_text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context = getattr(exc, "context", None)
        msg = f"YAML error in the front matter: {problem}" + (f" ({context})" if context else "")
        return None, [TemplateProblem(file, line, msg)], None
    if not isinstance(data, dict):
        return (
            None,
            [
                TemplateProblem(
                    file, 2, "the front matter must be YAML fields (id: ..., version: ...)"
                )
            ],
            node,
        )
    problems = _duplicate_keys(node, file)
    try:
        meta = TemplateMeta.model_validate(data)
    except ValidationError as exc:
        return None, problems + _schema_problems(exc, node, file), node
    stem = path.name.removesuffix(SUFFIX)
    problems += _semantic_problems(meta, node, file, stem)
    return (None if problems else meta), problems, node
