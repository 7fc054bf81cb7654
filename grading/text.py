"""Untrusted text and numbers made data: the one place where a string a submission controls (its file's name, its
messages, its traceback, anything its kernel sends) is made safe to show, wherever it lands: the console, grades.csv,
the markdown and HTML pages, the feedback files' names and the results store; and where a number its kernel reports (a
parameter count, a time, a shape, a score's input) is checked and bounded before the grader computes with it
(`number`: a 10**309 parameter count would overflow float(), nan compares false with everything).

`safe` caps it and shows every control, format or otherwise invisible character as an escape (`\\x1b`, `\\u202e`,
`\\u200b`: HIDDEN, by Unicode category), so none of it can move a terminal's cursor, set its title or clipboard (OSC 52),
link (OSC 8), reverse the text around it (the bidi overrides and isolates), break a line where the field has one line
or make two names print alike (a zero-width space); `likeness` is what a person reads in a name (Unicode's confusable
skeleton, UTS #39, through ICU), for telling apart names that differ only in case, compatibility forms, invisible
characters or look-alike letters of the same script or another (`C0_control`, `C0_ᴄontrol`, `C0_сontrol`);
`reserved` says whether a name would read as a reference row's label (REFERENCE_MARK); `csv_cell` keeps a
spreadsheet from reading it as a formula (OWASP's CSV injection advice); `file_stem` makes a short, safe file name of
it. Markdown quoting and HTML escaping stay with their formats (report.py, classreport.py), on text that went through `safe` first.
"""

import functools
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
REFERENCE_MARK = (
    "(reference)"  # ends every reference row's label on the leaderboard; no submission's name may hold it (reserved)
)
NOT_PLAIN = re.compile(r"[^\x20-\x7e\t\n]")  # the candidates: printable ASCII never needs a look
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what makes a spreadsheet read a cell as a formula (OWASP)
PLAIN_STEM = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}", re.ASCII)
MAX_COUNT = 2**53  # of any count a kernel reports (parameters, steps, a shape's length): every int to it is a float
MAX_SECONDS = 10.0**7  # of any time a row keeps (four months)


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
    """What a person reads in name: its hidden characters (HIDDEN) dropped, NFKC and case folded, then Unicode's
    confusable skeleton (UTS #39, ICU's SpoofChecker) folded again, so that two names with the same likeness look alike:
    `C0_control` beside `C0_control` + U+200B, `ALICE`, `C0_ᴄontrol` (a Latin small capital), `C0_сontrol` (Cyrillic),
    `CO_control`; `ﬁle` beside `file`; `bob∕lab` (a division slash) beside `bob/lab`."""
    visible = "".join(char for char in name if not hidden(char))
    return skeleton(unicodedata.normalize("NFKC", visible).casefold()).casefold()


@functools.cache
def spoof_checker():
    """ICU's checker of confusable text (Unicode's confusables.txt, kept by ICU): one per process."""
    import icu

    return icu.SpoofChecker()


def skeleton(text):
    """text's UTS #39 skeleton: every character mapped to the prototype it can be confused with."""
    return spoof_checker().getSkeleton(0, text)  # 0: the check type is ignored since ICU 58


def reserved(name):
    """Whether a name could read as a reference row's label: its likeness holds REFERENCE_MARK's anywhere, once both
    keep only letters, numbers and punctuation (a mark, symbol or space after or inside the label, such as U+0301 or the
    blank braille pattern U+2800, hides nothing)."""
    return legible(likeness(REFERENCE_MARK)) in legible(likeness(name))


def legible(text):
    """text's letters, numbers and punctuation only (Unicode categories L, N and P)."""
    return "".join(char for char in text if unicodedata.category(char)[0] in "LNP")


def hidden_in(text):
    """The first hidden character (HIDDEN) in text but tab and newline, which safe would have shown escaped; or None."""
    return next((m.group() for m in NOT_PLAIN.finditer(text) if hidden(m.group())), None)


def number(value, low=-MAX_COUNT, high=MAX_COUNT, whole=False, clamp=False):
    """A number a submission reported, as data: a plain int (whole) or float within [low, high] (with clamp, brought
    into it: an infinite PSNR is the cap), else None: a bool, a string, a container, nan, a value outside the bounds
    (a 10**309 parameter count, an infinity), a fraction where a whole number is due. Never raises on any value."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:  # nan is not equal to itself
        return None
    if clamp:
        value = min(max(value, low), high)  # Python compares an int with a float exactly: nothing overflows
    elif not low <= value <= high:
        return None
    if whole:
        return int(value) if isinstance(value, int) or float(value).is_integer() else None
    return float(value)
