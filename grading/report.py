"""Reporting: one vocabulary of verdicts, one Row per submission, the class tables and each student's feedback."""

import csv
import html
import io
import re
from typing import NamedTuple

PASSED, FAILED, NOT_ATTEMPTED, BLOCKED = (
    "passed",
    "failed",
    "not attempted",
    "blocked",
)  # what a check says (checks.STATUSES)
ERROR, TIMED_OUT, NOT_GRADED = "error", "timed out", "not graded"  # what the run says
VERDICTS = (PASSED, FAILED, NOT_ATTEMPTED, BLOCKED, ERROR, TIMED_OUT, NOT_GRADED)  # only PASSED earns a point
MAX_CELL_CHARS = 100  # of a task's message in grades.md (grades.csv keeps it whole)


class Row(NamedTuple):
    """One submission's results: task -> (verdict, message), a note when it could not be run, its own error."""

    name: str
    results: dict
    note: str = ""
    error: str = ""  # the traceback of the cell that stopped the notebook, for the student's feedback

    @property
    def graded(self):
        """Whether the submission could be run at all."""
        return any(status != NOT_GRADED for status, _ in self.results.values())

    @property
    def total(self):
        """One point per passed task."""
        return sum(status == PASSED for status, _ in self.results.values())

    def to_json(self):
        """The row as JSON-ready data (the results store keeps it so)."""
        return {
            "name": self.name,
            "results": {k: list(v) for k, v in self.results.items()},
            "note": self.note,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data):
        """A row from to_json's data."""
        return cls(data["name"], {k: tuple(v) for k, v in data["results"].items()}, data["note"], data["error"])


def ungraded(name, tasks, note):
    """The row of a submission that could not be run."""
    return Row(name, {task: (NOT_GRADED, "") for task in tasks}, note)


def one_line(text, limit=None):
    """Text on one line without terminal colour codes, cut to limit characters when given."""
    text = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(text)).split())
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def cell_text(status, message, limit=None):
    """What a task's table cell shows: the verdict, with the reason when it did not pass."""
    if status in (PASSED, NOT_ATTEMPTED, NOT_GRADED) or not message:
        return status
    return one_line(f"{status} {message}" if status == TIMED_OUT else f"{status}: {message}", limit)


def table_rows(rows, tasks, limit=None):
    """Header and rows of the table as lists of strings."""
    header = ["submission", *tasks, "total", "note"]
    body = [
        [row.name, *(cell_text(*row.results[task], limit) for task in tasks), str(row.total), one_line(row.note, limit)]
        for row in rows
    ]
    return header, body


def to_csv(rows, tasks):
    """The class table as CSV text, messages whole."""
    header, body = table_rows(rows, tasks)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(body)
    return buffer.getvalue()


def to_markdown(rows, tasks, limit=MAX_CELL_CHARS):
    """The class table as a markdown table with padded columns (messages shortened), readable as plain text too."""
    header, body = table_rows(rows, tasks, limit)
    cells = [[text.replace("|", "\\|") for text in line] for line in [header, *body]]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(text.ljust(width) for text, width in zip(line, widths)) + " |" for line in cells]
    lines.insert(1, "| " + " | ".join("-" * width for width in widths) + " |")
    return "\n".join(lines) + "\n"


def feedback_markdown(row, tasks):
    """One student's feedback as markdown: each task's verdict and complete hint, and the notebook's own error."""
    lines = [f"# Feedback: {row.name}", "", f"**{row.total} of {len(tasks)} tasks passed.**", ""]
    if row.note:
        lines += [f"Note: {row.note}", ""]
    lines += ["| task | verdict |", "| --- | --- |"]
    lines += ["| " + task + " | " + cell_text(*row.results[task]).replace("|", "\\|") + " |" for task in tasks]
    if row.error:
        lines += ["", "## The error that stopped your notebook", "", "```", row.error, "```"]
    return "\n".join(lines) + "\n"


def feedback_html(row, tasks):
    """The same feedback as a self-contained HTML page (no scripts, no external files)."""
    esc = html.escape
    items = "".join(
        f"<tr><td>{esc(task)}</td><td class='{esc(row.results[task][0].replace(' ', '-'))}'>"
        f"{esc(cell_text(*row.results[task]))}</td></tr>"
        for task in tasks
    )
    note = f"<p>Note: {esc(row.note)}</p>" if row.note else ""
    error = f"<h2>The error that stopped your notebook</h2><pre>{esc(row.error)}</pre>" if row.error else ""
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Feedback: {esc(row.name)}</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}td{border:1px solid #ccc;padding:.3em}"
        "table{border-collapse:collapse}.passed{color:#161}.failed,.error,.timed-out{color:#a11}.blocked{color:#a60}"
        "pre{background:#f4f4f4;padding:1em;overflow:auto}</style></head><body>"
        f"<h1>Feedback: {esc(row.name)}</h1><p><strong>{row.total} of {len(tasks)} tasks passed.</strong></p>{note}"
        f"<table><tr><th>task</th><th>verdict</th></tr>{items}</table>{error}</body></html>\n"
    )
