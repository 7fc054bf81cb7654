"""The class report: what a class got right and wrong, beside grades.csv as summary.md and a self-contained
report.html (its figures embedded as PNG, no scripts, no external files).

For each task, how many submissions got each verdict (a stacked bar chart, as Gradescope's per-question statistics
and nbgrader's formgrader show per-question scores); the hints most submissions saw, grouped by hint whatever numbers
it quotes (a range shows what they were); the distribution of totals; and the submissions that could not be graded.
Hints and notes are untrusted text (made safe by Row.clean, then report.py's code spans in markdown, escaped in HTML).
"""

import base64
import collections
import html
import io
import re
import statistics

from grading import gradebook
from grading.report import (
    BLOCKED,
    ERROR,
    FAILED,
    NOT_ATTEMPTED,
    NOT_GRADED,
    NOTHING_FROM_ELSEWHERE,
    PASSED,
    TIMED_OUT,
    code_span,
    name_text,
    one_line,
    table_cell,
)

TOP_HINTS = 5  # per task
ORDER = (PASSED, FAILED, BLOCKED, ERROR, TIMED_OUT, NOT_ATTEMPTED, NOT_GRADED)  # of the columns and the bars
HINTED = (FAILED, BLOCKED, ERROR, TIMED_OUT)  # the verdicts whose message says what went wrong
COLOURS = {
    PASSED: "#2e7d32",
    FAILED: "#c62828",
    BLOCKED: "#ef6c00",
    ERROR: "#6a1b9a",
    TIMED_OUT: "#ad1457",
    NOT_ATTEMPTED: "#9e9e9e",
    NOT_GRADED: "#e0e0e0",
}
NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:[.,]\d+)*(?:[eE][-+]?\d+)?(?![\w])")  # 0.30, 50,992, 1e-3; not x_train2


class Hint:
    """One group of task messages that differ at most in their numbers: its verdict, text and count."""

    def __init__(self, verdict, message):
        self.verdict, self.parts, self.count = verdict, NUMBER.split(message), 0
        self.numbers = [[] for _ in NUMBER.findall(message)]

    def add(self, message):
        """Count one more message of this group."""
        self.count += 1
        for seen, number in zip(self.numbers, NUMBER.findall(message)):
            seen.append(number)

    @property
    def text(self):
        """The hint with each number that varies shown as its range ("0.30 to 0.41")."""
        words = [self.parts[0]]
        for seen, part in zip(self.numbers, self.parts[1:]):
            words += [spread(seen), part]
        return one_line("".join(words))


def spread(numbers):
    """One number when all are equal, else "lowest to highest"."""
    if len(set(numbers)) == 1:
        return numbers[0]
    try:
        values = sorted(numbers, key=lambda n: float(n.replace(",", "")))
    except ValueError:
        return "…"
    return f"{values[0]} to {values[-1]}"


def graded(rows):
    """The rows of submissions that could be run."""
    return [row for row in rows if row.graded]


def verdict_counts(rows, tasks):
    """{task: {verdict: count}} over the graded submissions, verdicts in ORDER."""
    counts = {task: collections.Counter(row.results[task][0] for row in graded(rows)) for task in tasks}
    return {task: {verdict: counts[task][verdict] for verdict in ORDER} for task in tasks}


def shown_verdicts(counts):
    """The verdicts some task got, in ORDER."""
    return [verdict for verdict in ORDER if any(by_verdict[verdict] for by_verdict in counts.values())]


def common_hints(rows, tasks, top=TOP_HINTS):
    """{task: [Hint]}: the most common messages of each task's failed, blocked, errored and timed-out verdicts."""
    found = {}
    for task in tasks:
        groups = {}
        for row in graded(rows):
            verdict, message = row.results[task]
            if verdict in HINTED and message:
                message = one_line(message)
                group = groups.setdefault((verdict, tuple(NUMBER.split(message))), Hint(verdict, message))
                group.add(message)
        found[task] = sorted(groups.values(), key=lambda hint: -hint.count)[:top]
    return found


def total_counts(rows, tasks):
    """{total: number of graded submissions with it}, for every total from 0 to len(tasks)."""
    counts = collections.Counter(row.total for row in graded(rows))
    return {total: counts[total] for total in range(len(tasks) + 1)}


def ungradable(rows):
    """[(name, why)] of the submissions that could not be graded."""
    return [(row.name, row.note) for row in rows if not row.graded]


def headline(rows, tasks):
    """One sentence: how many submissions, how many graded, the median and mean total."""
    totals = [row.total for row in graded(rows)]
    text = f"{len(rows)} submission(s), {len(totals)} graded"
    if totals:
        text += f"; total: median {statistics.median(totals):g}, mean {statistics.mean(totals):.1f} of {len(tasks)}"
    return text + "."


# ---------------------------------------------------------------- figures


def plot_verdicts(counts, ax=None):
    """A stacked horizontal bar per task: how many submissions got each verdict; return the figure."""
    ax = ax or new_axes(9, 0.4 * len(counts) + 1.2)
    tasks = list(counts)[::-1]  # the first task on top
    left = [0] * len(tasks)
    for verdict in ORDER:
        widths = [counts[task][verdict] for task in tasks]
        if any(widths):
            ax.barh(tasks, widths, left=left, color=COLOURS[verdict], label=verdict, edgecolor="white")
            left = [a + b for a, b in zip(left, widths)]
    ax.set_xlabel("submissions")
    ax.set_title("Verdicts per task")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.figure.tight_layout()
    return ax.figure


def plot_totals(totals, ax=None):
    """A bar per total (points): how many submissions got it; return the figure."""
    ax = ax or new_axes(6, 3)
    ax.bar(list(totals), list(totals.values()), color=COLOURS[PASSED])
    ax.set_xticks(list(totals))
    ax.set_xlabel("total (tasks passed)")
    ax.set_ylabel("submissions")
    ax.set_title("Totals")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.figure.tight_layout()
    return ax.figure


def new_axes(width, height):
    """The axes of a new figure of that size in inches, drawn by Agg (no pyplot: no global state, no display)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100).add_subplot()


def png_data(figure):
    """The figure as a data: URL of a PNG, for an <img> that needs no other file."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# ---------------------------------------------------------------- the two files


def alike_groups(alike):
    """The groups of names that look alike (admit.alike's {name: [others]}), each sorted, in order."""
    return sorted({tuple(sorted([name, *others])) for name, others in (alike or {}).items()})


def submissions(rows):
    """The rows clean (Row.clean), but those of roster students without a submission (gradebook.py: listed apart)."""
    return [row.clean() for row in rows if row.submitted]


def to_summary_markdown(rows, tasks, alike=None, book=None):
    """summary.md: the class report as markdown tables; alike (admit.alike) lists the names that look alike; book
    (gradebook.Book) the students without a submission, the submissions the roster does not place and the
    instructor's verdicts."""
    rows = submissions(rows)
    counts = verdict_counts(rows, tasks)
    shown = shown_verdicts(counts)
    lines = ["# Class report", "", headline(rows, tasks), "", "## Verdicts per task", ""]
    lines += ["| task | " + " | ".join(shown) + " |", "| --- |" + " ---: |" * len(shown)]
    lines += [f"| {task} | " + " | ".join(str(counts[task][v]) for v in shown) + " |" for task in tasks]
    lines += ["", "## Most common hints", ""]
    hints = common_hints(rows, tasks)
    if not any(hints.values()):
        lines.append("No task failed.")
    for task in tasks:
        if hints[task]:
            lines += [f"### {task}", "", "| submissions | verdict | hint |", "| ---: | --- | --- |"]
            lines += [f"| {h.count} | {h.verdict} | {table_cell(code_span(h.text))} |" for h in hints[task]]
            lines.append("")
    totals = total_counts(rows, tasks)
    lines += ["## Totals", "", "| total | submissions |", "| ---: | ---: |"]
    lines += [f"| {total} | {count} |" for total, count in totals.items()]
    lines += ["", "## Could not be graded", ""]
    missed = ungradable(rows)
    lines += [f"- {name_text(name)}: {code_span(note)}" for name, note in missed] or ["Every submission was graded."]
    groups = alike_groups(alike)
    if groups:
        lines += ["", "## Names that look alike", "", "Told apart only by case, compatibility forms or invisible", ""]
        lines[-2] += " characters (shown as escapes): check which student is which."
        lines += ["- " + ", ".join(code_span(name) for name in group) for group in groups]
    for heading, intro, items in gradebook.report_sections(book, rows):
        lines += ["", f"## {heading}", "", intro, "", *(f"- {code_span(item)}" for item in items)]
    return "\n".join(lines) + "\n"


def to_report_html(rows, tasks, alike=None, book=None):
    """report.html: the class report as one self-contained page (figures embedded, no scripts, no other files);
    alike (admit.alike) lists the names that look alike; book (gradebook.Book) as in to_summary_markdown."""
    rows = submissions(rows)
    esc = html.escape
    counts = verdict_counts(rows, tasks)
    shown = shown_verdicts(counts)
    parts = [f"<h1>Class report</h1><p>{esc(headline(rows, tasks))}</p><h2>Verdicts per task</h2>"]
    if graded(rows):
        parts.append(f"<img alt='Verdicts per task, stacked bars' src='{png_data(plot_verdicts(counts))}'>")
    head = "".join(f"<th class='{v.replace(' ', '-')}'>{esc(v)}</th>" for v in shown)
    body = "".join(
        f"<tr><td>{esc(task)}</td>" + "".join(f"<td class='n'>{counts[task][v]}</td>" for v in shown) + "</tr>"
        for task in tasks
    )
    parts.append(f"<table><tr><th>task</th>{head}</tr>{body}</table><h2>Most common hints</h2>")
    hints = common_hints(rows, tasks)
    if not any(hints.values()):
        parts.append("<p>No task failed.</p>")
    for task in tasks:
        if hints[task]:
            items = "".join(
                f"<tr><td class='n'>{h.count}</td><td class='{h.verdict.replace(' ', '-')}'>{esc(h.verdict)}</td>"
                f"<td>{esc(h.text)}</td></tr>"
                for h in hints[task]
            )
            parts.append(
                f"<h3>{esc(task)}</h3><table><tr><th>submissions</th><th>verdict</th><th>hint</th></tr>{items}</table>"
            )
    totals = total_counts(rows, tasks)
    parts.append("<h2>Totals</h2>")
    if graded(rows):
        parts.append(f"<img alt='Totals, one bar per total' src='{png_data(plot_totals(totals))}'>")
    parts.append("<h2>Could not be graded</h2>")
    missed = ungradable(rows)
    parts.append(
        "<ul>" + "".join(f"<li>{esc(name)}: {esc(note)}</li>" for name, note in missed) + "</ul>"
        if missed
        else "<p>Every submission was graded.</p>"
    )
    groups = alike_groups(alike)
    if groups:
        parts.append(
            "<h2>Names that look alike</h2><p>Told apart only by case, compatibility forms or invisible characters "
            "(shown as escapes): check which student is which.</p><ul>"
            + "".join(
                "<li>" + ", ".join(f"<code>{esc(one_line(name))}</code>" for name in group) + "</li>"
                for group in groups
            )
            + "</ul>"
        )
    for heading, intro, items in gradebook.report_sections(book, rows):
        listed = "<ul>" + "".join(f"<li>{esc(item)}</li>" for item in items) + "</ul>" if items else ""
        parts.append(f"<h2>{esc(heading)}</h2><p>{esc(intro)}</p>{listed}")
    colours = "".join(f".{v.replace(' ', '-')}{{color:{c}}}" for v, c in COLOURS.items() if v != NOT_GRADED)
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>{NOTHING_FROM_ELSEWHERE}<title>Class report</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}td,th{border:1px solid #ccc;padding:.3em}"
        f"table{{border-collapse:collapse;margin:.5em 0}}td.n{{text-align:right}}img{{max-width:100%}}{colours}"
        "</style></head><body>" + "".join(parts) + "</body></html>\n"
    )
