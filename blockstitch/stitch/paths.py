"""Module paths with globs, matched segment by segment: `layer*` is a top-level stage, `layer*.*` a block in
one, `layer*.*.conv2` a conv inside each block (`*` never crosses a dot)."""

from __future__ import annotations

from difflib import get_close_matches
from fnmatch import fnmatchcase

__all__ = ["match_paths", "nearest_paths"]


def _matches(pattern: str, path: str) -> bool:
    want, have = pattern.split("."), path.split(".")
    return len(want) == len(have) and all(fnmatchcase(h, w) for w, h in zip(want, have))


def match_paths(pattern: str, paths: list[str]) -> list[str]:
    """Paths matching ``pattern``, in the order given (module order)."""
    return [p for p in paths if p and _matches(pattern, p)]


def nearest_paths(pattern: str, paths: list[str], n: int = 4) -> list[str]:
    """Real paths closest to a pattern that matched nothing (same depth first)."""
    depth = pattern.count(".")
    same = [p for p in paths if p.count(".") == depth]
    close = get_close_matches(pattern.replace("*", ""), same or paths, n=n, cutoff=0.3)
    return close or (same or paths)[:n]
