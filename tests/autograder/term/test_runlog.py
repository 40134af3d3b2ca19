"""The log of a grading run: one new file per run, one line per event."""

from __future__ import annotations

from autograder.core.course import Results
from autograder.core.results import CheckResult, Outcome
from autograder.term.runlog import RunLog


def test_each_run_gets_its_own_log(tmp_path):
    results = Results(tmp_path)
    first = RunLog.start(results, "toy", "jobs 1")
    second = RunLog.start(results, "toy", "jobs 2")  # within the same second
    first.outcome(
        Outcome(
            "bob",
            "toy",
            "d",
            "rejected",
            message="bob.zip is not a readable zip file",
            checks=[CheckResult("test_mae", "close", "test_toy", 2.0, 0.0, "")],
            seconds=0.4,
            run={"status": "rejected"},
        )
    )
    first.close()
    second.close()
    assert first.path != second.path and first.path.parent == results.logs
    assert first.path.name.startswith("toy-") and first.path.suffix == ".log"
    lines = first.path.read_text().splitlines()
    assert lines[0].endswith("grading toy: jobs 1")
    assert lines[1].endswith(
        "rejected bob 0 / 2 in 0.4 s (judge 0 s), run rejected: bob.zip is not a readable zip file"
    )


def test_the_log_records_the_time_limits_each_run_had(tmp_path):
    results = Results(tmp_path)
    log = RunLog.start(results, "toy", "jobs 1")
    limits = {"notebook_timeout_s": 15, "cell_timeout_s": 900, "judge_timeout_s": 120}
    counted = {**limits, "cpu_cores": 2, "wall_clock_factor": 3}
    log.outcome(Outcome("eve", "toy", "d", "graded", run={"status": "timeout", "limits": counted}))
    log.outcome(Outcome("ann", "toy", "d", "graded", run={"status": "ok", "limits": limits}))
    log.close()
    lines = log.path.read_text().splitlines()
    assert lines[2].endswith(
        "eve: time limits: notebook 15 s, cell 900 s, judge 120 s (CPU time on each of 2 cores, "
        "wall-clock backstop 3 x)"
    )
    assert lines[4].endswith(
        "ann: time limits: notebook 15 s, cell 900 s, judge 120 s (wall-clock time)"
    )
