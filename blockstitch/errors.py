"""The errors blockstitch raises on purpose.

Every mistake in a spec ends in a :class:`SpecError` that says *where* (file:line:column, the node path),
*what* was expected and what was found, and *how to fix it*. The CLI prints these without a traceback and
exits 2. :class:`ShapeError` adds the shapes flowing into the node.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from difflib import get_close_matches
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

__all__ = ["BlockstitchError", "SpecError", "ShapeError", "RegistryError", "did_you_mean", "fmt_shape",
           "path_text", "pydantic_error", "shown", "few", "MAX_SHOWN"]

MAX_SHOWN = 1000
"""Characters of one message field (message, expected, found, hint) shown; the rest is counted, not echoed."""
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
                     r"\ud800-\udfff\ufffe\uffff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(text: object, limit: int = MAX_SHOWN) -> str:
    r"""User text made safe to print: control characters (ESC, CR, NUL, bidi overrides, lone surrogates) written
    as escapes, a newline indented (so no echoed text can begin a line of its own, such as a forged
    ``error:``), and at most ``limit`` characters, the rest counted.

    >>> shown("key\x1b[31m\nerror: forged")
    'key\\x1b[31m\n  error: forged'
    >>> shown("x" * 1005)[-30:]
    'xxxxxxx… and 5 more characters'
    """
    text = str(text)
    rest = len(text) - limit
    if rest > 0:
        text = text[:limit]
    text = _UNSAFE.sub(_escape, text).replace("\n", "\n  ")
    return f"{text}… and {rest:,} more characters" if rest > 0 else text


def few(items: Sequence[object], limit: int = 5) -> str:
    """The first ``limit`` items, each :func:`shown`, and how many more: ``a, b, c … and 1,998 more``.

    >>> few(["a", "b", "c"], 2)
    'a, b … and 1 more'
    """
    head = ", ".join(shown(item, 200) for item in items[:limit])
    return head + (f" … and {len(items) - limit:,} more" if len(items) > limit else "") if items else "none"


class BlockstitchError(Exception):
    """Base of every error blockstitch raises on purpose (never for a bug of its own)."""


def fmt_shape(shape: Sequence[int] | None) -> str:
    """Format a shape the way the plan prints it: ``(1, 3, 224, 224)`` → ``1×3×224×224``."""
    if shape is None:
        return "?"
    return "×".join(str(int(s)) for s in shape) if len(shape) else "scalar"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``" — did you mean 'x'?"`` for the nearest choice, or ``""`` when nothing is close.

    >>> did_you_mean("cbma", ["cbam", "se"])
    " — did you mean 'cbam'?"
    """
    match = get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" — did you mean '{match[0]}'?" if match else ""


class SpecError(BlockstitchError, ValueError):
    """A spec (file, dict or node) is wrong; the message says where, what and how to fix it.

    Attributes mirror the message so tools can use them: ``file``, ``line``, ``column`` (1-based),
    ``node`` (node id), ``path`` (``nodes[3].out_channels``), ``expected``, ``found`` and ``hint``.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        node: str | None = None,
        path: str | None = None,
        expected: str | None = None,
        found: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.file, self.line, self.column = file, line, column
        self.node, self.path = node, path
        self.expected, self.found, self.hint = expected, found, hint
        super().__init__(str(self))

    def located(self, **where: object) -> SpecError:
        """Fill in location fields that are still unknown (inner code raises, outer code knows where)."""
        for key, value in where.items():
            if getattr(self, key, None) is None and value is not None:
                setattr(self, key, value)
        self.args = (str(self),)
        return self

    def where(self) -> str:
        """``file:line:column: path (node 'x')`` — whatever is known of it."""
        parts = []
        if self.file is not None:
            loc = str(self.file)
            if self.line is not None:
                loc += f":{self.line}"
                if self.column is not None:
                    loc += f":{self.column}"
            parts.append(loc)
        label = self.path or ""
        if self.node is not None and f"'{self.node}'" not in label:
            label = f"{label} (node '{self.node}')" if label else f"node '{self.node}'"
        if label:
            parts.append(label)
        return ": ".join(parts)

    def __str__(self) -> str:
        where = shown(self.where())
        text = f"{where}: {shown(self.message)}" if where else shown(self.message)
        if self.expected is not None:
            text += f"\n  expected: {shown(self.expected)}"
        if self.found is not None:
            text += f"\n  found:    {shown(self.found)}"
        if self.hint:
            text += f"\n  hint:     {shown(self.hint)}"
        return text


class ShapeError(SpecError):
    """A tensor shape does not fit a node; ``in_shapes`` holds the shapes flowing into it."""

    def __init__(self, message: str, *, in_shapes: Sequence[Sequence[int]] | None = None, **kw: str | int | None):
        self.in_shapes = [tuple(s) for s in in_shapes] if in_shapes is not None else None
        self.in_names: list[str] | None = None
        super().__init__(message, **kw)  # type: ignore[arg-type]

    def __str__(self) -> str:
        text = super().__str__()
        if self.in_shapes:
            names = self.in_names if self.in_names and len(self.in_names) == len(self.in_shapes) else None
            shown = [f"{names[i]} {fmt_shape(s)}" if names else fmt_shape(s) for i, s in enumerate(self.in_shapes)]
            text += "\n  inputs:   " + ", ".join(shown)
        return text


class RegistryError(BlockstitchError, KeyError):
    """A block kind is unknown, registered twice, or declared wrongly."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def path_text(loc: Sequence[Any]) -> str | None:
    """``("nodes", 3, "out_channels")`` → ``nodes[3].out_channels``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or None


class _Where(Protocol):
    def error(self, message: str, loc: tuple[Any, ...] = (), **kw: Any) -> SpecError: ...


def _nested_fields(model: Any, loc: Sequence[Any]) -> list[str]:
    """The fields of the pydantic model found at ``loc`` inside ``model`` (``("insert", 0)`` → InsertEdit's)."""
    from typing import get_args

    from pydantic import BaseModel

    for part in loc:
        if isinstance(part, int):
            continue
        info = getattr(model, "model_fields", {}).get(str(part))
        if info is None:
            return []
        pending, model = [info.annotation], None
        while pending:
            tp = pending.pop()
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                model = tp
                break
            pending += list(get_args(tp))
        if model is None:
            return []
    return list(getattr(model, "model_fields", {}))


def pydantic_error(err: ValidationError, loc: Sequence[Any] = (), *, model: type[BaseModel] | None = None,
                   what: str | None = None, also: Sequence[str] = (), node: str | None = None,
                   located: _Where | None = None) -> SpecError:
    """The one way a pydantic ``ValidationError`` becomes a :class:`SpecError`: pydantic's first problem (a
    misspelled field first: it shows up as "unknown" plus "missing", the unknown one is the cause), at ``loc``
    (the validated mapping's place, e.g. ``("nodes", 3)``) plus the field's own, with the nearest valid field or
    choice. ``model`` is the class that was validated (its fields, its ``kind``), ``what`` names it in messages,
    ``also`` lists keys valid beside its fields, and ``located`` (a spec file's
    :class:`~blockstitch.assemble.Located`) adds file, line and column.

    >>> pydantic_error(err, ("insert", 0), model=InsertEdit, what="an insert edit").path
    'insert[0].aftr'
    """
    errors = sorted(err.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    here = tuple(first["loc"])
    field = str(here[0]) if here else None
    fields = list(model.model_fields) if model is not None else []
    kind = getattr(model.model_fields.get("kind"), "default", None) if model is not None else None
    if what is None:
        what = f"kind '{kind}'" if "kind" in fields else (model.__name__ if model is not None else "this mapping")
    fields = [f for f in fields if f != "kind"] + list(also)
    problem, found, expected, hint = first["type"], None, None, None
    if problem == "extra_forbidden" and len(here) > 1:  # inside a nested mapping (an edit, a sub-block)
        inner = [f for f in _nested_fields(model, here[:-1]) if f != "kind"]
        message = f"unknown field '{here[-1]}' in {path_text(here[:-1])}{did_you_mean(str(here[-1]), inner)}"
        expected = ", ".join(inner) or None
    elif problem == "extra_forbidden":
        message = f"unknown field '{field}' for {what}{did_you_mean(field or '', fields)}"
        expected = ", ".join(fields)
    elif problem == "missing":
        message = f"missing required field '{field}' for {what}"
        info = model.model_fields.get(field or "") if model is not None else None
        hint = info.description.rstrip(".") if info is not None and info.description else None
        here = ()
    else:
        message = str(first["msg"]).removeprefix("Value error, ")
        found = repr(first.get("input"))
        if problem == "literal_error":
            choices = re.findall(r"'([^']*)'", str(first.get("ctx", {}).get("expected", "")))
            message += did_you_mean(str(first.get("input")), choices)
    if len(errors) > 1:
        hint = (hint + "; " if hint else "") + f"{len(errors) - 1} more problem(s) in this mapping"
    where = (*loc, *here)
    if located is not None:
        return located.error(message, where, node=node, found=found, expected=expected, hint=hint)
    return SpecError(message, path=path_text(where), node=node, found=found, expected=expected, hint=hint)
