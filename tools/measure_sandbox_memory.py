"""Measure how the sandbox counts the memory of a process tree that shares its pages.

Runs a notebook that allocates ``--shared-mb`` (touched) and then forks
``--children`` children that sleep, under the sandbox, and samples at every watch
tick: the RSS summed over the tree (what the grader counted before), the PSS
summed over the tree (its fallback without a cgroup) and the run's cgroup
(``memory.usage_in_bytes`` / ``memory.current``, what the kernel charges). Prints
the peak of each.

    .venv/bin/python tools/measure_sandbox_memory.py [--children 200] [--shared-mb 300]
"""

from __future__ import annotations

import argparse
import tempfile
import textwrap
from pathlib import Path

import nbformat

from autograder.core.spec import Limits
from autograder.grading.run import run_submission
from autograder.grading.sandbox import measure, watch

MB = 1 << 20

NOTEBOOK = """\
import os, time
import numpy as np
shared = np.ones({shared_mb} * 2**20 // 8)
children = []
for _ in range({children}):
    pid = os.fork()
    if pid == 0:
        time.sleep(10)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=200)
    parser.add_argument("--shared-mb", type=int, default=300)
    args = parser.parse_args()
    peaks = {"rss": 0, "pss": 0, "cgroup": 0, "processes": 0}
    check = watch._check_limits

    def sampled(pid, started, limits, hard_timeout_s, outcome, **kwargs):
        procs = list(measure.process_tree(pid))
        peaks["processes"] = max(peaks["processes"], len(procs))
        peaks["rss"] = max(peaks["rss"], sum(measure.rss(p) for p in procs))
        peaks["pss"] = max(peaks["pss"], sum(measure.pss(p) for p in procs))
        if kwargs.get("cgroup") is not None:
            peaks["cgroup"] = max(peaks["cgroup"], kwargs["cgroup"].memory_used())
        return check(pid, started, limits, hard_timeout_s, outcome, **kwargs)

    watch._check_limits = sampled
    limits = Limits(
        notebook_timeout_s=300,
        cell_timeout_s=300,
        memory_mb=4096,
        max_processes=args.children + 50,
    )
    with tempfile.TemporaryDirectory(prefix="rnn-measure-") as tmp:
        scratch = Path(tmp, "scratch")
        scratch.mkdir()
        nb = nbformat.v4.new_notebook()
        source = NOTEBOOK.format(shared_mb=args.shared_mb, children=args.children)
        nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(source))]
        nbformat.write(nb, str(scratch / "hw.ipynb"))
        result = run_submission(Path("hw.ipynb"), scratch, Path(tmp, "out"), limits=limits)
    print(f"verdict: {result.status}: {result.message}")
    print(f"peak processes seen: {peaks['processes']}")
    for name in ("rss", "pss", "cgroup"):
        print(f"peak {name:>6} of the tree: {peaks[name] / MB:10.0f} MB")


if __name__ == "__main__":
    main()
