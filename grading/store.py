"""The results store: each submission's Row saved atomically as it finishes, keyed by content hash,
so that a run that was killed and started again grades only what is new or changed."""

import hashlib
import json
from pathlib import Path

from grading.report import Row

STORE_DIR = ".grades"  # inside the tables' folder; hidden, so never taken for a submission
GRADER_FILES = (  # a folder stands for its .py files
    "checks",
    "helpers.py",
    "grading/execute.py",
    "grading/export.py",
    "grading/sandbox.py",
    "grading/cgroups.py",
)


def fingerprint(lab_dir, tasks, timeout, sandboxed):
    """A hash of what decides a grade besides the notebook: the checks, the grader, the time limit, the sandbox."""
    digest = hashlib.sha256(json.dumps([list(tasks), timeout, sandboxed]).encode())
    for name in GRADER_FILES:
        path = Path(lab_dir) / name
        for file in sorted(path.glob("*.py")) if path.is_dir() else [path]:
            digest.update(f"{file.relative_to(lab_dir)}\0".encode() + file.read_bytes())
    return digest.hexdigest()


def key(notebook, name, grader):
    """The store key of one submission: its name, its bytes and the grader's fingerprint."""
    digest = hashlib.sha256(grader.encode())
    digest.update(name.encode() + b"\0")
    digest.update(Path(notebook).read_bytes())
    return digest.hexdigest()[:32]


class Store:
    """Rows saved one file each under folder/.grades/."""

    def __init__(self, folder):
        self.folder = Path(folder) / STORE_DIR

    def get(self, key):
        """The Row saved under key, or None."""
        path = self.folder / f"{key}.json"
        try:
            return Row.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key, row):
        """Save row under key, atomically."""
        from run_notebook import write_atomic

        write_atomic(self.folder / f"{key}.json", json.dumps(row.to_json()).encode("utf-8"))
