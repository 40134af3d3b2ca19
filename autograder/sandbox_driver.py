"""Runs INSIDE the sandbox: execute one notebook with nbclient, then the probe cells.

Usage: ``python sandbox_driver.py JOB.json REPORT_FD``. The job (written by the
trusted grader) names the notebook, its folder, where to write the executed
notebook, the time limits, the output budget and the probe cells. Every cell runs
even after an error; a cell over its time limit is interrupted and the run goes
on; when the kernel dies the run stops. The executed notebook is saved after
every cell, so a run killed from outside still leaves the cells done so far.

The report goes to the pipe ``REPORT_FD``, one JSON line when a code cell starts
(``{"cell": {"cell": i, "status": "started"}}``, so that a run killed from outside
still says where it was) and one when it ends (``{"cell": {...}}``: the status,
ename and evalue of its ``execute_reply`` as this process received it, not the
error outputs that student code can hide or fake), and ``{"report": {...}}`` at
the end. Only this process holds that pipe: it is not inherited by the kernel, and
the driver makes itself non-dumpable first, so the kernel's processes (same user)
can neither open its descriptors through ``/proc`` nor ptrace it. This file imports
nothing from ``autograder``: that package is not visible in the sandbox.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import time
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

TRUNCATED_NOTE = "\n[output truncated by the grader: the notebook's output exceeded {mb} MB]\n"
MAX_ERROR_CHARS = 20_000
MAX_REPLY_CHARS = 2_000
PR_SET_DUMPABLE = 4


class CappedClient(NotebookClient):
    """A notebook client that drops output beyond a byte budget and notes cell timeouts."""

    def __init__(self, nb: Any, *, output_budget: int, **kwargs: Any) -> None:
        super().__init__(nb, **kwargs)
        self.output_budget = output_budget
        self.output_used = 0
        self.truncated = False
        self.timed_out = False
        self.last_reply: dict | None = None
        self._noted_cells: set[int] = set()

    def output(self, outs: list, msg: dict, display_id: str | None, cell_index: int) -> Any:
        content = msg.get("content", {})
        if msg["msg_type"] == "error":
            content["evalue"] = str(content.get("evalue", ""))[:MAX_ERROR_CHARS]
            lines = content.get("traceback", [])[-50:]
            content["traceback"] = [line[:MAX_ERROR_CHARS] for line in lines]
            return super().output(outs, msg, display_id, cell_index)
        size = len(json.dumps(content))
        if self.output_used + size > self.output_budget:
            self.truncated = True
            if cell_index not in self._noted_cells:
                self._noted_cells.add(cell_index)
                mb = self.output_budget // (1 << 20)
                outs.append(
                    nbformat.v4.new_output(
                        "stream", name="stdout", text=TRUNCATED_NOTE.format(mb=mb)
                    )
                )
            return None
        self.output_used += size
        return super().output(outs, msg, display_id, cell_index)

    async def _async_handle_timeout(self, timeout: int, cell: Any = None) -> Any:
        self.timed_out = True
        return await super()._async_handle_timeout(timeout, cell)

    async def _check_raise_for_error(self, cell: Any, cell_index: int, exec_reply: Any) -> None:
        """Keep the cell's ``execute_reply`` content: the kernel's own word on how it ended."""
        content = exec_reply.get("content") if isinstance(exec_reply, dict) else None
        self.last_reply = content if isinstance(content, dict) else {}
        return await super()._check_raise_for_error(cell, cell_index, exec_reply)


class Reporter:
    """Writes the report, one JSON line at a time, to the pipe only this process holds."""

    def __init__(self, fd: int) -> None:
        os.set_inheritable(fd, False)
        self._stream = os.fdopen(fd, "w", encoding="utf-8")

    def emit(self, kind: str, value: dict) -> None:
        self._stream.write(json.dumps({kind: value}) + "\n")
        self._stream.flush()


def reply_entry(index: int, reply: dict, cell: Any) -> dict:
    """What the driver reports of one executed cell, from its ``execute_reply``."""
    entry = {
        "cell": index,
        "status": "error" if reply.get("status") != "ok" else "ok",
        "execution_count": reply.get("execution_count", cell.get("execution_count")),
    }
    if entry["status"] == "error":
        entry["ename"] = str(reply.get("ename") or "")[:MAX_REPLY_CHARS]
        entry["evalue"] = str(reply.get("evalue") or "")[:MAX_REPLY_CHARS]
    return entry


def not_dumpable() -> None:
    """Keep the kernel's processes (the same user) out of this one: no ptrace, no /proc fds."""
    try:
        failed = ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0
        why = os.strerror(ctypes.get_errno())
    except (OSError, AttributeError) as err:
        failed, why = True, str(err)
    if failed:
        print(f"sandbox driver: could not make itself non-dumpable: {why}", file=sys.stderr)


def error_output(ename: str, evalue: str) -> Any:
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[])


def save(nb: Any, path: str) -> None:
    """Write the notebook atomically."""
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8") as handle:
        nbformat.write(nb, handle)
    os.replace(partial, path)


def mark_timeout(cell: Any, seconds: int, what: str) -> None:
    """Replace the KeyboardInterrupt of an interrupted cell by a clear timeout error."""
    cell.outputs = [o for o in cell.outputs if o.get("ename") != "KeyboardInterrupt"]
    cell.outputs.append(error_output("TimeoutError", f"stopped after {seconds} s ({what})"))


def run_cells(
    client: CappedClient, nb: Any, job: dict, report: dict, deadline: float, out: Reporter
) -> None:
    """Execute every code cell in order, reporting each reply, timeouts and a dead kernel."""
    for index, cell in enumerate(nb.cells):
        remaining = deadline - time.monotonic()
        if remaining <= 1:
            report["deadline_reached"] = True
            return
        limited_by_deadline = remaining < job["cell_timeout_s"]
        client.timeout = int(min(job["cell_timeout_s"], remaining))
        client.timed_out = False
        client.last_reply = None
        if cell.cell_type == "code":
            out.emit("cell", {"cell": index, "status": "started"})
        try:
            client.execute_cell(cell, index)
        except DeadKernelError:
            died = "the kernel died while running this cell (os._exit, a crash, or killed)"
            cell.outputs.append(error_output("DeadKernelError", died))
            reply = {"status": "error", "ename": "DeadKernelError", "evalue": died}
            out.emit("cell", reply_entry(index, reply, cell))
            report["kernel_died_cell"] = index
            return
        reply = client.last_reply
        if client.timed_out:
            seconds, what = client.timeout, "cell time limit"
            if limited_by_deadline:
                seconds, what = job["notebook_timeout_s"], "notebook time limit"
            mark_timeout(cell, seconds, what)
            evalue = f"stopped after {seconds} s ({what})"
            reply = {**(reply or {}), "status": "error", "ename": "TimeoutError", "evalue": evalue}
        if reply is not None:  # None: a cell with nothing to run
            out.emit("cell", reply_entry(index, reply, cell))
        if client.timed_out:
            if limited_by_deadline:
                report["deadline_reached"] = True
                return
            report["timed_out_cells"].append(index)
        report["cells_run"] = index + 1
        save(nb, job["executed"])


def run_probes(client: CappedClient, nb: Any, job: dict, report: dict) -> None:
    """Run the probe cells in the same kernel (their results go to the probe folder)."""
    client.timeout = job["probe_timeout_s"]
    for source in job["probe_cells"]:
        nb.cells.append(nbformat.v4.new_code_cell(source))
        try:
            client.execute_cell(nb.cells[-1], len(nb.cells) - 1, store_history=False)
        except DeadKernelError:
            report["kernel_died_in_probe"] = report["probes_run"]
            return
        report["probes_run"] += 1


def execute(job: dict, report: dict, out: Reporter) -> None:
    """Run the notebook's cells, save it, then run the probes if the kernel survived."""
    deadline = time.monotonic() + job["notebook_timeout_s"]
    nb = nbformat.read(job["notebook"], as_version=4)
    client = CappedClient(
        nb,
        output_budget=job["max_output_bytes"],
        timeout=job["cell_timeout_s"],
        allow_errors=True,
        interrupt_on_timeout=True,
        kernel_name="python3",
        error_on_timeout={"ename": "TimeoutError", "evalue": "cell time limit"},
        shutdown_kernel="immediate",
        startup_timeout=120,
        resources={"metadata": {"path": job["workdir"]}},
    )
    try:
        with client.setup_kernel():
            run_cells(client, nb, job, report, deadline, out)
            save(nb, job["executed"])
            if report["kernel_died_cell"] is None and not report["deadline_reached"]:
                run_probes(client, nb, job, report)
    finally:
        report["output_truncated"] = client.truncated


def main(job_path: str, report_fd: str) -> int:
    not_dumpable()
    out = Reporter(int(report_fd))
    with open(job_path, encoding="utf-8") as handle:
        job = json.load(handle)
    report: dict[str, Any] = {
        "cells_run": 0,
        "timed_out_cells": [],
        "kernel_died_cell": None,
        "deadline_reached": False,
        "output_truncated": False,
        "probes_run": 0,
        "kernel_died_in_probe": None,
        "error": None,
    }
    try:
        execute(job, report, out)
    except Exception as err:  # the report says what went wrong; the grader decides
        report["error"] = f"{type(err).__name__}: {err}"[:MAX_ERROR_CHARS]
    out.emit("report", report)
    return 0 if report["error"] is None else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
