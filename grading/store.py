"""The results store: each submission's Row saved atomically as it finishes, keyed by content hash,
so that a run that was killed and started again grades only what is new or changed.

The store is the grader's, never the class's: it lives where students cannot write (`locate`), and each entry carries
an HMAC-SHA256 of its key and its row under a secret kept in the instructor's cache (`secret`), so an entry planted
or edited by anyone without that secret does not verify and its submission is graded again.
"""

import hashlib
import hmac
import json
import os
import secrets
import weakref
from pathlib import Path

from grading.admit import STORE_DIR, UsageError
from grading.outputs import Folder, open_below
from grading.report import Row

CACHE_DIR = (
    "dae-lab"  # under $XDG_CACHE_HOME (or ~/.cache): the secret, and the stores of tables kept in the class's folder
)
SECRET_FILE = "store.key"
MAX_ENTRY_BYTES = 2**20  # of one stored row (text.safe caps what a row holds far below this)
GRADER_FILES = (  # a folder stands for its .py files
    "checks",
    "helpers.py",
    "grading/execute.py",
    "grading/export.py",
    "grading/sandbox.py",
    "grading/cgroups.py",
    "grading/challenge.py",
)


def fingerprint(lab_dir, tasks, timeout, sandboxed):
    """A hash of what decides a grade besides the notebook: the checks, the grader, the time limit, the sandbox, the
    challenge's hidden set's size (its seed comes from the store's own secret)."""
    from grading.challenge import hidden_count

    digest = hashlib.sha256(json.dumps([list(tasks), timeout, sandboxed, hidden_count()]).encode())
    for name in GRADER_FILES:
        path = Path(lab_dir) / name
        for file in sorted(path.glob("*.py")) if path.is_dir() else [path]:
            digest.update(f"{file.relative_to(lab_dir)}\0".encode() + file.read_bytes())
    return digest.hexdigest()


def key(data, name, grader):
    """The store key of one submission: its name, its bytes (as admitted) and the grader's fingerprint."""
    digest = hashlib.sha256(grader.encode())
    digest.update(name.encode("utf-8", "surrogateescape") + b"\0")
    digest.update(data)
    return digest.hexdigest()[:32]


def cache_dir():
    """The instructor's cache folder for this lab: $XDG_CACHE_HOME/dae-lab, else ~/.cache/dae-lab."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / CACHE_DIR


def place(root, tables):
    """Where the store of a class goes, as (a folder of the instructor's, [names below it]): (tables, [.grades]) when
    the tables are outside the submissions folder root (--out), else (the instructor's cache, [grades, <a hash of
    root's resolved path>]), never inside root. The names below are made and opened without following links."""
    root, tables = Path(root).resolve(), Path(tables).resolve()
    if not tables.is_relative_to(root):
        return tables, (STORE_DIR,)
    return cache_dir(), ("grades", hashlib.sha256(str(root).encode("utf-8", "surrogateescape")).hexdigest()[:16])


def locate(root, tables):
    """The path of the store of a class (place)."""
    base, names = place(root, tables)
    return base.joinpath(*names)


def secret(folder=None):
    """The store's HMAC secret: 32 random bytes in folder/store.key (the cache folder), made on first use, 0600,
    through the folder's descriptor (a link in its place is refused, UsageError)."""
    with Folder.open(folder or cache_dir(), 0o700, "the results store's key") as place_:
        try:
            fd = os.open(
                SECRET_FILE,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
                dir_fd=place_.fd,
            )
        except FileExistsError:
            found = place_.read(SECRET_FILE, 63)
            if found is None:
                raise UsageError(place_.refusal(SECRET_FILE, "a regular file")) from None
            if len(found) >= 32:
                return found
            os.unlink(
                SECRET_FILE, dir_fd=place_.fd
            )  # empty or cut short (a crash while it was made): the old entries regrade
            return secret(folder)
        value = secrets.token_bytes(32)
        with os.fdopen(fd, "wb") as file:
            file.write(value)
        return value


def mac(secret_, key, data):
    """The HMAC-SHA256 of an entry: its key and its row's data."""
    message = key.encode() + b"\0" + json.dumps(data, sort_keys=True).encode("utf-8", "surrogateescape")
    return hmac.new(secret_, message, hashlib.sha256).hexdigest()


class Store:
    """Rows saved one file each in folder, each with its HMAC under secret_. base: the instructor's folder that folder
    is in (store.place), above which links are the instructor's; below it none is followed (outputs.open_below). The
    folder is made (0700) and opened once, here: a link in its place is refused (UsageError)."""

    def __init__(self, folder, secret_, base=None):
        self.folder, self.secret = Path(folder), secret_
        base = Path(base) if base is not None else self.folder
        self.place = open_below(base, self.folder.relative_to(base).parts, 0o700)
        weakref.finalize(self, self.place.close)

    def get(self, key):
        """The Row saved under key, or None (also when its HMAC does not verify: whoever wrote it lacked the secret)."""
        try:
            found = self.place.read(f"{key}.json", MAX_ENTRY_BYTES)
            if found is None:
                return None
            entry = json.loads(found)
            if hmac.compare_digest(str(entry["mac"]), mac(self.secret, key, entry["row"])):
                return Row.from_json(entry["row"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
        return None

    def put(self, key, row):
        """Save row under key with its HMAC, atomically, through the store folder's descriptor."""
        data = row.clean().to_json()
        entry = {"row": data, "mac": mac(self.secret, key, data)}
        self.place.write(f"{key}.json", json.dumps(entry).encode("utf-8"))
