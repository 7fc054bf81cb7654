"""Tests for the grader (tools/grade.py over grading/): bad input, mapping cells to tasks, and real grading runs
on the answer key, the blank notebook and broken fixtures (execute, report)."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys

import pytest

import run_notebook
from grading import execute
from grading.run import WORKER_MARGIN_S, UsageError, load_tasks
from grading_support import (
    FIXTURES,
    ROOT,
    copy_fixture,
    grade,
    read_csv,
    rendered_markdown,
    run,
    run_in_process,
    snapshot,
)

spec = importlib.util.spec_from_file_location("make_corpus", ROOT / "tests" / "make_corpus.py")
make_corpus = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_corpus)

CORPUS_ENTRY = "noise_unclipped"  # the corpus notebook graded here too (tests/test_corpus.py runs it in-process)

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


@pytest.mark.heavy
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
    _, _, err = run([subs], capsys)  # again: the tables just written are not taken for submissions
    assert "Skipped 1 file(s) that are not notebooks: notes.txt" in err


@pytest.mark.heavy
def test_same_file_names_in_subfolders_are_told_apart(tmp_path, capsys):
    for student in ("alice", "bob"):
        copy_fixture("malformed.ipynb", tmp_path / "subs" / student)
    copy_fixture("not_a_notebook.ipynb", tmp_path / "subs")
    status, _, err = run([tmp_path / "subs", "--out", tmp_path / "tables"], capsys)
    assert status == grade.EXIT_UNGRADED
    assert "2 submissions share the name 'malformed'" in err
    assert set(read_csv(tmp_path / "tables" / "grades.csv")) == {"alice/malformed", "bob/malformed", "not_a_notebook"}


@pytest.mark.heavy
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

    monkeypatch.setattr(run_notebook.os, "replace", broken_replace)
    with pytest.raises(OSError):
        run_notebook.write_atomic(table, b"new table\n")
    assert table.read_text() == "old table\n"
    assert os.listdir(tmp_path) == ["grades.csv"]  # no temporary file left behind


def test_the_grader_reads_the_checks_tasks_without_importing_keras(tmp_path):
    import checks

    assert load_tasks() == checks.TASKS
    code = "import sys; from grading.run import load_tasks; print(len(load_tasks()), 'keras' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.split() == [str(len(checks.TASKS)), "False"]
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "__init__.py").write_text("")
    (tmp_path / "checks" / "tasks.py").write_text("TASKS = ('data',)\n")
    with pytest.raises(UsageError, match="has no CHECKS table"):
        load_tasks(tmp_path)


def test_fixtures_are_what_make_fixtures_writes():
    import nbformat

    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    make_fixtures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_fixtures)
    assert make_fixtures.TASKS == load_tasks(), "make_fixtures.ANSWERS must answer every task in checks.TASKS"
    for name, content in make_fixtures.fixtures().items():
        expected = content if isinstance(content, str) else nbformat.writes(content) + "\n"
        assert (FIXTURES / name).read_text(encoding="utf-8") == expected, (
            f"run tests/fixtures/make_fixtures.py: {name} is stale"
        )


# ---------------------------------------------------------------- the grader worker processes


@pytest.mark.heavy
def test_a_worker_that_fails_reports_its_error_and_the_next_job_gets_a_new_one(tmp_path):
    from grading.run import LAB_DIR, Workers

    workers = Workers()
    for n in range(2):
        job = tmp_path / f"job{n}"
        job.mkdir()
        (job / "job.json").write_text("{not json")
        problem = workers.run(job, 60, LAB_DIR)
        assert problem.startswith("worker exit status 1: ") and "JSONDecodeError" in problem, problem
        assert workers.idle == {}  # a failed worker is never kept


# ---------------------------------------------------------------- mapping cells to tasks


def code(source):
    """A code cell with this source."""
    import nbformat

    return nbformat.v4.new_code_cell(source)


def test_cells_belong_to_the_next_check_and_level_up_cells_are_not_run():
    cells = [
        code("setup"),
        code("x = 1"),
        code('check("a");'),
        code("y = 2"),
        code(" checks.check( 'b' )\n"),
        code("level up"),
    ]
    plan, unbounded = execute.plan_cells(cells, ("a", "b"))
    assert unbounded == []
    assert [names if cell is None else cell.source for cell, names in plan] == [
        "setup",
        "x = 1",
        ["a"],
        "y = 2",
        ["b"],  # cells that only call check are replaced by the evaluation
    ]


def test_a_task_without_its_check_call_is_evaluated_after_every_cell():
    cells = [code("setup"), code('x = 1\ncheck("a")'), code("level up")]
    plan, unbounded = execute.plan_cells(cells, ("a", "b"))
    assert unbounded == ["b"]
    assert [names if cell is None else cell.source for cell, names in plan] == [
        "setup",
        'x = 1\ncheck("a")',
        ["a"],
        "level up",
        ["b"],  # a check call in a cell with code: the cell runs
    ]


# ---------------------------------------------------------------- real grading runs


LOOP_TIMEOUT = 45  # seconds: the endless loop's time limit (the run before the loop takes about 15 s)


def quick_answer_key(folder):
    """Write the answer key as folder/solution.ipynb, training 2 epochs instead of 10 and 30 and its challenge entry 1
    instead of 8; return its path.

    nbval already runs the real answer key with its check calls in CI (their "passed" lines are
    compared), so the full minute of training is proven there; here we prove the grader gives the
    answer code full marks, in a fraction of the time. Cells tagged solution-only (the quality bounds
    that need the full 30 epochs) are dropped, as they are from the student version.
    """
    import nbformat

    nb = nbformat.read(ROOT / "solution.ipynb", as_version=4)
    nb.cells = [cell for cell in nb.cells if "solution-only" not in cell.metadata.get("tags", [])]
    shortened = 0
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = re.sub(r"\bepochs=\d+", "epochs=2", cell.source)
            cell.source, count = re.subn(r"\bchallenge_epochs = \d+", "challenge_epochs = 1", cell.source)
            shortened += count
    assert shortened == 1, "the answer key's challenge cell no longer sets challenge_epochs: shorten it here"
    path = folder / "solution.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade the answer key, the blank student notebook and the fixtures: (status, rows, tasks, files before, after,
    loop run, tables folder).

    The endless-loop fixture is graded at the same time by the command line in the background (it
    mostly sleeps), with its own short time limit; test_endless_loop_is_stopped_by_the_time_limit
    collects it.
    """
    loop_dir = tmp_path_factory.mktemp("loop")
    copy_fixture("endless_loop.ipynb", loop_dir)
    command = [
        sys.executable,
        str(ROOT / "tools" / "grade.py"),
        str(loop_dir / "endless_loop.ipynb"),
        "--timeout",
        str(LOOP_TIMEOUT),
    ]
    loop = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )

    subs = tmp_path_factory.mktemp("submissions")
    quick_answer_key(subs)
    shutil.copy(ROOT / "index.ipynb", subs)
    for name in (
        "raises_in_task3.ipynb",
        "breaks_environment.ipynb",
        "half_right.ipynb",
        "malformed.ipynb",
        "not_a_notebook.ipynb",
    ):
        shutil.copy(FIXTURES / name, subs)
    make_corpus.write(subs, [CORPUS_ENTRY])
    out = tmp_path_factory.mktemp("tables")
    before = snapshot(subs)
    status = grade.main([str(subs), "--jobs", "2", "--out", str(out)])
    rows = read_csv(out / "grades.csv")
    stdout, stderr = loop.communicate(timeout=300)
    loop_run = (loop.returncode, stdout, stderr, loop_dir)
    return status, rows, load_tasks(), before, snapshot(subs), loop_run, out


def task_cells(row, tasks):
    """The task columns of one table row, in task order."""
    return [row[task] for task in tasks]


def test_answer_key_scores_full_marks(graded):
    _, rows, tasks, *_ = graded
    assert task_cells(rows["solution"], tasks) == ["passed"] * len(tasks)
    assert rows["solution"]["total"] == str(len(tasks))


def test_blank_student_notebook_scores_zero(graded):
    _, rows, tasks, *_ = graded
    assert task_cells(rows["index"], tasks) == ["not attempted"] * len(tasks)
    assert rows["index"]["total"] == "0"


def test_exception_keeps_the_tasks_before_it(graded):
    _, rows, tasks, *_ = graded
    cells = task_cells(rows["raises_in_task3"], tasks)
    assert cells[:2] == ["passed", "passed"]
    assert cells[2:] == ["error: ValueError: Got 2 rows but 1 titles: give one title per row."] * (len(tasks) - 2)
    assert rows["raises_in_task3"]["total"] == "2"


def test_deleted_helpers_and_changed_folder_do_not_stop_grading(graded):
    _, rows, tasks, *_ = graded
    assert task_cells(rows["breaks_environment"], tasks) == ["passed"] * len(tasks)


def test_half_right_submission_gets_its_known_score(graded):
    _, rows, *_ = graded
    row = rows["half_right"]
    assert [row[task] for task in ("regular_autoencoder", "reconstructions")] == ["not attempted"] * 2
    assert row["noisy_data"].startswith("failed: x_train_noisy looks like noise of factor 0.30, not 0.5")
    assert row["predictions"].startswith("failed: x_test_denoised was predicted from the clean x_test")
    # loss_curve has no check call, so the level-up cell's error is met; work done before it still counts
    assert [row[task] for task in ("data", "dae_model", "dae_training", "view_results", "loss_curve")] == ["passed"] * 5
    assert row["total"] == "5"


def test_files_that_are_not_notebooks_get_a_row_and_exit_status_1(graded):
    status, rows, *_ = graded
    assert status == grade.EXIT_UNGRADED
    assert rows["malformed"]["note"].startswith("not a notebook: malformed JSON")
    assert rows["not_a_notebook"]["note"].startswith("not a notebook")
    assert all(
        rows[name]["note"] == ""
        for name in ("solution", "index", "raises_in_task3", "breaks_environment", "half_right")
    )


def test_a_corpus_notebook_gets_the_same_row_from_the_grader(graded):
    rows, tasks = graded[1], graded[2]
    in_process = run_in_process(make_corpus.corpus()[CORPUS_ENTRY], tasks)
    assert {key: rows[CORPUS_ENTRY][key] for key in in_process} == in_process
    assert in_process["noisy_data"].startswith("failed: ")  # the mistake, and the rest passed
    assert in_process["total"] == str(len(tasks) - 1)


def test_submissions_are_never_modified(graded):
    _, _, _, before, after, *_ = graded
    assert before == after


def test_endless_loop_is_stopped_by_the_time_limit(graded):
    tasks = graded[2]
    status, stdout, stderr, loop_dir = graded[5]
    assert status == 0, stderr
    row = read_csv(loop_dir / "endless_loop-grades.csv")["endless_loop"]
    assert row["data"] == "passed"  # done before the loop: kept
    assert task_cells(row, tasks)[1:] == [f"timed out after {LOOP_TIMEOUT} s"] * (len(tasks) - 1)
    minutes, seconds = re.search(
        r"endless_loop: 1/\d+ · elapsed (?:(\d+) min )?(\d+) s", stderr
    ).groups()  # the grader's own timing
    seconds = 60 * int(minutes or 0) + int(seconds)
    # Stopped by the notebook's own limit, not the worker's hard one (run.WORKER_MARGIN_S later): the grader's fixed
    # costs on top (Dask, the worker's Keras, the kernel's start, export, judging) take about 20 s on a quiet machine
    # and 50 s beside the other graders of a parallel test run.
    assert seconds < LOOP_TIMEOUT + min(90, WORKER_MARGIN_S), (
        f"the grader took {seconds:.0f} s to stop a {LOOP_TIMEOUT} s run"
    )
    assert stdout == (loop_dir / "endless_loop-grades.md").read_text()


def test_graded_rows_get_feedback_files_and_whole_messages(graded):
    _, rows, tasks, *_ = graded
    assert len(rows["half_right"]["noisy_data"]) > 100  # grades.csv keeps the whole hint; grades.md shortens it


# ---------------------------------------------------------------- the class report


def test_class_report_counts_verdicts_groups_hints_and_lists_the_ungraded():
    from grading import classreport, report
    from grading.report import Row, ungraded

    assert sorted(classreport.ORDER) == sorted(report.VERDICTS)
    tasks = ("a", "b")
    rows = [
        Row("s1", {"a": ("passed", ""), "b": ("failed", "test loss 0.41 is above 0.40: train longer")}),
        Row("s2", {"a": ("passed", ""), "b": ("failed", "test loss 0.52 is above 0.40: train longer")}),
        Row("s3", {"a": ("error", "ValueError: 3 rows"), "b": ("blocked", "fix the a task first: 3 rows")}),
        Row("s4", {"a": ("not attempted", ""), "b": ("not attempted", "")}),
        ungraded("s5 `x` <b>", tasks, "not a notebook: <script>alert(1)</script>"),
    ]
    counts = classreport.verdict_counts(rows, tasks)
    assert {v: n for v, n in counts["a"].items() if n} == {"passed": 2, "error": 1, "not attempted": 1}
    assert {v: n for v, n in counts["b"].items() if n} == {"failed": 2, "blocked": 1, "not attempted": 1}
    hints = classreport.common_hints(rows, tasks)
    assert [(h.count, h.verdict, h.text) for h in hints["b"]] == [
        (2, "failed", "test loss 0.41 to 0.52 is above 0.40: train longer"),  # one group; the numbers that vary
        (1, "blocked", "fix the a task first: 3 rows"),
    ]
    assert classreport.total_counts(rows, tasks) == {0: 2, 1: 2, 2: 0}
    assert classreport.ungradable(rows) == [("s5 `x` <b>", "not a notebook: <script>alert(1)</script>")]
    page = classreport.to_report_html(rows, tasks)
    assert page.count("src='data:image/png;base64,") == 2  # the two figures, inside the page
    assert not re.search(r"""(src|href)=["'](?!data:)""", page) and "<script" not in page and "<b>" not in page
    summary = classreport.to_summary_markdown(rows, tasks)
    shown = rendered_markdown(summary)
    assert not shown["html"] and not shown["images"] and not shown["links"]
    assert shown["rows"][:3] == [
        ["task", "passed", "failed", "blocked", "error", "not attempted"],
        ["a", "2", "0", "0", "1", "1"],
        ["b", "0", "2", "1", "0", "1"],
    ]
    assert "test loss 0.41 to 0.52 is above 0.40: train longer" in summary and "s5 `x` <b>" in summary


def test_class_report_of_the_graded_fixtures_matches_the_table(graded):
    _, rows, tasks, *_ = graded
    out = graded[6]
    shown = rendered_markdown((out / "summary.md").read_text())
    header, *counts = shown["rows"][: len(tasks) + 1]
    assert header[0] == "task" and [row[0] for row in counts] == list(tasks)
    for task, row in zip(tasks, counts):
        by_verdict = dict(zip(header[1:], map(int, row[1:])))
        verdicts = [rows[name][task].split(":")[0] for name in rows if rows[name]["note"] == ""]
        assert by_verdict == {verdict: verdicts.count(verdict) for verdict in header[1:]}, task
    assert "`malformed`" not in (out / "summary.md").read_text()  # a plain name stays plain
    assert "- malformed: `not a notebook: malformed JSON" in (out / "summary.md").read_text()
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "not_a_notebook" in page
