"""Runs INSIDE the sandbox: execute one notebook with nbclient, then the probe cells.

Usage: ``python sandbox_driver.py JOB.json REPORT_FD``. The job (written by the
trusted grader) names the notebook, its folder, where to write the executed
notebook, the time limits, the output budget and the probe cells. Every cell runs
even after an error; a cell over its time limit is interrupted and the run goes
on; when the kernel dies the run stops. The executed notebook is saved after
every cell, so a run killed from outside still leaves the cells done so far.

Time limits count CPU time: a limit of N seconds is N seconds on each of the job's
``cores``, summed over this process and everything it started (:class:`CpuLimit`),
so a busy machine slows a notebook without failing it. A wall-clock backstop of
``wall_factor`` times each limit stops what waits without computing.

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

import contextlib
import ctypes
import json
import os
import signal
import sys
import threading
import time
from typing import Any

import nbformat
import psutil
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

TRUNCATED_NOTE = "\n[output truncated by the grader: the notebook's output exceeded {mb} MB]\n"
MAX_ERROR_CHARS = 20_000
MAX_REPLY_CHARS = 2_000
PR_SET_DUMPABLE = 4
WATCH_INTERVAL_S = 0.25
INTERRUPT_GRACE_S = 5  # a kernel that ignores the interrupt this long is killed
CPU, WALL = "CPU time", "wall-clock time"


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


class CpuLimit:
    """Interrupts the running cell once this process and its descendants (the kernel and
    whatever it starts) have used the cell's, or the notebook's, CPU time.

    ``fired`` says which (``"cell"`` or ``"notebook"``); a kernel that ignores the
    interrupt for :data:`INTERRUPT_GRACE_S` is killed (``killed``).
    """

    def __init__(self, client: NotebookClient, notebook_cpu_s: float) -> None:
        self._client = client
        self._me = psutil.Process()
        self.notebook_cpu_s = notebook_cpu_s
        self._cell_end: float | None = None
        self.fired: str | None = None
        self.killed = False
        threading.Thread(target=self._watch, daemon=True).start()

    def used(self) -> float:
        """CPU seconds so far, each process with the exited children it waited for."""
        total = 0.0
        for proc in [self._me, *self._me.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system + times.children_user + times.children_system
        return total

    def start(self, cell_cpu_s: float) -> None:
        self.fired, self.killed = None, False
        self._cell_end = self.used() + cell_cpu_s

    def stop(self) -> None:
        self._cell_end = None

    def _watch(self) -> None:
        while True:
            time.sleep(WATCH_INTERVAL_S)
            end = self._cell_end
            if end is None or self.fired:
                continue
            used = self.used()
            if used >= self.notebook_cpu_s:
                self.fired = "notebook"
            elif used >= end:
                self.fired = "cell"
            else:
                continue
            self._signal(signal.SIGINT)
            waited = time.monotonic() + INTERRUPT_GRACE_S
            while self._cell_end is not None and time.monotonic() < waited:
                time.sleep(WATCH_INTERVAL_S)
            if self._cell_end is not None:
                self.killed = True
                self._signal(signal.SIGKILL)

    def _signal(self, signum: int) -> None:
        """Send ``signum`` to the kernel's process group (else to the kernel)."""
        provisioner = getattr(self._client.km, "provisioner", None)
        process = getattr(provisioner, "process", None)
        if process is None:
            return
        with contextlib.suppress(OSError):
            os.killpg(os.getpgid(process.pid), signum)
            return
        with contextlib.suppress(OSError):
            os.kill(process.pid, signum)


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


def mark_timeout(cell: Any, stop: str) -> None:
    """Replace the KeyboardInterrupt of an interrupted cell by a clear timeout error."""
    cell.outputs = [o for o in cell.outputs if o.get("ename") != "KeyboardInterrupt"]
    cell.outputs.append(error_output("TimeoutError", stop))


def stopped(seconds: float, clock: str, what: str) -> str:
    """``stopped after 720 s of CPU time (notebook time limit)``."""
    return f"stopped after {seconds:g} s of {clock} ({what} time limit)"


def run_cells(
    client: CappedClient, nb: Any, job: dict, report: dict, limit: CpuLimit, out: Reporter
) -> None:
    """Execute every code cell in order, reporting each reply, timeouts and a dead kernel.

    A timeout is reported with the clock that stopped it: ``timeouts[str(cell)]`` is
    :data:`CPU` or :data:`WALL`, and ``deadline_reached`` too when it was the notebook's.
    """
    cores, factor = job["cores"], job["wall_factor"]
    deadline = time.monotonic() + factor * job["notebook_timeout_s"]
    for index, cell in enumerate(nb.cells):
        remaining = deadline - time.monotonic()
        if remaining <= 1 or limit.used() >= limit.notebook_cpu_s:
            report["deadline_reached"] = WALL if remaining <= 1 else CPU
            return
        limited_by_deadline = remaining < factor * job["cell_timeout_s"]
        client.timeout = int(min(factor * job["cell_timeout_s"], remaining))
        client.timed_out = False
        client.last_reply = None
        if cell.cell_type == "code":
            out.emit("cell", {"cell": index, "status": "started"})
        limit.start(cores * job["cell_timeout_s"])
        try:
            client.execute_cell(cell, index)
        except DeadKernelError:
            if not limit.killed:
                died = "the kernel died while running this cell (os._exit, a crash, or killed)"
                cell.outputs.append(error_output("DeadKernelError", died))
                reply = {"status": "error", "ename": "DeadKernelError", "evalue": died}
                out.emit("cell", reply_entry(index, reply, cell))
                report["kernel_died_cell"] = index
                return
        finally:
            limit.stop()
        reply = client.last_reply
        if limit.fired or client.timed_out:
            notebook = limit.fired == "notebook" or (not limit.fired and limited_by_deadline)
            what = "notebook" if notebook else "cell"
            clock = CPU if limit.fired else WALL
            budget = job[f"{what}_timeout_s"] * (cores if limit.fired else factor)
            stop = stopped(budget, clock, what)
            mark_timeout(cell, stop)
            reply = {**(reply or {}), "status": "error", "ename": "TimeoutError", "evalue": stop}
            out.emit("cell", reply_entry(index, reply, cell))
            report["timeouts"][str(index)] = clock
            if notebook or limit.killed:  # a kernel that ignored the interrupt is gone
                report["deadline_reached"] = clock
                save(nb, job["executed"])
                return
            report["timed_out_cells"].append(index)
        elif reply is not None:  # None: a cell with nothing to run
            out.emit("cell", reply_entry(index, reply, cell))
        report["cells_run"] = index + 1
        save(nb, job["executed"])


def run_probes(client: CappedClient, nb: Any, job: dict, report: dict, limit: CpuLimit) -> None:
    """Run the probe cells in the same kernel (their results go to the probe folder)."""
    client.timeout = job["wall_factor"] * job["probe_timeout_s"]
    limit.notebook_cpu_s = float("inf")  # each probe has its own limit
    for source in job["probe_cells"]:
        nb.cells.append(nbformat.v4.new_code_cell(source))
        limit.start(job["cores"] * job["probe_timeout_s"])
        try:
            client.execute_cell(nb.cells[-1], len(nb.cells) - 1, store_history=False)
        except DeadKernelError:
            report["kernel_died_in_probe"] = report["probes_run"]
            return
        finally:
            limit.stop()
        report["probes_run"] += 1


def execute(job: dict, report: dict, out: Reporter) -> None:
    """Run the notebook's cells, save it, then run the probes if the kernel survived."""
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
    limit = CpuLimit(client, job["cores"] * job["notebook_timeout_s"])
    try:
        with client.setup_kernel():
            run_cells(client, nb, job, report, limit, out)
            save(nb, job["executed"])
            if report["kernel_died_cell"] is None and not report["deadline_reached"]:
                run_probes(client, nb, job, report, limit)
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
        "timeouts": {},
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
