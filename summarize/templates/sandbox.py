"""The sandbox a template body renders in: the Jinja environment (immutable sandbox, capped
'*' and '**', front matter masked), the limits on output size and render time, and
Jinja/Python errors turned into a :class:`~summarize.templates.schema.TemplateProblem`."""

from __future__ import annotations

import re
import threading
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from summarize.templates.front_matter import _split_front_matter
from summarize.templates.schema import TemplateProblem

MAX_OUTPUT_CHARS = 200_000
RENDER_TIME_LIMIT_S = 5.0  # a note renders in milliseconds; validation renders a few samples
_MAX_REPEAT = 100_000  # longest string/list a template may build with '*'


class _TooLong(Exception):
    pass


class _RenderTimeout(Exception):
    pass


def _bounded_join(chunks: Any) -> str:
    parts: list[str] = []
    n = 0
    for chunk in chunks:
        n += len(chunk)
        if n > MAX_OUTPUT_CHARS:
            raise _TooLong
        parts.append(chunk)
    return "".join(parts)


def _interrupt(thread: threading.Thread) -> None:
    """Raise :class:`_RenderTimeout` inside ``thread`` (checked between Python bytecodes,
    which is what a Jinja template runs)."""
    import ctypes

    if thread.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(_RenderTimeout))


class _RenderFailure(Exception):
    def __init__(self, problem: TemplateProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def _tidy(text: str) -> str:
    """No trailing spaces, at most one blank line in a row, no blank lines at the ends."""
    lines = [ln.rstrip() for ln in text.replace("\r\n", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox, plus caps on '*' and '**' so a typo cannot build a gigabyte string."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > 64:
            raise jinja2.sandbox.SecurityError("exponent too large")
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(n, int)
                    and len(seq) * n > _MAX_REPEAT
                ):
                    raise jinja2.sandbox.SecurityError("repetition too large")
        return super().call_binop(context, operator, left, right)


def _mask_front_matter(source: str) -> str:
    """The body as Jinja sees it: the front matter becomes a comment of as many lines,
    so line numbers in Jinja errors are line numbers of the file."""
    source = source.removeprefix("\ufeff")
    fm = _split_front_matter(source)
    if fm is None or fm.end_line is None:
        return source
    lines = source.splitlines(keepends=True)
    head = "".join(lines[: fm.end_line])
    return "{#" + "\n" * head.count("\n") + "#}" + source[len(head) :]


class _FrontMatterLoader(jinja2.FileSystemLoader):
    def __init__(self, searchpath: list[str], sources: Mapping[str, str] | None = None) -> None:
        super().__init__(searchpath)
        self.sources = dict(sources or {})  # in-memory files, as if in searchpath[0]

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Any]:
        if template in self.sources:
            filename = str(Path(self.searchpath[0]) / template)
            return _mask_front_matter(self.sources[template]), filename, lambda: True
        source, filename, uptodate = super().get_source(environment, template)
        return _mask_front_matter(source), filename, uptodate


def _environment(
    search_path: Sequence[Path], sources: Mapping[str, str] | None = None
) -> jinja2.Environment:
    return _Sandbox(
        loader=_FrontMatterLoader([str(p) for p in search_path], sources),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        finalize=lambda v: "" if v is None else v,
    )


def _problem_from_exception(exc: BaseException, path: Path, detail: bool = True) -> TemplateProblem:
    """File, line and a clear message for an exception raised by Jinja or a template."""
    file, line, inner = _where(exc, path)
    if isinstance(exc, jinja2.TemplateSyntaxError):
        msg = f"template syntax error: {exc.message}"
    elif isinstance(exc, jinja2.sandbox.SecurityError):
        msg = f"unsafe expression (blocked by the sandbox): {exc}"
    elif isinstance(exc, jinja2.UndefinedError):
        msg = f"undefined variable: {exc.message}"
    elif isinstance(exc, jinja2.TemplatesNotFound | jinja2.TemplateNotFound):
        msg = f"template file {exc.name!r} not found in the template directories"
    elif isinstance(exc, jinja2.TemplateError):
        msg = f"template error: {exc.message or type(exc).__name__}"
    else:  # a Python error raised by an expression (e.g. 1/0, int('x'))
        msg = f"error while rendering: {type(exc).__name__}" + (f": {exc}" if detail else "")
    return TemplateProblem(file, line, " ".join(msg.split()) + inner)


def _where(exc: BaseException, path: Path) -> tuple[str, int, str]:
    """The line in ``path`` (the file being checked) when it is on the stack, else the
    innermost template line; plus " (in FILE:LINE)" when the error is raised deeper, in a
    shared file such as _macros.md.j2."""
    if isinstance(exc, jinja2.TemplateSyntaxError) and exc.lineno:
        return _display(exc.filename, path), exc.lineno, ""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.endswith(".j2")]
    if not frames:
        return str(path), 1, ""
    inner = frames[-1]
    own = [f for f in frames if _display(f.filename, path) == str(path)]
    if own and own[-1] is not inner:
        return str(path), own[-1].lineno or 1, f" (in {inner.filename}:{inner.lineno})"
    return _display(inner.filename, path), inner.lineno or 1, ""


def _display(filename: str | None, path: Path) -> str:
    """``path`` as the user gave it when the error is in that file, else the other file."""
    if not filename:
        return str(path)
    try:
        if Path(filename).resolve() == path.resolve():
            return str(path)
    except OSError:
        pass
    return filename
