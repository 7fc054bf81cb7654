"""Admission: the one place where a submission enters the grader. What it takes is a regular file inside the
submissions folder, read once and bounded, under a safe and unique name; everything else gets a row saying why.

- Found by walking the folder through open folder descriptors, never following a symbolic link: a link (to a file
  or a folder; a git repository or an archive can carry them) is refused with its own row, as is anything that is not
  a regular file (a FIFO, a socket, a device), so no file outside the folder is ever read.
- Opened with O_NOFOLLOW (and O_NONBLOCK: a FIFO swapped in cannot hang the grader), then checked with fstat on that
  same descriptor: what was checked is what is read (no time-of-check to time-of-use gap), and the bytes read are
  the bytes graded and hashed for the store.
- Bounded before it is parsed: at most MAX_BYTES, at most MAX_CONTAINERS JSON objects and arrays (counted as their
  opening brackets, strings included: an overestimate), so that the parse cannot take more than about a GiB.
- Parsed once (`parse`), in a grader worker process: under its address-space limit and its per-job time limit.
- Named by its file stem, or its path where stems repeat, made safe (text.safe) and unique, never read as a
  reference row's label (text.reserved: such a name gets a hash of its path after it); names that a person would
  read alike (text.likeness: invisible characters, case, compatibility forms, Unicode's confusables) are marked
  (`alike`).
"""

import collections
import hashlib
import os
import re
import stat
import warnings
from pathlib import Path
from typing import NamedTuple

from grading.text import NAME_CHARS, REFERENCE_MARK, likeness, reserved, safe

MAX_BYTES = 50 * 2**20  # of one submission: the answer key with its figures is about 1 MiB
MAX_CONTAINERS = 1_000_000  # JSON objects and arrays in one submission: a notebook has a few per cell and output
MAX_DEPTH = 16  # of folders searched below the submissions folder
STORE_DIR = ".grades"  # what a results store looks like (store.py): one inside the submissions folder is never read
FEEDBACK_DIR = "feedback"


class UsageError(Exception):
    """Bad input the user has to fix; the message says what and how."""


class NotGradable(Exception):
    """A submission that cannot be run at all (not a notebook, malformed JSON)."""


class Submission(NamedTuple):
    """One submission as admitted: its name, its path under the folder, its bytes, or why it was refused."""

    name: str
    path: str
    data: bytes = b""
    refused: str = ""


class Found(NamedTuple):
    """What a search of the submissions folder found."""

    submissions: list  # of Submission, admitted or refused
    skipped: list  # paths (safe text) of files that are not notebooks
    stores: list  # paths of store-looking folders inside it (ignored)
    root: Path


def find(path, is_ignored=lambda relative: False):
    """Admit the notebook at path, or every notebook in the folder at path; raise UsageError when there are none."""
    path = Path(path)
    if not os.path.lexists(path):
        raise UsageError(f"{path} does not exist: give a notebook (.ipynb) or a folder of notebooks.")
    path = path.resolve()  # the instructor's own choice of folder or file: a link to it is followed
    if not path.is_dir():
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            entry = admit(fd, path.name, Path(path.name), path.parent)
        finally:
            os.close(fd)
        return Found(name_all([entry]), [], [], path.parent)
    entries, skipped, stores = [], [], []
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        search(fd, Path(), path, is_ignored, entries, skipped, stores)
    finally:
        os.close(fd)
    if not entries:
        found = (
            f"; it holds only {len(skipped)} other file(s): {', '.join(skipped[:5])}" if skipped else " (it is empty)"
        )
        raise UsageError(
            f"{path} holds no notebooks (*.ipynb){found}. Give the folder that holds the submitted notebooks."
        )
    return Found(name_all(entries), skipped, stores, path)


def search(dir_fd, relative, root, is_ignored, entries, skipped, stores):
    """Walk the folder open as dir_fd (at relative under root) without following links, adding what it holds."""
    for name in sorted(os.listdir(dir_fd)):
        here = relative / name
        info = os.lstat(name, dir_fd=dir_fd)
        if is_ignored(here) or name.startswith(".") or name == "__pycache__":
            if name == STORE_DIR and stat.S_ISDIR(info.st_mode):
                stores.append(safe(here.as_posix()))
            continue
        if stat.S_ISDIR(info.st_mode):
            if len(here.parts) > MAX_DEPTH:
                skipped.append(safe(f"{here.as_posix()}/ (over {MAX_DEPTH} folders deep, not searched)"))
                continue
            try:
                fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
            except OSError as err:
                skipped.append(safe(f"{here.as_posix()}/ (cannot open: {err.strerror})"))
                continue
            try:
                search(fd, here, root, is_ignored, entries, skipped, stores)
            finally:
                os.close(fd)
        elif name.endswith(".ipynb") or (stat.S_ISLNK(info.st_mode) and links_to_folder(dir_fd, name)):
            entries.append(admit(dir_fd, name, here, root))
        else:
            skipped.append(safe(here.as_posix()))


def links_to_folder(dir_fd, name):
    """Whether the link name (in the folder open as dir_fd) points to a folder (it is not followed to search it)."""
    try:
        return stat.S_ISDIR(os.stat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


def admit(dir_fd, name, relative, root):
    """The Submission of the file name in the folder open as dir_fd: its bytes, or why it is refused."""
    path = relative.as_posix()
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as err:
        return Submission(path, path, refused=refusal_of_unopened(dir_fd, name, err))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return Submission(path, path, refused=f"not a regular file ({kind(info.st_mode)}): not read")
        where = os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else str(root / relative)
        if not Path(where).is_relative_to(root):
            return Submission(path, path, refused="outside the submissions folder: not read")
        if info.st_size > MAX_BYTES:
            return Submission(path, path, refused=too_large(info.st_size))
        with os.fdopen(os.dup(fd), "rb") as file:
            data = file.read(MAX_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:
        return Submission(path, path, refused=too_large(len(data)))
    if data.count(b"{") + data.count(b"[") > MAX_CONTAINERS:
        return Submission(
            path,
            path,
            refused=f"not a notebook: over {MAX_CONTAINERS:,} JSON objects and arrays (a notebook has a few per cell)",
        )
    return Submission(path, path, data)


def refusal_of_unopened(dir_fd, name, err):
    """Why the file name could not be opened: a symbolic link (where to), or the system's reason."""
    try:
        info = os.lstat(name, dir_fd=dir_fd)
        if stat.S_ISLNK(info.st_mode):
            target = safe(os.readlink(name, dir_fd=dir_fd), 200)
            return f"a symbolic link (to {target}): only regular files in the submissions folder are graded, not read"
    except OSError:
        pass
    return f"cannot read the file: {err.strerror or err}"


def kind(mode):
    """What a file that is not a regular one is, in words."""
    kinds = {
        stat.S_ISDIR: "a folder",
        stat.S_ISFIFO: "a FIFO",
        stat.S_ISSOCK: "a socket",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
    }
    return next((words for test, words in kinds.items() if test(mode)), "an unknown kind of file")


def too_large(size):
    """The refusal of a file of size bytes."""
    return f"too large: {size / 2**20:.1f} MiB, over the {MAX_BYTES // 2**20} MiB a submission may be: not read"


def name_all(entries):
    """The entries named by their file stems, or their paths under the folder where stems repeat; each name safe
    (text.safe, at most NAME_CHARS), never a reference row's label (a name that could read as one, text.reserved,
    becomes its letters, digits and `_.-` with a hash of its path after them: `answer_key_s_entry_reference~…`) and
    unique: where making a name safe made it like another's, a hash of its path is
    added, and where any two names are still alike after that (a file named like another's hashed name), both get a
    further hash of their paths, until none are."""
    raw = raw_names(entries)
    names = [safe(name, NAME_CHARS) for name in raw]
    names = [
        f"{plain(n)[:60]}~{short_hash(f'reserved:{e.path}')}" if reserved(n) else n for n, e in zip(names, entries)
    ]
    for attempt in range(len(names) + 1):
        counts = collections.Counter(names)
        clashing = [i for i, name in enumerate(names) if counts[name] > 1]
        if not clashing:
            break
        changed = [i for i in clashing if names[i] != raw[i]] if attempt == 0 else []
        for i in changed or clashing:
            names[i] = f"{names[i][: NAME_CHARS - 13]}~{short_hash(f'{attempt}:{entries[i].path}')}"
    return [e._replace(name=name) for e, name in zip(entries, names)]


def raw_names(entries):
    """The entries' names as their files give them, before they are made safe: the file stem, or the path under the
    folder (without .ipynb) where stems repeat."""
    stems = collections.Counter(Path(e.path).stem for e in entries)
    return [Path(e.path).stem if stems[Path(e.path).stem] == 1 else e.path.removesuffix(".ipynb") for e in entries]


def alike(submissions):
    """{name: [the other names that look like it]} for every submission whose name a person would read like
    another's (the same text.likeness of the names their files give), as named by name_all; symmetric."""
    groups = collections.defaultdict(list)
    for sub, raw in zip(submissions, raw_names(submissions)):
        groups[likeness(raw)].append(sub.name)
    return {
        name: [other for other in names if other != name]
        for names in groups.values()
        if len(names) > 1
        for name in names
    }


def plain(name):
    """name's runs of anything but ASCII letters, digits and `_.-` made one `_` each (no bracket of a label is left)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name, flags=re.ASCII).strip("._") or "notebook"


def short_hash(text):
    """12 hex digits of text's SHA-256."""
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:12]


def shared_names(submissions):
    """Warnings for stems that more than one submission shares (their rows are named by path), and for names that
    look alike (`alike`: both are marked in the tables and the class report)."""
    stems = collections.defaultdict(list)
    for sub in submissions:
        stems[safe(Path(sub.path).stem, NAME_CHARS)].append(sub.name)
    shared = [
        f"{len(names)} submissions share the name {stem!r}: their rows are named by path ({', '.join(names)})."
        for stem, names in sorted(stems.items())
        if len(names) > 1
    ]
    groups = sorted({tuple(sorted([name, *others])) for name, others in alike(submissions).items()})
    taken = [
        f"'{safe(raw, NAME_CHARS)}' reads like a leaderboard reference row's label (it holds '{REFERENCE_MARK}'): "
        f"its row is named {sub.name}."
        for sub, raw in zip(submissions, raw_names(submissions))
        if reserved(raw)
    ]
    return (
        shared
        + taken
        + [
            f"{len(names)} submissions have names that look alike: {', '.join(names)} (told apart only by case, "
            "compatibility forms, look-alike letters (Unicode's confusables) or invisible characters, shown as escapes); "
            "their rows are marked in grades.csv, grades.md and the class report."
            for names in groups
        ]
    )


def parse(data):
    """The submission's bytes as a notebook (nbformat 4), parsed once; or raise NotGradable saying why it is not one."""
    import json

    import nbformat
    from nbformat.reader import get_version

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise NotGradable("not a notebook: the file is not UTF-8 text") from None
    try:
        content = json.loads(text)
    except json.JSONDecodeError as err:
        raise NotGradable(
            f"not a notebook: malformed JSON ({err.msg} at line {err.lineno} column {err.colno})"
        ) from None
    except RecursionError:
        raise NotGradable("not a notebook: JSON nested too deeply") from None
    if not isinstance(content, dict) or "nbformat" not in content:
        raise NotGradable("not a notebook: valid JSON but not in Jupyter's notebook format (no 'nbformat' key)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            major, minor = get_version(content)
            nb = nbformat.convert(nbformat.versions[major].to_notebook_json(content, minor=minor), 4)
        cells = nb.cells
        if not isinstance(cells, list) or not all(
            isinstance(cell, dict) and isinstance(cell.get("source"), str) and isinstance(cell.get("cell_type"), str)
            for cell in cells
        ):
            raise ValueError("its cells are not a list of cells with a type and a source")
        return nb
    except Exception as err:
        raise NotGradable(f"not a notebook: {safe(err, 300)}") from None
