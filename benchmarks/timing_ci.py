"""The confidence interval of a median narrows as repetitions grow, and an A/A comparison reads "within noise"
(issue #26, item 2: every timing with its uncertainty).

One small CPU op (a 3×3 conv, 16→16 channels, 1×16×32×32) is timed by the bench harness
(`blockstitch.bench.timing.measure`, exactly N samples) at N = 10, 40, 160, several trials each; each trial's
median carries a 95 % interval from order statistics (`blockstitch.spread.Spread`), and the table shows its
width relative to the median: it should shrink roughly as 1/√N. Then the same callable is compared with itself
in interleaved rounds (`interleaved` + `paired_ratio`): the interval of the paired ratio should hold 1 ("within
noise"). A positive control (the op run twice against once) should not.

    python benchmarks/timing_ci.py [--trials 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine  # noqa: E402

from blockstitch.bench.timing import interleaved, measure  # noqa: E402
from blockstitch.spread import Spread, paired_ratio  # noqa: E402

CPU = torch.device("cpu")


def load() -> str:
    """The load averages (1, 5, 15 min) and the core count: how busy the machine was."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} cores"


def main() -> None:
    """Print the CI width per repetition count, then the A/A and A/2A comparisons."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=5, help="measurements per repetition count")
    parser.add_argument("--rounds", type=int, default=60, help="interleaved rounds of the A/A comparison")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: on a shared machine a second thread waits on a busy core)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    conv, x = nn.Conv2d(16, 16, 3, padding=1).eval(), torch.randn(1, 16, 32, 32)

    def op() -> object:
        with torch.inference_mode():
            return conv(x)

    def twice() -> object:
        op()
        return op()

    print(f"machine: {machine()}")
    print(f"before: {load()}")
    print("op: conv 3×3, 16→16, 1×16×32×32, float32, eager")
    print(f"{'reps':>5s} {'median ms':>10s} {'95 % CI ms':>17s} {'CI width':>9s} {'p10–p90 ms':>17s}   "
          f"(median over {args.trials} trials; width = (high − low) / median)")
    widths = {}
    for n in (10, 40, 160):
        trials = [Spread.of(measure(op, CPU, budget_s=3600, min_reps=n, max_reps=n).samples_ms)
                  for _ in range(args.trials)]
        assert all(t.n == n for t in trials)
        mid = min(trials, key=lambda t: abs(t.median - statistics.median(s.median for s in trials)))
        widths[n] = statistics.median((t.ci_high - t.ci_low) / t.median for t in trials)
        print(f"{n:5d} {mid.median:10.4f} {f'{mid.ci_low:.4f}–{mid.ci_high:.4f}':>17s} {100 * widths[n]:8.1f}% "
              f"{f'{mid.p10:.4f}–{mid.p90:.4f}':>17s}")
    print(f"CI width 10 → 160 reps: {100 * widths[10]:.1f}% → {100 * widths[160]:.1f}% "
          f"({widths[10] / widths[160]:.1f}× narrower; 1/√N predicts 4×)")
    base, variant = interleaved([op, op], CPU, rounds=args.rounds)
    aa = paired_ratio(base, variant)
    print(f"A/A  (the op against itself, {aa.n} interleaved rounds): {aa.text()}")
    once, two = interleaved([op, twice], CPU, rounds=args.rounds)
    ab = paired_ratio(once, two)
    print(f"A/2A (the op run twice against once, {ab.n} rounds):      {ab.text()}")
    print(f"after: {load()}")


if __name__ == "__main__":
    main()
