"""Loading a local weights file (`.safetensors` or `.pt`, never pickled code) into a base network.

Limits before work: what reading a file would allocate is known from its header before anything is inflated —
a `.safetensors` file holds its tensors as they are (its size on disk), a `torch.save` archive is a zip whose
entries declare their inflated sizes. A file that would inflate to more than the target network could hold
(:func:`weights_budget`), or to more than the free memory, is refused with both figures: a 4 MB deflated file
that inflates to 5 GB never gets the chance.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import torch
from torch import nn

from ..errors import SpecError, few, fmt_shape, shown

__all__ = ["read_weights", "load_into", "declared_bytes", "weights_budget"]

SLACK_BYTES = 16 * 2**20
"""Room for what a checkpoint holds besides tensor data (its pickle, names, a header)."""


def weights_budget(model: nn.Module) -> int:
    """The most a weights file for ``model`` may inflate to: four times its state in bytes (a float64 copy, or
    an optimizer's moments beside the weights), plus :data:`SLACK_BYTES`. Counted on meta tensors too.

    >>> weights_budget(nn.Linear(1000, 1000, device="meta")) // 2**20
    31
    """
    own = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    return 4 * own + SLACK_BYTES


def declared_bytes(path: str | Path) -> int:
    """What reading ``path`` would allocate, from its header alone: the inflated sizes a zip archive
    (``torch.save``) declares for its entries, else the size on disk (safetensors, legacy ``torch.save``).

    >>> declared_bytes("resnet18.safetensors") == Path("resnet18.safetensors").stat().st_size
    True
    """
    file = Path(path)
    size = file.stat().st_size
    if file.suffix.lower() == ".safetensors" or not zipfile.is_zipfile(file):
        return size
    try:
        with zipfile.ZipFile(file) as archive:
            return max(size, sum(info.file_size for info in archive.infolist()))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise SpecError(f"cannot read weights file {shown(path)}: {shown(err, 200)}", path="weights",
                        hint="is it a complete torch.save file?") from None


def _check_size(file: Path, budget: int | None) -> None:
    from ..assemble.limits import check_fits

    need = declared_bytes(file)
    if budget is not None and need > budget:
        raise SpecError(f"weights file {shown(file)} would inflate to {need / 2**20:,.1f} MiB, more than the "
                        f"network it is for could hold ({budget / 2**20:,.1f} MiB)", path="weights",
                        hint="limits before work: a weights file holds one network's tensors (see SECURITY.md)")
    check_fits(need, 0, "cpu", f"reading weights file {shown(file)}")


def read_weights(path: str | Path, budget: int | None = None) -> dict[str, torch.Tensor]:
    """A state_dict from `.safetensors` (safetensors; the suffix in any case) or `.pt`/`.pth`/`.bin`
    (`torch.load(weights_only=True)`). ``budget``: the most its header may declare, in bytes (see
    :func:`weights_budget`); the file is refused before it is inflated when it declares more.

    >>> read_weights("resnet18.safetensors", weights_budget(model))["fc.weight"].shape
    torch.Size([1000, 512])
    """
    file = Path(path)
    if not file.is_file():
        raise SpecError(f"weights file not found: {shown(path)}", path="weights")
    _check_size(file, budget)
    if file.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        try:
            data = load_file(str(file))
        except Exception as err:  # noqa: BLE001 — a truncated or corrupt file is the user's file, reported as such
            raise SpecError(f"cannot read weights file {shown(path)}: {_first_line(err)}",
                            path="weights", hint="is it a complete .safetensors file?") from None
    else:
        try:
            data = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 — anything unreadable is the user's file, reported as such
            raise SpecError(f"cannot read weights file {shown(path)}: {_first_line(err)}", path="weights",
                            hint="save with torch.save(model.state_dict(), path) or safetensors") from None
        if isinstance(data, dict) and "state_dict" in data and isinstance(data["state_dict"], dict):
            data = data["state_dict"]
    _check_state(data, file)
    return data  # type: ignore[no-any-return]


def _first_line(err: BaseException) -> str:
    text = str(err)
    return shown(text.splitlines()[0] if text.strip() else repr(err), 300)


def _check_state(data: object, file: Path) -> None:
    """A state_dict is names (text) → dense tensors holding data: anything else is named, not loaded."""
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise SpecError(f"{shown(file)} does not hold a state_dict (name → tensor)", path="weights")
    problems = {
        "names that are not text": [k for k in data if not isinstance(k, str)],
        "sparse or other non-dense tensors": [k for k, v in data.items() if v.layout != torch.strided],
        "tensors without data (meta)": [k for k, v in data.items() if v.is_meta],
        "quantized or complex tensors": [k for k, v in data.items() if v.is_quantized or v.is_complex()],
    }
    for what, keys in problems.items():
        if keys:
            raise SpecError(f"weights file {shown(file)} holds {what}", path="weights", found=few(keys),
                            hint="save the model's state_dict() of dense, real tensors (safetensors is simplest)")


def load_into(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load strictly; a file that does not fit names what is missing, unexpected and mis-shaped."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    misshaped = [f"{k} (file {fmt_shape(state[k].shape)}, model {fmt_shape(own[k].shape)})"
                 for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or misshaped:
        raise SpecError(f"weights file {shown(source)} does not fit the base network",
                        path="weights", found=f"missing: {few(missing)}; unexpected: {few(unexpected)}; "
                                              f"mis-shaped: {few(misshaped)}",
                        hint="was it saved from the same architecture (timm vs torchvision names differ)?")
    with torch.no_grad():
        for k, v in state.items():
            if not own[k].is_meta:  # a meta base (checking only) has nothing to copy into
                own[k].copy_(v)
