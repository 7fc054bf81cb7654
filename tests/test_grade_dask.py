"""Tests for grading a class on Dask: stopping and resuming the grader, one or two local workers, a cluster by
address that loses a worker."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grading_support import FIXTURES, ROOT, copy_fixture, grade, needs_sandbox, read_csv, read_until, run

# ---------------------------------------------------------------- stopping and resuming


def test_terminating_the_grader_stops_it_without_writing_a_table(tmp_path):
    notebook = copy_fixture("endless_loop.ipynb", tmp_path)
    command = [sys.executable, str(ROOT / "tools" / "grade.py"), str(notebook)]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    read_until(proc.stderr, "Grading 1 notebook(s)")  # the worker starts now
    time.sleep(3)
    start = time.monotonic()
    proc.terminate()
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == grade.EXIT_INTERRUPTED, stderr
    assert "no table written" in stderr
    assert time.monotonic() - start < 15
    assert sorted(p.name for p in tmp_path.iterdir()) == ["endless_loop.ipynb"]


@needs_sandbox
@pytest.mark.heavy
def test_killed_grader_keeps_finished_results_and_grades_only_the_rest(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    for name in ("a", "b"):
        shutil.copy(ROOT / "index.ipynb", subs / f"{name}.ipynb")
    command = [sys.executable, str(ROOT / "tools" / "grade.py"), str(subs), "--timeout", "120"]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    read_until(proc.stderr, "[1/2]")
    proc.kill()  # SIGKILL: no handler runs
    proc.wait()
    assert not (subs / "grades.csv").exists()
    again = subprocess.run(command, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert "Grading 1 notebook(s)" in again.stderr and "1 unchanged since the last run kept" in again.stderr
    assert set(read_csv(subs / "grades.csv")) == {"a", "b"}


# ---------------------------------------------------------------- grading on Dask


def cheap_class(folder, names):
    """A folder of blank student notebooks (each grades in seconds), one per name."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(ROOT / "index.ipynb", folder / f"{name}.ipynb")
    shutil.copy(FIXTURES / "raises_in_task3.ipynb", folder)
    return folder


@pytest.mark.heavy
def test_two_local_dask_workers_give_the_same_table_as_one(tmp_path, capsys):
    subs, out = cheap_class(tmp_path / "subs", ("a",)), tmp_path / "out"
    status, _, err = run([subs, "--jobs", 1, "--out", out], capsys)
    assert status == 0, err
    one_worker = (out / "grades.csv").read_text()
    status, _, err = run([subs, "--jobs", 2, "--out", out, "--force"], capsys)  # --force: nothing kept is reused
    assert status == 0, err
    assert "Grading 2 notebook(s)" in err and "unchanged" not in err
    assert (out / "grades.csv").read_text() == one_worker
    assert read_csv(out / "grades.csv")["raises_in_task3"]["total"] == "2"


def free_port():
    """A TCP port on 127.0.0.1 nobody listens on now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.heavy
def test_a_cluster_by_address_grades_everything_when_a_worker_dies(tmp_path):
    subs = cheap_class(tmp_path / "subs", ("a", "b"))
    address = f"tcp://127.0.0.1:{free_port()}"
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tools'}"}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env, "start_new_session": True}
    scheduler = subprocess.Popen(
        [bin_dir / "dask", "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1], "--no-dashboard"],
        **quiet,
    )
    workers = [
        subprocess.Popen(
            [
                bin_dir / "dask",
                "worker",
                address,
                "--nthreads",
                "1",
                "--name",
                str(n),
                "--no-dashboard",
                "--memory-limit",
                "0",
            ],
            **quiet,
        )
        for n in range(2)
    ]
    try:
        time.sleep(5)  # the workers register
        command = [
            sys.executable,
            str(ROOT / "tools" / "grade.py"),
            str(subs),
            "--scheduler",
            address,
            "--timeout",
            "120",
        ]
        grader = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(12)  # both workers are grading now
        os.killpg(workers[0].pid, signal.SIGKILL)  # a machine lost mid-run: its submission is graded elsewhere
        out, err = grader.communicate(timeout=600)
        assert grader.returncode == 0, err
        rows = read_csv(subs / "grades.csv")
        assert set(rows) == {"a", "b", "raises_in_task3"}
        assert [rows[name]["total"] for name in ("a", "b", "raises_in_task3")] == ["0", "0", "2"]
        assert all(row["note"] == "" for row in rows.values())
    finally:
        for proc in (*workers, scheduler):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
