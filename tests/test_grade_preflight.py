"""The grader's own failures are never a student's grade (grading/preflight.py): a sandbox that cannot start a kernel
stops the run before anything is written, a job whose kernel never started is the grader's failure only where the
canary (the trivial notebook graded again on the same machine) fails too, and grading without bubblewrap is refused unless asked for, and then really grades.

A broken sandbox is simulated with DAE_GRADER_BWRAP (sandbox.bubblewrap): a fake bubblewrap that passes the grader's
probe but refuses to start kernels (after the first `allowed` ones, which it hands to the real bubblewrap)."""

import importlib.util

import nbformat
import pytest

from grading import preflight, report, run
from grading.sandbox import BWRAP_VARIABLE
from grading_support import FIXTURES, SANDBOX, grade, needs_sandbox, read_csv, trivial_notebook
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
def test_a_job_whose_kernel_does_not_start_nor_the_canarys_stops_the_run(tmp_path, capsys, bubblewrap):
    _, fake, count = bubblewrap
    fake(allowed=1)  # the pre-flight kernel starts; no submission's, nor the canary's after it
    subs, out = tmp_path / "subs", tmp_path / "out"
    subs.mkdir()
    for name in ("alice", "bob"):
        (subs / f"{name}.ipynb").write_text(trivial_notebook("x = 1"))
    status, _, err = run_grader([subs, "--out", out], capsys)
    assert status == grade.EXIT_GRADER, err
    assert "the grader failed on" in err and "the pre-flight's trivial notebook graded on the same machine" in err
    assert "fake bwrap: no kernel for you" in err  # the canary's kernel's own words
    rows = read_csv(out / "grades.csv")
    for name in ("alice", "bob"):
        assert {rows[name][task] for task in run.load_tasks()} == {"not graded"}  # never "error", never 0 points
    # the pre-flight, the first submission, the canary: then it stopped (the next submission's start may have begun)
    assert count.read_text().strip() in ("3", "4")
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

    stopping = False  # as run.Workers: the run is not being stopped

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


@pytest.mark.parametrize("stage", ["start", None])
def test_a_worker_dying_holding_nothing_is_the_graders_failure_where_the_canary_fails_too(monkeypatch, stage):
    worker = (
        DyingWorker(stage)
        if stage
        else type("Silent", (), {"run": lambda *args: "worker exit status 1: x", "stopping": False})()
    )
    with pytest.raises(preflight.GraderFailed, match="its grader worker failed.*trivial notebook.*failed too"):
        grade_with(monkeypatch, worker)


class CanaryPasses(DyingWorker):
    """A grader worker that dies at its start on every submission's job, and grades the canary's."""

    def run(self, folder, timeout, lab_dir, private_mounts=False, challenge_=None):
        """Grade the canary ("not attempted" everywhere); die at the start of anything else."""
        import json

        job = json.loads((folder / "job.json").read_text())
        if not job["kernel_log"]:  # a submission's job, not the canary's
            return super().run(folder, timeout, lab_dir, private_mounts, challenge_)
        tasks = job["tasks"]
        outcome = {"results": {task: ["not attempted", ""] for task in tasks}, "error": ""}
        (folder / "outcome.json").write_text(json.dumps(outcome))
        self.canaries += 1
        return None


def test_a_job_failing_before_its_kernel_answered_is_the_submissions_error_while_the_canary_passes(monkeypatch):
    worker = CanaryPasses("start")
    worker.canaries = 0
    row = grade_with(monkeypatch, worker)
    assert worker.canaries == run.GRADER_RETRIES + 1  # one canary after each try
    assert {status for status, _ in row.results.values()} == {"error"}
    message = next(iter(row.results.values()))[1]
    assert "though it grades the pre-flight's trivial notebook on the same machine" in message, message


def test_a_row_that_breaks_its_cleaning_is_the_submissions(monkeypatch):
    tasks = run.load_tasks()
    data = {"results": {task: ["passed", "ok"] for task in tasks}, "error": ""}
    data["challenge"] = {"status": "scored", "psnr": 30.0, "ssim": 0.9, "params": 10**309}  # past a float's range
    row = run.finished("someone", data, "")
    assert row.results[tasks[0]] == ("passed", "ok") and "params" not in row.challenge  # no count, verdicts kept
    cleaned = report.clean_entry

    def breaks(entry):  # any cleaning that raises on what the kernel reported (text.number bounds today's numbers)
        if entry.get("status") == "scored":
            raise OverflowError("int too large to convert to float")
        return cleaned(entry)

    monkeypatch.setattr(report, "clean_entry", breaks)
    row = run.finished("someone", data, "")
    assert row.results[tasks[0]] == ("passed", "ok")  # the verdicts decided are kept
    assert row.challenge["status"] == "refused" and "OverflowError" in row.challenge["rule"]
