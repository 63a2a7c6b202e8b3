"""Reading spec files: YAML or JSON into plain data, remembering where every key and item was written.

Loading is `yaml.safe_load`-level: only plain mappings, lists and scalars. Tags (`!!python/object`, `!foo`)
are refused, as are duplicate keys (PyYAML would silently keep the last one). Limits come first (see
:mod:`.limits`): the file's size, UTF-8 only, no control characters, a bound on aliases, nesting and values.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import SpecError
from .limits import MAX_ALIASES, MAX_DEPTH, MAX_FILE_BYTES, MAX_VALUES, check_plain, path_text

__all__ = ["Located", "load_text", "load_file", "Loc", "check_text", "decode"]

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


_BASE: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML has it


class _Loader(_BASE):  # type: ignore[valid-type,misc]
    """The safe loader (libyaml's when installed: a 4 MiB file scans in a fraction of a second, where pure
    Python takes tens of seconds); we build the data ourselves from its nodes to keep positions."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.values = 0


def _prescan(text: str, file: str | None) -> None:
    """Limits before work: stream the parser's events (nothing is composed or kept) and stop at the first alias,
    value or nesting level too many — a 3.6 MiB list of a million numbers is refused in well under a second."""
    aliases = values = depth = 0
    for event in yaml.parse(text, Loader=_BASE):
        problem = None
        if isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                problem = f"more than {MAX_ALIASES} YAML aliases (*name)"
        elif isinstance(event, (yaml.ScalarEvent, yaml.CollectionStartEvent)):
            values += 1
            depth += isinstance(event, yaml.CollectionStartEvent)
            if values > MAX_VALUES:
                problem = f"the file holds more than {MAX_VALUES:,} values"
            elif depth > MAX_DEPTH:
                problem = f"nested deeper than {MAX_DEPTH} levels"
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        if problem is not None:
            mark = event.start_mark
            raise SpecError(problem, file=file, line=mark.line + 1, column=mark.column + 1,
                            hint="spec files are small plain data; write the values out")


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _walk(loader: _Loader, node: yaml.Node, loc: Loc, out: Located) -> Any:
    loader.values += 1  # aliases share nodes: count what the expansion makes
    if loader.values > MAX_VALUES or len(loc) > MAX_DEPTH:
        line, col = _mark(node)
        what = f"more than {MAX_VALUES:,} values" if loader.values > MAX_VALUES else f"deeper than {MAX_DEPTH} levels"
        raise SpecError(f"the file expands to {what} (aliases included)", file=out.file, line=line, column=col,
                        hint="spec files are small plain data")
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
    if node.tag == "tag:yaml.org,2002:timestamp":
        return node.value  # a date stays the text it was written as
    try:
        return loader.construct_object(node, deep=True)
    except (ValueError, OverflowError, yaml.YAMLError) as err:  # e.g. an integer of 10 000 digits
        line, col = _mark(node)
        raise SpecError(f"cannot read this value: {str(err).splitlines()[0][:200]}", file=out.file, line=line,
                        column=col, path=path_text(loc)) from None


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ufffe\uffff\ud800-\udfff]")


def _line_col(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def check_text(text: str, file: str | None = None) -> str:
    """Refuse text a spec file cannot be: too long, or holding control characters (named with their line).
    A leading byte-order mark is dropped."""
    if len(text) > MAX_FILE_BYTES:
        raise SpecError(f"the file is larger than {MAX_FILE_BYTES // 2**20} MiB", file=file,
                        hint="spec files are small plain data")
    text = text.removeprefix("\ufeff")
    bad = _CONTROL.search(text)
    if bad is not None:
        line, col = _line_col(text, bad.start())
        raise SpecError(f"control character U+{ord(bad.group()):04X} in the file", file=file, line=line, column=col,
                        hint="spec files are UTF-8 text: remove it (was a binary file given?)")
    return text


def decode(data: bytes, file: str | None = None) -> str:
    """UTF-8 text of a file's bytes; anything else is refused with the line of the first bad byte."""
    if len(data) > MAX_FILE_BYTES:
        raise SpecError(f"the file is larger than {MAX_FILE_BYTES // 2**20} MiB ({len(data):,} bytes)", file=file,
                        hint="spec files are small plain data")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise SpecError(f"not UTF-8 text (byte 0x{data[err.start]:02X})", file=file, line=line, column=column,
                        hint="save the file as UTF-8; spec files are text, not binary") from None


def load_text(text: str, file: str | None = None) -> Located:
    """Parse YAML (or JSON, which YAML reads too) into :class:`Located` data; errors are :class:`SpecError`."""
    out = Located(None, file)
    text = check_text(text, file)
    loader = _Loader(text)
    try:
        try:
            _prescan(text, file)
            root = loader.get_single_node()
        except SpecError as err:
            raise err.located(file=file) from None
        except RecursionError:
            raise SpecError(f"nested deeper than {MAX_DEPTH} levels", file=file) from None
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
        check_plain(out.data, file, out.mark)
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
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SpecError(f"the file is larger than {MAX_FILE_BYTES // 2**20} MiB ({size:,} bytes)", file=str(path),
                            hint="spec files are small plain data")
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise SpecError(f"cannot read spec file: {err.strerror or err}", file=str(path)) from None
    text = decode(data, str(path))
    try:
        return load_text(text, str(path))
    except SpecError:
        if path.suffix.lower() != ".json":
            raise
        try:  # JSON that YAML cannot read (tabs in odd places): fall back, keeping JSON's own position
            data = json.loads(check_text(text, str(path)), parse_constant=_no_constant)
        except json.JSONDecodeError as err:
            raise SpecError(f"invalid JSON: {err.msg}", file=str(path), line=err.lineno, column=err.colno) from None
        except RecursionError:
            raise SpecError(f"nested deeper than {MAX_DEPTH} levels", file=str(path)) from None
        except (SpecError, ValueError) as err:
            raise SpecError(f"invalid JSON: {getattr(err, 'message', err)}", file=str(path)) from None
        if not isinstance(data, dict):
            raise SpecError("the spec's root must be a mapping", file=str(path), line=1) from None
        check_plain(data, str(path))
        return Located(data, str(path), {(): (1, 1)})


def _no_constant(name: str) -> Any:
    raise SpecError(f"'{name}' is not a number a spec file may hold", hint="numbers must be finite")
