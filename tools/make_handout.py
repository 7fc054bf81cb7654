"""Write the students' handout: dist/handout/ (a folder) and dist/dae-lab-handout.zip (the same, in a folder dae-lab/).

It holds what a student needs and nothing of the answer key, the grader, the tests or the benchmarks' scripts: the
blank notebook index.ipynb and its expected-output figures, the modules it imports (helpers.py, levelup.py, checks/,
and benchmarks/hybrid.py, which the level-up section suggests importing), the requirements files as a student's
(their packages without the grader's and the tests': Dask, pytest, ruff and the rest; comments written for students),
the students' guide and the benchmark page's speed and quality sections, and a README for students (how to install,
open, work and submit). What a guide says only of the lab's repository (its scripts, make targets, the instructors'
pages) is marked `<!-- lab only -->...<!-- /lab only -->` there and left out; a link to a page that is not handed out
becomes plain text. Nothing is written unless everything succeeds:
the folder and the zip are built beside their place and then moved there (an old folder is replaced whole).

Usage: .venv/bin/python tools/make_handout.py [--out dist]
"""

import argparse
import os
import re
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTENTS = (  # what a student gets, as it is in the lab
    "index.ipynb",
    "index_files",
    "helpers.py",
    "levelup.py",
    "checks",
    "benchmarks/hybrid.py",
    "requirements.txt",
    "requirements-jax.txt",
    "requirements-torch.txt",
    "docs/students.md",
    "docs/benchmarks.md",
)
README = "README.md"  # written from STUDENT_README
FOLDER, ZIP, TOP = "handout", "dae-lab-handout.zip", "dae-lab"  # in --out; TOP: the folder inside the zip
FORBIDDEN = ("### BEGIN SOLUTION", "### END SOLUTION")  # answer-key markers: never in a handed-out file
LAB_MEASUREMENTS = "## Measurements"  # in docs/benchmarks.md: what follows (CI's and the grader's times) stays home
LAB_ONLY = "# ---- The grader's and the tests' packages"  # in requirements.txt: what follows is not handed out
LAB_ONLY_SPAN = re.compile(r"<!-- lab only -->.*?<!-- /lab only -->", re.DOTALL)  # in a guide: the repository's
REQUIREMENTS_HEADERS = {  # each requirements file's comments as a student reads them (the lab's speak to its operator)
    "requirements.txt": "# The lab's packages, exact pins, tested on Python 3.11 (3.12 works too). In this folder:\n"
    "#   python3 -m venv .venv && .venv/bin/pip install -r requirements.txt\n"
    "# On Linux x86-64 TensorFlow comes as its CPU-only wheel (smaller, and quiet at import).\n",
    "requirements-jax.txt": "# The JAX backend: everything in requirements.txt, plus JAX's CPU build (docs/students.md, Backends).\n",
    "requirements-torch.txt": "# The PyTorch backend: everything in requirements.txt, plus PyTorch. On Linux x86-64 pip may fetch a\n"
    "# multi-GB CUDA build of torch; for the CPU-only one (about 200 MB) add\n"
    "# --index-url https://download.pytorch.org/whl/cpu (docs/students.md, Backends).\n",
}
LINK = re.compile(r"\[([^\]]+)\]\(([^)#\s]+)(#[^)\s]*)?\)")  # a markdown link to a file: [text](path#anchor)

STUDENT_README = """\
# Denoising autoencoders with Keras: the lab

You train a denoising autoencoder on Fashion-MNIST, one task at a time; each task has a check that says what to fix.

## Install (once)
With Python 3.11 or 3.12, in this folder:

```bash
python3 -m venv .venv
.venv/bin/pip install -r requirements.txt   # or requirements-jax.txt / requirements-torch.txt for another backend
```

The data comes from Debian's `dataset-fashion-mnist` package where it is installed; otherwise Keras downloads it on
first use (docs/students.md, "How the data is found").

## Open
`.venv/bin/jupyter lab index.ipynb`, or open `index.ipynb` in VS Code with the `.venv` interpreter as its kernel.

## Work
Read each task's card, write your code in its `# Your code here` cell, run it, then run its `check("...")` cell:
it prints `passed`, or a hint saying what to fix. Run the cells in order (the setup cell first). The figures under
`index_files/` show the expected outputs. The level-up section at the end is optional and not graded.
The [students' guide](docs/students.md) has the rest.

## Submit
Save `index.ipynb` (File > Save) and hand in that one file, as your instructor asks (renamed to your name if told
so). Keep your code in the notebook's cells: the grader runs the notebook itself from top to bottom, in a fresh
kernel, with the lab's own copies of these modules, so files you added or changed beside it are not seen.
"""


class HandoutError(ValueError):
    """The lab cannot be handed out as it is; the message says why."""


def unlink_missing(text, page, top):
    """Markdown text (of the file at page, under top) with each link to a file not handed out made plain text."""

    def plain(match):
        target = (page.parent / match.group(2)).resolve()
        inside = target.is_relative_to(top.resolve()) and target.exists()
        return match.group(0) if match.group(2).startswith(("http:", "https:")) or inside else match.group(1)

    return LINK.sub(plain, text)


def students_requirements(text, name="requirements.txt"):
    """A requirements file as students get it: its pins and options without the lab's comments, under a student's
    (REQUIREMENTS_HEADERS); requirements.txt without the grader's and the tests' packages (from LAB_ONLY on)."""
    if name == "requirements.txt":
        if LAB_ONLY not in text:
            raise HandoutError(
                f"requirements.txt has no line starting {LAB_ONLY!r}: the handout cannot leave out the grader"
            )
        text = text[: text.index(LAB_ONLY)]
    lines = [line.split(" #")[0].rstrip() for line in text.splitlines() if not line.lstrip().startswith("#")]
    return REQUIREMENTS_HEADERS[name] + "".join(f"{line}\n" for line in lines if line)


def students_page(text, page):
    """A guide as students get it: without what it marks as the lab repository's own (LAB_ONLY_SPAN)."""
    text = LAB_ONLY_SPAN.sub("", text)
    if "<!-- lab only -->" in text or "<!-- /lab only -->" in text:
        raise HandoutError(
            f"{page} has a '<!-- lab only -->' mark without its pair: close each with '<!-- /lab only -->'"
        )
    return text


def students_benchmarks(text):
    """docs/benchmarks.md as students get it: speed and quality, without the project's own run times (from
    LAB_MEASUREMENTS on: CI, the grader, make lab), which are the instructors' and contributors'."""
    return text[: text.index(LAB_MEASUREMENTS)].rstrip() + "\n" if LAB_MEASUREMENTS in text else text


def copy_contents(folder, root=ROOT):
    """Copy CONTENTS from root into folder (no caches), write the README, and unlink links that lead out."""
    for name in CONTENTS:
        source, target = root / name, folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))
        else:
            shutil.copy2(source, target)
    benchmarks = folder / "docs" / "benchmarks.md"
    benchmarks.write_text(students_benchmarks(benchmarks.read_text(encoding="utf-8")), encoding="utf-8")
    for name in REQUIREMENTS_HEADERS:
        requirements = folder / name
        requirements.write_text(students_requirements(requirements.read_text(encoding="utf-8"), name), encoding="utf-8")
    (folder / README).write_text(STUDENT_README, encoding="utf-8")
    for page in folder.rglob("*.md"):
        text = students_page(page.read_text(encoding="utf-8"), page.relative_to(folder))
        page.write_text(unlink_missing(text, page, folder), encoding="utf-8")


def refuse_answers(folder):
    """Raise HandoutError when any file in folder holds an answer-key marker."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        text = path.read_bytes().decode("utf-8", errors="replace")
        found = [marker for marker in FORBIDDEN if marker in text]
        if found:
            raise HandoutError(f"{path.relative_to(folder)} holds {found[0]!r}: the answer key must not be handed out")


def zip_bytes(folder):
    """The folder as a zip archive (its files under TOP/, in name order), as bytes."""
    with tempfile.SpooledTemporaryFile() as buffer:
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(folder.rglob("*")):
                archive.write(path, f"{TOP}/{path.relative_to(folder).as_posix()}")
        buffer.seek(0)
        return buffer.read()


def build(out, root=ROOT):
    """Write out/handout/ and out/dae-lab-handout.zip; return their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".handout-", dir=out))  # beside its place: the moves stay on one disk
    try:
        folder = staging / FOLDER
        folder.mkdir()
        copy_contents(folder, root)
        refuse_answers(folder)
        (staging / ZIP).write_bytes(zip_bytes(folder))
        target = out / FOLDER
        if target.exists():
            target.rename(staging / "old")
        folder.rename(target)
        os.replace(staging / ZIP, out / ZIP)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target, out / ZIP


def main(argv=None):
    """Command line: make_handout.py [--out dist]."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "dist"), help="folder to write into (default: dist/)")
    args = parser.parse_args(argv)
    try:
        folder, archive = build(args.out)
    except HandoutError as err:
        print(f"make_handout.py: {err}", file=sys.stderr)
        return 1
    files = sum(1 for p in folder.rglob("*") if p.is_file())
    print(f"Wrote {folder} ({files} files) and {archive} ({archive.stat().st_size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
