"""The course's gradebook: whose each submission is (the roster), the instructor's own verdicts (overrides), and the
class's points in the import formats of Canvas and Moodle.

Two files of the instructor's, each optional, each read whole and checked before anything is graded or written: a
malformed one is a UsageError naming the file, the line and the fix (the command's exit status 2).

- **The roster** (`--roster`): CSV, a header line then one student a line. Columns: `id` and `name` (required),
  `email`, `submission`, `section`, `login`, `canvas_id` (optional, in any order). A submission is the student's when
  its file stem, or a folder on its path, is the student's `submission` cell (their `id` where that is empty), or
  starts with it and `_` (as the files of Canvas's and Moodle's "download submissions" do: `smithjane_12345_...`).
  Every student is a row of the tables (without a submission: "no submission"); a submission that is no one's, or two
  students', or one of a student's several, keeps its row, with a note that says so (matching never drops one).
- **Overrides** (`--overrides`): CSV: `submission` (a submission's name as grades.csv shows it, or a roster student's
  `id`), `task`, `verdict` (`passed` or `failed`), `reason`, `fingerprint` (of the notebook the instructor read:
  FINGERPRINT_CHARS hex digits of its SHA-256; left empty, the error says what to write). Applied on every run, after
  grading (the results store keeps the grader's own verdicts): the task's cell says "passed by the instructor:
  REASON" in the tables and the student's feedback, and the total counts it. An override whose notebook has changed
  since (its fingerprint differs), or whose submission is gone, is **not applied**: the instructor's verdict was about
  the notebook they read, and a changed one is new work to read again; it is listed in the console and the class
  report, and noted in the tables (not in the student's feedback).
- **Exports** (`--export canvas`, `--export moodle`): the points (tasks passed, out of the number of tasks) of every
  roster student as the gradebook import CSV of Canvas (Student, ID, SIS User ID, SIS Login ID, Section, then one
  column per assignment, and a "Points Possible" row under the header) or of Moodle (an identifier column per user
  field it can map from, ID number and email address, then one column per grade item), beside grades.csv. A student
  with no graded submission, or several, gets a blank cell. The challenge's column (`--export-challenge`): 1 point
  for an entry scored on the hidden set, 0 for one refused, out of 1.

Whatever these files and the submissions hold stays data: a cell holding a hidden character (text.hidden_in) is
refused, as is an identifier starting like a formula (text.csv_cell would change it and the gradebook would not find
the student); every other cell is made safe (text.safe) and, in CSV, no cell starts a formula (text.csv_cell).
"""

import collections
import csv
import hashlib
import io
import re
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from grading.admit import UsageError
from grading.report import FAILED, PASSED, SCORED, Row
from grading.text import FORMULA_START, NAME_CHARS, csv_cell, hidden_in, safe

MAX_FILE_BYTES = 4 * 2**20  # of a roster or overrides file: a class of a thousand is about 100 KiB
FINGERPRINT_CHARS = 16  # hex digits of a submission's SHA-256 that an override names
NO_SUBMISSION = "no submission"  # the note of a roster student's row without one
ROSTER_COLUMNS = ("id", "name", "email", "submission", "section", "login", "canvas_id")
ROSTER_REQUIRED = ("id", "name")
IDENTIFIERS = ("id", "email", "submission", "login", "canvas_id")  # what a gradebook matches on: never altered
OVERRIDE_COLUMNS = ("submission", "task", "verdict", "reason", "fingerprint")
OVERRIDE_VERDICTS = (PASSED, FAILED)
ASSIGNMENT = "DAE lab"  # the assignment's column, unless --assignment names it
CHALLENGE_TITLE = "DAE challenge"  # the challenge's column (an entry scored: 1, refused: 0)
CANVAS, MOODLE = "canvas", "moodle"
EXPORTS = (CANVAS, MOODLE)  # written as canvas.csv and moodle.csv beside grades.csv (with its prefix)
CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")  # Canvas's gradebook CSV, in order
POINTS_POSSIBLE = "Points Possible"  # the first cell of Canvas's row of each column's maximum
MOODLE_COLUMNS = ("ID number", "Email address", "Full name")  # user fields Moodle's CSV grade import maps from


class Files(NamedTuple):
    """What the command line asked of the gradebook: the instructor's files and the exports."""

    roster: str | None = None
    overrides: str | None = None
    exports: tuple = ()
    challenge: bool = False
    assignment: str = ASSIGNMENT


class Student(NamedTuple):
    """One line of the roster."""

    id: str
    name: str
    email: str = ""
    submission: str = ""  # the file stem or folder name of their submission ("": their id)
    section: str = ""
    login: str = ""
    canvas_id: str = ""

    @property
    def key(self):
        """What their submission's stem or folder is: the submission cell, else the id."""
        return self.submission or self.id


class Override(NamedTuple):
    """One line of the overrides file: the instructor's verdict on a task of a submission."""

    submission: str
    task: str
    verdict: str
    reason: str
    fingerprint: str
    where: str  # "FILE, line N", for the messages


class Book:
    """The gradebook of one run: the roster matched against the submissions and the overrides resolved, all decided
    before grading (prepare); applied to the rows after it (apply, noted), exported (write_exports)."""

    def __init__(self, files=None, students=(), owner=None, notes=None, overrides=None, unapplied=(), stale=None):
        self.files = files or Files()
        self.students = tuple(students)  # roster order
        self.owner = owner or {}  # submission name -> the Student whose it is (exactly one)
        self.notes = notes or {}  # submission name -> whose it is not (no one's, two students', one of several)
        self.overrides = overrides or {}  # submission name -> {task: Override} applied
        self.unapplied = tuple(unapplied)  # (Override, why not)
        self.stale = stale or {}  # submission name -> which overrides of it are not applied: its notebook changed

    @property
    def missing(self):
        """The roster's students without a submission."""
        owned = {student.id for student in self.owner.values()}
        return [student for student in self.students if student.id not in owned]


# ---------------------------------------------------------------- reading the instructor's files


def problem(where, what, fix):
    """A UsageError for a malformed file: where (file and line), what is wrong, the fix, and that nothing was written."""
    return UsageError(f"{where}: {what}. {fix} Nothing was graded or written.")


def read_table(path, what, columns, required):
    """The lines after the header of the instructor's CSV file at path as [(where, {column: cell})], each cell
    stripped; raise UsageError naming the file and the line where it is not a CSV file of those columns (the header's
    names in any order and case; the required ones present; no other), or a cell holds a hidden character."""
    path = Path(path)
    shown = safe(str(path), 300)
    try:
        with open(path, "rb") as file:  # the instructor's own file, named on the command line: a link is followed
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise UsageError(
            f"Cannot read the {what} {shown}: {err.strerror or err}. Give the path of a CSV file."
        ) from None
    if len(data) > MAX_FILE_BYTES:
        raise UsageError(f"The {what} {shown} is over {MAX_FILE_BYTES // 2**20} MiB: it is not a {what}.")
    try:
        text = data.decode("utf-8-sig").replace("\r\n", "\n")  # "CSV UTF-8" starts with a byte-order mark
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise problem(f"{shown}, line {line}", "not UTF-8 text", "Save the file as CSV UTF-8.") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header, lines, start = None, [], 1
    try:
        for record in reader:
            where, start = f"{shown}, line {start}", reader.line_num + 1
            if not any(cell.strip() for cell in record):
                continue
            cells = [cell.strip() for cell in record]
            for column, cell in zip(header or cells, cells):
                char = hidden_in(cell)
                if char is not None:
                    raise problem(
                        where,
                        f"the {safe(column, 40)!r} cell holds the hidden character {ascii(char)}",
                        "Remove it (it is invisible in most editors; retype the cell).",
                    )
            if header is None:
                header = read_header(where, cells, columns, required, what)
                continue
            if len(cells) != len(header):
                raise problem(
                    where,
                    f"{len(cells)} cells where the header has {len(header)} ({', '.join(header)})",
                    "Give each line one cell per column; a cell holding a comma goes in double quotes.",
                )
            lines.append((where, dict(zip(header, cells))))
    except csv.Error as err:
        raise problem(f"{shown}, line {reader.line_num}", f"not CSV ({err})", "Save the file as CSV.") from None
    if header is None:
        raise problem(shown, "empty", f"Its first line names the columns: {', '.join(columns)}.")
    return [(where, {column: cells.get(column, "") for column in columns}) for where, cells in lines]


def read_header(where, cells, columns, required, what):
    """The header's column names (lower case); UsageError where one is unknown, repeated, or a required one missing."""
    names = [cell.lower() for cell in cells]
    unknown = [safe(name, 40) for name in names if name not in columns]
    repeated = sorted({name for name in names if names.count(name) > 1})
    missing = [name for name in required if name not in names]
    if unknown or repeated or missing:
        said = "; ".join(
            filter(
                None,
                [
                    unknown and f"unknown column(s) {', '.join(map(repr, unknown))}",
                    repeated and f"repeated column(s) {', '.join(repeated)}",
                    missing and f"no {', '.join(missing)} column",
                ],
            )
        )
        separated = " Save it as CSV with commas, not semicolons." if any(";" in name for name in names) else ""
        raise problem(
            where,
            f"the header of a {what} has {said}",
            f"Its first line names the columns: {', '.join(required)} (required), "
            f"{', '.join(c for c in columns if c not in required) or 'no others'} (optional).{separated}",
        )
    return names


def read_roster(path):
    """The students of the roster file at path, in its order; UsageError (file, line, fix) where it is malformed: a
    required cell empty, an identifier starting like a formula, an email without @, a `submission` that is a path, an
    id, submission, email, login or canvas_id another line has too."""
    students, seen = [], {}
    for where, cells in read_table(path, "roster", ROSTER_COLUMNS, ROSTER_REQUIRED):
        for column in ROSTER_REQUIRED:
            if not cells[column]:
                raise problem(where, f"the {column} cell is empty", f"Give each student a {column}.")
        for column in IDENTIFIERS:
            if re.search(r"[\t\n]", cells[column]):
                raise problem(where, f"the {column} cell holds a line break or a tab", "Write it on one line.")
            if cells[column].startswith(FORMULA_START):
                raise problem(
                    where,
                    f"the {column} {safe(cells[column], 40)!r} starts like a spreadsheet formula",
                    "Write it as the gradebook has it (an identifier never starts with =, +, -, @).",
                )
        if cells["email"] and not re.fullmatch(r"[^@\s]+@[^@\s]+", cells["email"]):
            raise problem(where, f"the email {safe(cells['email'], 60)!r} is not an address", "Write name@domain.")
        if "/" in cells["submission"] or "\\" in cells["submission"]:
            raise problem(
                where,
                f"the submission {safe(cells['submission'], 60)!r} is a path",
                "Write the file's stem (alice for alice.ipynb) or the one folder name that holds it.",
            )
        student = Student(**cells)
        for column, value in [*((c, cells[c]) for c in ("id", "email", "login", "canvas_id")), ("key", student.key)]:
            if value and (column, value) in seen:
                what = "submission (or id, where the submission cell is empty)" if column == "key" else column
                raise problem(
                    where,
                    f"the {what} {safe(value, 60)!r} is also on {seen[column, value]}",
                    "Give each student their own.",
                )
            seen[column, value] = where.rsplit(", ", 1)[-1]
        students.append(student)
    if not students:
        raise problem(safe(str(path), 300), "no students", "Write one student a line under the header.")
    return students


def read_overrides(path, tasks):
    """The overrides in the file at path; UsageError (file, line, fix) where one is malformed: an unknown task, a
    verdict other than passed or failed, no reason, a fingerprint that is not FINGERPRINT_CHARS hex digits, or a
    submission and task another line overrides too."""
    overrides, seen = [], {}
    for where, cells in read_table(path, "overrides file", OVERRIDE_COLUMNS, OVERRIDE_COLUMNS):
        if not cells["submission"]:
            raise problem(
                where, "the submission cell is empty", "Name the submission (as grades.csv does) or the student's id."
            )
        if cells["task"] not in tasks:
            raise problem(
                where,
                f"no task is called {safe(cells['task'], 60)!r}",
                f"Name one of the lab's tasks: {', '.join(tasks)} (the challenge is scored, not overridden).",
            )
        verdict = cells["verdict"].lower()
        if verdict not in OVERRIDE_VERDICTS:
            raise problem(where, f"the verdict {safe(cells['verdict'], 40)!r} is not one", "Write passed or failed.")
        if not cells["reason"]:
            raise problem(
                where, "the reason is empty", "Say why, in a sentence: the student reads it in their feedback."
            )
        fingerprint = cells["fingerprint"].lower()
        if fingerprint and not re.fullmatch(rf"[0-9a-f]{{{FINGERPRINT_CHARS}}}", fingerprint):
            raise problem(
                where,
                f"the fingerprint {safe(fingerprint, 40)!r} is not {FINGERPRINT_CHARS} hex digits",
                "Leave it empty and run again: the error then says the notebook's fingerprint.",
            )
        key = (cells["submission"], cells["task"])
        if key in seen:
            raise problem(where, f"{safe(key[0], 60)!r}, {key[1]} is overridden on {seen[key]} too", "Keep one line.")
        seen[key] = where.rsplit(", ", 1)[-1]
        overrides.append(Override(cells["submission"], cells["task"], verdict, cells["reason"], fingerprint, where))
    return overrides


# ---------------------------------------------------------------- matching, before grading


def fingerprint(data):
    """A submission's fingerprint: the first FINGERPRINT_CHARS hex digits of the SHA-256 of its bytes."""
    return hashlib.sha256(data).hexdigest()[:FINGERPRINT_CHARS]


def owners(students, path):
    """The students a submission at path (under the submissions folder) is of: its first part (the folder it is in
    at the top, else its stem) is their key, or starts with it and "_" (an LMS download's name). Only the first part:
    a file a student names like a classmate's (`mal/bob_v2.ipynb`) in their own folder is never the classmate's."""
    path = PurePosixPath(path)
    first = path.parts[0] if len(path.parts) > 1 else path.stem
    return [s for s in students if first == s.key or first.startswith(f"{s.key}_")]


def match(students, submissions):
    """({submission name: Student} of the submissions that are exactly one student's, {submission name: note} of the
    others and of a student's several)."""
    owner, notes = {}, {}
    for sub in submissions:
        found = owners(students, sub.path)
        if len(found) == 1:
            owner[sub.name] = found[0]
        elif found:
            notes[sub.name] = (
                f"matches {len(found)} students on the roster ({', '.join(s.id for s in found)}): counted for none; "
                "give them submission cells that tell their files apart"
            )
        else:
            notes[sub.name] = "matches no student on the roster: add its student, or their submission cell"
    several = collections.defaultdict(list)
    for name, student in owner.items():
        several[student.id].append(name)
    for names in several.values():
        if len(names) > 1:
            for name in names:
                notes[name] = (
                    f"one of {len(names)} submissions of student {owner[name].id} ({', '.join(sorted(names))}): "
                    "their exported points are left blank until one is removed"
                )
    return owner, notes


def resolve(overrides, submissions, owner):
    """({submission name: {task: Override}} to apply, [(Override, why not)] not applied, {submission name: note}):
    an override names a submission by its name, else by its student's id; it is applied where that names exactly one
    submission whose fingerprint is the override's. UsageError where an override has no fingerprint (the message says
    the notebook's)."""
    by_name = {sub.name: sub for sub in submissions}
    applied, unapplied, notes = collections.defaultdict(dict), [], {}
    for override in overrides:
        names = [override.submission] if override.submission in by_name else []
        names = names or sorted(name for name, student in owner.items() if student.id == override.submission)
        if len(names) != 1:
            why = (
                f"student {override.submission} has {len(names)} submissions ({', '.join(names)}): name one"
                if names
                else "no submission has that name, and no roster student with one has that id"
            )
            unapplied.append((override, why))
            continue
        name = names[0]
        now = fingerprint(by_name[name].data)
        if not override.fingerprint:
            raise problem(
                override.where,
                "the fingerprint is empty",
                f"The notebook {safe(name, NAME_CHARS)} you read has the fingerprint {now}: write it in the cell "
                "(when the notebook changes, the grader then says so and leaves your verdict out).",
            )
        if override.fingerprint != now:
            why = (
                f"the notebook {name} changed since the override was written (fingerprint {override.fingerprint} "
                f"then, {now} now): read it again, then write its new fingerprint (or remove the line)"
            )
            unapplied.append((override, why))
            note = f"the instructor's verdict on {override.task} is not applied: the notebook changed since"
            notes[name] = "; ".join(filter(None, [notes.get(name), note]))
            continue
        applied[name][override.task] = override
    return dict(applied), unapplied, notes


def prepare(files, submissions, tasks, log=None):
    """The run's Book from the instructor's files (Files; None: none), matched against the admitted submissions and
    the tasks, its warnings said on log; UsageError, before anything is graded or written, where a file is malformed."""
    files = files or Files()
    if files.exports and not files.roster:
        raise UsageError("--export needs --roster: the gradebook finds students by the roster's identifiers.")
    students = read_roster(files.roster) if files.roster else []
    overrides = read_overrides(files.overrides, tasks) if files.overrides else []
    owner, notes = match(students, submissions) if students else ({}, {})
    applied, unapplied, stale = resolve(overrides, submissions, owner)
    book = Book(files, students, owner, notes, applied, unapplied, stale)
    for line in warnings(book):
        print(f"Warning: {line}", file=log, flush=True)
    return book


def warnings(book):
    """What the instructor should look at: students without a submission, submissions the roster does not place,
    overrides not applied (each as safe text)."""
    lines = []
    if book.missing:
        lines.append(
            f"{len(book.missing)} student(s) on the roster have no submission: "
            + ", ".join(f"{s.name} ({s.id})" for s in book.missing)
        )
    lines += [f"{name}: {note}" for name, note in sorted(book.notes.items())]
    lines += [f"override on {o.where} not applied: {why}" for o, why in book.unapplied]
    return [safe(line) for line in lines]


# ---------------------------------------------------------------- applying, after grading


def apply(book, rows, tasks):
    """The rows of the tables: each submission's row with its student (the roster's id, name, email) and the
    instructor's verdicts applied (their reason the task's message; Row.overridden names them), then a row for each
    roster student without a submission; in roster order, then the submissions of no one by name."""
    book = book or Book()
    shown = []
    for row in rows:
        student = book.owner.get(row.name)
        chosen = {task: o for task, o in book.overrides.get(row.name, {}).items() if task in row.results}
        results = {**row.results, **{task: (o.verdict, o.reason) for task, o in chosen.items()}}
        shown.append(
            row._replace(
                results=results,
                student=(student.id, student.name, student.email) if student else (),
                overridden=tuple(task for task in tasks if task in chosen),
            )
        )
    shown += [Row("", {}, NO_SUBMISSION, student=(s.id, s.name, s.email)) for s in book.missing]
    order = {student.id: i for i, student in enumerate(book.students)}
    return sorted(
        shown, key=lambda row: (order.get(row.student[0], len(order)) if row.student else len(order), row.name)
    )


def noted(rows, book):
    """The rows with the book's notes for the instructor (whose the submission is or is not, overrides not applied)
    added to their note column: for the tables and the class report, never the student's feedback."""
    if book is None:
        return rows
    return [
        row._replace(note="; ".join(filter(None, [row.note, book.notes.get(row.name), book.stale.get(row.name)])))
        if row.submitted and (row.name in book.notes or row.name in book.stale)
        else row
        for row in rows
    ]


def report_sections(book, rows):
    """The class report's gradebook sections as [(heading, intro, [item text])]: the students without a submission,
    the submissions the roster does not place, the instructor's verdicts applied and not applied."""
    if book is None:
        return []
    sections = []
    if book.students:
        missing = [f"{s.name} ({s.id})" for s in book.missing]
        sections.append(
            (
                "No submission",
                f"{len(book.students)} students on the roster, {len(missing)} without a submission"
                + (": their exported points are blank." if missing else "."),
                missing,
            )
        )
        placed = [f"{name}: {note}" for name, note in sorted(book.notes.items())]
        if placed:
            sections.append(("Submissions the roster does not place", "Each keeps its row in the tables.", placed))
    mine = [
        f"{row.name}, {task}: {row.results[task][0]} ({row.results[task][1]})"
        for row in rows
        for task in row.overridden
    ]
    unapplied = [f"{o.submission}, {o.task} ({o.where}): {why}" for o, why in book.unapplied]
    if mine:
        sections.append(
            ("The instructor's verdicts", f'{len(mine)} applied (in the tables: "by the instructor").', mine)
        )
    if unapplied:
        sections.append(("Overrides not applied", "The grader's own verdicts stand for these.", unapplied))
    return sections


# ---------------------------------------------------------------- exports


def export_paths(csv_path):
    """Where each export goes: canvas.csv and moodle.csv beside grades.csv (with its prefix, if any)."""
    prefix = csv_path.name.removesuffix("grades.csv")
    return {kind: csv_path.with_name(f"{prefix}{kind}.csv") for kind in EXPORTS}


def points(book, rows):
    """[(Student, points or None, challenge point or None)] in roster order: a student's total and challenge point
    where they have exactly one submission and it was graded; None (a blank cell) otherwise."""
    mine = collections.defaultdict(list)
    for row in rows:
        if row.submitted and row.name in book.owner:
            mine[book.owner[row.name].id].append(row)
    shown = []
    for student in book.students:
        found = mine.get(student.id, [])
        row = found[0] if len(found) == 1 and found[0].graded else None
        entry = row and row.challenge
        shown.append((student, row and row.total, (1 if entry["status"] == SCORED else 0) if entry else None))
    return shown


def number(value):
    """A cell's points: the number, or "" for none."""
    return "" if value is None else str(value)


def to_canvas(book, rows, tasks):
    """canvas.csv: Canvas's gradebook import CSV (Student, ID, SIS User ID, SIS Login ID, Section, the assignment's
    column and, with the challenge, its own), a Points Possible row under the header, a line per roster student."""
    title = safe(book.files.assignment, NAME_CHARS)
    header = [*CANVAS_COLUMNS, title, *([CHALLENGE_TITLE] if book.files.challenge else [])]
    possible = [POINTS_POSSIBLE, "", "", "", "", str(len(tasks)), *(["1"] if book.files.challenge else [])]
    body = [
        [
            s.name,
            s.canvas_id,
            s.id,
            s.login,
            s.section,
            number(total),
            *([number(extra)] if book.files.challenge else []),
        ]
        for s, total, extra in points(book, rows)
    ]
    return csv_text([header, possible, *body])


def to_moodle(book, rows, tasks):
    """moodle.csv: a CSV for Moodle's grade import: the user fields it maps from (ID number, email address) and the
    name, then one column per grade item (the assignment's, and with the challenge its own), a line per student."""
    title = safe(book.files.assignment, NAME_CHARS)
    header = [*MOODLE_COLUMNS, title, *([CHALLENGE_TITLE] if book.files.challenge else [])]
    body = [
        [s.id, s.email, s.name, number(total), *([number(extra)] if book.files.challenge else [])]
        for s, total, extra in points(book, rows)
    ]
    return csv_text([header, *body])


def csv_text(lines):
    """Lines of cells as CSV text, each cell safe (text.safe) and never read as a formula (text.csv_cell)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows([csv_cell(safe(cell)) for cell in line] for line in lines)
    return buffer.getvalue()


def write_exports(folder, book, rows, tasks, csv_path):
    """Write the exports the book's files asked for into folder (outputs.Folder), beside grades.csv."""
    if book is None:
        return
    paths = export_paths(csv_path)
    writers = {CANVAS: to_canvas, MOODLE: to_moodle}
    for kind in book.files.exports:
        folder.write(paths[kind].name, writers[kind](book, rows, tasks).encode("utf-8"))
