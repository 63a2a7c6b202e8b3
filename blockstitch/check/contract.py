"""Shape contracts as einops-style axis patterns: `b c h w`, `b n c`, `b (c*2) (h//2) (w//2)`.

An axis name means the same size wherever it appears; integers are literal sizes; a parenthesised group is
the product of its members (einops' `(h w)`), and inside it `*` and `//` combine names and integers. Parsed
by hand — nothing is evaluated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import SpecError

__all__ = ["Pattern", "parse_pattern"]

_TOKEN = re.compile(r"\(|\)|[A-Za-z_]\w*|\d+|//|\*|\S")


@dataclass(frozen=True)
class Pattern:
    """A parsed pattern: one term per dimension, each a list of (operator, factor) pairs."""

    text: str
    dims: tuple[tuple[tuple[str, str], ...], ...]

    @property
    def axes(self) -> list[str]:
        """Axis names in order of first appearance."""
        seen: list[str] = []
        for dim in self.dims:
            for _, factor in dim:
                if not factor.isdigit() and factor not in seen:
                    seen.append(factor)
        return seen

    @property
    def rank(self) -> int:
        """Number of dimensions."""
        return len(self.dims)

    def shape(self, sizes: dict[str, int]) -> tuple[int, ...]:
        """The concrete shape for these axis sizes."""
        out = []
        for dim in self.dims:
            value = 1
            for op, factor in dim:
                n = int(factor) if factor.isdigit() else sizes[factor]
                value = value * n if op == "*" else value // n
            out.append(value)
        return tuple(out)


def parse_pattern(text: str) -> Pattern:
    """Parse ``b c h w`` or ``b (c*2) h w``; a :class:`SpecError` explains what is wrong."""
    tokens = _TOKEN.findall(text)
    dims: list[tuple[tuple[str, str], ...]] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "(":
            group: list[tuple[str, str]] = []
            op = "*"
            i += 1
            while i < len(tokens) and tokens[i] != ")":
                t = tokens[i]
                if t in ("*", "//"):
                    op = t
                elif re.fullmatch(r"[A-Za-z_]\w*|\d+", t):
                    group.append((op, t))
                    op = "*"
                else:
                    raise SpecError(f"unexpected '{t}' in pattern '{text}'", expected="names, integers, * and //")
                i += 1
            if i == len(tokens) or not group:
                raise SpecError(f"unbalanced or empty group in pattern '{text}'")
            dims.append(tuple(group))
        elif re.fullmatch(r"[A-Za-z_]\w*|\d+", tok):
            dims.append((("*", tok),))
        else:
            raise SpecError(f"unexpected '{tok}' in pattern '{text}'", expected="e.g. 'b c h w' or 'b (c*2) h w'")
        i += 1
    if not dims:
        raise SpecError("empty pattern", expected="e.g. 'b c h w'")
    return Pattern(text, tuple(dims))
