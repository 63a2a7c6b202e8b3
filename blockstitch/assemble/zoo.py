"""Finding spec files: a path, or the name of a spec shipped in `specs/` (inside the wheel too)."""

from __future__ import annotations

from pathlib import Path

from ..errors import SpecError, did_you_mean

__all__ = ["specs_dir", "zoo_names", "find_spec"]

_SUFFIXES = (".yaml", ".yml", ".json")


def specs_dir() -> Path:
    """The bundled specs: `blockstitch/specs` in an installed wheel, the repository's `specs/` in a checkout."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "specs", package.parent / "specs"):
        if candidate.is_dir():
            return candidate
    return package / "specs"


def zoo_names() -> list[str]:
    """Names of the bundled specs, sorted."""
    folder = specs_dir()
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.iterdir() if p.suffix in _SUFFIXES and not p.name.startswith("_"))


def find_spec(name_or_path: str | Path) -> Path:
    """A spec file by path, or by zoo name (`resnet50`); a clear error names the nearest zoo entry."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.suffix in _SUFFIXES or "/" in str(name_or_path) or "\\" in str(name_or_path):
        raise SpecError(f"spec file not found: {name_or_path}", hint="check the path, or give a zoo name")
    for suffix in _SUFFIXES:
        candidate = specs_dir() / f"{name_or_path}{suffix}"
        if candidate.is_file():
            return candidate
    names = zoo_names()
    raise SpecError(f"no spec file or zoo network named '{name_or_path}'{did_you_mean(str(name_or_path), names)}",
                    expected="a path to a .yaml/.json file, or one of: " + ", ".join(names))
