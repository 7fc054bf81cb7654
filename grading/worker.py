"""A grader worker: `python -m grading.worker JOB_DIR` grades JOB_DIR/submission.ipynb as JOB_DIR/job.json
says and writes JOB_DIR/outcome.json. One process per submission, so a crash costs only that one."""

import json
import sys
from pathlib import Path

from grading import execute, sandbox


def work(folder):
    """Grade the job in folder; write outcome.json there."""
    from run_notebook import write_atomic

    folder = Path(folder)
    job = json.loads((folder / "job.json").read_text(encoding="utf-8"))
    box = sandbox.Sandbox(tuple(tuple(ids) for ids in job["users"]), job["bwrap"], tuple(job["missing"]))
    run = execute.Job(folder, job["lab_dir"], box, job["slot"], sandbox.Limits(*job["limits"]), job["timeout"])
    results, error = execute.run(folder / "submission.ipynb", job["tasks"], run)
    write_atomic(folder / "outcome.json", json.dumps({"results": results, "error": error}).encode("utf-8"))


if __name__ == "__main__":
    work(sys.argv[1])
