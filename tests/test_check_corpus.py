"""check-module against the truth: for every corpus module (timm, Ultralytics, fightingcv-attention, planted
defects) the report is compared field by field with what real runs over a dense grid show, inside the test."""

from __future__ import annotations

import math
import re

import pytest
import torch
from corpus import Entry
from corpus.planted import PLANTED
from corpus.third_party import REAL
from corpus.truth import Truth, candidates

import blockstitch as bs

PLANTED_ENTRIES = [Entry(f"corpus.planted:{cls.__name__}", "channels") for cls in PLANTED]
ENTRIES = REAL + PLANTED_ENTRIES


def _size(rec: dict) -> tuple[int, ...]:
    return tuple(rec["size"])


def _rule_agrees(rule: bs.check.Rule, obs: dict[tuple[int, ...], bool], names: tuple[str, ...], what: str) -> None:
    """A simple rule must predict every observation; "no simple rule" only when none of the vocabulary fits."""
    if rule.simple:
        wrong = [s for s, ok in obs.items() if rule.admits(s) != ok]
        assert not wrong, f"{what} rule '{rule.text}' is wrong at {wrong[:6]} (truth: {[obs[s] for s in wrong[:6]]})"
    elif any(obs.values()):
        fits = [r for r in candidates(names, list(obs)) if all(r(s) == ok for s, ok in obs.items())]
        assert not fits, f"{what}: the report says '{rule.text}' but a simple rule fits the truth"


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: small real runs on one thread


def test_the_corpus_is_big_enough() -> None:
    assert len(REAL) >= 60 and len({e.where for e in REAL}) == len(REAL)
    assert len(PLANTED_ENTRIES) >= 13


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_report_matches_real_runs(entry: Entry) -> None:
    torch.manual_seed(0)
    rng = torch.get_rng_state()
    report = bs.check_module(entry.cls(), args=entry.args, input=entry.layout,
                             output=entry.layout if entry.keeps else None, axes={"c": entry.c})
    assert torch.equal(torch.get_rng_state(), rng)  # global RNG untouched
    truth = Truth(entry.build, entry.layout, entry.c, entry.keeps)

    # per-size results: every size the report lists, run for real here (works: runs, right shape, finite —
    # unless NaN/Inf comes out at every size)
    obs = truth.grid([_size(r) for r in report.sweep])
    reals = []
    for rec in report.sweep:
        real = truth.run(_size(rec))
        reals.append(real)
        assert rec["ok"] == obs[_size(rec)], f"at {_size(rec)}: report {rec['ok']} ({rec['error']}), truth {real}"
        if rec["ok"] and rec["how"].startswith("real"):
            assert rec["finite"] == real["finite"] and rec["wrote_input"] == real["wrote_input"], _size(rec)
            assert rec["output"] == real["output"]
    # the size rule, against a dense grid plus the report's own sizes
    _rule_agrees(report.size_rule, obs, truth.names, "size")
    swept = {_size(r): obs[_size(r)] for r in report.sweep}
    failing = [s for s, ok in swept.items() if not ok]  # only single-pixel inputs failing: a stated rule, passed
    sizes_pass = not failing or (any(swept.values()) and all(math.prod(s) == 1 for s in failing))
    assert (report.check("sizes").status == "passed") == sizes_pass, report.check("sizes").message
    if report.base is None:  # nothing ran: nothing else is claimed
        assert not any(obs.values()) or not report.ok
        return
    base_size = tuple(report.sweep[[r["input"] for r in report.sweep].index(report.base)]["size"])

    # the channel rule, when the corpus knows how to build the module at other widths
    if entry.ch is not None:
        assert report.channel_rule is not None, "the channel parameter was not inferred"
        c_obs = truth.channels(base_size, [r["size"][0] for r in report.channel_sweep])
        _rule_agrees(report.channel_rule, c_obs, ("c",), "channel")
        for rec in report.channel_sweep:
            assert rec["ok"] == c_obs[_size(rec)], f"channels {rec['size']}: {rec['error']}"
    else:
        assert report.channel_rule is None

    # modes, finiteness, batch independence, in-place writes, input use, dead parameters
    numbers = truth.numbers(tuple(report.base))
    for label, real in numbers["modes"].items():
        got = report.modes[label]
        assert (got["error"] is None) == (real.get("error") is None), f"{label}: {got} vs {real}"
        if got["error"] is None:
            assert got["finite"] == real["finite"] and got["wrote_input"] == real["wrote_input"], label
    assert report.batch_independent == numbers["batch_independent"]
    assert report.ignores_input == numbers["ignores_input"]
    wrote = [r for r in reals if r.get("wrote_input")] + [m for m in numbers["modes"].values()
                                                          if m.get("wrote_input")]
    assert report.writes_input == bool(wrote)
    working = [s for s, ok in obs.items() if ok and (len(s) == 1 or s[0] == s[1]) and max(s) <= 24]
    if report.dead_params is not None:
        assert sorted(report.dead_params) == sorted(truth.dead(working) or [])

    # the verdict, from the truth alone
    finite = all(real.get("finite", True) for rec, real in zip(report.sweep, reals) if obs[_size(rec)]) and all(
        m.get("finite", True) for m in numbers["modes"].values())
    verdict = (sizes_pass and all(m.get("error") is None for m in numbers["modes"].values())
               and finite and numbers["batch_independent"] and not wrote and not numbers["ignores_input"]
               and numbers["backward"] and not truth.dead(working))
    assert report.ok == verdict, [(c.name, c.message) for c in report.checks if c.status == "failed"]
    # every claim states its evidence: a size, a mode or a number
    for check in report.checks:
        assert re.search(r"\d", check.message), (check.name, check.message)
