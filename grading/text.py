"""Untrusted text made data: the one place where a string a submission controls (its file's name, its messages, its
traceback, anything its kernel sends) is made safe to show, wherever it lands: the console, grades.csv, the markdown
and HTML pages, the feedback files' names and the results store.

`safe` caps it and shows every control, format or otherwise invisible character as an escape (`\\x1b`, `\\u202e`,
`\\u200b`: HIDDEN, by Unicode category), so none of it can move a terminal's cursor, set its title or clipboard (OSC 52),
link (OSC 8), reverse the text around it (the bidi overrides and isolates), break a line where the field has one line
or make two names print alike (a zero-width space); `likeness` is what a person reads in a name, for telling apart
names that differ only in case, compatibility forms or invisible characters; `csv_cell` keeps a spreadsheet from reading it as a
formula (OWASP's CSV injection advice); `file_stem` makes a short, safe file name of it. Markdown quoting and HTML
escaping stay with their formats (report.py, classreport.py), on text that went through `safe` first.
"""

import hashlib
import re
import unicodedata

NAME_CHARS = 100  # of a submission's name in every table, line and file
MESSAGE_CHARS = 2000  # of a task's message or a note
ERROR_CHARS = 8000  # of the traceback shown in a student's feedback (execute.MAX_DETAIL_CHARS and its heading)
CUT = "…"  # ends a cut text
COLOUR = re.compile(r"\x1b\[[0-9;]*m")  # terminal colours, which IPython puts in every traceback: dropped
# What is shown as an escape: every character of these Unicode categories (unicodedata.category), whatever its
# number: controls (Cc: C0, DEL, C1; tab and newline are kept where a field has lines), format characters (Cf: zero-width
# space and joiners, word joiner, soft hyphen, bidi marks, embeddings, overrides and isolates, the byte-order mark, tag
# characters), line and paragraph separators (Zl, Zp), private use (Co), lone surrogates (Cs, unencodable as UTF-8)
# and unassigned code points (Cn: a later Unicode may make them anything)
HIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn"})
# ... and every Default_Ignorable_Code_Point of Unicode's DerivedCoreProperties.txt that is in no category above
# (combining grapheme joiner, Hangul fillers, Khmer inherent vowels, Mongolian and other variation selectors): drawn as
# nothing, like a zero-width space. Python's unicodedata has categories but not this property, so its ranges are here.
IGNORABLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F),
    (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)  # fmt: skip
# What a person reads as a path's slash: a name holding one of these looks like a path (bob∕lab beside bob/lab)
SLASHES = str.maketrans({char: "/" for char in "\u2044\u2215\u29f8\u2571\u1735\u3033\uff0f"})
NOT_PLAIN = re.compile(r"[^\x20-\x7e\t\n]")  # the candidates: printable ASCII never needs a look
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what makes a spreadsheet read a cell as a formula (OWASP)
PLAIN_STEM = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}", re.ASCII)


def escape(match):
    """A hidden character (HIDDEN) as the escape Python would write for it (`\\x1b`, `\\u200b`); any other as it is."""
    char = match.group()
    return ascii(char)[1:-1] if hidden(char) else char


def hidden(char):
    """Whether safe shows char as an escape (tab and newline aside): of a HIDDEN category, or default-ignorable."""
    if unicodedata.category(char) in HIDDEN:
        return True
    code = ord(char)
    return any(low <= code <= high for low, high in IGNORABLE)


def safe(text, limit=MESSAGE_CHARS, lines=False):
    """Text as data: at most limit characters, hidden characters (HIDDEN) shown escaped; with lines, its tabs and newlines
    kept, else all its white space made single spaces (one line)."""
    text = COLOUR.sub("", str(text)[: 2 * limit])  # cut first: a 16 MiB message costs no more than a short one
    if not lines:
        text = " ".join(text.split())
    text = NOT_PLAIN.sub(escape, text.replace("\r\n", "\n") if lines else text)
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


def likeness(name):
    """What a person reads in name: its hidden characters (HIDDEN) dropped, then NFKC and case folded, so that two
    names with the same likeness look alike (`C0_control` and `C0_control` + U+200B, `Alice` and `ALICE`, `ﬁle` and
    `file`, `bob∕lab` with a division slash and `bob/lab`)."""
    visible = "".join(char for char in name if not hidden(char))
    return unicodedata.normalize("NFKC", visible).casefold().translate(SLASHES)


def hidden_in(text):
    """The first hidden character (HIDDEN) in text but tab and newline, which safe would have shown escaped; or None."""
    return next((m.group() for m in NOT_PLAIN.finditer(text) if hidden(m.group())), None)
