"""Reading spec files: YAML or JSON into plain data, remembering where every key and item was written.

Loading is `yaml.safe_load`-level: only plain mappings, lists and scalars. Tags (`!!python/object`, `!foo`)
are refused, as are duplicate keys (PyYAML would silently keep the last one).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import SpecError

__all__ = ["Located", "load_text", "load_file", "Loc"]

Loc = tuple[Any, ...]
_PLAIN_TAGS = {
    "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:str", "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null", "tag:yaml.org,2002:timestamp",
}


@dataclass
class Located:
    """Plain spec data plus the (line, column) of each path in it (1-based), and the file it came from."""

    data: Any
    file: str | None = None
    marks: dict[Loc, tuple[int, int]] = field(default_factory=dict)

    def mark(self, loc: Loc) -> tuple[int | None, int | None]:
        """(line, column) of ``loc`` or of its nearest written ancestor."""
        loc = tuple(loc)
        while loc:
            if loc in self.marks:
                return self.marks[loc]
            loc = loc[:-1]
        return self.marks.get((), (None, None))

    def error(self, message: str, loc: Loc = (), **kw: Any) -> SpecError:
        """A :class:`SpecError` located at ``loc`` (path text like ``nodes[3].out_channels``)."""
        line, column = self.mark(loc)
        return SpecError(message, file=self.file, line=line, column=column, path=kw.pop("path", None) or
                         path_text(loc), **kw)


def path_text(loc: Loc) -> str | None:
    """``("nodes", 3, "out_channels")`` → ``nodes[3].out_channels``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or None


class _Loader(yaml.SafeLoader):
    """SafeLoader that composes nodes; we build the data ourselves to keep positions."""


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _walk(loader: _Loader, node: yaml.Node, loc: Loc, out: Located) -> Any:
    if node.tag not in _PLAIN_TAGS:
        line, col = _mark(node)
        raise SpecError(f"YAML tag '{node.tag}' is not allowed: spec files are plain data", file=out.file,
                        line=line, column=col, path=path_text(loc),
                        hint="remove the tag; blocks are chosen with `kind:`, never by importing code")
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # YAML merge keys (<<) are plain data too
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _walk(loader, key_node, loc, out)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                line, col = _mark(key_node)
                raise SpecError("mapping keys must be plain scalars", file=out.file, line=line, column=col)
            key = str(key)
            if key in result:
                line, col = _mark(key_node)
                first = out.marks.get((*loc, key), (None, None))[0]
                raise SpecError(f"duplicate key '{key}' (first written on line {first})", file=out.file, line=line,
                                column=col, path=path_text((*loc, key)), hint="keep one of them")
            out.marks[(*loc, key)] = _mark(key_node)
            result[key] = _walk(loader, value_node, (*loc, key), out)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            out.marks[(*loc, i)] = _mark(item)
            items.append(_walk(loader, item, (*loc, i), out))
        return items
    return loader.construct_object(node, deep=True)


def load_text(text: str, file: str | None = None) -> Located:
    """Parse YAML (or JSON, which YAML reads too) into :class:`Located` data; errors are :class:`SpecError`."""
    out = Located(None, file)
    loader = _Loader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            line = mark.line + 1 if mark else None
            col = mark.column + 1 if mark else None
            raise SpecError(f"invalid YAML: {err.problem or err}", file=file, line=line, column=col,
                            hint="check indentation, colons and quotes around this line") from None
        except yaml.YAMLError as err:
            raise SpecError(f"invalid YAML: {err}", file=file) from None
        if root is None:
            raise SpecError("empty spec file", file=file, expected="a mapping with name, input and nodes")
        out.marks[()] = _mark(root)
        out.data = _walk(loader, root, (), out)
    finally:
        loader.dispose()
    if not isinstance(out.data, dict):
        raise SpecError("the spec's root must be a mapping (name:, input:, nodes:)", file=file, line=1,
                        found=type(out.data).__name__)
    return out


def load_file(path: str | Path) -> Located:
    """Read a `.yaml`/`.yml`/`.json` spec file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise SpecError(f"cannot read spec file: {err.strerror}", file=str(path)) from None
    try:
        return load_text(text, str(path))
    except SpecError:
        if path.suffix.lower() != ".json":
            raise
        try:  # JSON that YAML cannot read (tabs in odd places): fall back, keeping JSON's own position
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise SpecError(f"invalid JSON: {err.msg}", file=str(path), line=err.lineno, column=err.colno) from None
        if not isinstance(data, dict):
            raise SpecError("the spec's root must be a mapping", file=str(path), line=1) from None
        return Located(data, str(path), {(): (1, 1)})
