"""blockstitch.spread against truths computed another way: binomial tables, a Monte-Carlo coverage, plain ratios."""

from __future__ import annotations

import random
import statistics

import pytest

from blockstitch.spread import Spread, median_ci, paired_ratio, quantile, scaled, warnings_for


def test_median_ci_matches_the_binomial_table() -> None:
    xs = list(range(1, 11))  # n = 10: j = 2, coverage 1 - 2·11/1024
    lo, hi, cov = median_ci([float(x) for x in xs])
    assert (lo, hi) == (2.0, 9.0)
    assert cov == pytest.approx(1 - 2 * 11 / 1024)
    lo, hi, cov = median_ci([float(x) for x in range(1, 21)])  # n = 20: j = 6
    assert (lo, hi) == (6.0, 15.0)
    assert cov == pytest.approx(0.9586, abs=1e-4)


def test_few_samples_give_the_whole_range_and_say_their_coverage() -> None:
    lo, hi, cov = median_ci([3.0, 1.0, 2.0])
    assert (lo, hi) == (1.0, 3.0)
    assert cov == pytest.approx(0.75)
    assert "75 % CI" in Spread.of([3.0, 1.0, 2.0]).text("ms")


def test_interval_covers_the_true_median_about_95_percent_of_the_time() -> None:
    rng = random.Random(0)
    hits = 0
    for _ in range(2000):
        xs = [rng.lognormvariate(0.0, 0.5) for _ in range(25)]  # true median exp(0) = 1
        lo, hi, _ = median_ci(xs)
        hits += lo <= 1.0 <= hi
    assert 0.94 <= hits / 2000 <= 0.99


def test_interval_narrows_as_samples_grow() -> None:
    rng = random.Random(1)
    xs = [rng.gauss(10.0, 1.0) for _ in range(400)]
    widths = [Spread.of(xs[:n]).ci_high - Spread.of(xs[:n]).ci_low for n in (10, 40, 400)]
    assert widths[0] > widths[1] > widths[2]


def test_spread_fields_agree_with_statistics() -> None:
    xs = [5.0, 1.0, 4.0, 2.0, 3.0, 9.0, 7.0]
    s = Spread.of(xs)
    assert s.median == statistics.median(xs)
    assert s.p10 == quantile(xs, 0.1) == pytest.approx(1.6)
    assert s.as_dict("latency_ms_")["latency_ms_median"] == 4.0


def test_paired_ratio_is_the_median_of_pair_ratios_and_a_a_is_within_noise() -> None:
    rng = random.Random(2)
    base = [rng.uniform(9, 11) for _ in range(30)]
    same = [b * rng.uniform(0.97, 1.03) for b in base]
    r = paired_ratio(base, same)
    assert r.estimate == statistics.median([v / b for b, v in zip(base, same)])
    quiet = 0
    for _ in range(400):  # A/A: the interval holds 1 about 95 % of the time
        a = [rng.uniform(9, 11) for _ in range(30)]
        quiet += paired_ratio(a, [x * rng.uniform(0.97, 1.03) for x in a]).within_noise
    assert quiet / 400 >= 0.9
    assert "within noise" in paired_ratio(base, base).text()
    slower = [b * 1.2 for b in base]
    r2 = paired_ratio(base, slower)
    assert r2.estimate == pytest.approx(1.2) and not r2.within_noise
    assert r2.text().startswith("+20.0 %")
    with pytest.raises(ValueError, match="equally long"):
        paired_ratio(base, slower[:3])


def test_scaled_units() -> None:
    assert scaled(2.3e9, "FLOP/s") == "2.30 GFLOP/s"
    assert scaled(4.56e5, "FLOP/s") == "456 kFLOP/s"
    assert scaled(1.234e14, "FLOP/s") == "123 TFLOP/s"
    assert scaled(0.0, "FLOP/s") == "0 FLOP/s"


def test_wide_spread_is_warned() -> None:
    assert any("wide spread" in w for w in warnings_for(Spread.of([1.0, 1.0, 5.0, 7.0, 1.0, 6.0])))
    assert not any("wide spread" in w for w in warnings_for(Spread.of([1.0, 1.01, 1.02, 0.99, 1.0])))


def test_a_ratio_of_few_pairs_says_its_lower_coverage() -> None:
    r = paired_ratio([1.0, 1.0, 1.0], [1.02, 1.05, 1.09])  # three pairs: the whole range, 1 - 2·(1/8) = 75 %
    assert (r.ci_low, r.ci_high) == (1.02, 1.09) and r.coverage == pytest.approx(0.75)
    assert r.text() == "+5.0 % [+2.0, +9.0] (75 % interval, n=3)"
    assert "interval, n=" not in paired_ratio([1.0] * 8, [1.1] * 8).text()  # eight pairs reach 95 %
