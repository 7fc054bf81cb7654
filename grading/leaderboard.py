"""The class challenge's leaderboard: leaderboard.csv and leaderboard.html beside the grade tables.

The scored entries ranked by PSNR on the hidden set (two decimals; equal PSNRs share a rank, listed by SSIM, then
name), with the reference rows among them at their scores (unranked): the noisy input, classical denoisers, and with
`--key` the lab's core DAE and the answer key's entry. Refused entries follow, each with the rule it broke; a notebook
that skipped the challenge is not on the board. The final board scores the hidden set's private part; the live board
of a lesson (`tools/grade.py --watch`) its public part (grading/challenge.py's split), and its page reloads itself. A
student is shown by the name grades.csv gives (text.safe), or by a stable pseudonym ("Entry 417": an HMAC of the name
under the grader's secret) for a projector. The page is self-contained like report.html (no scripts, nothing from
elsewhere: its plot of score against weights and training time is an embedded PNG that shows ranks, never a name),
and every name and rule in it is escaped; in the CSV no cell starts a formula.
"""

import base64
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
TITLE = "Class challenge: leaderboard"


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


def scores(entry, public=False, prefix=""):
    """(PSNR, SSIM) of a scored entry (prefix "dae_": the answer key's core DAE) on the final part, or with public on
    the public board's part; an entry kept before the split has one pair, used for both."""
    part = "public_" if public else ""
    return tuple(entry.get(f"{prefix}{part}{name}", entry.get(f"{prefix}{name}")) for name in ("psnr", "ssim"))


def board(rows, references=(), key=None, shown=None, public=False):
    """The board's lines: ranked entries and references by score, then refused entries. rows: the class's Rows
    (clean); references: [(label, psnr, ssim)]; key: the answer key's Row, or None; shown: {name: what to show};
    public: rank by the public part's scores (the live board) instead of the final part's."""
    shown = shown or {}
    scored, refused = [], []
    for row in rows:
        entry = row.challenge
        if not entry:
            continue
        who = shown.get(row.name, row.name)
        if entry["status"] == SCORED:
            scored.append(Line(None, who, ENTRY, *scores(entry, public), entry.get("params"), entry.get("train_s")))
        else:
            refused.append(
                Line(None, who, REFUSED, params=entry.get("params"), train_s=entry.get("train_s"), rule=entry["rule"])
            )
    extra = [Line(None, label, REFERENCE, psnr, ssim, 0) for label, psnr, ssim in references]
    if key is not None and key.challenge and key.challenge["status"] == SCORED:
        entry = key.challenge
        extra.append(Line(None, KEY_NAME, REFERENCE, *scores(entry, public), entry.get("params"), entry.get("train_s")))
        dae = scores(entry, public, "dae_")
        if None not in dae:
            extra.append(Line(None, DAE_NAME, REFERENCE, *dae, entry.get("dae_params")))
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


def summary(lines):
    """(entries scored, entries refused, the best entry's Line or None)."""
    ranked = [line for line in lines if line.kind == ENTRY]
    return (
        len(ranked),
        sum(line.kind == REFUSED for line in lines),
        min(ranked, key=lambda line: line.rank, default=None),
    )


def summary_text(lines):
    """The board's summary as one line of plain text: entries, refused, the best score (safe: numbers only)."""
    entries, refused, best = summary(lines)
    text = f"{entries} entr{'y' if entries == 1 else 'ies'} scored, {refused} refused"
    return text + (f"; best PSNR {best.psnr:.2f} dB, SSIM {best.ssim:.3f}" if best else "")


def to_text(lines):
    """The board for the console: one line per entry and reference (rank, who, PSNR, SSIM, weights, training s), then
    each refused entry with its rule; names as text.safe shows them."""
    said = [
        f"{number(line.rank, 'd') or '–':>4}  {safe(line.who):<44.44}  {number(line.psnr, '.2f'):>6} dB  "
        f"SSIM {number(line.ssim, '.3f'):>5}  {number(line.params or None, ',d') or '–':>9} weights  "
        f"{number(line.train_s, '.0f') or '–':>4} s"
        for line in lines
        if line.kind != REFUSED
    ]
    said += [f"   –  {safe(line.who)}: refused: {safe(line.rule)}" for line in lines if line.kind == REFUSED]
    return said


def plot_png(lines):
    """PNG bytes of the trade-off: PSNR against weights (log scale) and against training seconds, each entry a dot
    marked with its rank (never a name), the answer key's rows grey diamonds, each reference without weights within the
    entries' range a dotted line with its label (the grader's); None with no entry to plot."""
    from matplotlib.figure import Figure  # not pyplot: no global figure state in the grader
    from matplotlib.ticker import EngFormatter, LogLocator, NullFormatter

    entries = [line for line in lines if line.kind == ENTRY]
    if not entries:
        return None
    shown = [line.psnr for line in lines if line.kind == ENTRY or line.kind == REFERENCE and line.params]
    low, high = min(shown) - 1, max(shown) + 0.5
    figure = Figure(figsize=(11, 4.2), dpi=100, layout="constrained")
    axes = figure.subplots(1, 2, sharey=True)
    for axis, cost, label, scale in (
        (axes[0], "params", "weights (log scale)", "log"),
        (axes[1], "train_s", "training (s, the grader's clock)", "linear"),
    ):
        for line in lines:
            value = getattr(line, cost)
            if line.kind == REFERENCE and not line.params:
                if low <= line.psnr <= high:
                    axis.axhline(line.psnr, color="#999", linestyle=":", linewidth=1)
                    if cost == "train_s":
                        axis.annotate(
                            line.who.removesuffix(" (reference)"),
                            (1, line.psnr),
                            xycoords=("axes fraction", "data"),
                            xytext=(-4, 3),
                            textcoords="offset points",
                            ha="right",
                            fontsize=9,
                            color="#666",
                        )
                continue
            if line.kind == REFUSED or not value:
                continue
            entry = line.kind == ENTRY
            axis.plot(value, line.psnr, "o" if entry else "D", color="#1565c0" if entry else "#888", markersize=7)
            axis.annotate(
                str(line.rank) if entry else "key" if line.who == KEY_NAME else "DAE",
                (value, line.psnr),
                textcoords="offset points",
                xytext=(5, 4),
                fontsize=9,
                color="#000" if entry else "#666",
            )
        axis.set_xscale(scale)
        axis.set_xlabel(label)
        axis.grid(alpha=0.3)
    axes[0].xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    axes[0].xaxis.set_major_formatter(EngFormatter(sep=""))  # 50k, 200k, 1M
    axes[0].xaxis.set_minor_formatter(NullFormatter())
    axes[0].set_ylim(low, high)
    axes[0].set_ylabel("PSNR (dB)")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def to_html(lines, title=TITLE, note="", refresh=None):
    """leaderboard.html: one self-contained page (no scripts, nothing from elsewhere), large enough for a projector:
    a summary, the plot of score against cost, the table, the refused entries; every name and rule escaped. note:
    which part of the hidden set it scores (plain text of the grader's); refresh: seconds after which the page reloads
    itself (the live board), or None."""
    esc = html.escape
    ranked = [line for line in lines if line.kind != REFUSED]
    refused = [line for line in lines if line.kind == REFUSED]
    body = "".join(
        f"<tr class='{line.kind}'><td class='n'>{number(line.rank, 'd') or '–'}</td><td>{esc(safe(line.who))}</td>"
        f"<td class='n'>{number(line.psnr, '.2f')}</td><td class='n'>{number(line.ssim, '.3f')}</td>"
        f"<td class='n'>{number(line.params or None, ',d') or '–'}</td>"
        f"<td class='n'>{number(line.train_s, '.0f') or '–'}</td></tr>"
        for line in ranked
    )
    png = plot_png(lines)
    parts = [
        f"<h1>{esc(title)}</h1>",
        f"<p class='summary'>{esc(summary_text(lines))}.</p>",
        f"<p>PSNR (dB) and SSIM on the grader's hidden set{esc(note)}; references in grey, unranked.</p>",
    ]
    if png:
        parts.append(
            "<figure><img alt='PSNR against weights and against training time, each entry marked with its rank' "
            f"src='data:image/png;base64,{base64.b64encode(png).decode()}'><figcaption>Score against cost: each dot is "
            "an entry, marked with its rank; grey diamonds are the answer key's rows; dotted lines are references without "
            "weights (those below the entries are left out).</figcaption></figure>"
        )
    parts.append(
        "<table><tr><th>rank</th><th>entry</th><th>PSNR (dB)</th><th>SSIM</th><th>parameters</th>"
        f"<th>training (s)</th></tr>{body}</table>"
    )
    if refused:
        items = "".join(f"<li>{esc(safe(line.who))}: {esc(safe(line.rule))}</li>" for line in refused)
        parts.append(f"<h2>Refused entries</h2><ul>{items}</ul>")
    reload = f"<meta http-equiv='refresh' content='{int(refresh)}'>" if refresh else ""
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>{NOTHING_FROM_ELSEWHERE}{reload}"
        f"<title>{esc(title)}</title><style>body{{font-family:sans-serif;font-size:1.4em;max-width:60em;"
        "margin:1.5em auto;padding:0 2em}td,th{border:1px solid #ccc;padding:.3em .6em}table{border-collapse:collapse}"
        "td.n{text-align:right}tr.reference{color:#777;font-style:italic}.summary{font-size:1.2em;font-weight:bold}"
        "figure{margin:1em 0}img{max-width:100%}figcaption{font-size:.7em;color:#555}</style></head><body>"
        + "".join(parts)
        + "</body></html>\n"
    )


def write(folder, lines, paths=(CSV_FILE, HTML_FILE), **page):
    """Write leaderboard.csv and leaderboard.html (paths: their names, or paths whose names are used) into folder (an
    outputs.Folder: atomically, no link followed); page: to_html's title, note and refresh."""
    csv_name, html_name = (getattr(path, "name", path) for path in paths)
    folder.write(csv_name, to_csv(lines).encode("utf-8"))
    folder.write(html_name, to_html(lines, **page).encode("utf-8"))
