"""The checks on a corpus of filled-in notebooks (tests/make_corpus.py), one mistake or one valid alternative each,
run whole as the grader plans them. A mistake costs its own task, with a hint that names the cause and the fix; every
other task passes (or, where it cannot be judged until the mistake is fixed, is "blocked" naming that task); a valid
alternative scores 9/9.

Each notebook runs in this process (grading_support.run_in_process: the grader's plan and verdicts without its
sandbox, kernel and export, which cost more than the notebook's own training); the notebooks that answer the data,
regular-autoencoder and reconstructions tasks as the cheap key does go on from one run of those (grading_support.Prefix),
about a third of each notebook's time. tests/test_grade.py grades one of them through the whole grader, alone, and gets
the same row. By default the mistakes issues 12 and 21 list and every valid
alternative run, 21 notebooks; DAE_CORPUS=all runs the whole corpus (35), adding rng.random noise and whole-notebook
versions of tests/test_checks.py's mistakes (which test_checks.py covers in seconds with checks.evaluate). Every hint
ends by pointing back to its task's card.
"""

import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("make_corpus", ROOT / "tests" / "make_corpus.py")
make_corpus = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_corpus)

from grading.run import load_tasks  # noqa: E402
from grading_support import Prefix, run_in_process  # noqa: E402

ISSUE = (
    "noise_unclipped",
    "under_trained",
    "code_sigmoid",
    "code_64",
    "test_noise_shuffled",
    "trained_on_test_set",
    "validated_on_clean",
    "noise_before_scaling",
    "noise_factor_twice",
    "noise_uniform",
    "noise_mean_shifted",
    # issue 21: mistakes that used to cost more than their own task, and the ones only the whole notebook shows
    "data_scaled_twice",
    "data_not_scaled",
    "noise_in_place",
    "noise_same_for_both_sets",
    "dae_swapped",
    "dae_output_relu",
)
MISTAKES = tuple(make_corpus.MISTAKES) if os.environ.get("DAE_CORPUS") == "all" else ISSUE
VALID = tuple(make_corpus.VALID)
CHOSEN = MISTAKES + VALID
SHARED_THROUGH = "reconstructions"  # the notebooks that answer the tasks up to here as the cheap key does run them once


@pytest.fixture(scope="module")
def rows():
    """The chosen corpus notebooks' verdicts, each run in this process as the grader plans it: {name: row of
    grades.csv cells}. The grader's own run of a corpus notebook, sandbox, export and all, gives the same row
    (tests/test_grade.py, test_a_corpus_notebook_gets_the_same_row_from_the_grader)."""
    tasks = load_tasks()
    corpus = make_corpus.corpus()
    prefix = Prefix(make_corpus.fixtures.notebook(make_corpus.ANSWERS), tasks, through=SHARED_THROUGH)
    return {name: run_in_process(notebook, tasks, prefix) for name, notebook in corpus.items() if name in CHOSEN}


def test_blocked_is_a_verdict_of_its_own_that_earns_nothing():
    import checks
    from grading import report

    assert set(checks.STATUSES) <= set(report.VERDICTS) and report.BLOCKED in checks.STATUSES
    row = report.Row(
        "alice",
        {"noisy_data": ("failed", "clip them"), "dae_training": ("blocked", "fix the noisy_data task first: x")},
    )
    assert row.total == 0
    assert report.cell_text(*row.results["dae_training"]) == "blocked: fix the noisy_data task first: x"
    assert "class='blocked'" in report.feedback_html(row, ["noisy_data", "dae_training"])


def test_the_issue_lists_only_corpus_mistakes():
    assert set(ISSUE) <= set(make_corpus.MISTAKES)
    tasks = load_tasks()
    for name, (_, task, words, blocked) in make_corpus.MISTAKES.items():
        assert task in tasks and words and set(blocked) <= set(tasks[tasks.index(task) + 1 :]), name


@pytest.mark.parametrize("name", MISTAKES)
def test_a_mistake_costs_its_own_task_with_the_right_hint(rows, name):
    _, task, words, blocked = make_corpus.MISTAKES[name]
    row = rows[name]
    assert row[task].startswith("failed: "), (task, row[task])
    assert row[task].endswith(f"; see the `{task}` card"), row[task]
    for word in words:
        assert word in row[task], (word, row[task])
    for other in load_tasks():
        if other == task:
            continue
        if other in blocked and row[other] != "passed":
            assert row[other].startswith(f"blocked: {blocked[other]}"), (other, row[other])
        else:
            assert row[other] == "passed", (other, row[other])


@pytest.mark.parametrize("name", VALID)
def test_a_valid_alternative_scores_full_marks(rows, name):
    row = rows[name]
    assert {task: row[task] for task in load_tasks()} == {task: "passed" for task in load_tasks()}
    assert row["total"] == str(len(load_tasks()))


def test_the_shared_prefix_is_copied_for_each_notebook_and_guards_its_models():
    from nbformat.v4 import new_code_cell, new_notebook

    from grading.execute import plan_cells

    def notebook(*cells):
        return new_notebook(cells=[new_code_cell(source) for source in cells])

    setup = (
        "import keras, numpy as np\n"
        "autoencoder = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])\n"
        "x = np.zeros(3)"
    )
    tasks = load_tasks()
    prefix = Prefix(notebook(setup, 'check("data")'), tasks, through="data")
    run_in_process(notebook(setup, 'check("data")', "x += 1"), tasks, prefix)  # changes its own copy in place
    assert not prefix.namespace["x"].any()
    plan, _ = plan_cells(notebook("x = 1", 'check("data")').cells, tasks)  # another beginning: runs alone
    assert prefix.start(plan) == (plan, {"__name__": "__main__"}, {})
    changes_model = notebook(setup, 'check("data")', "autoencoder.layers[0].kernel.assign([[5.0], [5.0]])")
    with pytest.raises(AssertionError, match="changed a model of the shared prefix"):
        run_in_process(changes_model, tasks, prefix)
