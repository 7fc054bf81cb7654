"""Grading as an instructor without root: what the grader says holds, hostile submissions graded as an unprivileged
user (the tests run as root and grade as a user they create), and what it says where user namespaces are refused."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from grading import sandbox
from grading_support import (
    INSTRUCTOR,
    ROOT,
    SANDBOX,
    as_instructor,
    hostile_class,
    instructor_clone,
    read_csv,
    snapshot,
)

# Only what shows something different without root, where the kernel runs as the instructor's own user and its
# limits are set in a user namespace of the job's own: writing the lab's files (the instructor owns them: only the
# read-only mount stops it), reading the instructor's home and the other submissions (likewise), signalling every
# process (same user as the grader: only the PID namespace stops it), a fork bomb (the process count) and the
# network (a network namespace owned by the user namespace). Forging and patching happen inside the kernel, and the
# memory and exit fixtures meet the same address-space limit and the same dead kernel as with root.
UNPRIVILEGED_HOSTILE = ("hostile_fork", "hostile_network", "hostile_read", "hostile_signal", "hostile_write")
HELD = (
    "Sandbox (not running as root): each kernel runs as your own user in bubblewrap's namespaces, with a user "
    "namespace of the job's own"
)

USERNS_CHECK = ["bwrap", "--unshare-all", "--ro-bind", "/", "/", "true"]  # the docs' check that user namespaces work


@pytest.fixture(scope="module")
def instructor():
    """A folder of the instructor's own, deleted afterwards: their home (with a key and the answer key in it) and
    their clone of the lab."""
    if os.geteuid() != 0 or not SANDBOX.complete:
        pytest.skip("creates an unprivileged user to grade as: needs root and bwrap")
    base = Path(tempfile.mkdtemp(prefix="dae-instructor-"))  # not under pytest's folder, which only root may enter
    try:
        base.chmod(0o755)
        for folder in ("lab", "home/.ssh", "home/drafts"):
            (base / folder).mkdir(parents=True)
        instructor_clone(base / "lab")
        (base / "home" / ".ssh" / "SECRET").write_text("the instructor's key")
        shutil.copy(ROOT / "solution.ipynb", base / "home" / "drafts")
        give_to_instructor(base)
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def give_to_instructor(folder):
    """Make INSTRUCTOR the owner of folder and everything in it."""
    uid, gid = sandbox.ensure_user(INSTRUCTOR)
    for path in (folder, *folder.rglob("*")):
        os.chown(path, uid, gid)


@pytest.fixture(scope="module")
def unprivileged_run(instructor):
    """Grade the hostile fixtures that differ without root beside an honest one, as INSTRUCTOR from their own clone,
    two at a time: (exit status, rows, stderr, files before, files after, out folder)."""
    lab, home, subs, out = (instructor / name for name in ("lab", "home", "subs", "out"))
    subs.mkdir()
    out.mkdir()
    hostile_class(subs, UNPRIVILEGED_HOSTILE)
    give_to_instructor(instructor)
    check = subprocess.run(as_instructor(USERNS_CHECK, home), capture_output=True, text=True)
    if check.returncode != 0:
        pytest.skip(f"user namespaces are not allowed here: {check.stderr.strip()}")
    files = lambda: (snapshot(subs), snapshot(home), {p: p.read_bytes() for p in lab.rglob("*.py")})  # noqa: E731
    before = files()
    argv = [sys.executable, lab / "tools" / "grade.py", subs, "--jobs", "2", "--timeout", "120", "--out", out]
    done = subprocess.run(["nice", *as_instructor(argv, home)], capture_output=True, text=True, timeout=900)
    return done.returncode, read_csv(out / "grades.csv"), done.stderr, before, files(), out


def test_the_grader_says_once_what_holds_without_root(unprivileged_run):
    status, rows, stderr, *_ = unprivileged_run
    assert status == 0, stderr
    assert stderr.count(HELD) == 1, stderr
    assert "512 processes and threads (counted in the job's user namespace)" in stderr
    assert "Not held without root: a user of the kernel's own" in stderr
    assert "Warning" not in stderr and "unsandboxed" not in stderr
    assert {name: row["note"] for name, row in rows.items()} == dict.fromkeys(
        rows, ""
    )  # no layer guarding grades missing


def test_honest_submission_keeps_full_marks_without_root(unprivileged_run):
    assert unprivileged_run[1]["honest"]["total"] == "9"


@pytest.mark.parametrize("name", UNPRIVILEGED_HOSTILE)
def test_hostile_submission_earns_only_its_real_work_without_root(unprivileged_run, name):
    row = unprivileged_run[1][name]
    assert row["data"] == "passed" and row["total"] == "1", row
    assert "read outside the sandbox" not in str(row) and "reached" not in str(row)


def test_a_fork_bomb_meets_its_own_jobs_limit_without_root(unprivileged_run):
    assert unprivileged_run[1]["hostile_fork"]["regular_autoencoder"] == "error: too many processes (limit 512)"


def test_nothing_of_the_instructors_changes(unprivileged_run):
    _, _, _, before, after, out = unprivileged_run
    assert before == after  # the submissions, the instructor's home and their clone's code
    assert sorted(p.name for p in out.iterdir()) == [".grades", "feedback", "grades.csv", "grades.md"]


def test_where_user_namespaces_are_refused_it_says_unsandboxed_and_the_fix(instructor):
    """As the instructor, inside a user namespace that may make no more: bubblewrap fails as it does where the kernel
    or AppArmor refuses user namespaces."""
    said = "from grading import sandbox; print(*sandbox.describe(sandbox.probe(1), sandbox.Limits()), sep='\\n')"
    refused = ["bwrap", "--unshare-user", "--disable-userns", "--dev-bind", "/", "/", "--chdir", instructor / "lab"]
    command = as_instructor([*refused, "--", sys.executable, "-c", said], instructor / "home")
    done = subprocess.run(command, capture_output=True, text=True)
    lines = done.stdout.splitlines()
    assert done.returncode == 0 and len(lines) >= 4, done
    assert lines[0].startswith("Sandbox (not running as root): each kernel runs as your own user, with no namespaces")
    assert "no process limit" in lines[0]
    assert lines[1].startswith("Warning: unsandboxed: bubblewrap cannot create namespaces here (user namespaces are")
    assert lines[2].startswith("Warning: unsandboxed: not running as root either, so kernels run as your own user")
    assert lines[-1].startswith("To fix: an administrator allows")
    assert lines[-1].endswith('or grade as root (docs/grading-at-scale.md, "Grading without root").')


# ---------------------------------------------------------------- the words, for each kind of machine


def test_root_with_every_layer_says_so_and_marks_no_row(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    box = sandbox.Sandbox(((990, 990),), "/usr/bin/bwrap", ())
    assert sandbox.describe(box, sandbox.Limits())[0].startswith(
        "Sandbox (running as root): every layer holds; each kernel runs as a user of its own (dae-sandbox-N)"
    )
    assert len(sandbox.describe(box, sandbox.Limits())) == 1 and sandbox.row_note(box) == ""


def test_apparmor_refusing_user_namespaces_is_named_with_its_fix(tmp_path, monkeypatch):
    setting = tmp_path / "apparmor_restrict_unprivileged_userns"
    setting.write_text("1\n")
    monkeypatch.setattr(sandbox, "USERNS_SETTINGS", ((str(setting), "1", *sandbox.USERNS_SETTINGS[0][2:]),))
    why, fix = sandbox.userns_refusal("bwrap: setting up uid map: Permission denied")
    assert "AppArmor" in why and "bwrap-userns-restrict" in fix
    setting.write_text("0\n")
    why, fix = sandbox.userns_refusal("bwrap: setting up uid map: Permission denied")
    assert why.endswith("bwrap: setting up uid map: Permission denied")


def test_without_root_the_limits_are_set_inside_the_jobs_user_namespace(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    box = sandbox.Sandbox((), "/usr/bin/bwrap", ())
    command = sandbox.kernel_command(["python"], box, 0, sandbox.Limits(), tmp_path, tmp_path, ROOT, {})
    inside = command[command.index("--") + 1 :]
    assert command[0] == "/usr/bin/bwrap" and "--unshare-user" in command and "--disable-userns" in command
    assert inside[0] == "prlimit" and "--nproc=512" in inside and "setpriv" not in command
    unsandboxed = sandbox.kernel_command(
        ["python"], sandbox.Sandbox((), "", ("x",)), 0, sandbox.Limits(), tmp_path, tmp_path, ROOT, {}
    )
    assert unsandboxed[0] == "prlimit" and not any(arg.startswith("--nproc") for arg in unsandboxed)
