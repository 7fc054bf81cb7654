"""Grade submitted lab notebooks with the lab's own task checks: one row per submission, one column per task.

    .venv/bin/python tools/grade.py PATH [--jobs N] [--timeout S] [--out DIR]

PATH is one notebook or a folder searched recursively for *.ipynb. Each submission runs in a fresh
kernel, in a temporary folder holding a copy of it and of helpers.py and checks.py (the original is
never modified), up to its last `check("...")` call (level-up cells after it are not run). Where
the notebook calls check, the grader runs `checks.evaluate` for that task inside the submission's
kernel instead (the checks students see, loaded fresh from this lab's checks.py). A task whose check
call was deleted is evaluated after the whole notebook. A cell that raises stops the run: the task
it belongs to (the cells before a check call belong to that check's task) and every later task get
"error: <exception>"; a run past the time limit gets "timed out after S s" the same way. One point
per passed task. The table is printed and written atomically as grades.csv and grades.md beside the
submissions (or in --out). Exit status: 0 when every submission was graded, 1 when some could not
be graded at all (not a notebook, malformed JSON), 2 for bad arguments, 130 when interrupted.
"""

import argparse
import collections
import concurrent.futures
import csv
import importlib.util
import io
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import NamedTuple

LAB_DIR = Path(__file__).resolve().parent.parent
SUPPORT_FILES = ("helpers.py", "checks.py")
TABLE_STEM = "grades"
TABLE_FILE = re.compile(rf"(.+-)?{TABLE_STEM}\.(csv|md)")  # tables this grader wrote earlier
CHECK_CALL = re.compile(r"""\bcheck\(\s*["'](\w+)["']""")
ONLY_CHECKS = re.compile(r"""\s*((\w+\.)?check\(\s*["']\w+["']\s*\)\s*;?\s*)+""")  # a cell that just calls check
WORKER_MARGIN_S = 120  # kernel start and shutdown on top of the notebook's own time limit
MAX_CELL_CHARS = 100
EXIT_UNGRADED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
RUNNING = set()  # worker processes now running, stopped all together on Ctrl-C
RUNNING_LOCK = threading.Lock()
STOPPING = threading.Event()

# Runs inside the submission's kernel after a check call. It uses only names it imports itself, so a
# submission that deleted or shadowed `check`, `checks` or `helpers`, or changed directory, is still
# evaluated by this lab's checks.py, and it restores the submission's working directory afterwards.
EVALUATE_FUNCTION = '''\
def _grader_evaluate(names, checks_py, lab_dir, work_dir, results_file):
    import builtins, importlib.util, json, os, sys
    namespace = builtins.globals()
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = None
    records = {}
    try:
        os.chdir(work_dir)
        if lab_dir not in sys.path:
            sys.path.append(lab_dir)
        spec = importlib.util.spec_from_file_location("_grader_checks", checks_py)
        checks = importlib.util.module_from_spec(spec)
        sys.modules["_grader_checks"] = checks
        spec.loader.exec_module(checks)
        for name in names:
            result = checks.evaluate(name, namespace)
            records[name] = [str(result.status), str(result.message)]
    except Exception as err:
        for name in names:
            records.setdefault(name, ["error", f"the grader could not run this check ({type(err).__name__}: {err})"])
    finally:
        if cwd is not None:
            try:
                os.chdir(cwd)
            except OSError:
                pass
    with open(results_file, "a", encoding="utf-8") as f:
        f.write(json.dumps(records) + "\\n")
'''


class UsageError(Exception):
    """Bad input the user has to fix; the message says what and how."""


class NotGradable(Exception):
    """A submission that cannot be run at all (not a notebook, malformed JSON)."""


class Row(NamedTuple):
    """One submission's results: task -> (status, message), and a note when it could not be graded."""

    name: str
    results: dict
    note: str = ""

    @property
    def graded(self):
        """Whether the submission could be run at all."""
        return not self.note

    @property
    def total(self):
        """One point per passed task."""
        return sum(status == "passed" for status, _ in self.results.values())


# ---------------------------------------------------------------- finding submissions


def find_notebooks(path):
    """Return (notebooks, skipped files) under path: one file, or a folder searched recursively."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path} does not exist: give a notebook (.ipynb) or a folder of notebooks.")
    if path.is_file():
        return [path], []
    files = sorted(p for p in path.rglob("*") if p.is_file() and not is_ignored(p.relative_to(path)))
    notebooks = [p for p in files if p.suffix == ".ipynb"]
    skipped = [p for p in files if p.suffix != ".ipynb"]
    if not notebooks:
        found = f"; it holds only {len(skipped)} other file(s): {', '.join(str(p.relative_to(path)) for p in skipped[:5])}" if skipped else " (it is empty)"
        raise UsageError(f"{path} holds no notebooks (*.ipynb){found}. Give the folder that holds the submitted notebooks.")
    return notebooks, skipped


def is_ignored(relative):
    """Hidden files and folders (.ipynb_checkpoints, .DS_Store), __pycache__ and the grader's own tables."""
    hidden = any(part.startswith(".") or part == "__pycache__" for part in relative.parts)
    return hidden or TABLE_FILE.fullmatch(relative.name) is not None


def name_submissions(notebooks, root):
    """Name each notebook by its file stem, or by its path under root where stems repeat; return (names, warnings)."""
    counts = collections.Counter(p.stem for p in notebooks)
    names = [p.stem if counts[p.stem] == 1 else p.relative_to(root).with_suffix("").as_posix() for p in notebooks]
    warnings_ = [
        f"{count} submissions share the name {stem!r}: their rows are named by path ("
        + ", ".join(n for n, p in zip(names, notebooks) if p.stem == stem) + ")."
        for stem, count in sorted(counts.items()) if count > 1
    ]
    return names, warnings_


def table_paths(path, out=None):
    """Where the CSV and markdown tables go: --out, else the submissions folder, else beside the one notebook."""
    path = Path(path)
    if out is not None:
        folder, stem = Path(out), TABLE_STEM
    elif path.is_dir():
        folder, stem = path, TABLE_STEM
    else:
        folder, stem = path.parent, f"{path.stem}-{TABLE_STEM}"
    return folder / f"{stem}.csv", folder / f"{stem}.md"


def ensure_writable(folder):
    """Create folder if needed and prove a file can be written there, or raise UsageError."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".grade-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        reason = "it is a file, not a folder" if folder.is_file() else (err.strerror or str(err))
        raise UsageError(f"Cannot write the grade tables to {folder}: {reason}. Pass --out with a folder you can write to.") from None


def load_tasks(lab_dir=LAB_DIR):
    """Return checks.TASKS from the lab's checks.py."""
    checks_py = Path(lab_dir) / "checks.py"
    if not checks_py.is_file():
        raise UsageError(f"{checks_py} is missing: the grader needs the lab's checks.py beside helpers.py.")
    if str(lab_dir) not in sys.path:
        sys.path.insert(0, str(lab_dir))  # checks.py imports helpers
    spec = importlib.util.spec_from_file_location("_grader_checks", checks_py)
    checks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(checks)
    return tuple(checks.TASKS)


# ---------------------------------------------------------------- grading one submission (parent side)


def read_notebook(path):
    """Parse path as a Jupyter notebook, or raise NotGradable saying why it is not one."""
    import nbformat

    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise NotGradable("not a notebook: the file is not UTF-8 text") from None
    except OSError as err:
        raise NotGradable(f"cannot read the file: {err.strerror or err}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise NotGradable(f"not a notebook: malformed JSON ({err.msg} at line {err.lineno} column {err.colno})") from None
    if not isinstance(data, dict) or "nbformat" not in data:
        raise NotGradable("not a notebook: valid JSON but not in Jupyter's notebook format (no 'nbformat' key)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return nbformat.reads(text, as_version=4)
    except Exception as err:
        raise NotGradable(f"not a notebook: {one_line(err)}") from None


def grade_submission(name, path, tasks, timeout, lab_dir=LAB_DIR):
    """Run one submission in a temporary folder through a worker process; return its Row."""
    try:
        read_notebook(path)
    except NotGradable as err:
        return Row(name, {task: ("not graded", "") for task in tasks}, str(err))
    with tempfile.TemporaryDirectory(prefix="grade-", ignore_cleanup_errors=True) as tmp:
        tmp = Path(tmp)
        work = tmp / "work"
        work.mkdir()
        for support in SUPPORT_FILES:
            shutil.copy2(Path(lab_dir) / support, work / support)
        shutil.copyfile(path, work / "submission.ipynb")
        job = {"tasks": list(tasks), "timeout": timeout, "lab_dir": str(lab_dir)}
        (tmp / "job.json").write_text(json.dumps(job), encoding="utf-8")
        problem = run_worker(tmp, timeout)
        outcome = tmp / "outcome.json"
        if problem is None and outcome.is_file():
            return Row(name, {task: tuple(value) for task, value in json.loads(outcome.read_text(encoding="utf-8")).items()})
    return Row(name, {task: ("not graded", "") for task in tasks}, f"the grader failed on this submission: {problem}")


def run_worker(tmp, timeout):
    """Run `grade.py --worker tmp` under a hard time limit; return None, or what went wrong."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", str(tmp)]
    with RUNNING_LOCK:
        if STOPPING.is_set():
            return "grading was interrupted"
        proc = subprocess.Popen(
            command, cwd=tmp / "work", env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True,  # its own group: killed as one
        )
        RUNNING.add(proc)
    try:
        _, stderr = proc.communicate(timeout=timeout + WORKER_MARGIN_S)
    except subprocess.TimeoutExpired:
        kill(proc)
        proc.communicate()
        return f"its run did not end {WORKER_MARGIN_S} s after the time limit and was killed"
    finally:
        with RUNNING_LOCK:
            RUNNING.discard(proc)
    if proc.returncode != 0:
        lines = [line for line in stderr.splitlines() if line.strip()]
        return f"worker exit status {proc.returncode}: {lines[-1] if lines else 'no message'}"
    return None


def kill(proc):
    """Kill a worker and its process group (its kernel ends itself when it sees its parent gone)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop_workers():
    """Kill every running worker and start no more."""
    with RUNNING_LOCK:
        STOPPING.set()
        for proc in RUNNING:
            kill(proc)


# ---------------------------------------------------------------- grading one submission (worker side)


def plan_cells(cells, tasks):
    """Return ([(cell, None) or (None, tasks to evaluate here)], tasks whose check call is missing).

    The plan holds the cells up to the last check call, each check call followed by its evaluation;
    tasks whose check call was deleted are evaluated after every cell.

    A cell that does nothing but call check is left out: the evaluation replaces it, so the task is
    checked once, and a submission that deleted or rebound `check` loses nothing.
    """
    boundaries = {}
    for index, cell in enumerate(cells):
        if cell.cell_type == "code":
            for task in CHECK_CALL.findall(cell.source):
                if task in tasks:
                    boundaries.setdefault(task, index)  # a task's first check call ends it
    unbounded = [task for task in tasks if task not in boundaries]  # check call deleted: evaluate after all cells
    last = len(cells) - 1 if unbounded else max(boundaries.values())
    plan = []
    for index, cell in enumerate(cells[: last + 1]):
        if not (index in boundaries.values() and ONLY_CHECKS.fullmatch(cell.source)):
            plan.append((cell, None))  # a cell that only calls check is replaced by the grader's evaluation
        ending = [task for task in tasks if boundaries.get(task) == index]
        if ending:
            plan.append((None, ending))
    if unbounded:
        plan.append((None, unbounded))
    return plan, unbounded


def run_submission(notebook, tasks, timeout, results_file, lab_dir):
    """Execute notebook in a fresh kernel, evaluating each task after its check call; return task -> [status, message]."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nb = nbformat.read(notebook, as_version=4)
    work = Path(notebook).resolve().parent
    checks_py = str(Path(lab_dir) / "checks.py")
    steps, unbounded = plan_cells(nb.cells, tasks)
    plan = [
        (cell, None) if names is None else (evaluation_cell(names, checks_py, lab_dir, work, results_file), names)
        for cell, names in steps
    ]
    nb.cells = [cell for cell, _ in plan]  # nbclient writes each executed cell back into nb.cells
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", allow_errors=False, shutdown_kernel="immediate",
        resources={"metadata": {"path": str(work)}},
    )
    deadline = time.monotonic() + timeout

    def run(index):
        """Run plan[index] within what is left of the time limit."""
        cell, names = plan[index]
        client.timeout = max(math.ceil(deadline - time.monotonic()), 1)  # whole seconds: an int trait
        try:
            client.execute_cell(cell, index)
        except CellExecutionError as err:
            if names is None:
                raise
            # the submission broke what the evaluation cell needs (e.g. rebound a builtin)
            record(results_file, {name: ["error", f"the grader could not run this check ({err.ename}: {err.evalue})"] for name in names})
        cell.outputs = []  # keep the worker's memory small

    failure, rescued = None, []
    try:
        with client.setup_kernel():
            try:
                for index in range(len(plan)):
                    run(index)
            except CellExecutionError:
                if unbounded and index < len(plan) - 1:  # tasks without a check call: check what was done anyway
                    rescued = unbounded
                    try:
                        run(len(plan) - 1)
                    except (CellTimeoutError, DeadKernelError):
                        pass
                raise
    except CellTimeoutError:
        failure = ["timed out", f"after {timeout:g} s"]
    except CellExecutionError as err:
        failure = ["error", f"{err.ename}: {err.evalue}"]
    except DeadKernelError:
        failure = ["error", "the kernel died (the notebook ran out of memory or called exit())"]
    results = read_records(results_file)
    for task in rescued:  # after an error, a task without a check call keeps only a pass
        if results.get(task, [None])[0] != "passed":
            results.pop(task, None)
    return {task: results.get(task) or failure or ["error", "the check never ran"] for task in tasks}


def evaluation_cell(names, checks_py, lab_dir, work, results_file):
    """A code cell that evaluates the named tasks in the kernel and appends their results to results_file."""
    import nbformat

    arguments = (list(names), checks_py, str(lab_dir), str(work), str(results_file))
    return nbformat.v4.new_code_cell(f"{EVALUATE_FUNCTION}_grader_evaluate{arguments!r}\ndel _grader_evaluate\n")


def record(results_file, records):
    """Append one line of task results to results_file."""
    with open(results_file, "a", encoding="utf-8") as f:
        f.write(json.dumps(records) + "\n")


def read_records(results_file):
    """Merge the task results the kernel wrote (one JSON object a line); later lines win."""
    results = {}
    if Path(results_file).is_file():
        for line in Path(results_file).read_text(encoding="utf-8").splitlines():
            try:
                results.update(json.loads(line))
            except json.JSONDecodeError:
                continue
    return results


def work(tmp):
    """Worker process: grade tmp/work/submission.ipynb as tmp/job.json says, writing tmp/outcome.json."""
    tmp = Path(tmp)
    job = json.loads((tmp / "job.json").read_text(encoding="utf-8"))
    results = run_submission(tmp / "work" / "submission.ipynb", job["tasks"], job["timeout"], tmp / "results.jsonl", job["lab_dir"])
    write_atomically(tmp / "outcome.json", json.dumps(results))


# ---------------------------------------------------------------- the table


def one_line(text, limit=MAX_CELL_CHARS):
    """Text on one line without terminal colour codes, cut to limit characters."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(text))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def cell_text(status, message):
    """What a task's table cell shows: the status, with the reason when it did not pass."""
    if status in ("passed", "not attempted", "not graded"):
        return status
    if status == "timed out":
        return one_line(f"timed out {message}")
    return one_line(f"{status}: {message}" if message else status)


def table_rows(rows, tasks):
    """Header and rows of the table as lists of strings."""
    header = ["submission", *tasks, "total", "note"]
    body = [[row.name, *(cell_text(*row.results[task]) for task in tasks), str(row.total), one_line(row.note)] for row in rows]
    return header, body


def to_csv(header, body):
    """The table as CSV text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(body)
    return buffer.getvalue()


def to_markdown(header, body):
    """The table as a markdown table with padded columns, readable as plain text too."""
    cells = [[text.replace("|", "\\|") for text in line] for line in [header, *body]]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(text.ljust(width) for text, width in zip(line, widths)) + " |" for line in cells]
    lines.insert(1, "| " + " | ".join("-" * width for width in widths) + " |")
    return "\n".join(lines) + "\n"


def write_atomically(path, text):
    """Write text to path as UTF-8, atomically."""
    from run_notebook import write_atomic  # the sibling tool's writer; imported late like nbformat
    write_atomic(path, text.encode("utf-8"))


# ---------------------------------------------------------------- command line


def grade(path, jobs=1, timeout=600, out=None, lab_dir=LAB_DIR, log=None):
    """Grade every notebook at path, write the tables and return (rows, tasks, csv path, markdown path)."""
    log = log or sys.stderr
    path = Path(path)
    notebooks, skipped = find_notebooks(path)
    root = path if path.is_dir() else path.parent
    names, name_warnings = name_submissions(notebooks, root)
    csv_path, md_path = table_paths(path, out)
    ensure_writable(csv_path.parent)
    tasks = load_tasks(lab_dir)
    if skipped:
        print(f"Skipped {len(skipped)} file(s) that are not notebooks: {', '.join(str(p.relative_to(root)) for p in skipped)}", file=log)
    for warning in name_warnings:
        print(f"Warning: {warning}", file=log)
    print(f"Grading {len(notebooks)} notebook(s), {jobs} at a time, {timeout:g} s each at most.", file=log)
    rows = []
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=jobs)
    try:
        futures = {pool.submit(grade_timed, name, nb, tasks, timeout, lab_dir): name for name, nb in zip(names, notebooks)}
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            name = futures[future]
            try:
                row, seconds = future.result()
            except Exception as err:  # a grader bug on one submission must not stop the others
                row, seconds = Row(name, {task: ("not graded", "") for task in tasks}, f"the grader failed: {one_line(err)}"), 0
            rows.append(row)
            status = f"{row.total}/{len(tasks)}" if row.graded else "not graded"
            print(f"[{done}/{len(notebooks)}] {name}: {status} ({seconds:.0f} s)", file=log)
    except KeyboardInterrupt:
        pool.shutdown(wait=False, cancel_futures=True)
        stop_workers()
        raise
    pool.shutdown()
    rows.sort(key=lambda row: row.name)
    header, body = table_rows(rows, tasks)
    write_atomically(csv_path, to_csv(header, body))
    write_atomically(md_path, to_markdown(header, body))
    return rows, tasks, csv_path, md_path


def grade_timed(name, notebook, tasks, timeout, lab_dir):
    """grade_submission and the seconds it took."""
    start = time.monotonic()
    return grade_submission(name, notebook, tasks, timeout, lab_dir), time.monotonic() - start


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
    """Command line: grade.py PATH [--jobs N] [--timeout S] [--out DIR]."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="Exit status: 0 all graded, 1 some not gradable, 2 bad arguments, 130 interrupted.")
    parser.add_argument("path", help="a notebook, or a folder searched recursively for *.ipynb")
    parser.add_argument("--jobs", type=positive(int), default=1, help="submissions graded at once (default 1)")
    parser.add_argument("--timeout", type=positive(float), default=600, help="seconds one submission may run (default 600)")
    parser.add_argument("--out", help="folder for grades.csv and grades.md (default: beside the submissions)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        work(args.path)
        return 0
    previous = signal.signal(signal.SIGTERM, interrupt)  # `kill` stops the workers too, as Ctrl-C does
    try:
        rows, tasks, csv_path, md_path = grade(args.path, args.jobs, args.timeout, args.out)
    except UsageError as err:
        print(f"grade.py: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("grade.py: interrupted; running notebooks stopped, no table written.", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
    header, body = table_rows(rows, tasks)
    print(to_markdown(header, body), end="")
    print(f"Wrote {csv_path} and {md_path}", file=sys.stderr)
    ungraded = [row.name for row in rows if not row.graded]
    if ungraded:
        print(f"Could not grade {len(ungraded)} submission(s): {', '.join(ungraded)} (see the note column).", file=sys.stderr)
        return EXIT_UNGRADED
    return 0


if __name__ == "__main__":
    sys.exit(main())
