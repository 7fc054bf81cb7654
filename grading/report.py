"""Reporting: one vocabulary of verdicts, one Row per submission, the class tables and each student's feedback.

Whatever a submission controls (its error messages, the values a hint quotes, its file's name, the notes about it)
is untrusted text. Every Row is made of safe text (text.safe: capped, control characters escaped) when it is built
from data (Row.from_json: what a worker returned, what the store kept) and again before it is written; then in CSV no
cell can start a formula (text.csv_cell); in markdown it goes in a code span or a fenced block whose backtick run is longer than any inside
it (CommonMark), so none of it is read as a heading, a link, an image or HTML; in HTML it is escaped.
"""

import csv
import html
import io
import re
from typing import NamedTuple

from grading.text import ERROR_CHARS, MAX_COUNT, MAX_SECONDS, MESSAGE_CHARS, NAME_CHARS, csv_cell, number, safe

PASSED, FAILED, NOT_ATTEMPTED, BLOCKED = (
    "passed",
    "failed",
    "not attempted",
    "blocked",
)  # what a check says (checks.STATUSES)
ERROR, TIMED_OUT, NOT_GRADED = "error", "timed out", "not graded"  # what the run says
BY_INSTRUCTOR = "by the instructor"  # after a verdict an override set (gradebook.py), before its reason
STUDENT_COLUMNS = ("student id", "student", "email")  # the roster's columns in the tables (gradebook.py)
YOUR_INSTRUCTORS = f'Verdicts marked "{BY_INSTRUCTOR}" are your instructor\'s, who read your notebook.'
VERDICTS = (PASSED, FAILED, NOT_ATTEMPTED, BLOCKED, ERROR, TIMED_OUT, NOT_GRADED)  # only PASSED earns a point
MAX_CELL_CHARS = 100  # of a task's message in grades.md (grades.csv keeps it whole)
CHALLENGE = "challenge"  # the optional challenge's column (checks.challenge.TASK): never in the total
SCORED, REFUSED = "scored", "refused"  # a challenge entry's status (grading/challenge.py); none: not attempted
MAX_PSNR = 200.0  # dB a row keeps (a perfect output scores infinity)
PSNR, SSIM = {"low": 0.0, "high": MAX_PSNR, "clamp": True}, {"low": -1.0, "high": 1.0}  # text.number's bounds
COUNT, SECONDS = {"low": 0, "high": MAX_COUNT, "whole": True}, {"low": 0.0, "high": MAX_SECONDS}
ENTRY_NUMBERS = {  # what an entry's row keeps of each number, within these bounds (text.number)
    "psnr": PSNR,
    "ssim": SSIM,
    "public_psnr": PSNR,  # the live board's part of the hidden set (challenge.split)
    "public_ssim": SSIM,
    "params": COUNT,
    "updates": COUNT,  # the entry's optimizer updates (checks.challenge.training_updates)
    "train_s": SECONDS,
    "infer_s": SECONDS,
    "dae_psnr": PSNR,
    "dae_ssim": SSIM,
    "dae_public_psnr": PSNR,
    "dae_public_ssim": SSIM,
    "dae_params": COUNT,
}
# An HTML page's policy: no scripts, nothing loaded from elsewhere, its own styles and embedded images only
NOTHING_FROM_ELSEWHERE = "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">"


class Row(NamedTuple):
    """One submission's results: task -> (verdict, message), a note when it could not be run, its own error."""

    name: str
    results: dict
    note: str = ""
    error: str = ""  # the traceback of the cell that stopped the notebook, for the student's feedback
    challenge: dict | None = None  # the challenge entry's result (clean_entry), None when not attempted
    student: tuple = ()  # the roster's (id, name, email) of whose it is (grading/gradebook.py), () without one
    overridden: tuple = ()  # the tasks whose verdict is the instructor's (gradebook.py: its reason is the message)

    @property
    def submitted(self):
        """Whether the row is a submission's: a roster student without one has a row with no results."""
        return bool(self.results)

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
            "challenge": self.challenge,
        }

    @classmethod
    def from_json(cls, data):
        """A row from to_json's data, its text made safe."""
        results = {str(k): (str(v[0]), str(v[1])) for k, v in data["results"].items()}
        return cls(data["name"], results, data["note"], data["error"], data.get("challenge")).clean()

    def clean(self):
        """The row with every text in it capped and its control characters escaped (text.safe)."""
        return Row(
            safe(self.name, NAME_CHARS),
            {task: (s if s in VERDICTS else ERROR, safe(m)) for task, (s, m) in self.results.items()},
            safe(self.note),
            safe(self.error, ERROR_CHARS, lines=True),
            clean_entry(self.challenge),
            tuple(safe(cell, NAME_CHARS) for cell in self.student),
            tuple(task for task in self.overridden if task in self.results),
        )


def clean_entry(entry):
    """A challenge entry's result as a row keeps it: {status: scored, psnr, ssim, params, updates, train_s, infer_s} or
    {status: refused, rule, ...}, every number within its bounds (ENTRY_NUMBERS: a number out of them is dropped),
    the rule safe text; None when it is not a result (not attempted). A scored entry without its scores is
    refused."""
    if not isinstance(entry, dict) or entry.get("status") not in (SCORED, REFUSED):
        return None
    kept = {"status": entry["status"]}
    for name, bounds in ENTRY_NUMBERS.items():
        value = number(entry.get(name), **bounds)
        if value is not None:
            kept[name] = value
    if kept["status"] == REFUSED:
        kept["rule"] = safe(entry.get("rule") or "refused")
    elif "psnr" not in kept or "ssim" not in kept:
        kept.update(status=REFUSED, rule="its score was lost")
    return kept


def challenge_text(entry):
    """What the challenge column shows: the PSNR, the refusal and its rule, or "not attempted"."""
    if not entry:
        return NOT_ATTEMPTED
    if entry["status"] == SCORED:
        return f"{entry['psnr']:.2f} dB"
    return f"{REFUSED}: {entry['rule']}"


def ungraded(name, tasks, note):
    """The row of a submission that could not be run."""
    return Row(name, {task: (NOT_GRADED, "") for task in tasks}, note)


def one_line(text, limit=None):
    """Text on one line, safe (text.safe), cut to limit characters when given."""
    return safe(text, limit or MESSAGE_CHARS)


def cell_text(status, message, limit=None, quote=None):
    """What a task's table cell shows: the verdict, with the reason when it did not pass (passed through quote)."""
    if status in (PASSED, NOT_ATTEMPTED, NOT_GRADED) or not message:
        return status
    limit = limit and max(limit - len(status) - 2, 1)
    message = one_line(message, limit) if quote is None else quote(one_line(message, limit))
    return f"{status} {message}" if status == TIMED_OUT else f"{status}: {message}"


def task_text(row, task, limit=None, quote=None):
    """What a task's cell of a row shows: cell_text, or the instructor's verdict and reason where an override set it
    (gradebook.py), or nothing where the row has no submission."""
    if not row.submitted:
        return ""
    status, message = row.results[task]
    if task not in row.overridden:
        return cell_text(status, message, limit, quote)
    said = f"{status} {BY_INSTRUCTOR}"
    limit = limit and max(limit - len(said) - 2, 1)
    return f"{said}: {one_line(message, limit) if quote is None else quote(one_line(message, limit))}"


def table_rows(rows, tasks, limit=None, quote=None, challenge=False):
    """Header and rows of the table as lists of strings, the untrusted parts passed through quote; the challenge's
    column (after the total, which it is not in) where challenge is true or some row has an entry; the roster's
    columns (STUDENT_COLUMNS) first where some row is a roster student's (gradebook.py)."""
    quote_all = quote or (lambda text: text)
    entries = challenge or any(row.challenge for row in rows)
    people = any(row.student for row in rows)
    header = [*(STUDENT_COLUMNS if people else []), "submission", *tasks, "total", *([CHALLENGE] if entries else [])]
    header.append("note")
    body = [
        [
            *((name_text(cell) if quote else cell for cell in row.student or ("",) * 3) if people else ()),
            name_text(row.name) if quote else row.name,
            *(task_text(row, task, limit, quote) for task in tasks),
            str(row.total) if row.submitted else "",
            *([quote_all(one_line(challenge_text(row.challenge), limit)) if row.submitted else ""] if entries else []),
            quote_all(one_line(row.note, limit)),
        ]
        for row in rows
    ]
    return header, body


def backtick_run(text):
    """The length of the longest run of backticks in text."""
    return max((len(run) for run in re.findall(r"`+", text)), default=0)


def code_span(text):
    """Text as a markdown code span (one line): nothing in it is read as markdown or HTML; "" stays ""."""
    text = one_line(text)
    if not text:
        return ""
    ticks = "`" * (backtick_run(text) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""  # CommonMark strips one space each side
    return f"{ticks}{pad}{text}{pad}{ticks}"


def fenced(text):
    """Text as a markdown fenced code block whose fence is longer than any backtick run inside, so no line closes it."""
    fence = "`" * max(3, backtick_run(text) + 1)
    return f"{fence}\n{text}\n{fence}"


def name_text(name):
    """A submission's name for markdown: as it is when it is a plain file name, else as a code span."""
    return name if re.fullmatch(r"[\w.\-/]+", name) else code_span(name)


def table_cell(text):
    """Text for a markdown table cell: its pipes escaped (GitHub's tables split on them, inside code spans too)."""
    return text.replace("|", "\\|")


def to_csv(rows, tasks):
    """The class table as CSV text, messages whole (as text.safe keeps them), no cell read as a formula; with the
    challenge's column where some row has an entry (a class without one gets the table it always had)."""
    header, body = table_rows([row.clean() for row in rows], tasks)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([csv_cell(text) for text in line] for line in body)
    return buffer.getvalue()


def to_markdown(rows, tasks, limit=MAX_CELL_CHARS):
    """The class table as a markdown table with padded columns (messages shortened, in code spans), readable as plain
    text too."""
    header, body = table_rows([row.clean() for row in rows], tasks, limit, quote=code_span)
    cells = [[table_cell(text) for text in line] for line in [header, *body]]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(text.ljust(width) for text, width in zip(line, widths)) + " |" for line in cells]
    lines.insert(1, "| " + " | ".join("-" * width for width in widths) + " |")
    return "\n".join(lines) + "\n"


def standing_lines(row, standing):
    """The challenge's part of a student's feedback as lines of plain text (safe: numbers and the row's own rule):
    their score, rank and the best entry's score (standing: leaderboard.standing's dict, or None), never a name."""
    entry = row.challenge
    if not entry:
        return []
    if entry["status"] == REFUSED:
        return [f"Your entry was refused: {entry['rule']}."]
    lines = [f"Your score on the hidden set: PSNR {entry['psnr']:.2f} dB, SSIM {entry['ssim']:.3f}."]
    if standing:
        lines.append(
            f"Your rank: {standing['rank']} of {standing['entries']} entries; the best entry scored "
            f"PSNR {standing['best_psnr']:.2f} dB, SSIM {standing['best_ssim']:.3f}."
        )
    return lines


def feedback_markdown(row, tasks, standing=None):
    """One student's feedback as markdown: each task's verdict and complete hint, the challenge entry's score and
    rank (standing, when it was scored), and the notebook's own error."""
    row = row.clean()
    lines = [f"# Feedback: {name_text(row.name)}", "", f"**{row.total} of {len(tasks)} tasks passed.**", ""]
    if row.note:
        lines += [f"Note: {code_span(row.note)}", ""]
    lines += ["| task | verdict |", "| --- | --- |"]
    lines += [f"| {task} | {table_cell(task_text(row, task, quote=code_span))} |" for task in tasks]
    if row.overridden:
        lines += ["", YOUR_INSTRUCTORS]
    said = standing_lines(row, standing)
    if said:
        lines += ["", "## The class challenge (optional, not in the total)", ""]
        lines += [line if row.challenge["status"] == SCORED else code_span(line) for line in said]
        lines[-len(said) : -1] = [line + "  " for line in lines[-len(said) : -1]]  # a line break between them
    if row.error:
        lines += ["", "## The error that stopped your notebook", "", fenced(row.error)]
    return "\n".join(lines) + "\n"


def feedback_html(row, tasks, standing=None):
    """The same feedback as a self-contained HTML page (no scripts, no external files)."""
    row = row.clean()
    esc = html.escape
    items = "".join(
        f"<tr><td>{esc(task)}</td><td class='{esc(row.results[task][0].replace(' ', '-'))}'>"
        f"{esc(task_text(row, task))}</td></tr>"
        for task in tasks
    )
    mine = f"<p>{esc(YOUR_INSTRUCTORS)}</p>" if row.overridden else ""
    note = f"<p>Note: {esc(row.note)}</p>" if row.note else ""
    error = f"<h2>The error that stopped your notebook</h2><pre>{esc(row.error)}</pre>" if row.error else ""
    said = standing_lines(row, standing)
    if said:
        error = (
            "<h2>The class challenge (optional, not in the total)</h2>"
            + "".join(f"<p>{esc(line)}</p>" for line in said)
            + error
        )
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>{NOTHING_FROM_ELSEWHERE}"
        f"<title>Feedback: {esc(row.name)}</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}td{border:1px solid #ccc;padding:.3em}"
        "table{border-collapse:collapse}.passed{color:#161}.failed,.error,.timed-out{color:#a11}.blocked{color:#a60}"
        "pre{background:#f4f4f4;padding:1em;overflow:auto}</style></head><body>"
        f"<h1>Feedback: {esc(row.name)}</h1><p><strong>{row.total} of {len(tasks)} tasks passed.</strong></p>{note}"
        f"<table><tr><th>task</th><th>verdict</th></tr>{items}</table>{mine}{error}"
        "</body></html>\n"
    )
