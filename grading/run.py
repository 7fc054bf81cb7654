"""Grading a folder of submissions: find them, grade each new one in a worker process, keep each result
as it finishes, and write the class table and every student's feedback."""

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
import zlib
from pathlib import Path

from grading import admit, challenge, execute, gradebook, leaderboard, preflight, report, sandbox, worker
from grading.admit import FEEDBACK_DIR, NotGradable, UsageError  # noqa: F401  (the grader's errors, named here too)
from grading.outputs import Folder
from grading.preflight import GraderFailed, GraderUnusable
from grading.report import ERROR, Row, ungraded
from grading.store import Store, fingerprint, place, secret
from grading.store import key as store_key
from grading.text import file_stem

LAB_DIR = Path(__file__).resolve().parent.parent
TABLE_STEM = "grades"
REPORT_FILES = ("report.html", "summary.md")  # the class report, beside the tables
TABLE_FILE = re.compile(  # what this grader wrote earlier
    rf"(.+-)?({TABLE_STEM}\.(csv|md)|report\.html|summary\.md|leaderboard\.(csv|html)|({'|'.join(gradebook.EXPORTS)})\.csv)"
)
STILL_CHANGING = "not graded yet: the notebook was still changing; the live board grades it once it holds still"
KEY_NAME = "answer key"  # the --key notebook's name in the store and the console: never a student row
WORKER_MARGIN_S = 180  # kernel start and shutdown, and the judging (with its first Keras import), on top of the notebook's own time limit
MAX_TRIES = 3  # a submission whose Dask worker dies this many times is "not graded: worker lost"
GRADER_RETRIES = 1  # more tries for a submission whose job failed as the grader might, each after a canary that passed
WORKER_MEMORY = 12 * 2**30  # address space of one grader worker (the trusted side: judging loads TensorFlow)


# ---------------------------------------------------------------- finding submissions


def is_ignored(relative):
    """What the grader wrote beside the submissions before: the feedback folder and its tables (admit.find skips
    hidden files and folders, .ipynb_checkpoints and .grades among them, and __pycache__ itself)."""
    return relative.parts[0] == FEEDBACK_DIR or TABLE_FILE.fullmatch(relative.name) is not None


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


def leaderboard_paths(csv_path):
    """Where the challenge's leaderboard goes: leaderboard.csv and .html beside grades.csv (with its prefix, if any)."""
    prefix = csv_path.name.removesuffix(f"{TABLE_STEM}.csv")
    return tuple(csv_path.with_name(prefix + name) for name in (leaderboard.CSV_FILE, leaderboard.HTML_FILE))


def check_outputs(csv_path, md_path, names=()):
    """Before grading: open the tables' folder (made if missing) and prove a file can be written there; raise
    UsageError, having written nothing, where it cannot be or where an output name in it (the tables, the class report,
    feedback/, and in it each submission's feedback files: names) is a link or not what the grader writes there
    (outputs.Folder)."""
    with Folder.open(csv_path.parent) as folder:
        exports = gradebook.export_paths(csv_path).values()
        for path in (csv_path, md_path, *report_paths(csv_path), *leaderboard_paths(csv_path), *exports):
            folder.check(path.name)
        folder.check(FEEDBACK_DIR, folder=True)
        check_feedback(folder, names)
        probe = f".grade-probe-{os.getpid()}"
        try:
            folder.write(probe, b"")
            os.unlink(probe, dir_fd=folder.fd)
        except OSError as err:
            raise UsageError(
                f"Cannot write the grade tables to {folder.path}: {err.strerror or err}. "
                "Pass --out with a folder you can write to."
            ) from None


def check_feedback(folder, names):
    """Raise UsageError where feedback/ in folder holds, under a name the grader will write a submission's feedback to,
    a link or anything but a regular file."""
    try:
        fd = os.open(FEEDBACK_DIR, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=folder.fd)
    except FileNotFoundError:
        return
    with Folder(fd, folder.path / FEEDBACK_DIR) as feedback:
        for name in names:
            for suffix in (".md", ".html"):
                feedback.check(f"{file_stem(name)}{suffix}")


def load_tasks(lab_dir=LAB_DIR):
    """Return checks.TASKS, the keys of the CHECKS table in the lab's checks/tasks.py, read without importing the
    checks: they import Keras and TensorFlow (8 s of CPU), which only the grader workers that judge need."""
    import ast

    source = Path(lab_dir) / "checks" / "tasks.py"
    if not (Path(lab_dir) / "checks" / "__init__.py").is_file() or not source.is_file():
        raise UsageError(
            f"{source.parent} is missing or incomplete: the grader needs the lab's checks package "
            "(the folder checks/) beside helpers.py."
        )
    for node in ast.parse(source.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and [getattr(target, "id", "") for target in node.targets] == ["CHECKS"]:
            return tuple(ast.literal_eval(key) for key in node.value.keys)
    raise UsageError(f"{source} has no CHECKS table: the grader reads the lab's tasks from it.")


# ---------------------------------------------------------------- grading one submission (on a Dask worker)


class Workers:
    """The grader worker processes (grading/worker.py) of this process: one per thread, kept between jobs."""

    def __init__(self):
        self.idle, self.lock = {}, threading.Lock()  # (thread, lab) -> (process, jobs it has done)
        self.busy = set()  # the processes grading a job now
        self.stopping = False  # set by stop(): no worker starts until resume() (a job's canary included)

    def run(self, folder, timeout, lab_dir, private_mounts=False, challenge_=None):
        """Have a grader worker grade the job in folder under a hard time limit, handing it challenge_ (the challenge's
        settings) on its standard input; return None, or what went wrong."""
        key = (threading.get_ident(), str(lab_dir), private_mounts)
        with self.lock:
            if self.stopping:  # the run is being stopped (Ctrl-C): no new worker, no canary
                return "the grader is stopping"
            proc, done = self.idle.pop(key, (None, 0))
        if proc is None or proc.poll() is not None:
            proc, done = start_worker(lab_dir, private_mounts), 0
        with self.lock:
            self.busy.add(proc)
        try:
            problem = ask(proc, folder, timeout + WORKER_MARGIN_S, challenge_)
        finally:
            with self.lock:
                self.busy.discard(proc)
        if problem is None and done + 1 < worker.MAX_JOBS:
            with self.lock:
                self.idle[key] = (proc, done + 1)
        else:
            kill(proc)
            proc.wait()
        return problem

    def resume(self):
        """Let workers start again (a new local cluster of this process, after an earlier one was stopped)."""
        with self.lock:
            self.stopping = False

    def stop(self):
        """Kill every grader worker, busy or idle, and start none until resume(): a job one was grading ends at once,
        and its thread tries no canary."""
        with self.lock:
            self.stopping = True
            procs = [*self.busy, *(proc for proc, _ in self.idle.values())]
            self.idle.clear()
        for proc in procs:
            kill(proc)


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


def ask(proc, folder, limit, challenge_=None):
    """Send proc the job in folder, with challenge_ (the challenge's settings: through the pipe, never the job's folder,
    which a kernel graded unsandboxed may reach), and wait up to limit seconds for it to say it is done; None, or
    what went wrong."""
    try:
        proc.stdin.write(json.dumps({"folder": str(folder), "challenge": challenge_}) + "\n")
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
    stay within WORKER_MEMORY, so that whatever a kernel sends it cannot take the machine's memory, and make its
    files private (umask 077: a job's folder, which a kernel graded unsandboxed as root passes through, lists
    nothing, and no file in it is readable by another job's kernel)."""
    import ctypes
    import resource

    os.umask(0o077)
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


def grade_task(name, notebook, tasks, timeout, limits, kernel_log=False, challenge=None):
    """The Dask task: grade one submission (its bytes) on this machine, in this machine's lab; return its Row as
    plain data (Row.to_json), as limits (a tuple) came: nothing of the lab travels through the scheduler. Raises
    GraderFailed when the grader failed on it (Dask then tries it again). challenge: the challenge's settings
    (grading.challenge.settings: its seed travels to the worker as the task's argument, then on the grader worker's
    standard input, never in a file), or None: not run."""
    with sandbox.leased_slot(worker_slot()) as slot:
        settings = {
            "sandbox": local_sandbox(slot + 1),
            "timeout": timeout,
            "lab_dir": LAB_DIR,
            "limits": sandbox.Limits(*limits),
            "challenge": challenge,
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
    """Grade one submission (the notebook's bytes) on this machine; return its Row, or raise GraderFailed where the
    grader is at fault. kernel_log: keep the kernel's own output, to say it on failure (trusted notebooks only: the
    pre-flight and the canary, which are never tried again).

    Whose fault a failure is, is decided by experiment: where the job failed in a way that could be the grader's (its
    kernel never started, its worker died or hung holding nothing of the submission), the pre-flight's trivial
    notebook is graded again here (canary); if that fails too, the grader is at fault (GraderFailed: the run stops).
    If it passes, the submission is tried again (GRADER_RETRIES), and failing so every time is its own error."""
    for _ in range(GRADER_RETRIES + 1):
        try:
            return grade_job(name, notebook, tasks, settings, slot, kernel_log)
        except GraderFailed as err:
            if kernel_log or WORKERS.stopping:  # a trusted notebook, or the run being stopped: nothing to decide
                raise
            failure, broken = err, canary(tasks, settings, slot)
            if broken:
                raise GraderFailed(
                    f"{err}; and the pre-flight's trivial notebook, graded again on this machine, failed too: {broken}"
                ) from None
    why = (
        f"the grader could not grade this notebook ({report.one_line(failure)}), though it grades the pre-flight's "
        f"trivial notebook on the same machine ({GRADER_RETRIES + 1} tries)"
    )
    return Row(name, {task: (ERROR, why) for task in tasks}, sandbox.row_note(settings["sandbox"]), "").clean()


def canary(tasks, settings, slot):
    """Grade the pre-flight's trivial notebook on this machine as a submission is: "" where every task came back
    "not attempted", else what went wrong."""
    try:
        row = grade_job("canary", preflight.trivial_notebook(), tasks, {**settings, "challenge": None}, slot, True)
    except GraderFailed as err:
        return str(err)
    return preflight.unexpected(row)


def grade_job(name, notebook, tasks, settings, slot, kernel_log=False):
    """Grade one notebook once, in a fresh job folder through a worker process; return its Row, or raise GraderFailed
    where the job failed before its kernel answered (the grader's failure, or not: grade_one's canary decides)."""
    folder = Path(tempfile.mkdtemp(prefix="grade-"))  # private to the grader (0700): the kernel never sees it
    try:
        (folder / "submission.ipynb").write_bytes(notebook)  # parsed once, by the worker (admit.parse)
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
        }  # no secret in it: the job's folder is open to its kernel's user where there are no namespaces
        with sandbox.job_group(box, settings["limits"]) as group:
            job["group"] = group and group.name
            (folder / "job.json").write_text(json.dumps(job), encoding="utf-8")
            guarded = challenge.for_box(settings.get("challenge"), box)
            problem = WORKERS.run(folder, settings["timeout"], settings["lab_dir"], box.space, guarded)
        outcome = folder / "outcome.json"
        if problem is None and outcome.is_file():
            data = json.loads(outcome.read_text(encoding="utf-8"))
            if "failure" in data:
                raise GraderFailed(data["failure"])
            return finished(name, data, data.get("note") or sandbox.row_note(box))
        held = died_holding(folder, name, tasks, problem or "no outcome written", box)
        if held is not None:
            return held
        raise GraderFailed(f"its grader worker failed: {problem or 'no outcome written'}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def finished(name, data, note):
    """The clean Row of a job its worker finished (outcome.json's data). What the kernel reported is the submission's:
    where its challenge entry breaks the row's cleaning (a number past a float's range, say), the entry is refused
    with the reason; where the verdicts do, every task is its error."""
    results = {task: tuple(value) for task, value in data["results"].items()}
    try:
        return Row(name, results, note, data["error"], data.get("challenge")).clean()
    except Exception as err:
        why = f"the grader stopped on what this notebook reported ({type(err).__name__}: {report.one_line(err)[:200]})"
    try:
        return Row(name, results, note, data["error"], {"status": report.REFUSED, "rule": why}).clean()
    except Exception:
        return Row(name, {task: (ERROR, why) for task in results}, note, "").clean()


def died_holding(folder, name, tasks, problem, box):
    """The Row of a job whose grader worker died or hung while it held the submission's input (execute.HOLDING: its
    notebook, its kernel's client's answers and exports, from the kernel's start to its stop): the submission's error,
    keeping the verdicts decided before; None where it held none of it (before the kernel answered): then the failure
    may be the grader's (grade_one's canary decides)."""
    try:
        progress = json.loads((folder / execute.PROGRESS).read_text(encoding="utf-8"))
        doing, decided = execute.HOLDING.get(progress["stage"]), progress["results"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if doing is None:
        return None
    why = (
        ERROR,
        f"the grader stopped while {doing} ({problem}): what the notebook did went past the grader's own limits",
    )
    results = {task: tuple(decided[task]) if task in decided else why for task in tasks}
    return Row(name, results, sandbox.row_note(box), "").clean()


# ---------------------------------------------------------------- grading a class (the Dask client)


@contextlib.contextmanager
def connect(scheduler, jobs):
    """A Dask client: on the running cluster at scheduler, or on a LocalCluster of `jobs` worker threads it starts."""
    import dask
    from distributed import Client, LocalCluster

    dask.config.set({"distributed.scheduler.allowed-failures": MAX_TRIES - 1})  # then the task fails: "worker lost"
    if scheduler:
        with Client(scheduler, timeout="20s") as client:
            yield client
        return
    try:
        with (
            LocalCluster(
                n_workers=jobs,
                threads_per_worker=1,
                processes=False,
                memory_limit=0,
                silence_logs=logging.ERROR,
                dashboard_address=None,
            ) as cluster,
            Client(cluster) as client,
        ):
            try:
                yield client
            finally:  # its workers are threads of this process: a job one waits on (Ctrl-C) must end now
                WORKERS.stop()
    finally:  # the cluster closed: a later run (or grade_one called directly) may start workers again
        WORKERS.resume()


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
    key=None,
    pseudonyms=False,
    book_files=None,
    live=None,
    preflight_first=True,
    hold=(),
):
    """Grade every notebook at path on Dask, write the tables and feedback; return (rows, tasks, csv path, markdown path).

    book_files (gradebook.Files): the instructor's roster and overrides, read and matched before anything is graded
    (UsageError, writing nothing, where one is malformed), applied to the rows, and the gradebook exports to write.

    A notebook that calls check("challenge") has its entry run on the hidden set (grading/challenge.py); where any
    did, the leaderboard goes beside the tables (grading/leaderboard.py), with the reference rows, the answer key's
    (key: a notebook graded like a submission with its core DAE, never a row of the tables) among them, and students
    shown by pseudonym where pseudonyms is true; the console shows it too. live: the board is the lesson's (the hidden
    set's public part, its page reloading itself every `live` seconds: grading/live.py) and is rewritten after each
    entry; else it is the final ranking. preflight_first: grade the pre-flight notebook before the submissions (a
    live board's later rounds, on the same machine, skip it). hold: names of submissions still changing (the live
    watch's): not graded this time, their rows say so.

    Raises GraderUnusable, writing nothing, where bubblewrap is missing (unless unsandboxed) or where the pre-flight
    notebook fails; when the grader fails on a submission and then on the pre-flight's notebook graded again on the
    same machine (grade_one's canary), it raises it after writing the rows decided so far, the others "not graded"."""
    log = log or sys.stderr
    say = (lambda *args: None) if quiet else (lambda text: print(text, file=log, flush=True))
    found = admit.find(path, is_ignored)
    csv_path, md_path = table_paths(path, out)
    tasks = load_tasks(lab_dir)
    book = gradebook.prepare(book_files, found.submissions, tasks, log)
    check_outputs(csv_path, md_path, [sub.name for sub in found.submissions])
    key_sub = answer_key(key)
    if found.skipped:
        print(f"Skipped {len(found.skipped)} file(s) that are not notebooks: {', '.join(found.skipped)}", file=log)
    for warning in admit.shared_names(found.submissions):
        print(f"Warning: {warning}", file=log)
    alike = admit.alike(found.submissions)
    limits = limits or sandbox.Limits()
    if scheduler is None:
        for line in sandbox.describe(local_sandbox(jobs), limits):
            print(line, file=log)
        preflight.refuse_unsandboxed(local_sandbox(jobs), unsandboxed)
    store = open_store(found, csv_path.parent, log)
    entry_settings = challenge.settings(store.secret)
    names = [report.Row(sub.name, {}).clean().name for sub in found.submissions]
    shown = leaderboard.pseudonyms(names, store.secret) if pseudonyms else {}
    grader = fingerprint(lab_dir, tasks, timeout, scheduler is not None or local_sandbox(jobs).complete)
    admitted = [sub for sub in found.submissions if not sub.refused]
    keys = {sub.name: store_key(sub.data, sub.name, grader) for sub in admitted}
    rows = {sub.name: ungraded(sub.name, tasks, sub.refused) for sub in found.submissions if sub.refused}
    if not force:
        rows.update({sub.name: store.get(keys[sub.name]) for sub in admitted})
    rows.update({sub.name: ungraded(sub.name, tasks, STILL_CHANGING) for sub in admitted if sub.name in hold})
    todo = [sub for sub in admitted if rows.get(sub.name) is None]
    kept = len(admitted) - len(todo)
    key_row, key_key = None, key_sub and store_key(key_sub.data, KEY_NAME, f"{grader}-reference")
    if key_sub is not None and not force:
        key_row = store.get(key_key)
    where = f"on the Dask cluster at {scheduler}" if scheduler else f"{jobs} at a time"
    print(
        f"Grading {len(todo)} notebook(s), {where}, {timeout:g} s each at most"
        + (f"; {kept} unchanged since the last run kept (--force regrades them)." if kept else "."),
        file=log,
    )
    if todo or (key_sub is not None and key_row is None):
        with connect(scheduler, jobs) as client:
            link = dashboard(client)
            if link:
                say(f"Dask dashboard: {link}")
            task = remote(grade_task)
            if preflight_first:
                say("Pre-flight: grading a trivial notebook exactly as the submissions will be graded.")
                preflight.check(client, task, tasks, timeout, limits)
                say("Pre-flight passed: grading the submissions.")
            futures = {
                client.submit(
                    task,
                    sub.name,
                    sub.data,
                    tasks,
                    timeout,
                    tuple(limits),
                    False,
                    entry_settings,
                    key=f"grade-{keys[sub.name]}",
                    pure=False,
                ): sub.name
                for sub in todo
            }
            if key_sub is not None and key_row is None:
                reference = {**entry_settings, "reference": True}
                arguments = (KEY_NAME, key_sub.data, tasks, timeout, tuple(limits), False, reference)
                futures[client.submit(task, *arguments, key=f"grade-{key_key}", pure=False)] = None
            progress = Progress(len(futures), say)
            try:
                for future in as_completed(futures):
                    name = futures[future]
                    if name is None:  # the answer key: a reference, never a row
                        key_row = collect(future, KEY_NAME, tasks)
                        if key_row.graded:
                            store.put(key_key, key_row)
                        progress.done(KEY_NAME, f"{key_row.total}/{len(tasks)}, challenge {challenge_text(key_row)}")
                        continue
                    row = collect(future, name, tasks)
                    if row.graded:
                        store.put(keys[name], row)  # kept at once: a killed run loses nothing finished
                    rows[name] = row
                    said = f"{row.total}/{len(tasks)}" if row.graded else f"not graded ({row.note})"
                    if row.clean().challenge:
                        said += f", challenge {challenge_text(row, bool(live))}"
                    progress.done(shown.get(row.clean().name, name), said)
                    if live:  # the class sees each entry as it is scored
                        known = sorted((row.clean() for row in rows.values() if row), key=lambda row: row.name)
                        lines = board_lines(known, key_row, entry_settings, shown, log, True)
                        publish(csv_path, lines, board_page(entry_settings, live))
            except KeyboardInterrupt:
                client.cancel(list(futures))
                raise
            except GraderUnusable:  # the grader's own failure: what it decided is written, the rest not graded
                client.cancel(list(futures))
                stopped = gradebook.apply(book, ungraded_rest(rows, found.submissions, tasks), tasks)
                write_reports(stopped, tasks, csv_path, md_path, alike, book=book)
                raise
    ordered = sorted((row.clean() for row in rows.values()), key=lambda row: row.name)
    lines = board_lines(ordered, key_row, entry_settings, shown, log, bool(live))
    table = gradebook.apply(book, ordered, tasks)  # the roster's students and order, the instructor's verdicts
    write_reports(table, tasks, csv_path, md_path, alike, lines, book, board_page(entry_settings, live))
    if lines:
        say(
            f"The challenge's {'live board (public part)' if live else 'final ranking'}: {leaderboard.summary_text(lines)}"
        )
        for line in leaderboard.to_text(lines):
            say(line)
    return gradebook.noted(marked(table, alike), book), tasks, csv_path, md_path


def answer_key(path):
    """The --key notebook as admitted (admit.find), or None without one; UsageError where it is not a notebook."""
    if path is None:
        return None
    found = admit.find(path)
    if len(found.submissions) != 1 or Path(path).is_dir():
        raise UsageError(f"--key takes one notebook (the answer key, solution.ipynb), not {path}.")
    sub = found.submissions[0]
    if sub.refused:
        raise UsageError(f"--key {path} cannot be graded: {sub.refused}")
    return sub


def challenge_text(row, public=False):
    """The challenge's result of a row, for a progress line: with public, a scored entry's public part's score (what
    the live board shows: the final one stays out of sight during the lesson)."""
    entry = row.clean().challenge
    if public and entry and entry["status"] == report.SCORED:
        return f"{leaderboard.scores(entry, public=True)[0]:.2f} dB (public part)"
    return report.challenge_text(entry)


def board_lines(rows, key_row, settings, shown=None, log=None, public=False):
    """The leaderboard's lines (leaderboard.board) where some row or the key has a challenge entry, else None; the
    reference rows (challenge.references: the hidden set drawn here, in the grader) among them, students shown as
    shown says ({name: pseudonym}, leaderboard.pseudonyms), scored on the hidden set's public part where public."""
    if not any(row.challenge for row in rows) and not (key_row is not None and key_row.clean().challenge):
        return None
    try:
        references = challenge.references(settings["seed"], settings["count"], public)
    except Exception as err:  # the data cannot be loaded here: the board goes without its references
        print(f"Warning: the leaderboard's reference rows could not be computed ({report.one_line(err)}).", file=log)
        references = []
    return leaderboard.board(rows, references, key_row and key_row.clean(), shown, public)


def board_page(settings, live=None):
    """The board page's title, note and refresh (leaderboard.to_html): the live board's part of the hidden set and its
    reload every `live` seconds, or the final ranking's part."""
    public, private = (len(part) for part in challenge.split(settings["count"]))
    if live:
        note = (
            f", its public part ({public:,} of its {settings['count']:,} images; the final ranking scores the others)"
        )
        return {"title": "Class challenge: live board", "note": note, "refresh": live}
    note = f", its final part ({private:,} of its {settings['count']:,} images; the live board scored the others)"
    return {"title": leaderboard.TITLE, "note": note}


def publish(csv_path, lines, page):
    """Rewrite the board alone (leaderboard.csv and .html beside the tables; page: board_page) with lines, if any."""
    if lines is not None:
        with Folder.open(csv_path.parent) as folder:
            leaderboard.write(folder, lines, leaderboard_paths(csv_path), **page)


def ungraded_rest(rows, submissions, tasks):
    """The rows decided so far (clean), and a "not graded" row for each submission not decided when the run stopped."""
    why = "not graded: the run was stopped by the grader's own failure before this notebook was graded"
    return [rows[sub.name].clean() if rows.get(sub.name) else ungraded(sub.name, tasks, why) for sub in submissions]


def open_store(found, tables, log):
    """The class's results store (store.locate: never inside the submissions folder), saying on log that any
    store-looking folder found among the submissions is ignored."""
    base, names = place(found.root, tables)
    folder = base.joinpath(*names)
    for planted in found.stores:
        print(
            f"Ignoring {planted}/ in the submissions folder: results are kept where students cannot write ({folder}).",
            file=log,
        )
    return Store(folder, secret(), base)


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
    """The Row a finished task returned, or a "not graded" Row where its Dask worker died on every try or the grader
    failed outside the job (a bug, which must not stop the others). Raises GraderUnusable where the grader is at fault:
    the job failed as the grader might and the canary failed too (grade_one)."""
    from distributed import KilledWorker

    try:
        return Row.from_json(future.result())
    except GraderFailed as err:
        raise GraderUnusable(
            f"stopped: the grader failed on {name} and then on the pre-flight's trivial notebook graded on the same "
            "machine, so the fault is the grader's; only the grades decided before it stopped were written, the rest "
            f"'not graded'. Cause: {report.one_line(err)}\n{preflight.FIX}"
        ) from None
    except KilledWorker:
        failure = f"worker lost: the worker grading it died {MAX_TRIES} times"
    except Exception as err:
        failure = report.one_line(err)
    return ungraded(name, tasks, f"the grader failed: {report.one_line(failure)}")


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


def write_reports(rows, tasks, csv_path, md_path, alike=None, lines=None, book=None, page=None):
    """Write grades.csv, grades.md, the class report and feedback/STEM.md and .html for each submission (STEM:
    text.file_stem of its name), each atomically, through the folders' descriptors (outputs.Folder: no link followed;
    a link or a file of the wrong kind in an output's place is refused, UsageError, before anything is written).
    alike: {name: [names that look like it]} (admit.alike), marked in the tables' notes and the class report (not in
    the feedback: a student's page names no one else). lines: the challenge's leaderboard (board_lines), written
    beside the tables where given (page: its to_html options, board_page), each scored student's feedback then saying
    their rank and the best score (of the final ranking). book (gradebook.Book): its notes for the instructor in the
    tables and the class report, its exports beside them; a roster student's row without a submission gets no
    feedback."""
    from grading import classreport

    shown = gradebook.noted(marked(rows, alike or {}), book)
    standings = leaderboard.standing(rows) if lines is not None else {}
    html_path, summary_path = report_paths(csv_path)
    with Folder.open(csv_path.parent) as folder:
        for path in (csv_path, md_path, html_path, summary_path):
            folder.check(path.name)
        with folder.folder(FEEDBACK_DIR) as feedback:
            folder.write(csv_path.name, report.to_csv(shown, tasks).encode("utf-8"))
            folder.write(md_path.name, report.to_markdown(shown, tasks).encode("utf-8"))
            folder.write(html_path.name, classreport.to_report_html(shown, tasks, alike, book).encode("utf-8"))
            folder.write(summary_path.name, classreport.to_summary_markdown(shown, tasks, alike, book).encode("utf-8"))
            gradebook.write_exports(folder, book, rows, tasks, csv_path)
            if lines is not None:
                leaderboard.write(folder, lines, leaderboard_paths(csv_path), **(page or {}))
            for row in filter(lambda row: row.submitted, rows):
                stem = file_stem(row.name)  # a plain name as it is, any other a short slug and a hash: no bad file name
                standing = standings.get(row.name)
                feedback.write(f"{stem}.md", report.feedback_markdown(row, tasks, standing).encode("utf-8"))
                feedback.write(f"{stem}.html", report.feedback_html(row, tasks, standing).encode("utf-8"))


def marked(rows, alike):
    """The rows, each whose name looks like another's (alike) with a note naming the others."""
    return [
        row._replace(note="; ".join(filter(None, [row.note, f"name looks like {', '.join(alike[row.name])}"])))
        if alike.get(row.name)
        else row
        for row in rows
    ]
