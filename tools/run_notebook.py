"""Execute a notebook headless in a fresh kernel and write its outputs back, atomically.

It prints a line per code cell (cell n of N and the section it is in) and a one-line summary. Outputs that
differ from the stored ones only in timings (Keras's "5s - 11ms/step", "in 36 s", a table's "(s)" columns)
keep their stored text, and no execution timestamps are stored, so a re-run that changed nothing else
leaves the file byte-identical (and does not rewrite it).
"""

import argparse
import copy
import os
import re
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
# What JupyterLab (via ipykernel's kernel spec) writes when it saves a notebook: store the same, so saving changes nothing.
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
TIMING = re.compile(r"\b\d+(?:\.\d+)?\s?(?:ms|us|µs|s)\b(?:/step)?")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", flags=re.MULTILINE)


class IPCKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel talks over IPC sockets in a private temporary folder (not TCP)."""

    def __init__(self, **kwargs):
        sockets = tempfile.mkdtemp(prefix="kernel-ipc-")
        super().__init__(transport="ipc", ip=os.path.join(sockets, "kernel"), **kwargs)
        weakref.finalize(self, shutil.rmtree, sockets, ignore_errors=True)


def notebook_client(notebook, directory, timeout=600, kernel_manager_class=IPCKernelManager, **options):
    """The lab's one NotebookClient: a fresh python3 kernel on IPC sockets, cells run in directory."""
    return NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        kernel_manager_class=kernel_manager_class,
        resources={"metadata": {"path": str(directory)}},
        **options,
    )


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


def mask_table_seconds(text):
    """Replace the cells of markdown-table columns headed '... (s)' by '<t>'."""
    lines, timed = text.split("\n"), set()
    for i, line in enumerate(lines):
        if not line.lstrip().startswith("|"):
            timed = set()
            continue
        cells = line.split("|")
        if "(s)" in line and not timed:
            timed = {k for k, cell in enumerate(cells) if cell.strip().endswith("(s)")}
        elif timed and not set(line) <= set("|-: "):
            lines[i] = "|".join("<t>" if k in timed else cell for k, cell in enumerate(cells))
    return "\n".join(lines)


def without_timings(outputs):
    """Outputs as comparable data with every timing (durations, per-step times, seconds columns) masked."""

    def mask(value):
        if isinstance(value, str):
            return TIMING.sub("<t>", mask_table_seconds(value))
        if isinstance(value, list):
            return [mask(item) for item in value]
        if isinstance(value, dict):
            return {key: mask(item) for key, item in value.items()}
        return value

    return mask(nbformat.from_dict(outputs))


def keep_stored_outputs(old, new):
    """Give new's cells old's outputs where they differ only in timings; drop execution timestamps. Return cells kept."""
    kept = 0
    for old_cell, cell in zip(old.cells, new.cells):
        cell.get("metadata", {}).pop("execution", None)
        if cell.cell_type == "code" and old_cell.cell_type == "code" and old_cell.source == cell.source:
            if old_cell.outputs != cell.outputs and without_timings(old_cell.outputs) == without_timings(cell.outputs):
                cell.outputs = copy.deepcopy(old_cell.outputs)
                kept += 1
    return kept


def section_titles(notebook):
    """For each cell, the headings it sits under ('Level up › 3. A deep DAE'), from the markdown above it."""
    path, titles = {}, []
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for hashes, text in HEADING.findall(cell.source):
                path = {level: title for level, title in path.items() if level < len(hashes)}
                path[len(hashes)] = text
        titles.append(" › ".join(path[level] for level in sorted(path) if level > 1) or path.get(1, ""))
    return titles


def progress_printer(notebook, name, stream=sys.stdout):
    """An nbclient on_cell_start hook printing 'name: cell n of N · section' for each code cell."""
    titles = section_titles(notebook)
    numbers = {
        index: n
        for n, index in enumerate((i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"), start=1)
    }

    def show(cell, cell_index, **_):
        """Print one progress line."""
        if cell_index in numbers:
            print(
                f"{name}: cell {numbers[cell_index]} of {len(numbers)} · {titles[cell_index]}", file=stream, flush=True
            )

    return show


def execute_notebook(path, timeout=600, progress=True):
    """Run every cell of the notebook at path; rewrite it only if the whole run succeeds and something but timings changed.

    Returns (code cells run, whether the file was written).
    """
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    stored = copy.deepcopy(nb)
    hook = progress_printer(nb, path.name) if progress else None
    notebook_client(nb, path.parent, timeout, record_timing=False, on_cell_start=hook).execute(
        env={**os.environ, **KERNEL_ENV}
    )
    keep_stored_outputs(stored, nb)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    data = notebook_bytes(nb)
    changed = not path.exists() or path.read_bytes() != data
    if changed:
        write_atomic(path, data)
    return sum(cell.cell_type == "code" for cell in nb.cells), changed


def duration(seconds):
    """Seconds as '3 min 57 s' or '42 s'."""
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def main(argv=None):
    """Command line: run_notebook.py NOTEBOOK [--timeout S]."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("notebook")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    parser.add_argument("--quiet", action="store_true", help="no per-cell progress lines")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    cells, changed = execute_notebook(args.notebook, args.timeout, progress=not args.quiet)
    result = "outputs written back" if changed else "unchanged apart from timings, file left as it was"
    print(f"{args.notebook}: {cells} code cells run in {duration(time.perf_counter() - start)}; {result}")


if __name__ == "__main__":
    sys.exit(main())
