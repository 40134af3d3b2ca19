"""The class report (``rnn-course report ID``): one page about a graded class, for the instructor.

It reads what grading runs recorded in a results folder (:class:`autograder.core.course.Results`):
each submission's ``autograded/<student>/<ID>/grading.json`` (``Outcome.to_json()``)
and notebook, the class's ``grades_by_check.csv`` (:mod:`autograder.term.grades`: the
totals with hand grades, adjustments and late penalties, as the console and the
feedback pages show them), the spec's thresholds, and the release notebook. It writes
``report.html``, self-contained (plots embedded as data URLs), and beside it one
CSV file per table of the page:

1. the scores: autograded and total (rejected and failed submissions shown as such,
   never as 0);
2. each check's pass rate;
3. the calibrated metric of each model against its two thresholds;
4. the slowest runs, and every run that did not end well, with its cause;
5. pairs of students whose code is suspiciously similar (copydetect).

pandas, Matplotlib, nbformat and copydetect are imported by the functions that use them.
"""

from __future__ import annotations

import base64
import html
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from autograder.core.results import RUN_OK

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from autograder.core.course import Course, Results
    from autograder.core.spec import Spec

#: A pair is shown when one student's code is at least this share of the other's.
SIMILARITY_THRESHOLD = 0.5
#: How many of the slowest runs are listed.
SLOWEST = 5
REPORT_FILE = "report.html"
#: The columns of ``grades_by_check.csv`` beside the autograded score.
TOTALS = ["manual", "adjustments", "late_penalty", "total", "max"]

esc = html.escape


def grading_files(results: Results, assignment_id: str) -> list[Path]:
    """The ``grading.json`` of every recorded submission of ``assignment_id``."""
    return [path for path in results.grading_files() if path.parent.name == assignment_id]


@dataclass(frozen=True)
class ClassRecord:
    """What the grading runs recorded about one assignment, as tables."""

    submissions: pd.DataFrame  # one row per student
    checks: pd.DataFrame  # one row per student and check


def load_record(results: Results, assignment_id: str) -> ClassRecord:
    """The recorded outcomes of ``assignment_id`` in ``results``.

    A check may carry ``value`` and ``model``: the assignment's calibrated metric
    the check measured on that model (columns of missing values when none does).
    The totals (:data:`TOTALS`) are those of the grades CSV (missing values without a row).
    """
    import pandas as pd

    from autograder.grading.record import recorded
    from autograder.term import grades

    submissions, checks = [], []
    for path in grading_files(results, assignment_id):
        outcome = recorded(results, path.parent.parent.name, assignment_id)
        if outcome is None:  # unreadable: the grader rewrites it on its next run
            continue
        submissions.append(
            {
                "student": outcome.student,
                "status": outcome.status,
                "score": outcome.score,
                "max_score": outcome.max_score,
                "seconds": outcome.seconds,
                "judge_seconds": outcome.judge_seconds,
                "run_status": outcome.run.get("status", ""),
                "run_seconds": outcome.run.get("duration_s"),  # none: rejected before the run
                "cause": outcome.run.get("message") or outcome.message,
                "digest": outcome.digest,
                "withheld": sum(check.withheld for check in outcome.checks),
                "review": "; ".join(
                    sorted({c.review for c in outcome.checks if c.withheld}) + outcome.signals
                ),
            }
        )
        checks += [
            {"student": outcome.student, "status": outcome.status, **check.to_json()}
            for check in outcome.checks
        ]
    columns = ["student", "status", "name", "title", "grade_cell", "max_points", "points"]
    checks_table = pd.DataFrame(checks).reindex(columns=[*columns, "value", "model"])
    checks_table["passed"] = checks_table["points"] == checks_table["max_points"]
    csv = grades.read(results.grades_csv)
    rows = csv[csv["assignment"] == assignment_id] if csv is not None else pd.DataFrame()
    totals = rows.reindex(columns=["student", *TOTALS]).astype({"student": str})
    submissions_table = (
        pd.DataFrame(submissions)
        .astype({"run_seconds": float})
        .merge(totals, on="student", how="left")
    )
    return ClassRecord(submissions_table, checks_table)


# --------------------------------------------------------------------------- tables


def status_counts(record: ClassRecord) -> pd.DataFrame:
    """How many submissions were graded, rejected and failed."""
    counts = record.submissions["status"].value_counts()
    statuses = ["graded", "rejected", "failed"]
    return counts.reindex(statuses, fill_value=0).rename("submissions").rename_axis("status")


def scores(record: ClassRecord) -> pd.DataFrame:
    """Each student's autograded score and total (hand grades, adjustments and the late
    penalty counted, as in the grades CSV); none where the submission was not graded."""
    columns = ["student", "status", "score", "max_score", *TOTALS, "run_status"]
    table = record.submissions.reindex(columns=columns)
    table = table.rename(columns={"score": "autograded", "max_score": "autograded_max"})
    graded = table["status"] == "graded"
    points = ["autograded", "manual", "adjustments", "late_penalty", "total"]
    return table.assign(**{c: table[c].where(graded) for c in points}).sort_values("student")


def pass_rates(record: ClassRecord) -> pd.DataFrame:
    """Each check's pass rate and mean points over the graded submissions."""
    checks = record.checks[record.checks["status"] == "graded"]
    return (
        checks.groupby(["name", "title", "grade_cell", "max_points"], as_index=False)
        .agg(
            graded=("passed", "size"),
            passed=("passed", "sum"),
            pass_rate=("passed", "mean"),
            mean_points=("points", "mean"),
        )
        .sort_values(["grade_cell", "name"])
    )


def measurements(record: ClassRecord, spec: Spec) -> pd.DataFrame:
    """The metric each graded model reached, its thresholds, and the tier it reached."""
    import numpy as np
    import pandas as pd

    checks = record.checks[record.checks["status"] == "graded"].dropna(subset=["value", "model"])
    table = checks.groupby(["student", "model"], as_index=False)["value"].first()
    metric = metric_of(spec)
    sign = -1 if spec.calibration and spec.calibration.better == "lower" else 1
    basic = table["model"].map(lambda model: spec.thresholds.get(f"{metric}_basic_{model}"))
    target = table["model"].map(lambda model: spec.thresholds.get(f"{metric}_{model}"))
    value = sign * table["value"]
    reached = [value >= sign * target, value >= sign * basic]
    tier = pd.Series(np.select(reached, ["target", "basic"], "below basic"), index=table.index)
    tier = tier.where(target.notna(), "")
    table = table.assign(basic=basic, target=target, tier=tier).rename(columns={"value": metric})
    return table.sort_values(["model", "student"])


def metric_of(spec: Spec) -> str:
    """The name of the assignment's calibrated metric (``value`` where none is declared)."""
    return spec.calibration.metric if spec.calibration else "value"


def slowest(record: ClassRecord) -> pd.DataFrame:
    """The runs that took longest, from intake to recorded judgement."""
    columns = ["student", "status", "seconds", "run_seconds", "judge_seconds", "run_status"]
    return record.submissions.nlargest(SLOWEST, "seconds")[columns]


def held_for_review(record: ClassRecord, results: Results, assignment_id: str) -> pd.DataFrame:
    """Every submission with points withheld for review: how many, why, and the decision."""
    from autograder.term.review import decisions

    table = record.submissions
    if table.empty:
        return table
    decided = decisions(results, assignment_id)
    held = table[(table["withheld"] > 0) | (table["review"] != "")].copy()
    held["decision"] = [
        ("released" if d.released else "kept withheld") if d else ("waiting" if w else "")
        for d, w in zip(
            (decided.get(key) for key in zip(held["student"], held["digest"], strict=True)),
            held["withheld"],
            strict=True,
        )
    ]
    return held[["student", "withheld", "decision", "review"]].sort_values("student")


def problems(record: ClassRecord) -> pd.DataFrame:
    """Every submission rejected or failed, or whose run did not end well, with the cause."""
    table = record.submissions
    bad = (table["status"] != "graded") | ~table["run_status"].isin(RUN_OK)
    return table[bad][["student", "status", "run_status", "cause"]].sort_values("student")


# --------------------------------------------------------------------------- similar code


@dataclass(frozen=True)
class Similarity:
    """The similar pairs, and what was compared to find them."""

    pairs: pd.DataFrame
    compared: list[str]  # students whose notebook was compared
    missing: list[str]  # students with no notebook to compare


def student_notebook(course: Course, results: Results, spec: Spec, student: str) -> Path | None:
    """The notebook graded for ``student``: executed, else as collected, else as submitted."""
    candidates = (
        results.autograded(student, spec.id) / spec.notebook,
        results.collected / student / spec.id / spec.notebook,
        course.submitted / student / spec.id / spec.notebook,
    )
    return next((path for path in candidates if path.is_file()), None)


def code_cells(notebook: Path) -> str | None:
    """The code cells of ``notebook`` as one Python file, or None if it cannot be read."""
    import nbformat

    try:
        cells = nbformat.read(notebook, as_version=4).cells
        return "\n\n".join(cell.source for cell in cells if cell.cell_type == "code")
    except Exception:  # a malformed notebook (a student's file) is just "no notebook"
        return None


def similar_code(course: Course, results: Results, spec: Spec, students: list[str]) -> Similarity:
    """Pairs of students whose code cells overlap, the release notebook's code left out."""
    import pandas as pd
    from copydetect import CopyDetector

    columns = ["student_a", "student_b", "share_of_a", "share_of_b", "overlap"]
    detector = CopyDetector(display_t=SIMILARITY_THRESHOLD, autoopen=False, silent=True)
    compared, missing = [], []
    with tempfile.TemporaryDirectory() as scratch:
        release = Path(scratch) / "release.py"
        release.write_text(code_cells(course.release_notebook(spec)) or "")
        detector.add_file(str(release), "boilerplate")
        for student in students:
            notebook = student_notebook(course, results, spec, student)
            code = code_cells(notebook) if notebook else None
            if code is None:
                missing.append(student)
                continue
            path = Path(scratch) / "students" / f"{student}.py"
            path.parent.mkdir(exist_ok=True)
            path.write_text(code)
            detector.add_file(str(path))
            compared.append(student)
        if len(compared) > 1:
            detector.run()
            found = detector.get_copied_code_list()
        else:
            found = []
    pairs = pd.DataFrame(
        [
            (Path(a).stem, Path(b).stem, share_a, share_b, overlap)
            for share_a, share_b, a, b, *_, overlap in found
        ],
        columns=columns,
    )
    return Similarity(pairs, compared, missing)


# --------------------------------------------------------------------------- plots


def png(figure: Figure) -> str:
    """``figure`` as a data URL."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def score_histogram(table: pd.DataFrame) -> str:
    """The graded totals (the autograded scores where no total is recorded), from 0 to the
    maximum."""
    from matplotlib.figure import Figure

    shown, top = (
        ("total", "max") if table["total"].notna().any() else ("autograded", "autograded_max")
    )
    graded = table.dropna(subset=[shown])
    top = graded[top].max()
    figure = Figure(figsize=(7, 3.2))
    axes = figure.subplots()
    axes.hist(graded[shown], bins=20, range=(0, top), color="#4c72b0", edgecolor="white")
    axes.set(xlabel=f"{shown} (out of {top:g})", ylabel="submissions", xlim=(0, top))
    return png(figure)


def pass_rate_bars(table: pd.DataFrame) -> str:
    """One bar per check: the share of graded submissions that passed it."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 0.3 * len(table) + 1))
    axes = figure.subplots()
    axes.barh(table["title"], table["pass_rate"], color="#55a868")
    axes.invert_yaxis()
    axes.set(xlabel="share of graded submissions that passed", xlim=(0, 1))
    return png(figure)


def metric_histograms(table: pd.DataFrame, metric: str) -> str:
    """One histogram per model, with its basic (dashed) and target (solid) thresholds."""
    import pandas as pd
    from matplotlib.figure import Figure

    models = list(dict.fromkeys(table["model"]))
    figure = Figure(figsize=(4 * len(models), 3.2))
    for axes, model in zip(figure.subplots(1, len(models), squeeze=False)[0], models, strict=True):
        rows = table[table["model"] == model]
        axes.hist(rows[metric], bins=15, color="#8172b2")
        for column, style, colour in (("basic", "--", "#dd8452"), ("target", "-", "#2ca02c")):
            threshold = rows[column].iloc[0]
            if pd.notna(threshold):
                axes.axvline(
                    threshold, linestyle=style, color=colour, label=f"{column} {threshold:g}"
                )
        axes.set(title=model, xlabel=metric, ylabel="submissions")
        axes.legend()
    return png(figure)


# --------------------------------------------------------------------------- the page


def write_report(spec: Spec, course: Course, results: Results, folder: Path) -> Path:
    """Write ``report.html`` and one CSV per table into ``folder``; return the page's path."""
    record = load_record(results, spec.id)
    folder.mkdir(parents=True, exist_ok=True)
    tables = {
        "status_counts": status_counts(record).reset_index(),
        "scores": scores(record),
        "check_pass_rates": pass_rates(record),
        "measurements": measurements(record, spec),
        "slowest_runs": slowest(record),
        "problem_runs": problems(record),
        "held_for_review": held_for_review(record, results, spec.id),
    }
    similarity = similar_code(course, results, spec, sorted(record.submissions["student"]))
    tables["similar_pairs"] = similarity.pairs
    for name, table in tables.items():
        table.to_csv(folder / f"{name}.csv", index=False)
    page = folder / REPORT_FILE
    page.write_text(page_html(spec, tables, similarity), "utf-8")
    return page


def html_table(table: pd.DataFrame, name: str) -> str:
    """``table`` as HTML, named after its CSV file."""
    if table.empty:
        return "<p>None.</p>"
    shown = table.to_html(
        index=False, border=0, na_rep="", float_format="{:.3g}".format, table_id=name
    )
    return f'<p class="csv">{name}.csv</p>{shown}'


def page_html(spec: Spec, tables: dict[str, pd.DataFrame], similarity: Similarity) -> str:
    """The page: the five sections, each table with the name of its CSV file."""
    scores_table = tables["scores"]
    graded = scores_table["status"] == "graded"
    shown_scores = scores_table.assign(
        **{
            column: scores_table[column].astype(object).where(graded, scores_table["status"])
            for column in ("autograded", "total")
        }
    )
    rates = tables["check_pass_rates"]
    measured = tables["measurements"]
    metric = metric_of(spec)
    better = spec.calibration.better if spec.calibration else ""
    sections = [
        "<h2>1. Scores</h2>",
        html_table(tables["status_counts"], "status_counts"),
        f'<img alt="score distribution" src="{score_histogram(scores_table)}">'
        if scores_table["autograded"].notna().any()
        else "<p>No submission was graded.</p>",
        "<p>Rejected submissions (unreadable, too large...) and failed gradings (a course "
        "problem) have no total: they are shown as such, not as 0. <em>autograded</em> is "
        "the hidden checks' points; <em>total</em> adds the hand grades, the adjustments "
        "and the late penalty (as <code>grades_by_check.csv</code>, the console and each "
        "student's page give it; empty where that file has no row yet).</p>",
        html_table(shown_scores, "scores"),
        "<h3>Points withheld for your review</h3>",
        "<p>Models markedly better on the hidden data than on comparable data no notebook "
        "trains on: their metric points wait until you release them after looking "
        f"(<code>rnn-course review {esc(spec.id)} --release STUDENT</code>). Submissions whose "
        "files hold long runs of the hidden data are listed too (a second signal: no points "
        "are withheld for it alone).</p>",
        html_table(tables["held_for_review"], "held_for_review"),
        "<h2>2. Checks</h2>",
        "<p>Pass rates over the graded submissions only.</p>",
        f'<img alt="pass rate per check" src="{pass_rate_bars(rates)}">' if len(rates) else "",
        html_table(rates, "check_pass_rates"),
        f"<h2>3. Measured {esc(metric)} against the thresholds</h2>",
        f"<p>{esc(metric)} on hidden data, {esc(better)} is better; thresholds from the "
        "spec and its calibration (basic tier dashed, target solid).</p>"
        if len(measured)
        else "<p>No measured value was recorded for this class (a check records one as the "
        "<code>value</code> of a <code>model</code> in grading.json).</p>",
        f'<img alt="{esc(metric)} per model" src="{metric_histograms(measured, metric)}">'
        if len(measured)
        else "",
        html_table(measured, "measurements") if len(measured) else "",
        "<h2>4. Runs</h2>",
        f"<h3>The {SLOWEST} slowest (seconds)</h3>",
        html_table(tables["slowest_runs"], "slowest_runs"),
        "<h3>Rejected, failed, timed out or otherwise troubled runs</h3>",
        html_table(tables["problem_runs"], "problem_runs"),
        "<h2>5. Similar code</h2>",
        similarity_text(spec, similarity),
        html_table(tables["similar_pairs"], "similar_pairs"),
    ]
    body = "\n".join(section for section in sections if section)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<link rel="icon" href="data:,">
<title>Class report: {esc(spec.id)}</title>
<style>
body {{ font-family: sans-serif; max-width: 70em; margin: 2em auto; }}
table {{ border-collapse: collapse; margin-bottom: 1em; }}
td, th {{ border: 1px solid #ccc; padding: .3em .5em; text-align: left; vertical-align: top; }}
p.csv {{ color: #666; font-size: small; margin-bottom: .2em; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>Class report: {esc(spec.title)} ({esc(spec.id)})</h1>
{body}
</body></html>
"""


def similarity_text(spec: Spec, similarity: Similarity) -> str:
    """What was compared, how, and who could not be."""
    missing = (
        f" Not compared (no readable notebook): {esc(', '.join(similarity.missing))}."
        if similarity.missing
        else ""
    )
    return (
        f"<p>Compared with copydetect: the code cells of {len(similarity.compared)} students' "
        f"notebooks ({esc(spec.notebook)}: the executed one the grader recorded, else the one "
        "submitted), with the code of the release notebook left out as boilerplate. Names and "
        "strings are normalised, so renaming variables does not hide a copy. A pair is listed "
        f"when more than {SIMILARITY_THRESHOLD:.0%} of one student's remaining code is found in "
        "the other's; share_of_a is the share of student_a's code found in student_b's, and "
        f"overlap copydetect's count of matching tokens.{missing}</p>"
    )
