"""What the grader's tests share: the command line loaded as a module, and readers of its tables and folders."""

import csv
import importlib.util
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
spec = importlib.util.spec_from_file_location("grade", ROOT / "tools" / "grade.py")
grade = importlib.util.module_from_spec(spec)
spec.loader.exec_module(grade)

from grading import sandbox  # noqa: E402

SANDBOX = sandbox.probe(1)
needs_sandbox = pytest.mark.skipif(not SANDBOX.complete, reason="; ".join(SANDBOX.missing) or "sandbox available")


def run(argv, capsys):
    """Run the grader's command line in this process; return (exit status, stdout, stderr)."""
    status = grade.main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return status, out, err


def read_csv(path):
    """The grade table as {submission: row dict}."""
    with open(path, newline="", encoding="utf-8") as f:
        return {row["submission"]: row for row in csv.DictReader(f)}


def copy_fixture(name, folder):
    """Copy one fixture notebook into folder; return its new path."""
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(FIXTURES / name, folder))


def snapshot(folder):
    """Every file under folder with its bytes and modification time."""
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


def rendered_markdown(text):
    """What a CommonMark renderer (with tables) makes of text: its headings, table rows, images, links and raw HTML."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    shown = {"headings": [], "rows": [], "images": [], "links": [], "html": []}
    row = None
    for token, following in zip(tokens, tokens[1:] + tokens[:1]):
        if token.type == "heading_open":
            shown["headings"].append(following.content)
        elif token.type == "tr_open":
            row = []
            shown["rows"].append(row)
        elif token.type == "tr_close":
            row = None
        elif token.type == "inline" and row is not None:
            row.append(token.content)
        elif token.type.startswith("html"):
            shown["html"].append(token.content)
        for child in token.children or []:
            if child.type == "image":
                shown["images"].append(child.attrs["src"])
            elif child.type == "link_open":
                shown["links"].append(child.attrs["href"])
            elif child.type == "html_inline":
                shown["html"].append(child.content)
    return shown


def read_until(stream, prefix):
    """Read lines from stream until one starts with prefix (a library may print lines of its own first)."""
    for line in stream:
        if line.startswith(prefix):
            return line
    raise AssertionError(f"the stream ended without a line starting {prefix!r}")
