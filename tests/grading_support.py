"""What the grader's tests share: the command line loaded as a module, readers of its tables and folders, the
classes of hostile submissions, and an unprivileged instructor to grade as."""

import csv
import importlib.util
import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
spec = importlib.util.spec_from_file_location("grade", ROOT / "tools" / "grade.py")
grade = importlib.util.module_from_spec(spec)
spec.loader.exec_module(grade)

from checks.spec import TRAINING_SETTING  # noqa: E402
from grading import sandbox  # noqa: E402

SANDBOX = sandbox.probe(1)
needs_sandbox = pytest.mark.skipif(not SANDBOX.complete, reason="; ".join(SANDBOX.missing) or "sandbox available")


def run(argv, capsys):
    """Run the grader's command line in this process; return (exit status, stdout, stderr)."""
    status = grade.main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return status, out, err


def read_csv(path):
    """The grade table as {submission: row dict}."""
    with open(path, newline="", encoding="utf-8") as f:
        return {row["submission"]: row for row in csv.DictReader(f)}


def copy_fixture(name, folder):
    """Copy one fixture notebook into folder; return its new path."""
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(FIXTURES / name, folder))


def snapshot(folder):
    """Every file under folder with its bytes and modification time."""
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


def rendered_markdown(text):
    """What a CommonMark renderer (with tables) makes of text: its headings, table rows, images, links and raw HTML."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    shown = {"headings": [], "rows": [], "images": [], "links": [], "html": []}
    row = None
    for token, following in zip(tokens, tokens[1:] + tokens[:1]):
        if token.type == "heading_open":
            shown["headings"].append(following.content)
        elif token.type == "tr_open":
            row = []
            shown["rows"].append(row)
        elif token.type == "tr_close":
            row = None
        elif token.type == "inline" and row is not None:
            row.append(token.content)
        elif token.type.startswith("html"):
            shown["html"].append(token.content)
        for child in token.children or []:
            if child.type == "image":
                shown["images"].append(child.attrs["src"])
            elif child.type == "link_open":
                shown["links"].append(child.attrs["href"])
            elif child.type == "html_inline":
                shown["html"].append(child.content)
    return shown


def read_until(stream, prefix):
    """Read lines from stream until one starts with prefix (a library may print lines of its own first)."""
    for line in stream:
        if line.startswith(prefix):
            return line
    raise AssertionError(f"the stream ended without a line starting {prefix!r}")


def make_fixtures():
    """tests/fixtures/make_fixtures.py as a module."""
    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def answered(*tasks):
    """A fixture submission that does only the given tasks, with make_fixtures.py's cheap answers: notebook text."""
    import nbformat

    fixtures = make_fixtures()
    return nbformat.writes(fixtures.notebook({task: fixtures.ANSWERS[task] for task in tasks}))


def hostile_class(folder, names):
    """Write the honest submission and the named hostile fixtures into folder, with another student's file (SECRET)."""
    import nbformat

    fixtures = make_fixtures()
    nbformat.write(fixtures.notebook(fixtures.ANSWERS), folder / "honest.ipynb")
    for name in names:
        shutil.copy(FIXTURES / f"{name}.ipynb", folder)
    (folder / "SECRET").write_text("another student's work")


# ---------------------------------------------------------------- grading as an unprivileged instructor

INSTRUCTOR = "dae-instructor"  # the unprivileged user the tests grade as (a system user, created when missing)
CLONE = (*sandbox.LAB_FILES, "tools")  # what an instructor's clone of the lab needs for grading


def instructor_clone(folder):
    """Copy what grading needs of this lab into folder: the instructor's own clone."""
    for name in CLONE:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, folder / name)


def way_in(paths):
    """bubblewrap options (run as root) that open each of paths, read-only, through the folders on its way that only
    root may enter, each shown as an empty folder holding just those paths: this venv's Python may live in /root
    (mode 700), where an instructor, who has a Python of their own, could not run it."""
    tops, folders, binds = [], [], []
    for path in sorted({Path(os.path.realpath(p)) for p in paths}, key=lambda p: len(p.parts)):
        closed = [p for p in reversed(path.parents) if not p.stat().st_mode & stat.S_IXOTH]
        if closed and not any(bound in path.parents for bound in binds):
            tops += [] if closed[0] in tops else [closed[0]]
            folders += [p for p in path.parents if closed[0] in p.parents and p not in folders]
            binds.append(path)
    options = [arg for top in tops for arg in ("--tmpfs", str(top))]
    options += [
        arg for f in sorted(folders, key=lambda f: len(f.parts)) for arg in ("--perms", "0755", "--dir", str(f))
    ]
    return options + [arg for path in binds for arg in ("--ro-bind", str(path), str(path))]


def as_instructor(argv, home, processes=4096):
    """argv as a command line that runs it as INSTRUCTOR (home as their home, at most `processes` processes and
    threads in all, as their own limit), seeing this Python wherever it is installed."""
    uid, gid = sandbox.ensure_user(INSTRUCTOR)
    python = [sys.base_prefix, sys.prefix, Path(sys.executable).parent]
    return [
        "bwrap",
        "--dev-bind",
        "/",
        "/",
        *way_in(python),
        "--die-with-parent",
        "--",
        "prlimit",
        f"--nproc={processes}",
        "--",
        "setpriv",
        f"--reuid={uid}",
        f"--regid={gid}",
        "--clear-groups",
        "--",
        "env",
        "-i",
        f"HOME={home}",
        "PATH=/usr/local/bin:/usr/bin:/bin",
        *(
            f"{key}={os.environ[key]}"
            for key in ("KERAS_BACKEND", "DAE_DATA_DIR", "LANG", TRAINING_SETTING)  # the tests' plan (conftest.py)
            if key in os.environ
        ),
        "TF_CPP_MIN_LOG_LEVEL=2",
        *map(str, argv),
    ]


# ---------------------------------------------------------------- grading in this process


def run_in_process(nb, tasks, prefix=None):
    """Run a trusted notebook's code cells in this process as the grader plans them (grading.execute.plan_cells),
    judging each task at its check call with checks.evaluate: {task: its grades.csv cell}. Where the notebook's plan
    begins with prefix's steps (a Prefix), it goes on from a copy of what they left instead of running them again.

    The grader's verdicts without its sandbox, kernel and export (which the grading runs and the export's own tests
    cover), for tests of the checks on whole notebooks: the cost of a notebook is then its training alone."""
    import keras
    from matplotlib import pyplot

    from grading import report
    from grading.execute import plan_cells

    plan, _ = plan_cells(nb.cells, tasks)
    steps, namespace, results = prefix.start(plan) if prefix else (plan, {"__name__": "__main__"}, {})
    try:
        failure = run_steps(steps, namespace, results)
    finally:
        pyplot.close("all")
        keras.backend.clear_session()
        if prefix:
            prefix.verify()
    fallback = failure or (report.NOT_GRADED, "the check never ran")
    row = report.Row("in-process", {task: results.get(task) or fallback for task in tasks}).clean()
    return {**{task: report.cell_text(*row.results[task]) for task in tasks}, "total": str(row.total)}


def run_steps(steps, namespace, results):
    """Run plan steps in namespace, adding each check's verdict to results; return (ERROR, why) if a cell raised."""
    import checks
    from grading import report

    for cell, names in steps:
        if names is not None:
            results.update({task: tuple(checks.evaluate(task, namespace)) for task in names})
        elif cell.cell_type == "code":
            try:
                exec(compile(cell.source, "<cell>", "exec"), namespace)
            except Exception as err:
                return (report.ERROR, f"{type(err).__name__}: {err}")
    return None


class Prefix:
    """The first steps of a notebook's plan, through one task's check, run once: several notebooks that begin with the
    same cells (tests/test_corpus.py's, which share the data and regular-autoencoder tasks) go on from a copy of
    its namespace. Arrays and random generators are copied for each; the models are shared, so verify() fails
    if a notebook changed their weights."""

    def __init__(self, nb, tasks, through):
        from grading.execute import plan_cells

        plan, _ = plan_cells(nb.cells, tasks)
        end = next(i for i, (_, names) in enumerate(plan) if names and through in names) + 1
        self.steps, self.namespace, self.results = plan[:end], {"__name__": "__main__"}, {}
        failure = run_steps(self.steps, self.namespace, self.results)
        assert failure is None, failure
        self.weights = self.fingerprint()

    def start(self, plan):
        """(steps still to run, namespace, verdicts so far) for a plan: after the prefix where it begins with it."""
        if [step_text(step) for step in plan[: len(self.steps)]] != [step_text(step) for step in self.steps]:
            return plan, {"__name__": "__main__"}, {}
        return (
            plan[len(self.steps) :],
            {name: fresh(value) for name, value in self.namespace.items()},
            dict(self.results),
        )

    def fingerprint(self):
        """A CRC-32 of every model's weights in the prefix's namespace."""
        import zlib

        import keras

        models = [value for value in self.namespace.values() if isinstance(value, keras.Model)]
        return [zlib.crc32(weight.tobytes()) for model in models for weight in model.get_weights()]

    def verify(self):
        """Fail if a notebook changed the shared models' weights (it must then run without the prefix)."""
        assert self.fingerprint() == self.weights, "a notebook changed a model of the shared prefix: run it alone"


def step_text(step):
    """A plan step as text: a cell's source, or the tasks a check call judges."""
    cell, names = step
    return repr(names) if names is not None else cell.source


def fresh(value):
    """A copy of an array or random generator (the cells after a Prefix may change them in place); anything else."""
    import copy

    import numpy as np

    return copy.deepcopy(value) if isinstance(value, (np.ndarray, np.random.Generator)) else value


def trivial_notebook(*cells):
    """A submission that imports nothing (its kernel starts in about a second): the given code cells, then a check
    call for every task, each of which the grader finds "not attempted" (or an error, if a cell raised)."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    import checks

    nb = new_notebook(
        cells=[new_code_cell(source) for source in (*cells, *(f'check("{task}");' for task in checks.TASKS))],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    for number, cell in enumerate(nb.cells):
        cell.id = f"cell-{number}"
    return nbformat.writes(nb)
