"""Execute a notebook headless in a fresh kernel and write its outputs back, atomically."""

import argparse
import os
import shutil
import sys
import tempfile
import time
import weakref
from pathlib import Path

import nbformat
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

KERNEL_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2"}  # set before the kernel imports TensorFlow


class IPCKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel talks over IPC sockets in a private temporary folder (not TCP)."""

    def __init__(self, **kwargs):
        sockets = tempfile.mkdtemp(prefix="kernel-ipc-")
        super().__init__(transport="ipc", ip=os.path.join(sockets, "kernel"), **kwargs)
        weakref.finalize(self, shutil.rmtree, sockets, ignore_errors=True)


def notebook_client(notebook, directory, timeout=600, kernel_manager_class=IPCKernelManager, **options):
    """The lab's one NotebookClient: a fresh python3 kernel on IPC sockets, cells run in directory."""
    return NotebookClient(notebook, timeout=timeout, kernel_name="python3", kernel_manager_class=kernel_manager_class,
                          resources={"metadata": {"path": str(directory)}}, **options)


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
    notebook_client(nb, path.parent, timeout).execute(env={**os.environ, **KERNEL_ENV})
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
