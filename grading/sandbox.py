"""The sandbox a submission's kernel runs in, built from Linux's own tools.

Layers, outermost first (each one's guard is in docs/grading-at-scale.md, "The sandbox"):
- `bwrap` (bubblewrap): new mount, PID, network, IPC and UTS namespaces. The kernel sees the system's
  programs and libraries read-only, the lab's Python files and data read-only, its own work folder
  and socket folder read-write, and nothing else: no other submission, no grades, no grader files;
  no network; it cannot see or signal any process outside its sandbox. Without root it also makes a
  user namespace for the job (and forbids the kernel to make more).
- `prlimit`: memory (address space), processes (counted per user: per sandbox user as root, in the
  job's own user namespace without root), file size, open files, no core dumps.
- `setpriv` (root only): the kernel runs as an unprivileged user (`dae-sandbox-N`, one per job slot),
  with no capabilities and no way to regain privileges.
- control groups (cgroups.py) and a size-limited space per job, where the machine allows them (root).
bubblewrap needs to be installed (Debian's `bubblewrap`) and, without root, user namespaces allowed.
`probe` finds out which layers work; `describe` says so once at the start of a run, and `row_note` marks
each row graded without a layer.
"""

import contextlib
import fcntl
import functools
import os
import pwd
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from grading import cgroups

USER_PREFIX = "dae-sandbox-"
MAX_SLOTS = 64  # sandbox users per machine (dae-sandbox-0 ...)
MACHINE_SLOT_LOCKS = Path("/run/dae-grader-slots")  # root's: every grader on the machine leases its slots there
BWRAP_VARIABLE = "DAE_GRADER_BWRAP"  # the bubblewrap the grader uses, when set (bubblewrap())
LAB_FILES = (
    "helpers.py",
    "checks",
    "levelup.py",
    "grading",
    "benchmarks/hybrid.py",
)  # what a kernel may import, read-only
# (benchmarks/hybrid.py: handed out, and the challenge card suggests `from benchmarks import hybrid`)


FULL_BYTES = 2**20  # a job's space with less free than this is full (a failed write leaves less than a page)
SPACE_INODES = 100_000  # files and folders in a job's space
NPROC_MARGIN = 32  # the per-user process limit sits above the cgroup's, so that the cgroup is the one that records


ADDRESS_SPACE_FACTOR = 2  # of the memory limit, where a control group bounds the real memory (address_space)


class Limits(NamedTuple):
    """Resource limits for one kernel and everything it starts."""

    memory: int = (
        6 * 2**30
    )  # bytes: the job's cgroup (its processes, tmpfs and page cache) and each process's address space
    processes: int = 512  # processes and threads of one job (TensorFlow starts about 100 threads)
    file_size: int = 2 * 2**30  # bytes in any one file it writes
    open_files: int = 1024
    space: int = 2 * 2**30  # bytes it can write in all: its work folder, /tmp and /dev/shm

    def words(self, limit):
        """What a verdict says for a limit hit: "memory", "processes" or "space"."""
        return {
            "memory": f"out of memory (limit {gib(self.memory)})",
            "processes": f"too many processes (limit {self.processes})",
            "space": f"disk space (limit {gib(self.space)})",
        }[limit]


def gib(size):
    """A size in bytes in words, e.g. '6 GiB'."""
    return f"{size / 2**30:g} GiB"


class Sandbox(NamedTuple):
    """What this machine lets the grader use: the unprivileged users, bubblewrap, and what is missing."""

    users: tuple  # one (uid, gid) per job slot; empty when not root
    bwrap: str  # path to bubblewrap, or "" when it is missing or does not work here
    missing: tuple  # the missing layers, a few words each (each row graded without them says so)
    hierarchy: cgroups.Hierarchy | None = None  # where the job slots' control groups live; None when there are none
    space: bool = False  # whether each job gets a size-limited tmpfs of its own
    reasons: tuple = ()  # for each missing layer: why, what it costs, the fix (said once at the start of a run)

    @property
    def complete(self):
        """Whether every layer is available."""
        return not self.missing


def probe(slots):
    """Find out which layers work here, creating the sandbox users when root; return a Sandbox."""
    missing, reasons, users = [], [], ()
    root = os.geteuid() == 0

    def lack(name, reason):
        """Record a missing layer: its name for the rows, and why for the start of a run."""
        missing.append(name)
        reasons.append(reason)

    if root:
        try:
            users = tuple(ensure_user(f"{USER_PREFIX}{slot}") for slot in range(slots))
        except (OSError, subprocess.CalledProcessError) as err:
            lack("no sandbox users", f"could not create the unprivileged sandbox users ({err})")
    bwrap, refused = bubblewrap(), "bubblewrap is not installed (fix: apt-get install bubblewrap)"
    if bwrap:
        tried = subprocess.run([bwrap, *namespaces(), "--ro-bind", "/", "/", "true"], capture_output=True, text=True)
        said = tried.stderr.strip() or f"exit status {tried.returncode}"
        refused = "" if tried.returncode == 0 else unshare_refusal(said) if not root else f"bubblewrap failed: {said}"
        bwrap = "" if refused else bwrap
    if refused and root:
        lack("no namespaces", f"unsandboxed: {refused}, so kernels see the grader's files, processes and network")
    elif refused:
        lack(
            "no namespaces and no user of its own: a kernel could read and change the grader's files",
            f"unsandboxed: {refused}; and not running as root, so each kernel runs as your own user with your files, processes "
            "and network: a submission can read and change whatever you can, the grades included. Or grade as "
            'root (docs/grading-at-scale.md, "Grading without root")',
        )
    hierarchy, why = usable_cgroups()
    if hierarchy is None:
        lack(
            "no per-job control groups",
            f"no control groups for per-job limits ({why}), so a job's memory is limited per process only "
            "(its /tmp not counted) and jobs running at once do not get equal CPU shares",
        )
    space, why = can_mount()
    if not space:
        lack(
            "no size-limited space per job",
            f"no size-limited space per job ({why}), so a job can fill the disk its work folder is on",
        )
    return Sandbox(users, bwrap, tuple(missing), hierarchy, space, tuple(reasons))


def bubblewrap():
    """The bubblewrap to use: $DAE_GRADER_BWRAP when set (empty: as if none were installed; the tests set it to
    simulate a machine without it, or a broken one), else `bwrap` on the PATH; "" when there is none."""
    chosen = os.environ.get(BWRAP_VARIABLE)
    return shutil.which(chosen if chosen is not None else "bwrap") or ""


USERNS_SETTINGS = (  # (file, value that forbids unprivileged user namespaces, why, fix)
    (
        "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
        "1",
        "AppArmor refuses unprivileged user namespaces to programs without a profile that allows them, as on "
        "Ubuntu 24.04",
        "an administrator loads bubblewrap's AppArmor profile: sudo apt-get install apparmor-profiles && sudo cp "
        "/usr/share/apparmor/extra-profiles/bwrap-userns-restrict /etc/apparmor.d/ && sudo apparmor_parser -r "
        "/etc/apparmor.d/bwrap-userns-restrict (or allows them for every program: sudo sysctl "
        "kernel.apparmor_restrict_unprivileged_userns=0)",
    ),
    (
        "/proc/sys/kernel/unprivileged_userns_clone",
        "0",
        "the kernel setting kernel.unprivileged_userns_clone is 0",
        "an administrator allows them: sudo sysctl kernel.unprivileged_userns_clone=1",
    ),
    (
        "/proc/sys/user/max_user_namespaces",
        "0",
        "the kernel setting user.max_user_namespaces is 0",
        "an administrator allows them: sudo sysctl user.max_user_namespaces=10000",
    ),
)


def unshare_refusal(said):
    """Why bubblewrap cannot make a user namespace for the grader's user here, with the fix: from the kernel's
    settings, else from what bubblewrap said."""
    for path, forbids, why, fix in USERNS_SETTINGS:
        try:
            if Path(path).read_text().strip() == forbids:
                return f"bubblewrap cannot create user namespaces here: {why} (fix: {fix})"
        except OSError:
            continue
    return (
        f"bubblewrap cannot create user namespaces here ({said}) (fix: an administrator allows unprivileged "
        "user namespaces)"
    )


def describe(box, limits):
    """What holds where the grader runs, in lines to say once at the start of a run."""
    root = os.geteuid() == 0
    who = f"as a user of its own ({USER_PREFIX}N)" if box.users else "as root" if root else "as your own user"
    where = (
        " in bubblewrap's namespaces"
        + ("" if root else ", with a user namespace of the job's own")
        + ": it sees only the system, the lab's modules and its own folders, none of the grader's processes, "
        "no network and no IPC"
        if box.bwrap
        else ", with no namespaces"
    )
    lines = [
        f"Sandbox ({'running as root' if root else 'not running as root'}): "
        + ("every layer holds; " if box.complete and root else "")
        + f"each kernel runs {who}{where}. Limits per job: {', '.join(limit_words(box, limits))}."
    ]
    if box.bwrap and not root:
        lines.append(
            "Not held without root: a user of the kernel's own. It runs as your user inside its namespaces, so what "
            "bubblewrap hides it cannot reach, but a flaw in bubblewrap or the kernel would expose your files."
        )
    lines += [f"Warning: {reason}." for reason in box.reasons]
    return lines


def address_space(box, limits):
    """Each kernel process's address-space limit: its memory limit, or twice that where a control group bounds the
    job's real memory (TensorFlow reserves address space it never uses: a valid notebook holding float64 copies of
    the data peaked at 6.2 GiB of address space with 3.7 GiB resident)."""
    return limits.memory * (ADDRESS_SPACE_FACTOR if box.hierarchy else 1)


def limit_words(box, limits):
    """The limits that hold for each job here, in words."""
    if box.hierarchy:
        words = [f"{gib(limits.memory)} of memory (its control group: /tmp and page cache counted)"]
        words.append(f"{limits.processes} processes and threads (its control group), equal CPU shares")
        words.append(f"{gib(address_space(box, limits))} of address space per process")
    else:
        words = [f"{gib(limits.memory)} of address space per process"]
        if counts_processes(box):
            counted = "per sandbox user" if box.users else "in the job's user namespace"
            words.append(f"{limits.processes} processes and threads (counted {counted})")
        else:
            words.append("no process limit (it would count all your processes, not the job's)")
    if box.space:
        words.append(f"{gib(limits.space)} of space in all")
    elif box.bwrap:
        words.append(f"{gib(limits.space)} each in /tmp and /dev/shm (its work folder: only the limit per file)")
    return words + [f"{gib(limits.file_size)} a file", f"{limits.open_files} open files"]


def counts_processes(box):
    """Whether a job's process limit counts only its own processes: a sandbox user of its own, or (without root)
    a user namespace of its own; otherwise it would count every process of the grader's user."""
    return bool(box.users) or (bool(box.bwrap) and os.geteuid() != 0)


def row_note(box):
    """The note of every row graded here: "" when every layer held, else the missing ones (describe says why)."""
    if box.complete:
        return ""
    return ("unsandboxed: " if not box.bwrap else "partly sandboxed: ") + "; ".join(box.missing)


def usable_cgroups():
    """(cgroups.Hierarchy, "") when job groups can be made here, with leftovers of killed graders removed; else (None, why)."""
    hierarchy, why = cgroups.find()
    if hierarchy is None:
        return None, why
    try:
        cgroups.prepare(hierarchy)
    except OSError as err:
        return None, f"cannot create {cgroups.TOP} under {', '.join(hierarchy.bases)}: {err.strerror or err}"
    for group in cgroups.leftovers(hierarchy):  # a killed grader's
        group.remove()
    return hierarchy, ""


def can_mount():
    """(True, "") when a job's space can be mounted here (root, util-linux's unshare and mount); else (False, why)."""
    if os.geteuid() != 0:
        return False, "not running as root"
    with tempfile.TemporaryDirectory() as folder:
        tried = subprocess.run(
            [*private_mounts(), "mount", "-t", "tmpfs", "-o", "size=1M", "dae-grader-probe", folder],
            capture_output=True,
            text=True,
        )
    if tried.returncode != 0:
        return False, f"a tmpfs cannot be mounted in a mount namespace of its own: {tried.stderr.strip()}"
    return True, ""


def private_mounts():
    """The command prefix that runs a program in a mount namespace of its own: its mounts vanish when it ends."""
    return ["unshare", "--mount", "--propagation", "private", "--"]


def slot_locks():
    """The folder of this machine's slot lock files, private to the grader's user: for root (whose jobs run as the
    machine's sandbox users) one for the whole machine, whatever TMPDIR a grader has; else in the temporary folder."""
    if os.geteuid() == 0 and Path("/run").is_dir():
        folder = MACHINE_SLOT_LOCKS
    else:
        folder = Path(tempfile.gettempdir()) / f"dae-grader-slots-{os.geteuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    info = folder.lstat()
    if not folder.is_dir() or folder.is_symlink() or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise RuntimeError(f"{folder} must be a folder of the grader's own user, private to it (chmod 700); remove it")
    return folder


@contextlib.contextmanager
def leased_slot(preferred):
    """Hold a job slot (a sandbox user) that no other grader process on this machine holds, from preferred on.

    Two graders on one machine (two runs, or two Dask workers whose names hash alike) would otherwise share a
    sandbox user, and so its process limit: one submission's fork bomb would starve the other's kernel.
    """
    folder = slot_locks()
    for offset in range(MAX_SLOTS):
        slot = (preferred + offset) % MAX_SLOTS
        fd = try_lease(folder, slot)
        if fd is None:
            continue
        try:
            yield slot
        finally:
            os.close(fd)  # releases the lock
        return
    raise RuntimeError(f"all {MAX_SLOTS} sandbox slots on this machine are in use by other grader processes")


def try_lease(folder, slot):
    """The open, locked lock file of slot when no other process holds it (close it to release), else None."""
    fd = os.open(folder / f"slot-{slot}", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


@contextlib.contextmanager
def job_group(sandbox, limits):
    """A new control group with the job's limits, for as long as the job runs; then its processes are killed and it
    is removed (with any earlier one that would not go then). None where there are no control groups."""
    if sandbox.hierarchy is None:
        yield None
        return
    for group in cgroups.leftovers(sandbox.hierarchy):
        group.remove(wait=0)
    group = cgroups.Group(sandbox.hierarchy, cgroups.new_name())
    cgroups.LIVE.add(group.name)
    try:
        group.create(limits.memory, limits.processes)
        yield group
    finally:
        cgroups.LIVE.discard(group.name)
        group.remove()


class Space:
    """A job's writable space: a tmpfs of limits.space bytes at folder, holding the kernel's work folder, socket
    folder, /tmp and /dev/shm. Mounted in the grader worker's own mount namespace (private_mounts), so a worker that
    is killed takes it along; its pages count towards the job's memory (the kernel writes them)."""

    def __init__(self, folder, limits):
        self.folder = Path(folder)
        self.folder.mkdir(mode=0o700)
        options = f"size={limits.space},nr_inodes={SPACE_INODES},mode=0755,nosuid,nodev"
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "dae-grader-space", str(self.folder)],
            check=True,
            capture_output=True,
        )

    def full(self):
        """Whether the space is full (of bytes or of files) now."""
        info = os.statvfs(self.folder)
        return info.f_bavail * info.f_frsize < FULL_BYTES or info.f_favail == 0

    def close(self):
        """Unmount the space (lazily: a process still in it lets go when it ends), and so free its memory."""
        subprocess.run(["umount", "--lazy", str(self.folder)], capture_output=True)


def limit_hit(limits, group, space):
    """The words for the limit this job's controls recorded hitting (memory, processes, its space), or ""."""
    hits = group.hits() if group is not None else set()
    for limit in ("memory", "processes"):
        if limit in hits:
            return limits.words(limit)
    return limits.words("space") if space is not None and space.full() else ""


def ensure_user(name):
    """(uid, gid) of an unprivileged system user `name` without a home or shell, created if needed."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        made = subprocess.run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ],
            capture_output=True,
            text=True,
        )
        try:
            entry = pwd.getpwnam(name)  # also there when another grader created it at the same moment
        except KeyError:
            raise OSError(f"useradd {name} failed: {made.stderr.strip()}") from None
    return entry.pw_uid, entry.pw_gid


def namespaces():
    """bubblewrap's options for new namespaces: as root no user namespace (the user switch is setpriv's); without
    root one per job, in which the kernel cannot make more, so that its process limit counts only the job."""
    return [
        *(["--unshare-user", "--disable-userns"] if os.geteuid() != 0 else []),
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
    ]


def owner(sandbox, slot):
    """The (uid, gid) the kernel of job slot `slot` runs as, or None when there is no user switch."""
    return sandbox.users[slot % len(sandbox.users)] if sandbox.users else None


def processes_of(uid):
    """The PIDs of this machine's processes whose real user is uid (zombies included: they count towards its limit)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue  # it ended meanwhile
        real = next((line.split()[1] for line in status.splitlines() if line.startswith("Uid:")), None)
        if real == str(uid):
            pids.append(int(entry.name))
    return pids


def clear(sandbox, slot, wait=30):
    """Kill whatever an earlier job left running as the slot's user, and wait up to `wait` s until it is gone.

    A slot is leased to one job at a time, so any process of its user is left over: a fork bomb's children
    still being reaped after its sandbox was torn down would otherwise count towards the next job's limit.
    """
    ids = owner(sandbox, slot)
    deadline = time.monotonic() + wait
    while ids is not None and (pids := processes_of(ids[0])) and time.monotonic() < deadline:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.1)


def prepare(folder, sandbox, slot):
    """Hand folder (a job's work or socket folder) to the slot's sandbox user, private to it."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = owner(sandbox, slot)
    if ids is not None:
        os.chown(folder, *ids)
    folder.chmod(0o700)


def open_way(folder, sandbox, slot):
    """Without bubblewrap, let the slot's user pass through the job's folder (private to the grader) to its own work
    and socket folders inside, without listing it: with bubblewrap they are mounted where the kernel sees them, but
    unsandboxed the kernel reaches them by their paths, and could not read its connection file."""
    if not sandbox.bwrap and owner(sandbox, slot) is not None:
        Path(folder).chmod(0o711)


def readable_paths(lab_dir, work):
    """[(path outside, path inside)] the kernel may read: Python, its packages, the lab's files, the data."""
    python = [(Path(p), Path(p)) for p in dict.fromkeys((sys.base_prefix, sys.prefix))]
    lab = [(Path(lab_dir) / name, Path("/lab") / name) for name in LAB_FILES if (Path(lab_dir) / name).exists()]
    data = [(Path(os.environ.get("DAE_DATA_DIR", "")), Path(os.environ.get("DAE_DATA_DIR", "")))]
    keras_cache = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"  # MNIST, once downloaded
    data.append((keras_cache, Path(work) / ".keras" / "datasets"))
    return python + lab + [(outside, inside) for outside, inside in data if str(outside) != "." and outside.is_dir()]


def kernel_command(command, sandbox, slot, limits, work, sockets, lab_dir, env, scratch=None):
    """The kernel's command line wrapped in the sandbox's layers (those available): bubblewrap outermost, so that
    without root the limits are set inside the job's user namespace, where its process count is its own.

    scratch: the folders on the job's space that become its /tmp and /dev/shm ({path inside: folder}); without
    them each is a tmpfs of bubblewrap's of limits.space bytes.
    """
    wrapped = list(command)
    ids = owner(sandbox, slot)
    if ids is not None:
        wrapped = [
            "setpriv",
            f"--reuid={ids[0]}",
            f"--regid={ids[1]}",
            "--clear-groups",
            "--no-new-privs",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
            *wrapped,
        ]
    wrapped = [
        "prlimit",
        f"--as={address_space(sandbox, limits)}",
        *(
            [f"--nproc={limits.processes + (NPROC_MARGIN if sandbox.hierarchy else 0)}"]
            if counts_processes(sandbox)
            else []
        ),
        f"--fsize={limits.file_size}",
        f"--nofile={limits.open_files}",
        "--core=0",
        "--",
        *wrapped,
    ]
    if sandbox.bwrap:
        mounts = ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
        for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            mounts += ["--symlink", os.readlink(top), top] if os.path.islink(top) else ["--ro-bind-try", top, top]
        mounts += ["--proc", "/proc", "--dev", "/dev"]
        for inside in ("/tmp", "/dev/shm"):
            outside = (scratch or {}).get(inside)
            bounded = ["--perms", "1777", "--size", str(limits.space), "--tmpfs", inside]
            mounts += ["--bind", str(outside), inside] if outside else bounded
        readable = readable_paths(lab_dir, work)
        for folder in parent_folders([Path(work), Path(sockets), *(inside for _, inside in readable)]):
            mounts += ["--perms", "0755", "--dir", str(folder)]  # bwrap would make them private to root
        mounts += ["--bind", str(work), str(work), "--bind", str(sockets), str(sockets)]
        for outside, inside in readable:
            mounts += ["--ro-bind", str(outside), str(inside)]
        mounts += ["--chdir", str(work), "--clearenv"]
        for key, value in env.items():
            mounts += ["--setenv", key, value]
        wrapped = [sandbox.bwrap, *namespaces(), *mounts, "--", *wrapped]
    elif ids is not None:  # unsandboxed as root: the kernel's user must still reach Python and the lab
        wrapped = [*reach(unsandboxed_paths(lab_dir), [Path(work), Path(sockets)], ids), *wrapped]
    return wrapped


def unsandboxed_paths(lab_dir):
    """What an unsandboxed kernel reads at its own path: Python (the venv and its base), the lab's modules, the data."""
    python = [Path(p) for p in dict.fromkeys((sys.base_prefix, sys.prefix))]
    data = Path(os.environ.get("DAE_DATA_DIR", ""))
    return [*python, *(Path(lab_dir) / name for name in LAB_FILES), *([data] if str(data) != "." else [])]


def blocked(path, ids):
    """The outermost folder above path that the user ids = (uid, gid) cannot pass through (no search permission), or
    None (also where path is missing)."""
    for folder in [*reversed(Path(path).parents)]:
        try:
            info = os.stat(folder)
        except OSError:
            return None
        bit = 0o100 if info.st_uid == ids[0] else 0o010 if info.st_gid == ids[1] else 0o001
        if not info.st_mode & bit:
            return folder
    return None


@functools.cache
def mounts_allowed():
    """Whether this process can mount in a mount namespace of its own (can_mount), found out once."""
    return can_mount()[0]


def reach(readable, writable, ids):
    """The command prefix that lets the user ids reach the paths readable (read-only) and writable, each at its own
    path, where a folder above one is closed to that user (a lab cloned into a 0700 folder, Python under root's 0700
    home): in a mount namespace of the kernel's own, each such closed folder is covered by a fresh tmpfs (0755, so
    nothing else in it shows) in which the paths are bound again, as bubblewrap's --dir --perms 0755 and --ro-bind
    do. [] where nothing is closed or nothing can be mounted (then the pre-flight says what the kernel could not
    reach). The instructor's folders keep their permissions; the kernel still runs as its own user."""
    paths = [(Path(os.path.realpath(p)), ro) for ps, ro in ((readable, True), (writable, False)) for p in ps]
    paths = [(path, ro) for path, ro in paths if os.path.lexists(path)]
    closed = {folder for path, _ in paths if (folder := blocked(path, ids)) is not None}
    closed = sorted(f for f in closed if not any(other in f.parents for other in closed))
    if not closed or not mounts_allowed():
        return []
    moved = [(path, ro) for path, ro in paths if any(folder in path.parents for folder in closed)]
    moved.sort(key=lambda item: len(item[0].parts))
    lines = ["set -eu", "umask 022", "stash=$(mktemp -d)", 'mount -t tmpfs -o mode=0700 dae-reach "$stash"']
    for number, (path, _) in enumerate(moved):
        make = "mkdir" if path.is_dir() else "touch"
        lines += [f'{make} "$stash/{number}"', f'mount --rbind {shlex.quote(str(path))} "$stash/{number}"']
    lines += [f"mount -t tmpfs -o mode=0755 dae-reach {shlex.quote(str(folder))}" for folder in closed]
    for number, (path, ro) in enumerate(moved):
        target = shlex.quote(str(path))
        make = f"mkdir -p {target}" if path.is_dir() else f"mkdir -p {shlex.quote(str(path.parent))}; touch {target}"
        lines += [make, f'mount --rbind "$stash/{number}" {target}']
        lines += [f"mount -o remount,bind,ro {target}"] if ro else []
    lines += ['umount -l "$stash"', 'rmdir "$stash"', 'exec "$@"']
    return [*private_mounts(), "sh", "-c", "\n".join(lines), "sh"]


def parent_folders(paths):
    """The folders above paths, outermost first, that the sandbox must create (all but / and /tmp)."""
    folders = {parent for path in paths for parent in path.parents}
    return sorted((f for f in folders if str(f) not in ("/", "/tmp", "/usr", "/etc")), key=lambda f: len(f.parts))


def kernel_env(sandbox, work, lab_dir):
    """The environment the kernel gets: no secrets of the grader's, the lab's modules on the path."""
    lab_path = "/lab" if sandbox.bwrap else str(lab_dir)
    keep = ("KERAS_BACKEND", "DAE_DATA_DIR", "LANG", "TZ")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env.update(
        {
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(work),
            "MPLCONFIGDIR": str(Path(work) / ".matplotlib"),
            "MPLBACKEND": "agg",
            "PYTHONPATH": lab_path,
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONDONTWRITEBYTECODE": "1",
            # numpy's huge pages for arrays of 4 MiB and more: off unless the grader's own setting says otherwise
            # (tools/grade.py; on a 2-core VM they took an honest notebook's grading from 21 s to 48 s,
            # docs/benchmarks.md "Huge pages")
            "NUMPY_MADVISE_HUGEPAGE": os.environ.get("NUMPY_MADVISE_HUGEPAGE", "0"),
        }
    )
    return env
