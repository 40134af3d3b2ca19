"""Calibration: thresholds from the reference solution over seeds, never guessed.

``rnn-course calibrate ID --seeds N`` asks the assignment's plugin to train its
reference once per seed (:meth:`~autograder.core.plugin.Plugin.reference_run`, scored
on hidden data as the judge scores) and to score the trivial baselines
(:meth:`~autograder.core.plugin.Plugin.baselines`). With the spec's ``[calibration]``
(metric, models, which direction is better, margin), each model gets:

- ``<metric>_<model>``: the worst seed, less the margin (or plus it, when lower is better);
- ``<metric>_basic_<model>``: halfway between the best trivial baseline and that target.

and, where the reference run measured them (the plugin fills
:attr:`~autograder.core.plugin.ReferenceResult.ablated` and ``controls``):

- ``min_ablation_loss_<model>``: the loss of quality without the recurrence that a
  model must show, ``ablation_share`` of the reference's smallest loss over seeds
  (a model that does not need its recurrence loses nothing);
- ``contamination_margin_<model>``: how much better than the best control the hidden
  data may score, the reference's largest gap over seeds (or zero, when the hidden
  data is the harder one: a weaker honest model's gap lies nearer zero) plus
  ``contamination_slack``.

Every baseline must fail the basic tier, or the calibration stops with an error.
The result is written beside the spec as ``calibration.json`` (read by the spec)
and ``calibration.md`` (the table, committed).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from statistics import mean

from autograder.core.plugin import ReferenceResult, load_plugin
from autograder.core.spec import Calibration, Spec


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
        result.update(
            validity_thresholds(calibration, model, [r for r in runs if r["model"] == model])
        )
    return result


def ablation_loss(run: dict, higher: bool) -> float:
    """How much worse a run's model is without its recurrence."""
    return run["value"] - run["ablated"] if higher else run["ablated"] - run["value"]


def contamination_gap(run: dict, higher: bool) -> float:
    """How much better a run's model scores on the hidden data than on its best control."""
    best = (max if higher else min)(run["controls"].values())
    return run["value"] - best if higher else best - run["value"]


def validity_thresholds(calibration: Calibration, model: str, runs: list[dict]) -> dict:
    """The ablation and contamination thresholds of ``model`` (none if unmeasured)."""
    higher = calibration.better == "higher"
    result = {}
    if runs and all(run.get("ablated") is not None for run in runs):
        smallest = min(ablation_loss(run, higher) for run in runs)
        if smallest <= 0:
            raise CalibrationError(
                f"{model}: the reference loses nothing without its recurrence ({smallest:.3f})"
            )
        result[f"min_ablation_loss_{model}"] = round(calibration.ablation_share * smallest, 3)
    if runs and all(run.get("controls") for run in runs):
        largest = max(contamination_gap(run, higher) for run in runs)
        # a weaker honest model gains less from what it learned than the reference does, so
        # its gap lies between the reference's and zero: the margin counts from zero at least
        margin = max(largest, 0.0) + calibration.contamination_slack
        result[f"contamination_margin_{model}"] = round(margin, 3)
    return result


def calibrate(spec: Spec, seeds: list[int], out_dir: Path | None = None) -> dict:
    """Run the reference over ``seeds``, write ``calibration.json`` and ``.md``; the result."""
    if spec.calibration is None:
        raise CalibrationError(f"{spec.folder / 'spec.toml'} has no [calibration] table")
    plugin = load_plugin(spec)
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
    lines += validity_table(spec, result)
    lines += ["", f"| baseline | {metric} |", "|---|---|"]
    lines += [f"| {name} | {value:.4f} |" for name, value in result["baselines"].items()]
    return "\n".join(lines) + "\n"


def validity_table(spec: Spec, result: dict) -> list[str]:
    """The ablation and contamination margins per model, as measured (Markdown lines)."""
    higher = result["better"] == "higher"
    calibration = spec.calibration
    thresholds, slack = result["thresholds"], calibration.contamination_slack
    rows = []
    for model in calibration.models:
        runs = [run for run in result["runs"] if run["model"] == model]
        if f"min_ablation_loss_{model}" not in thresholds:
            continue
        losses = [ablation_loss(run, higher) for run in runs]
        gaps = [contamination_gap(run, higher) for run in runs if run.get("controls")]
        margin = thresholds.get(f"contamination_margin_{model}", float("nan"))
        controls = sorted({name for run in runs for name in run.get("controls") or {}})
        rows.append(
            f"| {model} | {mean(run['ablated'] for run in runs):.4f} | {min(losses):.4f} "
            f"| {thresholds[f'min_ablation_loss_{model}']:.3f} "
            f"| {max(gaps, default=float('nan')):+.4f} | {margin:.3f} "
            f"| {', '.join(controls)} |"
        )
    if not rows:
        return []
    return [
        "",
        f"Validity. Ablation: the same {result['metric']} with every recurrent layer's state reset "
        f"at every step; a model must lose at least {calibration.ablation_share:g} x the "
        "reference's smallest loss. Contamination: the hidden data's score against the best "
        "control (data no notebook trains on); a model is flagged when the hidden data is "
        f"better by more than the reference's largest gap (at least 0) plus {slack:g}.",
        "",
        "| model | without recurrence (mean) | smallest loss | required loss | largest gap "
        "| flagged above | controls |",
        "|---|---|---|---|---|---|---|",
        *rows,
    ]
