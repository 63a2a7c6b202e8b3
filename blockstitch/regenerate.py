"""Compute the generated files live (see :mod:`blockstitch.generated`), and write or check them::

    python -m blockstitch.regenerate           # rewrite every generated artifact: blocks/index.json,
                                               # assemble/schema.json, assemble/zoo.json, docs/library*.md and
                                               # the zoo table regions of README.md / README.zh-CN.md
    python -m blockstitch.regenerate --check   # exit 1 naming the stale ones

The live functions are also what the CLI runs when a generated file is stale or plugins add blocks.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .generated import INDEX_FILE, SCHEMA_FILE, ZOO_FILE, block_sources, digest, package_sources, read, write

__all__ = ["spec_files", "zoo_digest", "live_index", "live_schema", "live_zoo_rows", "stale", "pages", "stale_pages",
           "main"]

ZOO_REGION = ("<!-- zoo:start -->", "<!-- zoo:end -->")
"""The markers around the README's zoo table (both languages)."""


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


def pages(zoo_rows: list[dict[str, Any]] | None = None) -> dict[Path, str]:
    """Every generated page and README region: path → the whole text the file must hold (the library pages in
    both languages; each README with its zoo table region as ``blockstitch zoo --markdown`` prints it). READMEs
    that are not there (an installed wheel) are left out.

    >>> sorted(p.name for p in pages())
    ['README.md', 'README.zh-CN.md', 'library.md', 'library.zh-CN.md']
    """
    from .assemble.zoo import zoo_markdown
    from .catalogue_docs import doc_paths, library_markdown
    from .generated import PACKAGE

    out = {path: library_markdown(lang) for lang, path in doc_paths().items()}
    rows = zoo_rows if zoo_rows is not None else (read(ZOO_FILE, zoo_digest()) or live_zoo_rows())
    table = zoo_markdown(rows).strip()
    start, end = ZOO_REGION
    for readme in (PACKAGE.parent / "README.md", PACKAGE.parent / "README.zh-CN.md"):
        if not readme.is_file():
            continue
        text = readme.read_text(encoding="utf-8")
        if start in text and end in text:
            head, rest = text.split(start, 1)
            out[readme] = f"{head}{start}\n{table}\n{end}{rest.split(end, 1)[1]}"
    return out


def stale_pages() -> list[Path]:
    """The generated pages and README regions that differ from what the code generates now."""
    return [path for path, text in pages().items()
            if not path.is_file() or path.read_text(encoding="utf-8") != text]


def main(argv: Sequence[str] | None = None) -> int:
    """Write every generated artifact, or with ``--check`` list the stale ones (exit 1 when any is)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--check" in args:
        old = stale() + stale_pages()
        for file in old:
            print(f"stale: {file} (run `python -m blockstitch.regenerate`)", file=sys.stderr)
        return 1 if old else 0
    blocks = digest(block_sources())
    write(INDEX_FILE, live_index(), blocks)
    write(SCHEMA_FILE, live_schema(), blocks)
    rows = live_zoo_rows()
    write(ZOO_FILE, rows, zoo_digest())
    for file in (INDEX_FILE, SCHEMA_FILE, ZOO_FILE):
        print(f"wrote {file}")
    for path, text in pages(rows).items():
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
