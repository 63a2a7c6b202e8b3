"""What produced a measurement, as one digest: the target's resolved content (its spec file's data, every base it
`extends:`, the bytes of a weights file it loads, a block kind's fields), the options it was measured with and the
versions of the code that built and ran it. A sweep row carries it, so an edited target is measured again
instead of its old timings being returned as if they were new."""

from __future__ import annotations

import hashlib
import json
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["target_digest", "versions"]

_LIBRARY = {"timm": "timm", "torchvision": "torchvision", "ultralytics": "ultralytics"}


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


def _file_bytes(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _content(target: Any, origin: Any = None, loc: tuple[Any, ...] = (), depth: int = 0) -> dict[str, Any]:
    """The resolved content of ``target`` as plain data (bases followed through `extends:`)."""
    from ..sources import TARGETS, resolve, weights_file

    found = resolve(target, TARGETS, origin=origin, loc=loc)
    # a block kind is its name (its fields are the options; its code, blockstitch's version)
    item: dict[str, Any] = {"what": found.what, "name": found.name if found.what != "spec" else None}
    if found.what in _LIBRARY:
        item["version"] = _version(_LIBRARY[found.what])
    elif found.located is not None:
        data = found.located.data
        item["data"] = json.dumps(data, sort_keys=True, default=str)
        if isinstance(data, dict) and isinstance(data.get("weights"), str):
            item["weights"] = _file_bytes(weights_file(data["weights"], found.located))
        if isinstance(data, dict) and isinstance(data.get("extends"), str) and depth < 64:  # chain checked on load
            item["extends"] = _content(data["extends"], found.located, ("extends",), depth + 1)
    return item


def target_digest(target: str, options: dict[str, Any] | None = None) -> str:
    """A short digest of what measuring ``target`` with ``options`` depends on; a target that no longer resolves
    gets a digest of its name (its row will hold the error).

    >>> target_digest("lenet5") == target_digest("lenet5")
    True
    """
    try:
        content: Any = _content(target)
    except Exception as err:  # noqa: BLE001 — measured anyway: the measurement records the error
        content = {"unresolved": target, "error": type(err).__name__}
    blob = json.dumps({"target": content, "options": options or {}, "versions": versions()}, sort_keys=True,
                      default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]
