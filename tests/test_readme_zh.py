"""README.zh-CN.md is a full translation of README.md: same code blocks, same sections, linked both ways.

Prose is translated; every fenced code block and every generated region (``<!-- name:start -->`` …
``<!-- name:end -->``) is copied byte for byte, so a change to README.md's code, commands, printed output or
generated tables that is not carried over fails here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
EN, ZH = ROOT / "README.md", ROOT / "README.zh-CN.md"
TOP_LINES = 5  # the cross-link sits right under the title


class Block(NamedTuple):
    """A fenced code block: its text (fences included), the line it opens on, and the `## ` section it is in."""

    text: str
    line: int
    section: int


def parse(text: str) -> tuple[list[Block], list[str], list[str]]:
    """The fenced code blocks, `## ` headings and `### ` headings of a Markdown text (headings inside fences skipped).

    >>> blocks, h2, h3 = parse("# t\\n## A\\n```bash\\n## not a heading\\n```\\n### B\\n")
    >>> [(b.line, b.section) for b in blocks], h2, h3
    ([(3, 1)], ['## A'], ['### B'])
    """
    lines = text.split("\n")
    blocks: list[Block] = []
    h2: list[str] = []
    h3: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            end = i + 1
            while end < len(lines) and lines[end] != "```":
                end += 1
            blocks.append(Block("\n".join(lines[i : end + 1]), i + 1, len(h2)))
            i = end + 1
            continue
        if line.startswith("## "):
            h2.append(line)
        elif line.startswith("### "):
            h3.append(line)
        i += 1
    return blocks, h2, h3


def regions(text: str) -> dict[str, str]:
    """Generated regions by name, markers included.

    >>> regions("a\\n<!-- zoo:start -->\\n|x|\\n<!-- zoo:end -->\\nb")
    {'zoo': '<!-- zoo:start -->\\n|x|\\n<!-- zoo:end -->'}
    """
    pattern = r"^<!-- ([\w-]+):start -->\n.*?^<!-- \1:end -->$"
    return {m.group(1): m.group(0) for m in re.finditer(pattern, text, flags=re.S | re.M)}


@pytest.fixture(scope="module")
def texts() -> tuple[str, str]:
    assert ZH.exists(), "README.zh-CN.md is missing: it is the full Chinese translation of README.md"
    return EN.read_text(encoding="utf-8"), ZH.read_text(encoding="utf-8")


def test_every_code_block_is_copied_verbatim_in_order(texts: tuple[str, str]) -> None:
    en, zh = (parse(t)[0] for t in texts)
    zh_texts = [b.text for b in zh]
    for block in en:
        if block.text not in zh_texts:
            first = block.text.split("\n")[1] if "\n" in block.text else block.text
            pytest.fail(f"README.md:{block.line}: the code block starting {first!r} is not in README.zh-CN.md; "
                        "copy it over byte for byte (code, comments and output are never translated) in place "
                        "of its old version, and translate the prose around it")
    stale = [b for b in zh if b.text not in {e.text for e in en}]
    assert not stale, (f"README.zh-CN.md:{stale[0].line}: this code block is not in README.md any more "
                       f"(starts {stale[0].text.splitlines()[:2]!r}); remove it or replace it with the current one")
    assert [b.text for b in zh] == [b.text for b in en], \
        "README.zh-CN.md has README.md's code blocks in another order (or a block twice): keep README.md's order"
    moved = [(e, z) for e, z in zip(en, zh) if e.section != z.section]
    assert not moved, (f"README.md:{moved[0][0].line}'s code block is in `## ` section {moved[0][0].section} there but "
                       f"in section {moved[0][1].section} of README.zh-CN.md (line {moved[0][1].line})")


def test_generated_regions_are_copied_verbatim(texts: tuple[str, str]) -> None:
    en, zh = (regions(t) for t in texts)
    assert "zoo" in en, "README.md lost its <!-- zoo:start --> … <!-- zoo:end --> table"
    for name, text in en.items():
        assert zh.get(name) == text, (f"README.zh-CN.md's <!-- {name}:start --> region differs from README.md's: "
                                      "copy README.md's region (markers included) over it")


def test_each_links_to_the_other_at_the_top(texts: tuple[str, str]) -> None:
    en, zh = texts
    assert "[中文](README.zh-CN.md)" in "\n".join(en.split("\n")[:TOP_LINES]), \
        "README.md must link [中文](README.zh-CN.md) right under its title"
    assert "[English](README.md)" in "\n".join(zh.split("\n")[:TOP_LINES]), \
        "README.zh-CN.md must link [English](README.md) at its top"


def test_every_section_is_translated(texts: tuple[str, str]) -> None:
    (_, en2, en3), (_, zh2, zh3) = (parse(t) for t in texts)
    for level, en_heads, zh_heads in (("##", en2, zh2), ("###", en3, zh3)):
        width = max(len(en_heads), len(zh_heads))
        padded = zip(en_heads + [""] * (width - len(en_heads)), zh_heads + [""] * (width - len(zh_heads)))
        pairs = "\n".join(f"  {e:<50} | {z}" for e, z in padded)
        assert len(en_heads) == len(zh_heads), (
            f"README.md has {len(en_heads)} `{level} ` sections, README.zh-CN.md {len(zh_heads)}: translate the new "
            f"section (or drop the removed one); side by side:\n{pairs}")
