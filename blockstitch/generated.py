"""Files generated from the code and shipped with it, so the command line can answer without importing torch.

Three files, all written by ``python -m blockstitch.regenerate`` (``--check`` says whether they are current):

* ``blocks/index.json`` — every built-in kind → its family module and catalogue entry (the registry imports
  one family per kind; ``blockstitch blocks`` lists from it);
* ``assemble/schema.json`` — the JSON Schema of spec files (``blockstitch schema``);
* ``assemble/zoo.json`` — params, GMACs and descriptions of the bundled specs (``blockstitch zoo``).

Each records the SHA-256 of the sources it was made from. A file whose digest does not match the sources as
they are now is not used: the command computes its answer live (importing torch), so a stale file costs time,
never a wrong answer. A test fails while any of them is stale.

>>> read(SCHEMA_FILE, digest(block_sources())) is not None   # in a released package
True
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["PACKAGE", "INDEX_FILE", "SCHEMA_FILE", "ZOO_FILE", "digest", "block_sources", "package_sources",
           "read", "write"]

PACKAGE = Path(__file__).resolve().parent
INDEX_FILE = PACKAGE / "blocks" / "index.json"
SCHEMA_FILE = PACKAGE / "assemble" / "schema.json"
ZOO_FILE = PACKAGE / "assemble" / "zoo.json"


def digest(files: Iterable[Path]) -> str:
    """SHA-256 over the files' paths (relative to their package or folder) and bytes, in sorted order.

    >>> len(digest(block_sources()))
    64
    """
    sha = hashlib.sha256()
    for file in sorted(set(files)):
        if file.is_file():
            # the specs sit in blockstitch/specs in a wheel and in specs/ in a checkout: the same name either way
            name = file.relative_to(PACKAGE).as_posix() if file.is_relative_to(PACKAGE) else \
                f"{file.parent.name}/{file.name}"
            sha.update(name.encode() + b"\0" + file.read_bytes() + b"\0")
    return sha.hexdigest()


def block_sources() -> list[Path]:
    """What decides the built-in blocks, their cards and the spec schema: every file under ``blocks/`` and
    ``assemble/`` and the modules they stand on (the generated files themselves excluded)."""
    files = [*PACKAGE.joinpath("blocks").rglob("*.py"), *PACKAGE.joinpath("assemble").glob("*.py")]
    return files + [PACKAGE / name for name in ("blockspec.py", "registry.py", "catalogue.py", "errors.py")]


_NOT_IN_ZOO = ("check", "bench", "graph", "cli", "render.py", "export", "fuse.py", "catalogue_docs.py",
               "ablate", "train", "yolo", "__main__.py")
"""Parts of the package the zoo's numbers never pass through (the tools beside the profiler, the CLI)."""


def package_sources(spec_files: Iterable[Path] = ()) -> list[Path]:
    """What decides the zoo's numbers: the package's modules that building and profiling a spec go through
    (blocks, planner, stitch, profiler, …) and the specs; the other tools and the CLI are left out."""
    files = [f for f in PACKAGE.rglob("*.py") if f.relative_to(PACKAGE).parts[0] not in _NOT_IN_ZOO]
    return [*files, *spec_files]


def read(file: Path, sources_digest: str) -> Any | None:
    """The data of a generated file when it was made from sources with this digest, else None.

    >>> read(ZOO_FILE, "not the digest") is None
    True
    """
    try:
        stored = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or stored.get("sources") != sources_digest:
        return None
    return stored.get("data")


def write(file: Path, data: Any, sources_digest: str) -> str:
    """Write a generated file (sorted keys, so a regeneration without changes rewrites the same bytes); returns
    the text written."""
    text = json.dumps({"sources": sources_digest, "data": data}, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    file.write_text(text, encoding="utf-8")
    return text
