"""Per-job resource controls from Linux's control groups (cgroups), for the sandbox (sandbox.py).

Each job gets a group of its own, `dae-grader/job-PID-START-N` (named after the process that made it, so that no two
graders on a machine ever share one), that its kernel and everything the kernel starts join before the kernel runs,
with the job's limits: memory including tmpfs and page cache (`memory.limit_in_bytes`,
v2 `memory.max`), processes and threads (`pids.max`) and an equal CPU weight (`cpu.shares` 1024, v2
`cpu.weight` 100), so that concurrent jobs share the CPU equally however many processes each starts. The kernel
records what it refused or killed (`memory.oom_control` / `memory.events` oom_kill, `pids.events` max): the grader
reads that to name the limit a job hit.

Two layouts: cgroup v1 (a mount per controller, /sys/fs/cgroup/memory ...), where the groups nest under the
grader's own cgroup, so any limit the grader itself runs under holds for its jobs too; and cgroup v2 (one
unified mount), where a cgroup holding processes cannot hand controllers to children, so the groups live in
`dae-grader` at the top of the hierarchy (as root), or, without root, under the grader's own group where that is
delegated to its user, once the grader's processes have moved into a leaf group of their own. `find` says which
one this machine has, or why neither can be used.
`dae-grader` itself weighs one busy process per core against whatever else runs beside the grader.

A group is removed by the process that made it when its job ends, or, when that process died first (a killed
grader), by the next grader that looks (`leftovers`).
"""

import errno
import itertools
import os
import re
import signal
import time
from pathlib import Path
from typing import NamedTuple

CONTROLLERS = ("memory", "pids", "cpu")
TOP = "dae-grader"  # the folder of the job groups
DELEGATED_FILES = ("cgroup.procs", "cgroup.subtree_control", "cgroup.threads")  # v2: what a delegated user owns
SELF = "dae-grader-self"  # v2 without root: the grader's own processes, moved out of its delegated group
NAME = re.compile(r"job-(\d+)-(\d+)-\d+")  # job-<maker's pid>-<maker's start time>-<number>
EQUAL_SHARES = {1: ("cpu.shares", 1024), 2: ("cpu.weight", 100)}  # every job group the same: the default weight
NUMBERS = itertools.count()
LIVE = set()  # the names of the groups this process made whose jobs still run


class Hierarchy(NamedTuple):
    """Where this machine's job groups live: the cgroup version, and the folder(s) that hold `dae-grader`."""

    version: int  # 1 or 2
    bases: tuple  # v1: one folder per controller, in CONTROLLERS order; v2: one folder

    def groups(self, name):
        """The folders of the group called name: one per controller (v1) or one (v2)."""
        return tuple(Path(base) / TOP / name for base in self.bases)

    def names(self):
        """The names of the job groups there now."""
        found = set()
        for base in self.bases:
            try:
                found |= {p.name for p in (Path(base) / TOP).iterdir() if NAME.fullmatch(p.name)}
            except OSError:
                pass
        return sorted(found)


def new_name():
    """A job group's name no other group on this machine has: this process's id and start time, and a number."""
    return f"job-{os.getpid()}-{started(os.getpid())}-{next(NUMBERS)}"


def started(pid):
    """When process pid started (clock ticks after boot, from /proc), or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])  # field 22; the name before ")" may hold spaces


def leftovers(hierarchy):
    """The job groups nobody will remove: those whose maker has ended, and this process's that no job uses."""
    found = []
    for name in hierarchy.names():
        pid, start = map(int, NAME.fullmatch(name).groups())
        if started(pid) != start or (pid == os.getpid() and name not in LIVE):
            found.append(Group(hierarchy, name))
    return found


def find(proc=Path("/proc/self")):
    """(Hierarchy, "") for this machine's cgroups with memory, pids and cpu that the grader can use; else (None, why
    not). Root can use them all; another user only the part of the hierarchy delegated to it (its own cgroup, writable
    by it: systemd's `Delegate=yes`, or v1 folders made over to it), where the groups nest under its own."""
    try:
        mounts = mounted((proc / "mountinfo").read_text())
        own = membership((proc / "cgroup").read_text())
    except OSError as err:
        return None, f"cannot read the process's cgroups ({err.strerror})"
    root = os.geteuid() == 0
    if all(controller in mounts for controller in CONTROLLERS):  # v1 (or hybrid with v1 controllers)
        bases = []
        for controller in CONTROLLERS:
            point, top = mounts[controller]
            bases.append(str(inside(point, top, own.get(controller, "/"))))
        if not root and not all(os.access(base, os.W_OK) for base in bases):
            return None, undelegated(bases)
        return Hierarchy(1, tuple(bases)), ""
    if "" not in mounts:
        return None, "no cgroup file system with the memory, pids and cpu controllers is mounted"
    point, top = mounts[""]
    base = Path(point) if root else inside(point, top, own.get("", "/"))
    if not root and not all(os.access(base / name, os.W_OK) for name in DELEGATED_FILES):
        return None, undelegated([base])
    try:
        available = (base / "cgroup.controllers").read_text().split()
    except OSError as err:
        return None, f"cannot read {base}/cgroup.controllers ({err.strerror})"
    lacking = [c for c in CONTROLLERS if c not in available]
    if lacking:
        return None, f"cgroup v2 at {base} lacks the {', '.join(lacking)} controller(s)"
    return Hierarchy(2, (str(base),)), ""


def undelegated(bases):
    """Why a user other than root cannot use these cgroup folders, and how it could."""
    return (
        f"not running as root, and your control group ({', '.join(map(str, bases))}) is not delegated to you: "
        "on a machine with systemd, systemd-run --user --scope -p Delegate=yes runs the grader in one that is"
    )


def mounted(mountinfo):
    """{controller: (mount point, mount root)} of the v1 cgroup mounts in mountinfo, and "" for the v2 mount."""
    found = {}
    for line in mountinfo.splitlines():
        fields, _, tail = line.partition(" - ")
        fields, tail = fields.split(), tail.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        kind, options = tail[0], tail[2].split(",")
        if kind == "cgroup":
            for controller in CONTROLLERS:
                if controller in options:
                    found.setdefault(controller, (unescape(fields[4]), unescape(fields[3])))
        elif kind == "cgroup2":
            found.setdefault("", (unescape(fields[4]), unescape(fields[3])))
    return found


def unescape(field):
    """A mountinfo path with its octal escapes (\\040 for a space) undone."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def membership(text):
    """{controller: cgroup path} from /proc/self/cgroup; "" holds the v2 path."""
    own = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                own[controller] = parts[2]
    return own


def inside(point, root, path):
    """The folder of cgroup `path` under a mount of the hierarchy's `root` at `point`."""
    root = root.rstrip("/")
    if path == root or path.startswith(root + "/"):
        path = path[len(root) :]  # the mount shows the hierarchy from root down (a container's own part)
    return Path(point) / path.lstrip("/")


def prepare(hierarchy):
    """Create `dae-grader`, weighing one busy process per core, and let its groups use the controllers (v2); raise
    OSError when the machine refuses."""
    for base in hierarchy.bases:
        top = Path(base) / TOP
        top.mkdir(exist_ok=True)
        if hierarchy.version == 2:
            vacate(Path(base))
            wanted = " ".join(f"+{c}" for c in CONTROLLERS)
            for folder in (Path(base), top):
                if set(CONTROLLERS) - set((folder / "cgroup.subtree_control").read_text().split()):
                    write(folder / "cgroup.subtree_control", wanted)
    name, weight = EQUAL_SHARES[hierarchy.version]
    folder = Path(hierarchy.bases[CONTROLLERS.index("cpu")] if hierarchy.version == 1 else hierarchy.bases[0]) / TOP
    write(folder / name, min(weight * (os.cpu_count() or 1), 10_000 if hierarchy.version == 2 else 262_144))


def vacate(base, tries=20):
    """Move the processes of v2 group base (the grader's own, delegated) into a leaf group of their own, SELF, so
    that base may hand controllers to the job groups (v2 lets only a group without processes do that); the
    hierarchy's root group, which root uses, is exempt."""
    if not (base / "cgroup.type").exists():
        return
    leaf = base / SELF
    for _ in range(tries):
        pids = (base / "cgroup.procs").read_text().split()
        if not pids:
            return
        leaf.mkdir(exist_ok=True)
        for pid in pids:
            try:
                write(leaf / "cgroup.procs", pid)
            except ProcessLookupError:
                pass  # it ended meanwhile


def settings(hierarchy, memory, processes):
    """[(file, value)] of a new job group: for v1 each file goes in its controller's folder."""
    shares = EQUAL_SHARES[hierarchy.version]
    if hierarchy.version == 1:
        return [
            ("memory.limit_in_bytes", memory),
            ("memory.memsw.limit_in_bytes", memory),  # swap counted too, where the kernel accounts it
            ("pids.max", processes),
            shares,
        ]
    return [("memory.max", memory), ("memory.swap.max", 0), ("pids.max", processes), shares]


class Group:
    """One job's control group: created with the job's limits, joined by its kernel, read, removed."""

    def __init__(self, hierarchy, name):
        self.hierarchy, self.name = hierarchy, name
        self.folders = hierarchy.groups(name)

    def folder(self, name):
        """The folder that holds cgroup file `name` (its controller's, for v1)."""
        if self.hierarchy.version == 2:
            return self.folders[0]
        return self.folders[CONTROLLERS.index(name.split(".")[0])]

    def create(self, memory, processes):
        """Make the group, with these limits."""
        prepare(self.hierarchy)
        for folder in self.folders:
            folder.mkdir()
        for name, value in settings(self.hierarchy, memory, processes):
            path = self.folder(name) / name
            if name.startswith("memory.memsw") or name == "memory.swap.max":
                if not path.exists():
                    continue  # no swap accounting on this kernel: nothing to limit
            write(path, value)

    def procs_files(self):
        """The cgroup.procs files a process writes "0" into to join the group (one per v1 controller)."""
        return [str(folder / "cgroup.procs").encode() for folder in self.folders]

    def hits(self):
        """The limits the kernel recorded this group hitting: a subset of {"memory", "processes"}."""
        hit = set()
        events = "memory.oom_control" if self.hierarchy.version == 1 else "memory.events"
        if counters(self.folder(events) / events).get("oom_kill", 0) > 0:
            hit.add("memory")
        if counters(self.folder("pids.events") / "pids.events").get("max", 0) > 0:
            hit.add("processes")
        return hit

    def processes(self):
        """The PIDs in the group now."""
        pids = set()
        for folder in self.folders:
            try:
                pids |= {int(word) for word in (folder / "cgroup.procs").read_text().split()}
            except (OSError, ValueError):
                pass
        return {pid for pid in pids if pid > 1 and pid != os.getpid()}

    def remove(self, wait=5):
        """Kill whatever runs in the group, and remove it; a group that will not go yet (processes still dying) is
        left for a later grader's `leftovers`."""
        if not any(folder.is_dir() for folder in self.folders):
            return
        deadline = time.monotonic() + wait
        kill_file = self.folders[0] / "cgroup.kill"  # v2 on Linux 5.14 or later: the whole group at once
        if self.hierarchy.version == 2 and kill_file.exists():
            try:
                write(kill_file, 1)
            except OSError:
                pass
        while True:
            pids = self.processes()
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            if not pids or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        for folder in self.folders:
            try:
                folder.rmdir()
            except FileNotFoundError:
                pass
            except OSError as err:
                if err.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                    raise


def join(procs_files):
    """Move the calling process into the group (called between fork and exec: os calls only, no Python locks)."""
    for path in procs_files:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)


def counters(path):
    """The "name number" lines of a cgroup events file as {name: number}; {} when it cannot be read."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    pairs = (line.split() for line in lines)
    return {pair[0]: int(pair[1]) for pair in pairs if len(pair) == 2 and pair[1].isdigit()}


def write(path, value):
    """Write value to a cgroup file in one write."""
    with open(path, "w") as f:
        f.write(str(value))
