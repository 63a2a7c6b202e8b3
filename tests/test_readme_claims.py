"""Issue 25 (6): the README's edit example and its sentence about a shipped spec say what the code does — the
`replace` example keeps conv → BN (never conv → BN → BN), and the sentence about `cbam_resnet50` names the field the
shipped spec has and the overhead its networks show."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

import blockstitch as bs

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_replace_example_keeps_one_norm_after_the_new_conv() -> None:
    timm = pytest.importorskip("timm")
    example = next(b for b in re.findall(r"```yaml\n(.*?)```", README, flags=re.S) if "replace:" in b)
    edit = yaml.safe_load(example)
    model = timm.create_model(edit["extends"].removeprefix("timm:")).eval()
    new, report = bs.stitch(model, input_shape=(3, 64, 64), replace=edit["replace"])
    replaced = {e.path for e in report.edits}
    assert replaced, report
    order: list[tuple[str, nn.Module]] = []  # truth: the leaf modules in the order the forward calls them
    hooks = [m.register_forward_hook(lambda mod, i, o, name=name: order.append((name, mod)))
             for name, m in new.named_modules() if not list(m.children())]
    with torch.no_grad():
        new(torch.randn(1, 3, 64, 64))
    for h in hooks:
        h.remove()
    norms = (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)
    pairs = list(zip(order, order[1:]))
    assert not [(a, b) for (a, ma), (b, mb) in pairs if isinstance(ma, norms) and isinstance(mb, norms)]
    for path in replaced:  # the replaced conv's own output goes straight into the block's next norm (bn2)
        ran = [(n, m) for n, m in order if n.startswith(path.rsplit(".", 1)[0] + ".")]
        i = next(k for k, (n, _) in enumerate(ran) if n.endswith(".bn2"))
        assert isinstance(ran[i - 1][1], nn.Conv2d) and ran[i - 1][1].groups == 32, ran[i - 1]


def test_the_sentence_about_cbam_resnet50_matches_the_shipped_spec() -> None:
    said = re.search(r"`(\w+)` is an edit\s+of `(\w+)` \(`extends: (\w+)`\).*?\(\+([\d,]+) params, \+([\d.]+)%\)",
                     README, flags=re.S)
    assert said, "the README's sentence about cbam_resnet50's base and overhead is gone"
    name, base, extends, params, percent = said.groups()
    spec = yaml.safe_load((ROOT / "specs" / f"{name}.yaml").read_text(encoding="utf-8"))
    assert spec["extends"] == base == extends and "baseline" not in spec
    count = {n: sum(p.numel() for p in bs.build(n, device="meta").parameters()) for n in (name, base)}
    delta = count[name] - count[base]  # truth: both networks' parameters counted on meta
    assert int(params.replace(",", "")) == delta and float(percent) == round(100 * delta / count[base], 2)
    zh = (ROOT / "README.zh-CN.md").read_text(encoding="utf-8")
    assert f"`extends: {base}`" in zh and f"+{params} params" in zh and f"+{percent}%" in zh
