"""Grading a folder of submissions: find them, grade each new one in a worker process, keep each result
as it finishes, and write the class table and every student's feedback."""

import collections
import contextlib
import functools
import json
import logging
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
import zlib
from pathlib import Path

from grading import preflight, report, sandbox, worker
from grading.preflight import GraderFailed, GraderUnusable
from grading.report import Row, ungraded
from grading.store import Store, fingerprint, key

LAB_DIR = Path(__file__).resolve().parent.parent
TABLE_STEM = "grades"
REPORT_FILES = ("report.html", "summary.md")  # the class report, beside the tables
TABLE_FILE = re.compile(rf"(.+-)?({TABLE_STEM}\.(csv|md)|report\.html|summary\.md)")  # what this grader wrote earlier
FEEDBACK_DIR = "feedback"
WORKER_MARGIN_S = 120  # kernel start and shutdown on top of the notebook's own time limit
MAX_TRIES = 3  # a submission whose Dask worker dies this many times is "not graded: worker lost"
GRADER_RETRIES = 1  # more tries for a submission the grader failed on (its kernel never started, its worker died)
WORKER_MEMORY = 12 * 2**30  # address space of one grader worker (the trusted side: judging loads TensorFlow)


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
        found = (
            f"; it holds only {len(skipped)} other file(s): {', '.join(str(p.relative_to(path)) for p in skipped[:5])}"
            if skipped
            else " (it is empty)"
        )
        raise UsageError(
            f"{path} holds no notebooks (*.ipynb){found}. Give the folder that holds the submitted notebooks."
        )
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
        + ", ".join(n for n, p in zip(names, notebooks) if p.stem == stem)
        + ")."
        for stem, count in sorted(counts.items())
        if count > 1
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
        raise UsageError(
            f"Cannot write the grade tables to {folder}: {reason}. Pass --out with a folder you can write to."
        ) from None


def load_tasks(lab_dir=LAB_DIR):
    """Return checks.TASKS from the lab's checks package."""
    if not (Path(lab_dir) / "checks" / "__init__.py").is_file():
        raise UsageError(
            f"{Path(lab_dir) / 'checks' / '__init__.py'} is missing: the grader needs the lab's checks package "
            "(the folder checks/) beside helpers.py."
        )
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
        raise NotGradable(
            f"not a notebook: malformed JSON ({err.msg} at line {err.lineno} column {err.colno})"
        ) from None
    if not isinstance(data, dict) or "nbformat" not in data:
        raise NotGradable("not a notebook: valid JSON but not in Jupyter's notebook format (no 'nbformat' key)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return nbformat.reads(text, as_version=4)
    except Exception as err:
        raise NotGradable(f"not a notebook: {report.one_line(err)}") from None


# ---------------------------------------------------------------- grading one submission (on a Dask worker)


class Workers:
    """The grader worker processes (grading/worker.py) of this process: one per thread, kept between jobs."""

    def __init__(self):
        self.idle, self.lock = {}, threading.Lock()  # (thread, lab) -> (process, jobs it has done)

    def run(self, folder, timeout, lab_dir, private_mounts=False):
        """Have a grader worker grade the job in folder under a hard time limit; return None, or what went wrong."""
        key = (threading.get_ident(), str(lab_dir), private_mounts)
        with self.lock:
            proc, done = self.idle.pop(key, (None, 0))
        if proc is None or proc.poll() is not None:
            proc, done = start_worker(lab_dir, private_mounts), 0
        problem = ask(proc, folder, timeout + WORKER_MARGIN_S)
        if problem is None and done + 1 < worker.MAX_JOBS:
            with self.lock:
                self.idle[key] = (proc, done + 1)
        else:
            kill(proc)
            proc.wait()
        return problem


WORKERS = Workers()


def start_worker(lab_dir, private_mounts=False):
    """A new grader worker process for the lab in lab_dir, waiting for job folders on its stdin; with
    private_mounts, in a mount namespace of its own, so the jobs' spaces it mounts go when it ends, however."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(lab_dir), str(Path(lab_dir) / "tools")]),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    return subprocess.Popen(
        [*(sandbox.private_mounts() if private_mounts else []), sys.executable, "-m", "grading.worker"],
        cwd=lab_dir,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # each job's errors go to its own folder's stderr.txt
        text=True,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )


def ask(proc, folder, limit):
    """Send proc the job in folder and wait up to limit seconds for it to say it is done; None, or what went wrong."""
    try:
        proc.stdin.write(f"{folder}\n")
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], limit)
        answer = proc.stdout.readline() if ready else None
    except (BrokenPipeError, ValueError):
        answer = ""
    if answer is None:
        return f"its run did not end {WORKER_MARGIN_S} s after the time limit and was stopped"
    if answer.rstrip("\n") == str(folder):
        return None
    try:
        status = proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        status = "none (it stopped answering)"
    log = folder / "stderr.txt"
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()] if log.is_file() else []
    return f"worker exit status {status}: {lines[-1] if lines else 'no message'}"


def die_with_parent():
    """In a new grader worker: be killed when the process that started it dies (Linux's PR_SET_PDEATHSIG),
    and stay within WORKER_MEMORY, so that whatever a kernel sends it cannot take the machine's memory."""
    import ctypes
    import resource

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY, WORKER_MEMORY))


def kill(proc):
    """Kill a worker and its process group; its sandbox dies with it (bubblewrap's --die-with-parent)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@functools.cache
def local_sandbox(slots):
    """sandbox.probe on this machine, once per process."""
    return sandbox.probe(slots)


def worker_slot():
    """This Dask worker's preferred job slot: its number in a LocalCluster, else from its name."""
    try:
        from distributed import get_worker

        name = get_worker().name
    except (ImportError, ValueError):
        return 0
    name = int(name) if str(name).isdigit() else name
    return (
        name
        if isinstance(name, int) and 0 <= name < sandbox.MAX_SLOTS
        else zlib.crc32(str(name).encode()) % sandbox.MAX_SLOTS
    )


def grade_task(name, notebook, tasks, timeout, limits, kernel_log=False):
    """The Dask task: grade one submission (its bytes) on this machine, in this machine's lab; return its Row as
    plain data (Row.to_json), as limits (a tuple) came: nothing of the lab travels through the scheduler. Raises
    GraderFailed when the grader failed on it (Dask then tries it again)."""
    with sandbox.leased_slot(worker_slot()) as slot:
        settings = {
            "sandbox": local_sandbox(slot + 1),
            "timeout": timeout,
            "lab_dir": LAB_DIR,
            "limits": sandbox.Limits(*limits),
        }
        return grade_one(name, notebook, tasks, settings, slot, kernel_log).to_json()


def remote(function):
    """function (a module-level function of the lab) as a Dask task function that the scheduler can unpickle
    without the lab: a closure, which Dask pickles by value (cloudpickle), naming the function by its module and
    name, and importing it only when it runs, on a worker, from that machine's lab."""
    module, name = function.__module__, function.__name__

    def call(*args):
        import importlib

        return getattr(importlib.import_module(module), name)(*args)

    return call


def grade_one(name, notebook, tasks, settings, slot, kernel_log=False):
    """Grade one submission (the notebook's bytes) in a fresh job folder through a worker process; return its Row,
    or raise GraderFailed. kernel_log: keep the kernel's own output, to say it on failure (trusted notebooks only)."""
    folder = Path(tempfile.mkdtemp(prefix="grade-"))  # private to the grader (0700): the kernel never sees it
    try:
        path = folder / "submission.ipynb"
        path.write_bytes(notebook)
        try:
            read_notebook(path)
        except NotGradable as err:
            return ungraded(name, tasks, str(err))
        box = settings["sandbox"]
        job = {
            "tasks": list(tasks),
            "timeout": settings["timeout"],
            "lab_dir": str(settings["lab_dir"]),
            "slot": slot,
            "users": [list(ids) for ids in box.users],
            "bwrap": box.bwrap,
            "missing": list(box.missing),
            "hierarchy": box.hierarchy and [box.hierarchy.version, list(box.hierarchy.bases)],
            "space": box.space,
            "limits": list(settings["limits"]),
            "kernel_log": kernel_log,
        }
        with sandbox.job_group(box, settings["limits"]) as group:
            job["group"] = group and group.name
            (folder / "job.json").write_text(json.dumps(job), encoding="utf-8")
            problem = WORKERS.run(folder, settings["timeout"], settings["lab_dir"], box.space)
        outcome = folder / "outcome.json"
        if problem is None and outcome.is_file():
            data = json.loads(outcome.read_text(encoding="utf-8"))
            if "failure" in data:
                raise GraderFailed(data["failure"])
            results = {task: tuple(value) for task, value in data["results"].items()}
            return Row(name, results, sandbox.row_note(box), data["error"])
        raise GraderFailed(f"its grader worker failed: {problem or 'no outcome written'}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------- grading a class (the Dask client)


@contextlib.contextmanager
def connect(scheduler, jobs):
    """A Dask client: on the running cluster at scheduler, or on a LocalCluster of `jobs` worker processes it starts."""
    import dask
    from distributed import Client, LocalCluster

    dask.config.set({"distributed.scheduler.allowed-failures": MAX_TRIES - 1})  # then the task fails: "worker lost"
    if scheduler:
        with Client(scheduler, timeout="20s") as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=jobs,
            threads_per_worker=1,
            processes=True,
            memory_limit=0,
            silence_logs=logging.ERROR,
            dashboard_address="127.0.0.1:0",
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def serve(scheduler, jobs=1, log=None, unsandboxed=False):
    """Grade for the Dask cluster at scheduler on this machine, until stopped: `jobs` single-threaded Dask worker
    processes (dask's own `dask worker`, run from here so that its workers can import this lab's grader). Raises
    GraderUnusable where bubblewrap is missing, unless unsandboxed."""
    from distributed.cli.dask_worker import main as dask_worker

    for line in sandbox.describe(local_sandbox(jobs), sandbox.Limits()):  # the default limits; each task has its own
        print(line, file=log or sys.stderr, flush=True)
    preflight.refuse_unsandboxed(local_sandbox(jobs), unsandboxed)
    arguments = [scheduler, "--nthreads", "1", "--nworkers", str(jobs), "--memory-limit", "0", "--no-dashboard"]
    dask_worker.main(arguments, standalone_mode=False)


def grade(
    path,
    jobs=1,
    timeout=600,
    out=None,
    force=False,
    scheduler=None,
    quiet=False,
    lab_dir=LAB_DIR,
    limits=None,
    log=None,
    unsandboxed=False,
):
    """Grade every notebook at path on Dask, write the tables and feedback; return (rows, tasks, csv path, markdown path).

    Raises GraderUnusable, writing nothing, where bubblewrap is missing (unless unsandboxed), where the pre-flight
    notebook fails, or when the grader fails on several submissions in a row (grading/preflight.py)."""
    log = log or sys.stderr
    say = (lambda *args: None) if quiet else (lambda text: print(text, file=log, flush=True))
    path = Path(path)
    notebooks, skipped = find_notebooks(path)
    root = path if path.is_dir() else path.parent
    names, name_warnings = name_submissions(notebooks, root)
    csv_path, md_path = table_paths(path, out)
    ensure_writable(csv_path.parent)
    tasks = load_tasks(lab_dir)
    if skipped:
        print(
            f"Skipped {len(skipped)} file(s) that are not notebooks: {', '.join(str(p.relative_to(root)) for p in skipped)}",
            file=log,
        )
    for warning in name_warnings:
        print(f"Warning: {warning}", file=log)
    limits = limits or sandbox.Limits()
    if scheduler is None:
        for line in sandbox.describe(local_sandbox(jobs), limits):
            print(line, file=log)
        preflight.refuse_unsandboxed(local_sandbox(jobs), unsandboxed)
    store = Store(csv_path.parent)
    grader = fingerprint(lab_dir, tasks, timeout, scheduler is not None or local_sandbox(jobs).complete)
    keys = {name: key(nb, name, grader) for name, nb in zip(names, notebooks)}
    rows = {name: store.get(keys[name]) for name in names} if not force else {}
    todo = [(name, nb) for name, nb in zip(names, notebooks) if rows.get(name) is None]
    kept = len(names) - len(todo)
    where = f"on the Dask cluster at {scheduler}" if scheduler else f"{jobs} at a time"
    print(
        f"Grading {len(todo)} notebook(s), {where}, {timeout:g} s each at most"
        + (f"; {kept} unchanged since the last run kept (--force regrades them)." if kept else "."),
        file=log,
    )
    if todo:
        with connect(scheduler, jobs) as client:
            link = dashboard(client)
            if link:
                say(f"Dask dashboard: {link}")
            task = remote(grade_task)
            say("Pre-flight: grading a trivial notebook exactly as the submissions will be graded.")
            preflight.check(client, task, tasks, timeout, limits)
            futures = {
                client.submit(
                    task,
                    name,
                    nb.read_bytes(),
                    tasks,
                    timeout,
                    tuple(limits),
                    key=f"grade-{keys[name]}",
                    pure=False,
                    retries=GRADER_RETRIES,
                ): name
                for name, nb in todo
            }
            progress, streak = Progress(len(todo), say), preflight.Streak()
            try:
                for future in as_completed(futures):
                    name = futures[future]
                    row, failure = collect(future, name, tasks)
                    if row.graded:
                        store.put(keys[name], row)  # kept at once: a killed run loses nothing finished
                    rows[name] = row
                    progress.done(name, f"{row.total}/{len(tasks)}" if row.graded else f"not graded ({row.note})")
                    streak.add(name, failure)
            except (KeyboardInterrupt, GraderUnusable):
                client.cancel(list(futures))
                raise
    ordered = sorted(rows.values(), key=lambda row: row.name)
    write_reports(ordered, tasks, csv_path, md_path)
    return ordered, tasks, csv_path, md_path


def dashboard(client):
    """The address of the cluster's dashboard, or "" when it has none (a scheduler started with --no-dashboard
    still reports a dashboard port: the page is asked for to be sure)."""
    import urllib.request

    try:
        link = client.dashboard_link
        with urllib.request.urlopen(link, timeout=5) as page:
            return link if page.status == 200 else ""
    except Exception:  # no link, no page, or no answer
        return ""


def as_completed(futures):
    """Dask futures in the order they finish."""
    from distributed import as_completed as dask_as_completed

    return dask_as_completed(list(futures))


def collect(future, name, tasks):
    """(the Row a finished task returned, "") or, where the grader failed on it, ("not graded" Row, why): its kernel
    never started or its worker died on every try, or a grader bug (which must not stop the others)."""
    from distributed import KilledWorker

    try:
        return Row.from_json(future.result()), ""
    except KilledWorker:
        failure = f"worker lost: the worker grading it died {MAX_TRIES} times"
    except GraderFailed as err:
        failure = f"{err} ({GRADER_RETRIES + 1} tries)"
    except Exception as err:
        failure = report.one_line(err)
    return ungraded(name, tasks, f"the grader failed: {report.one_line(failure)}"), failure


class Progress:
    """Done / total with a bar, elapsed time and ETA, one line per finished submission."""

    def __init__(self, total, say):
        self.total, self.count, self.say, self.start = total, 0, say, time.monotonic()

    def done(self, name, status):
        """Report one more finished submission."""
        self.count += 1
        elapsed = time.monotonic() - self.start
        eta = elapsed / self.count * (self.total - self.count)
        bar = "#" * round(20 * self.count / self.total)
        self.say(
            f"[{self.count}/{self.total}] [{bar:<20}] {name}: {status} · elapsed {minutes(elapsed)} · ETA {minutes(eta)}"
        )


def minutes(seconds):
    """Seconds as '3 min 05 s' or '42 s'."""
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s" if seconds >= 60 else f"{seconds:.0f} s"


def report_paths(csv_path):
    """Where the class report goes: report.html and summary.md beside grades.csv (with its prefix, if any)."""
    prefix = csv_path.name.removesuffix(f"{TABLE_STEM}.csv")
    return tuple(csv_path.with_name(prefix + name) for name in REPORT_FILES)


def write_reports(rows, tasks, csv_path, md_path):
    """Write grades.csv, grades.md, the class report and feedback/NAME.md and .html for each submission, each
    atomically."""
    from grading import classreport
    from run_notebook import write_atomic

    write_atomic(csv_path, report.to_csv(rows, tasks).encode("utf-8"))
    write_atomic(md_path, report.to_markdown(rows, tasks).encode("utf-8"))
    html_path, summary_path = report_paths(csv_path)
    write_atomic(html_path, classreport.to_report_html(rows, tasks).encode("utf-8"))
    write_atomic(summary_path, classreport.to_summary_markdown(rows, tasks).encode("utf-8"))
    feedback = csv_path.parent / FEEDBACK_DIR
    for row in rows:
        write_atomic(feedback / f"{row.name}.md", report.feedback_markdown(row, tasks).encode("utf-8"))
        write_atomic(feedback / f"{row.name}.html", report.feedback_html(row, tasks).encode("utf-8"))
