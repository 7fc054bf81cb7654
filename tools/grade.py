"""Grade submitted lab notebooks with the lab's own task checks: one row per submission, one column per task.

    .venv/bin/python tools/grade.py PATH [--jobs N | --scheduler tcp://HOST:8786] [--timeout S] [--out DIR] [--force] [--quiet]
                                        [--key solution.ipynb] [--pseudonyms]
    .venv/bin/python tools/grade.py --worker tcp://HOST:8786 [--jobs N]      (on each grading machine of a cluster)

PATH is one notebook or a folder searched recursively for *.ipynb. Each submission runs in a fresh
kernel in a sandbox (an unprivileged user, bubblewrap namespaces, resource limits: grading/sandbox.py),
up to its last `check("...")` call. After each check call the kernel exports the task's variables
as plain data, and the grader judges them outside the kernel with the same checks students run
(checks.judge). A cell that raises marks its task and every later one "error: ..."; a run past the
time limit gets "timed out after S s". One point per passed task. The table is printed and written
atomically as grades.csv (messages whole) and grades.md beside the submissions (or in --out), with
feedback/NAME.md and .html for each student. Each result is kept as it finishes, signed (HMAC) with a secret in
~/.cache/dae-lab, in --out's .grades/, or without --out in ~/.cache/dae-lab/grades/ (never among the submissions,
where a planted .grades/ is ignored), so a run started again grades only new or changed notebooks (--force regrades
all). Only regular files are graded: a symbolic link, a FIFO or a file over 50 MiB gets a "not graded" row. Submissions are graded
as Dask tasks: on a LocalCluster of --jobs worker processes, or on a running cluster (--scheduler) whose grading
machines each run `grade.py --worker` (--jobs Dask workers there) and whose scheduler needs nothing of the lab.
A class report (report.html, summary.md) goes beside the tables.
The class challenge (optional, its own column, never in the total): a notebook that calls check("challenge") has its
`challenge_model` run in its sandbox on a hidden set drawn by the grader (grading/challenge.py) and scored outside it;
leaderboard.csv and leaderboard.html go beside the tables, with reference rows (the noisy input, classical denoisers,
and with --key solution.ipynb the answer key's entry and core DAE); --pseudonyms shows "Entry N" instead of names.
The grader's own failures are never a student's grade (grading/preflight.py): before grading it grades a trivial
notebook exactly as the submissions will be graded, and stops if that fails; a submission whose kernel never started
(or whose worker died before it answered) is followed by that notebook again on the same machine (the canary): if it
fails too, the run stops; if not, the submission is tried once more, then is its own error. Without bubblewrap it
refuses to grade unless --unsandboxed is given (then each row says unsandboxed).
Every output is written through its folder's descriptor, never through a link (grading/outputs.py).
Exit status: 0 when every submission was graded, 1 when some could not be graded at all, 2 for bad arguments
(also an output's name taken by a link or the wrong kind of file: nothing written),
3 when the grader cannot grade on this machine (no bubblewrap without --unsandboxed, the pre-flight notebook failed,
or the grader failed on a submission and then on the canary: then only the rows decided before it stopped are written;
the message says why and the fix),
130 when interrupted.
"""

import argparse
import os
import signal
import sys
from pathlib import Path

os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")  # read when numpy is first imported: grading/sandbox.py kernel_env

LAB_DIR = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(LAB_DIR), str(LAB_DIR / "tools")]  # the lab's modules and the sibling run_notebook.py

from grading import report  # noqa: E402
from grading.preflight import GraderUnusable  # noqa: E402
from grading.run import UsageError, grade, leaderboard_paths, report_paths, serve  # noqa: E402

EXIT_UNGRADED, EXIT_USAGE, EXIT_GRADER, EXIT_INTERRUPTED = 1, 2, 3, 130


def positive(kind):
    """argparse type: a positive number of the given kind."""

    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
        return value

    return parse


def interrupt(signum, frame):
    """Signal handler: treat SIGTERM like Ctrl-C."""
    raise KeyboardInterrupt


def main(argv=None):
    """Command line: grade.py PATH [--jobs N] [--timeout S] [--out DIR] [--force]."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Exit status: 0 all graded, 1 some not gradable, 2 bad arguments, 3 the grader cannot grade here "
        "(nothing written; it says why), 130 interrupted.",
    )
    parser.add_argument("path", nargs="?", help="a notebook, or a folder searched recursively for *.ipynb")
    parser.add_argument(
        "--jobs",
        type=positive(int),
        default=1,
        help="Dask worker processes (of the local cluster, or with --worker), submissions graded at once (default 1)",
    )
    parser.add_argument("--scheduler", help="grade on a running Dask cluster instead, e.g. tcp://10.0.0.5:8786")
    parser.add_argument(
        "--worker",
        metavar="SCHEDULER",
        help="grade for the Dask cluster at this address on this machine (as root), until stopped; no PATH",
    )
    parser.add_argument(
        "--timeout", type=positive(float), default=600, help="seconds one submission may run (default 600)"
    )
    parser.add_argument(
        "--out", help="folder for grades.csv, grades.md and feedback/ (default: beside the submissions)"
    )
    parser.add_argument("--force", action="store_true", help="regrade every submission, even unchanged ones")
    parser.add_argument(
        "--key",
        metavar="NOTEBOOK",
        help="the answer key (solution.ipynb), graded like a submission but never a row: its challenge entry and core "
        "DAE are reference rows of the leaderboard",
    )
    parser.add_argument(
        "--pseudonyms",
        action="store_true",
        help="show students on the leaderboard by stable pseudonyms (Entry 417) instead of names, for a projector",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines and no table on stdout (for scripts)")
    parser.add_argument(
        "--unsandboxed",
        action="store_true",
        help="grade even where bubblewrap is missing or refused: kernels then see your files, processes and network "
        "(each row says unsandboxed); without it the grader refuses",
    )
    args = parser.parse_args(argv)
    if args.worker:
        if args.path or args.scheduler:
            parser.error("--worker grades for a cluster: give it no PATH and no --scheduler")
        try:
            serve(args.worker, args.jobs, unsandboxed=args.unsandboxed)
        except GraderUnusable as err:
            print(f"grade.py: {err}", file=sys.stderr)
            return EXIT_GRADER
        return 0
    if not args.path:
        parser.error("give PATH, a notebook or a folder of notebooks (or --worker SCHEDULER on a grading machine)")
    previous = signal.signal(signal.SIGTERM, interrupt)  # `kill` stops the workers too, as Ctrl-C does
    try:
        rows, tasks, csv_path, md_path = grade(
            args.path,
            args.jobs,
            args.timeout,
            args.out,
            args.force,
            args.scheduler,
            args.quiet,
            unsandboxed=args.unsandboxed,
            key=args.key,
            pseudonyms=args.pseudonyms,
        )
    except UsageError as err:
        print(f"grade.py: {err}", file=sys.stderr)
        return EXIT_USAGE
    except GraderUnusable as err:
        print(f"grade.py: {err}", file=sys.stderr)
        return EXIT_GRADER
    except KeyboardInterrupt:
        print(
            "grade.py: interrupted; running notebooks stopped, no table written "
            "(finished results are kept: run the same command again to go on).",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
    if not args.quiet:
        print(report.to_markdown(rows, tasks), end="")
    html_path, summary_path = report_paths(csv_path)
    print(
        f"Wrote {csv_path}, {md_path}, the class report {html_path} and {summary_path.name}, "
        f"and feedback for each submission in {csv_path.parent / 'feedback'}",
        file=sys.stderr,
    )
    board = leaderboard_paths(csv_path)
    if board[0].is_file() and any(row.challenge for row in rows):
        print(f"Wrote the challenge's leaderboard: {board[0]} and {board[1].name}", file=sys.stderr)
    ungraded = [row.name for row in rows if not row.graded]
    if ungraded:
        print(
            f"Could not grade {len(ungraded)} submission(s): {', '.join(ungraded)} (see the note column).",
            file=sys.stderr,
        )
        return EXIT_UNGRADED
    return 0


if __name__ == "__main__":
    sys.exit(main())
