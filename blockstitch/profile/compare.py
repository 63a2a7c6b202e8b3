"""Several networks' profiles side by side, each under its own name, every other one against the first: the
record behind `profile A --compare B C …`, in every output format (table, Markdown, CSV, JSON).

>>> c = compare(["resnet50", "cbam_resnet50", "seresnet50"])
>>> print(c.to_markdown())
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import Profile

__all__ = ["Comparison", "compare", "METRICS"]

METRICS = (("params", "params"), ("macs", "MACs"), ("flops", "FLOPs"), ("activation_bytes", "activation bytes"))
"""(field, label) of each compared total; FLOPs = 2 × MACs, both labelled."""


@dataclass
class Comparison:
    """Profiles of several networks; ``names[i]`` is what ``profiles[i]`` was asked for by; the first is the
    baseline every Δ is taken against."""

    names: list[str]
    profiles: list[Profile]

    def value(self, i: int, metric: str) -> int:
        """A total of network ``i`` (``metric``: one of :data:`METRICS`' fields)."""
        return int(getattr(self.profiles[i], metric))

    def delta(self, i: int, metric: str) -> tuple[int, float | None]:
        """(Δ, Δ % or None when the baseline is 0) of network ``i`` against the first."""
        base, value = self.value(0, metric), self.value(i, metric)
        return value - base, (100 * (value - base) / base if base else None)

    @property
    def title(self) -> str:
        """``cbam_resnet50, seresnet50 vs resnet50 — input 1×3×224×224``."""
        p = self.profiles[0]
        shape = "×".join(map(str, (p.batch, *p.input_shape)))
        return f"{', '.join(self.names[1:])} vs {self.names[0]} — input {shape}"

    def to_dict(self) -> dict[str, Any]:
        """JSON: the baseline's name, the input, and per network its totals, Δ and Δ % against the baseline."""
        p = self.profiles[0]
        rows = []
        for i, name in enumerate(self.names):
            row: dict[str, Any] = {"name": name, "profile_name": self.profiles[i].name}
            for metric, _ in METRICS:
                d, pct = self.delta(i, metric)
                row[metric] = self.value(i, metric)
                row[f"{metric}_delta"] = d
                row[f"{metric}_delta_pct"] = None if pct is None else round(pct, 4)
            rows.append(row)
        return {"baseline": self.names[0], "input_shape": p.input_shape, "batch": p.batch,
                "note": "MACs = multiply-accumulates, FLOPs = 2 × MACs; Δ against the baseline", "networks": rows}

    def to_csv(self) -> str:
        """One row per network: its totals, then Δ and Δ % against the first."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["name"] + [m for m, _ in METRICS] + [f"{m}_delta" for m, _ in METRICS]
                   + [f"{m}_delta_pct" for m, _ in METRICS])
        for i, name in enumerate(self.names):
            deltas = [self.delta(i, m) for m, _ in METRICS]
            w.writerow([name] + [self.value(i, m) for m, _ in METRICS] + [d for d, _ in deltas]
                       + ["" if pct is None else f"{pct:.4f}" for _, pct in deltas])
        return buf.getvalue()

    def to_markdown(self) -> str:
        """A table to paste: one row per total, one column per network with its Δ % against the first."""
        lines = [f"**{self.title}** — MACs = multiply-accumulates, FLOPs = 2 × MACs", "",
                 "| | " + " | ".join(self.names) + " |", "|---|" + "---:|" * len(self.names)]
        for metric, label in METRICS:
            cells = [f"{self.value(0, metric):,}"]
            for i in range(1, len(self.names)):
                d, pct = self.delta(i, metric)
                cells.append(f"{self.value(i, metric):,} ({d:+,}, {'—' if pct is None else f'{pct:+.2f}%'})")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        return "\n".join(lines)


def _label(source: Any, prof: Profile) -> str:
    """What a network is called in the comparison: the name it was asked for by (``resnet50``,
    ``timm:resnet18``, a spec path), or the profile's own name for an object."""
    return str(source) if isinstance(source, str) else prof.name


def compare(sources: Sequence[Any], input_shape: Sequence[int] | None = None, batch: int = 1, depth: int = 1,
            names: Sequence[str] | None = None) -> Comparison:
    """Profile every source (anything :func:`~blockstitch.profile.profile` takes) at the same input and batch;
    the first is the baseline. ``names`` label them (default: the names given, else the profiles' own);
    a name given twice is numbered.

    >>> compare(["resnet50", "cbam_resnet50"]).delta(1, "params")[0]
    2532592
    """
    from . import profile

    if len(sources) < 2:
        from ..errors import SpecError

        raise SpecError("a comparison needs at least two networks", expected="A B [C …]", found=str(len(sources)))
    profiles = [profile(s, input_shape, batch, depth=depth, ultralytics=False) for s in sources]  # totals only
    labels = list(names) if names is not None else [_label(s, p) for s, p in zip(sources, profiles)]
    seen: dict[str, int] = {}
    for i, label in enumerate(labels):
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            labels[i] = f"{label} #{seen[label]}"
    return Comparison(labels, profiles)
