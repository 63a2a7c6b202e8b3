"""The driver: read the file, plan every variant (a), time them (b), train variants × seeds (c) on a backend,
write each row as it comes, then the table, the plot and (optionally) MLflow.

Only the driver writes the run directory's ``results.jsonl``; trials (wherever they run) only return rows.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..assemble import Located
from ..errors import SpecError
from ..spread import Spread, warnings_for
from .backends import Backend, get_backend
from .file import AblationFile, data_path, load_ablation
from .measure import Latency, PlanRow, plan_variants, time_variants
from .progress import Events
from .store import RunStore
from .provenance import data_fingerprint, rerun_notes, trial_parts
from .trial import TrialJob, plain, trial_digest, trial_key
from .variants import Variant, expand

__all__ = ["Prepared", "prepare", "execute"]


@dataclass
class Prepared:
    """An ablation read and planned: what the trials will be, before anything trains."""

    spec: AblationFile
    located: Located
    variants: list[Variant]
    base: Any
    """The base as data a worker can resolve from anywhere (an absolute spec path, a name, a dict, a module)."""
    base_content: Any
    base_parts: dict[str, str]
    """What the base resolves to, as labelled hashes (every file it extends, its Python blocks' code)."""
    input_shape: tuple[int, ...]
    metric: str
    plans: list[PlanRow] = field(default_factory=list)


def _base(spec: AblationFile, located: Located) -> tuple[Any, Any, tuple[int, ...] | None]:
    from ..subject import NETWORK_KINDS, subject

    subj = subject(spec.base, accept=NETWORK_KINDS, origin=located, loc=("base",))
    base: Any = spec.base
    content: Any = spec.base
    if subj.what in ("spec", "edit") and subj.located is not None:
        content = subj.located.data
        if subj.located.file is not None:
            base = str(Path(subj.located.file).resolve())
    return base, content, subj.input_shape


def _metric(spec: AblationFile, trainer: Any) -> str:
    if spec.metric is not None:
        return spec.metric
    from ..train import get_task

    if trainer is not None:  # the user's function may name its primary metric; else the first one it returns
        from ..train.user import UserTrainer, load_user_trainer

        task = UserTrainer(trainer, "") if callable(trainer) else load_user_trainer(trainer)
        return str(task.primary)

    if spec.task == "detect":
        import importlib

        importlib.import_module("blockstitch.yolo.detect_task")
    return get_task(spec.task).primary


def prepare(source: Any, keep_going: bool = False, trainer: Any = None, events: Events | None = None) -> Prepared:
    """Read the ablation and run phase (a): every variant planned on meta tensors; a shape error is raised,
    located in the file, before anything trains (``keep_going``: a failed row instead)."""
    events = events or Events()
    if isinstance(source, tuple):
        spec, located = source
    else:
        spec, located = load_ablation(source)
    variants = expand(spec, located)
    base, content, natural = _base(spec, located)
    from ..bench.digest import target_parts

    base_parts = target_parts(spec.base, origin=located, loc=("base",))
    recipe = spec.recipe_model()
    shape = tuple(recipe.input) if recipe.input else natural
    if shape is None:
        raise located.error("the base network has no input shape of its own", ("recipe",),
                            hint="give recipe.input: [C, H, W]")
    metric = _metric(spec, trainer)
    t0 = time.perf_counter()
    plans = plan_variants(base, variants, shape, located, keep_going)
    bad = [p for p in plans if p.error]
    events.phase("plan", f"{len(variants)} variants planned on meta tensors in {time.perf_counter() - t0:.1f} s"
                 + (f"; {len(bad)} cannot be built (failed rows)" if bad else ""))
    for p in bad:
        events.note(f"  {p.variant}: {p.error}")
    return Prepared(spec, located, variants, base, content, base_parts, shape, metric, plans)


def _data(spec: AblationFile, located: Located, run_dir: Path) -> Path:
    path = data_path(spec, located)
    if path is not None:
        if not path.is_dir():
            raise located.error(f"data directory '{spec.data}' does not exist", ("data",), found=str(path))
        return path
    from ..train import make_shapes_dataset

    gen = spec.data.model_dump()  # type: ignore[union-attr]  # a DataSpec here
    name = "{generate}-c{classes}-t{train_per_class}-v{val_per_class}-s{size}-r{seed}".format(**gen)
    return make_shapes_dataset(run_dir / "data" / name, classes=gen["classes"], train_per_class=gen["train_per_class"],
                               val_per_class=gen["val_per_class"], size=gen["size"], seed=gen["seed"])


def jobs_for(prep: Prepared, run_dir: Path, data: Path, trainer: Any, store: RunStore,
             parts: dict[str, dict[str, str]] | None = None) -> list[TrialJob]:
    """One job per buildable variant × seed, keyed by what makes its result reusable (``parts``, when given, is
    filled with each job's labelled hashes, by key)."""
    spec = prep.spec
    recipe = spec.recipe_model().model_dump()
    if recipe.get("input") is None:  # train at the input every variant was planned and timed at
        recipe["input"] = list(prep.input_shape)
    jobs = []
    # a generated dataset is the same wherever it is drawn: its arguments, not its folder, identify it
    # a data directory: its path and a listing of its files' names and sizes (see data_fingerprint)
    data_id = (f"{data}:{data_fingerprint(data)}" if isinstance(spec.data, str)
               else json.dumps(spec.data.model_dump(), sort_keys=True))
    ok = {p.variant for p in prep.plans if p.error is None}
    for variant in prep.variants:
        if variant.name not in ok:
            continue
        made = trial_parts(prep.base_parts, prep.base_content, variant.edits, recipe, spec.task, trainer, data_id,
                           prep.input_shape)
        digest = trial_digest(made)
        for seed in spec.seeds:
            key = trial_key(variant.name, seed, digest)
            if parts is not None:
                parts[key] = made
            jobs.append(TrialJob(key, variant.name, seed, digest, prep.base, variant.edits, recipe, spec.task,
                                 trainer, str(data), spec.device, str(store.trial_dir(key)), prep.input_shape,
                                 prep.metric))
    return jobs


def execute(prep: Prepared, run_dir: Path, backend: Backend | None = None, trainer: Any = None,
            latency: bool = True, events: Events | None = None, address: str | None = None) -> dict[str, Any]:
    """Phases (b) and (c) in ``run_dir``: latency, then every trial not already finished there. Returns
    ``{"latencies", "rows", "reused", "new", "retried", "stale", "data"}``."""
    events = events or Events()
    spec = prep.spec
    run_dir = Path(run_dir)
    with RunStore(run_dir) as store:
        latencies: list[Latency] = []
        ok_variants = [v for v, p in zip(prep.variants, prep.plans) if p.error is None]
        if latency and spec.latency.enabled:
            device = spec.latency.device or spec.device
            t0, threads = time.perf_counter(), spec.recipe_model().threads  # the trials' threads, timed on them
            latencies, broken = time_variants(prep.base, ok_variants, prep.input_shape, device, spec.latency.batch,
                                              spec.latency.rounds, threads)
            events.phase("latency", f"{len(ok_variants)} variants timed on {device}, batch {spec.latency.batch}, "
                         f"{spec.latency.rounds} interleaved rounds, in {time.perf_counter() - t0:.1f} s")
            for name, error in broken.items():
                events.note(f"  {name}: its forward failed ({error}); not timed")
            if latencies:  # the baseline's spread and the machine's load say how far to trust the Δlatency column
                for warning in warnings_for(Spread.of(latencies[0].samples_ms), "the baseline's forward",
                                            own=threads):  # leaving out the load the timing itself made
                    events.note(f"  warning: {warning}")
        store.write_json("plan.json", {"plans": [p.to_dict() for p in prep.plans],
                                       "latency": [t.to_dict() for t in latencies],
                                       "input_shape": list(prep.input_shape), "metric": prep.metric})
        data = _data(spec, prep.located, run_dir)
        parts: dict[str, dict[str, str]] = {}
        jobs = jobs_for(prep, run_dir, data, trainer, store, parts)
        rows, bad_lines = store.rows()
        if bad_lines:
            events.note(f"results.jsonl: line(s) {', '.join(map(str, bad_lines))} could not be read (a kill "
                        "mid-write?) and are left as they are")
        wanted = {j.key for j in jobs}
        reused = [j for j in jobs if rows.get(j.key, {}).get("status") == "ok"]
        retried = [j for j in jobs if j.key in rows and rows[j.key].get("status") != "ok"]
        new = [j for j in jobs if j.key not in rows]
        stale = sorted(k for k in rows if k not in wanted)
        if reused:
            events.note(f"reused {len(reused)} finished trial(s) from {store.results}: "
                        + ", ".join(f"{j.variant}/s{j.seed}" for j in reused))
        changed, fresh = rerun_notes(new, parts, rows)
        for line in changed:
            events.note(line)
        if fresh and rows:
            events.note(f"{len(fresh)} new trial(s) (not in the run directory): "
                        + ", ".join(f"{j.variant}/s{j.seed}" for j in fresh))
        if retried:
            events.note(f"retrying {len(retried)} trial(s) that failed before: "
                        + ", ".join(f"{j.variant}/s{j.seed}" for j in retried))
        if stale:
            events.note(f"{len(stale)} row(s) in the run directory belong to no trial of this file (left out)")
        todo = retried + new
        todo.sort(key=lambda j: (j.seed, [v.name for v in prep.variants].index(j.variant)))
        events.trials(len(jobs), len(reused))

        def on_result(job: TrialJob, row: dict[str, Any]) -> None:
            row = {**row, "parts": parts[job.key]}  # what produced it: a later run says what changed
            store.append(row)
            rows[job.key] = row
            events.trial(row)

        def on_progress(key: str, epoch: int, epochs: int, metrics: dict[str, float]) -> None:
            events.epoch(key, epoch, epochs, metrics)

        if todo:
            (backend or get_backend(spec.backend, workers=spec.workers, cpus_per_trial=spec.cpus_per_trial,
                                    gpus_per_trial=spec.gpus_per_trial, address=address)).run(todo, on_result, on_progress)
        events.close()
        missing = [j.key for j in jobs if j.key not in rows]
        if missing:  # a backend broke its promise: say so rather than print a table with holes
            raise SpecError(f"{len(missing)} trial(s) came back without a result: {', '.join(missing[:5])}",
                            hint="re-run the same command: finished trials are reused")
        final = [{**rows[j.key], "reused": j in reused} for j in jobs]
        params = {j.key: {"variant": j.variant, "seed": j.seed, "edits": plain(j.edits), "recipe": j.recipe,
                          "task": j.task, "base": plain(prep.base_content) if not isinstance(prep.base, str)
                          else prep.base, "data": j.data, "digest": j.digest} for j in jobs}
        (run_dir / "trials.json").write_text(json.dumps(params, indent=1, default=str, sort_keys=True))
    return {"latencies": latencies, "rows": final, "reused": len(reused), "new": len(new), "retried": len(retried),
            "stale": len(stale), "data": str(data), "params": params}
