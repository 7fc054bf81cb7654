"""Execute a notebook headless in a fresh kernel and write its outputs back, atomically."""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def write_atomic(path, data):
    """Write bytes to path through a temporary file and os.replace, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; give it a new file's usual mode
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def notebook_bytes(notebook):
    """The notebook as the bytes nbformat writes (deterministic for the same notebook)."""
    return nbformat.writes(notebook).encode("utf-8") + b"\n"


def execute_notebook(path, timeout=600):
    """Run every cell of the notebook at path and replace it only if the whole run succeeds."""
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    write_atomic(path, notebook_bytes(nb))


def main(argv=None):
    """Command line: run_notebook.py NOTEBOOK [--timeout S]."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("notebook")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    execute_notebook(args.notebook, args.timeout)
    print(f"{args.notebook}: executed in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
