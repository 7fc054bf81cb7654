"""Grading costs, side by side: `.venv/bin/python benchmarks/bench_grading.py [--repeats N]` (as root).

1. Overhead: each fixture notebook executed plainly (tools/run_notebook's client, no sandbox, no
   exports) against graded (sandboxed kernel + exports + judging outside the kernel); median seconds
   and their ratio.
2. Throughput: the same fixtures graded by tools/grade.py's Dask scheduling with 1 and 2 local worker
   processes; submissions per hour and their ratio.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tools"), str(ROOT / "tests" / "fixtures")]


def fixtures(folder):
    """Write the benchmark's submissions into folder: the cheap honest one, a blank one, one that raises; return paths."""
    import nbformat

    import make_fixtures

    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(make_fixtures.notebook(make_fixtures.ANSWERS), folder / "honest.ipynb")
    nbformat.write(nbformat.read(ROOT / "index.ipynb", as_version=4), folder / "blank.ipynb")
    nbformat.write(
        nbformat.read(ROOT / "tests" / "fixtures" / "raises_in_task3.ipynb", as_version=4), folder / "raises.ipynb"
    )
    return sorted(folder.glob("*.ipynb"))


def time_plain(path):
    """Seconds to execute the notebook plainly (errors allowed), as a student's kernel would."""
    import nbformat

    from run_notebook import KERNEL_ENV, notebook_client

    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    env = {**os.environ, **KERNEL_ENV, "PYTHONPATH": str(ROOT)}  # the lab's modules, as beside index.ipynb
    notebook_client(nb, path.parent, 600, allow_errors=True).execute(env=env)
    return time.perf_counter() - start


def time_graded(path, tasks):
    """Seconds to grade the notebook as the grader does (sandbox, exports, judging)."""
    from grading import run, sandbox

    with sandbox.leased_slot(0) as slot:  # a sandbox user no other grader on this machine uses meanwhile
        box = run.local_sandbox(slot + 1)
        settings = {"sandbox": box, "timeout": 600, "lab_dir": ROOT, "limits": sandbox.Limits()}
        start = time.perf_counter()
        run.grade_one(path.stem, path.read_bytes(), tasks, settings, slot)
        return time.perf_counter() - start


def throughput(folder, jobs):
    """Submissions per hour when grade.py grades folder with `jobs` local Dask workers."""
    from grading import run

    out = Path(tempfile.mkdtemp())
    start = time.perf_counter()
    rows, *_ = run.grade(folder, jobs=jobs, timeout=600, out=out, force=True, quiet=True, log=open("/dev/null", "w"))
    return len(rows) / (time.perf_counter() - start) * 3600


def main():
    """Run both measurements and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import checks

    folder = Path(tempfile.mkdtemp()) / "subs"
    paths = fixtures(folder)
    print("| notebook | plain run (s) | graded (s) | overhead |\n| --- | ---: | ---: | ---: |")
    for path in paths:
        plain = statistics.median(time_plain(path) for _ in range(args.repeats))
        graded = statistics.median(time_graded(path, checks.TASKS) for _ in range(args.repeats))
        print(f"| {path.stem} | {plain:.1f} | {graded:.1f} | {graded / plain:.2f}x |", flush=True)
    rates = {jobs: statistics.median(throughput(folder, jobs) for _ in range(args.repeats)) for jobs in (1, 2)}
    print("\n| Dask workers | submissions per hour |\n| ---: | ---: |")
    for jobs, rate in rates.items():
        print(f"| {jobs} | {rate:.0f} |")
    print(f"\n2 workers / 1 worker: {rates[2] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
