"""Write the student notebook index.ipynb and its expected-output figures index_files/ from solution.ipynb.

index.ipynb is derived, never edited by hand. In solution.ipynb, answer code sits between
`### BEGIN SOLUTION` and `### END SOLUTION` lines: each such region becomes `# Your code here`,
given (unmarked) lines stay. Cells tagged `solution-only` are dropped; cells tagged `student-only`
(expected outputs) are kept. Outputs, execution counts and run metadata are cleared, then the blank
notebook is executed so its stored outputs (the "not attempted yet" check lines) can be compared by
nbval; a cell left with nothing but the placeholder (comments) is not run, so it stores no execution
count. The kernel spec is the one JupyterLab writes on save (run_notebook.KERNELSPEC). The figures come from the executed solution's stored images, found by the variable each
figure cell assigns (fig_clean = ...). Nothing is written unless everything succeeds; each file is
replaced atomically.

Usage: .venv/bin/python tools/make_student.py [--solution solution.ipynb] [--output index.ipynb] [--no-execute]
"""

import argparse
import base64
import os
import re
import sys
import time
from pathlib import Path

import nbformat

from run_notebook import KERNEL_ENV, KERNELSPEC, notebook_bytes, notebook_client, write_atomic

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
PLACEHOLDER = "# Your code here"
SOLUTION_ONLY, STUDENT_ONLY = "solution-only", "student-only"
FIGURE_DIR = "index_files"
FIGURES = {  # figure variable in solution.ipynb -> file in index_files/
    "fig_clean": "clean_test_images.png",
    "fig_results": "denoising_results.png",
    "fig_autoencoder": "autoencoder_reconstructions.png",
    "fig_loss": "dae_loss_curve.png",
    "fig_epochs": "levelup_epochs.png",
    "fig_sweep": "levelup_sweep.png",
    "fig_sweep_examples": "levelup_sweep_examples.png",
    "fig_models": "levelup_models.png",
    "fig_faces_curves": "levelup_faces.png",
    "fig_faces": "levelup_faces_restored.png",
    "fig_anomaly": "levelup_anomaly.png",
}
NOTEBOOK_METADATA = ("kernelspec", "language_info")


class SolutionError(ValueError):
    """solution.ipynb cannot be turned into a student notebook; the message names the cell and the fix."""


def marker(line):
    """BEGIN or END if the line is a solution marker, else None."""
    stripped = line.strip()
    return next((m for m in (BEGIN, END) if stripped.startswith(m)), None)


def tags(cell):
    """The cell's tags as a list."""
    return list(cell.get("metadata", {}).get("tags", []))


def strip_solution(source, number):
    """Replace each marked region of a code cell's source by the placeholder, keeping its indentation."""
    lines, inside = [], False
    for line in source.splitlines():
        kind = marker(line)
        if kind == BEGIN:
            if inside:
                raise SolutionError(
                    f"cell {number}: a {BEGIN} line inside another marked region (nested markers); "
                    f"close the first region with {END} first"
                )
            inside = True
            lines.append(line[: len(line) - len(line.lstrip())] + PLACEHOLDER)
        elif kind == END:
            if not inside:
                raise SolutionError(f"cell {number}: {END} without a {BEGIN} before it; add the missing {BEGIN}")
            inside = False
        elif not inside:
            lines.append(line)
    if inside:
        raise SolutionError(f"cell {number}: {BEGIN} without a matching {END}; add {END} after the answer code")
    return "\n".join(lines)


def check_cell(cell, number):
    """Raise SolutionError if a cell's tags or markers are wrong (number counts cells from 1)."""
    cell_tags = tags(cell)
    if SOLUTION_ONLY in cell_tags and STUDENT_ONLY in cell_tags:
        raise SolutionError(f"cell {number}: tagged both {SOLUTION_ONLY} and {STUDENT_ONLY}; keep one")
    if cell.cell_type != "code":
        for line in cell.source.splitlines():
            if marker(line):
                raise SolutionError(
                    f"cell {number}: a solution marker ({marker(line)}) in a {cell.cell_type} cell; "
                    "markers belong in code cells only"
                )
    else:
        strip_solution(cell.source, number)


def tidy_metadata(cell):
    """Cell metadata for the student: its tags (without student-only), nothing else."""
    kept = [tag for tag in tags(cell) if tag != STUDENT_ONLY]
    return {"tags": kept} if kept else {}


def make_student(solution):
    """Return the blank student notebook for a solution notebook (a pure function; raises SolutionError)."""
    for number, cell in enumerate(solution.cells, start=1):
        check_cell(cell, number)
    student = nbformat.v4.new_notebook()
    student.metadata = {key: solution.metadata[key] for key in NOTEBOOK_METADATA if key in solution.metadata}
    student.metadata["kernelspec"] = dict(KERNELSPEC)  # what JupyterLab writes on save, so saving changes nothing
    for number, cell in enumerate(solution.cells, start=1):
        if SOLUTION_ONLY in tags(cell):
            continue
        if cell.cell_type == "code":
            new = nbformat.v4.new_code_cell(strip_solution(cell.source, number))
        elif cell.cell_type == "markdown":
            new = nbformat.v4.new_markdown_cell(cell.source)
            if cell.get("attachments"):
                new.attachments = cell.attachments
        else:
            new = nbformat.v4.new_raw_cell(cell.source)
        new.id = cell.get("id") or f"cell-{number}"
        new.metadata = tidy_metadata(cell)
        student.cells.append(new)
    nbformat.validate(student)
    return student


def figure_variables(source):
    """Names of the fig_* variables a cell assigns."""
    return re.findall(r"^\s*(fig_\w+)\s*=", source, flags=re.MULTILINE)


def find_figures(solution):
    """{file name in index_files: PNG bytes} from the executed solution's figure cells."""
    found = {}
    for number, cell in enumerate(solution.cells, start=1):
        if cell.cell_type != "code":
            continue
        names = [name for name in figure_variables(cell.source) if name in FIGURES]
        if not names:
            continue
        images = [
            output.data["image/png"] for output in cell.get("outputs", []) if "image/png" in output.get("data", {})
        ]
        if len(names) != 1 or len(images) != 1:
            raise SolutionError(
                f"cell {number}: assigns {', '.join(names)} but stores {len(images)} image(s); "
                "give each figure its own cell and run `make lab` so solution.ipynb holds its image"
            )
        if names[0] in found:
            raise SolutionError(f"cell {number}: {names[0]} is assigned in two cells; assign each figure once")
        found[names[0]] = base64.b64decode(images[0])
    missing = sorted(set(FIGURES) - set(found))
    if missing:
        raise SolutionError(
            f"solution.ipynb holds no stored figure for {', '.join(missing)}: "
            "run `make lab` first so its figure cells are executed"
        )
    return {FIGURES[name]: png for name, png in found.items()}


def blank(cell):
    """Whether a code cell holds nothing to run: only comments (such as the placeholder) and empty lines."""
    return all(not line.strip() or line.lstrip().startswith("#") for line in cell.source.splitlines())


def execute(notebook, directory, timeout=600):
    """Run the notebook's code in a fresh kernel in directory, storing outputs but no timings; return it.

    Blank cells (the placeholder alone) are not run, so JupyterLab shows `[ ]:` beside them, not a count.
    """
    cells = notebook.cells
    notebook.cells = [cell for cell in cells if cell.cell_type != "code" or not blank(cell)]
    try:  # nbclient fills in the cell objects themselves, which the full list shares
        notebook_client(notebook, directory, timeout, record_timing=False).execute(env={**os.environ, **KERNEL_ENV})
    finally:
        notebook.cells = cells
    return notebook


def build(solution_path, output_path, run=True, timeout=600):
    """Make the student notebook (executed when run) and the figures; write them only if all succeeds."""
    solution = nbformat.read(solution_path, as_version=4)
    student = make_student(solution)
    figures = find_figures(solution)
    if run:
        execute(student, Path(output_path).resolve().parent, timeout)
    for name, png in sorted(figures.items()):
        write_atomic(Path(output_path).parent / FIGURE_DIR / name, png)
    write_atomic(output_path, notebook_bytes(student))
    return student, figures


def main(argv=None):
    """Command line: make_student.py [--solution S] [--output O] [--no-execute] [--timeout T]."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--solution", default="solution.ipynb")
    parser.add_argument("--output", default="index.ipynb")
    parser.add_argument("--no-execute", action="store_true", help="write the blank notebook without running it")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        student, figures = build(args.solution, args.output, not args.no_execute, args.timeout)
    except SolutionError as err:
        print(f"{args.solution}: {err}; nothing written.", file=sys.stderr)
        return 1
    print(
        f"{args.output}: {len(student.cells)} cells; {FIGURE_DIR}/: {', '.join(sorted(figures))} "
        f"({time.perf_counter() - start:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
