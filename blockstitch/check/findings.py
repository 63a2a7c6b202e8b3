"""From the probes' numbers to claims: each check's verdict with its evidence (size, mode, numbers)."""

from __future__ import annotations

from typing import Any

from ..errors import fmt_shape
from .report import CheckReport, CheckResult

__all__ = ["size_check", "mode_checks", "batch_check", "inplace_check", "input_check", "grad_check", "info_checks"]

MODES = [("train", 2), ("train", 1), ("eval", 2), ("eval", 1)]


def _at(rec: dict[str, Any]) -> str:
    return "×".join(map(str, rec["size"]))


def size_check(report: CheckReport) -> None:
    """The sweep's verdict: the rule, a failing size with the module's own words, and a working one."""
    sweep, rule = report.sweep, report.size_rule
    bad = [r for r in sweep if not r["ok"]]
    good = [r for r in sweep if r["ok"]]
    how = sorted({r["how"] for r in sweep})
    where = f"{len(sweep)} sizes ({', '.join(how)})"
    by_area = sorted(sweep, key=lambda r: r["input"])
    msg = (f"{where}: works at every size, {_at(by_area[0])} to {_at(by_area[-1])}" if not bad else
           f"{where}: {rule.text}; e.g. at {_at(bad[0])}: {bad[0]['error']}"
           + (f"; works at {_at(good[0])}" if good else ""))
    report.checks.append(CheckResult("sizes", "failed" if bad else "passed", msg,
                                     evidence={"rule": rule.to_dict(), "failing": [r["size"] for r in bad],
                                               "working": [r["size"] for r in good]}))


def mode_checks(report: CheckReport, base: dict[str, Any], modes: dict[tuple[str, int], Any],
                sweep_nonfinite: list[str]) -> None:
    """Train and eval at batch 1 and 2; finiteness over the real sweep runs and these."""
    at = fmt_shape(base["input"][1:])
    failures, nonfinite = [], list(sweep_nonfinite)
    for (mode, b), reply in modes.items():
        label = f"{mode}, batch {b}"
        value = reply.value if reply.ok else {"error": reply.error}
        report.modes[label] = {"error": value["error"], "finite": value.get("finite"),
                               "wrote_input": value.get("wrote_input")}
        if value["error"]:
            failures.append(f"{label}: {value['error']}")
        elif not value["finite"]:
            nonfinite.append(f"{label}, {at}")
    report.nonfinite = nonfinite
    runs = sum(1 for r in report.sweep if r.get("finite") is not None) + sum(
        1 for m in report.modes.values() if m["finite"] is not None)
    report.checks.append(CheckResult("train and eval, batch 1 and 2", "failed" if failures else "passed",
                                     "; ".join(failures) + f" (input {at})" if failures else
                                     f"runs in train and eval at batch 1 and 2 (input {at})",
                                     evidence={"input": list(base["input"][1:]), "modes": report.modes}))
    report.checks.append(CheckResult("finite outputs", "failed" if nonfinite else "passed",
                                     "NaN/Inf at " + "; ".join(nonfinite[:6]) if nonfinite else
                                     f"no NaN or Inf in {runs} real runs (the sweep's real sizes in eval at batch "
                                     f"2, and train/eval at batch 1 and 2 at {at})",
                                     evidence={"nonfinite": nonfinite, "runs": runs}))


def batch_check(report: CheckReport, base: dict[str, Any], reply: Any) -> None:
    """Sample i's output alone equals its output inside a batch of 3 (eval)."""
    value = reply.value if reply.ok else {"error": reply.error}
    at = fmt_shape(base["input"][1:])
    if value["error"]:
        report.checks.append(CheckResult("batch independence (eval)", "skipped", f"could not run at {at}: {value['error']}"))
        return
    rel = value["rel_diff"]
    ok = rel == rel and rel <= 1e-4
    report.batch_independent = ok
    report.checks.append(CheckResult(
        "batch independence (eval)", "passed" if ok else "failed",
        f"each sample's output alone equals its output in a batch of 3 (max rel. diff {rel:.1e}, eval, {at})" if ok
        else f"a sample's output changes with the other samples in the batch (max rel. diff {rel:.2e} between "
             f"batch of 3 and one by one, eval, {at}): statistics are taken across the batch",
        evidence={"rel_diff": rel, "batch": 3, "mode": "eval", "input": list(base["input"][1:])}))


def inplace_check(report: CheckReport, sweep: list[dict[str, Any]], modes: dict[tuple[str, int], Any]) -> None:
    """Whether any real run wrote into the tensor it was given."""
    seen = [f"eval, batch 2, {_at(r)}" for r in sweep if r.get("wrote_input")]
    seen += [f"{m}, batch {b}" for (m, b), r in modes.items() if r.ok and r.value.get("wrote_input")]
    ran = any(r.get("wrote_input") is not None for r in sweep) or any(r.ok and not r.value["error"]
                                                                        for r in modes.values())
    report.writes_input = bool(seen) if ran else None
    runs = sum(1 for r in sweep if r.get("wrote_input") is not None) + sum(
        1 for r in modes.values() if r.ok and r.value.get("wrote_input") is not None)
    report.checks.append(CheckResult(
        "input left unchanged", "failed" if seen else "passed" if ran else "skipped",
        f"the module writes into its input (in place) at {'; '.join(seen[:4])}" if seen else
        f"none of {runs} real runs changed its input" if ran else "no real run (0 runs)", evidence={"writes_at": seen}))


def input_check(report: CheckReport, base: dict[str, Any], reply: Any, input_grad: bool | None) -> None:
    """The output depends on the input: it changes with it, or at least a gradient reaches it."""
    value = reply.value if reply.ok else {"error": reply.error}
    at = fmt_shape(base["input"][1:])
    if value["error"] or input_grad is None:
        report.checks.append(CheckResult("uses its input", "skipped", f"could not run at {at}: {value['error']}"))
        return
    ignored = bool(value["same"]) and not input_grad
    report.ignores_input = ignored
    report.checks.append(CheckResult(
        "uses its input", "failed" if ignored else "passed",
        f"the output is the same for two different inputs and no gradient reaches the input (eval/train, {at})"
        if ignored else f"the output follows the input (rel. change {value['rel_diff']:.1e} for a new input; "
                        f"gradient reaches the input: {'yes' if input_grad else 'no'}; {at})",
        evidence={"same_output": value["same"], "input_grad": input_grad, "input": list(base["input"][1:])}))


def grad_check(report: CheckReport, replies: list[tuple[dict[str, Any], Any]]) -> bool | None:
    """Parameters no gradient reaches at any size tried (train mode); returns whether the input got one."""
    alive: set[str] = set()
    trainable: list[str] = []
    sizes, errors, input_grad, base_error = [], [], None, False
    for item, reply in replies:
        value = reply.value if reply.ok else {"error": reply.error}
        at = fmt_shape(item["shape"][1:])
        if value["error"]:
            errors.append(f"{at}: {value['error']}")
            base_error = base_error or bool(item.get("base"))
            continue
        sizes.append(at)
        alive |= set(value["alive"])
        trainable = value["trainable"]
        if item.get("base"):
            input_grad = value["input_grad"]
    if not sizes or base_error:
        report.checks.append(CheckResult("gradients", "failed", "backward fails (train, batch 2): " + "; ".join(errors),
                                         evidence={"errors": errors}))
        return None
    dead = [n for n in trainable if n not in alive]
    report.dead_params = dead
    tried = ", ".join(sizes)
    report.checks.append(CheckResult(
        "gradients", "failed" if dead else "passed",
        f"no gradient reaches {', '.join(dead[:8])}{' …' if len(dead) > 8 else ''} at any of {tried} (train, "
        f"batch 2): structurally dead" if dead else
        f"every parameter ({len(trainable)}) gets a gradient at one of {tried} (train, batch 2)",
        evidence={"dead": dead, "sizes": sizes, "errors": errors}))
    return input_grad


def info_checks(report: CheckReport, layout: str, replies: dict[str, Any], warned: list[str],
                backend: str, runs: int) -> None:
    """Reported, not required: warnings, bfloat16, channels_last, torch.compile, torch.export."""
    report.checks.append(CheckResult("warnings", "failed" if warned else "passed",
                                     "; ".join(warned[:3]) + f" (in {runs} real runs)" if warned else
                                     f"no warning in {runs} real runs",
                                     required=False))
    for key, name in (("bf16", "bfloat16 (CPU)"), ("channels_last", "channels_last"),
                      ("compile", f"torch.compile(fullgraph=True, backend={backend})"), ("export", "torch.export")):
        if key not in replies:
            if key == "channels_last":
                report.checks.append(CheckResult(name, "skipped", f"not a 4-d b c h w input ({layout})",
                                                 required=False))
            continue
        reply = replies[key]
        value = reply.value if reply.ok else {"error": reply.error}
        if value["error"]:
            report.checks.append(CheckResult(name, "failed", f"at {fmt_shape(report.base or ())}: {value['error']}",
                                             required=False))
        elif key == "bf16":
            ok = value["finite"]
            report.checks.append(CheckResult(name, "passed" if ok else "failed", f"runs (rel. diff to float32 "
                                             f"{value['rel_diff']:.1e})" + ("" if ok else ", but gives NaN/Inf"),
                                             required=False))
        elif key == "channels_last":
            report.checks.append(CheckResult(name, "passed" if value["same"] else "failed",
                                             f"same result (rel. diff {value['rel_diff']:.1e})" if value["same"] else
                                             f"result differs from contiguous (rel. diff {value['rel_diff']:.1e})",
                                             required=False))
        else:
            at = fmt_shape(report.base or ())
            report.checks.append(CheckResult(name, "passed", f"compiles as one graph at {at}" if key == "compile"
                                             else f"exports at {at}", required=False))
