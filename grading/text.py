"""Untrusted text made data: the one place where a string a submission controls (its file's name, its messages, its
traceback, anything its kernel sends) is made safe to show, wherever it lands: the console, grades.csv, the markdown
and HTML pages, the feedback files' names and the results store.

`safe` caps it and shows every control character as an escape (`\\x1b`, `\\u202e`), so none of it can move a
terminal's cursor, set its title or clipboard (OSC 52), link (OSC 8), reverse the text around it (the bidi overrides
and isolates) or break a line where the field has one line; `csv_cell` keeps a spreadsheet from reading it as a
formula (OWASP's CSV injection advice); `file_stem` makes a short, safe file name of it. Markdown quoting and HTML
escaping stay with their formats (report.py, classreport.py), on text that went through `safe` first.
"""

import hashlib
import re

NAME_CHARS = 100  # of a submission's name in every table, line and file
MESSAGE_CHARS = 2000  # of a task's message or a note
ERROR_CHARS = 8000  # of the traceback shown in a student's feedback (execute.MAX_DETAIL_CHARS and its heading)
CUT = "…"  # ends a cut text
COLOUR = re.compile(r"\x1b\[[0-9;]*m")  # terminal colours, which IPython puts in every traceback: dropped
# C0 but tab and newline, DEL, C1, Arabic letter mark, LRM/RLM, line/paragraph separators, bidi embeddings and
# overrides (U+202A-U+202E) and isolates (U+2066-U+2069), byte-order mark, and lone surrogates (unencodable as UTF-8)
CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff]"
)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what makes a spreadsheet read a cell as a formula (OWASP)
PLAIN_STEM = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}", re.ASCII)


def escape(match):
    """A control character as the escape Python would write for it."""
    return ascii(match.group())[1:-1]


def safe(text, limit=MESSAGE_CHARS, lines=False):
    """Text as data: at most limit characters, control characters shown escaped; with lines, its tabs and newlines
    kept, else all its white space made single spaces (one line)."""
    text = COLOUR.sub("", str(text)[: 2 * limit])  # cut first: a 16 MiB message costs no more than a short one
    if not lines:
        text = " ".join(text.split())
    text = CONTROL.sub(escape, text.replace("\r\n", "\n") if lines else text)
    return text if len(text) <= limit else text[: limit - len(CUT)] + CUT


def csv_cell(text):
    """A CSV cell a spreadsheet shows as text: one starting like a formula gets a leading apostrophe."""
    return f"'{text}" if text.startswith(FORMULA_START) else text


def file_stem(name):
    """A file name (without suffix) for a submission's own files: the name itself when it is a plain file name of
    at most 100 characters, else a slug of it with a hash of the whole name (so two names never share a file: a plain
    name never holds `~`)."""
    if PLAIN_STEM.fullmatch(name):
        return name
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name, flags=re.ASCII).strip("._")[:60]
    return f"{slug}~{hashlib.sha256(name.encode('utf-8', 'backslashreplace')).hexdigest()[:12]}"
