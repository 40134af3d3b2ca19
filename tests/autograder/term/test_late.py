"""The late policy: nbgrader's plugin with penalties per hour or day, due dates, timestamps."""

from __future__ import annotations

import pytest

from autograder.core.course import Course, CourseError
from autograder.term import late

HOUR = 3600


@pytest.mark.parametrize(
    ("settings", "seconds", "penalty"),
    [
        ({}, 5 * HOUR, None),
        ({"penalty_method": "zero"}, 1, 9.0),
        ({"penalty_method": "per_hour", "points": 0.5}, 2 * HOUR + 1, 1.5),
        ({"penalty_method": "per_day", "points": 2}, 24 * HOUR, 2.0),
        ({"penalty_method": "per_day", "points": 2}, 24 * HOUR + 1, 4.0),
        ({"penalty_method": "per_day", "points": 2}, 0, None),
    ],
)
def test_penalties(settings, seconds, penalty):
    assert late.LatePolicy(**settings).late_submission_penalty("ann", 9.0, seconds) == penalty


def test_the_policy_says_what_it_does():
    assert late.LatePolicy().describe() == "no penalty"
    policy = late.LatePolicy(penalty_method="per_hour", points=1)
    assert policy.describe() == "1 points off per started hour late"


def test_due_dates_are_utc():
    policy = late.LatePolicy(duedates={"a1": "2025-03-28 23:59:00 Australia/Sydney"})
    assert policy.duedate("a1").isoformat() == "2025-03-28T12:59:00"
    assert policy.duedate("a2") is None
    with pytest.raises(CourseError, match=r"LatePolicy.duedates\['a1'\] = '2025-13-40'"):
        late.LatePolicy(duedates={"a1": "2025-13-40"}).duedate("a1")


def test_a_bad_setting_in_the_course_config_is_one_line(tmp_path):
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\nc.LatePolicy.points = -1\n")
    with pytest.raises(CourseError) as error:
        late.policy(Course(tmp_path))
    assert "nbgrader_config.py: The value of the 'points' trait" in str(error.value)
    assert "\n" not in str(error.value)


def test_submission_time_from_timestamp_txt(tmp_path):
    assert late.submitted_at(tmp_path) is None
    (tmp_path / "timestamp.txt").write_text("2025-03-02 01:30:00.5 Europe/Paris\n")
    assert late.submitted_at(tmp_path) == "2025-03-02T00:30:00.500000"
    (tmp_path / "timestamp.txt").write_text("yesterday-ish")
    with pytest.raises(ValueError, match="not a time"):
        late.submitted_at(tmp_path)


def test_a_zips_own_timestamp_never_dates_the_submission(tmp_path):
    """A student can write any time into a zip: its file time counts, and the log says so."""
    import os
    import zipfile

    from autograder.grading.collect import find_submissions

    submitted = tmp_path / "submitted"
    submitted.mkdir()
    with zipfile.ZipFile(submitted / "mallory.zip", "w") as archive:
        archive.writestr("toy.ipynb", "{}")
        archive.writestr("timestamp.txt", "2020-01-01 00:00:00 UTC")  # long before the due date
    received = 1_772_452_800  # 2026-03-02 12:00:00 UTC
    os.utime(submitted / "mallory.zip", (received, received))
    (mallory,) = find_submissions("toy", submitted, tmp_path / "unpacked", max_bytes=1 << 20)
    assert (mallory.folder / "timestamp.txt").is_file()
    time, source = late.submission_time(mallory.folder, mallory.archive)
    assert time == "2026-03-02T12:00:00"
    assert source == "the zip's file time (a timestamp.txt inside it never counts)"


def test_a_folder_is_dated_by_nbgrader_collect_only(tmp_path):
    """Without collect's ``timestamp.txt`` a folder has no time (as in nbgrader), never the
    time it was copied in, which would make a whole class late."""
    import os

    received = 1_772_452_800
    os.utime(tmp_path, (received, received))
    time, source = late.submission_time(tmp_path)
    assert time is None and "no timestamp.txt" in source and "never late" in source
    (tmp_path / "timestamp.txt").write_text("2026-03-01 09:30:00 UTC")
    assert late.submission_time(tmp_path) == (
        "2026-03-01T09:30:00",
        "timestamp.txt (written by nbgrader collect)",
    )
    (tmp_path / "timestamp.txt").write_text("soon")
    time, source = late.submission_time(tmp_path)
    assert time is None and "holds 'soon', not a time" in source


def test_lateness_reads_like_a_person_wrote_it():
    assert late.lateness(40) == "1 min"
    assert late.lateness(26 * HOUR + 300) == "1 d 2 h"
    assert late.lateness(5 * HOUR + 12 * 60) == "5 h 12 min"
