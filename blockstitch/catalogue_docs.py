"""The generated catalogue pages, docs/library.md and its Chinese twin docs/library.zh-CN.md: one table per
category, every number computed from the registry (params on a meta build, MACs from the spec's analytic count).

Regenerate after adding blocks::

    python -m blockstitch.catalogue_docs --write        # or: blockstitch blocks --markdown [--lang zh-CN]
"""

from __future__ import annotations

import argparse
import functools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .blockspec import CATEGORIES, BlockSpec, Shape
from .catalogue import Entry, entries, example_spec
from .errors import fmt_shape
from .registry import get_block

__all__ = ["library_markdown", "example_cost", "doc_paths", "main"]

STANDARD_INPUT: dict[str, Shape] = {"b c h w": (1, 64, 32, 32), "b n c": (1, 256, 64), "b h w c": (1, 32, 32, 64)}
"""Where a single-input block is measured for the tables (its example's own input when it does not fit)."""

TEXT: dict[str, dict[str, Any]] = {
    "en": {
        "title": "# The block library",
        "intro": "Generated from the registry by `python -m blockstitch.catalogue_docs --write` (or `blockstitch "
                 "blocks --markdown`); do not edit by hand — a test fails when this page is not current. {n} blocks, {p} "
                 "with a paper. *params* and *MACs* are one forward pass at batch 1 at the stated *input*, with the "
                 "fields of the block's example (`blockstitch blocks KIND` prints its card); MACs are counted the "
                 "way `torch.utils.flop_counter` counts them (FLOPs = 2 × MACs). Inputs: {std}, else the "
                 "block's own example input.",
        "cols": ("kind", "paper", "year", "aliases", "inputs", "layout in → out", "size rule", "channel rule",
                 "input", "params", "MACs"),
        "many": "2+", "any": "any",
        "cat": {c: c for c in CATEGORIES},
    },
    "zh-CN": {
        "title": "# 模块库",
        "intro": "本页由注册表自动生成：`python -m blockstitch.catalogue_docs --write`（或 `blockstitch blocks --markdown "
                 "--lang zh-CN`），请勿手工编辑——本页与生成结果不一致时测试会失败。共 {n} 个模块，其中 {p} 个附有论文。"
                 "*参数量* 与 *MACs* 为 batch 1、给定 *输入* 下一次前向的数值，字段取模块示例中的取值"
                 "（`blockstitch blocks KIND` 可查看模块卡片）；MACs 的计数方式与 `torch.utils.flop_counter` 相同"
                 "（FLOPs = 2 × MACs）。输入：{std}，不适用时取模块示例自带的输入。",
        "cols": ("kind", "论文", "年份", "别名", "输入数", "布局 输入 → 输出", "尺寸规则", "通道规则", "输入",
                 "参数量", "MACs"),
        "many": "≥2", "any": "任意",
        "cat": {"attention": "注意力 (attention)", "conv": "卷积 (conv)", "down": "下采样 (down)",
                "up": "上采样 (up)", "fusion": "融合 (fusion)", "token_mixer": "令牌混合 (token_mixer)",
                "block": "网络块 (block)", "neck": "颈部 (neck)", "head": "头部 (head)", "stem": "主干入口 (stem)",
                "norm": "归一化 (norm)", "layout": "布局 (layout)", "op": "基础算子 (op)", "adapter": "适配器 (adapter)"},
    },
}


def _inputs_for(cls: type[BlockSpec], spec: BlockSpec) -> list[Shape]:
    example = [(1, *s[1:]) for s in cls.example()[1][0]]
    if cls.arity != 1 or not cls.in_layouts or cls.in_layouts[0] not in STANDARD_INPUT:
        return example
    standard = [STANDARD_INPUT[cls.in_layouts[0]]]
    try:
        spec.with_layout(cls.in_layouts[0]).out_shape(standard)
        return standard
    except Exception:  # noqa: BLE001 — the standard input does not suit this block: use its own example
        return example


@functools.lru_cache(maxsize=None)  # one meta build per kind and process
def example_cost(kind: str) -> tuple[list[Shape], int, int]:
    """``(inputs, params, macs)`` of a block at the catalogue's input, built on the meta device.

    >>> example_cost("se")[0]
    [(1, 64, 32, 32)]
    """
    cls = get_block(kind)
    spec = example_spec(cls)
    if spec is None:
        raise ValueError(f"{kind}: its example fields do not validate")
    shapes = _inputs_for(cls, spec)
    bound = spec.with_layout(cls.in_layouts[0]) if cls.in_layouts else spec
    with torch.device("meta"):
        module = bound.build(shapes)
    params = sum(p.numel() for p in module.parameters())
    return shapes, params, int(bound.macs(shapes))


def _count(value: int) -> str:
    if value < 10_000:
        return f"{value:,}"
    units = ((1e9, "G"), (1e6, "M"), (1e3, "k"))
    scale, unit = next((s, u) for s, u in units if value >= s)
    digits = max(0, 2 - int(math.log10(value / scale)))
    return f"{value / scale:.{digits}f}{unit}"


def _row(e: Entry, t: dict) -> str:
    shapes, params, macs = example_cost(e.kind)
    shapes = list(shapes)
    paper = f"[{e.paper.title}]({e.paper.url}) ({e.paper.venue})" if e.paper else ""
    layouts = (" | ".join(e.layouts_in) if e.layouts_in else t["any"]) + f" → {e.layout_out}"
    cells = [f"`{e.kind}`", paper, str(e.paper.year) if e.paper else "", ", ".join(e.aliases),
             str(e.inputs) if e.inputs is not None else t["many"], layouts, e.size_rule, e.channel_rule,
             " + ".join(fmt_shape(s) for s in shapes), _count(params), _count(macs)]
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def library_markdown(lang: str = "en", pool: Sequence[Entry] | None = None) -> str:
    """The catalogue page in ``lang`` ("en" or "zh-CN"): every built-in block, a table per category."""
    t = TEXT[lang]
    pool = list(entries(builtin_only=True) if pool is None else pool)
    std = ", ".join(f"`{k}` {fmt_shape(v)}" for k, v in STANDARD_INPUT.items())
    lines = [t["title"], "", t["intro"].format(n=len(pool), p=sum(e.paper is not None for e in pool), std=std)]
    for cat in CATEGORIES:
        members = [e for e in pool if e.category == cat]
        if not members:
            continue
        lines += ["", f"## {t['cat'][cat]} ({len(members)})", "", "| " + " | ".join(t["cols"]) + " |",
                  "|" + "|".join("---" if i < 9 else "--:" for i in range(len(t["cols"]))) + "|"]
        lines += [_row(e, t) for e in members]
    return "\n".join(lines) + "\n"


def doc_paths(root: Path | None = None) -> dict[str, Path]:
    """``{"en": docs/library.md, "zh-CN": docs/library.zh-CN.md}`` under the repository root."""
    base = (root or Path(__file__).resolve().parents[1]) / "docs"
    return {"en": base / "library.md", "zh-CN": base / "library.zh-CN.md"}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m blockstitch.catalogue_docs [--lang zh-CN] [--write]``: print a page, or write both."""
    p = argparse.ArgumentParser(prog="python -m blockstitch.catalogue_docs", description=__doc__.splitlines()[0])
    p.add_argument("--lang", choices=sorted(TEXT), default="en")
    p.add_argument("--write", action="store_true", help="write docs/library.md and docs/library.zh-CN.md")
    args = p.parse_args(argv)
    if not args.write:
        print(library_markdown(args.lang), end="")
        return 0
    for lang, path in doc_paths().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(library_markdown(lang), encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":  # python -m blockstitch.catalogue_docs [--lang zh-CN] [--write]
    raise SystemExit(main())
