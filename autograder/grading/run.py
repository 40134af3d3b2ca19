"""Stage 2 of grading, "run": execute an untrusted notebook in the sandbox, collect data only.

:func:`run_submission` runs the student's notebook (a copy in a scratch folder)
with :mod:`autograder.grading.sandbox.driver` inside the sandbox of
:mod:`autograder.grading.sandbox`, then the probe cells of :mod:`autograder.grading.probes`,
and copies out of the scratch folder, into ``out_dir``:

- ``executed.ipynb``: the executed notebook, its outputs capped;
- ``artifacts/<path>``: each declared artifact that is a regular file;
- ``probes/<name>.<ext>`` and ``probes/index.json``: the probe results;
- ``run.json`` (:meth:`RunResult.to_json`, with the limits the run had) and ``run.log``
  (the sandbox's capped stdout/stderr).

Time limits count the CPU time of the sandbox's processes (a limit of N s allows N s
on each of :func:`autograder.grading.sandbox.measure.cpu_cores`), so that a busy machine
fails nobody; :data:`autograder.grading.sandbox.measure.WALL_CLOCK_FACTOR` times a limit in
wall-clock time stops a notebook that waits without computing. The message says which
clock stopped it.

Everything in the scratch folder is untrusted: files are opened without
following symlinks, sizes are capped, JSON is the only format parsed here, and
nothing from the scratch folder is ever imported, executed or unpickled. The
verdict never comes from there either: the driver reports each cell's
``execute_reply`` on a pipe only it holds (see :mod:`autograder.grading.sandbox`), so a
notebook that hides its tracebacks, or rewrites its outputs or any file, still
gets the cells that raised. The run happens in a copy of the scratch folder
with a disk limit (:func:`autograder.grading.sandbox.disk.scratch_space`), from which the
outputs are read before it goes.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path, PurePosixPath
from typing import Any

import nbformat

from autograder.core.course import Judged
from autograder.core.results import RunResult
from autograder.core.safe_json import JSONError, load_json
from autograder.core.spec import Limits, Probe
from autograder.core.text import error_text, student_text
from autograder.core.units import MB
from autograder.grading import probes as probing
from autograder.grading.sandbox import disk, measure, watch

log = logging.getLogger(__name__)

GRACE_S = 60
PROBE_TIMEOUT_CAP_S = 300
GRADER_DIR = ".grader"
RESERVED = (GRADER_DIR, probing.PROBE_DIR, ".sandbox")
OUTPUTS = ("executed.ipynb", "artifacts", "probes", "run.json", "run.log")
TRUNCATED_NOTE = "[output truncated by the grader: the notebook's output exceeded {mb} MB]\n"
HIDDEN_ERROR = "an error its output does not show"
CPU, WALL = "CPU time", "wall-clock time"  # the clocks the driver reports a timeout by
UNCOLLECTED = "its result could not be collected (the file was missing, not a file or too large)"


def run_submission(
    notebook: Path,
    scratch: Path,
    out_dir: Path,
    *,
    limits: Limits,
    probes: Sequence[Probe] = (),
    artifacts: Mapping[str, str] = {},  # noqa: B006
    data_dir: Path | None = None,
    execute: bool = True,
) -> RunResult:
    """Run ``scratch/<notebook.name>`` in the sandbox and collect its results into ``out_dir``."""
    scratch, judged = scratch.resolve(), Judged(out_dir.resolve())
    _clear(judged.root, OUTPUTS)
    judged.root.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    if not execute:
        result = RunResult(
            "not_executed",
            "The notebook was not executed (grading without "
            "execution); only the files it shipped were collected.",
            "none",
            0.0,
        )
        result.notes += _export_artifacts(scratch, judged, artifacts, limits)
    elif _open_inside(scratch, notebook.name) is None:
        result = RunResult(
            "crashed",
            f"The notebook {notebook.name} is missing from the "
            "submission (or is not a regular file).",
            "none",
            0.0,
        )
        result.notes += _export_artifacts(scratch, judged, artifacts, limits)
    else:
        with disk.scratch_space(scratch, limits) as space:  # a copy, as root
            result = _execute(notebook.name, space.path, judged, limits, probes, data_dir, space)
            result.notes += _export_artifacts(space.path, judged, artifacts, limits)
    result.duration_s = round(time.monotonic() - started, 2)
    result.limits = {
        **asdict(limits),
        "cpu_cores": measure.cpu_cores(),
        "wall_clock_factor": measure.WALL_CLOCK_FACTOR,
    }
    judged.run_json.write_text(json.dumps(result.to_json(), indent=2))
    return result


def _execute(
    name: str,
    scratch: Path,
    judged: Judged,
    limits: Limits,
    probes: Sequence[Probe],
    data_dir: Path | None,
    space: disk.ScratchSpace | None = None,
) -> RunResult:
    """Run the driver in the sandbox and turn what it reported into a :class:`RunResult`."""
    _clear(scratch, RESERVED)
    (scratch / GRADER_DIR).mkdir()
    probe_timeout = min(limits.cell_timeout_s, PROBE_TIMEOUT_CAP_S)
    cores, factor = measure.cpu_cores(), measure.WALL_CLOCK_FACTOR
    job = {
        "notebook": str(scratch / name),
        "workdir": str(scratch),
        "executed": str(scratch / GRADER_DIR / "executed.ipynb"),
        "cell_timeout_s": limits.cell_timeout_s,
        "notebook_timeout_s": limits.notebook_timeout_s,
        "cores": cores,
        "wall_factor": factor,
        "max_output_bytes": limits.max_output_mb * MB,
        "probe_timeout_s": probe_timeout,
        "probe_cells": probing.probe_cells(probes, str(scratch / probing.PROBE_DIR), probe_timeout),
    }
    budget = limits.notebook_timeout_s + len(probes) * probe_timeout + GRACE_S
    data_dir = data_dir.resolve() if data_dir is not None else None
    outcome = watch.run_driver(
        job,
        scratch=scratch,
        limits=limits,
        hard_timeout_s=factor * budget,
        cpu_limit_s=cores * budget,
        data_dir=data_dir,
        space=space,
    )
    judged.run_log.write_text(
        f"isolation={outcome.isolation} uid={outcome.uid} exit={outcome.returncode} "
        f"killed={outcome.killed} cpu_s={outcome.cpu_s:.1f} (on {cores} cores) "
        f"peak_memory_mb={outcome.peak_memory_mb:.0f} "
        f"({_counted_by(outcome.memory_counted_by)}) peak_processes={outcome.peak_processes} "
        f"disk_limit={outcome.disk_limit or 'none'}\n" + outcome.log
    )
    report = outcome.report
    nb, truncated = _export_notebook(scratch, judged, limits)
    cell_errors = _cell_errors(outcome.cells, nb, scratch)
    status, message = _verdict(outcome, report, cell_errors, nb, limits, probes, scratch)
    return RunResult(
        status=status,
        message=message,
        isolation=outcome.isolation,
        duration_s=outcome.duration_s,
        cell_errors=cell_errors,
        probes=_export_probes(scratch, judged, probes, limits),
        output_truncated=truncated or bool(report.get("output_truncated")) or outcome.log_truncated,
        cpu_s=round(outcome.cpu_s, 1),
    )


def _counted_by(how: str) -> str:
    if how.startswith("cgroup"):
        return f"the kernel's {how}, page cache included"
    return f"{how} of the process tree"


def _clear(folder: Path, names: Sequence[str]) -> None:
    """Remove ``names`` from ``folder``: old outputs, or fakes a student shipped in scratch."""
    for name in names:
        path = folder / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def _verdict(
    outcome: watch.SandboxOutcome,
    report: dict,
    cell_errors: list[dict],
    nb: Any,
    limits: Limits,
    probes: Sequence[Probe],
    scratch: Path,
) -> tuple[str, str]:
    """The status and the student-facing sentence, most serious first."""
    stopped = _stopped_in(outcome.cells)
    where = f" in cell {_cell(nb, stopped)}" if stopped is not None else ""
    if outcome.killed in ("timeout", "cpu") or report.get("deadline_reached"):
        clock = {"cpu": CPU, "timeout": WALL}.get(outcome.killed, report.get("deadline_reached"))
        return "timeout", _timed_out(
            "The notebook", "time limit", limits.notebook_timeout_s, clock, outcome.cpu_s, where
        )
    if outcome.killed == "memory":
        return "memory", (
            f"Memory limit of {limits.memory_mb} MB exceeded{where}; the run was killed."
        )
    if outcome.killed == "disk":
        return "disk", (
            f"Disk limit: the notebook wrote more than {limits.max_scratch_mb} MB (or too many "
            f"files) to its folder and /tmp{where}; the run was killed. This is the disk limit, "
            f"not the memory limit ({limits.memory_mb} MB)."
        )
    if outcome.killed == "processes":
        return "crashed", (
            f"The notebook started more than {limits.max_processes} processes "
            f"(limit){where}; the run was killed."
        )
    died = report.get("kernel_died_cell")
    if isinstance(died, int):
        return "crashed", (
            f"The kernel died while running cell {_cell(nb, died)} (os._exit, a crash "
            "or a killed process); the cells after it did not run."
        )
    if not report:
        return "crashed", (
            f"The run ended unexpectedly{where} (exit code {outcome.returncode}) before "
            "the grader's report was written."
        )
    if report.get("error"):
        error = student_text(report["error"], scratch)
        return "crashed", _sentence(f"The notebook could not be run: {error}")
    timed_out = report.get("timed_out_cells") or []
    if timed_out:
        rest = (
            f"{len(timed_out) - 1} more cell(s) also hit it"
            if len(timed_out) > 1
            else "the other cells ran"
        )
        first = int(timed_out[0])
        clock = (report.get("timeouts") or {}).get(str(first))
        cell = f"Cell {_cell(nb, first)}"
        stop = _timed_out(cell, "cell time limit", limits.cell_timeout_s, clock, None, "")
        return "timeout", f"{stop[:-1]}; {rest}."
    if cell_errors:
        first = cell_errors[0]
        raised = error_text(first["ename"], first["evalue"]) if first["ename"] else HIDDEN_ERROR
        hidden = " (its output does not show the error)" if first.get("hidden") else ""
        more = len(cell_errors) - 1
        after = f"; {more} more cell{'s' if more > 1 else ''} failed after it" if more else ""
        cell = _cell(nb, first["cell"], first["execution_count"])
        return "cell_errors", _sentence(f"Cell {cell} raised {raised}{hidden}{after}")
    in_probe = report.get("kernel_died_in_probe")
    if isinstance(in_probe, int) and 0 <= in_probe < len(probes):
        return "crashed", (
            f"The kernel died when the grader called {probes[in_probe].function}() after "
            "the notebook ran (os._exit, a crash or a killed process); the calls after it "
            "did not happen."
        )
    ran = sum(1 for entry in outcome.cells if entry.get("status") != "started")
    return "ok", f"All {ran} cells ran without errors."


def _timed_out(
    what: str, limit: str, limit_s: int, clock: str | None, cpu_s: float | None, where: str
) -> str:
    """The sentence of a run stopped at a time limit, naming the clock that stopped it."""
    cores, factor = measure.cpu_cores(), measure.WALL_CLOCK_FACTOR
    if clock == CPU:
        return (
            f"{what} was stopped after {limit_s * cores} s of CPU time (the {limit}: "
            f"{limit_s} s on each of {cores} cores){where}."
        )
    used = f"; it used {cpu_s:.0f} s of CPU, so it was waiting, not computing" if cpu_s else ""
    return (
        f"{what} was stopped after {limit_s * factor} s of wall-clock time (the backstop, "
        f"{factor} x the {limit} of {limit_s} s of CPU time{used}){where}."
    )


def _stopped_in(cells: list[dict]) -> int | None:
    """The cell a run was stopped in: started and never finished, interrupted at the limit,
    or whose kernel died (killed for memory before the grader's own kill reached the driver)."""
    last = cells[-1] if cells else {}
    if last.get("status") == "started" or last.get("ename") in ("TimeoutError", "DeadKernelError"):
        return last.get("cell") if isinstance(last.get("cell"), int) else None
    return None


def _cell(nb: Any, index: int, count: int | None = None) -> str:
    """``#3 (id "train", In [2])``: the cell's place, its nbgrader grade_id and its prompt."""
    cell = nb.cells[index] if nb is not None and 0 <= index < len(nb.cells) else {}
    grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    details = [f'id "{student_text(grade_id, limit=60)}"'] if isinstance(grade_id, str) else []
    if count:
        details.append(f"In [{count}]")
    return f"#{index + 1}" + (f" ({', '.join(details)})" if details else "")


def _sentence(text: str) -> str:
    """``text`` ending in exactly one full stop."""
    return text.rstrip(". ") + "."


# ------------------------------------------------------------------ reading untrusted files


def _open_inside(root: Path, rel: str) -> int | None:
    """A read-only fd of the regular file ``root/rel``, following no symlink; else None."""
    parts = PurePosixPath(rel).parts
    if not parts or PurePosixPath(rel).is_absolute() or any(p in ("..", ".") for p in parts):
        return None
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        for part in parts[:-1]:
            parent, fd = fd, os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(parent)
        file_fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
    except OSError:
        return None
    finally:
        os.close(fd)
    if not stat.S_ISREG(os.fstat(file_fd).st_mode):
        os.close(file_fd)
        return None
    return file_fd


def _file_size(root: Path, rel: str) -> int | None:
    fd = _open_inside(root, rel)
    if fd is None:
        return None
    size = os.fstat(fd).st_size
    os.close(fd)
    return size


def _copy_inside(root: Path, rel: str, dest: Path, max_bytes: int) -> int | None:
    """Copy at most ``max_bytes`` of the regular file ``root/rel`` to ``dest``; its size."""
    fd = _open_inside(root, rel)
    if fd is None:
        return None
    with os.fdopen(fd, "rb") as source:
        if os.fstat(source.fileno()).st_size > max_bytes:
            return None
        data_left = max_bytes + 1
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(dest, "wb") as target:
            while data_left > 0 and (block := source.read(min(MB, data_left))):
                target.write(block)
                data_left -= len(block)
    if data_left <= 0:  # grew while we read it
        dest.unlink()
        return None
    return dest.stat().st_size


def _read_json(root: Path, rel: str, max_bytes: int = MB) -> Any:
    fd = _open_inside(root, rel)
    if fd is None:
        return None
    with os.fdopen(fd, "rb") as handle:
        raw = handle.read(max_bytes + 1)
    if len(raw) > max_bytes:
        return None
    try:
        return load_json(raw, rel)
    except JSONError:
        return None


# --------------------------------------------------------------------------- exports


def _export_notebook(scratch: Path, judged: Judged, limits: Limits) -> tuple[Any, bool]:
    """Parse, cap and write the executed notebook; (notebook or None, truncated)."""
    cap = (limits.max_output_mb + limits.max_notebook_mb) * MB
    fd = _open_inside(scratch, f"{GRADER_DIR}/executed.ipynb")
    if fd is None:
        return None, False
    with os.fdopen(fd, "rb") as handle:
        raw = handle.read(cap + 1)
    if len(raw) > cap:
        return None, True
    try:
        nb = nbformat.reads(json.dumps(load_json(raw, "executed.ipynb")), as_version=4)
    except Exception as err:  # any malformed notebook is just "no notebook"
        log.warning("executed notebook unreadable: %s", err)
        return None, False
    truncated = _cap_outputs(nb, limits.max_output_mb * MB)
    nbformat.write(nb, str(judged.executed))
    return nb, truncated


def _cap_outputs(nb: Any, budget: int) -> bool:
    """Drop outputs beyond ``budget`` bytes in total (errors are kept, shortened)."""
    used, truncated = 0, False
    note = TRUNCATED_NOTE.format(mb=budget // MB)
    for cell in nb.cells:
        kept, noted = [], False
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                output["evalue"] = str(output.get("evalue", ""))[:2000]
                output["traceback"] = [str(x)[:2000] for x in output.get("traceback", [])[-30:]]
                kept.append(output)
                continue
            size = len(json.dumps(output))
            if used + size <= budget:
                used += size
                kept.append(output)
            elif not noted:
                truncated = noted = True
                kept.append(nbformat.v4.new_output("stream", name="stdout", text=note))
        if "outputs" in cell:
            cell.outputs = kept
    return truncated


def _cell_errors(cells: list[dict], nb: Any, scratch: Path) -> list[dict]:
    """The cells whose ``execute_reply`` said error, as the driver received it.

    The notebook's error outputs are not trusted (student code can hide or fake them);
    ``hidden`` marks a failed cell whose output in the executed notebook shows no error.
    Texts are made fit for a student (:func:`autograder.core.text.student_text`).
    """
    errors = []
    for entry in cells:
        if entry.get("status") != "error" or not isinstance(entry.get("cell"), int):
            continue
        index, count = entry["cell"], entry.get("execution_count")
        error = {
            "cell": index,
            "execution_count": count if isinstance(count, int) else None,
            "ename": student_text(entry.get("ename") or "", limit=100),
            "evalue": student_text(entry.get("evalue") or "", scratch),
        }
        if not _shows_error(nb, index):
            error["hidden"] = True
        errors.append(error)
    return errors


def _shows_error(nb: Any, index: int) -> bool:
    """Whether cell ``index`` of the executed notebook has an error output."""
    if nb is None or not 0 <= index < len(nb.cells):
        return False
    return any(o.get("output_type") == "error" for o in nb.cells[index].get("outputs", []))


def _export_probes(
    scratch: Path, judged: Judged, probes: Sequence[Probe], limits: Limits
) -> dict[str, dict]:
    """Copy each probe's file out and write ``probes/index.json``.

    An entry is ``{"ok": True, "file"}``, ``{"ok": False, "ename", "evalue"}`` (the call
    raised), ``{"ok": False, "problem"}`` (its result was lost) or ``{"ok": False}`` (the
    probe was not called: the run's message says why).
    """
    if not probes:
        return {}
    index = _read_json(scratch, f"{probing.PROBE_DIR}/{probing.INDEX_FILE}")
    index = index if isinstance(index, dict) else {}
    folder = judged.probes
    folder.mkdir(exist_ok=True)
    results, budget = {}, limits.max_artifacts_mb * MB
    for probe in probes:
        entry = index.get(probe.name)
        filename = probing.probe_file(probe)
        if not isinstance(entry, dict):
            results[probe.name] = {"ok": False, "file": None}
        elif entry.get("ok") is not True:
            results[probe.name] = {
                "ok": False,
                "file": None,
                "ename": student_text(entry.get("ename") or "Exception", limit=100),
                "evalue": student_text(entry.get("evalue") or "", scratch),
            }
        else:
            size = _copy_inside(
                scratch, f"{probing.PROBE_DIR}/{filename}", folder / filename, budget
            )
            if size is None:
                results[probe.name] = {"ok": False, "file": None, "problem": UNCOLLECTED}
            else:
                budget -= size
                results[probe.name] = {"ok": True, "file": filename}
    judged.probe_index.write_text(json.dumps(results, indent=2))
    return results


def _export_artifacts(
    scratch: Path, judged: Judged, artifacts: Mapping[str, str], limits: Limits
) -> list[str]:
    """Copy the declared artifacts (regular files only) within the size cap; notes on refusals."""
    notes, budget = [], limits.max_artifacts_mb * MB
    for name, rel in artifacts.items():
        size = _file_size(scratch, rel)
        if size is None:
            continue
        if size > budget:
            notes.append(
                f"Artifact '{name}' ({rel}, {size / MB:.0f} MB) was not collected: the "
                f"artifacts may take {limits.max_artifacts_mb} MB in all."
            )
            continue
        copied = _copy_inside(scratch, rel, judged.artifact(rel), budget)
        if copied is not None:
            budget -= copied
    return notes
