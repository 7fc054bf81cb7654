"""Grading costs, side by side: `.venv/bin/python benchmarks/bench_grading.py [--repeats N]` (as root).

1. Overhead: each fixture notebook executed plainly (tools/run_notebook's client, no sandbox, no
   exports) against graded (sandboxed kernel + exports + judging outside the kernel); median seconds
   and their ratio.
2. Throughput: the same fixtures graded by tools/grade.py's Dask scheduling with 1 and 2 local worker
   processes; submissions per hour and their ratio.

With `--against CHECKOUT` (another checkout of the lab, e.g. `git worktree add /tmp/before <commit>`), instead:
each fixture run plainly, graded by that checkout's grader and by this one, interleaved, median seconds, each
grader's overhead and their ratio, to see what a change to the grader costs. `--only honest` measures one fixture. With `--limits`: each fixture graded with the per-job limits (control groups,
the job's own space) and without them, interleaved, in this checkout, with warm grader workers: what the limits cost.
With `--hugepages`: each fixture run plainly and graded with numpy's huge pages on (NUMPY_MADVISE_HUGEPAGE=1, numpy's
default) and off (the grader's and the Makefile's setting), interleaved: what they cost on this machine.
"""

import argparse
import os
import statistics
import subprocess
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


def time_plain(path, **settings):
    """Seconds to execute the notebook plainly (errors allowed), as a student's kernel would; settings: environment
    variables for the kernel."""
    import nbformat

    from run_notebook import KERNEL_ENV, notebook_client

    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    env = {**os.environ, **KERNEL_ENV, "PYTHONPATH": str(ROOT), **settings}  # the lab's modules, as beside index.ipynb
    notebook_client(nb, path.parent, 600, allow_errors=True).execute(env=env)
    return time.perf_counter() - start


def time_graded(path, tasks, limits=True):
    """Seconds to grade the notebook as the grader does (sandbox, exports, judging); limits=False: without the
    per-job limits (control groups, the job's own space)."""
    from grading import run, sandbox

    with sandbox.leased_slot(0) as slot:  # a sandbox user no other grader on this machine uses meanwhile
        box = run.local_sandbox(slot + 1)
        settings = {
            "sandbox": box if limits else box._replace(hierarchy=None, space=False),
            "timeout": 600,
            "lab_dir": ROOT,
            "limits": sandbox.Limits(),
        }
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


CHILD = """
import sys, time
from pathlib import Path
lab, path = Path(sys.argv[1]), Path(sys.argv[2])
sys.path[:0] = [str(lab), str(lab / "tools")]
import checks
from grading import run, sandbox
with sandbox.leased_slot(0) as slot:
    settings = {"sandbox": run.local_sandbox(slot + 1), "timeout": 600, "lab_dir": lab, "limits": sandbox.Limits()}
    for _ in range(2):  # the first pays the grader worker's start (its TensorFlow import), as once per class
        start = time.perf_counter()
        run.grade_one(path.stem, path.read_bytes(), checks.TASKS, settings, slot)
    print(time.perf_counter() - start)
"""


def time_graded_in(lab, path, **settings):
    """Seconds the lab checked out at lab takes to grade the notebook, its grader worker already started (a process
    of its own, so that two checkouts' modules never mix); settings: environment variables for that process (its
    kernels get the grader's own NUMPY_MADVISE_HUGEPAGE)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **settings}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(lab), str(path)], cwd=lab, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"grading with the lab at {lab} failed: {done.stderr.strip().splitlines()[-1:]}")
    return float(done.stdout.split()[-1])


def against(baseline, paths, repeats):
    """Print each notebook's plain run time and its grading time with the baseline checkout and with this one,
    interleaved: medians, each grader's overhead (graded / plain) and their ratio."""
    print(
        f"| notebook | plain run (s) | graded at {baseline} (s) | graded here (s) | overhead there | overhead here "
        "| here / there |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    for path in paths:
        times = {"plain": [], "there": [], "here": []}
        for _ in range(repeats):  # interleaved, so that a change in the machine's load hits all alike
            times["plain"].append(time_plain(path))
            times["there"].append(time_graded_in(baseline, path))
            times["here"].append(time_graded_in(ROOT, path))
        plain, there, here = (statistics.median(times[k]) for k in ("plain", "there", "here"))
        print(
            f"| {path.stem} | {plain:.1f} | {there:.1f} | {here:.1f} | {there / plain:.2f}x | {here / plain:.2f}x "
            f"| {here / there:.2f}x |",
            flush=True,
        )


def limits_cost(paths, tasks, repeats):
    """Print each notebook's grading time with the per-job limits and without them, interleaved, and the ratio."""
    print("| notebook | without the limits (s) | with them (s) | with / without |\n| --- | ---: | ---: | ---: |")
    for path in paths:
        times = {"with": [], "without": []}
        for repeat in range(repeats + 1):  # the first round starts each setting's grader worker: not counted
            for name in times:
                seconds = time_graded(path, tasks, limits=name == "with")
                if repeat:
                    times[name].append(seconds)
        without, used = (statistics.median(times[k]) for k in ("without", "with"))
        print(f"| {path.stem} | {without:.1f} | {used:.1f} | {used / without:.2f}x |", flush=True)


def hugepages_cost(paths, repeats):
    """Print each notebook's plain run and grading times with numpy's huge pages on and off, interleaved, and the
    ratios on / off."""
    print(
        "| notebook | plain, on (s) | plain, off (s) | graded, on (s) | graded, off (s) | plain on / off "
        "| graded on / off |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    for path in paths:
        times = {key: [] for key in ("plain 1", "plain 0", "graded 1", "graded 0")}
        for _ in range(repeats):  # interleaved, so that a change in the machine's load hits both alike
            for value in ("1", "0"):
                times[f"plain {value}"].append(time_plain(path, NUMPY_MADVISE_HUGEPAGE=value))
                times[f"graded {value}"].append(time_graded_in(ROOT, path, NUMPY_MADVISE_HUGEPAGE=value))
        plain_on, plain_off, on, off = (statistics.median(values) for values in times.values())
        print(
            f"| {path.stem} | {plain_on:.1f} | {plain_off:.1f} | {on:.1f} | {off:.1f} | {plain_on / plain_off:.2f}x "
            f"| {on / off:.2f}x |",
            flush=True,
        )


def main():
    """Run both measurements and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--against", type=Path, help="another checkout of the lab: compare its grading time with this one's"
    )
    parser.add_argument("--limits", action="store_true", help="compare grading with the per-job limits and without")
    parser.add_argument("--hugepages", action="store_true", help="compare numpy's huge pages on and off")
    parser.add_argument("--only", choices=("blank", "honest", "raises"), help="measure this fixture alone")
    args = parser.parse_args()
    import checks

    folder = Path(tempfile.mkdtemp()) / "subs"
    paths = [path for path in fixtures(folder) if args.only in (None, path.stem)]
    if args.against:
        return against(args.against.resolve(), paths, args.repeats)
    if args.limits:
        return limits_cost(paths, checks.TASKS, args.repeats)
    if args.hugepages:
        return hugepages_cost(paths, args.repeats)
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
