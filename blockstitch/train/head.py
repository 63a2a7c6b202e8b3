"""The classifier's width against the data's classes: a located error when they differ, and :func:`fit_head`
to give a model a new last layer of the right width.

>>> import torch
>>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 1000))
>>> fit_head(model, 4)
'1'
>>> model(torch.zeros(2, 3, 2, 2)).shape
torch.Size([2, 4])
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ..errors import SpecError, fmt_shape

__all__ = ["fit_head", "check_logits", "last_linear"]


def last_linear(model: nn.Module) -> tuple[str, nn.Linear] | None:
    """The last ``nn.Linear`` in registration order (a classifier's usual place), with its path."""
    found = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            found = (name, module)
    return found


def fit_head(model: nn.Module, classes: int) -> str:
    """Give ``model`` a fresh classifier of ``classes`` outputs, in place; returns the path it replaced.

    A timm model's own ``reset_classifier`` is used where there is one; otherwise the last ``nn.Linear`` is
    replaced by a new one (same input width, bias, device and dtype; initialised from torch's generator, so seed
    first). A model without a Linear is a :class:`SpecError`.
    """
    reset = getattr(model, "reset_classifier", None)
    if callable(reset) and hasattr(model, "num_classes"):
        reset(classes)
        return "reset_classifier"
    found = last_linear(model)
    if found is None:
        raise SpecError(f"{type(model).__name__} has no nn.Linear to re-head",
                        hint="give the network a classifier of the data's width (num_classes in its spec)")
    name, old = found
    new = nn.Linear(old.in_features, classes, bias=old.bias is not None, device=old.weight.device,
                    dtype=old.weight.dtype)
    parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
    setattr(parent, name.rpartition(".")[2], new)
    return name


def check_logits(model: nn.Module, shape: Sequence[int], classes: Sequence[str]) -> None:
    """Refuse logits that are not ``(B, len(classes))``, naming the classifier and how to fix it."""
    if len(shape) == 2 and shape[1] == len(classes):
        return
    found = last_linear(model)
    node = found[0] if found is not None else None
    shown = ", ".join(classes[:6]) + (" …" if len(classes) > 6 else "")
    raise SpecError(f"{type(model).__name__} gives logits {fmt_shape(shape)}, but the data has "
                    f"{len(classes)} classes ({shown})", node=node, expected=f"B×{len(classes)}",
                    found=fmt_shape(shape),
                    hint=f"re-head it: blockstitch.train.fit_head(model, {len(classes)}), or build the network with "
                         f"num_classes: {len(classes)}; a model must end in class logits (B, classes)")
