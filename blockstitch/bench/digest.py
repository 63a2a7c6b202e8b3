"""What produced a measurement, as one digest: the target's resolved content (its spec file's data, every base it
`extends:`, the bytes of a weights file it loads, the source file of every block kind, module or class it uses
whose code lives outside blockstitch — a ``--plugin`` file, a user's class), the options it was measured with and
the versions of the code that built and ran it. A sweep row and an ablation trial carry it, so an edited target
is measured again instead of its old numbers being returned as if they were new.

:func:`target_parts` keeps the pieces apart, labelled (``spec base.yaml``, ``code blocks.py``…), so a run can say
*which* of them changed. Built-in blocks are covered by blockstitch's version, not by their files' bytes.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["target_digest", "target_parts", "sweep_parts", "code_parts", "file_digest", "changed_parts", "versions"]

_LIBRARY = {"timm": "timm", "torchvision": "torchvision", "ultralytics": "ultralytics"}
_MAX_DEPTH = 64  # an extends chain is checked on load; this only stops a walk that would not end


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        try:  # a package importable without installed metadata (a source checkout)
            return str(__import__(package).__version__)
        except Exception:  # noqa: BLE001 — absent: a row measured without it says so
            return None


def versions() -> dict[str, str | None]:
    """blockstitch's and torch's versions: the code every measurement runs through."""
    import torch

    # the top package is loaded before any of its modules: its version is read, nothing is imported upward
    top = sys.modules[__name__.split(".")[0]]
    return {"blockstitch": getattr(top, "__version__", None), "torch": torch.__version__}


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes, read in chunks (a weights file, a plugin's source).

    >>> len(file_digest(__file__))
    64
    """
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _data_digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def _own_root() -> Path:
    return Path(sys.modules[__name__.split(".")[0]].__file__ or ".").resolve().parent


def _source_file(obj: Any) -> Path | None:
    """The file defining ``obj`` (a class or function), unless it is one of blockstitch's own (its version covers
    those) or has no file (defined at a prompt)."""
    try:
        found = inspect.getsourcefile(obj if isinstance(obj, type) or inspect.isroutine(obj) else type(obj))
    except (TypeError, OSError):
        return None
    if found is None or not Path(found).is_file():
        return None
    path = Path(found).resolve()
    return None if path.is_relative_to(_own_root()) else path


def _put(parts: dict[str, str], label: str, value: str) -> None:
    """Labels name files by their name only (a moved project keeps its digests); two different files of one name
    get ``#2``, ``#3``… in the order they were reached."""
    head, _, rest = label.partition(" ")
    name = f"{head} {Path(rest).name}" if "/" in rest or "\\" in rest else label
    n, unique = 1, name
    while parts.get(unique, value) != value:
        n += 1
        unique = f"{name} #{n}"
    parts[unique] = value


def _kinds(data: Any, found: list[Any], depth: int = 0) -> list[Any]:
    """Every ``kind:`` text and every class or function (a block given in Python) anywhere in ``data``."""
    if depth > _MAX_DEPTH:
        return found
    if isinstance(data, dict):
        if isinstance(data.get("kind"), str):
            found.append(data["kind"])
        for value in data.values():
            _kinds(value, found, depth + 1)
    elif isinstance(data, (list, tuple)):
        for value in data:
            _kinds(value, found, depth + 1)
    elif isinstance(data, type) or callable(data):
        found.append(data)
    return found


def code_parts(data: Any = None, objects: tuple[Any, ...] = ()) -> dict[str, str]:
    """``{"code <file>": sha256}`` for the source file of every block kind named in ``data`` (any ``kind:`` at any
    depth, or given as a class in Python) and of every class/function/module in ``objects``, where that code lives
    outside blockstitch: editing a ``--plugin`` file's block (same class name, new forward) changes its entry.
    Unknown kinds are skipped (the build will say so)."""
    from ..registry import _REGISTRY

    holders: list[Any] = list(objects)
    for kind in _kinds(data, []):
        cls = _REGISTRY.get(kind) if isinstance(kind, str) else kind
        if cls is not None:
            holders += [cls, getattr(cls, "module_class", None)]
    parts: dict[str, str] = {}
    for obj in holders:
        path = _source_file(obj) if obj is not None else None
        if path is not None:
            _put(parts, f"code {path}", file_digest(path))
    return parts


def _merge(parts: dict[str, str], more: dict[str, str]) -> None:
    for label, value in more.items():
        _put(parts, label, value)


def target_parts(target: Any, origin: Any = None, loc: tuple[Any, ...] = ()) -> dict[str, str]:
    """What ``target`` resolves to, as labelled hashes: ``spec <file>`` for its data and for every base it
    ``extends:`` (followed transitively), ``weights <file>`` for a weights file it loads, ``code <file>`` for the
    Python code behind its kinds, module or class, ``<library> <name>`` with that library's version.

    >>> sorted(target_parts("lenet5"))[0].startswith("spec ")
    True
    """
    from ..sources import TARGETS, resolve, weights_file

    parts: dict[str, str] = {}
    current: Any = target
    for depth in range(_MAX_DEPTH):
        found = resolve(current, TARGETS | {"code", "module"}, origin=origin, loc=loc)
        if found.what in _LIBRARY:
            parts[f"{found.what} {found.name}"] = str(_version(_LIBRARY[found.what]))
        elif found.what in ("code", "module"):
            parts[f"{found.what} {found.name}"] = found.name
            _merge(parts, code_parts(objects=(found.obj,)))
        elif found.what == "block":
            parts[f"block {found.name}"] = found.name
            _merge(parts, code_parts({"kind": found.name}))
        if found.located is None:
            break
        data = found.located.data
        label = found.located.file or (found.name if depth else "inline")
        _put(parts, f"spec {label}", _data_digest(data))
        _merge(parts, code_parts(data))
        if isinstance(data, dict) and isinstance(data.get("weights"), str):
            path = weights_file(data["weights"], found.located)
            _put(parts, f"weights {path}", file_digest(path))
        if not (isinstance(data, dict) and isinstance(data.get("extends"), str)):
            break
        current, origin, loc = data["extends"], found.located, ("extends",)
    return parts


def changed_parts(old: dict[str, str], new: dict[str, str]) -> list[str]:
    """What differs between two records of :func:`target_parts`-style labels, in words a run prints.

    >>> changed_parts({"spec base.yaml": "1", "recipe": "2"}, {"spec base.yaml": "3", "recipe": "2"})
    ['spec base.yaml changed']
    """
    said = [f"{k} changed" for k in sorted(old.keys() & new.keys()) if old[k] != new[k]]
    said += [f"{k} added" for k in sorted(new.keys() - old.keys())]
    said += [f"{k} no longer used" for k in sorted(old.keys() - new.keys())]
    return said


def target_digest(target: str, options: dict[str, Any] | None = None) -> str:
    """A short digest of what measuring ``target`` with ``options`` depends on; a target that no longer resolves
    gets a digest of its name (its row will hold the error).

    >>> target_digest("lenet5") == target_digest("lenet5")
    True
    """
    try:
        content: Any = target_parts(target)
    except Exception as err:  # noqa: BLE001 — measured anyway: the measurement records the error
        content = {"unresolved": target, "error": type(err).__name__}
    blob = json.dumps({"target": content, "options": options or {}, "versions": versions()}, sort_keys=True,
                      default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def sweep_parts(target: str, options: dict[str, Any] | None = None) -> dict[str, str]:
    """:func:`target_parts` plus hashes of ``options`` and :func:`versions`: what a sweep row records beside its
    digest, so a later sweep can say what changed (``spec base.yaml changed``). Empty for a target that no
    longer resolves (its row holds the error)."""
    try:
        parts = target_parts(target)
    except Exception:  # noqa: BLE001 — measured anyway: the measurement records the error
        return {}
    return parts | {"options": _data_digest(options or {}), "versions": _data_digest(versions())}
