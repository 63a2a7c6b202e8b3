"""The table: statistics checked against truths computed another way, and the four formats read back."""

from __future__ import annotations

import csv
import io
import json
import math
import statistics

import pytest

from blockstitch.ablate.measure import Latency, PlanRow
from blockstitch.ablate.stats import paired_ci, t975
from blockstitch.ablate.table import COLUMNS, make_table, to_csv, to_json, to_latex, to_markdown


def _t_cdf(t: float, df: int, steps: int = 20_000) -> float:
    """Student's t CDF by Simpson integration of its density (a truth independent of the table)."""
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    f = lambda x: c * (1 + x * x / df) ** (-(df + 1) / 2)  # noqa: E731
    h = t / steps
    total = f(0) + f(t) + sum((4 if i % 2 else 2) * f(i * h) for i in range(1, steps))
    return 0.5 + total * h / 3


@pytest.mark.parametrize("df", [1, 2, 3, 5, 10, 29, 30, 31, 45, 100])
def test_t_quantiles(df: int) -> None:
    closed = {1: math.tan(math.pi * 0.475), 2: 0.95 / math.sqrt(2 * 0.975 * 0.025)}
    if df in closed:
        assert t975(df) == pytest.approx(closed[df], abs=2e-3)
    assert _t_cdf(t975(df), df) == pytest.approx(0.975, abs=2e-4 if df > 2 else 5e-5)


def test_paired_interval() -> None:
    base, other = [0.70, 0.74, 0.71], [0.75, 0.76, 0.70]
    diffs = [o - b for b, o in zip(base, other)]
    mean, low, high = paired_ci(base, other)
    half = t975(2) * statistics.stdev(diffs) / math.sqrt(3)
    assert mean == pytest.approx(statistics.fmean(diffs)) and (low, high) == pytest.approx((mean - half, mean + half))
    assert math.isnan(paired_ci([1.0], [2.0])[1])  # one seed: no interval


def _rows() -> list[dict]:
    scores = {"baseline": [0.70, 0.72], "cbam": [0.75, 0.78], "eca": [0.71, None]}
    rows = []
    for variant, values in scores.items():
        for seed, v in enumerate(values):
            ok = v is not None
            rows.append({"key": f"{variant}-{seed}", "variant": variant, "seed": seed, "status": "ok" if ok else "failed",
                         "metrics": {"top1": v, "top5": 1.0} if ok else {}, "error": None if ok else "NaN loss"})
    return rows


def _table() -> dict:
    plans = [PlanRow("baseline", 1000, 10_000), PlanRow("cbam", 1200, 10_500, 2), PlanRow("eca", 1003, 10_010, 2),
             PlanRow("bad", error="shape: 1×7 ≠ 1×64")]
    base = [1.0 + 0.01 * (r % 7) for r in range(30)]
    lat = [Latency.of("baseline", base, base, "cpu", 1), Latency.of("cbam", base, [1.5 * b for b in base], "cpu", 1)]
    return make_table("demo", "top1", plans, lat, _rows())


def test_records() -> None:
    rows = {r["variant"]: r for r in _table()["rows"]}
    assert rows["cbam"]["mean"] == pytest.approx(0.765) and rows["cbam"]["std"] == pytest.approx(statistics.stdev([0.75, 0.78]))
    assert rows["cbam"]["delta"] == pytest.approx(0.055) and rows["cbam"]["best"] and not rows["baseline"]["best"]
    assert rows["cbam"]["delta_params"] == 200 and rows["cbam"]["delta_macs"] == 500
    assert rows["eca"]["status"] == "partial" and rows["eca"]["n"] == 1 and "NaN loss" in rows["eca"]["error"]
    assert rows["bad"]["status"] == "failed" and rows["bad"]["mean"] is None
    assert rows["eca"]["latency_ms"] is None  # not timed: no number made up


def test_formats_read_back() -> None:
    table = _table()
    md = to_markdown(table).splitlines()
    assert len(md) == 2 + 4 and "cbam ★" in md[3] and "+0.0550" in md[3] and "(failed: shape" in md[5]
    back = list(csv.DictReader(io.StringIO(to_csv(table))))
    assert [r["variant"] for r in back] == ["baseline", "cbam", "eca", "bad"] and list(back[0]) == list(COLUMNS)
    assert float(back[1]["mean"]) == pytest.approx(0.765) and back[3]["error"].startswith("shape")
    tex = to_latex(table)
    assert tex.startswith(r"\begin{tabular}") and tex.count(r" \\") == 5 and r"\textbf{cbam $\star$}" in tex
    data = json.loads(to_json(table))
    assert data["metric"] == "top1" and data["rows"][1]["seeds"] == {"0": 0.75, "1": 0.78}


def test_pareto_front_and_plot(tmp_path) -> None:
    from blockstitch.ablate.plot import pareto_front, plot_pareto

    points = [(1.0, 0.70, "a"), (2.0, 0.65, "b"), (2.0, 0.80, "c"), (3.0, 0.79, "d"), (4.0, 0.90, "e")]
    brute = [p for p in points if not any(q[0] <= p[0] and q[1] >= p[1] and q != p for q in points)]
    assert pareto_front(points) == sorted(brute)
    pytest.importorskip("matplotlib")
    files = plot_pareto(_table(), tmp_path)
    assert [f.name for f in files] == ["pareto.png", "pareto.svg"]
    assert files[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "cbam" in files[1].read_text()


def test_latency_carries_the_median_ci_in_rows_cells_and_plot() -> None:
    """The latency column and the plot's latency error bars are the median's 95 % CI of the samples the row keeps,
    recomputed here by the order-statistic rule (n = 30: the 10th and 21st smallest)."""
    from blockstitch.ablate.plot import _ci_bars
    from blockstitch.ablate.table import _cells

    table = _table()
    cbam = next(r for r in table["rows"] if r["variant"] == "cbam")
    ordered = sorted(cbam["latency_samples_ms"])
    assert (cbam["latency_ci_low_ms"], cbam["latency_ci_high_ms"]) == (ordered[9], ordered[20])
    cell = _cells(cbam, table["rows"][0])[5]
    assert f"({ordered[9]:.3f}–{ordered[20]:.3f})" in cell and cell.startswith(f"{cbam['latency_ms']:.3f} ")
    assert "latency ms (95 % CI) [p10, p90]" in to_markdown(table)
    x = cbam["latency_ms"]
    assert _ci_bars(cbam, x) == [[pytest.approx(x - ordered[9])], [pytest.approx(ordered[20] - x)]]
    eca = next(r for r in table["rows"] if r["variant"] == "eca")
    assert _ci_bars(eca, 1.0) is None  # not timed: no bar made up
