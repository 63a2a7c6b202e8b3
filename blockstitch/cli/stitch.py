"""`blockstitch stitch EDIT.yaml -o model.pt`: build an edit spec's network and hand it to another script
(``bs.load("model.pt")``)."""

from __future__ import annotations

import argparse

from .common import stdout

NAME = "stitch"
HELP = "build an edit spec's stitched network and save it (.pt or .safetensors) for bs.load"


def arguments(p: argparse.ArgumentParser) -> None:
    """The command's arguments."""
    p.add_argument("spec", help="an edit spec file (or the name of a bundled one, e.g. cbam_resnet50)")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="the file to write: .pt (read back with weights_only=True) or .safetensors")


def run(args: argparse.Namespace) -> int:
    """Build, save, print the stitch report and what was written."""
    from ..render import render_stitch
    from ..stitch.archive import portable_spec, save_stitched
    from ..subject import subject

    target = subject(args.spec, accept={"edit"})
    model = target.module("cpu")
    assert target.located is not None  # an edit spec always has its data
    out = save_stitched(model, portable_spec(target.located.data, target.located.file), args.output)
    console = stdout()
    if target.report is not None:
        render_stitch(target.report, console)
    n = len(model.state_dict())
    console.print(f"wrote {out} ({n} tensors); load it with `bs.load({str(out)!r})`", highlight=False)
    return 0
