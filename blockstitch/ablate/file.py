"""The ablation file: a base network, named edit sets and/or a grid of them, a task, its data, a recipe and seeds.

An ablation file is data, read with the same loader and limits as spec and sweep files: its ``base`` is looked
up by the one resolver (a zoo name, a spec path relative to the file, ``timm:``/``torchvision:`` names) and can
never name code; every mistake is a :class:`~blockstitch.errors.SpecError` naming file:line.

>>> spec = load_ablation("examples/ablation.yaml")
>>> spec.seeds, [v.name for v in spec.variants][:2]
([0, 1], ['cbam', 'eca'])
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..assemble import Located, load_file
from ..assemble.limits import MAX_INPUT_DIM, MAX_REPEAT
from ..errors import SpecError, pydantic_error
from ..stitch import EditSpec  # noqa: F401 — the edit vocabulary the variants use
from ..stitch.edits import InsertEdit, RemoveEdit, ReplaceEdit, WrapEdit
from ..train.datasets import SHAPES

__all__ = ["AblationFile", "VariantSpec", "GridSpec", "DataSpec", "LatencySpec", "load_ablation", "MAX_VARIANTS",
           "MAX_SEEDS"]

MAX_VARIANTS = 256
"""Variants one ablation file may ask for (its list plus its grid's product)."""
MAX_SEEDS = 64
"""Seeds per variant."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, arbitrary_types_allowed=True)


class VariantSpec(_Model):
    """One named edit set, in the edit-spec vocabulary."""

    name: str = Field(min_length=1, max_length=120, pattern=r"^[^\s/\\]+$")
    """The row's name in the table (no spaces or slashes), e.g. `cbam@layer4`."""
    insert: list[InsertEdit] = Field(default_factory=list, max_length=MAX_REPEAT)
    """Blocks to insert (`after:`/`before:` a module path glob)."""
    replace: list[ReplaceEdit] = Field(default_factory=list, max_length=MAX_REPEAT)
    """Modules to replace (`path:` glob, `block:`)."""
    wrap: list[WrapEdit] = Field(default_factory=list, max_length=MAX_REPEAT)
    """Modules to wrap in a residual connection."""
    remove: list[RemoveEdit] = Field(default_factory=list, max_length=MAX_REPEAT)
    """Modules to remove (they become identities)."""

    @field_validator("name")
    @classmethod
    def _not_baseline(cls, value: str) -> str:
        if value == "baseline":
            raise ValueError("'baseline' is row 0 (the base with no edits): give this variant another name")
        return value

    def edits(self) -> dict[str, list[dict[str, Any]]]:
        """The edits as plain data: ``{"insert": [...], ...}`` (empty groups left out)."""
        out: dict[str, list[dict[str, Any]]] = {}
        for group in ("insert", "replace", "wrap", "remove"):
            items = getattr(self, group)
            if items:
                out[group] = [item.model_dump(exclude_defaults=True) for item in items]
        return out


_Block = str | dict[str, Any] | type


class GridSpec(_Model):
    """A product of edits: every `block` × every `after` (or `before`, or replace `path`) × every other listed
    field; each product is one variant named like `cbam@layer*`."""

    block: list[_Block] = Field(min_length=1, max_length=MAX_VARIANTS)
    """Blocks: a kind name (`cbam`), a mapping (`{kind: coord_attn, reduction: 16}`), in Python a module class."""
    after: list[str] | None = Field(None, min_length=1, max_length=MAX_VARIANTS)
    """Module path globs to insert after."""
    before: list[str] | None = Field(None, min_length=1, max_length=MAX_VARIANTS)
    """Module path globs to insert before."""
    path: list[str] | None = Field(None, min_length=1, max_length=MAX_VARIANTS)
    """Module path globs to replace."""
    identity_init: list[bool] | None = Field(None, min_length=1, max_length=2)
    """Start inserted blocks as the identity (both values: a variant each)."""

    @model_validator(mode="after")
    def _one_anchor(self) -> GridSpec:
        if sum(v is not None for v in (self.after, self.before, self.path)) != 1:
            raise ValueError("give exactly one of `after:`, `before:` (insert) or `path:` (replace)")
        if self.path is not None and self.identity_init is not None:
            raise ValueError("`identity_init` applies to inserted blocks (`after:`/`before:`), not to `path:`")
        return self


class DataSpec(_Model):
    """A generated dataset (nothing downloaded): `{generate: shapes, classes: 4}`."""

    generate: Literal["shapes"]
    """The generator: `shapes` (coloured shapes on noise, an image-folder dataset)."""
    classes: int = Field(4, ge=2, le=len(SHAPES))
    """Classes (the first k of circle, square, triangle, cross, ring, star, diamond, ex)."""
    train_per_class: int = Field(64, ge=1, le=10_000)
    """Training images per class."""
    val_per_class: int = Field(32, ge=1, le=10_000)
    """Validation images per class."""
    size: int = Field(32, ge=8, le=512)
    """Image side, pixels."""
    seed: int = Field(0, ge=0, le=2**31 - 1)
    """The generator's seed (the dataset is the same for every trial)."""


class LatencySpec(_Model):
    """Phase (b): every variant timed against the baseline, paired and interleaved."""

    enabled: bool = True
    """Measure latency (false: the column stays empty)."""
    batch: int = Field(1, ge=1, le=MAX_INPUT_DIM)
    """Batch of the timed forward passes."""
    rounds: int = Field(30, ge=3, le=10_000)
    """Rounds; each round times every variant once, the order alternating (ABBA) between rounds."""
    device: str | None = Field(None, pattern=r"^(cpu|cuda(:\d{1,2})?|mps)$")
    """Device to time on (default: the file's `device`)."""


class AblationFile(_Model):
    """An ablation: the baseline (row 0) and each variant, trained with every seed."""

    name: str | None = Field(None, max_length=120)
    """The ablation's name (default: the file's stem)."""
    description: str = ""
    """Free text."""
    base: Any
    """The base network: a zoo name, a spec path (relative to this file), `timm:<model>`, `torchvision:<model>`;
    in Python also a dict or an nn.Module. Never code."""
    variants: list[VariantSpec] = Field(default_factory=list, max_length=MAX_VARIANTS)
    """Named edit sets."""
    grid: GridSpec | None = None
    """A product of edits, each a variant (after the `variants`)."""
    task: str = Field("classify", max_length=64)
    """The task: `classify` (top-1/top-5), `detect` (Ultralytics)."""
    data: str | DataSpec
    """The data: a directory (relative to this file; `train/` and `val/` image folders for classify), or a
    generated dataset `{generate: shapes, classes: 4}`."""
    recipe: dict[str, Any] = Field(default_factory=dict)
    """The training recipe (`epochs`, `batch`, `lr`, `optimizer`, `weight_decay`, `schedule`, `warmup_epochs`,
    `label_smoothing`, `amp`, `input`, `workers`, `threads`)."""
    seeds: list[Annotated[int, Field(ge=0, le=2**31 - 1)]] = Field(default_factory=lambda: [0], min_length=1,
                                                                   max_length=MAX_SEEDS)
    """Seeds: every variant is trained once per seed; Δ to the baseline is paired by seed."""
    device: str = Field("cpu", pattern=r"^(cpu|cuda(:\d{1,2})?|mps)$")
    """Where trials train."""
    latency: LatencySpec = Field(default_factory=LatencySpec)
    """Latency measurement options."""
    metric: str | None = Field(None, max_length=64)
    """The metric the table ranks by (default: the task's primary, e.g. `top1`); higher is better."""
    backend: Literal["local", "ray"] = "local"
    """Where trials run: `local` (this machine's processes) or `ray`."""
    workers: int = Field(1, ge=1, le=256)
    """Local backend: trials in parallel processes."""
    cpus_per_trial: float = Field(1.0, gt=0, le=1024)
    """Ray: CPUs reserved per trial (fractions allowed)."""
    gpus_per_trial: float = Field(0.0, ge=0, le=64)
    """Ray: GPUs reserved per trial (fractions allowed)."""

    @model_validator(mode="after")
    def _unique(self) -> AblationFile:
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds are listed twice: {self.seeds}")
        return self

    def recipe_model(self) -> Any:
        """The recipe as a validated :class:`~blockstitch.train.recipe.Recipe`."""
        from ..train.recipe import Recipe

        return Recipe.model_validate(self.recipe)


def _validate(located: Located) -> AblationFile:
    if not isinstance(located.data, dict):
        raise located.error("an ablation file is a mapping (base, variants, task, data, recipe, seeds …)")
    data = located.data.get("data")
    if isinstance(data, dict):  # a generated dataset: its own errors, not the union's "not a string"
        try:
            DataSpec.model_validate(data)
        except ValidationError as err:
            raise pydantic_error(err, ("data",), model=DataSpec, what="the data mapping", located=located) from None
    try:
        spec = AblationFile.model_validate(located.data)
    except ValidationError as err:
        raise pydantic_error(err, model=AblationFile, what="the ablation file", located=located) from None
    try:
        spec.recipe_model()
    except ValidationError as err:
        from ..train.recipe import Recipe

        raise pydantic_error(err, ("recipe",), model=Recipe, what="the recipe", located=located) from None
    return spec


def load_ablation(source: str | Path | dict[str, Any]) -> tuple[AblationFile, Located]:
    """Read and validate an ablation file (or a dict): located errors, limits before loops; the base is looked up
    now, as data. Returns the model and the located data (for locating later errors, e.g. a variant's shapes).

    >>> spec, located = load_ablation({"base": "resnet18", "data": "shapes/", "variants": [
    ...     {"name": "cbam", "insert": [{"after": "layer*", "block": {"kind": "cbam"}}]}]})
    """
    if isinstance(source, dict):  # given in Python: it may hold objects (a module as base, block classes)
        located = Located(source)
    else:
        if Path(source).suffix.lower() not in (".yaml", ".yml", ".json"):
            raise SpecError("an ablation file is YAML or JSON (.yaml, .yml, .json)", file=str(source))
        located = load_file(source)
    spec = _validate(located)
    if spec.name is None:
        spec.name = Path(located.file).stem if located.file else "ablation"
    return spec, located


def data_path(spec: AblationFile, located: Located) -> Path | None:
    """A data directory named by the file, relative to the file (None for a generated dataset)."""
    if not isinstance(spec.data, str):
        return None
    path = Path(spec.data).expanduser()
    if not path.is_absolute() and located.file is not None:
        path = Path(located.file).parent / path
    return path.resolve()
