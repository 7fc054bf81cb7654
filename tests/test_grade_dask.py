"""Tests for grading a class on Dask: stopping and resuming the grader, one or two local workers, the documented
several-machines commands on a cluster that loses a machine."""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from grading_support import ROOT, copy_fixture, grade, needs_sandbox, read_csv, read_until, run, trivial_notebook

CLUSTER_DOCS = ROOT / "docs" / "grading-at-scale.md"  # the page whose several-machines commands the test runs

# ---------------------------------------------------------------- stopping and resuming


@pytest.mark.heavy
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
    (subs / "a.ipynb").write_text(trivial_notebook("answer = 1"))
    # still running when killed: the kill follows a's row at once, and b's kernel alone takes a second to start
    (subs / "b.ipynb").write_text(trivial_notebook("import time; time.sleep(5)"))
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
    """A folder of notebooks that import nothing (each grades in about a second): one blank per name, and "raises",
    whose first cell raises."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / f"{name}.ipynb").write_text(trivial_notebook("answer = 1"))
    (folder / "raises.ipynb").write_text(trivial_notebook("raise ValueError('a mistake')"))
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
    assert read_csv(out / "grades.csv")["raises"]["data"] == "error: ValueError: a mistake"


def free_port():
    """A TCP port on 127.0.0.1 nobody listens on now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_dashboard_link_is_printed_only_when_there_is_a_dashboard():
    import http.server

    from grading.run import dashboard

    class Client:
        dashboard_link = f"http://127.0.0.1:{free_port()}/status"

    assert dashboard(Client()) == ""  # nothing listens there (a scheduler started with --no-dashboard)

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/status" else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    with http.server.HTTPServer(("127.0.0.1", 0), Page) as server:
        threading.Thread(target=server.handle_request, daemon=True).start()
        Client.dashboard_link = f"http://127.0.0.1:{server.server_port}/status"
        assert dashboard(Client()) == Client.dashboard_link
        threading.Thread(target=server.handle_request, daemon=True).start()
        Client.dashboard_link = f"http://127.0.0.1:{server.server_port}/elsewhere"  # a server, but no dashboard page
        assert dashboard(Client()) == ""


def documented_commands(page=CLUSTER_DOCS):
    """The shell block of the docs that starts a scheduler: its commands, in order, comments dropped."""
    from markdown_it import MarkdownIt

    for token in MarkdownIt("commonmark").parse(page.read_text(encoding="utf-8")):
        if token.type == "fence" and "dask scheduler" in token.content:
            return [line for line in token.content.splitlines() if line.strip() and not line.startswith("#")]
    raise AssertionError(f"{page} shows no block with a `dask scheduler` command")


@needs_sandbox
@pytest.mark.heavy
def test_the_documented_cluster_commands_grade_everything_when_a_machine_dies(tmp_path):
    """The docs' scheduler, grading-machine and grader commands, run exactly as written but for the address and the
    folder (in the lab's folder, no PYTHONPATH): two grading machines, one lost mid-run."""
    commands = documented_commands()
    assert [("dask scheduler" in c, "--worker" in c, "--scheduler" in c) for c in commands] == [
        (True, False, False),
        (False, True, False),
        (False, False, True),
    ], commands
    subs = cheap_class(tmp_path / "subs", ("a", "b"))
    port = str(free_port())
    local = [
        c.replace("10.0.0.5", "127.0.0.1").replace("8786", port).replace("submissions/", f"{subs}/") for c in commands
    ]
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}  # nothing but what the docs say
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env, "start_new_session": True}
    scheduler = subprocess.Popen(["bash", "-c", local[0]], cwd=ROOT, **quiet)
    time.sleep(3)
    machines = [subprocess.Popen(["bash", "-c", local[1]], cwd=ROOT, **quiet) for _ in range(2)]
    try:
        time.sleep(8)  # the workers register
        grader = subprocess.Popen(
            ["bash", "-c", local[2]], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        said, graded = [], threading.Event()

        def listen():
            """Keep the grader's stderr; note when the pre-flight notebook has passed and grading has begun."""
            for line in grader.stderr:
                said.append(line)
                if line.startswith("Pre-flight passed"):
                    graded.set()

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        assert graded.wait(timeout=300), "".join(said)
        time.sleep(5)  # both machines are grading now
        os.killpg(machines[0].pid, signal.SIGKILL)  # a machine lost mid-run: its submissions are graded elsewhere
        grader.wait(timeout=600)
        listener.join(timeout=10)
        err = "".join(said)
        assert grader.returncode == 0, err
        assert "Dask dashboard: http://127.0.0.1:" in err  # the documented scheduler has one
        rows = read_csv(subs / "grades.csv")
        assert set(rows) == {"a", "b", "raises"}
        assert [rows[name]["data"] for name in ("a", "b", "raises")] == ["not attempted"] * 2 + [
            "error: ValueError: a mistake"
        ]
        assert all(row["note"] == "" for row in rows.values())
    finally:
        for proc in (*machines, scheduler):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
