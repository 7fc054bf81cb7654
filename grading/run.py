"""Grading a folder of submissions: find them, grade each new one in a worker process, keep each result
as it finishes, and write the class table and every student's feedback."""

import collections
import concurrent.futures
import json
import os
import queue
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

from grading import report, sandbox
from grading.report import Row, ungraded
from grading.store import Store, fingerprint, key

LAB_DIR = Path(__file__).resolve().parent.parent
TABLE_STEM = "grades"
TABLE_FILE = re.compile(rf"(.+-)?{TABLE_STEM}\.(csv|md)")  # tables this grader wrote earlier
FEEDBACK_DIR = "feedback"
WORKER_MARGIN_S = 120  # kernel start and shutdown on top of the notebook's own time limit


class UsageError(Exception):
    """Bad input the user has to fix; the message says what and how."""


class NotGradable(Exception):
    """A submission that cannot be run at all (not a notebook, malformed JSON)."""


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
        found = (f"; it holds only {len(skipped)} other file(s): {', '.join(str(p.relative_to(path)) for p in skipped[:5])}"
                 if skipped else " (it is empty)")
        raise UsageError(f"{path} holds no notebooks (*.ipynb){found}. Give the folder that holds the submitted notebooks.")
    return notebooks, skipped


def is_ignored(relative):
    """Hidden files and folders (.ipynb_checkpoints, .grades), __pycache__, feedback and the grader's own tables."""
    hidden = any(part.startswith(".") or part == "__pycache__" for part in relative.parts)
    return hidden or relative.parts[0] == FEEDBACK_DIR or TABLE_FILE.fullmatch(relative.name) is not None


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
    if not (Path(lab_dir) / "checks.py").is_file():
        raise UsageError(f"{Path(lab_dir) / 'checks.py'} is missing: the grader needs the lab's checks.py beside helpers.py.")
    import checks

    return tuple(checks.TASKS)


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
        raise NotGradable(f"not a notebook: {report.one_line(err)}") from None


# ---------------------------------------------------------------- grading one submission


class Workers:
    """The worker processes now running, so that Ctrl-C or SIGTERM stops them all and starts no more."""

    def __init__(self):
        self.running, self.lock, self.stopping = set(), threading.Lock(), threading.Event()

    def run(self, folder, timeout):
        """Run a worker on the job in folder under a hard time limit; return None, or what went wrong."""
        command = [sys.executable, "-m", "grading.worker", str(folder)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(LAB_DIR), str(LAB_DIR / "tools")]),
               "TF_CPP_MIN_LOG_LEVEL": "2"}
        with self.lock:
            if self.stopping.is_set():
                return "grading was interrupted"
            proc = subprocess.Popen(command, cwd=LAB_DIR, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True, start_new_session=True)
            self.running.add(proc)
        try:
            _, stderr = proc.communicate(timeout=timeout + WORKER_MARGIN_S)
        except subprocess.TimeoutExpired:
            kill(proc)
            proc.communicate()
            return f"its run did not end {WORKER_MARGIN_S} s after the time limit and was stopped"
        finally:
            with self.lock:
                self.running.discard(proc)
        if proc.returncode != 0:
            lines = [line for line in stderr.splitlines() if line.strip()]
            return f"worker exit status {proc.returncode}: {lines[-1] if lines else 'no message'}"
        return None

    def stop(self):
        """Kill every running worker (and with it its sandboxed kernel) and start no more."""
        with self.lock:
            self.stopping.set()
            for proc in self.running:
                kill(proc)


def kill(proc):
    """Kill a worker and its process group; its sandbox dies with it (bubblewrap's --die-with-parent)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def grade_one(name, path, tasks, settings, slot, workers):
    """Grade one submission in a fresh job folder through a worker process; return its Row."""
    try:
        read_notebook(path)
    except NotGradable as err:
        return ungraded(name, tasks, str(err))
    folder = Path(tempfile.mkdtemp(prefix="grade-"))  # private to the grader (0700): the kernel never sees it
    try:
        shutil.copyfile(path, folder / "submission.ipynb")
        box = settings["sandbox"]
        job = {"tasks": list(tasks), "timeout": settings["timeout"], "lab_dir": str(settings["lab_dir"]), "slot": slot,
               "users": [list(ids) for ids in box.users], "bwrap": box.bwrap, "missing": list(box.missing),
               "limits": list(settings["limits"])}
        (folder / "job.json").write_text(json.dumps(job), encoding="utf-8")
        problem = workers.run(folder, settings["timeout"])
        outcome = folder / "outcome.json"
        if problem is None and outcome.is_file():
            data = json.loads(outcome.read_text(encoding="utf-8"))
            note = "" if box.complete else "unsandboxed"
            return Row(name, {task: tuple(value) for task, value in data["results"].items()}, note, data["error"])
        return ungraded(name, tasks, f"the grader failed on this submission: {problem or 'no outcome written'}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------- grading a class


def grade(path, jobs=1, timeout=600, out=None, force=False, lab_dir=LAB_DIR, limits=None, log=None):
    """Grade every notebook at path, write the tables and feedback; return (rows, tasks, csv path, markdown path)."""
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
    box = sandbox.probe(jobs)
    for reason in box.missing:
        print(f"Warning: grading unsandboxed: {reason}.", file=log)
    settings = {"sandbox": box, "timeout": timeout, "lab_dir": Path(lab_dir), "limits": limits or sandbox.Limits()}
    store = Store(csv_path.parent)
    grader = fingerprint(lab_dir, tasks, timeout, box.complete)
    keys = {name: key(nb, name, grader) for name, nb in zip(names, notebooks)}
    rows = {name: store.get(keys[name]) for name in names} if not force else {}
    todo = [(name, nb) for name, nb in zip(names, notebooks) if rows.get(name) is None]
    kept = len(names) - len(todo)
    print(f"Grading {len(todo)} notebook(s), {jobs} at a time, {timeout:g} s each at most"
          + (f"; {kept} unchanged since the last run kept (--force regrades them)." if kept else "."), file=log)
    slots = queue.SimpleQueue()
    for slot in range(jobs):
        slots.put(slot)
    workers = Workers()

    def graded(name, notebook):
        """grade_one on a free slot; (row, seconds)."""
        slot, start = slots.get(), time.monotonic()
        try:
            return grade_one(name, notebook, tasks, settings, slot, workers), time.monotonic() - start
        finally:
            slots.put(slot)

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=jobs)
    try:
        futures = {pool.submit(graded, name, nb): name for name, nb in todo}
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            name = futures[future]
            try:
                row, seconds = future.result()
            except Exception as err:  # a grader bug on one submission must not stop the others
                row, seconds = ungraded(name, tasks, f"the grader failed: {report.one_line(err)}"), 0
            if row.graded:
                store.put(keys[name], row)  # kept at once: a killed run loses nothing finished
            rows[name] = row
            status = f"{row.total}/{len(tasks)}" if row.graded else "not graded"
            print(f"[{done}/{len(todo)}] {name}: {status} ({seconds:.0f} s)", file=log)
    except KeyboardInterrupt:
        pool.shutdown(wait=False, cancel_futures=True)
        workers.stop()
        raise
    pool.shutdown()
    ordered = sorted(rows.values(), key=lambda row: row.name)
    write_reports(ordered, tasks, csv_path, md_path)
    return ordered, tasks, csv_path, md_path


def write_reports(rows, tasks, csv_path, md_path):
    """Write grades.csv, grades.md and feedback/NAME.md and .html for each submission, each atomically."""
    from run_notebook import write_atomic

    write_atomic(csv_path, report.to_csv(rows, tasks).encode("utf-8"))
    write_atomic(md_path, report.to_markdown(rows, tasks).encode("utf-8"))
    feedback = csv_path.parent / FEEDBACK_DIR
    for row in rows:
        write_atomic(feedback / f"{row.name}.md", report.feedback_markdown(row, tasks).encode("utf-8"))
        write_atomic(feedback / f"{row.name}.html", report.feedback_html(row, tasks).encode("utf-8"))
