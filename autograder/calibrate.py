"""Calibration: thresholds from the reference solution over seeds, never guessed.

``rnn-course calibrate ID --seeds N`` asks the assignment's plugin to train its
reference once per seed (:meth:`~autograder.plugin.Plugin.reference_run`, scored
on hidden data as the judge scores) and to score the trivial baselines
(:meth:`~autograder.plugin.Plugin.baselines`). With the spec's ``[calibration]``
(metric, models, which direction is better, margin), each model gets:

- ``<metric>_<model>``: the worst seed, less the margin (or plus it, when lower is better);
- ``<metric>_basic_<model>``: halfway between the best trivial baseline and that target.

Every baseline must fail the basic tier, or the calibration stops with an error.
The result is written beside the spec as ``calibration.json`` (read by the spec)
and ``calibration.md`` (the table, committed).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from statistics import mean

from autograder.plugin import ReferenceResult
from autograder.spec import Calibration, Spec


class CalibrationError(RuntimeError):
    """The reference does not clear the trivial baselines by a usable margin."""


def thresholds(
    calibration: Calibration,
    runs: list[dict],
    baselines: dict[str, float],
) -> dict[str, float]:
    """Full and basic thresholds per model from the runs (``{"model", "value", ...}``)."""
    higher = calibration.better == "higher"
    best_baseline = (max if higher else min)(baselines.values())
    result = {}
    for model in calibration.models:
        values = [run["value"] for run in runs if run["model"] == model]
        worst = min(values) if higher else max(values)
        target = round(worst - calibration.margin if higher else worst + calibration.margin, 3)
        basic = round((target + best_baseline) / 2, 3)
        passes_basic = best_baseline >= basic if higher else best_baseline <= basic
        if passes_basic or (target <= basic if higher else target >= basic):
            raise CalibrationError(
                f"{model}: the reference's worst seed ({worst:.3f}) does not clear the best "
                f"baseline ({best_baseline:.3f}) by the margin {calibration.margin}"
            )
        result[f"{calibration.metric}_{model}"] = target
        result[f"{calibration.metric}_basic_{model}"] = basic
    return result


def calibrate(spec: Spec, seeds: list[int], out_dir: Path | None = None) -> dict:
    """Run the reference over ``seeds``, write ``calibration.json`` and ``.md``; the result."""
    if spec.calibration is None:
        raise CalibrationError(f"{spec.folder / 'spec.toml'} has no [calibration] table")
    plugin = spec.plugin()
    runs = []
    for seed in seeds:
        results: dict[str, ReferenceResult] = plugin.reference_run(seed)
        for model in spec.calibration.models:
            runs.append({"seed": seed, "model": model, **asdict(results[model])})
            print(json.dumps(runs[-1]), flush=True)
    baselines = plugin.baselines()
    result = {
        "metric": spec.calibration.metric,
        "better": spec.calibration.better,
        "margin": spec.calibration.margin,
        "reference": plugin.reference_description(),
        "thresholds": thresholds(spec.calibration, runs, baselines),
        "baselines": baselines,
        "runs": runs,
    }
    out = Path(out_dir or spec.folder)
    (out / "calibration.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "calibration.md").write_text(table(spec, result))
    return result


def table(spec: Spec, result: dict) -> str:
    """The calibration as a Markdown page: one row per model, then the baselines."""
    metric, seeds = result["metric"], sorted({run["seed"] for run in result["runs"]})
    direction = "less" if result["better"] == "higher" else "plus"
    lines = [
        f"# Calibration of {spec.id} ({spec.title})",
        "",
        f"Reference solution trained with seeds {seeds}, scored by the judge on hidden data "
        f"(`rnn-course calibrate {spec.id} --seeds {len(seeds)}`). {result['reference']} "
        "Target = worst seed "
        f"{direction} the margin {result['margin']}; basic tier = halfway between the best "
        "trivial baseline and the target.",
        "",
        f"| model | {metric} mean | worst | best | epochs | s/epoch | target | basic tier |",
        "|---|---|---|---|---|---|---|---|",
    ]
    higher = result["better"] == "higher"
    for model in spec.calibration.models:
        runs = [run for run in result["runs"] if run["model"] == model]
        values = [run["value"] for run in runs]
        worst, best = (min(values), max(values)) if higher else (max(values), min(values))
        lines.append(
            f"| {model} | {mean(values):.4f} | {worst:.4f} | {best:.4f} "
            f"| {mean(run['epochs'] for run in runs):.1f} "
            f"| {mean(run['seconds_per_epoch'] for run in runs):.1f} "
            f"| {result['thresholds'][f'{metric}_{model}']:.3f} "
            f"| {result['thresholds'][f'{metric}_basic_{model}']:.3f} |"
        )
    lines += ["", f"| baseline | {metric} |", "|---|---|"]
    lines += [f"| {name} | {value:.4f} |" for name, value in result["baselines"].items()]
    return "\n".join(lines) + "\n"
