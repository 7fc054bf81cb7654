"""The grader's own failures are never a student's grade (grading/preflight.py): a sandbox that cannot start a kernel
stops the run before anything is written, a job whose kernel never started is tried again and then "not graded", and
grading without bubblewrap is refused unless asked for, and then really grades.

A broken sandbox is simulated with DAE_GRADER_BWRAP (sandbox.bubblewrap): a fake bubblewrap that passes the grader's
probe but refuses to start kernels (after the first `allowed` ones, which it hands to the real bubblewrap)."""

import importlib.util

import nbformat
import pytest

from grading import preflight, run
from grading.preflight import GraderUnusable
from grading.sandbox import BWRAP_VARIABLE
from grading_support import FIXTURES, SANDBOX, grade, needs_sandbox, read_csv
from grading_support import run as run_grader

FAKE_BWRAP = """#!/bin/sh
# The grader's probe ends in `true`: pass it. Hand the first {allowed} kernels to the real bubblewrap; refuse the rest.
for last; do :; done
[ "$last" = true ] && exit 0
count=$(( $(cat {count} 2>/dev/null || echo 0) + 1 ))
echo $count > {count}
[ $count -le {allowed} ] && exec {real} "$@"
echo "fake bwrap: no kernel for you" >&2
exit 1
"""


def honest(folder, names=("honest",)):
    """Write the all-correct cheap submission (make_fixtures.ANSWERS) into folder under each name."""
    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    make_fixtures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_fixtures)
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        nbformat.write(make_fixtures.notebook(make_fixtures.ANSWERS), folder / f"{name}.ipynb")
    return folder


@pytest.fixture
def bubblewrap(tmp_path, monkeypatch):
    """Set the grader's bubblewrap (a path, "" for none, or a fake allowing N kernels: fake(N)); return (set, count file).
    Each grader probes afresh, here and in its Dask workers."""
    count = tmp_path / "kernels-started"

    def use(path):
        monkeypatch.setenv(BWRAP_VARIABLE, str(path))
        run.local_sandbox.cache_clear()

    def fake(allowed):
        script = tmp_path / "fake-bwrap"
        script.write_text(FAKE_BWRAP.format(allowed=allowed, count=count, real=SANDBOX.bwrap))
        script.chmod(0o755)
        use(script)

    yield use, fake, count
    run.local_sandbox.cache_clear()  # the next test probes the real machine again


def nothing_written(out, subs):
    """No tables, feedback, report or stored results anywhere."""
    written = [p for p in (*out.rglob("*"), *subs.rglob("*")) if p.is_file() and p.suffix != ".ipynb"]
    assert written == [], written


def test_a_streak_of_grader_failures_stops_the_run_and_graded_rows_reset_it():
    streak = preflight.Streak(limit=3)
    streak.add("a", "the kernel did not start")
    streak.add("b", "the kernel did not start")
    streak.add("c", "")  # graded: the streak starts again
    streak.add("d", "worker lost")
    streak.add("e", "worker lost")
    with pytest.raises(GraderUnusable, match=r"failed on 3 submissions in a row \(d, e, f\).*Last cause: worker lost"):
        streak.add("f", "worker lost")


def test_without_bubblewrap_grading_is_refused_with_the_fix_and_nothing_written(tmp_path, capsys, bubblewrap):
    use, _, _ = bubblewrap
    use("")
    subs, out = honest(tmp_path / "subs"), tmp_path / "out"
    status, _, err = run_grader([subs, "--out", out], capsys)
    assert status == grade.EXIT_GRADER
    assert "refusing to grade: unsandboxed: bubblewrap is not installed (fix: apt-get install bubblewrap)" in err
    assert "--unsandboxed" in err
    nothing_written(out, subs)


@needs_sandbox
@pytest.mark.heavy
def test_a_sandbox_that_cannot_start_a_kernel_stops_before_grading(tmp_path, capsys, bubblewrap):
    _, fake, count = bubblewrap
    fake(allowed=0)
    subs, out = honest(tmp_path / "subs"), tmp_path / "out"
    status, _, err = run_grader([subs, "--out", out], capsys)
    assert status == grade.EXIT_GRADER, err
    assert "the pre-flight check failed" in err and "no grades were written" in err
    assert "the kernel did not start" in err and "fake bwrap: no kernel for you" in err  # the kernel's own words
    assert count.read_text().strip() == "1"  # the pre-flight kernel only: no submission was started
    nothing_written(out, subs)


@needs_sandbox
@pytest.mark.heavy
def test_a_job_whose_kernel_does_not_start_is_tried_again_then_not_graded(tmp_path, capsys, bubblewrap):
    _, fake, count = bubblewrap
    fake(allowed=1)  # the pre-flight kernel starts; no submission's does
    subs, out = honest(tmp_path / "subs", ("alice", "bob")), tmp_path / "out"
    status, _, err = run_grader([subs, "--out", out], capsys)
    assert status == grade.EXIT_UNGRADED, err
    rows = read_csv(out / "grades.csv")
    for name in ("alice", "bob"):
        assert rows[name]["note"].startswith("the grader failed: the kernel did not start"), rows[name]
        assert rows[name]["note"].endswith(f"({run.GRADER_RETRIES + 1} tries)")
        assert {rows[name][task] for task in run.load_tasks()} == {"not graded"}  # never "error", never 0 points
    assert count.read_text().strip() == str(1 + 2 * (run.GRADER_RETRIES + 1))
    kept = [p for p in (out / ".grades").rglob("*") if p.is_file()]
    assert kept == [], "a row the grader failed on must not be kept"


@pytest.mark.heavy
def test_asked_for_unsandboxed_grading_works_and_says_so(tmp_path, capsys, bubblewrap):
    use, _, _ = bubblewrap
    use("")
    subs, out = honest(tmp_path / "subs"), tmp_path / "out"
    status, _, err = run_grader([subs, "--out", out, "--unsandboxed"], capsys)
    assert status == 0, err
    row = read_csv(out / "grades.csv")["honest"]
    assert row["total"] == str(len(run.load_tasks())), row
    assert row["note"].startswith("unsandboxed: ")


class DyingWorker:
    """A stand-in for run.WORKERS whose grader worker dies at a given stage, having decided the given verdicts."""

    def __init__(self, stage, results=None):
        self.stage, self.results = stage, results or {}

    def run(self, folder, timeout, lab_dir, private_mounts=False, challenge_=None):
        """Record the stage as the real worker would (execute.note_progress), then die."""
        from grading import execute

        execute.note_progress(folder, self.stage, self.results)
        return "worker exit status -9: no message"


def grade_with(monkeypatch, worker):
    """grade_one on a trivial notebook, its grader worker replaced by worker."""
    from grading import sandbox

    monkeypatch.setattr(run, "WORKERS", worker)
    settings = {"sandbox": sandbox.Sandbox((), "", ("x",)), "timeout": 60, "lab_dir": run.LAB_DIR}
    settings["limits"] = sandbox.Limits()
    return run.grade_one("someone", preflight.trivial_notebook(), run.load_tasks(), settings, 0)


@pytest.mark.parametrize("stage", ["parse", "run"])
def test_a_worker_dying_while_it_holds_the_submission_is_the_submissions_error(monkeypatch, stage):
    tasks = run.load_tasks()
    row = grade_with(monkeypatch, DyingWorker(stage, {tasks[0]: ["passed", ""]} if stage == "run" else {}))
    assert row.graded
    first = "passed" if stage == "run" else "error"
    assert [status for status, _ in row.results.values()] == [first] + ["error"] * (len(tasks) - 1)
    message = row.results[tasks[-1]][1]
    assert "the grader stopped while" in message and "worker exit status -9" in message, message


@pytest.mark.parametrize("stage", ["start", "stop", None])
def test_a_worker_dying_while_it_holds_nothing_of_the_submission_is_the_graders_failure(monkeypatch, stage):
    worker = DyingWorker(stage) if stage else type("Silent", (), {"run": lambda *args: "worker exit status 1: x"})()
    with pytest.raises(preflight.GraderFailed, match="its grader worker failed"):
        grade_with(monkeypatch, worker)
