"""Tests for the grader's trust boundary: the export format it reads from the kernel, the control groups that limit
a job, and hostile submissions graded in the sandbox beside an honest one."""

import functools
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from grading import cgroups, export, sandbox
from grading_support import (
    FIXTURES,
    ROOT,
    SANDBOX,
    grade,
    hostile_class,
    needs_sandbox,
    read_csv,
    rendered_markdown,
    snapshot,
)

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
    with pytest.raises(export.BadExport, match="not an array of numbers"):
        export.load(folder)
    np.save(folder / "0.npy", np.ones(1000))
    monkeypatch.setattr(export, "MAX_ARRAY_BYTES", 100)
    with pytest.raises(export.BadExport, match="too large"):
        export.load(folder)
    (folder / "manifest.json").write_text('{"x": {"kind": "array", "file": "../../etc/passwd"}}')
    with pytest.raises(export.BadExport, match="not one it could have written"):
        export.load(folder)


def test_an_unchanged_large_array_is_named_not_written_again_and_only_the_graders_copy_is_used(tmp_path, monkeypatch):
    monkeypatch.setattr(export, "_previous", {})
    big, changed = np.ones((1000, 784), "float32"), np.ones((1000, 784), "float32")
    namespace, earlier = {"x_train": big, "small": np.ones(3)}, export.Earlier()
    export.save(namespace, ["x_train", "small"], tmp_path / "export-1")
    first = export.load(tmp_path / "export-1", earlier)
    export.save(namespace, ["x_train", "small"], tmp_path / "export-2")
    assert sorted(p.name for p in (tmp_path / "export-2").iterdir()) == ["0.npy", "manifest.json"]  # small only
    second = export.load(tmp_path / "export-2", earlier)
    assert second["x_train"] is first["x_train"] and not second["x_train"].flags.writeable
    big[5, 5] = 0.5  # changed in place (as noise added with +=): written again
    export.save(namespace, ["x_train"], tmp_path / "export-3")
    third = export.load(tmp_path / "export-3", earlier)
    assert third["x_train"][5, 5] == 0.5 and (tmp_path / "export-3" / "0.npy").exists()
    export.save({}, ["x_train"], tmp_path / "export-empty")  # an export of nothing holds nothing for the next
    assert export.load(tmp_path / "export-empty", earlier) == {} and earlier.arrays == {}
    export.save(namespace, ["x_train"], tmp_path / "export-again")
    assert export.load(tmp_path / "export-again", earlier)["x_train"][5, 5] == 0.5
    namespace["x_train"] = changed  # back to the old values, after an export that did not hold them: written again
    export.save(namespace, ["x_train"], tmp_path / "export-4")
    assert export.load(tmp_path / "export-4", earlier)["x_train"][5, 5] == 1
    (tmp_path / "export-4" / "manifest.json").write_text('{"x": {"kind": "array", "file": "export-2/0.npy"}}')
    with pytest.raises(export.BadExport, match="the previous export did not hold"):  # only the last export's
        export.load(tmp_path / "export-4", earlier)
    with pytest.raises(export.BadExport, match="the previous export did not hold"):  # and only this job's
        export.load(tmp_path / "export-4", export.Earlier())


# ---------------------------------------------------------------- hostile submissions in the sandbox

HOSTILE = sorted(p.stem for p in FIXTURES.glob("hostile_*.ipynb"))


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """Grade every hostile fixture beside an honest submission: (rows, files before, files after, lab files before/after)."""
    subs = tmp_path_factory.mktemp("hostile")
    hostile_class(subs, HOSTILE)
    out = tmp_path_factory.mktemp("hostile-tables")
    lab = {p: p.read_bytes() for p in [*ROOT.glob("checks/*.py"), ROOT / "helpers.py", *ROOT.glob("grading/*.py")]}
    before = snapshot(subs), snapshot(out)
    status = grade.main([str(subs), "--jobs", "2", "--timeout", "300", "--out", str(out)])
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
    assert rows["hostile_fork"]["regular_autoencoder"] == "error: too many processes (limit 512)"
    assert rows["hostile_exit"]["regular_autoencoder"].startswith("error: the kernel died")
    # these caught the error themselves and went on: the export after them failed, and the verdict says why
    assert rows["hostile_tmp"]["regular_autoencoder"] == "error: disk space (limit 2 GiB)"
    assert rows["hostile_disk"]["regular_autoencoder"] == "error: disk space (limit 2 GiB)"


@needs_sandbox
def test_nothing_outside_the_sandbox_changes(hostile_run):
    _, _, before, after, lab, lab_after, out = hostile_run
    assert before[0] == after[0]  # the submissions folder
    assert lab == lab_after  # the lab's checks, helpers and grader
    assert sorted(p.name for p in out.iterdir()) == [
        ".grades",
        "feedback",
        "grades.csv",
        "grades.md",
        "report.html",
        "summary.md",
    ]


@needs_sandbox
@pytest.mark.parametrize("page", ["feedback/hostile_fence.md", "grades.md", "summary.md"])
def test_an_error_message_cannot_forge_the_markdown_an_instructor_reads(hostile_run, page):
    out = hostile_run[-1]
    text = (out / page).read_text()
    assert "All 9 tasks passed" in text  # the message is there, as text
    shown = rendered_markdown(text)
    assert not shown["images"] and not shown["html"] and not shown["links"], shown
    assert not any("tasks passed" in heading for heading in shown["headings"]), shown["headings"]
    first_cells = [row[0] for row in shown["rows"]]
    if page.startswith("feedback"):  # one row per task, none forged
        assert first_cells == ["task", *list(hostile_run[1]["honest"])[1:-2]]
    elif page == "grades.md":  # one row per submission
        assert first_cells == ["submission", *sorted(hostile_run[1])]


@needs_sandbox
def test_an_error_message_cannot_forge_the_html_pages(hostile_run):
    out = hostile_run[-1]
    for page in (out / "feedback" / "hostile_fence.html", out / "report.html"):
        text = page.read_text()
        assert "&lt;script&gt;" in text and "<script" not in text and "<img src=x" not in text


# ---------------------------------------------------------------- control groups

needs_cgroups = pytest.mark.skipif(SANDBOX.hierarchy is None, reason="no control groups here")


@needs_cgroups
def test_a_job_group_counts_tmpfs_and_records_the_limit_hit(tmp_path):
    limits = sandbox.Limits(memory=64 * 2**20, processes=16)
    for attempt in ("processes", "memory"):
        with sandbox.job_group(SANDBOX, limits) as group:
            if SANDBOX.hierarchy.version == 1:
                assert (group.folder("cpu.shares") / "cpu.shares").read_text().strip() == "1024"
            assert group.hits() == set()
            in_group = functools.partial(cgroups.join, group.procs_files())
            if attempt == "processes":
                starts = "for i in $(seq 40); do sleep 30 & done"  # more than its 16 processes; removing kills them
                quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}  # the sleeps hold pipes open
                subprocess.run(["sh", "-c", starts], preexec_fn=in_group, timeout=60, **quiet)
            else:  # a tmpfs's pages belong to no process, but to the group of whoever wrote them
                fills = 'mount -t tmpfs -o size=1G fill "$0" && head -c 512M /dev/zero > "$0/file"'
                filled = subprocess.run([*sandbox.private_mounts(), "sh", "-c", fills, tmp_path], preexec_fn=in_group)
                assert filled.returncode != 0
            assert group.hits() == {attempt}
        assert not any(folder.exists() for folder in group.folders)


@needs_cgroups
def test_a_killed_graders_groups_are_removed_by_the_next_one():
    leftover = cgroups.Group(SANDBOX.hierarchy, "job-999999999-1-0")  # made by a process that has ended
    leftover.create(memory=2**30, processes=64)
    with sandbox.job_group(SANDBOX, sandbox.Limits()) as running:  # a job of this process: its group stays
        assert sandbox.usable_cgroups()[0] == SANDBOX.hierarchy
        assert not any(folder.exists() for folder in leftover.folders)
        assert all(folder.is_dir() for folder in running.folders)
    assert not any(folder.exists() for folder in running.folders)


def fake_proc(tmp_path, mountinfo, membership):
    """A /proc/self of mountinfo and cgroup files, for cgroups.find."""
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "mountinfo").write_text(mountinfo)
    (proc / "cgroup").write_text(membership)
    return proc


def test_cgroup_v1_groups_nest_under_the_graders_own(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    mountinfo = (
        "30 25 0:27 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct\n"
        "33 25 0:30 /docker/abc /sys/fs/cgroup/memory rw,relatime shared:12 - cgroup cgroup rw,memory\n"
        "35 25 0:32 / /sys/fs/cgroup/pids rw,relatime shared:14 - cgroup cgroup rw,pids\n"
        "36 25 0:33 / /sys/fs/cgroup/unified rw,relatime shared:15 - cgroup2 cgroup2 rw\n"
    )
    membership = "9:pids:/user.slice\n4:memory:/docker/abc/grader\n2:cpu,cpuacct:/\n0::/user.slice\n"
    hierarchy, why = cgroups.find(fake_proc(tmp_path, mountinfo, membership))
    assert why == "" and hierarchy.version == 1
    assert hierarchy.bases == ("/sys/fs/cgroup/memory/grader", "/sys/fs/cgroup/pids/user.slice", "/sys/fs/cgroup/cpu")
    group = cgroups.Group(hierarchy, "job-1-2-3")
    assert group.folder("pids.max") == Path("/sys/fs/cgroup/pids/user.slice/dae-grader/job-1-2-3")


def test_cgroup_v2_groups_get_their_limits_and_report_what_they_hit(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    (root / "cgroup.subtree_control").write_text("cpu memory\n")
    mountinfo = f"29 23 0:26 / {root} rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
    hierarchy, why = cgroups.find(fake_proc(tmp_path, mountinfo, "0::/system.slice/grader.service\n"))
    assert why == "" and hierarchy == cgroups.Hierarchy(2, (str(root),))
    (root / cgroups.TOP).mkdir()
    (root / cgroups.TOP / "cgroup.subtree_control").write_text("")
    group = cgroups.Group(hierarchy, cgroups.new_name())
    group.create(memory=6 * 2**30, processes=512)
    folder = root / "dae-grader" / group.name
    assert group.name.startswith(f"job-{os.getpid()}-")
    assert group.folders == (folder,)
    assert {name: (folder / name).read_text() for name in ("memory.max", "pids.max", "cpu.weight")} == {
        "memory.max": str(6 * 2**30),
        "pids.max": "512",
        "cpu.weight": "100",
    }
    assert (root / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"  # a real one then lists all three
    assert (root / cgroups.TOP / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    assert (root / cgroups.TOP / "cpu.weight").read_text() == str(100 * os.cpu_count())  # one busy process per core
    assert group.procs_files() == [str(folder / "cgroup.procs").encode()]
    assert group.hits() == set()
    (folder / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n")
    (folder / "pids.events").write_text("max 3\n")
    assert group.hits() == {"memory", "processes"}
    (folder / "cgroup.procs").write_text("0\n1\n")  # never killed: this process and init
    assert group.processes() == set()
    assert [g.name for g in cgroups.leftovers(hierarchy)] == [group.name]  # made here, used by no job


def test_no_usable_cgroups_say_why(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    hierarchy, why = cgroups.find(fake_proc(tmp_path, "22 1 0:21 / /proc rw - proc proc rw\n", "0::/\n"))
    assert hierarchy is None and "no cgroup file system" in why
    # not root, in a v2 group that is not delegated: tests/test_grade_unprivileged.py has the delegated cases
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    root = tmp_path / "cgroup"
    (root / "user.slice").mkdir(parents=True)
    (tmp_path / "other").mkdir()
    mountinfo = f"29 23 0:26 / {root} rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
    hierarchy, why = cgroups.find(fake_proc(tmp_path / "other", mountinfo, "0::/user.slice\n"))
    assert hierarchy is None and why.startswith(f"not running as root, and your control group ({root / 'user.slice'})")


@needs_sandbox
def test_a_slot_is_cleared_of_what_an_earlier_job_left_running(tmp_path):
    with sandbox.leased_slot(0) as slot:  # another grader's kernel may run on slot 0 meanwhile (tests run in parallel)
        box = sandbox.probe(slot + 1)
        left_running_is_killed(box, slot)


def left_running_is_killed(box, slot):
    """A process of the slot's user that sleeps is killed by clear() within 5 s."""
    uid, gid = sandbox.owner(box, slot)
    left = subprocess.Popen(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "sleep", "600"])
    try:
        deadline = time.monotonic() + 10
        while left.pid not in sandbox.processes_of(uid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert left.pid in sandbox.processes_of(uid)
        reaper = threading.Thread(target=left.wait)  # reaps it as soon as it dies, as a job's sandbox does
        reaper.start()
        start = time.monotonic()
        sandbox.clear(box, slot)
        reaper.join(timeout=10)
        assert left.returncode == -signal.SIGKILL and time.monotonic() - start < 5
    finally:
        left.kill()
