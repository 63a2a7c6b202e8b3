"""The library catalogue: every registered block's card as a plain record, found by kind, alias, category or
search, and rendered as a card (`blockstitch blocks KIND`) or as JSON. The generated pages docs/library.md and
docs/library.zh-CN.md come from :mod:`blockstitch.catalogue_docs`.

>>> [e.kind for e in search("coordatt")]
['coord_attn']
>>> entry("CoordAtt").paper.year
2021
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from .blockspec import CATEGORIES, BlockSpec, Paper, field_aliases
from .errors import RegistryError, did_you_mean
from .registry import block_classes, builtin_index, get_block, index_is_fresh, registered

__all__ = ["Entry", "Rule", "parse_rule", "entries", "entry_of", "entry", "search", "by_category", "normalise",
           "example_line", "card_text", "rule_admits", "keeps_shape", "example_spec"]

_RULE = re.compile(r"^(any|square|multiple_of:(\w+)|min:(\w+)|(fixed|area):(\d+)x(\d+))$")


@dataclass(frozen=True)
class Rule:
    """A parsed size or channel rule: ``name`` is any, square, multiple_of, min, fixed or area; ``value`` an int,
    the name of a spec field (resolved against a spec with :meth:`resolve`) or, for fixed and area, ``(h, w)``
    (area: any size with h·w positions, as check-module's "h·w = 196")."""

    name: str
    value: int | str | tuple[int, int] | None = None

    def resolve(self, spec: BlockSpec | None) -> Rule:
        """The same rule with a field name replaced by the spec's value: ``multiple_of:heads`` → ``multiple_of:4``."""
        if isinstance(self.value, str):
            if spec is None or not isinstance(getattr(spec, self.value, None), int):
                raise RegistryError(f"rule '{self.name}:{self.value}' names no integer field of the spec")
            return Rule(self.name, int(getattr(spec, self.value)))
        return self


def parse_rule(text: str, fields: tuple[str, ...] = ()) -> Rule:
    """Parse a card rule: ``any``, ``square``, ``multiple_of:K``, ``min:M``, ``fixed:HxW``, ``area:HxW`` (H·W
    positions in any shape); K and M are integers or names of the spec's integer fields (``multiple_of:heads``).

    >>> parse_rule("multiple_of:patch_size", ("patch_size",))
    Rule(name='multiple_of', value='patch_size')
    """
    m = _RULE.match(text.strip())
    if m is None:
        raise RegistryError(f"rule '{text}' is not one of any, square, multiple_of:K, min:M, fixed:HxW, area:HxW")
    if m.group(1) in ("any", "square"):
        return Rule(m.group(1))
    if m.group(4):
        return Rule(m.group(4), (int(m.group(5)), int(m.group(6))))
    name = "multiple_of" if m.group(2) else "min"
    raw = m.group(2) or m.group(3)
    if raw.isdigit():
        if int(raw) < 1:
            raise RegistryError(f"rule '{text}' needs a positive number")
        return Rule(name, int(raw))
    if raw not in fields:
        raise RegistryError(f"rule '{text}' names '{raw}', which is not a field{did_you_mean(raw, fields)}")
    return Rule(name, raw)


def rule_admits(rule: Rule, size: tuple[int, ...]) -> bool:
    """Whether a (resolved) size rule lets a block run at ``size`` — ``(h, w)`` or ``(n,)``."""
    if rule.name == "any":
        return True
    if rule.name == "square":
        return len(size) != 2 or size[0] == size[1]
    if rule.name == "fixed":
        return tuple(size) == tuple(rule.value)[: len(size)]  # type: ignore[arg-type]
    if rule.name == "area":
        return math.prod(size) == math.prod(rule.value)  # type: ignore[arg-type]
    assert isinstance(rule.value, int), "resolve the rule against a spec first"
    if rule.name == "multiple_of":
        return all(v % rule.value == 0 for v in size)
    return all(v >= rule.value for v in size)


@dataclass(frozen=True)
class Entry:
    """One block as the catalogue lists it."""

    kind: str
    category: str
    doc: str
    paper: Paper | None
    aliases: tuple[str, ...]
    inputs: int | None
    """Number of inputs; None means two or more."""
    layouts_in: tuple[str, ...] | None
    """Accepted input layouts; None means any layout, passed through."""
    layout_out: str
    size_rule: str
    channel_rule: str
    insert_where: str
    notes: str
    builtin: bool
    """Shipped with blockstitch (not a plugin)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, as `blockstitch blocks --json` prints it."""
        paper = None if self.paper is None else {"title": self.paper.title, "venue": self.paper.venue,
                                                 "year": self.paper.year, "url": self.paper.url}
        return {"kind": self.kind, "category": self.category, "doc": self.doc, "paper": paper,
                "aliases": list(self.aliases), "inputs": self.inputs,
                "layouts": {"in": list(self.layouts_in) if self.layouts_in else "any", "out": self.layout_out},
                "size_rule": self.size_rule, "channel_rule": self.channel_rule, "insert_where": self.insert_where,
                "notes": self.notes, "builtin": self.builtin}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Entry:
        """The entry back from :meth:`to_dict` (the generated block index stores them)."""
        paper = None if data["paper"] is None else Paper(**data["paper"])
        layouts_in = data["layouts"]["in"]
        return cls(data["kind"], data["category"], data["doc"], paper, tuple(data["aliases"]), data["inputs"],
                   None if layouts_in == "any" else tuple(layouts_in), data["layouts"]["out"], data["size_rule"],
                   data["channel_rule"], data["insert_where"], data["notes"], data["builtin"])


def example_spec(cls: type[BlockSpec]) -> BlockSpec | None:
    """The block's spec with its example fields, or None when the example does not validate."""
    try:
        return cls.model_validate(cls.example()[0])
    except Exception:  # noqa: BLE001 — a broken example is the registry tests' business, not the catalogue's
        return None


def entry_of(cls: type[BlockSpec]) -> Entry:
    """The catalogue entry of one spec class (what the generated block index stores for a built-in)."""
    return _entry(cls)


def _indexed_entries() -> list[Entry] | None:
    """Every entry without importing a built-in family: from the block index when it is fresh, plus whatever
    plugins registered; None when the index is stale or absent (then the families are imported)."""
    if not index_is_fresh():
        return None
    index = builtin_index()
    found = {kind: Entry.from_dict(item["entry"]) for kind, item in index.items()}
    found.update({kind: _entry(cls) for kind, cls in registered().items()
                  if index.get(kind, {}).get("module") != cls.__module__})
    return [found[kind] for kind in sorted(found)]


def summary(doc: str) -> str:
    """A docstring's first paragraph on one line, without its trailing ``Example: …`` sentence."""
    text = " ".join(doc.strip().split("\n\n")[0].split())
    return text.split(" Example: ")[0].strip()


def _entry(cls: type[BlockSpec]) -> Entry:
    kind = str(cls.model_fields["kind"].default)
    card = cls.card
    layout_in = cls.in_layouts[0] if cls.in_layouts else None
    spec = example_spec(cls)
    layout_out = "same" if layout_in is None else (spec.out_layout(layout_in) if spec is not None else layout_in)
    return Entry(kind, card.category if card else "op", summary(cls.__doc__ or ""), card.paper if card else None,
                 card.aliases if card else (), cls.arity, cls.in_layouts,
                 layout_out, card.size_rule if card else "any", card.channel_rule if card else "any",
                 card.insert_where if card else "", card.notes if card else "",
                 cls.__module__.startswith("blockstitch.blocks."))


def entries(builtin_only: bool = False) -> list[Entry]:
    """Every registered block (sorted by kind); ``builtin_only`` leaves out plugins."""
    indexed = _indexed_entries()
    out = indexed if indexed is not None else [_entry(cls) for cls in block_classes()]
    return [e for e in out if e.builtin] if builtin_only else out


def normalise(text: str) -> str:
    """Lower case without ``-``, ``_``, spaces and dots: ``normalise("Coord_Att") == "coordatt"``."""
    return re.sub(r"[-_ .]", "", text).lower()


def entry(name: str) -> Entry:
    """The entry of a kind, or of the one block with that alias (any case, ``-``/``_`` ignored).

    Raises :class:`RegistryError` with the nearest names, or the candidates when an alias is ambiguous.
    """
    all_entries = entries()
    for e in all_entries:
        if e.kind == name:
            return e
    key = normalise(name)
    hits = [e for e in all_entries if key == normalise(e.kind) or any(key == normalise(a) for a in e.aliases)]
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise RegistryError(f"'{name}' names {len(hits)} blocks: " + ", ".join(
            f"{e.kind} ({e.paper.title if e.paper else e.doc})" for e in hits) + " — pass the kind")
    names = [e.kind for e in all_entries] + [a for e in all_entries for a in e.aliases]
    hint = did_you_mean(name, names)
    if not hint:
        found = search(name)
        hint = f" — blocks matching it: {', '.join(e.kind for e in found[:8])}" if found else ""
    raise RegistryError(f"blocks: unknown block kind '{name}'{hint} (list them with `blockstitch blocks`)")


def search(query: str, pool: list[Entry] | None = None) -> list[Entry]:
    """Entries whose kind, an alias or the paper title contains ``query`` (case, ``-``, ``_``, spaces ignored),
    best first: the kind itself, then an exact alias, then a kind or alias starting with it, then the rest in
    catalogue order.

    >>> [e.kind for e in search("ema")][0]
    'ema'
    """
    key = normalise(query)
    ranked = []
    for i, e in enumerate(entries() if pool is None else pool):
        names = [normalise(t) for t in (e.kind, *e.aliases)]
        texts = [*names, normalise(e.paper.title) if e.paper else ""]
        if not any(key in t for t in texts):
            continue
        rank = 0 if names[0] == key else 1 if key in names[1:] else 2 if any(n.startswith(key) for n in names) else 3
        ranked.append((rank, i, e))
    return [e for _, _, e in sorted(ranked, key=lambda r: (r[0], r[1]))]


def by_category(category: str, pool: list[Entry] | None = None) -> list[Entry]:
    """Entries of one category; an unknown category raises :class:`RegistryError` naming the nearest."""
    if category not in CATEGORIES:
        raise RegistryError(f"blocks: unknown category '{category}'{did_you_mean(category, CATEGORIES)}; "
                            f"categories: {', '.join(CATEGORIES)}")
    return [e for e in (entries() if pool is None else pool) if e.category == category]


def _flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def example_line(kind: str) -> str:
    """A spec node for the block with its required fields (values from its example): ``{kind: cbam}``."""
    cls = get_block(kind)
    fields = cls.example()[0]
    required = {k: v for k, v in fields.items() if k in cls.model_fields and cls.model_fields[k].is_required()}
    return _flow({"kind": kind, **required})


def _default(field: Any) -> str:
    return "(required)" if field.is_required() else _flow(field.get_default(call_default_factory=True))


def card_text(name: str) -> str:
    """The card of a kind (or alias) as text: paper, category, contract, fields with defaults, an example spec
    line, a stitch edit and where papers usually insert it."""
    e = entry(name)
    cls = get_block(e.kind)
    lines = [f"{e.kind} — {e.doc}", ""]
    if e.paper is not None:
        lines.append(f"paper      {e.paper.title} ({e.paper.venue} {e.paper.year}) {e.paper.url}")
    lines += [f"category   {e.category}", f"aliases    {', '.join(e.aliases) or '—'}",
              f"inputs     {e.inputs if e.inputs is not None else '2 or more'}",
              f"layouts    {' | '.join(e.layouts_in) if e.layouts_in else 'any'} → {e.layout_out}",
              f"size rule  {e.size_rule}", f"channels   {e.channel_rule}"]
    if e.insert_where:
        lines.append(f"insert     {e.insert_where}")
    if e.notes:
        lines.append(f"notes      {e.notes}")
    lines += ["", "fields:"]
    for fname, field in cls.model_fields.items():
        if fname != "kind":
            also = ", ".join(field_aliases(fname, field))
            also = f" (also: {also}, as in the paper's code)" if also else ""
            lines.append(f"  {fname} = {_default(field)}{also}  — {(field.description or '—').splitlines()[0]}")
    line = example_line(e.kind)
    lines += ["", "in a spec:     - {id: " + e.kind + ", " + line[1:]]
    if keeps_shape(cls):
        lines.append("stitched in:   insert: [{after: layer2, block: " + line + ", identity_init: true}]")
    return "\n".join(lines)


def keeps_shape(cls: type[BlockSpec]) -> bool:
    """Whether the block (with its example fields) gives back the shape of its single input."""
    spec = example_spec(cls)
    if spec is None or cls.arity != 1:
        return False
    try:
        shapes = cls.example()[1][-1]
        return tuple(spec.out_shape(shapes)) == tuple(shapes[0])
    except Exception:  # noqa: BLE001 — an example that does not fit says nothing about the shape
        return False

