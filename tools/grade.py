"""Grade submitted lab notebooks with the lab's own task checks: one row per submission, one column per task.

    .venv/bin/python tools/grade.py PATH [--jobs N | --scheduler tcp://HOST:8786] [--timeout S] [--out DIR] [--force] [--quiet]
                                        [--key solution.ipynb] [--pseudonyms]
                                        [--roster roster.csv] [--overrides overrides.csv]
                                        [--export canvas] [--export moodle] [--export-challenge] [--assignment NAME]
                                        [--watch [--watch-interval S] [--watch-rounds N]]
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
The final ranking scores the hidden set's private part; during a lesson, --watch keeps grading the folder as notebooks
land in it (grading/live.py) and keeps a live board on its public part, a page that reloads itself, until Ctrl-C;
the same command without --watch then writes the final ranking from the kept results.
The grader's own failures are never a student's grade (grading/preflight.py): before grading it grades a trivial
notebook exactly as the submissions will be graded, and stops if that fails; a submission whose kernel never started
(or whose worker died before it answered) is followed by that notebook again on the same machine (the canary): if it
fails too, the run stops; if not, the submission is tried once more, then is its own error. Without bubblewrap it
refuses to grade unless --unsandboxed is given (then each row says unsandboxed).
The course's gradebook (grading/gradebook.py): --roster FILE (CSV: id, name, and optionally email, submission,
section, login, canvas_id) lists every student in the tables, the class report and the exports, those without a
submission as "no submission", and notes each submission that is no one's or two students'; --overrides FILE (CSV:
submission, task, verdict, reason, fingerprint) sets the instructor's verdict on a task, applied on every run and
shown as "passed by the instructor: REASON", unless the notebook changed since (then listed, not applied); --export
canvas and --export moodle write canvas.csv and moodle.csv (the points, tasks passed out of the number of tasks, in
each gradebook's import format; --export-challenge adds the challenge's column). A malformed roster or overrides file
is an error naming its line, before anything is graded or written (exit status 2).
Every output is written through its folder's descriptor, never through a link (grading/outputs.py).
Exit status: 0 when every submission was graded, 1 when some could not be graded at all, 2 for bad arguments
(also an output's name taken by a link or the wrong kind of file: nothing written),
3 when the grader cannot grade on this machine (no bubblewrap without --unsandboxed, the pre-flight notebook failed,
or the grader failed on a submission and then on the canary: then only the rows decided before it stopped are written;
the message says why and the fix),
130 when interrupted; with --watch, 0 when stopped (Ctrl-C, kill, or after --watch-rounds looks), 2 or 3 as above.
"""

import argparse
import os
import signal
import sys
from pathlib import Path

os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")  # read when numpy is first imported: grading/sandbox.py kernel_env

LAB_DIR = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(LAB_DIR), str(LAB_DIR / "tools")]  # the lab's modules and the sibling run_notebook.py

from grading import gradebook, live, report  # noqa: E402
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
    parser.add_argument(
        "--roster",
        metavar="FILE",
        help="the class's roster, CSV: id,name[,email,submission,section,login,canvas_id]; submission: the file stem "
        "or folder name of the student's notebook (default: their id); every student is then a row of the tables",
    )
    parser.add_argument(
        "--overrides",
        metavar="FILE",
        help="your own verdicts, CSV: submission,task,verdict,reason,fingerprint (submission: as grades.csv names it, "
        "or a roster id; verdict: passed or failed); applied on every run unless the notebook changed since",
    )
    parser.add_argument(
        "--export",
        action="append",
        choices=gradebook.EXPORTS,
        default=[],
        help="write the roster's points as the gradebook's import CSV (canvas.csv, moodle.csv beside grades.csv); "
        "needs --roster; may be given twice",
    )
    parser.add_argument(
        "--export-challenge",
        action="store_true",
        help="add the challenge's column to the exports: 1 point for an entry scored on the hidden set, 0 refused",
    )
    parser.add_argument(
        "--assignment",
        default=gradebook.ASSIGNMENT,
        help=f"the exports' column for the lab's points (default {gradebook.ASSIGNMENT!r}): the gradebook's "
        "assignment or grade item",
    )
    parser.add_argument(
        "--watch",
        action="store_true",
        help="during a lesson: grade new and changed notebooks as they land in the folder and keep the live board "
        "(the hidden set's public part, a page that reloads itself) current, until Ctrl-C; run again without it for "
        "the final ranking",
    )
    parser.add_argument(
        "--watch-interval",
        type=positive(float),
        default=live.INTERVAL_S,
        metavar="S",
        help=f"with --watch: seconds between two looks at the folder (default {live.INTERVAL_S})",
    )
    parser.add_argument(
        "--watch-rounds",
        type=positive(int),
        metavar="N",
        help="with --watch: stop after looking at the folder N times (default: until Ctrl-C)",
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
    if args.watch_rounds and not args.watch:
        parser.error("--watch-rounds counts the looks of --watch: give --watch too")
    if args.watch and (args.roster or args.overrides or args.export or args.export_challenge):
        parser.error(
            "--roster, --overrides and --export are for the final run: run it without --watch after the lesson"
        )
    if args.watch:
        return watch(args)
    if (args.export or args.export_challenge) and not args.roster:
        parser.error("--export needs --roster: the gradebooks find each student by the roster's identifiers")
    book_files = gradebook.Files(
        args.roster, args.overrides, tuple(dict.fromkeys(args.export)), args.export_challenge, args.assignment
    )
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
            book_files=book_files,
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
    for kind, export in gradebook.export_paths(csv_path).items():
        if kind in book_files.exports:
            print(
                f"Wrote the {kind.capitalize()} gradebook import: {export} (points: tasks passed, out of {len(tasks)})",
                file=sys.stderr,
            )
    ungraded = [row.name for row in rows if row.submitted and not row.graded]
    if ungraded:
        print(
            f"Could not grade {len(ungraded)} submission(s): {', '.join(ungraded)} (see the note column).",
            file=sys.stderr,
        )
        return EXIT_UNGRADED
    return 0


def watch(args):
    """--watch: grade the folder as notebooks land in it, keeping the live board, until Ctrl-C or --watch-rounds;
    return the exit status (0 when stopped so, as at the end of a lesson)."""
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        result = live.watch(
            args.path,
            args.watch_interval,
            args.watch_rounds,
            jobs=args.jobs,
            timeout=args.timeout,
            out=args.out,
            force=args.force,
            scheduler=args.scheduler,
            quiet=args.quiet,
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
    finally:
        signal.signal(signal.SIGTERM, previous)
    if result is not None:
        board = leaderboard_paths(result[2])
        print(f"The live board: {board[1]} (and {board[0].name}); the tables and feedback beside it.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
