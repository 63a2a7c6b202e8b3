"""The rule a module obeys, inferred from where it worked: any size, a fixed size, multiples of k, at least m,
square only, a fixed area, an area that is a multiple of k or at least so many pixels (``h·w = 64``: a module
that views its tokens as a fixed grid; ``h·w ≥ 2``: a variance over the pixels) — or "no simple rule" when the
observations fit none of these (never a wrong simple rule).

check-module infers a block's rule with it, and stitch the rule of a whole stitched network's input: one
vocabulary, one inference, on the lowest floor (no blockstitch imports).

>>> rule = infer_rule(("h", "w"), {(7, 7): True, (8, 8): False, (14, 14): True, (7, 14): True})
>>> rule.text
'h and w multiples of 7'
>>> infer_rule(("h", "w"), {(8, 8): True, (4, 16): True, (16, 4): True, (9, 9): False, (8, 9): False}).text
'h·w = 64'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import reduce

__all__ = ["Constraint", "Rule", "infer_rule", "rule_1d", "follow_up_pairs", "area_pairs", "area_follow_ups",
           "same_area"]

Size = tuple[int, ...]


@dataclass
class Constraint:
    """`{"axis": "h", "rule": "multiple_of", "value": 8}`; rules: multiple_of, fixed, equal, min (an area rule's
    axis is ``h·w``)."""

    axis: str
    rule: str
    value: int | str


def rule_1d(obs: dict[int, bool]) -> tuple[str, int | None] | None:
    """The simplest of any / fixed v / multiple_of k / min m that predicts every observation, else None.

    >>> rule_1d({4: True, 6: False, 8: True, 12: True}), rule_1d({1: False, 2: True, 3: True})
    (('multiple_of', 4), ('min', 2))
    """
    good = sorted(s for s, ok in obs.items() if ok)
    if not good:
        return None
    if len(good) == len(obs):
        return ("any", None)
    candidates: list[tuple[str, int | None]] = []
    if len(good) == 1 and good[0] != max(obs):
        candidates.append(("fixed", good[0]))
    k = reduce(math.gcd, good)
    if k > 1:
        candidates.append(("multiple_of", k))
    candidates.append(("min", good[0]))
    return next((c for c in candidates if all(_admit1(c, s) == ok for s, ok in obs.items())), None)


def _admit1(rule: tuple[str, int | None], v: int) -> bool:
    kind, value = rule
    if kind == "any":
        return True
    if value is None:  # every other rule has a value
        return False
    return ((kind == "fixed" and v == value) or (kind == "multiple_of" and v % value == 0)
            or (kind == "min" and v >= value))


def _say1(axis: str, rule: tuple[str, int | None]) -> str:
    kind, value = rule
    return {"any": f"{axis} any", "fixed": f"{axis} = {value}", "multiple_of": f"{axis} a multiple of {value}",
            "min": f"{axis} ≥ {value}"}[kind]


@dataclass
class Rule:
    """Per-axis rules (``{"h": ("multiple_of", 7)}``), optionally with h = w, or a rule on the area alone
    (``area=("fixed", 64)``: h·w = 64, each axis any); ``simple`` False means no rule from the vocabulary fits
    (or nothing worked) and nothing is claimed beyond the sizes tried."""

    axes: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    square: bool = False
    simple: bool = True
    text: str = ""
    area: tuple[str, int] | None = None
    """A rule on the product of the axes: ``("fixed", 64)``, ``("multiple_of", 16)`` or ``("min", 2)``."""

    @property
    def kind(self) -> str:
        """any, fixed, multiple_of, min, square, area (a rule on h·w alone), mixed (different rules per axis),
        none (no simple rule)."""
        if not self.simple:
            return "none"
        if self.area is not None:
            return "area"
        if self.square:
            return "square"
        kinds = {k for k, _ in self.axes.values()}
        return kinds.pop() if len(kinds) == 1 else "mixed"

    def admits(self, size: Size) -> bool | None:
        """Whether the rule says the module works at ``size`` (None when there is no simple rule)."""
        if not self.simple:
            return None
        if self.square and len(set(size)) > 1:
            return False
        if self.area is not None and not _admit1(self.area, math.prod(size)):
            return False
        return all(_admit1(r, v) for r, v in zip(self.axes.values(), size))

    def constraints(self) -> list[Constraint]:
        """The rule as constraints (an axis with rule "any" has none)."""
        out = [Constraint(a, k, v) for a, (k, v) in self.axes.items() if k != "any" and v is not None]
        if self.area is not None:
            out.append(Constraint("·".join(self.axes), *self.area))
        if self.square:
            names = list(self.axes)
            out.append(Constraint(names[0], "equal", names[1]))
        return out

    def to_dict(self) -> dict[str, object]:
        """JSON shape: kind, per-axis rules, square, area (``{"rule": "fixed", "value": 64}`` or None), text."""
        return {"kind": self.kind, "axes": {a: {"rule": k, "value": v} for a, (k, v) in self.axes.items()},
                "square": self.square,
                "area": None if self.area is None else {"rule": self.area[0], "value": self.area[1]},
                "text": self.text}


def _sentence(axes: dict[str, tuple[str, int | None]], square: bool) -> str:
    if square:
        (axis, rule), names = next(iter(axes.items())), " = ".join(axes)
        return f"square inputs only ({names})" + ("" if rule[0] == "any" else ", " + _say1(axis, rule))
    rules = set(axes.values())
    if len(rules) == 1 and len(axes) > 1:
        kind, value = rules.pop()
        names = " and ".join(axes)
        return {"any": "any size", "fixed": f"{names} = {value}", "multiple_of": f"{names} multiples of {value}",
                "min": f"{names} ≥ {value}"}[kind]
    return "; ".join(_say1(a, r) for a, r in axes.items() if len(axes) == 1 or r[0] != "any") or "any size"


def infer_rule(names: Sequence[str], obs: dict[Size, bool]) -> Rule:
    """The rule over axes ``names`` that predicts every observation (size tuple → worked)."""
    names = tuple(names)
    if not any(obs.values()):
        return Rule({a: ("any", None) for a in names}, simple=False, text="works at no size tried")
    diagonal = {s[0]: ok for s, ok in obs.items() if len(set(s)) == 1}
    if len(names) == 1:
        rule = rule_1d(diagonal)
        hypotheses = [({names[0]: rule}, False)] if rule else []
    else:
        rule = rule_1d(diagonal)
        free: tuple[str, int | None] = ("any", None)
        hypotheses = [({a: rule for a in names}, False), ({a: rule for a in names}, True),
                      ({names[0]: rule, names[1]: free}, False), ({names[0]: free, names[1]: rule}, False)] \
            if rule else []
    for axes, square in hypotheses:
        candidate = Rule(dict(axes), square)  # type: ignore[arg-type]
        if all(candidate.admits(s) == ok for s, ok in obs.items()):
            candidate.text = _sentence(candidate.axes, square)
            return candidate
    area = _area_rule(names, obs) if len(names) == 2 else None
    if area is not None:
        return area
    bad = sorted(s for s, ok in obs.items() if not ok)
    good = sorted(s for s, ok in obs.items() if ok)
    show = good if len(good) <= len(bad) else bad
    listed = ", ".join("×".join(map(str, s)) for s in show[:12]) + (" …" if len(show) > 12 else "")
    return Rule({a: ("any", None) for a in names}, simple=False,
                text=f"no simple rule: works only at {listed}" if show is good else
                f"no simple rule: fails at {listed}")


def _area_rule(names: tuple[str, ...], obs: dict[Size, bool]) -> Rule | None:
    """A rule on h·w alone (fixed, else a multiple of k > 1, else at least the smallest area that worked) that
    predicts every observation, once some non-square size worked (no area rule is claimed from squares alone:
    they cannot tell it from a per-axis one).
    """
    good = [math.prod(s) for s, ok in obs.items() if ok]
    if not any(ok and len(set(s)) > 1 for s, ok in obs.items()):
        return None
    k = reduce(math.gcd, good)
    candidates: list[tuple[str, int]] = [("fixed", good[0])] if len(set(good)) == 1 else []
    candidates += [("multiple_of", k)] if k > 1 else []
    candidates += [("min", min(good))]
    for area in candidates:
        rule = Rule({a: ("any", None) for a in names}, area=area)
        if all(rule.admits(s) == ok for s, ok in obs.items()):
            product = "·".join(names)
            rule.text = {"fixed": f"{product} = {area[1]}", "multiple_of": f"{product} a multiple of {area[1]}",
                         "min": f"{product} ≥ {area[1]} (at least {area[1]} pixels)"}[area[0]]
            return rule
    return None


def area_pairs(obs: dict[Size, bool]) -> list[Size]:
    """Non-square sizes of the same area as the smallest even square that worked (s/2 × 2s, 2s × s/2): they
    tell a rule on h·w from one on each axis.

    >>> area_pairs({(7, 7): False, (8, 8): True, (16, 16): True})
    [(4, 16), (16, 4)]
    """
    even = sorted(s[0] for s, ok in obs.items() if ok and len(set(s)) == 1 and s[0] % 2 == 0)
    if not even:
        return []
    s = even[0]
    return [p for p in ((s // 2, 2 * s), (2 * s, s // 2)) if p not in obs]


def same_area(area: int, side: int = 2) -> list[Size]:
    """Every h×w of this area with both sides at least ``side``, nearest to square first, h = w left out.

    >>> same_area(64)
    [(4, 16), (16, 4), (2, 32), (32, 2)]
    """
    pairs = [(h, area // h) for h in range(side, area // side + 1) if area % h == 0 and h * h != area]
    return sorted(pairs, key=lambda s: (max(s) / min(s), s[0] > s[1]))


def area_follow_ups(obs: dict[Size, bool]) -> list[Size]:
    """Sizes that tell a rule on the sides from one on the area, for a module's sweep (called again after they
    ran): where one square s×s alone works, shapes of its area with sides of at least 2 (8×8: 4×16, 16×4, 2×32,
    32×2); where squares from m up work, (m-1)×⌈m²/(m-1)⌉ both ways (one side below m, area above m²); once every
    working size has one area and a non-square one works, the rest of that area's shapes (1×A too), so a
    reported h·w = A names only shapes that ran.

    >>> area_follow_ups({(7, 7): False, (8, 8): True, (9, 9): False})
    [(4, 16), (16, 4), (2, 32), (32, 2)]
    >>> area_follow_ups({(8, 8): True, (7, 7): False, (4, 16): True, (16, 4): True, (2, 32): True, (32, 2): True})
    [(1, 64), (64, 1)]
    """
    good = [s for s, ok in obs.items() if ok]
    areas = {math.prod(s) for s in good}
    if len(areas) == 1 and any(len(set(s)) > 1 for s in good):
        return [s for s in same_area(areas.pop(), 1) if s not in obs]
    diagonal = rule_1d({s[0]: ok for s, ok in obs.items() if len(set(s)) == 1})
    pairs: list[Size] = []
    if diagonal is not None and diagonal[0] == "fixed" and diagonal[1]:  # h = w = s, or h·w = s²?
        pairs = same_area(diagonal[1] ** 2)[:4]
    elif diagonal is not None and diagonal[0] == "min" and diagonal[1] and diagonal[1] > 1:  # h, w ≥ m or h·w ≥ m²?
        m = diagonal[1]
        pairs = [(m - 1, -(-m * m // (m - 1))), (-(-m * m // (m - 1)), m - 1)]
    return [p for p in pairs if p not in obs]


def follow_up_pairs(obs: dict[Size, bool]) -> list[Size]:
    """Non-square sizes that tell a per-axis rule from square-only and from a rule on one axis only.

    >>> follow_up_pairs({(7, 7): True, (8, 8): False, (14, 14): True})
    [(7, 14), (14, 7), (7, 8), (8, 7)]
    """
    good = sorted(s[0] for s, ok in obs.items() if ok and len(set(s)) == 1)
    bad = sorted(s[0] for s, ok in obs.items() if not ok and len(set(s)) == 1)
    if not good:
        return []
    small = [g for g in good if g > 1] or good
    pairs: list[Size] = []
    if len(small) >= 2:
        a1, a2, a3 = small[0], small[1], small[min(len(small) - 1, 3)]
        pairs += [(a1, a2), (a2, a1), (a2, a3), (a3, a1)]
    if bad:
        o = min((b for b in bad if b > 1), key=lambda b: abs(b - small[0]), default=bad[0])
        pairs += [(small[0], o), (o, small[0])]
    return [p for p in dict.fromkeys(pairs) if p[0] != p[1] and p not in obs]
