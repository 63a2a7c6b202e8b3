"""blockstitch: compose PyTorch networks from blocks, checked shape by shape before a weight exists."""

from . import blocks as _blocks  # noqa: F401  (registers the built-in blocks)
from .api import build, load_spec, plan
from .assemble import Plan
from .bench import BenchResult, bench
from .blockspec import BlockSpec
from .check import CheckReport, check_module
from .errors import BlockstitchError, RegistryError, ShapeError, SpecError
from .export import ExportError, ExportReport, export
from .fuse import Fused, FuseReport, fuse
from .graph import GraphRecord, graph
from .profile import NodeProfile, Profile, profile
from .registry import block_kinds, get_block, register_block
from .stitch import Stitched, StitchReport, stitch
from .transfer import TransferError, TransferReport, transfer_weights

__all__ = ["BenchResult", "bench", "CheckReport", "check_module", "StitchReport", "Stitched", "stitch", "NodeProfile", "Profile", "profile", "Plan", "build", "load_spec", "plan", "BlockSpec", "BlockstitchError", "RegistryError", "ShapeError", "SpecError", "block_kinds",
           "get_block", "register_block", "TransferError", "TransferReport", "transfer_weights", "fuse", "Fused",
           "FuseReport", "graph", "GraphRecord", "export", "ExportReport", "ExportError"]
__version__ = "0.1.0"
