"""Compute the generated files live (see :mod:`blockstitch.generated`), and write or check them::

    python -m blockstitch.regenerate           # rewrite blocks/index.json, assemble/schema.json, assemble/zoo.json
    python -m blockstitch.regenerate --check   # exit 1 naming the stale ones

The live functions are also what the CLI runs when a generated file is stale or plugins add blocks.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .generated import INDEX_FILE, SCHEMA_FILE, ZOO_FILE, block_sources, digest, package_sources, read, write

__all__ = ["spec_files", "zoo_digest", "live_index", "live_schema", "live_zoo_rows", "stale", "main"]


def spec_files() -> list[Path]:
    """The bundled spec files (what the zoo lists)."""
    from .assemble.zoo import specs_dir, zoo_names

    folder = specs_dir()
    return [p for name in zoo_names() for p in folder.glob(f"{name}.*")]


def zoo_digest() -> str:
    """The digest the zoo table is made from: every module of the package and every bundled spec."""
    return digest(package_sources(spec_files()))


def live_index() -> dict[str, Any]:
    """Every built-in kind → family module and catalogue entry (imports every family)."""
    from .blocks.index import build_index

    return build_index()


def live_schema() -> dict[str, Any]:
    """The JSON Schema of spec files, from the registry as it is now (plugins included)."""
    from .assemble.schema import network_schema

    return network_schema()


def _description(name: str) -> str:
    from .api import is_edit_source, load_spec
    from .assemble.source import load_file
    from .assemble.zoo import find_spec

    if not is_edit_source(name):
        return load_spec(name).description
    data = load_file(find_spec(name)).data
    return str(data.get("description") or f"edit of {data['extends']}")


def live_zoo_rows() -> list[dict[str, Any]]:
    """One row per bundled spec: name, input, params, GMACs (profiled on meta tensors, batch 1) and description."""
    from .assemble.zoo import zoo_names
    from .profile import profile

    rows = []
    for name in zoo_names():
        prof = profile(name)
        rows.append({"name": name, "input": "×".join(map(str, prof.input_shape)), "params": prof.params,
                     "gmacs": prof.macs / 1e9, "description": _description(name)})
    return rows


def stale() -> list[Path]:
    """The generated files that are missing or were made from other sources than the current ones."""
    blocks = digest(block_sources())
    checks = ((INDEX_FILE, blocks), (SCHEMA_FILE, blocks), (ZOO_FILE, zoo_digest()))
    return [file for file, sources in checks if read(file, sources) is None]


def main(argv: Sequence[str] | None = None) -> int:
    """Write every generated file, or with ``--check`` list the stale ones (exit 1 when any is)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--check" in args:
        old = stale()
        for file in old:
            print(f"stale: {file} (run `python -m blockstitch.regenerate`)", file=sys.stderr)
        return 1 if old else 0
    blocks = digest(block_sources())
    write(INDEX_FILE, live_index(), blocks)
    write(SCHEMA_FILE, live_schema(), blocks)
    write(ZOO_FILE, live_zoo_rows(), zoo_digest())
    for file in (INDEX_FILE, SCHEMA_FILE, ZOO_FILE):
        print(f"wrote {file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
