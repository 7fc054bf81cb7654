"""Grading from wherever the lab is cloned: a clone inside a folder only its owner can enter (`mktemp -d`, 0700, as
root's home is) grades unsandboxed and sandboxed (sandbox.reach). The lab's grader and a venv of its own are made in
such a folder, the venv's site-packages being this venv's, bound in place in a mount namespace of the test's own (a
copy of the whole venv would take minutes); then the grader runs from there on a trivial notebook, as CI would from
a fresh clone."""

import os
import shutil
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest

from grading import sandbox
from grading_support import read_csv

ROOT = Path(__file__).resolve().parent.parent
GRADER = ("tools", "grading", "checks", "helpers.py", "levelup.py")

pytestmark = [
    pytest.mark.heavy,
    pytest.mark.skipif(os.geteuid() != 0 or not sandbox.can_mount()[0], reason="needs root and mount namespaces"),
]


@pytest.fixture(scope="module")
def closed_clone(tmp_path_factory):
    """(a folder, 0700, holding the lab's grader as lab/ with its own venv lab/.venv, and subs/ with one trivial
    notebook; the command prefix that runs a program with the venv's site-packages in place)."""
    home = tmp_path_factory.mktemp("closed")
    home.chmod(0o700)
    lab = home / "lab"
    for name in GRADER:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        (lab / name).parent.mkdir(parents=True, exist_ok=True)
        copy(
            ROOT / name,
            lab / name,
            **({"ignore": shutil.ignore_patterns("__pycache__")} if copy is shutil.copytree else {}),
        )
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base_python, "-m", "venv", "--without-pip", lab / ".venv"], check=True)
    packages = Path(sysconfig.get_paths()["purelib"])
    own = lab / ".venv" / packages.relative_to(sys.prefix)
    own.mkdir(parents=True, exist_ok=True)
    (home / "subs").mkdir()
    nbformat.write(
        nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), home / "subs" / "trivial.ipynb"
    )
    bind = 'mount --bind "$1" "$2"; shift 2; exec "$@"'
    return home, [*sandbox.private_mounts(), "sh", "-c", bind, "sh", str(packages), str(own)]


@pytest.mark.parametrize("bwrap", ["", "real"])
def test_a_clone_in_a_folder_only_its_owner_enters_grades(closed_clone, bwrap):
    home, prefix = closed_clone
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    out = home / f"out-{bwrap or 'unsandboxed'}"
    if bwrap and not shutil.which("bwrap"):
        pytest.skip("bubblewrap is not installed")
    env = {**os.environ, "XDG_CACHE_HOME": str(home / "cache"), sandbox.BWRAP_VARIABLE: bwrap and shutil.which("bwrap")}
    command = [home / "lab" / ".venv" / "bin" / "python", home / "lab" / "tools" / "grade.py", home / "subs"]
    command += ["--out", out, "--quiet", *([] if bwrap else ["--unsandboxed"])]
    done = subprocess.run([*prefix, *map(str, command)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    row = read_csv(out / "grades.csv")["trivial"]
    assert row["total"] == "0" and row["data"] == "not attempted", row
    assert stat.S_IMODE(home.stat().st_mode) == 0o700  # the instructor's folder as it was
