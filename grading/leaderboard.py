"""The class challenge's leaderboard: leaderboard.csv and leaderboard.html beside the grade tables.

The scored entries ranked by PSNR on the hidden set (two decimals; equal PSNRs share a rank, listed by SSIM, then
name), with the reference rows among them at their scores (unranked): the noisy input, classical denoisers, and with
`--key` the lab's core DAE and the answer key's entry. Refused entries follow, each with the rule it broke. A student is
shown by the name grades.csv gives (text.safe), or by a stable pseudonym ("Entry 417": an HMAC of the name under the
grader's secret) for a projector. The page is self-contained like report.html (no scripts, nothing from elsewhere)
and every name and rule in it is escaped; in the CSV no cell starts a formula.
"""

import csv
import hashlib
import hmac
import html
import io
from typing import NamedTuple

from grading.report import NOTHING_FROM_ELSEWHERE, REFUSED, SCORED
from grading.text import REFERENCE_MARK, csv_cell, safe

CSV_FILE, HTML_FILE = "leaderboard.csv", "leaderboard.html"
ENTRY, REFERENCE = "entry", "reference"
KEY_NAME = f"answer key's entry {REFERENCE_MARK}"  # a label no submission's name can take (admit.name_all)
DAE_NAME = f"core DAE, the answer key's dae {REFERENCE_MARK}"


class Line(NamedTuple):
    """One line of the board: rank (None for a reference or a refused entry), who, scores and what it cost."""

    rank: int | None
    who: str
    kind: str  # ENTRY, REFERENCE or REFUSED
    psnr: float | None = None
    ssim: float | None = None
    params: int | None = None
    train_s: float | None = None
    rule: str = ""


def pseudonyms(names, secret):
    """{name: "Entry N"}, N from an HMAC of the name under secret, distinct within names (a clash takes the next free
    number, in the order of the names' HMACs): the same name gets the same pseudonym in every run of a class."""
    digits = 3 if len(names) <= 300 else 6
    macs = sorted(
        (hmac.new(secret, b"pseudonym\0" + name.encode("utf-8", "surrogateescape"), hashlib.sha256).digest(), name)
        for name in set(names)
    )
    taken, shown = set(), {}
    for digest, name in macs:
        number = int.from_bytes(digest[:8], "big") % 10**digits
        while number in taken or number == 0:
            number = (number + 1) % 10**digits
        taken.add(number)
        shown[name] = f"Entry {number}"
    return shown


def board(rows, references=(), key=None, shown=None):
    """The board's lines: ranked entries and references by score, then refused entries. rows: the class's Rows
    (clean); references: [(label, psnr, ssim)]; key: the answer key's Row, or None; shown: {name: what to show}."""
    shown = shown or {}
    scored, refused = [], []
    for row in rows:
        entry = row.challenge
        if not entry:
            continue
        who = shown.get(row.name, row.name)
        if entry["status"] == SCORED:
            scored.append(
                Line(None, who, ENTRY, entry["psnr"], entry["ssim"], entry.get("params"), entry.get("train_s"))
            )
        else:
            refused.append(
                Line(None, who, REFUSED, params=entry.get("params"), train_s=entry.get("train_s"), rule=entry["rule"])
            )
    extra = [Line(None, label, REFERENCE, psnr, ssim, 0) for label, psnr, ssim in references]
    if key is not None and key.challenge and key.challenge["status"] == SCORED:
        entry = key.challenge
        extra.append(
            Line(None, KEY_NAME, REFERENCE, entry["psnr"], entry["ssim"], entry.get("params"), entry.get("train_s"))
        )
        if "dae_psnr" in entry and "dae_ssim" in entry:
            extra.append(Line(None, DAE_NAME, REFERENCE, entry["dae_psnr"], entry["dae_ssim"], entry.get("dae_params")))
    order = sorted([*scored, *extra], key=lambda line: (-round(line.psnr, 2), -line.ssim, line.kind != ENTRY, line.who))
    ranked, rank, count, previous = [], 0, 0, None
    for line in order:
        if line.kind == ENTRY:
            count += 1
            if round(line.psnr, 2) != previous:
                rank, previous = count, round(line.psnr, 2)
            line = line._replace(rank=rank)
        ranked.append(line)
    return ranked + sorted(refused, key=lambda line: line.who)


def standing(rows):
    """{name: {rank, entries, best_psnr, best_ssim}} for each scored entry of rows: what its student's feedback shows
    (their own rank and the best entry's score, never another name)."""
    lines = board(rows)
    ranked = {line.who: line for line in lines if line.kind == ENTRY}
    if not ranked:
        return {}
    best = min(ranked.values(), key=lambda line: line.rank)
    return {
        name: {"rank": line.rank, "entries": len(ranked), "best_psnr": best.psnr, "best_ssim": best.ssim}
        for name, line in ranked.items()
    }


def number(value, form):
    """A number as text in form, or "" when there is none."""
    return "" if value is None else format(value, form)


def to_csv(lines):
    """leaderboard.csv: rank, student, psnr_db, ssim, parameters, training_s, kind, rule."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["rank", "student", "psnr_db", "ssim", "parameters", "training_s", "kind", "rule"])
    for line in lines:
        cells = [
            number(line.rank, "d"),
            safe(line.who),
            number(line.psnr, ".2f"),
            number(line.ssim, ".4f"),
            number(line.params, "d"),
            number(line.train_s, ".0f"),
            line.kind,
            safe(line.rule),
        ]
        writer.writerow([csv_cell(cell) for cell in cells])
    return buffer.getvalue()


def to_html(lines, title="Class challenge: leaderboard"):
    """leaderboard.html: one self-contained page (no scripts, nothing from elsewhere), large enough for a projector;
    every name and rule escaped."""
    esc = html.escape
    ranked = [line for line in lines if line.kind != REFUSED]
    refused = [line for line in lines if line.kind == REFUSED]
    body = "".join(
        f"<tr class='{line.kind}'><td class='n'>{number(line.rank, 'd') or '–'}</td><td>{esc(safe(line.who))}</td>"
        f"<td class='n'>{number(line.psnr, '.2f')}</td><td class='n'>{number(line.ssim, '.3f')}</td>"
        f"<td class='n'>{number(line.params, ',d')}</td><td class='n'>{number(line.train_s, '.0f')}</td></tr>"
        for line in ranked
    )
    parts = [
        f"<h1>{esc(title)}</h1>",
        "<p>PSNR (dB) and SSIM on the grader's hidden set; references in grey, unranked.</p>",
        "<table><tr><th>rank</th><th>entry</th><th>PSNR (dB)</th><th>SSIM</th><th>parameters</th>"
        f"<th>training (s)</th></tr>{body}</table>",
    ]
    if refused:
        items = "".join(f"<li>{esc(safe(line.who))}: {esc(safe(line.rule))}</li>" for line in refused)
        parts.append(f"<h2>Refused entries</h2><ul>{items}</ul>")
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>{NOTHING_FROM_ELSEWHERE}<title>{esc(title)}</title>"
        "<style>body{font-family:sans-serif;font-size:1.4em;max-width:60em;margin:2em auto}"
        "td,th{border:1px solid #ccc;padding:.3em .6em}table{border-collapse:collapse}td.n{text-align:right}"
        "tr.reference{color:#777;font-style:italic}</style></head><body>" + "".join(parts) + "</body></html>\n"
    )


def write(folder, lines, paths=(CSV_FILE, HTML_FILE)):
    """Write leaderboard.csv and leaderboard.html (paths: their names, or paths whose names are used) into folder (an
    outputs.Folder: atomically, no link followed)."""
    csv_name, html_name = (getattr(path, "name", path) for path in paths)
    folder.write(csv_name, to_csv(lines).encode("utf-8"))
    folder.write(html_name, to_html(lines).encode("utf-8"))
