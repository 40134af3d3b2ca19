"""Launch the sandbox driver on untrusted code, with limits, and watch its process tree.

Isolation is bubblewrap where it works: every namespace unshared (no network,
own PIDs), uid/gid 65534, capabilities dropped, a read-only view of the system
(``/usr``, a few files of ``/etc``, the Python prefix, the virtual environment
and the student package ``assignments/``, never the grader's packages: where
those are installed inside the virtual environment an empty tmpfs hides them)
on a read-only root, the scratch folder as the only writable place (the
sandbox's ``/tmp`` lies in it too) and, read-only, the data mirror and the
grader's job folder (``/run/rnn-grader``). Where bubblewrap is missing or
fails its self-test the driver runs as a plain subprocess with rlimits, and a
loud warning says so (``RNN_COURSE_SANDBOX=rlimit`` forces that, ``bubblewrap``
forbids the fallback).

A grader started as root never runs student code as root: the sandbox starts
as the unprivileged host user :func:`sandbox_user` (``rnn-sandbox``, created
when missing), which owns the scratch folder; the folders it reads, wherever
they lie (``/root/.pyenv``, a 0700 temporary folder), are bound for it onto
staging points by the trusted wrapper before it drops root.

Limits, enforced whichever way the sandbox runs:

- memory and processes: where the grader can create a child cgroup (v2, or
  v1's ``memory`` and ``pids``), the kernel limits and counts the whole tree
  (shared pages once, files in the sandbox's tmpfs mounts included) and the
  verdict comes from its OOM and task-limit events; elsewhere the parent sums
  the proportional set size (PSS) of the tree. The parent also counts the
  processes every ``WATCH_INTERVAL_S`` and kills the tree over the limit;
- disk: as root, :func:`scratch_space` runs the notebook in a copy of the
  scratch folder on a size-limited file system (a loop-mounted ext4 image in
  ``/run/rnn-scratch``, freed when unmounted); without root the parent measures
  the scratch folder instead (a soft limit, and says so);
- time: the CPU time of the whole tree (the cgroup's ``cpu.stat``, or v1's
  ``cpuacct.usage``; elsewhere the CPU times of the tree's processes, each with the
  exited children it waited for), so that a busy machine slows a notebook without
  failing it, and a wall-clock backstop for a run that waits without computing;
- RLIMIT_FSIZE caps each file, RLIMIT_CORE is 0.

The driver's report (each cell's ``execute_reply`` status, timeouts, a dead
kernel) comes back on a pipe that only the driver holds (it makes itself
non-dumpable, so the kernel's processes cannot reach its descriptors), never
through a file that student code could rewrite. stdout/stderr of the sandbox
are kept only as a capped log.

The package, by part: :mod:`.bubblewrap` (isolation, the sandbox user, the fallback),
:mod:`.watch` (run the driver and watch it), :mod:`.measure` (how CPU time and memory are
counted), :mod:`.cgroups`, :mod:`.disk` (the scratch folder's size limit), and
:mod:`.driver`, the program that runs inside the sandbox (by path: it imports nothing
of the grader).
"""
