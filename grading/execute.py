"""Executing one submission: its cells in a sandboxed kernel, an export after each check call, verdicts here.

Runs in a grader worker process (trusted, outside the sandbox). The kernel only ever runs the
submission's own cells and `grading.export.save`; every verdict is decided in this process by
`checks.judge` from the exported data, read by `grading.export.load` (bounded: export.MAX_TOTAL_BYTES).
The kernel's messages never reach this process: nbclient and jupyter_client receive and parse them in the kernel's
client process (grading/client.py), inside the job's control group and memory limit, which answers each cell with
one JSON line of at most client.MAX_ANSWER_BYTES (KernelClient).

Attribution: until the kernel has answered (its start), a failure may be the grader's (GraderFailure: run.grade_one
then grades the pre-flight's trivial notebook on the same machine to decide). From then on, whatever goes wrong with
the job (any exception here, the client process dying, hanging or failing on what the kernel sent, a full or locked
folder) is the submission's: its row keeps the verdicts decided before and says what stopped it (stopped_by). No list
of exception types decides blame; the type only chooses the words.
"""

import ast
import contextlib
import io
import json
import math
import os
import re
import select
import shutil
import textwrap
import time
import tokenize

from grading import cgroups, client, export, sandbox
from grading.report import ERROR, NOT_GRADED, TIMED_OUT

TASK_NAME = re.compile(r"\w+")  # what a check call's task may be (checked whole, on one string: no backtracking)
MAX_PLANNED_CHARS = 2**21  # of all of one notebook's cells parsed to plan it (about 20 s of ast at worst, measured)
MAX_CELL_CHARS = 2**18  # a cell longer is never parsed (ast takes up to ~350 bytes a character); the key's are < 10 kB
MAX_DETAIL_CHARS = 4000  # of a cell's traceback kept for the student's feedback
ANSI = re.compile(r"\x1b\[[0-9;]*m")
PROGRESS = "progress.json"  # in the job folder: the worker's stage and verdicts so far, read should the worker die
HOLDING = {  # the stages in which a worker holds the submission's input: its death or hang there is the submission's
    "parse": "reading the notebook",
    "plan": "planning the notebook's cells",
    "run": "running the notebook's cells and judging what its kernel exported",
}
CLIENT_MARGIN_S = 30  # on top of a cell's time limit, for the kernel's client to answer (grading/client.py)
ENTRY = "challenge entry"  # a plan step's marker: run and judge the challenge's entry here (entry_step)
OUT_OF_SPACE = ("No space left on device", "Disk quota exceeded", "Not enough free space")  # ENOSPC, EDQUOT, numpy


class GraderFailure(Exception):
    """A job that failed before its kernel answered (the sandbox, the machine, or the grader may be at fault): never
    decided here; run.grade_one grades the pre-flight's trivial notebook on the same machine (the canary) to decide."""


class Job:
    """One submission's run: its folders (work, sockets, /tmp and /dev/shm on its own space where the machine
    allows, handed to the sandbox user), its control group, limits and settings. Close it to unmount its space."""

    def __init__(self, folder, lab_dir, box, slot, limits, timeout, group=None, kernel_log=None):
        self.folder, self.lab_dir, self.sandbox, self.slot = folder, lab_dir, box, slot
        self.limits, self.timeout = limits, timeout
        self.kernel_log = kernel_log  # where the kernel's own output goes: only the grader's trusted pre-flight job
        self.group = cgroups.Group(box.hierarchy, group) if group else None  # made by the grader (sandbox.job_group)
        sandbox.clear(box, slot)
        sandbox.open_way(folder, box, slot)
        self.space = sandbox.Space(folder / "space", limits) if box.space else None
        root = self.space.folder if self.space else folder
        self.work, self.sockets = root / "work", root / "ipc"
        self.scratch = {"/tmp": root / "tmp", "/dev/shm": root / "shm"} if self.space else None
        for path in (self.work, self.sockets, *(self.scratch or {}).values()):
            sandbox.prepare(path, box, slot)
        self.env = sandbox.kernel_env(box, self.work, lab_dir)

    def kernel_settings(self):
        """What the kernel's client process (grading/client.py) needs to start the kernel, as JSON data."""
        box = self.sandbox
        return {
            "sandbox": {
                "users": [list(ids) for ids in box.users],
                "bwrap": box.bwrap,
                "missing": list(box.missing),
                "hierarchy": box.hierarchy and [box.hierarchy.version, list(box.hierarchy.bases)],
                "space": box.space,
            },
            "slot": self.slot,
            "limits": list(self.limits),
            "work": str(self.work),
            "sockets": str(self.sockets),
            "lab_dir": str(self.lab_dir),
            "env": self.env,
            "scratch": self.scratch and {inside: str(path) for inside, path in self.scratch.items()},
            "kernel_log": self.kernel_log and str(self.kernel_log),
        }

    def limit_hit(self):
        """The words for the resource limit this job hit so far (memory, processes, space), or ""."""
        return sandbox.limit_hit(self.limits, self.group, self.space)

    def close(self):
        """Unmount the job's space."""
        if self.space is not None:
            self.space.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ClientFailed(Exception):
    """The kernel's client process failed: it died (its memory limit, say), gave no answer in time, or said something
    out of form, or what the kernel sent broke nbclient there (a forged signature, a message it cannot parse)."""


class KernelClient:
    """The job's kernel and nbclient's client of it, run in a process of their own inside the job's limits
    (grading/client.py), offering run() the calls it makes of nbclient: setup_kernel, execute_cell and timeout. The
    process's answers are single JSON lines of at most client.MAX_ANSWER_BYTES, checked for form here; a cell's outcome
    comes back as the exception nbclient raised for it (CellExecutionError, CellTimeoutError, DeadKernelError)."""

    def __init__(self, job):
        self.job, self.timeout, self.proc = job, job.timeout, None
        self.inputs = None  # the grader's end of the kernel's standard input (challenge.hand_over), while it runs

    @contextlib.contextmanager
    def setup_kernel(self):
        """Start the client process and, in it, the kernel; stop both on leaving. RuntimeError: the kernel did not
        start; ClientFailed: the client process failed."""
        group = self.job.group
        stdin, self.inputs = os.pipe()  # the kernel's standard input: only this process holds the end that writes
        os.set_blocking(self.inputs, False)
        try:
            self.proc = client.start(self.job.kernel_settings(), group.procs_files() if group else (), stdin)
        except BaseException:
            os.close(self.inputs)
            self.inputs = None
            raise
        finally:
            os.close(stdin)  # the client process holds its own copy, for the kernel
        try:
            said = self.answer(client.STARTUP_S)
            if "not_started" in said:
                raise RuntimeError(said["not_started"])
            if said.get("started") is not True:
                raise ClientFailed(f"its client said {sorted(said)} for the kernel's start")
            yield
        finally:
            self.stop()

    def execute_cell(self, cell, index):
        """Run a cell in the kernel within self.timeout seconds, raising as nbclient does for its outcome."""
        from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

        if cell.cell_type != "code" or not cell.source.strip():  # as nbclient: only code runs
            return
        self.send({"source": cell.source, "timeout": self.timeout})
        said = self.answer(self.timeout)
        if "done" in said:
            return
        if "raised" in said:
            ename, evalue, text = said["raised"]
            raise CellExecutionError(text, ename, evalue)
        if "timed_out" in said:
            raise CellTimeoutError(said["timed_out"])
        if "dead" in said:
            raise DeadKernelError(said["dead"])
        raise ClientFailed(f"what the kernel sent broke its client ({said.get('broke', sorted(said))})")

    def send(self, request):
        """Send the client process one request line."""
        try:
            self.proc.stdin.write(json.dumps(request).encode("utf-8") + b"\n")
            self.proc.stdin.flush()
        except (OSError, ValueError):
            raise ClientFailed(self.ended()) from None

    def answer(self, seconds):
        """The client's next answer, as a dict of the known form, within seconds + CLIENT_MARGIN_S; else ClientFailed."""
        limit = seconds + CLIENT_MARGIN_S
        ready, _, _ = select.select([self.proc.stdout], [], [], limit)
        if not ready:
            raise ClientFailed(f"its client gave no answer within {limit:g} s")
        line = self.proc.stdout.readline(client.MAX_ANSWER_BYTES + 1)
        if not line.endswith(b"\n"):
            raise ClientFailed(self.ended() if len(line) <= client.MAX_ANSWER_BYTES else "its client said too much")
        try:
            said = json.loads(line)
        except ValueError:
            said = None
        if not well_formed(said):
            raise ClientFailed("its client's answer was out of form")
        return said

    def ended(self):
        """Words for a client process that stopped answering: its exit status (-9: killed, say at its memory limit)."""
        try:
            status = self.proc.wait(timeout=CLIENT_MARGIN_S)
        except Exception:
            status = "none (it hung)"
        return f"its client ended (exit status {status})"

    def stop(self):
        """Have the client stop the kernel; kill the client if it has not ended within CLIENT_MARGIN_S."""
        with contextlib.suppress(ClientFailed):
            self.send({"stop": True})
        try:
            self.proc.wait(timeout=CLIENT_MARGIN_S)
        except Exception:
            self.proc.kill()
            self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                pipe.close()
        if self.inputs is not None:
            os.close(self.inputs)
            self.inputs = None


def well_formed(said):
    """Whether a client's answer is one of its forms: {done: int}, {raised: [3 texts]}, or one text or flag."""
    if not isinstance(said, dict) or len(said) != 1:
        return False
    ((key, value),) = said.items()
    if key == "raised":
        return isinstance(value, list) and len(value) == 3 and all(isinstance(text, str) for text in value)
    kinds = {
        "done": int,
        "started": bool,
        "stopped": bool,
        "not_started": str,
        "timed_out": str,
        "dead": str,
        "broke": str,
    }
    return key in kinds and isinstance(value, kinds[key])


def note_progress(folder, stage, results=None):
    """Record in the job's folder (the grader's, out of the kernel's reach) the worker's stage and the verdicts decided
    so far, for run.grade_one to read should this worker die: a stage in HOLDING makes its death the submission's."""
    from run_notebook import write_atomic

    write_atomic(folder / PROGRESS, json.dumps({"stage": stage, "results": results or {}}).encode("utf-8"))


def plan_cells(cells, tasks, optional=()):
    """Return ([(cell, None) or (None, tasks to judge here)], tasks whose check call is missing).

    The plan holds the cells up to the last check call, each check call followed by its export and
    judgement; tasks whose check call was deleted are judged after every cell. A cell that does
    nothing but call check is left out: the grader's judgement replaces it. An optional task (the challenge) is
    planned only where the notebook calls its check: a step of its own, (None, [task]), after the tasks its cell
    ends; without the call it is not planned at all and the plan is the core tasks' alone. At most
    MAX_PLANNED_CHARS of the notebook's cells are parsed in all: a cell past that is a plain cell (its check calls
    count as deleted).
    """
    boundaries, only, budget = {}, set(), MAX_PLANNED_CHARS
    for index, cell in enumerate(cells):
        if cell.cell_type == "code":
            source = cell.source
            if "check" in source and len(source) <= min(budget, MAX_CELL_CHARS):
                budget -= len(source)  # what is parsed of one notebook in all is bounded, not only each cell
                called, only_calls = check_calls(source)
            else:
                called, only_calls = [], False
            for task in called:
                if task in tasks or task in optional:
                    boundaries.setdefault(task, index)  # a task's first check call ends it
            if only_calls:
                only.add(index)
    unbounded = [task for task in tasks if task not in boundaries]
    last = len(cells) - 1 if unbounded else max(boundaries.values())
    plan = []
    for index, cell in enumerate(cells[: last + 1]):
        if not (index in boundaries.values() and index in only):
            plan.append((cell, None))
        ending = [task for task in tasks if boundaries.get(task) == index]
        if ending:
            plan.append((None, ending))
        plan.extend((None, [task]) for task in optional if boundaries.get(task) == index)
    if unbounded:
        plan.append((None, unbounded))
    return plan, unbounded


def check_calls(source):
    """([the tasks of the cell's check("task") and x.check("task") calls, in order], whether the cell does nothing
    else). Read with Python's own parser (linear in the cell: no backtracking on student text); a cell that is not
    Python (an IPython magic, a syntax error) is a normal cell whose calls its tokens show. A cell without the word
    "check" is never parsed (so nothing after the last check call is), nor is one over MAX_CELL_CHARS: it is a plain
    cell, and the tasks of any check call in it are judged after every cell, as if the call were deleted."""
    if "check" not in source or len(source) > MAX_CELL_CHARS:
        return [], False
    try:
        tree = ast.parse(textwrap.dedent(source))  # IPython, too, runs a cell indented as a whole
    except Exception:  # SyntaxError, ValueError (a NUL), RecursionError and MemoryError (deep nesting)
        return check_calls_in_tokens(source), False
    calls = sorted(
        (node.lineno, node.col_offset, task) for node in ast.walk(tree) for task in [check_task(node)] if task
    )
    only = bool(tree.body) and all(
        isinstance(stmt, ast.Expr) and check_task(stmt.value) and len(stmt.value.args) == 1 and not stmt.value.keywords
        for stmt in tree.body
    )
    return [task for *_, task in calls], only


def check_task(node):
    """The task of a check("task") or name.check("task") call node, else None."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func, first = node.func, node.args[0]
    named = (isinstance(func, ast.Name) and func.id == "check") or (
        isinstance(func, ast.Attribute) and func.attr == "check" and isinstance(func.value, ast.Name)
    )
    literal = isinstance(first, ast.Constant) and isinstance(first.value, str) and TASK_NAME.fullmatch(first.value)
    return first.value if named and literal else None


def check_calls_in_tokens(source):
    """The tasks of the check("task") calls among the tokens of a cell that is not Python (up to where its tokens
    stop making sense)."""
    found, window = [], []
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT):
                continue
            window = [*window[-2:], token]
            if (
                len(window) == 3
                and [t.string for t in window[:2]] == ["check", "("]
                and window[2].type == tokenize.STRING
            ):
                try:
                    value = ast.literal_eval(window[2].string)
                except Exception:
                    continue
                if isinstance(value, str) and TASK_NAME.fullmatch(value):
                    found.append(value)
    except (tokenize.TokenError, SyntaxError):
        pass
    return found


def export_cell(names, folder):
    """The code cell that has the kernel save the named variables into folder."""
    import nbformat

    return nbformat.v4.new_code_cell(
        f'__import__("grading.export").export.save(globals(), {list(names)!r}, {str(folder)!r})'
    )


def judge_export(folder, tasks, earlier=None):
    """Read the kernel's export from folder (untrusted; it may name arrays of the previous export, held in earlier)
    and judge each task; {task: [status, message]}. Keras loads with the first task attempted (checks.LOADED_ON_USE)."""
    try:
        data = export.load(folder, earlier)
    except export.BadExport as err:
        return {task: [ERROR, f"the grader could not read this task's variables: {err}"] for task in tasks}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {task: judged(task, data) for task in tasks}


def judged(task, data):
    """[status, message] of checks.judge on exported data; an error if judging it raised (what a kernel exported is
    the submission's: a failure on it is never the grader's)."""
    import checks

    try:
        return list(checks.judge(task, data))
    except Exception as err:
        return [ERROR, f"the grader could not judge this task's exported variables ({type(err).__name__}: {err})"]


def describe_failure(err, job):
    """[status, message] for a cell that raised: the resource limit behind it, else the notebook's own error."""
    return [ERROR, limit_behind(err, job) or f"{err.ename}: {err.evalue}"]


def limit_behind(err, job):
    """The words for the resource limit behind a cell's error, or "": the one the job's controls recorded hitting
    (the notebook may have caught the first error itself), else the one the error names."""
    hit = job.limit_hit()
    if hit:
        return hit
    evalue = str(err.evalue)
    if err.ename == "MemoryError":
        return job.limits.words("memory")
    if err.ename in ("BlockingIOError", "OSError") and "Resource temporarily unavailable" in evalue:
        return job.limits.words("processes")
    if any(words in evalue for words in OUT_OF_SPACE):
        return job.limits.words("space")
    return ""


def detail(err, number):
    """The notebook's own error for the student's feedback: which cell, and its traceback."""
    text = ANSI.sub("", str(err))
    text = text if len(text) <= MAX_DETAIL_CHARS else text[:MAX_DETAIL_CHARS] + "\n[...]"
    return f"Cell {number} raised {err.ename}:\n{text}"


def run(nb, tasks, job, challenge=None):
    """Run the notebook (as admit.parse read it) in job's sandboxed kernel, judging each task after its check call.

    challenge: the job's challenge settings (grading.challenge.settings), or None: then a check("challenge") call is
    a plain cell like any other. With them, a notebook that calls check("challenge") has its entry run and judged at
    that call (entry_step), and the result is returned under results["challenge"] (a dict, not a verdict).

    Returns ({task: [status, message]}, the notebook's own error text or "").
    """
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    from grading import challenge as entries

    numbers = {id(cell): number for number, cell in enumerate(nb.cells, 1)}  # the notebook's own cell numbers
    note_progress(job.folder, "plan")  # the notebook's cells are the submission's input: dying on them is its own
    optional = (entries.TASK,) if challenge is not None else ()
    try:
        plan, unbounded = plan_cells(nb.cells, tasks, optional)
    except Exception as err:  # the notebook's cells are the submission's: failing on them is never the grader's
        return {
            task: [ERROR, f"the grader could not plan this notebook's cells ({type(err).__name__})"] for task in tasks
        }, ""
    steps = [
        (cell, None)
        if names is None
        else (
            entries.entry_cell(job.work / f"challenge-{number}", challenge["reference"]),
            ENTRY,
        )
        if names == list(optional)
        else (export_cell(sorted(reads(names)), job.work / f"export-{number}"), names)
        for number, (cell, names) in enumerate(plan)
    ]
    cells = nb.cells  # the notebook's own, for entries.stopped
    client = KernelClient(job)
    deadline = time.monotonic() + job.timeout
    note_progress(job.folder, "start")  # starting the kernel is the grader's own work
    results, failure, error_text, rescued, answered = {}, None, "", [], False
    earlier = export.Earlier()  # the arrays of the last export read, which the next may name
    entry, since = None, 0.0  # the challenge's result; the wall time of the cells since the last export

    def entry_step(index):
        """Run the challenge's entry at its boundary: the hidden noisy inputs handed over through the kernel's standard
        input (nothing written where the kernel can write), the entry cell timed on the grader's clock, its outputs
        judged here against the clean images (never written)."""
        nonlocal deadline, entry
        cell, _ = steps[index]
        training = since
        if "refused" in challenge:  # no entry is scored on this machine (challenge.for_box)
            entry = entries.refused(challenge["refused"])
            return
        if training > entries.rules.MAX_TRAINING_S:
            entry = entries.refused(entries.TOO_LONG.format(seconds=training), train_s=round(training, 1))
            return
        started = time.monotonic()
        clean, noisy = entries.hidden_set(challenge["seed"], challenge["count"])
        folder = job.work / f"challenge-{index}"
        cell.source = entries.entry_source(len(noisy), folder, challenge["reference"])
        deadline += time.monotonic() - started
        left = deadline - time.monotonic()
        limit = entries.rules.MAX_INFERENCE_S + entries.INFERENCE_GRACE_S
        client.timeout = max(math.ceil(min(left, limit)), 1)
        started = time.monotonic()
        finish = entries.hand_over(client.inputs, noisy)
        try:
            client.execute_cell(cell, index)
        except CellTimeoutError:
            seconds = time.monotonic() - started
            entry = entries.refused(
                entries.TOO_SLOW.format(seconds=seconds)
                if left > limit
                else f"the notebook's time limit ({job.timeout:g} s) ran out while the entry predicted",
                train_s=round(training, 1),
                infer_s=round(seconds, 1),
            )
            raise
        except CellExecutionError as err:  # the notebook broke the grader's cell (run_entry catches the entry's errors)
            limit = limit_behind(err, job)  # its own space or memory used up: the rule says which
            error = f"{err.ename}: {err.evalue}"[:400]
            entry = entries.refused(
                entries.UNWRITTEN.format(limit=limit) if limit else entries.RAISED.format(error=error)
            )
            return
        finally:
            finish()
            cell.outputs = []
        inference = time.monotonic() - started
        started = time.monotonic()
        entry = entries.judge_entry(folder, clean, training, inference, challenge["reference"])
        shutil.rmtree(folder, ignore_errors=True)
        note_progress(job.folder, "run", results)
        deadline += time.monotonic() - started

    def step(index):
        """Run steps[index] within what is left of the time limit; judge its tasks if it is an export (the judging is
        the grader's time, not the notebook's: the deadline moves on by it)."""
        nonlocal deadline, since
        cell, names = steps[index]
        if names is ENTRY:
            return entry_step(index)
        client.timeout = max(math.ceil(deadline - time.monotonic()), 1)
        began = time.monotonic()
        try:
            client.execute_cell(cell, index)
        except CellExecutionError as err:
            if names is None:
                raise
            broke = f"the notebook's code broke the export of its variables ({err.ename}: {err.evalue})"
            results.update({name: [ERROR, limit_behind(err, job) or broke] for name in names})
            shutil.rmtree(job.work / f"export-{index}", ignore_errors=True)  # what it wrote before it broke
            note_progress(job.folder, "run", results)
            return
        finally:
            cell.outputs = []  # keep the worker's memory small
            since = 0.0 if names is not None else since + time.monotonic() - began
        if names is not None:
            started = time.monotonic()
            results.update(judge_export(job.work / f"export-{index}", names, earlier))
            note_progress(job.folder, "run", results)
            deadline += time.monotonic() - started

    try:
        with client.setup_kernel():
            answered = True  # from here on, whatever goes wrong is presumed the submission's (attribution above)
            note_progress(job.folder, "run", results)  # and a worker that dies or hangs, too (execute.HOLDING)
            index = 0
            try:
                for index in range(len(steps)):
                    step(index)
            except CellExecutionError as err:
                error_text = detail(err, numbers.get(id(steps[index][0]), index + 1))
                failure = describe_failure(err, job)
                if unbounded and index < len(steps) - 1:  # tasks without a check call: judge what was done anyway
                    rescued = unbounded
                    with contextlib.suppress(Exception):  # its failure is already said
                        step(len(steps) - 1)
    except CellTimeoutError:
        failure = [TIMED_OUT, f"after {job.timeout:g} s"]
    except Exception as err:  # whatever it is: the grader's before the kernel answered, the submission's after
        if not answered:
            raise GraderFailure(f"the kernel did not start ({type(err).__name__}: {err})") from None
        failure = [ERROR, stopped_by(err, job)]
    for task in rescued:  # after an error, a task without a check call keeps only a pass
        if results.get(task, [None])[0] != "passed":
            results.pop(task, None)
    fallback = failure or [NOT_GRADED, "the check never ran"]
    judged_ = {task: results.get(task) or fallback for task in tasks}
    if any(names is ENTRY for _, names in steps):
        judged_[entries.TASK] = entry or entries.stopped(cells)
    return judged_, error_text


def stopped_by(err, job):
    """The words for what stopped a job after its kernel answered: the limit it hit, else what failed."""
    from nbclient.exceptions import DeadKernelError

    hit = job.limit_hit()
    if hit:
        return hit
    if isinstance(err, DeadKernelError) and job.group is not None:  # the control group would have recorded the OOM
        return "the kernel died (the notebook called exit(), or it crashed)"
    if isinstance(err, DeadKernelError):
        return f"the kernel died (it used more than its memory limit of {sandbox.gib(job.limits.memory)}, or the notebook called exit())"
    if isinstance(err, ClientFailed):
        return f"the grader stopped reading this notebook's kernel: {err}"
    said = f"{type(err).__name__}: {err}"
    return f"the grader stopped on what this notebook did ({said[:MAX_DETAIL_CHARS]})"


def reads(tasks):
    """Every variable the checks of these tasks read."""
    import checks

    return {name for task in tasks for name in checks.READS[task]}
