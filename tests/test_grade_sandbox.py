"""Tests for the grader's trust boundary: the export format it reads from the kernel, and hostile submissions
graded in the sandbox beside an honest one."""

import signal
import subprocess
import threading
import time

import numpy as np
import pytest

from grading import export, sandbox
from grading_support import FIXTURES, ROOT, grade, hostile_class, needs_sandbox, read_csv, snapshot

# ---------------------------------------------------------------- the export format (untrusted input)


def test_export_round_trip_keeps_what_the_checks_read(tmp_path):
    import helpers

    import checks

    model, _ = helpers.build_autoencoder(input_dim=784, code_size=32)
    namespace = {"x_test": np.zeros((5, 784), "float32"), "dae": model, "DATASET": "fashion_mnist", "junk": object()}
    export.save(namespace, ["x_test", "dae", "DATASET", "junk", "missing"], tmp_path / "out")
    data = export.load(tmp_path / "out")
    assert set(data) == {"x_test", "dae", "DATASET", "junk"}
    assert data["x_test"].shape == (5, 784) and data["DATASET"] == "fashion_mnist"
    assert isinstance(data["junk"], checks.Foreign) and data["junk"].type_name == "object"
    assert [step[:2] for step in data["dae"].dense] == [(32, "relu"), (784, "sigmoid")]
    assert data["dae"].params == 50_992


def test_export_refuses_links_pickles_and_oversized_files(tmp_path, monkeypatch):
    folder = tmp_path / "out"
    export.save({"x": np.ones(3)}, ["x"], folder)
    (folder / "0.npy").unlink()
    (folder / "0.npy").symlink_to("/etc/passwd")  # a link to a file the kernel cannot read itself
    with pytest.raises(export.BadExport, match="0.npy"):
        export.load(folder)
    (folder / "0.npy").unlink()
    np.save(folder / "0.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(export.BadExport, match="malformed"):
        export.load(folder)
    np.save(folder / "0.npy", np.ones(1000))
    monkeypatch.setattr(export, "MAX_ARRAY_BYTES", 100)
    with pytest.raises(export.BadExport, match="too large"):
        export.load(folder)
    (folder / "manifest.json").write_text('{"x": {"kind": "array", "file": "../../etc/passwd"}}')
    with pytest.raises(export.BadExport, match="not one it could have written"):
        export.load(folder)


# ---------------------------------------------------------------- hostile submissions in the sandbox

HOSTILE = sorted(p.stem for p in FIXTURES.glob("hostile_*.ipynb"))


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """Grade every hostile fixture beside an honest submission: (rows, files before, files after, lab files before/after)."""
    subs = tmp_path_factory.mktemp("hostile")
    hostile_class(subs, HOSTILE)
    out = tmp_path_factory.mktemp("hostile-tables")
    lab = {p: p.read_bytes() for p in [ROOT / "checks.py", ROOT / "helpers.py", *ROOT.glob("grading/*.py")]}
    before = snapshot(subs), snapshot(out)
    status = grade.main([str(subs), "--jobs", "2", "--timeout", "120", "--out", str(out)])
    after = snapshot(subs), {p: v for p, v in snapshot(out).items() if p.parent == out / ".grades"}
    lab_after = {p: p.read_bytes() for p in lab}
    return status, read_csv(out / "grades.csv"), before, after, lab, lab_after, out


@needs_sandbox
def test_honest_submission_keeps_full_marks_beside_hostile_ones(hostile_run):
    status, rows, *_ = hostile_run
    assert status == 0
    assert rows["honest"]["total"] == "9"


@needs_sandbox
@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_submission_earns_only_its_real_work(hostile_run, name):
    row = hostile_run[1][name]
    assert row["data"] == "passed"  # the one task it did before attacking
    assert row["total"] == "1", row
    assert "read outside the sandbox" not in str(row) and "reached" not in str(row)


@needs_sandbox
def test_hostile_submissions_get_plain_verdicts(hostile_run):
    rows = hostile_run[1]
    assert rows["hostile_memory"]["regular_autoencoder"] == "error: out of memory (limit 6 GiB)"
    assert rows["hostile_fork"]["regular_autoencoder"].startswith("error: too many processes (limit")
    assert rows["hostile_exit"]["regular_autoencoder"].startswith("error: the kernel died")


@needs_sandbox
def test_nothing_outside_the_sandbox_changes(hostile_run):
    _, _, before, after, lab, lab_after, out = hostile_run
    assert before[0] == after[0]  # the submissions folder
    assert lab == lab_after  # the lab's checks, helpers and grader
    assert sorted(p.name for p in out.iterdir()) == [".grades", "feedback", "grades.csv", "grades.md"]


@needs_sandbox
def test_a_slot_is_cleared_of_what_an_earlier_job_left_running(tmp_path):
    box = sandbox.probe(1)
    uid, gid = sandbox.owner(box, 0)
    left = subprocess.Popen(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "sleep", "600"])
    try:
        deadline = time.monotonic() + 10
        while left.pid not in sandbox.processes_of(uid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert left.pid in sandbox.processes_of(uid)
        reaper = threading.Thread(target=left.wait)  # reaps it as soon as it dies, as a job's sandbox does
        reaper.start()
        start = time.monotonic()
        sandbox.clear(box, 0)
        reaper.join(timeout=10)
        assert left.returncode == -signal.SIGKILL and time.monotonic() - start < 5
    finally:
        left.kill()
