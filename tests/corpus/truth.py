"""The truth about a corpus module, learned by real runs over a dense grid — nothing taken from the report
but the places to look (its sizes, its base input) — and the comparison of a report against it, field by field.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

SQUARES = [*range(1, 25), 26, 30, 33, 36]
PAIRS = [(2, 4), (4, 2), (3, 6), (6, 3), (4, 8), (8, 4), (7, 14), (14, 7), (8, 16), (16, 8), (12, 16), (16, 12),
         (5, 7), (7, 5), (6, 9), (9, 6), (10, 15), (15, 10), (12, 24), (24, 12), (9, 18), (18, 9), (1, 8), (8, 1),
         (16, 24), (24, 16), (14, 21), (21, 14), (8, 24), (24, 8), (5, 10), (10, 5), (7, 9), (9, 7)]
TOKENS = [*range(1, 41), 50, 64]
CHANNELS = [*range(1, 41), 48, 56, 64]


def shape_of(layout: str, b: int, c: int, size: tuple[int, ...]) -> tuple[int, ...]:
    """The input shape for a layout, batch, width and spatial size."""
    return {"b c h w": (b, c, *size), "b n c": (b, *size, c), "b h w c": (b, *size, c)}[layout]


def _tensors(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _tensors(o)]
    if isinstance(out, dict):
        return [t for o in out.values() for t in _tensors(o)]
    return []


def candidates(names: tuple[str, ...], sizes: list[tuple[int, ...]]) -> list[Callable[[tuple[int, ...]], bool]]:
    """Every rule of the vocabulary (any, fixed, multiple of k, at least m; per axis, square; on the area h·w:
    fixed, at least, a multiple of k) over these sizes."""
    values = sorted({v for s in sizes for v in s})
    one: list[Callable[[int], bool]] = [lambda v: True]
    one += [lambda v, f=f: v == f for f in values]
    one += [lambda v, k=k: v % k == 0 for k in range(2, max(values) + 1)]
    one += [lambda v, m=m: v >= m for m in values]
    if len(names) == 1:
        return [lambda s, r=r: r(s[0]) for r in one]
    rules: list[Callable[[tuple[int, ...]], bool]] = []
    for r in one:
        rules += [lambda s, r=r: r(s[0]) and r(s[1]), lambda s, r=r: s[0] == s[1] and r(s[0]),
                  lambda s, r=r: r(s[0]), lambda s, r=r: r(s[1])]
    return rules + area_rules(sizes)


def works(runs: dict[tuple[int, ...], dict[str, Any]]) -> dict[tuple[int, ...], bool]:
    """Where a module works: it runs, keeps the shape where it should and its outputs are finite — unless they
    are NaN/Inf wherever it runs (then that is a failure of its own, not a rule on the size)."""
    somewhere = any(r["ok"] and r["finite"] for r in runs.values())
    return {k: r["ok"] and (r["finite"] or not somewhere) for k, r in runs.items()}


def area_rules(sizes: list[tuple[int, ...]]) -> list[Callable[[tuple[int, ...]], bool]]:
    """h·w = A and h·w ≥ A for every area A among ``sizes``, and h·w a multiple of k for k up to the largest."""
    areas = sorted({math.prod(s) for s in sizes})
    return ([lambda s, a=a: math.prod(s) == a for a in areas] + [lambda s, a=a: math.prod(s) >= a for a in areas]
            + [lambda s, k=k: math.prod(s) % k == 0 for k in range(2, max(areas) + 1)])


class Truth:
    """Real runs of one corpus entry (a fresh module per width, seeded like the checker's)."""

    def __init__(self, build: Callable[[int], nn.Module], layout: str, c: int, keeps: bool) -> None:
        self.build, self.layout, self.c, self.keeps = build, layout, c, keeps
        self._made: dict[int, Any] = {}
        self._runs: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.names = ("n",) if layout == "b n c" else ("h", "w")

    def module(self, c: int) -> nn.Module | None:
        if c not in self._made:
            torch.manual_seed(0)
            try:
                self._made[c] = self.build(c)
            except Exception:  # noqa: BLE001 — cannot be built at this width
                self._made[c] = None
        return self._made[c]

    def run(self, size: tuple[int, ...], c: int | None = None, b: int = 2, train: bool = False,
            module: nn.Module | None = None, seed: int = 0) -> dict[str, Any]:
        """One forward: ok (ran, and kept the shape where it should), finite, wrote_input, output shape."""
        c = self.c if c is None else c
        key = (tuple(size), c, b, train, seed)
        if module is None and key in self._runs:
            return self._runs[key]
        result = self._run(size, c, b, train, module, seed)
        if module is None:
            self._runs[key] = result
        return result

    def _run(self, size: tuple[int, ...], c: int, b: int, train: bool, module: nn.Module | None,
             seed: int) -> dict[str, Any]:
        m = module or self.module(c)
        if m is None:
            return {"ok": False, "error": "construction"}
        x = torch.randn(shape_of(self.layout, b, c, size), generator=torch.Generator().manual_seed(seed))
        given = x.clone()
        m.train(train)
        try:
            with torch.no_grad():
                out = _tensors(m(given))
        except Exception as err:  # noqa: BLE001
            return {"ok": False, "error": f"{type(err).__name__}: {err}"}
        ok = bool(out) and (not self.keeps or tuple(out[0].shape) == tuple(x.shape))
        return {"ok": ok, "output": list(out[0].shape) if out else None, "wrote_input": not torch.equal(x, given),
                "finite": all(bool(torch.isfinite(t).all()) for t in out if t.is_floating_point())}

    def grid(self, extra: list[tuple[int, ...]]) -> dict[tuple[int, ...], bool]:
        """Works or not, over the dense grid and the report's own sizes (see :func:`works`)."""
        sizes = [(n,) for n in TOKENS] if self.names == ("n",) else [(s, s) for s in SQUARES] + PAIRS
        return works({s: self.run(s) for s in dict.fromkeys(sizes + [tuple(e) for e in extra])})

    def channels(self, size: tuple[int, ...], extra: list[int]) -> dict[tuple[int, ...], bool]:
        """Works or not at each width of the grid (built fresh at each; see :func:`works`)."""
        return works({(c,): self.run(size, c=c) for c in dict.fromkeys(CHANNELS + extra)})

    def dead(self, sizes: list[tuple[int, ...]]) -> list[str] | None:
        """Trainable parameters no gradient reaches at any of ``sizes`` (train mode, batch 2)."""
        torch.manual_seed(0)
        m = self.build(self.c).train()
        alive: set[str] = set()
        ran = False
        for size in sizes:
            m.zero_grad(set_to_none=True)
            try:
                out = [t for t in _tensors(m(torch.randn(shape_of(self.layout, 2, self.c, size)) * 1))
                       if t.is_floating_point() and t.requires_grad]
                if out:
                    sum(t.square().mean() for t in out).backward()
            except Exception:  # noqa: BLE001
                continue
            ran = True
            alive |= {n for n, p in m.named_parameters() if p.grad is not None}
        return [n for n, p in m.named_parameters() if p.requires_grad and n not in alive] if ran else None

    def numbers(self, base: tuple[int, ...]) -> dict[str, Any]:
        """Modes, batch independence and input use at the base size."""
        size = (base[1],) if self.names == ("n",) else tuple(base[1:3] if self.layout == "b h w c" else base[2:4])
        modes = {f"{m}, batch {b}": self.run(size, b=b, train=m == "train") for m in ("train", "eval") for b in (2, 1)}
        m = self.module(self.c).eval()
        x = torch.randn(shape_of(self.layout, 3, self.c, size))
        with torch.no_grad():
            together = _tensors(m(x.clone()))[0]
            alone = torch.cat([_tensors(m(x[i:i + 1].clone()))[0] for i in range(3)])
            rel = float((alone - together).abs().max() / (together.abs().max() + 1e-12))
            x1, x2 = torch.randn(x[:2].shape), torch.randn(x[:2].shape) * 2 + 1
            same = all(torch.equal(a, b) for a, b in zip(_tensors(m(x1)), _tensors(m(x2))))
        leaf = torch.randn(shape_of(self.layout, 2, self.c, size), requires_grad=True)
        torch.manual_seed(0)
        g = self.build(self.c).train()
        try:
            out = [t for t in _tensors(g(leaf * 1)) if t.is_floating_point() and t.requires_grad]
            if out:
                sum(t.square().mean() for t in out).backward()
            backward = True
        except Exception:  # noqa: BLE001 — training fails here: nothing is known about gradients
            backward = False
        return {"modes": modes, "batch_independent": math.isfinite(rel) and rel <= 1e-4, "backward": backward,
                "ignores_input": (same and leaf.grad is None) if backward else None}
