"""The students' handout (tools/make_handout.py, `make handout`): unpacked alone, with this lab's venv but none of the
lab's folder on the path, the blank notebook runs top to bottom and a filled one passes every check; nothing of the
answer key, the grader or the tests is inside."""

import ast
import importlib.util
import json
import os
import re
import subprocess
import sys
import zipfile

import make_handout
import nbformat
import pytest
from test_make_student import WORKED_EXAMPLE, solution_lines, task_regions

from checks.names import OPTIONAL
from grading_support import FIXTURES

# Runs a notebook in a fresh kernel in the current folder; prints each code cell's printed text, as JSON.
RUNNER = """
import json, sys
import nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": "."}}).execute()
print(json.dumps(["".join(o.get("text", "") for o in c.outputs) for c in nb.cells if c.cell_type == "code"]))
"""
# Proves where the kernel's modules come from: the handout only (the lab's grader and tools are not importable).
WHERE = """\
import importlib.util, pathlib
import helpers, levelup, checks
from benchmarks import hybrid  # the level-up section's suggestion
here = pathlib.Path.cwd().resolve()
assert all(pathlib.Path(m.__file__).resolve().is_relative_to(here) for m in (helpers, levelup, checks, hybrid))
assert [importlib.util.find_spec(name) for name in ("grading", "run_notebook", "make_student")] == [None] * 3
print("modules: the handout's own")"""
CHECK_CALL = re.compile(r"""\s*check\(["'](\w+)["']\);?\s*""")  # a cell that calls a task's check
PLACEHOLDER = "# Your code here"


@pytest.fixture(scope="module")
def handout(tmp_path_factory):
    """Build the handout into a temporary folder and unpack its zip into an empty one; return (built folder, zip,
    unpacked lab)."""
    built, archive = make_handout.build(tmp_path_factory.mktemp("dist"))
    unpacked = tmp_path_factory.mktemp("student")
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(unpacked)
    assert [p.name for p in unpacked.iterdir()] == [make_handout.TOP]
    return built, archive, unpacked / make_handout.TOP


def filled(index):
    """index.ipynb with the cheap correct answers (tests/fixtures/make_fixtures.py) in each task's last code cell."""
    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    make_fixtures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_fixtures)
    nb = nbformat.read(index, as_version=4)
    answer = None
    for cell in reversed(nb.cells):  # from the end: the code cell just before a check call gets its answer
        call = CHECK_CALL.fullmatch(cell.source) if cell.cell_type == "code" else None
        if call:
            answer = make_fixtures.ANSWERS.get(call.group(1))  # None for the optional challenge: left blank
        elif answer and cell.cell_type == "code" and PLACEHOLDER in cell.source:
            cell.source, answer = cell.source.replace(PLACEHOLDER, answer), None
    return nb


def run_both(lab, notebooks):
    """Run each notebook (written into lab) at once, in lab, with only lab on the path; return their printed texts."""
    env = {**os.environ, "PYTHONPATH": str(lab), "TF_CPP_MIN_LOG_LEVEL": "2"}
    procs = []
    for name, nb in notebooks.items():
        setup = next(n for n, cell in enumerate(nb.cells) if "from checks import check" in cell.source)
        nb.cells.insert(setup + 1, nbformat.v4.new_code_cell(WHERE))
        nbformat.write(nb, lab / name)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", RUNNER, name], cwd=lab, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        )
    printed = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode(errors="replace")[-3000:]
        printed.append(json.loads(out.decode().splitlines()[-1]))
    return printed


@pytest.mark.heavy
def test_the_handout_runs_alone_blank_and_filled(handout):
    *_, lab = handout
    blank = nbformat.read(lab / "index.ipynb", as_version=4)
    blank_out, filled_out = run_both(lab, {"blank.ipynb": blank, "filled.ipynb": filled(lab / "index.ipynb")})
    calls = [call.group(1) for cell in blank.cells if (call := CHECK_CALL.fullmatch(cell.source))]
    tasks = [task for task in calls if task not in OPTIONAL]
    assert len(tasks) == 9 and [task for task in calls if task in OPTIONAL] == list(OPTIONAL)
    for printed, verdict in ((blank_out, "not attempted yet"), (filled_out, "passed")):
        assert "modules: the handout's own\n" in printed
        said = "".join(printed)
        assert all(f"{task}: not attempted yet" in said for task in OPTIONAL)  # the challenge is left to the student
        lines = [line for text in printed for line in text.splitlines() if line.split(":")[0] in tasks]
        assert [line.split(":")[0] for line in lines] == tasks, lines
        assert all(line.startswith(f"{task}: {verdict}") for task, line in zip(tasks, lines)), lines


def test_the_handout_holds_what_a_student_needs_and_nothing_of_the_key(handout, solution):
    built, archive, _ = handout
    names = sorted(p.relative_to(built).as_posix() for p in built.rglob("*") if p.is_file())
    with zipfile.ZipFile(archive) as zipped:
        files = sorted(name for name in zipped.namelist() if not name.endswith("/"))
        assert files == [f"{make_handout.TOP}/{name}" for name in names]
    for needed in ("index.ipynb", "helpers.py", "levelup.py", "checks/__init__.py", "benchmarks/hybrid.py"):
        assert needed in names
    assert {"README.md", "requirements.txt", "docs/students.md"} <= set(names)
    assert any(name.startswith("index_files/") for name in names)
    for forbidden in ("solution.ipynb", "grading/", "tests/", "tools/", "benchmarks/bench_", "Makefile", ".ci/"):
        assert not [name for name in names if name.startswith(forbidden)], forbidden
    shown = {line.strip() for region in task_regions(solution)[WORKED_EXAMPLE] for line in region.splitlines()}
    answers = {line for line in solution_lines(solution) if re.search(r"[A-Za-z0-9]", line) and line not in shown}
    assert len(answers) > 15
    for name in names:
        text = (built / name).read_bytes().decode("utf-8", errors="replace")
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text, name
        if name.endswith(".ipynb"):
            text = "\n".join(cell.source for cell in nbformat.reads(text, as_version=4).cells)
        leaked = answers & {line.strip() for line in text.splitlines()}
        assert not leaked, f"{name} holds answer lines: {sorted(leaked)[:5]}"
    speed = (built / "docs" / "benchmarks.md").read_text()
    assert "## Quality table" in speed and "## Measurements" not in speed and "CI" not in speed.split("## Speed")[1]
    handed = (built / "requirements.txt").read_text()
    for package in ("keras==", "tensorflow-cpu==", "jupyter==", "scikit-image=="):
        assert package in handed
    for package in ("pytest", "dask", "bokeh", "ruff", "nbval", "hypothesis"):
        assert package not in handed, f"the students' requirements.txt installs the lab's own {package}"
    readme = (built / "README.md").read_text()
    for step in ("## Install", "## Open", "## Work", "## Submit", "requirements.txt", "index.ipynb"):
        assert step in readme


def test_a_failed_build_leaves_the_old_handout(tmp_path, monkeypatch):
    built, archive = make_handout.build(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")), archive.read_bytes()
    monkeypatch.setattr(make_handout, "STUDENT_README", "### BEGIN SOLUTION\nan answer")
    with pytest.raises(make_handout.HandoutError, match="README.md holds"):
        make_handout.build(tmp_path)
    assert (sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")), archive.read_bytes()) == before


# ---------------------------------------------------------------- the handout holds what it names

NAMED_FILE = re.compile(r"(?<![\w/.~-])((?:[\w-]+/)*[\w-]+(?:\.[\w-]+)*\.(?:py|ipynb|md|txt|png))\b")
MAKE_TARGET = re.compile(r"`make ([\w-]+)")
POINTED_TO = ("helpers.py", "levelup.py", "benchmarks/hybrid.py")  # the modules the notebook sends students to read


def documents(lab):
    """{where: (folder its names are relative to, text)} of what the handout gives students to read: its pages, the
    notebook's markdown, and the docstrings of the modules the notebook points them to."""
    found = {str(page.relative_to(lab)): (page.parent, page.read_text()) for page in sorted(lab.rglob("*.md"))}
    notebook = nbformat.read(lab / "index.ipynb", as_version=4)
    found["index.ipynb"] = (lab, "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown"))
    for name in POINTED_TO:
        found[f"{name} (docstring)"] = (lab, ast.get_docstring(ast.parse((lab / name).read_text())))
    return found


def missing_references(lab):
    """What the handout's documents name that is not in it: a relative link, a file, a make target."""
    from test_docs import broken_links

    missing = [
        f"{page.relative_to(lab)}: {link}" for page in sorted(lab.rglob("*.md")) for link in broken_links(page, lab)
    ]
    for where, (folder, text) in documents(lab).items():
        for name in NAMED_FILE.findall(text):
            if not ((lab / name).exists() or (folder / name).exists()):
                missing.append(f"{where}: {name}")
        missing += [f"{where}: make {target} (the handout has no Makefile)" for target in MAKE_TARGET.findall(text)]
    return missing


def test_the_handout_holds_every_file_link_and_make_target_its_documents_name(handout):
    *_, lab = handout
    assert missing_references(lab) == []
    assert "lab only" not in "".join(text for _, text in documents(lab).values())
    handed = "".join((lab / name).read_text() for name in make_handout.REQUIREMENTS_HEADERS)
    assert "grader" not in handed and "make " not in handed and "pip install -r requirements.txt" in handed
    # a document that names what is not handed out is caught
    (lab / "docs" / "extra.md").write_text("Run `make test`, see `benchmarks/bench_speed.py` and [x](instructors.md).")
    try:
        assert missing_references(lab) == [
            "docs/extra.md: instructors.md: no such file",
            "docs/extra.md: benchmarks/bench_speed.py",
            "docs/extra.md: instructors.md",
            "docs/extra.md: make test (the handout has no Makefile)",
        ]
    finally:
        (lab / "docs" / "extra.md").unlink()


def test_a_lab_only_mark_without_its_pair_is_refused():
    assert make_handout.students_page("a<!-- lab only --> b<!-- /lab only -->.", "p.md") == "a."
    with pytest.raises(make_handout.HandoutError, match="without its pair"):
        make_handout.students_page("a<!-- lab only --> b.", "p.md")


def test_the_level_up_table_names_fit_timed_as_it_is(solution):
    import inspect

    import levelup

    table = next(cell.source for cell in solution.cells if "| `levelup.fit_timed(" in cell.source)
    named = re.search(r"\| `levelup\.fit_timed\(([^)]*)\)`", table).group(1).split(", ")
    assert named == list(inspect.signature(levelup.fit_timed).parameters)
