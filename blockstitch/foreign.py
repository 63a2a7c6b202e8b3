"""Any plain ``nn.Module`` class as a block: a module copied from a paper's repository, stitched without a spec.

The class's constructor names its channel argument in one of the common ways (``in_channels``, ``channels``,
``c1``/``c2``, ``dim``, ``num_channels``, ``in_planes``, ``inp``/``oup`` …); blockstitch binds it (and a matching
output-channel argument, so the block keeps the width) from the shape flowing where the block goes, learns the
output shape from one meta forward and counts MACs the way the profiler does. Everything else comes from
``args``. Such classes enter only as Python objects or from a ``--plugin`` file the user named (never from a
spec file by path).

>>> spec_cls = module_block(PaperAttention)               # any nn.Module subclass
>>> spec = spec_cls(args={"reduction": 8})
>>> spec.out_shape([(1, 64, 28, 28)])
(1, 64, 28, 28)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, PrivateAttr, create_model
from torch import nn

from .blockspec import BlockCard, BlockSpec, Shape
from .errors import ShapeError, SpecError
from .meta import shape_run, torch_state_guard

__all__ = ["ModuleBlockSpec", "module_block", "IN_CHANNEL_ARGS", "OUT_CHANNEL_ARGS", "is_module_class", "MAP_SIZE_ARGS",
           "TOKEN_COUNT_ARGS", "Factory",
           "CHANNEL_ARGS", "OUT_ARGS", "channel_params", "class_factory"]

IN_CHANNEL_ARGS = ("in_channels", "channels", "c1", "dim", "num_channels", "in_planes", "inplanes", "inp",
                   "in_chs", "in_dim", "input_dim", "n_channels", "channel", "in_channel", "chs", "c", "ch", "nc",
                   "embed_dim", "d_model", "in_features", "num_features")
"""Constructor parameters taken to be the input channel count, in order of preference."""
OUT_CHANNEL_ARGS = ("out_channels", "c2", "oup", "out_chs", "out_dim", "output_dim", "out_planes", "outplanes",
                    "out_channel", "out_features", "out_ch")
"""Constructor parameters taken to be the output channel count (bound to the input's to keep the width)."""

CHANNEL_ARGS = (*IN_CHANNEL_ARGS, "d_model", "embed_dim", "dim_in", "in_ch", "inp_dim", "in_features", "num_features")
"""Constructor parameters a module factory takes to be the input channel count (plus token widths)."""
OUT_ARGS = (*OUT_CHANNEL_ARGS, "out_ch", "dim_out", "out_features")
"""Constructor parameters a module factory takes to be the output channel count (bound to the input's for a
shape-keeping module when the constructor requires them)."""

Factory = Callable[[Shape, str, int], nn.Module]
"""Builds the module for (input shape, its layout, its channel count), so channels can follow the input."""

MAP_SIZE_ARGS = ("in_size", "feat_size", "feature_size", "resolution", "input_resolution", "img_size",
                 "image_size", "input_size", "map_size", "spatial_size", "fmap_size", "hw")
"""Constructor parameters taken to be the feature map's size: bound to ``h`` (or ``(h, w)`` when the map is not
square or the default is a pair) where the block goes."""
TOKEN_COUNT_ARGS = ("num_tokens", "seq_len", "seq_length", "sequence_length", "num_patches", "n_tokens",
                    "token_num", "num_token", "len_seq")
"""Constructor parameters taken to be the token count: ``h × w`` on a feature map, ``n`` on tokens."""
_HW_ARGS = (("h", "w"), ("height", "width"), ("H", "W"))


def _sizes(params: dict[str, inspect.Parameter], given: dict[str, Any], shape: Shape, layout: str) -> dict[str, Any]:
    """Spatial-size arguments the user left out, bound from the shape where the block goes."""
    axes = dict(zip(layout.split(), shape))
    h, w, n = axes.get("h"), axes.get("w"), axes.get("n")
    tokens = h * w if h is not None and w is not None else n
    out: dict[str, Any] = {}
    for name, param in params.items():
        if name in given:
            continue
        if name in TOKEN_COUNT_ARGS and tokens is not None:
            out[name] = int(tokens)
        elif name in MAP_SIZE_ARGS and h is not None and w is not None:
            pair = isinstance(param.default, (tuple, list)) or h != w
            out[name] = (int(h), int(w)) if pair else int(h)
    for a, b in _HW_ARGS:
        if a in params and b in params and a not in given and b not in given and h is not None and w is not None:
            out[a], out[b] = int(h), int(w)
    return out


_made: dict[tuple[type, str], type[ModuleBlockSpec]] = {}


def is_module_class(value: object) -> bool:
    """True for an ``nn.Module`` subclass (not an instance, not a BlockSpec)."""
    return isinstance(value, type) and issubclass(value, nn.Module)


def _parameters(cls: type) -> dict[str, inspect.Parameter]:
    try:
        params = dict(inspect.signature(cls).parameters)
    except (TypeError, ValueError):
        return {}
    return {k: p for k, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def _channels(shape: Shape, layout: str) -> int:
    return int(shape[layout.split().index("c")]) if "c" in layout.split() else int(shape[-1])


class ModuleBlockSpec(BlockSpec):
    """A user's ``nn.Module`` class as a block (made by :func:`module_block`)."""

    in_layouts: ClassVar[tuple[str, ...] | None] = None
    stride_fields: ClassVar[tuple[str, ...]] = ()
    module_class: ClassVar[type[nn.Module]] = nn.Identity
    card: ClassVar[BlockCard | None] = BlockCard(category="adapter", notes="a user's module class")
    args: dict[str, Any] = Field(default_factory=dict)
    """Constructor arguments; the channel argument (and a matching output-channel one) is bound for you."""
    _seen: dict[Any, tuple[Shape, int]] = PrivateAttr(default_factory=dict)
    _how: str = PrivateAttr(default="meta")

    def constructor_kwargs(self, in_shapes: Sequence[Shape]) -> dict[str, Any]:
        """``args`` plus the channel arguments bound from the input; a located error names what is missing."""
        cls = type(self).module_class
        params = _parameters(cls)
        kwargs = dict(self.args)
        unknown = [k for k in kwargs if params and k not in params and not _takes_kwargs(cls)]
        if unknown:
            raise SpecError(f"{cls.__name__} has no constructor parameter {', '.join(map(repr, unknown))}",
                            path="args", expected="one of: " + ", ".join(params), found=", ".join(unknown))
        channels = _channels(in_shapes[0], self.layout_for(in_shapes[0]))
        c_in = next((p for p in IN_CHANNEL_ARGS if p in params), None)
        if c_in is not None and c_in not in kwargs:
            kwargs[c_in] = channels
            c_out = next((p for p in OUT_CHANNEL_ARGS if p in params), None)
            if c_out is not None and c_out not in kwargs and params[c_out].default is inspect.Parameter.empty:
                kwargs[c_out] = channels
        kwargs.update(_sizes(params, kwargs, in_shapes[0], self.layout_for(in_shapes[0])))
        missing = [k for k, p in params.items() if p.default is inspect.Parameter.empty and k not in kwargs]
        if missing:
            example = ", ".join(f"{k}: ..." for k in missing)
            raise SpecError(f"cannot build {cls.__name__}: blockstitch cannot infer {', '.join(map(repr, missing))}"
                            f" (its channels arrive as {channels} from the network)", path="args",
                            expected=f"{cls.__name__}({', '.join(params)})",
                            hint=f"add them to the block: args: {{{example}}}")
        return kwargs

    def build(self, in_shapes: Sequence[Shape]) -> nn.Module:
        cls = type(self).module_class
        kwargs = self.constructor_kwargs(in_shapes)
        try:
            return cls(**kwargs)
        except Exception as err:  # noqa: BLE001 — the user's constructor: report it where the block is
            raise SpecError(f"{cls.__name__}'s constructor raised {_cause(err)}", path="args",
                            found=_show(kwargs) if _about_arguments(err) else None) from None

    def _meta_out(self, in_shapes: Sequence[Shape]) -> tuple[Shape, int]:
        """(output shape, MACs) from one meta forward, remembered per input shapes: the planner asks for both."""
        key = (self._layout, tuple(tuple(s) for s in in_shapes))
        if key not in self._seen:
            self._seen[key] = self._meta_run(in_shapes)
        return self._seen[key]

    def _meta_run(self, in_shapes: Sequence[Shape]) -> tuple[Shape, int]:
        """Meta first: built and run on the meta device. Paper code often cannot (a constructor making CPU
        tensors, ``torch.FloatTensor([m])``, ``.to(device)``): then it is built for real on the CPU, once, and run
        on its meta shadow — or, when the forward needs data, once for real on a copy at this shape."""
        try:
            with torch.device("meta"):
                module = self.build(in_shapes).eval()
            return self._count(module, [torch.empty(s, device="meta") for s in in_shapes], in_shapes)
        except (SpecError, ShapeError) as err:
            on_meta = err
        try:
            with torch_state_guard():
                torch.manual_seed(0)
                real = self.build(in_shapes).eval()
        except SpecError:
            raise  # the constructor fails on the CPU too: that is the real cause
        except Exception as err:  # noqa: BLE001 — e.g. a module that insists on CUDA
            raise SpecError(f"{type(self).module_class.__name__} cannot be built: {_cause(err)}") from None
        try:
            (result, how) = shape_run(real, in_shapes, lambda net, xs: self._count(net, xs, in_shapes))
        except ShapeError:
            raise
        except Exception as err:  # noqa: BLE001 — the module's own complaint, at this shape
            raise ShapeError(f"{type(real).__name__} does not run at this input: {_cause(err)}",
                             in_shapes=in_shapes) from None
        self._how = f"built on the CPU (on meta: {on_meta.message[:100]})" + (
            "" if how == "meta" else f"; {how}")
        return result

    def _count(self, module: nn.Module, xs: list[torch.Tensor], in_shapes: Sequence[Shape]) -> tuple[Shape, int]:
        from .counting import OpCounter  # pulls in torch's formulas (and triton): only when counting

        try:
            with torch.no_grad(), OpCounter() as counter:
                out = module(*xs)
        except Exception as err:  # noqa: BLE001 — the module's own complaint, at this shape
            raise ShapeError(f"{type(module).__name__} does not run at this input: {_cause(err)}",
                             in_shapes=in_shapes) from None
        first = out[0] if isinstance(out, (tuple, list)) and out else out
        if not isinstance(first, torch.Tensor):
            raise ShapeError(f"{type(module).__name__} returns {type(out).__name__}, not a tensor",
                             in_shapes=in_shapes, hint="stitch a module that returns one tensor")
        return tuple(first.shape), counter.macs

    def out_shape(self, in_shapes: Sequence[Shape]) -> Shape:
        return self._meta_out(in_shapes)[0]

    def macs(self, in_shapes: Sequence[Shape]) -> int:
        return int(self._meta_out(in_shapes)[1])

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[list[Shape]]]:
        return {}, [[(2, 16, 8, 8)], [(1, 16, 9, 7)]]


def _takes_kwargs(cls: type) -> bool:
    try:
        return any(p.kind == p.VAR_KEYWORD for p in inspect.signature(cls).parameters.values())
    except (TypeError, ValueError):
        return False


def _cause(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _about_arguments(err: BaseException) -> bool:
    """True when a constructor's error is about the arguments it was given (so they are worth showing)."""
    return isinstance(err, TypeError) and "argument" in str(err)


def _show(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())


def module_block(cls: type, kind: str | None = None) -> type[ModuleBlockSpec]:
    """The block spec class for a plain ``nn.Module`` class (made once per class and kind).

    >>> module_block(MyAttention).model_validate({"kind": "MyAttention", "args": {"k": 3}})
    """
    if not is_module_class(cls):
        raise SpecError(f"{getattr(cls, '__name__', repr(cls))} is not an nn.Module class",
                        expected="a subclass of torch.nn.Module", found=type(cls).__name__)
    if isinstance(cls, type) and issubclass(cls, BlockSpec):  # pragma: no cover — guarded by is_module_class
        raise SpecError(f"{cls.__name__} is already a block spec")
    name = kind or cls.__name__
    if (cls, name) not in _made:
        spec_cls = create_model(f"{cls.__name__}BlockSpec", __base__=ModuleBlockSpec,
                                __doc__=f"{cls.__name__} ({cls.__module__}) as a block: {ModuleBlockSpec.__doc__}",
                                kind=(Literal[name], name))  # type: ignore[call-overload, arg-type]  # a kind made at run time
        spec_cls.module_class = cls  # type: ignore[assignment]  # an nn.Module class: is_module_class said so
        _made[(cls, name)] = spec_cls
    return _made[(cls, name)]


def channel_params(cls: Callable[..., Any]) -> tuple[str | None, str | None]:
    """(input, output) channel parameters of a constructor, if named like them: ``C2f`` → ``("c1", "c2")``.

    >>> channel_params(torch.nn.Conv2d)
    ('in_channels', 'out_channels')
    """
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return None, None
    return (next((p for p in CHANNEL_ARGS if p in params), None),
            next((p for p in OUT_ARGS if p in params and params[p].default is inspect.Parameter.empty), None))


def class_factory(cls: Callable[..., Any], args: dict[str, Any]) -> tuple[Factory, bool]:
    """(factory, follows_channels) for a module class: called with ``args``, its input channel parameter (if
    any) set from the input when not given, and its output channel parameter set to the same when not given
    either (a shape-keeping module).

    >>> factory, follows = class_factory(torch.nn.Conv2d, {"kernel_size": 3, "padding": 1})
    >>> factory((1, 8, 5, 5), "b c h w", 8).out_channels, follows
    (8, True)
    """
    c_in, c_out = channel_params(cls)
    follows = c_in is not None and c_in not in args
    _refuse_missing(cls, args, {c_in, c_out if c_in is not None else None})

    def factory(shape: Shape, layout: str, channels: int) -> nn.Module:
        kwargs = dict(args)
        if follows:
            kwargs[c_in] = channels  # type: ignore[index]
        if c_out is not None and c_out not in kwargs and c_in is not None:
            kwargs[c_out] = kwargs[c_in]  # required and not given: keep the width
        return cls(**kwargs)

    return factory, follows


def _refuse_missing(cls: Callable[..., Any], args: dict[str, Any], bound: set[str | None]) -> None:
    """A constructor argument nobody gives is a usage error naming the ``--arg`` line to add."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return
    missing = [n for n, p in params.items() if p.default is inspect.Parameter.empty and n not in args
               and n not in bound and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if missing:
        name = getattr(cls, "__name__", "the class")
        raise SpecError(f"{name} needs {', '.join(map(repr, missing))}, which blockstitch cannot infer",
                        expected=f"{name}({', '.join(params)})",
                        hint="add " + " ".join(f"--arg {n}=VALUE" for n in missing))
