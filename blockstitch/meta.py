"""Guests leave no trace: running a user's module for shapes (or for real) without changing it.

Every tool that runs a module it was given — profile, stitch, check, bench, graph, export — goes through this
file, so the promise is kept in one place:

* :func:`guest` hands out a **meta shadow**: a deep copy of the module whose parameters, buffers and plain
  tensor attributes (also inside lists, tuples and dicts) are meta stand-ins of the same shape and dtype. Shape
  runs happen on the shadow; caches a forward fills (Ultralytics' anchors, a grid, a list it appends to) fill
  the shadow's. Only tiny plain tensor attributes (strides, scales read with ``.item()``) stay real, copied.
* :func:`real_copy` gives a real deep copy for runs that need numbers (check-module, bench).
* :func:`torch_state_guard` restores global torch state afterwards: default dtype and device, grad mode,
  deterministic flags, matmul precision, cuDNN flags and every RNG state.
* :func:`fingerprint` records everything the promise covers, so tests (and users) can compare before/after.

>>> before = fingerprint(model)
>>> out = meta_call(model, [torch.empty(1, 3, 224, 224, device="meta")])
>>> fingerprint(model) == before
True
"""

from __future__ import annotations

import copy
import functools
import hashlib
import math
import types
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from .errors import BlockstitchError, SpecError

__all__ = ["guest", "meta_call", "real_copy", "shadow", "torch_state_guard", "keeps_torch_state", "fingerprint",
           "natural_input", "needs_data", "needs_data_error", "real_inputs", "shape_run", "on_meta", "GuestError",
           "probe_dtype"]

TINY = 8
"""Plain tensor attributes with at most this many elements stay real in a shadow (strides read as numbers)."""
_MAX_DEPTH = 4
_INTERNALS = ("_parameters", "_buffers", "_modules")


class GuestError(BlockstitchError):
    """A module cannot be isolated (copied) for a run, so it is not run at all."""


def _stand_in(t: torch.Tensor) -> torch.Tensor:
    made = torch.empty_like(t, device="meta")
    if isinstance(t, nn.Parameter):
        return nn.Parameter(made, requires_grad=t.requires_grad)
    return made.requires_grad_(t.requires_grad) if t.is_leaf and made.is_floating_point() else made


def _map_plain(value: Any, memo: dict[int, Any], depth: int) -> None:
    """Register meta (or tiny real) copies of the tensors in a plain attribute, containers included."""
    if depth > _MAX_DEPTH or id(value) in memo:
        return
    if isinstance(value, torch.Tensor):
        small = value.numel() <= TINY and not value.is_meta and not isinstance(value, nn.Parameter)
        memo[id(value)] = value.detach().clone() if small else _stand_in(value)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            _map_plain(item, memo, depth + 1)
    elif isinstance(value, dict):
        for item in value.values():
            _map_plain(item, memo, depth + 1)


def shadow(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` — same classes, names, attributes and hooks — whose tensors are meta stand-ins.

    Nothing of the original is shared but immutable things (functions, classes, strings), so whatever the
    shadow's forward writes stays in the shadow. Raises :class:`GuestError` when the module cannot be copied.

    >>> shadow(torchvision.models.resnet18()).conv1.weight.device
    device(type='meta')
    """
    if isinstance(module, torch.jit.ScriptModule):
        raise GuestError(f"{type(module).__name__} is a TorchScript module: its submodules cannot be hooked, "
                         "copied or run on meta tensors — pass the Python nn.Module it was scripted from")
    memo: dict[int, Any] = {}
    for sub in module.modules():
        for t in list(sub._parameters.values()) + list(sub._buffers.values()):
            if t is not None and id(t) not in memo:
                memo[id(t)] = _stand_in(t)
        for key, value in sub.__dict__.items():
            if key not in _INTERNALS:
                _map_plain(value, memo, 0)
    try:
        copied = copy.deepcopy(module, memo)
    except Exception as err:  # noqa: BLE001 — any failure to copy means: do not run it at all
        raise GuestError(f"cannot run {type(module).__name__} without touching it: it cannot be copied "
                         f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'no message'})") from None
    _rebind_hooks(copied, memo)
    return copied


def _rebind_hooks(copied: nn.Module, memo: dict[int, Any]) -> None:
    """Hooks that are closures (``lambda m, a, out: model.seen.append(...)``) still point at the original's
    objects after a deep copy (functions are copied by reference): give each a closure over the copies."""
    for sub in copied.modules():
        for key, hooks in list(sub.__dict__.items()):
            if key.endswith("hooks") and isinstance(hooks, dict):
                for hid, hook in list(hooks.items()):
                    hooks[hid] = _rebind(hook, memo)


def _rebind(fn: Any, memo: dict[int, Any]) -> Any:
    if isinstance(fn, tuple):  # (hook, kwargs flag) pairs in some torch versions
        return tuple(_rebind(f, memo) for f in fn)
    if not isinstance(fn, types.FunctionType) or not fn.__closure__:
        return fn
    cells = []
    for cell in fn.__closure__:
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            cells.append(cell)
            continue
        if id(value) in memo:
            cells.append(types.CellType(memo[id(value)]))
        elif isinstance(value, (types.FunctionType, type, types.ModuleType)):
            cells.append(types.CellType(_rebind(value, memo) if isinstance(value, types.FunctionType) else value))
        else:
            try:
                cells.append(types.CellType(copy.deepcopy(value, memo)))
            except Exception:  # noqa: BLE001 — an uncopyable capture stays shared (it is not model state)
                cells.append(cell)
    new = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, tuple(cells))
    new.__kwdefaults__, new.__dict__ = fn.__kwdefaults__, dict(fn.__dict__)
    return new


def real_copy(module: nn.Module) -> nn.Module:
    """A real deep copy, for runs that need numbers; the original is never run.

    >>> real_copy(model) is not model
    True
    """
    memo: dict[int, Any] = {}
    try:
        copied = copy.deepcopy(module, memo)
    except Exception as err:  # noqa: BLE001
        raise GuestError(f"cannot run {type(module).__name__} without touching it: it cannot be copied "
                         f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'no message'})") from None
    _rebind_hooks(copied, memo)
    return copied


@contextmanager
def torch_state_guard() -> Iterator[None]:
    """Restore global torch state on exit: default dtype/device, grad mode, deterministic flags, matmul
    precision, cuDNN flags, CPU and (initialised) CUDA RNG states.

    >>> with torch_state_guard():
    ...     torch.set_default_dtype(torch.float64)
    >>> torch.get_default_dtype()
    torch.float32
    """
    dtype, grad = torch.get_default_dtype(), torch.is_grad_enabled()
    device = torch.get_default_device() if hasattr(torch, "get_default_device") else None
    det, warn_only = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    matmul = torch.get_float32_matmul_precision()
    cudnn = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic, torch.backends.cudnn.allow_tf32,
             torch.backends.cuda.matmul.allow_tf32)
    rng = torch.get_rng_state()
    # is_initialized() first: is_available() asks the driver, which poisons every later fork (a check's worker)
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        torch.set_default_dtype(dtype)
        torch.set_grad_enabled(grad)
        if device is not None and torch.get_default_device() != device:
            torch.set_default_device(device)
        torch.use_deterministic_algorithms(det, warn_only=warn_only)
        torch.set_float32_matmul_precision(matmul)
        (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic, torch.backends.cudnn.allow_tf32,
         torch.backends.cuda.matmul.allow_tf32) = cudnn
        torch.set_rng_state(rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)


_VALUE_WRITES = frozenset({
    "normal_", "uniform_", "trunc_normal_", "zero_", "fill_", "copy_", "erfinv_", "mul_", "add_", "sub_", "div_",
    "clamp_", "clamp_min_", "clamp_max_", "exp_", "log_", "abs_", "sqrt_", "neg_", "bernoulli_", "random_",
    "exponential_", "log_normal_", "geometric_", "cauchy_", "fmod_", "masked_fill_", "addcmul_", "addcdiv_",
    "lerp_", "pow_", "__setitem__"})
"""In-place writes that change a tensor's values but never its shape, dtype or device."""


class _SkipMetaWrites(TorchFunctionMode):
    """Initialisers (``nn.init.*_``) and value-only in-place writes on meta tensors return at once: a meta
    tensor has no values, and torch's Python meta kernels for them import its compiler stack (≈1 s once)."""

    def __torch_function__(self, func: Callable[..., Any], types: Any, args: Sequence[Any] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        name = getattr(func, "__name__", "")
        first = args[0] if args else next(iter((kwargs or {}).values()), None)
        if (isinstance(first, torch.Tensor) and first.is_meta and name.endswith("_")
                and (name in _VALUE_WRITES or getattr(func, "__module__", "") == "torch.nn.init")):
            return None if name == "__setitem__" else first
        return func(*args, **(kwargs or {}))


@contextmanager
def on_meta() -> Iterator[None]:
    """Construct modules on the meta device (no storage), skipping the value writes their initialisers make.

    Shapes, dtypes and parameter counts are exactly those of a real construction; only the (absent) values
    are not "initialised". A module's own shape-changing in-place ops still run.

    >>> with on_meta():
    ...     conv = nn.Conv2d(3, 8, 3)
    >>> conv.weight.device, conv.weight.shape
    (device(type='meta'), torch.Size([8, 3, 3, 3]))
    """
    with torch.device("meta"), _SkipMetaWrites():
        yield


F = TypeVar("F", bound=Callable[..., Any])


def keeps_torch_state(fn: F) -> F:
    """Decorator: ``fn`` runs inside :func:`torch_state_guard` (public entry points that run user code).

    >>> @keeps_torch_state
    ... def probe(model): ...
    """
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with torch_state_guard():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@contextmanager
def guest(module: nn.Module) -> Iterator[nn.Module]:
    """``with guest(model) as sh:`` — a meta shadow of ``model`` to run and hook freely; global torch state is
    restored on exit. Submodules keep their names: ``sh.get_submodule("layer1.0")``.

    >>> with guest(model) as sh:
    ...     sh(torch.empty(1, 3, 224, 224, device="meta")).shape
    torch.Size([1, 1000])
    """
    with torch_state_guard():
        yield shadow(module)


def meta_call(module: nn.Module, inputs: Sequence[torch.Tensor], train: bool = False, grad: bool = False) -> Any:
    """``module(*inputs)`` on a meta shadow, in train or eval mode; without ``grad`` under ``no_grad``.
    The module itself is never called and never changed.

    >>> meta_call(model, [torch.empty(2, 3, 224, 224, device="meta")]).shape
    torch.Size([2, 1000])
    """
    with guest(module) as sh:
        sh.train(train)
        with torch.set_grad_enabled(grad):
            return sh(*inputs)


_DATA_DEPENDENT = ("data-dependent", "item()", "nonzero", "meta")
"""Words (any case) of the errors a forward raises when meta tensors cannot stand in for data."""


REAL_RUN_MAX_INPUT = 2**24
"""The largest input (values) a data-dependent forward is run for real with, instead of on meta tensors."""


T = TypeVar("T")


def probe_dtype(module: nn.Module) -> torch.dtype:
    """The dtype a probe input for ``module`` takes: that of its first floating parameter or buffer (a half,
    bfloat16 or float64 model is run in its own dtype), else the default dtype.

    >>> probe_dtype(nn.Linear(2, 2).half())
    torch.float16
    """
    for tensor in (*module.parameters(), *module.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.get_default_dtype()


def real_inputs(shapes: Sequence[Sequence[int]], dtype: torch.dtype, start: int = 0) -> list[torch.Tensor]:
    """Inputs for a real run: uniform in [0, 1) (an image's range), sample ``start + i`` of the batch drawn from its
    own seed, so a batch run and runs over its samples one by one (or in chunks) see the same values.

    >>> a, = real_inputs([(2, 3, 4, 4)], torch.float32)
    >>> b, = real_inputs([(1, 3, 4, 4)], torch.float32, start=1)
    >>> torch.equal(a[1:], b)
    True
    """
    def sample(shape: Sequence[int], i: int) -> torch.Tensor:
        return torch.rand(tuple(shape), generator=torch.Generator().manual_seed(i)).to(dtype)

    return [torch.stack([sample(s[1:], start + i) for i in range(s[0])]) if s else torch.rand(()).to(dtype)
            for s in shapes]


def needs_data_error(module: nn.Module, shapes: Sequence[Sequence[int]], why: str) -> SpecError | None:
    """The located refusal for a forward that needs real values (``why``) but cannot get a real run here: its
    weights are on meta, or its input is over :data:`REAL_RUN_MAX_INPUT`; None when the real run can go ahead."""
    name, values = type(module).__name__, sum(math.prod(s) for s in shapes)
    if any(p.is_meta for p in module.parameters()):
        refusal = SpecError(f"{name}'s forward needs real values ({why}), but it is built on meta tensors here",
                            hint="profile it (it is run for real, on the CPU), or pass a module with real weights")
        refusal.needs_real_weights = True  # type: ignore[attr-defined]  # a caller that can build it for real may
        return refusal
    if values > REAL_RUN_MAX_INPUT:
        return SpecError(f"{name}'s forward needs real values ({why}); its input of {values:,} values is over the "
                         f"real-run limit of {REAL_RUN_MAX_INPUT:,}", expected=f"≤ {REAL_RUN_MAX_INPUT:,} values",
                         found=" + ".join("×".join(map(str, s)) for s in shapes),
                         hint="use a smaller batch or input (`profile` runs a large batch in chunks and sums)")
    return None


def shape_run(module: nn.Module, shapes: Sequence[Sequence[int]],
              run: Callable[[nn.Module, list[torch.Tensor]], T],
              on_data: Callable[[str], tuple[T, str]] | None = None) -> tuple[T, str]:
    """``run(net, inputs)`` on a meta shadow of ``module`` with meta inputs of these shapes; when the forward
    needs data (NMS, ``nonzero``, ``.item()``), ``on_data(why)`` when given (the profiler's own real runs, on
    :func:`real_inputs`), else once more on a real copy with zeros — or a located refusal where that cannot be
    (weights on meta, an input over :data:`REAL_RUN_MAX_INPUT`). Returns (what ``run`` returned, how: ``"meta"`` or a note
    on the real run). Global torch state is restored either way; ``module`` itself never runs.

    >>> out, how = shape_run(model, [(1, 3, 224, 224)], lambda net, xs: net(*xs).shape)
    """
    dtype = probe_dtype(module)
    try:
        with guest(module) as sh:
            return run(sh, [torch.empty(tuple(s), device="meta", dtype=dtype) for s in shapes]), "meta"
    except Exception as err:  # noqa: BLE001 — only a data-dependent failure gets the real run
        cause = err.__cause__ or err
        if isinstance(err, GuestError) or not needs_data(cause):
            raise
        why = str(cause).splitlines()[0][:120] if str(cause) else type(cause).__name__
        if on_data is None and (refusal := needs_data_error(module, shapes, why)) is not None:
            raise refusal from err
    if on_data is not None:
        return on_data(why)
    with torch_state_guard():
        torch.manual_seed(0)
        out = run(real_copy(module), [torch.zeros(tuple(s), dtype=dtype) for s in shapes])
    return out, f"real run on a copy (its forward needs data on meta tensors: {why})"


def needs_data(err: BaseException) -> bool:
    """True when a forward failed on meta tensors because it needs real values (NMS, ``nonzero``, ``.item()``):
    such a module is run once for real on a copy instead.

    >>> needs_data(NotImplementedError("aten::nonzero: no meta kernel"))
    True
    """
    text = f"{type(err).__name__}: {err}"
    return isinstance(err, NotImplementedError) or any(word in text.lower() for word in _DATA_DEPENDENT)


# ---- the fingerprint: everything "no side effects" covers ----------------------------------------------------
def _digest(t: torch.Tensor) -> tuple[Any, ...]:
    head = (tuple(t.shape), str(t.dtype), str(t.device), t.requires_grad)
    if t.is_meta:
        return ("meta", *head)
    data = t.detach()
    if data.device.type != "cpu":
        data = data.cpu()
    if data.is_sparse or data.is_quantized or data.dtype in (torch.bfloat16,) or not data.is_contiguous():
        data = data.to_dense() if data.is_sparse else data
        data = data.dequantize() if data.is_quantized else data
        data = data.float().contiguous() if data.dtype == torch.bfloat16 else data.contiguous()
    try:
        raw = data.numpy().tobytes() if data.numel() else b""
    except (TypeError, RuntimeError):
        raw = repr(data.tolist()).encode()
    return (hashlib.blake2b(raw, digest_size=16).hexdigest(), *head, tuple(t.stride()), t._version)


def _plain(value: Any, depth: int = 0) -> Any:
    if isinstance(value, torch.Tensor):
        return ("tensor", id(value), _digest(value))
    if depth > _MAX_DEPTH:
        return ("deep", id(value))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, id(value) if isinstance(value, list) else None,
                tuple(_plain(v, depth + 1) for v in value))
    if isinstance(value, dict):
        return ("dict", id(value), tuple((repr(k), _plain(v, depth + 1)) for k, v in value.items()))
    if isinstance(value, (set, frozenset)):
        return ("set", id(value), len(value))
    if isinstance(value, (int, float, str, bool, bytes, type(None), torch.dtype, torch.device)):
        return value
    if isinstance(value, nn.Module):
        return ("module", id(value))
    return ("object", type(value).__qualname__, id(value))


def fingerprint(module: nn.Module, tensors: bool = True) -> dict[str, Any]:
    """Everything "no side effects" promises to keep, per submodule: parameters and buffers (values, dtype,
    device, requires_grad, grad, version counter), plain attributes (tensors and containers of them by value,
    other objects by identity), train/eval mode, registered hooks; and the global torch state.

    Two fingerprints compare equal when nothing observable changed. ``tensors=False`` skips hashing values.

    >>> fingerprint(model) == fingerprint(model)
    True
    """
    out: dict[str, Any] = {}
    for name, sub in module.named_modules(remove_duplicate=False):
        entry: dict[str, Any] = {"class": type(sub).__qualname__, "id": id(sub), "training": sub.training}
        for group in ("_parameters", "_buffers"):
            entry[group] = {k: (None if t is None else (id(t), _digest(t) if tensors else tuple(t.shape),
                                                       None if t.grad is None else _digest(t.grad)))
                            for k, t in getattr(sub, group).items()}
        entry["children"] = {k: id(m) for k, m in sub._modules.items()}
        entry["hooks"] = {k: tuple((key, id(h)) for key, h in v.items())
                          for k, v in sub.__dict__.items() if k.endswith("hooks") and isinstance(v, dict)}
        entry["attributes"] = {k: _plain(v) for k, v in sub.__dict__.items()
                               if k not in _INTERNALS and k not in entry["hooks"]}
        out[name] = entry
    out["<torch>"] = _global_state()
    return out


def _global_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "default_dtype": torch.get_default_dtype(), "grad": torch.is_grad_enabled(),
        "deterministic": (torch.are_deterministic_algorithms_enabled(),
                          torch.is_deterministic_algorithms_warn_only_enabled()),
        "matmul_precision": torch.get_float32_matmul_precision(),
        "cudnn": (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic),
        "rng": hashlib.blake2b(torch.get_rng_state().numpy().tobytes(), digest_size=16).hexdigest(),
    }
    if hasattr(torch, "get_default_device"):
        state["default_device"] = str(torch.get_default_device())
    return state


def natural_input(module: nn.Module) -> tuple[int, ...] | None:
    """The input a module was made for, without the batch: a blockstitch network's planned input, else a timm
    model's ``pretrained_cfg["input_size"]``; None when the module does not say.

    >>> natural_input(timm.create_model("resnet50"))
    (3, 224, 224)
    """
    meta = getattr(module, "meta", None)
    plan = meta.get("blockstitch_plan") if isinstance(meta, dict) else None
    if plan is not None:
        return tuple(plan.input.shape[1:])
    cfg = getattr(module, "pretrained_cfg", None) or getattr(module, "default_cfg", None) or {}
    size = cfg.get("input_size") if isinstance(cfg, dict) else None
    if size:
        return tuple(size)
    yaml_cfg = getattr(module, "yaml", None)  # an Ultralytics model: channels from its yaml, its default 640
    if isinstance(yaml_cfg, dict) and "backbone" in yaml_cfg and "head" in yaml_cfg:
        return (int(yaml_cfg.get("ch", 3)), 640, 640)
    return None
