"""Tests for tools/grade.py: bad input, the table files, and real grading runs on fixture notebooks."""

import csv
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
spec = importlib.util.spec_from_file_location("grade", ROOT / "tools" / "grade.py")
grade = importlib.util.module_from_spec(spec)
spec.loader.exec_module(grade)



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


# ---------------------------------------------------------------- bad input (no kernel runs)


def test_nonexistent_path_is_a_clear_error(tmp_path, capsys):
    status, _, err = run([tmp_path / "nope"], capsys)
    assert status == grade.EXIT_USAGE
    assert "does not exist" in err and "give a notebook" in err


def test_empty_folder_is_a_clear_error(tmp_path, capsys):
    status, _, err = run([tmp_path], capsys)
    assert status == grade.EXIT_USAGE
    assert "holds no notebooks" in err and "empty" in err


def test_folder_without_notebooks_lists_what_it_holds(tmp_path, capsys):
    (tmp_path / "essay.pdf").write_text("pdf")
    status, _, err = run([tmp_path], capsys)
    assert status == grade.EXIT_USAGE
    assert "holds no notebooks" in err and "essay.pdf" in err


def test_unwritable_output_is_refused_before_grading(tmp_path, capsys):
    copy_fixture("malformed.ipynb", tmp_path / "subs")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    for out in (blocker, blocker / "tables"):
        status, _, err = run([tmp_path / "subs", "--out", out], capsys)
        assert status == grade.EXIT_USAGE
        assert "Cannot write the grade tables" in err and "--out" in err
    assert blocker.read_text() == "a file, not a folder"


@pytest.mark.parametrize("option", [["--jobs", "0"], ["--timeout", "-5"]])
def test_non_positive_options_are_refused(tmp_path, option):
    with pytest.raises(SystemExit) as exit_info:
        grade.main([str(tmp_path), *option])
    assert exit_info.value.code == 2


def test_unreadable_files_get_one_row_each_and_others_are_skipped(tmp_path, capsys):
    subs = tmp_path / "subs"
    copy_fixture("malformed.ipynb", subs)
    copy_fixture("not_a_notebook.ipynb", subs)
    (subs / "notes.txt").write_text("not a submission")
    (subs / ".ipynb_checkpoints").mkdir()
    copy_fixture("malformed.ipynb", subs / ".ipynb_checkpoints")
    status, out, err = run([subs], capsys)
    assert status == grade.EXIT_UNGRADED
    assert "Skipped 1 file(s) that are not notebooks: notes.txt" in err
    rows = read_csv(subs / "grades.csv")
    assert set(rows) == {"malformed", "not_a_notebook"}  # checkpoints are not submissions
    assert rows["malformed"]["note"].startswith("not a notebook: malformed JSON")
    assert rows["not_a_notebook"]["note"].startswith("not a notebook: valid JSON but not")
    assert all(row["total"] == "0" for row in rows.values())
    assert (subs / "grades.md").read_text() == out  # the printed table is the markdown file


def test_same_file_names_in_subfolders_are_told_apart(tmp_path, capsys):
    for student in ("alice", "bob"):
        copy_fixture("malformed.ipynb", tmp_path / "subs" / student)
    copy_fixture("not_a_notebook.ipynb", tmp_path / "subs")
    status, _, err = run([tmp_path / "subs", "--out", tmp_path / "tables"], capsys)
    assert status == grade.EXIT_UNGRADED
    assert "2 submissions share the name 'malformed'" in err
    assert set(read_csv(tmp_path / "tables" / "grades.csv")) == {"alice/malformed", "bob/malformed", "not_a_notebook"}


def test_one_notebook_gets_tables_beside_it(tmp_path, capsys):
    notebook = copy_fixture("malformed.ipynb", tmp_path)
    status, _, _ = run([notebook], capsys)
    assert status == grade.EXIT_UNGRADED
    assert set(read_csv(tmp_path / "malformed-grades.csv")) == {"malformed"}
    assert (tmp_path / "malformed-grades.md").is_file()


def test_failed_write_keeps_the_old_table(tmp_path, monkeypatch):
    table = tmp_path / "grades.csv"
    table.write_text("old table\n")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(grade.os, "replace", broken_replace)
    with pytest.raises(OSError):
        grade.write_atomically(table, "new table\n")
    assert table.read_text() == "old table\n"
    assert os.listdir(tmp_path) == ["grades.csv"]  # no temporary file left behind


# ---------------------------------------------------------------- mapping cells to tasks


def code(source):
    """A code cell with this source."""
    import nbformat

    return nbformat.v4.new_code_cell(source)


def test_cells_belong_to_the_next_check_and_level_up_cells_are_not_run():
    cells = [code("setup"), code("x = 1"), code('check("a")'), code("y = 2"), code("checks.check('b')"), code("level up")]
    plan = grade.plan_cells(cells, ("a", "b"))
    assert [names if cell is None else cell.source for cell, names in plan] == [
        "setup", "x = 1", 'check("a")', ["a"], "y = 2", "checks.check('b')", ["b"],
    ]


def test_a_task_without_its_check_call_is_evaluated_after_every_cell():
    cells = [code("setup"), code('check("a")'), code("level up")]
    plan = grade.plan_cells(cells, ("a", "b"))
    assert [names if cell is None else cell.source for cell, names in plan] == [
        "setup", 'check("a")', ["a"], "level up", ["b"],
    ]


# ---------------------------------------------------------------- real grading runs


def snapshot(folder):
    """Every file under folder with its bytes and modification time."""
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade the answer key, the blank student notebook and the fixtures in one run: (exit status, rows, tasks, files before, after).

    The answer key trains for real (about a minute on 2 cores); grading it once here, next to the
    fast fixtures, is the only end-to-end proof that the grader gives full marks to the real answers.
    """
    subs = tmp_path_factory.mktemp("submissions")
    for name in ("solution.ipynb", "index.ipynb"):
        shutil.copy(ROOT / name, subs)
    for name in ("raises_in_task3.ipynb", "breaks_environment.ipynb", "half_right.ipynb", "malformed.ipynb", "not_a_notebook.ipynb"):
        shutil.copy(FIXTURES / name, subs)
    out = tmp_path_factory.mktemp("tables")
    before = snapshot(subs)
    status = grade.main([str(subs), "--jobs", "2", "--out", str(out)])
    rows = read_csv(out / "grades.csv")
    return status, rows, grade.load_tasks(), before, snapshot(subs)


def task_cells(row, tasks):
    """The task columns of one table row, in task order."""
    return [row[task] for task in tasks]


def test_answer_key_scores_full_marks(graded):
    _, rows, tasks, _, _ = graded
    assert task_cells(rows["solution"], tasks) == ["passed"] * len(tasks)
    assert rows["solution"]["total"] == str(len(tasks))


def test_blank_student_notebook_scores_zero(graded):
    _, rows, tasks, _, _ = graded
    assert task_cells(rows["index"], tasks) == ["not attempted"] * len(tasks)
    assert rows["index"]["total"] == "0"


def test_exception_keeps_the_tasks_before_it(graded):
    _, rows, tasks, _, _ = graded
    cells = task_cells(rows["raises_in_task3"], tasks)
    assert cells[:2] == ["passed", "passed"]
    assert all(cell.startswith("error: TypeError: add_noise needs float images") for cell in cells[2:])
    assert rows["raises_in_task3"]["total"] == "2"


def test_deleted_helpers_and_changed_folder_do_not_stop_grading(graded):
    _, rows, tasks, _, _ = graded
    assert task_cells(rows["breaks_environment"], tasks) == ["passed"] * len(tasks)


def test_half_right_submission_gets_its_known_score(graded):
    _, rows, tasks, _, _ = graded
    row = rows["half_right"]
    assert row["regular_autoencoder"] == "not attempted"
    assert row["noisy_data"].startswith("failed: ")
    assert row["predictions"].startswith("failed: ")
    assert [row[t] for t in ("data", "dae_model", "dae_training", "view_results")] == ["passed"] * 4
    assert row["total"] == "4"


def test_files_that_are_not_notebooks_get_a_row_and_exit_status_1(graded):
    status, rows, _, _, _ = graded
    assert status == grade.EXIT_UNGRADED
    assert rows["malformed"]["note"].startswith("not a notebook: malformed JSON")
    assert rows["not_a_notebook"]["note"].startswith("not a notebook")
    assert all(rows[name]["note"] == "" for name in ("solution", "index", "raises_in_task3", "breaks_environment", "half_right"))


def test_submissions_are_never_modified(graded):
    _, _, _, before, after = graded
    assert before == after


def test_endless_loop_is_stopped_by_the_time_limit(tmp_path):
    notebook = copy_fixture("endless_loop.ipynb", tmp_path)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, str(ROOT / "tools" / "grade.py"), str(notebook), "--timeout", "30"]
    start = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    seconds = time.monotonic() - start
    assert done.returncode == 0, done.stderr
    row = read_csv(tmp_path / "endless_loop-grades.csv")["endless_loop"]
    tasks = grade.load_tasks()
    assert row["data"] == "passed"  # done before the loop: kept
    assert task_cells(row, tasks)[1:] == ["timed out after 30 s"] * (len(tasks) - 1)
    assert seconds < 30 + 30, f"the grader took {seconds:.0f} s to stop a 30 s run"
    assert done.stdout == (tmp_path / "endless_loop-grades.md").read_text()
