"""The Subject: what a source is, resolved once, with its module, plan, stitch report and natural input.

Every tool (profile, graph, export, bench, check, ablate, the CLI) asks the same questions of what it was given —
"what is it, how do I get its module, its plan, its input, and what do I call it in a message?" — and gets the
answers here. :func:`subject` calls the one resolver (:func:`blockstitch.sources.resolve`) exactly once and
hands the located data on; the module, plan and stitch report are made lazily, once, and cached on the record.

>>> s = subject("cbam_resnet50")
>>> s.what, s.name, s.input_shape
('edit', 'cbam_resnet50', (3, 224, 224))
>>> s.report.edits[0].kind            # an edit spec has a stitch report
'cbam'
>>> subject("timm:resnet18").module().__class__.__name__     # built on meta: nothing allocated
'ResNet'

Layering: this module sits on the networks floor, below every tool; it builds from the floors beneath it
(sources, stitch, assemble), and :mod:`blockstitch.networks`, the API's face, stands on it.
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import SpecError

if TYPE_CHECKING:
    from torch import nn

    from .assemble import Located, Plan
    from .foreign import Factory
    from .sources import Resolved
    from .stitch import StitchReport

__all__ = ["Subject", "subject", "NETWORK_KINDS", "ANY_KIND"]

NETWORK_KINDS = frozenset({"spec", "edit", "timm", "torchvision", "ultralytics", "module", "plan"})
"""What the network tools (profile, graph, export, ablate) accept."""
ANY_KIND = NETWORK_KINDS | {"block", "code"}
"""Everything a Subject can be (bench and check-module also take block kinds and user classes)."""


@dataclass
class Subject:
    """One source, resolved once: ``what`` it is, its ``name`` and ``origin`` for messages, and — made lazily,
    at most once per device — its module, its plan (blockstitch specs), its stitch report (edit specs).

    ``what`` is one of ``spec``, ``edit``, ``timm``, ``torchvision``, ``ultralytics``, ``module`` (an
    ``nn.Module`` given in Python), ``plan`` (a :class:`~blockstitch.assemble.Plan`), ``block`` (a registered
    block kind; ``obj`` is its spec class) or ``code`` (a class the user named; ``obj`` is it).
    """

    what: str
    name: str
    origin: str | None = None
    """The spec file it came from (for messages), when it came from one."""
    resolved: Resolved | None = None
    obj: Any = None
    """The object given or named: the ``nn.Module``, the ``Plan``, the block spec class, the user's class."""
    input_override: tuple[int, ...] | None = None
    """An input shape (without the batch) the caller chose; it wins over the subject's own."""
    _modules: dict[str, nn.Module] = field(default_factory=dict, repr=False)
    _plans: dict[tuple[Any, ...], Plan] = field(default_factory=dict, repr=False)
    _report: StitchReport | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ what it is
    @property
    def located(self) -> Located | None:
        """The spec file's located data (``spec`` and ``edit``)."""
        return self.resolved.located if self.resolved is not None else None

    @property
    def is_network(self) -> bool:
        """True for a whole network (anything but a block kind or a user class)."""
        return self.what in NETWORK_KINDS

    @property
    def label(self) -> str:
        """The name for a table: a class named on the command line without its file (``x.py:Gate`` → ``Gate``)."""
        return self.name.rpartition(":")[2] if self.what == "code" else self.name

    @property
    def constructor(self) -> Any:
        """The class the user's module is made by (a module class given in Python, or anything named on the command
        line as ``file.py:Name``), else None (a block kind, a factory given in Python, a network)."""
        from .foreign import is_module_class

        named = self.what == "code" and (is_module_class(self.obj) or ":" in self.name)
        return self.obj if named else None

    @property
    def is_given_module(self) -> bool:
        """True when the user handed over the module itself: it must be left exactly as it was."""
        return self.what == "module"

    # ------------------------------------------------------------------ what it makes
    def module(self, device: str | None = "meta") -> nn.Module:
        """The network: built on ``device`` (``"meta"``: no storage; ``None``: real, on the CPU) and cached per
        device, or — for an ``nn.Module`` the user gave — that very module (callers run it only as a shadow).
        """
        if self.what == "module":
            return self.obj  # type: ignore[no-any-return]
        key = str(device)
        if key not in self._modules:
            self._modules[key] = self._build(device)
        return self._modules[key]

    def factory(self, args: dict[str, Any] | None = None) -> tuple[Factory, bool]:
        """(factory, whether its channels follow the input) for a block kind or a user's class, built with
        ``args``: the factory makes the module for ``(input shape, layout, channels)``. A block kind's fields are
        validated here (a located error names a wrong one); a class's channel parameters follow the input
        (:func:`blockstitch.foreign.class_factory`); a factory the user gave is used as it is.

        >>> factory, follows = subject("cbam").factory({"reduction": 4})
        >>> factory((1, 32, 8, 8), "b c h w", 32).__class__.__name__, follows
        ('CBAM', True)
        """
        args = dict(args or {})
        if self.what == "block":
            from pydantic import ValidationError

            from .errors import pydantic_error
            from .required import filled_factory, missing_required

            if missing_required(self.obj, args):  # an output width, a paper default: bound where it goes
                return filled_factory(self.obj, self.name, args), True
            try:
                spec = self.obj.model_validate({"kind": self.name, **args})
            except ValidationError as err:  # a field given with --arg is wrong
                problem = pydantic_error(err, model=self.obj)
                problem.message = f"'{self.name}': {problem.message}"
                problem.path = f"--arg {problem.path or self.name}"
                schema = "`blockstitch schema` lists every field of every kind"
                problem.hint = f"{problem.hint}; {schema}" if problem.hint else schema
                raise problem.located() from None
            return lambda shape, layout, channels: spec.with_layout(layout).build([shape]), True
        if self.constructor is not None:
            from .foreign import class_factory

            return class_factory(self.constructor, args)
        if self.what == "code":
            return self.obj, True  # a factory (shape, layout, channels) -> nn.Module, given in Python
        raise SpecError(f"'{self.name}' is {_article(self.what)}: it has no factory",
                        expected="a block kind or a module class")

    def _build(self, device: str | None) -> nn.Module:
        from .assemble import build_within_limits

        if self.what == "plan":
            return build_within_limits(self.obj, device)
        if self.what in ("timm", "torchvision", "ultralytics"):
            from .sources import foreign_model

            model = foreign_model(self.resolved if self.resolved is not None else self.name, device)
            if model is None:  # pragma: no cover — resolve() said it was one
                raise SpecError(f"'{self.name}' is not a {self.what} model")
            return model
        if self.what == "edit":
            stitched = self._stitched(device)
            return stitched
        if self.what == "spec":
            return build_within_limits(self.plan(), device)
        if self.what == "code":
            import torch

            try:
                with torch.device(device) if device is not None else torch.device("cpu"):
                    return self.obj()  # type: ignore[no-any-return]
            except TypeError as err:
                raise SpecError(f"cannot construct {self.name} without arguments: {err}",
                                hint="build it in Python and pass the module itself") from None
        raise SpecError(f"'{self.name}' is a block kind, not a network",
                        expected="a zoo name, a spec path, timm:<model> or an nn.Module",
                        hint="`blockstitch check-module KIND` and `blockstitch bench KIND --input …` take block kinds")

    def _stitched(self, device: str | None) -> nn.Module:
        from .stitch import build_edit

        if device != "meta":  # limits before allocation: the stitched weights, counted on meta, must fit
            from .assemble.limits import check_fits

            meta = self.module("meta")
            params = sum(p.numel() for p in meta.parameters())
            check_fits(params * 4, 0, str(device or "cpu"), f"building '{self.name}'", self.origin)
        result = build_edit(self.located, device)  # type: ignore[arg-type]  # set for edits
        if self._report is None:
            self._report = result.report
        return result.model

    @property
    def report(self) -> StitchReport | None:
        """The stitch report of an edit spec (made on meta tensors), else None."""
        if self.what != "edit":
            return None
        if self._report is None:
            self.module("meta")
        return self._report

    def plan(self, input_shape: Sequence[int] | None = None, batch: int = 1, observe: Any = None,
             verify: bool = True) -> Plan:
        """The plan of a blockstitch network spec (``spec`` or ``plan``); a located error for anything else.
        Plans made without ``observe`` are cached per (input, batch, verify)."""
        from .assemble import make_plan
        from .assemble import resolve as expand  # the spec's nodes, validated (not the source resolver)

        if self.what == "plan":
            return self.obj  # type: ignore[no-any-return]
        if self.what == "edit":
            extends = self.located.data.get("extends") if self.located is not None else None
            raise SpecError(f"'{self.name}' edits '{extends}': it has no plan of its own", file=self.origin,
                            hint="`blockstitch check` shows what it changes; blockstitch.build / stitch build it")
        if self.what != "spec":
            raise SpecError(f"'{self.name}' is {_article(self.what)}: it has no plan of its own", file=self.origin,
                            hint="`blockstitch check` shows what an edit changes; profile/graph work on any network")
        shape = tuple(input_shape) if input_shape is not None else self.input_override
        key = (shape, batch, verify)
        if observe is not None or key not in self._plans:
            network = self.obj if self.resolved is None else expand(self.located)  # type: ignore[arg-type]
            made = make_plan(network, shape, batch, observe, verify)
            if observe is not None:
                return made
            self._plans[key] = made
        return self._plans[key]

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        """The input it runs on, without the batch: the caller's choice, else an edit spec's ``input:``, else the
        network's own (a spec's ``input``, a timm model's pretrained size, an Ultralytics model's 640²); None when
        nothing says (a plain module, a block kind)."""
        if self.input_override is not None:
            return self.input_override
        if self.what == "edit":
            data = self.located.data if self.located is not None else {}
            given = data.get("input") if isinstance(data, dict) else None
            if given is not None:  # validated like a network's `input:`
                from .assemble.limits import check_input_shape

                where = self.located.mark(("input",)) if self.located is not None else (None, None)
                return check_input_shape(given, "input", self.origin, where)
        if self.what == "spec":
            return tuple(self.plan().input.shape[1:])
        if self.what == "plan":
            return tuple(self.obj.input.shape[1:])
        if self.what in ("block", "code"):
            return None
        from .meta import natural_input

        return natural_input(self.module("meta"))

    def require_input(self, what: str = "this") -> tuple[int, ...]:
        """:attr:`input_shape`, or a located error saying how to give one."""
        shape = self.input_shape
        if shape is None:
            raise SpecError(f"{what} {self.name} needs an input shape without the batch, e.g. (3, 224, 224)",
                            file=self.origin, hint="on the command line: --input 3,224,224")
        return shape

    def with_input(self, input_shape: Sequence[int] | None) -> Subject:
        """The same subject at another input (a new record sharing nothing mutable); itself when None."""
        if input_shape is None or tuple(input_shape) == self.input_override:
            return self
        from .assemble.limits import check_input_shape

        input_shape = check_input_shape(input_shape)
        return Subject(self.what, self.name, self.origin, self.resolved, self.obj, tuple(input_shape))


def _article(what: str) -> str:
    return {"edit": "an edit spec", "timm": "a timm model", "torchvision": "a torchvision model",
            "ultralytics": "an Ultralytics model", "module": "an nn.Module", "block": "a block kind",
            "code": "a Python class"}.get(what, what)


def subject(source: Any, accept: Collection[str] = ANY_KIND, input_shape: Sequence[int] | None = None,
            origin: Located | None = None, loc: tuple[Any, ...] = ()) -> Subject:
    """Resolve ``source`` once into a :class:`Subject` (a Subject given is returned, at ``input_shape`` if set).

    ``source``: a zoo name, a spec path or dict, ``timm:<model>``, ``torchvision:<model>``, a block kind, an
    ``nn.Module``, a :class:`~blockstitch.assemble.Plan`, a class (the user's object), or command-line
    ``file.py:Name``. ``accept`` limits what the caller can use (others are a located error naming what was
    expected); ``origin``/``loc`` locate a name read from a file.

    >>> subject("resnet18", input_shape=(3, 64, 64)).plan().output_shapes()
    [(1, 1000)]
    """
    if isinstance(source, Subject):
        if source.what not in accept:
            raise SpecError(f"'{source.name}' is {_article(source.what)}, which cannot be used here",
                            expected=", ".join(sorted(accept)))
        return source.with_input(input_shape)
    from .assemble import Plan

    if input_shape is not None:
        from .assemble.limits import check_input_shape

        input_shape = check_input_shape(input_shape)
    shape = tuple(input_shape) if input_shape is not None else None
    if isinstance(source, Plan):
        if "plan" not in accept:
            raise SpecError(f"'{source.name}' is a plan, which cannot be used here", expected=", ".join(sorted(accept)))
        return Subject("plan", source.name, source.file, None, source, shape)
    loaded = sys.modules.get("blockstitch.assemble.spec")  # a Network exists only once its module is imported
    if loaded is not None and isinstance(source, loaded.Network) and "spec" in accept:  # from load_spec: as it is
        return Subject("spec", source.name, source.file, None, source, shape)
    from .sources import resolve

    found = resolve(source, accept=set(accept) - {"plan"}, origin=origin, loc=loc)
    name = found.name
    if found.what in ("spec", "edit") and found.located is not None:
        data = found.located.data
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            name = data["name"]
        elif found.located.file is not None:
            name = Path(found.located.file).stem
    made = Subject(found.what, name, found.file, found, found.obj, shape)
    if found.what == "edit" and found.located is not None and isinstance(found.located.data, dict) \
            and found.located.data.get("input") is not None:
        _ = Subject(found.what, name, found.file, found).input_shape  # validated now, like a network's `input:`
    return made
