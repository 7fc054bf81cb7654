"""A grader worker: `python -m grading.worker` grades the jobs named on its standard input, one a line (JSON: the
job's folder, and the challenge's settings, which hold its secret and so are never written in the folder), in turn:
JOB_DIR/submission.ipynb as JOB_DIR/job.json says, writing JOB_DIR/outcome.json and JOB_DIR/stderr.txt, then names
the folder on its standard output. The grader keeps one running per Dask worker thread, so the checks load
TensorFlow once rather than once per submission (when a judgement first needs it: a job whose tasks were not attempted,
or whose file is not a notebook, never does), and starts a new one after a failure, a time-out or MAX_JOBS jobs.

The trusted process's memory, bounded: it never receives the kernel's messages (its client process does, in the job's
limits: grading/client.py) and reads only bounded data of the submission's: the notebook (admit.MAX_BYTES), the
client's answers (client.MAX_ANSWER_BYTES each), the exports' arrays (export.MAX_TOTAL_BYTES held at once) and the
models judged (under 1 GiB: export.MAX_MODEL_WEIGHTS). MEMORY_BOUND is that sum in resident bytes; its address space
is capped besides (run.WORKER_MEMORY). Measured peaks are in docs/grading-at-scale.md."""

import json
import os
import re
import sys
import traceback
from pathlib import Path

from checks.challenge import TASK
from grading import admit, cgroups, execute, export, sandbox
from grading.report import NOT_GRADED

KERNEL_LOG_LINES = 20  # of the pre-flight kernel's output, said when it failed
MAX_JOBS = 20  # then a fresh process: whatever a judged model left in this one's memory goes with it
BASE_BYTES = 2**30  # Python, TensorFlow and the checks, loaded (measured: 0.75 GiB after a first judgement)
NOTEBOOK_BYTES = 10 * admit.MAX_BYTES  # a notebook of admit.MAX_BYTES, parsed
MODEL_BYTES = 2**30  # one judged model's weights and outputs (export.MAX_MODEL_WEIGHTS, batched)
MEMORY_BOUND = BASE_BYTES + NOTEBOOK_BYTES + export.MAX_TOTAL_BYTES + MODEL_BYTES  # resident, at its peak


def peak(pid="self"):
    """A process's peak resident memory so far, in bytes (Linux's VmHWM); 0 where it cannot be read."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return 0
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) * 1024 if found else 0


def work(folder, challenge=None):
    """Grade the job in folder (with the challenge's settings, or None); write outcome.json there."""
    from run_notebook import write_atomic

    folder = Path(folder)
    job = json.loads((folder / "job.json").read_text(encoding="utf-8"))
    execute.note_progress(folder, "parse")  # dying while it reads the notebook is the submission's
    try:  # the one parse of the submission, under this process's memory limit and the grader's time limit for it
        nb = admit.parse((folder / "submission.ipynb").read_bytes())
    except admit.NotGradable as err:
        outcome = {"results": {task: [NOT_GRADED, ""] for task in job["tasks"]}, "error": "", "note": str(err)}
        write_atomic(folder / "outcome.json", json.dumps(outcome).encode("utf-8"))
        return
    hierarchy = job["hierarchy"] and cgroups.Hierarchy(job["hierarchy"][0], tuple(job["hierarchy"][1]))
    box = sandbox.Sandbox(
        tuple(tuple(ids) for ids in job["users"]), job["bwrap"], tuple(job["missing"]), hierarchy, job["space"]
    )
    limits = sandbox.Limits(*job["limits"])
    log = folder / "kernel.log" if job.get("kernel_log") else None  # the trusted pre-flight job's only
    execute.note_progress(folder, "start")  # starting the kernel is the grader's: dying here is its own failure
    try:
        with execute.Job(folder, job["lab_dir"], box, job["slot"], limits, job["timeout"], job["group"], log) as run:
            results, error = execute.run(nb, job["tasks"], run, challenge)
        outcome = {"results": results, "error": error, "challenge": results.pop(TASK, None)}
    except execute.GraderFailure as err:  # the grader's, not the student's: the job is tried again
        outcome = {"failure": str(err) + tail(log)}
    write_atomic(folder / "outcome.json", json.dumps(outcome).encode("utf-8"))


def tail(log, lines=KERNEL_LOG_LINES):
    """The last lines of the kernel's own output, as the words that follow a failure ("" when there is none)."""
    said = log.read_text(errors="replace").strip().splitlines()[-lines:] if log and log.is_file() else []
    return "; the kernel said:\n" + "\n".join(said) if said else ""


def serve(jobs=sys.stdin):
    """Grade each job named in jobs, saying each folder's name on the original stdout when it is done."""
    done = os.fdopen(os.dup(1), "w", encoding="utf-8")
    for line in jobs:
        job = json.loads(line)
        folder = Path(job["folder"])
        with open(folder / "stderr.txt", "w", encoding="utf-8") as log:
            sys.stdout.flush(), sys.stderr.flush()
            for fd in (1, 2):  # whatever this job's libraries print, natively too, goes to its own folder
                os.dup2(log.fileno(), fd)
            try:
                work(folder, job["challenge"])
            except BaseException:
                traceback.print_exc()
                raise SystemExit(1) from None
            finally:
                sys.stdout.flush(), sys.stderr.flush()
        if "keras" in sys.modules:  # loaded by the first judgement that needed it (checks.LOADED_ON_USE), then kept
            sys.modules["keras"].backend.clear_session()
        print(folder, file=done, flush=True)


if __name__ == "__main__":
    serve()
