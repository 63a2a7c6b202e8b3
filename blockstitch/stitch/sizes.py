"""The input sizes a stitched network takes: the rule its input obeys (``h and w multiples of 32``), found by
running a meta shadow of it at sizes around its own input and inferring with check-module's vocabulary
(:mod:`blockstitch.rules`: one inference, not a second); the modules that fail first at the sizes it refuses
(``because of WindowAttn at layer4.1_window``); and, for an input it refuses, the nearest sizes that pass.

Everything runs on meta tensors (no storage; a ResNet-50 forward is about 70 ms of Python dispatch), so the sweep
costs a few seconds at most. The blame is the innermost module still running when a forward raised (forward
hooks); a failure outside every submodule leaves the rule without a blame, never with a wrong one.

>>> found = input_rule(model, (3, 224, 224))
>>> found.text
'h and w multiples of 32'
>>> found.refusal((3, 416, 416))      # None when the network runs at it
"input 3×416×416 breaks the stitched network's rule: h and w multiples of 64 (…); try 3×448×448 or 3×384×384"
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..assemble.limits import MAX_INPUT_DIM, MAX_INPUT_ELEMENTS
from ..errors import fmt_shape
from ..meta import needs_data, probe_dtype, shadow, torch_state_guard
from ..rules import Rule, area_pairs, follow_up_pairs, infer_rule, rule_1d

__all__ = ["Culprit", "InputRule", "input_rule", "Prober"]

Size = tuple[int, ...]
_SMALL = (1, 2, 4, 8, 16, 32, 64)
_MAX_DIVISORS = 24


@dataclass(frozen=True)
class Culprit:
    """The innermost module still running when a forward raised: its path, class and first line of error."""

    path: str
    type: str
    error: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready."""
        return {"path": self.path, "type": self.type, "error": self.error}


class Prober:
    """Runs a meta shadow of a network at input sizes (batch 1) and says, per size, whether it ran and, when it
    did not, which module was running when it raised. The network itself is never called; the shadow is made
    once and kept (it holds no storage)."""

    def __init__(self, model: nn.Module) -> None:
        with torch_state_guard():
            self.shadow = shadow(model).eval()
        self.dtype = probe_dtype(model)
        self.names = {id(m): n for n, m in self.shadow.named_modules() if n}
        self._open: list[str] = []
        self.seen: dict[Size, tuple[bool | None, Culprit | None]] = {}
        for m in self.shadow.modules():
            if id(m) in self.names:
                m.register_forward_pre_hook(self._enter)
                m.register_forward_hook(self._leave)

    def _enter(self, m: nn.Module, args: Any) -> None:
        self._open.append(self.names[id(m)])

    def _leave(self, m: nn.Module, args: Any, out: Any) -> None:
        name = self.names[id(m)]
        while self._open and self._open.pop() != name:  # children that raised and were caught inside it
            pass

    def run(self, shape: Size) -> tuple[bool | None, Culprit | None]:
        """(ran, culprit) at ``shape`` (without the batch); ran is None when meta tensors cannot tell (the
        forward needs data). Cached per shape."""
        if shape not in self.seen:
            self._open.clear()
            try:
                with torch_state_guard(), torch.no_grad():
                    self.shadow(torch.empty((1, *shape), device="meta", dtype=self.dtype))
                self.seen[shape] = (True, None)
            except Exception as err:  # noqa: BLE001 — a size the network refuses is an observation
                if needs_data(err):
                    self.seen[shape] = (None, None)
                else:
                    first = (str(err).splitlines() or [""])[0][:200]
                    path = self._open[-1] if self._open else ""
                    module = self.shadow.get_submodule(path) if path else None
                    culprit = Culprit(path, type(module).__name__, f"{type(err).__name__}: {first}") if path else None
                    self.seen[shape] = (False, culprit)
        return self.seen[shape]

    def ok(self, shape: Size) -> bool | None:
        """Whether the network runs at ``shape`` (None: meta tensors cannot tell)."""
        return self.run(shape)[0]


@dataclass
class InputRule:
    """The rule a network's input obeys (over h, w), the sizes it was found at, and the modules that fail first
    at the sizes it refuses (empty when some failure happened outside every submodule: then no blame)."""

    rule: Rule
    input_shape: Size
    tried: list[Size]
    culprits: list[Culprit]
    prober: Prober | None = field(default=None, repr=False, compare=False)

    @property
    def because(self) -> str:
        """``because of WindowAttn at layer4.1_window`` (at most two modules, the most frequent first), or ""."""
        if not self.culprits:
            return ""
        named = [f"{c.type} at {c.path}" for c in self.culprits[:2]]
        more = f" and {len(self.culprits) - 2} more" if len(self.culprits) > 2 else ""
        return "because of " + " and ".join(named) + more

    @property
    def text(self) -> str:
        """The rule with its blame: ``h and w multiples of 224 (because of WindowAttn at model.9)``."""
        return self.rule.text + (f" ({self.because})" if self.because else "")

    def admits(self, shape: Size) -> bool | None:
        """Whether the rule admits an input (without the batch); None when it cannot say."""
        if len(shape) != len(self.input_shape):
            return None
        if shape[0] != self.input_shape[0]:
            return False
        return self.rule.admits(shape[1:])

    def nearest(self, shape: Size, count: int = 2) -> list[Size]:
        """Up to ``count`` inputs nearest to ``shape`` that the rule admits and the network runs at (each
        confirmed by a meta run), nearest first, the larger of two as near."""
        c, h, w = self.input_shape[0], shape[-2], shape[-1]
        sizes = set(_candidates(self.rule, h, w)) | {s[1:] for s in self.tried}
        ranked = sorted((s for s in sizes if s != (h, w)),  # the same aspect first (a square stays square)
                        key=lambda s: (s[0] * w != s[1] * h, abs(s[0] - h) + abs(s[1] - w), -s[0] - s[1], -s[0]))
        found: list[Size] = []
        for s in ranked:
            if max(s) > MAX_INPUT_DIM or c * s[0] * s[1] > MAX_INPUT_ELEMENTS:
                continue  # never suggest an input the limits refuse
            if self.rule.admits(s) is not False and (self.prober is None or self.prober.ok((c, *s))):
                found.append((c, *s))
                if len(found) == count:
                    break
        return found

    def refusal(self, shape: Size) -> str | None:
        """None when the network runs at ``shape`` (checked on meta tensors), else the sentence saying why not
        and what to try: ``input 3×416×416 breaks the stitched network's rule: … ; try 3×448×448 or 3×384×384``.
        """
        if self.prober is None or len(shape) != len(self.input_shape) or self.prober.ok(tuple(shape)) is not False:
            return None
        try_ = " or ".join(fmt_shape(s) for s in self.nearest(shape))
        tail = f"; try {try_}" if try_ else ""
        if shape[0] != self.input_shape[0]:
            return (f"input {fmt_shape(shape)} has {shape[0]} channels; the stitched network takes "
                    f"{self.input_shape[0]}{tail}")
        if self.rule.admits(shape[1:]) is False:
            return f"input {fmt_shape(shape)} breaks the stitched network's rule: {self.text}{tail}"
        culprit = self.prober.run(tuple(shape))[1]
        at = f" (at {culprit.type} {culprit.path}: {culprit.error})" if culprit else ""
        return f"the stitched network does not run at input {fmt_shape(shape)}{at}; its rule: {self.text}{tail}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the rule (kind, axes, area, text), the blame, the sizes tried."""
        return {**self.rule.to_dict(), "text": self.text, "rule_text": self.rule.text,
                "because": [c.to_dict() for c in self.culprits], "tried": [list(s[1:]) for s in self.tried]}


def _sides(h: int) -> list[int]:
    """Square sides to try for an input of side ``h``: h plus each of its divisors (so a rule "multiples of k"
    for any k dividing h shows as h + k working), small sides, h / 2 and 2h. Not h − 1: a network whose
    stride-2 convs round up also runs a few pixels below a multiple of its stride, which no simple rule says;
    the rule is stated on the sizes tried (an input is checked by running it, so such a size is never refused).
    """
    divisors = [d for d in range(1, h) if h % d == 0]
    if len(divisors) > _MAX_DIVISORS:
        divisors = divisors[:_MAX_DIVISORS - 4] + divisors[-4:]
    return sorted({h, 2 * h, h // 2, *_SMALL, *(h + d for d in divisors)} - {0})


def _bisect_min(prober: Prober, c: int, obs: dict[Size, bool]) -> None:
    """Where the diagonal says "at least m", find m exactly between the largest failing side below it and it."""
    diagonal = {s[0]: ok for s, ok in obs.items() if s[0] == s[1]}
    rule = rule_1d(diagonal)
    if rule is None or rule[0] != "min" or rule[1] is None:
        return
    low = max((s for s, ok in diagonal.items() if not ok and s < rule[1]), default=0)
    high = rule[1]
    while high - low > 1:
        mid = (low + high) // 2
        ok = prober.ok((c, mid, mid))
        if ok is None:
            return
        obs[(mid, mid)] = ok
        low, high = (low, mid) if ok else (mid, high)


def _blame(prober: Prober, c: int, refused: list[Size]) -> list[Culprit]:
    """The modules that failed first at the refused sizes, most often first (then in the network's order of
    paths); empty when any refused size failed outside every submodule (the cause is not known, so nothing is
    blamed)."""
    found = [prober.run((c, *s))[1] for s in refused]
    if not found or any(f is None for f in found):
        return []
    counts = Counter(f.path for f in found if f is not None)
    first = {f.path: f for f in reversed([f for f in found if f is not None])}
    order = {p: i for i, p in enumerate(prober.names.values())}
    return [first[p] for p in sorted(counts, key=lambda p: (-counts[p], order.get(p, 0)))]


def input_rule(model: nn.Module | Prober, input_shape: Size) -> InputRule | None:
    """The rule the input of ``model`` (run at ``input_shape``, without the batch: ``(c, h, w)``) obeys over h
    and w, with its blame; None for inputs that are not ``(c, h, w)`` or when meta tensors cannot tell (the
    forward needs data at its own input). A :class:`Prober` made earlier may stand for the model.

    >>> input_rule(timm.create_model("resnet18"), (3, 224, 224)).text
    'any size'
    """
    if len(input_shape) != 3:
        return None
    prober = model if isinstance(model, Prober) else Prober(model)
    c, h, w = input_shape
    if prober.ok(tuple(input_shape)) is not True:
        return None
    obs: dict[Size, bool] = {(h, w): True}

    def observe(sizes: list[Size]) -> None:
        for s in sizes:
            ok = prober.ok((c, *s))
            if ok is not None:
                obs[s] = ok

    observe([(s, s) for s in sorted(set(_sides(h)) | set(_sides(w)))])
    _bisect_min(prober, c, obs)
    observe(follow_up_pairs(obs) + area_pairs(obs))
    rule = infer_rule(("h", "w"), obs)
    refused = [s for s, ok in obs.items() if not ok]
    near = [s for s in refused if min(s) >= min(h, w) // 2] or refused  # sizes one would give, not 1×1
    return InputRule(rule, (c, h, w), [(c, *s) for s in sorted(obs)], _blame(prober, c, near), prober)


def _near(v: int, one: tuple[str, int | None]) -> list[int]:
    """The values nearest ``v`` that a one-axis rule admits (below and above)."""
    kind, value = one
    if kind == "any" or value is None:
        return [v]
    if kind == "fixed":
        return [value]
    if kind == "min":
        return [max(v, value)]
    down, up = (v // value) * value, -(-v // value) * value
    return [s for s in (down, up) if s > 0]


def _candidates(rule: Rule, h: int, w: int) -> list[Size]:
    """Sizes near (h, w) the rule admits: per axis below and above, on the diagonal for square-only rules,
    factor pairs of a fixed area, the nearest multiple of an area's k along either axis, the side that reaches a
    least area."""
    if not rule.simple:
        return []
    if rule.area is not None:
        kind, value = rule.area
        if kind == "fixed":
            return [(d, value // d) for d in range(1, value + 1) if value % d == 0]
        if kind == "min":  # keeping one side, the other grows to reach the area
            return [(h, max(w, -(-value // h))), (max(h, -(-value // w)), w)]
        # keeping h, w must be a multiple of value / gcd(h, value) for h·w to be one of value (and the other way)
        out: list[Size] = [(h, s) for s in _near(w, ("multiple_of", value // math.gcd(h, value)))]
        return out + [(s, w) for s in _near(h, ("multiple_of", value // math.gcd(w, value)))]
    hs, ws = (_near(v, r) for v, r in zip((h, w), rule.axes.values()))
    if rule.square:
        return [(s, s) for s in {*hs, *ws}]
    return list(itertools.product(hs, ws))
