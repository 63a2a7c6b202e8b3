"""The paper's table: per variant params, MACs, latency, the metric's mean ± std over seeds and its Δ to the
baseline with a 95 % interval paired by seed, the best marked — as Markdown, CSV, LaTeX and JSON.

Collect plain records here (:func:`make_table`), format them in the ``to_*`` functions.

>>> print(to_markdown(make_table("demo", "top1", plans, latencies, rows)))
| variant | params | Δparams | MACs | ΔMACs | latency ms (95 % CI) [p10, p90] | Δlatency [95 % CI, paired by round] | top1 …
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from .measure import Latency, PlanRow
from ..spread import Ratio
from .stats import mean_std, paired_ci
from .variants import BASELINE

__all__ = ["make_table", "to_markdown", "to_csv", "to_latex", "to_json", "COLUMNS"]

COLUMNS = ("variant", "status", "params", "delta_params", "macs", "delta_macs", "latency_ms", "latency_ci_low_ms",
           "latency_ci_high_ms", "latency_p10_ms", "latency_p90_ms", "latency_ratio", "latency_ratio_low",
           "latency_ratio_high", "latency_ratio_coverage", "latency_rounds", "latency_within_noise", "metric", "mean",
           "std", "n", "delta", "delta_low", "delta_high", "best", "error")
"""The CSV columns, in order (JSON rows hold these plus ``seeds``, ``others``, ``failed_seeds`` and
``latency_samples_ms``, the per-round times the ratio was computed from)."""


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def make_table(name: str, metric: str, plans: list[PlanRow], latencies: list[Latency],
               rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One record per variant (plan order, baseline first) from the plan, the latencies and the trial rows."""
    timing = {t.variant: t for t in latencies}
    by_variant: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_variant.setdefault(row["variant"], []).append(row)
    base_plan = plans[0]
    base_scores = {r["seed"]: r["metrics"].get(metric) for r in by_variant.get(BASELINE, []) if r["status"] == "ok"}
    records = []
    for plan in plans:
        rec: dict[str, Any] = dict.fromkeys(COLUMNS)
        rec.update(variant=plan.variant, metric=metric, best=False, error=plan.error, seeds={}, others={},
                   failed_seeds={}, latency_samples_ms=None)
        if plan.params is not None and base_plan.params is not None:
            rec.update(params=plan.params, delta_params=plan.params - base_plan.params, macs=plan.macs,
                       delta_macs=(plan.macs or 0) - (base_plan.macs or 0))
        t = timing.get(plan.variant)
        if t is not None:
            rec.update(latency_ms=t.median_ms, latency_ci_low_ms=t.ci_low_ms, latency_ci_high_ms=t.ci_high_ms,
                       latency_p10_ms=t.p10_ms, latency_p90_ms=t.p90_ms,
                       latency_ratio=t.ratio, latency_ratio_low=t.ratio_low, latency_ratio_high=t.ratio_high,
                       latency_ratio_coverage=t.ratio_coverage, latency_rounds=t.rounds,
                       latency_within_noise=t.within_noise, latency_samples_ms=t.samples_ms)
        trials = sorted(by_variant.get(plan.variant, []), key=lambda r: r["seed"])
        ok = [r for r in trials if r["status"] == "ok" and _finite(r["metrics"].get(metric))]
        rec["seeds"] = {str(r["seed"]): r["metrics"][metric] for r in ok}
        rec["failed_seeds"] = {str(r["seed"]): r.get("error") for r in trials if r not in ok}
        if ok:
            values = [r["metrics"][metric] for r in ok]
            rec["mean"], rec["std"] = mean_std(values)
            rec["n"] = len(values)
            others = {k for r in ok for k in r["metrics"] if k != metric}
            rec["others"] = {k: mean_std([r["metrics"][k] for r in ok if _finite(r["metrics"].get(k))])[0]
                             for k in sorted(others)}
            paired = [(base_scores[r["seed"]], r["metrics"][metric]) for r in ok
                      if _finite(base_scores.get(r["seed"]))]
            if paired:
                rec["delta"], rec["delta_low"], rec["delta_high"] = paired_ci([p[0] for p in paired],
                                                                             [p[1] for p in paired])
        if plan.error is not None:
            rec["status"] = "failed"
        elif trials and not ok:
            rec["status"] = "failed"
            rec["error"] = next(iter(rec["failed_seeds"].values()), None)
        elif rec["failed_seeds"]:
            rec["status"] = "partial"
            rec["error"] = "; ".join(f"seed {s}: {e}" for s, e in rec["failed_seeds"].items())
        else:
            rec["status"] = "ok" if ok else "planned"
        records.append(rec)
    scored = [r for r in records if _finite(r["mean"])]
    if scored:
        max(scored, key=lambda r: r["mean"])["best"] = True
    return {"name": name, "metric": metric, "rows": records}


def _count(v: Any) -> str:
    if not _finite(v):
        return "–"
    a = abs(v)
    return f"{v / 1e9:.2f}G" if a >= 1e9 else f"{v / 1e6:.2f}M" if a >= 1e6 else f"{v / 1e3:.1f}K" if a >= 1e3 \
        else f"{v:.0f}"


def _delta(v: Any, base: Any) -> str:
    if not _finite(v):
        return "–"
    pct = f" ({100 * v / base:+.1f}%)" if _finite(base) and base else ""
    return ("+" if v >= 0 else "−") + _count(abs(v)) + pct


def _num(v: Any, signed: bool = False, digits: int = 4) -> str:
    if not _finite(v):
        return "–"
    text = f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"
    return text.replace("-", "−")


def _digits(table: dict[str, Any]) -> int:
    """Decimals for the metric: 2 for percentages and other numbers above 1.5, 4 for fractions."""
    means = [abs(r["mean"]) for r in table["rows"] if _finite(r["mean"])]
    return 2 if means and max(means) > 1.5 else 4


def _cells(rec: dict[str, Any], base: dict[str, Any], d: int = 4) -> list[str]:
    lat = "–"
    if _finite(rec["latency_ms"]):
        lat = (f"{rec['latency_ms']:.3f} ({rec['latency_ci_low_ms']:.3f}–{rec['latency_ci_high_ms']:.3f}) "
               f"[{rec['latency_p10_ms']:.3f}, {rec['latency_p90_ms']:.3f}]")
    ratio = "–"
    if rec["variant"] == BASELINE:
        ratio = ""
    elif _finite(rec["latency_ratio"]):  # the ratio measure.Latency computed, written by spread's one formatter
        ratio = Ratio(rec["latency_ratio"], rec["latency_ratio_low"], rec["latency_ratio_high"],
                      rec["latency_ratio_coverage"], rec["latency_rounds"]).text().replace("-", "−")
    score = "–"
    if _finite(rec["mean"]):
        score = f"{_num(rec['mean'], digits=d)} ± {_num(rec['std'], digits=d)} ({rec['n']})"
    delta = "–"
    if rec["variant"] != BASELINE and _finite(rec["delta"]):
        delta = _num(rec["delta"], True, d)
        delta += f" [{_num(rec['delta_low'], True, d)}, {_num(rec['delta_high'], True, d)}]" \
            if _finite(rec["delta_low"]) else " [one seed: no interval]"
    name = rec["variant"] + (" ★" if rec["best"] else "")
    if rec["status"] in ("failed", "partial"):
        name += f" ({rec['status']}: {rec['error']})"
    return [name, _count(rec["params"]), _delta(rec["delta_params"], base["params"]) if rec is not base else "",
            _count(rec["macs"]), _delta(rec["delta_macs"], base["macs"]) if rec is not base else "", lat, ratio,
            score, delta]


def _headers(metric: str) -> list[str]:
    return ["variant", "params", "Δparams", "MACs", "ΔMACs", "latency ms (95 % CI) [p10, p90]",
            "Δlatency [95 % CI, paired by round]",
            f"{metric} mean ± std (n)", f"Δ{metric} [95 % CI, paired by seed]"]


def to_markdown(table: dict[str, Any]) -> str:
    """A GitHub/paper Markdown table (★ marks the best mean)."""
    rows = table["rows"]
    head = _headers(table["metric"])
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in _cells(r, rows[0], _digits(table))) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def to_csv(table: dict[str, Any]) -> str:
    """One line per variant, the :data:`COLUMNS`, plain numbers."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for rec in table["rows"]:
        writer.writerow(["" if rec[c] is None else rec[c] for c in COLUMNS])
    return buf.getvalue()


def _tex(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("$", r"\$"), ("{", r"\{"), ("}", r"\}"), ("×", r"$\times$"), ("±", r"$\pm$"), ("−", "-"),
                 ("Δ", r"$\Delta$"), ("★", r"$\star$"), ("–", "--"), ("*", r"$\ast$")):
        text = text.replace(a, b) if a != "\\" else text.replace(a, "\x00")
    return text.replace("\x00", r"\textbackslash{}")


def to_latex(table: dict[str, Any]) -> str:
    """A booktabs ``tabular`` (the best row in bold)."""
    rows = table["rows"]
    head = _headers(table["metric"])
    lines = [r"\begin{tabular}{l" + "r" * (len(head) - 1) + "}", r"\toprule",
             " & ".join(_tex(h) for h in head) + r" \\", r"\midrule"]
    for rec in rows:
        cells = [_tex(c) for c in _cells(rec, rows[0], _digits(table))]
        if rec["best"]:
            cells = [r"\textbf{" + c + "}" if c else c for c in cells]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def to_json(table: dict[str, Any]) -> str:
    """Everything, NaN as null."""
    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(table), indent=1, ensure_ascii=False) + "\n"
