"""Grading as an instructor without root: hostile submissions graded as an unprivileged user (the tests run as root
and grade as a user they create), what the grader says holds there, its control groups where the machine delegates
them, and what it says where user namespaces are refused."""

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from grading import cgroups, sandbox
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
# process (the grader's own user: only the PID namespace stops it) and a fork bomb (its process count). Forging and
# patching happen inside the kernel; the memory and exit fixtures meet the same address-space limit and the same
# dead kernel as with root; the network namespace is bubblewrap's with or without root (the check below makes one).
UNPRIVILEGED_HOSTILE = ("hostile_fork", "hostile_read", "hostile_signal", "hostile_write")
USERNS_CHECK = ["bwrap", "--unshare-all", "--ro-bind", "/", "/", "true"]  # the docs' check that user namespaces work
HELD = (
    "Sandbox (not running as root): each kernel runs as your own user in bubblewrap's namespaces, with a user "
    "namespace of the job's own"
)
TOOLS_OWN = {".cache", ".config", ".ipython", ".keras"}  # what the grader's libraries write in its user's home
NOTE = "partly sandboxed: no per-job control groups; no size-limited space per job"  # where nothing is delegated


@pytest.fixture(scope="module")
def instructor():
    """A folder of the instructor's own, deleted afterwards: their home (with a key and the answer key in it) and
    their clone of the lab."""
    if os.geteuid() != 0 or not SANDBOX.bwrap:
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


def run_as_instructor(instructor, code, cgroup=()):
    """Run Python code as the instructor in their clone of the lab (in the cgroup folders given); its stdout."""
    command = as_instructor([sys.executable, "-c", code], instructor / "home")
    procs = [str(Path(folder) / "cgroup.procs").encode() for folder in cgroup]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=instructor / "lab",
        preexec_fn=functools.partial(cgroups.join, procs),
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


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
    # none of these runs long: a limit well above the honest notebook's time even on a loaded machine
    argv = [sys.executable, lab / "tools" / "grade.py", subs, "--jobs", "2", "--timeout", "300", "--out", out]
    done = subprocess.run(["nice", *as_instructor(argv, home)], capture_output=True, text=True, timeout=900)
    return done.returncode, read_csv(out / "grades.csv"), done.stderr, before, files(), out


def test_the_grader_says_once_what_holds_without_root(unprivileged_run):
    status, rows, stderr, *_ = unprivileged_run
    assert status == 0, stderr
    assert stderr.count(HELD) == 1, stderr
    assert "512 processes and threads (counted in the job's user namespace)" in stderr
    assert "Not held without root: a user of the kernel's own" in stderr
    assert "Warning: no control groups for per-job limits (not running as root, and your control group" in stderr
    assert "unsandboxed" not in stderr
    assert {name: row["note"] for name, row in rows.items()} == dict.fromkeys(rows, NOTE)


def test_honest_submission_keeps_full_marks_without_root(unprivileged_run):
    row = unprivileged_run[1]["honest"]
    assert row["total"] == "9", row


@pytest.mark.parametrize("name", UNPRIVILEGED_HOSTILE)
def test_hostile_submission_earns_only_its_real_work_without_root(unprivileged_run, name):
    row = unprivileged_run[1][name]
    assert row["data"] == "passed" and row["total"] == "1", row
    assert "read outside the sandbox" not in str(row) and "reached" not in str(row)


def test_a_fork_bomb_meets_its_own_jobs_limit_without_root(unprivileged_run):
    assert unprivileged_run[1]["hostile_fork"]["regular_autoencoder"] == "error: too many processes (limit 512)"


def test_nothing_of_the_instructors_changes(unprivileged_run):
    _, _, _, (subs, home, lab), (subs_after, home_after, lab_after), out = unprivileged_run
    assert subs == subs_after and lab == lab_after  # the submissions and their clone's code
    assert {path: home_after.get(path) for path in home} == home  # the key and the answer key in their home
    added = {path.relative_to(out.parent / "home").parts[0] for path in set(home_after) - set(home)}
    assert added <= TOOLS_OWN, added
    assert sorted(p.name for p in out.iterdir()) == [
        ".grades",
        "feedback",
        "grades.csv",
        "grades.md",
        "report.html",
        "summary.md",
    ]


# ---------------------------------------------------------------- other machines, cheaply

PROBE = "from grading import sandbox; print(*sandbox.describe(sandbox.probe(1), sandbox.Limits()), sep='\\n')"


def test_where_user_namespaces_are_refused_it_says_unsandboxed_and_the_fix(instructor):
    """As the instructor, inside a user namespace that may make no more: bubblewrap fails as it does where the kernel
    or AppArmor refuses user namespaces."""
    refused = ["bwrap", "--unshare-user", "--disable-userns", "--dev-bind", "/", "/", "--"]
    command = as_instructor([*refused, sys.executable, "-c", PROBE], instructor / "home")
    done = subprocess.run(command, capture_output=True, text=True, cwd=instructor / "lab")
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stderr
    assert lines[0].startswith("Sandbox (not running as root): each kernel runs as your own user, with no namespaces")
    assert "no process limit" in lines[0]
    assert lines[1].startswith("Warning: unsandboxed: bubblewrap cannot create user namespaces here (")
    assert "(fix: an administrator allows unprivileged user namespaces); and not running as root" in lines[1]
    assert lines[1].endswith('Or grade as root (docs/grading-at-scale.md, "Grading without root").')


@pytest.fixture
def delegated(instructor):
    """A control group made over to the instructor, as an administrator delegates one (v1: a folder per controller
    owned by them; v2: the folder and the files systemd hands over with Delegate=yes), removed afterwards."""
    hierarchy, why = cgroups.find()
    if hierarchy is None:
        pytest.skip(f"no control groups here: {why}")
    cgroups.prepare(hierarchy)  # v2: the top hands memory, pids and cpu down
    folders = [Path(base) / "dae-instructor-test" for base in hierarchy.bases]
    uid, gid = sandbox.ensure_user(INSTRUCTOR)
    for folder in folders:
        folder.mkdir()
        handed = [p for p in folder.iterdir() if hierarchy.version == 1 or p.name in cgroups.DELEGATED_FILES]
        for path in [folder, *handed]:
            os.chown(path, uid, gid)
    try:
        yield folders
    finally:
        for folder in folders:
            for inner in sorted(folder.rglob("*"), key=lambda p: -len(p.parts)):
                if inner.is_dir():
                    inner.rmdir()
            folder.rmdir()


def test_where_cgroups_are_delegated_the_jobs_get_them_without_root(instructor, delegated):
    code = (
        "import json, subprocess; from grading import cgroups, sandbox\n"
        "box = sandbox.probe(1)\n"
        "with sandbox.job_group(box, sandbox.Limits(processes=16)) as group:\n"
        "    bomb = ['sh', '-c', 'for i in $(seq 40); do sleep 30 & done']\n"
        "    subprocess.run(bomb, preexec_fn=lambda: cgroups.join(group.procs_files()), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "    print(json.dumps([box.missing, list(box.hierarchy.bases), sorted(group.hits()), len(group.processes())]))\n"
        "print(*sandbox.describe(box, sandbox.Limits()), sep='\\n')\n"
    )
    said = run_as_instructor(instructor, code, delegated).splitlines()
    missing, bases, hits, running = json.loads(said[0])
    assert missing == ["no size-limited space per job"]
    assert bases == [str(folder) for folder in delegated]  # the groups nest in the delegated one
    assert hits == ["processes"] and 0 < running <= 16  # the group's pids.max stopped the loop, and recorded it
    assert "512 processes and threads (its control group), equal CPU shares" in said[1]


def test_cgroup_v2_without_root_nests_in_the_delegated_group_once_the_grader_leaves_it(tmp_path, monkeypatch):
    """On a fake v2 tree (this machine has v1): a group delegated to the grader's user holds its job groups, after its
    own processes moved into a leaf group of their own (v2 lets only a group without processes hand controllers on)."""
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    root = tmp_path / "cgroup"
    own = root / "user.slice" / "user@1000.service" / "app.slice" / "grade.scope"
    own.mkdir(parents=True)
    for name, text in {
        "cgroup.controllers": "cpu memory pids\n",
        "cgroup.procs": "4242\n",
        "cgroup.type": "domain\n",
        "cgroup.subtree_control": "",
        "cgroup.threads": "",
    }.items():
        (own / name).write_text(text)
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "mountinfo").write_text(f"29 23 0:26 / {root} rw,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n")
    (proc / "cgroup").write_text(f"0::/{own.relative_to(root)}\n")
    hierarchy, why = cgroups.find(proc)
    assert why == "" and hierarchy == cgroups.Hierarchy(2, (str(own),))
    (own / cgroups.TOP).mkdir()
    (own / cgroups.TOP / "cgroup.subtree_control").write_text("")
    (own / "cgroup.procs").write_text("4242\n")

    def write(path, value):  # as cgroupfs does: a pid written to a group's cgroup.procs leaves the group it was in
        Path(path).write_text(str(value))
        if Path(path).name == "cgroup.procs":
            (own / "cgroup.procs").write_text("")

    monkeypatch.setattr(cgroups, "write", write)
    cgroups.prepare(hierarchy)
    assert (own / cgroups.SELF / "cgroup.procs").read_text() == "4242"  # the grader moved out
    assert (own / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"


# ---------------------------------------------------------------- the words, for each kind of machine


def test_root_with_every_layer_says_so_and_marks_no_row(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    box = sandbox.Sandbox(((990, 990),), "/usr/bin/bwrap", (), cgroups.Hierarchy(1, ("/a", "/b", "/c")), True)
    said = sandbox.describe(box, sandbox.Limits())
    assert said[0].startswith(
        "Sandbox (running as root): every layer holds; each kernel runs as a user of its own (dae-sandbox-N)"
    )
    assert len(said) == 1 and sandbox.row_note(box) == ""


def test_apparmor_refusing_user_namespaces_is_named_with_its_fix(tmp_path, monkeypatch):
    setting = tmp_path / "apparmor_restrict_unprivileged_userns"
    setting.write_text("1\n")
    monkeypatch.setattr(sandbox, "USERNS_SETTINGS", ((str(setting), "1", *sandbox.USERNS_SETTINGS[0][2:]),))
    said = sandbox.unshare_refusal("bwrap: setting up uid map: Permission denied")
    assert "AppArmor" in said and "bwrap-userns-restrict" in said
    setting.write_text("0\n")
    assert "(bwrap: setting up uid map: Permission denied)" in sandbox.unshare_refusal(
        "bwrap: setting up uid map: Permission denied"
    )


def test_without_root_the_limits_are_set_inside_the_jobs_user_namespace(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    box = sandbox.Sandbox((), "/usr/bin/bwrap", ())
    command = sandbox.kernel_command(["python"], box, 0, sandbox.Limits(), tmp_path, tmp_path, ROOT, {})
    inside = command[command.index("--") + 1 :]
    assert command[0] == "/usr/bin/bwrap" and "--unshare-user" in command and "--disable-userns" in command
    assert inside[0] == "prlimit" and "--nproc=512" in inside and "setpriv" not in command
    unsandboxed = sandbox.Sandbox((), "", ("x",))
    command = sandbox.kernel_command(["python"], unsandboxed, 0, sandbox.Limits(), tmp_path, tmp_path, ROOT, {})
    assert command[0] == "prlimit" and not any(arg.startswith("--nproc") for arg in command)
