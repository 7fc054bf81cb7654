"""Tests for the course's gradebook (grading/gradebook.py): the roster matched against submissions, the instructor's
overrides, the Canvas and Moodle exports read back against their stated columns, hostile cells kept as data, and
malformed files refused with their line before anything is written. Rows are built here: no kernel runs."""

import csv
import io
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grading import admit, gradebook, report, run, text
from grading.report import Row
from grading.text import file_stem
from grading_support import grade, rendered_markdown
from grading_support import run as run_cli

TASKS = ("noisy_data", "dae_model", "dae_figure")
LAB_TASKS = run.load_tasks()  # what the command line checks an overrides file's tasks against
ROSTER = """id,name,email,submission,section
s01,"Lee, Ann",ann@uni.edu,ann,A
s02,Bob Ray,bob@uni.edu,,A
s03,Cy Dee,cy@uni.edu,cy,B
s04,Di Eve,di@uni.edu,di,B
"""
HEADER = "submission,task,verdict,reason,fingerprint\n"
# mal/ann.ipynb: a file named like ann's in another's folder (mal matches no one) is never ann's
PATHS = ("ann.ipynb", "s02/index.ipynb", "cy_12345_678_index.ipynb", "zed.ipynb", "mal/ann.ipynb")


def submissions(paths=PATHS):
    """Admitted submissions at those paths, each its path's bytes (its fingerprint is of them)."""
    return admit.name_all([admit.Submission(path, path, path.encode()) for path in paths])


def graded_rows(subs, hint="test loss 0.41 is above 0.40"):
    """A row per submission: noisy_data failed with hint, the other tasks passed."""
    results = {"noisy_data": ("failed", hint), "dae_model": ("passed", ""), "dae_figure": ("passed", "")}
    return [Row(s.name, dict(results)) for s in subs]


def write(folder, name, text):
    """Write text to folder/name; return its path."""
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def book_of(tmp_path, roster=ROSTER, overrides=None, subs=None, **files):
    """The Book of a roster (and overrides) written to tmp_path, matched against subs."""
    roster_path = write(tmp_path, "roster.csv", roster) if roster else None
    overrides_path = write(tmp_path, "overrides.csv", overrides) if overrides else None
    return gradebook.prepare(
        gradebook.Files(roster_path, overrides_path, **files), subs or submissions(), TASKS, io.StringIO()
    )


def graded_class(tmp_path, overrides=None, **files):
    """The class's tables written to tmp_path/out with the roster (and overrides): (out folder, book, table rows)."""
    subs = submissions()
    book = book_of(tmp_path, overrides=overrides, subs=subs, **files)
    rows = gradebook.apply(book, graded_rows(subs), TASKS)
    out = tmp_path / "out"
    run.write_reports(rows, TASKS, out / "grades.csv", out / "grades.md", {}, None, book)
    return out, book, rows


def read_rows(path):
    """A CSV file's lines as lists of cells."""
    return parse(path.read_text(encoding="utf-8"))


def parse(written):
    """CSV text's lines as lists of cells."""
    return list(csv.reader(io.StringIO(written, newline="")))


def override_line(name, task="noisy_data", verdict="passed", reason="the hint is wrong: the noise is clipped"):
    """An overrides file with one line: the verdict on the submission name (its bytes: name.ipynb), its fingerprint."""
    fingerprint = gradebook.fingerprint(f"{name}.ipynb".encode())
    return f'{HEADER}{name},{task},{verdict},"{reason}",{fingerprint}\n'


# ---------------------------------------------------------------- the roster


def test_submissions_are_matched_by_stem_folder_and_download_prefix_and_none_is_dropped(tmp_path):
    book = book_of(tmp_path)
    names = {sub.path: sub.name for sub in submissions()}
    assert {name: s.id for name, s in book.owner.items()} == {
        names["ann.ipynb"]: "s01",  # its stem is the submission cell
        names["s02/index.ipynb"]: "s02",  # its folder is the id (the submission cell is empty)
        names["cy_12345_678_index.ipynb"]: "s03",  # an LMS download's name: the key, then _
    }
    assert [s.id for s in book.missing] == ["s04"]
    assert "matches no student" in book.notes[names["zed.ipynb"]]
    assert "matches no student" in book.notes[names["mal/ann.ipynb"]]  # its folder decides, not its file name


def test_only_the_first_part_of_a_path_names_its_student():
    students = [
        gradebook.Student("s1", "Ann", submission="ann"),
        gradebook.Student("s2", "Ann Lee", submission="ann_lee"),
    ]
    students.append(gradebook.Student("s3", "Bob", submission="bob"))
    assert [s.id for s in gradebook.owners(students, "bob/ann.ipynb")] == ["s3"]  # not ann's as well
    assert [s.id for s in gradebook.owners(students, "bob_v2.ipynb")] == ["s3"]
    assert [s.id for s in gradebook.owners(students, "mal/bob_v2.ipynb")] == []  # another's folder: never bob's
    assert [s.id for s in gradebook.owners(students, "ann_lee_1_x.ipynb")] == ["s1", "s2"]  # told by the note


def test_every_roster_student_is_a_row_and_every_submission_keeps_its_own(tmp_path):
    out, _, _ = graded_class(tmp_path)
    table = read_rows(out / "grades.csv")
    assert table[0][:4] == list(report.STUDENT_COLUMNS) + ["submission"]
    lines = {(line[0], line[3]): line for line in table[1:]}
    assert [line[0] for line in table[1:5]] == ["s01", "s02", "s03", "s04"]  # the roster's order first
    assert lines["s04", ""][-1] == gradebook.NO_SUBMISSION and lines["s04", ""][4:-1] == ["", "", "", ""]
    assert "matches no student" in lines["", "zed"][-1] and lines["", "zed"][7] == "2"
    assert "matches no student" in lines["", "mal/ann"][-1]  # named, never dropped
    assert len(table) == 1 + 4 + 2
    shown = rendered_markdown((out / "grades.md").read_text(encoding="utf-8"))
    assert [row[3] for row in shown["rows"][1:]] == ["ann", "index", "cy_12345_678_index", "", "mal/ann", "zed"]
    for page in ("summary.md", "report.html"):
        text = (out / page).read_text(encoding="utf-8")
        assert "No submission" in text and "Di Eve (s04)" in text and "Submissions the roster does not place" in text
        assert "5 submission(s), 5 graded" in text  # a student without a submission is not a submission
    feedback = sorted(path.name for path in (out / "feedback").iterdir())
    names = ("ann", "index", "cy_12345_678_index", "mal/ann", "zed")  # a student without a submission gets none
    assert feedback == sorted(f"{file_stem(name)}.{ext}" for name in names for ext in ("md", "html"))
    assert not any("s03" in (out / "feedback" / name).read_text() for name in feedback)  # no one else's id


def test_a_malformed_roster_names_its_line_and_the_fix(tmp_path):
    cases = {
        "id,name,mail\n": "unknown column(s) 'mail'",
        "name,email\nAnn,a@b.c\n": "no id column",
        "id,name\ns1,Ann\ns1,Bob\n": "line 3: the id 's1' is also on line 2",
        "id,name\ns1,Ann\ns2,\n": "line 3: the name cell is empty",
        "id,name\n=cmd(),Ann\n": "line 2: the id '=cmd()' starts like a spreadsheet formula",
        "id,name,email\ns1,Ann,ann\n": "line 2: the email 'ann' is not an address",
        "id,name,submission\ns1,Ann,a/b\n": "line 2: the submission 'a/b' is a path",
        "id,name\ns1,Ann,extra\n": "line 2: 3 cells where the header has 2",
        "id,name\ns1,An\u200bn\n": "line 2: the 'name' cell holds the hidden character '\\u200b'",
        "id,name\n": "no students",
        "id;name\ns1;Ann\n": "Save it as CSV with commas, not semicolons.",
        'id,name\n"s\n1",Ann\n': "line 2: the id cell holds a line break or a tab",
        'id,name\ns1,"Ann\n': "not CSV",
        "id,name,submission\ns1,Ann,\ns2,Bob,s1\n": "line 3: the submission (or id, where the submission cell is empty) 's1'",
    }
    for content, said in cases.items():
        path = write(tmp_path, "roster.csv", content)
        with pytest.raises(admit.UsageError) as raised:
            gradebook.read_roster(path)
        assert str(path) in str(raised.value) and said in str(raised.value), (content, str(raised.value))
        assert "Nothing was graded or written" in str(raised.value)
    (tmp_path / "latin1.csv").write_bytes("id,name\ns1,Zo\xeb\n".encode("latin-1"))
    with pytest.raises(admit.UsageError, match="latin1.csv, line 2: not UTF-8 text. Save the file as CSV UTF-8"):
        gradebook.read_roster(tmp_path / "latin1.csv")
    (tmp_path / "bom.csv").write_bytes("\ufeffID,Name\ns1,Zoë\n".encode())  # a spreadsheet's CSV UTF-8: accepted
    assert gradebook.read_roster(tmp_path / "bom.csv") == [gradebook.Student("s1", "Zoë")]
    (tmp_path / "crlf.csv").write_bytes(b'id,name\r\ns1,"Ann\r\nLee"\r\n')  # Windows line ends, a cell's line break
    assert gradebook.read_roster(tmp_path / "crlf.csv") == [gradebook.Student("s1", "Ann\nLee")]


# ---------------------------------------------------------------- overrides


def test_an_override_is_applied_marked_as_the_instructors_and_reaches_the_feedback(tmp_path):
    out, book, rows = graded_class(tmp_path, override_line("ann"))
    (ann,) = [row for row in rows if row.name == "ann"]
    assert ann.overridden == ("noisy_data",) and ann.total == 3
    line = next(line for line in read_rows(out / "grades.csv") if line[3] == "ann")
    assert line[4] == "passed by the instructor: the hint is wrong: the noise is clipped" and line[7] == "3"
    feedback = (out / "feedback" / "ann.md").read_text()
    assert "passed by the instructor: `the hint is wrong: the noise is clipped`" in feedback
    assert report.YOUR_INSTRUCTORS in feedback and "3 of 3 tasks passed" in feedback
    assert "passed by the instructor: the hint is wrong" in (out / "feedback" / "ann.html").read_text()
    for page in ("summary.md", "report.html"):
        assert "ann, noisy_data: passed (the hint is wrong: the noise is clipped)" in (out / page).read_text()


def test_an_override_of_a_changed_notebook_is_listed_and_not_applied(tmp_path):
    stale = override_line("ann").replace(gradebook.fingerprint(b"ann.ipynb"), "0123456789abcdef")
    out, book, rows = graded_class(
        tmp_path, stale + override_line("zed", "dae_model", "failed", "copied")[len(HEADER) :]
    )
    (ann,) = [row for row in rows if row.name == "ann"]
    assert ann.overridden == () and ann.results["noisy_data"][0] == "failed" and ann.total == 2
    assert [why.split(" (")[0] for _, why in book.unapplied] == [
        "the notebook ann changed since the override was written"
    ]
    line = next(line for line in read_rows(out / "grades.csv") if line[3] == "ann")
    assert "the instructor's verdict on noisy_data is not applied: the notebook changed since" in line[-1]
    assert "not applied" not in (out / "feedback" / "ann.md").read_text()  # the instructor's business
    for page in ("summary.md", "report.html"):
        assert (
            "Overrides not applied" in (out / page).read_text() and "0123456789abcdef then" in (out / page).read_text()
        )
    zed = next(line for line in read_rows(out / "grades.csv") if line[3] == "zed")
    assert zed[5] == "failed by the instructor: copied" and zed[7] == "1"  # named by its submission's name


def test_an_override_names_a_student_by_id_and_without_a_fingerprint_the_error_says_it(tmp_path):
    line = override_line("cy_12345_678_index").replace("cy_12345_678_index,", "s03,")  # the roster's id
    book = book_of(tmp_path, overrides=line)
    assert list(book.overrides) == ["cy_12345_678_index"]
    assert book.overrides["cy_12345_678_index"]["noisy_data"].verdict == "passed"
    empty = line.rsplit(",", 1)[0] + ",\n"
    with pytest.raises(admit.UsageError) as raised:
        book_of(tmp_path, overrides=empty)
    assert "overrides.csv, line 2: the fingerprint is empty" in str(raised.value)
    assert gradebook.fingerprint(b"cy_12345_678_index.ipynb") in str(raised.value)


def test_a_malformed_overrides_file_names_its_line_and_the_fix(tmp_path):
    head = HEADER
    good = "ann,noisy_data,passed,ok,0123456789abcdef\n"
    cases = {
        head + "ann,challenge,passed,ok,0123456789abcdef\n": "line 2: no task is called 'challenge'",
        head + "ann,noisy_data,maybe,ok,0123456789abcdef\n": "line 2: the verdict 'maybe' is not one",
        head + "ann,noisy_data,passed,,0123456789abcdef\n": "line 2: the reason is empty",
        head + "ann,noisy_data,passed,ok,xyz\n": "line 2: the fingerprint 'xyz' is not 16 hex digits",
        head + good + good: "line 3: 'ann', noisy_data is overridden on line 2 too",
        "submission,task,verdict,reason\n" + "ann,noisy_data,passed,ok\n": "no fingerprint column",
    }
    for content, said in cases.items():
        path = write(tmp_path, "overrides.csv", content)
        with pytest.raises(admit.UsageError) as raised:
            gradebook.read_overrides(path, TASKS)
        assert str(path) in str(raised.value) and said in str(raised.value), (content, str(raised.value))


# ---------------------------------------------------------------- exports


def test_the_exports_read_back_as_canvas_and_moodle_state_their_columns(tmp_path):
    out, book, _ = graded_class(tmp_path, override_line("ann"), exports=gradebook.EXPORTS, assignment="Lab 3")
    canvas = list(csv.DictReader(open(out / "canvas.csv", newline="", encoding="utf-8")))
    header = read_rows(out / "canvas.csv")[0]
    assert header == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Lab 3"]  # Canvas's columns, in order
    possible, *students = canvas
    assert possible["Student"] == "Points Possible" and possible["Lab 3"] == str(len(TASKS))
    assert [(s["Student"], s["SIS User ID"], s["Section"], s["Lab 3"]) for s in students] == [
        ("Lee, Ann", "s01", "A", "3"),  # the instructor's verdict counts
        ("Bob Ray", "s02", "A", "2"),
        ("Cy Dee", "s03", "B", "2"),
        ("Di Eve", "s04", "B", ""),  # no submission: blank, not 0
    ]
    moodle = read_rows(out / "moodle.csv")
    assert moodle[0] == [
        "ID number",
        "Email address",
        "Full name",
        "Lab 3",
    ]  # identifiers Moodle maps from, then the item
    assert moodle[1:] == [
        ["s01", "ann@uni.edu", "Lee, Ann", "3"],
        ["s02", "bob@uni.edu", "Bob Ray", "2"],
        ["s03", "cy@uni.edu", "Cy Dee", "2"],
        ["s04", "di@uni.edu", "Di Eve", ""],
    ]


def test_the_challenge_column_is_optional_and_a_student_with_two_submissions_gets_a_blank(tmp_path):
    subs = submissions(("ann.ipynb", "ann_late.ipynb", "s02/index.ipynb"))
    book = book_of(tmp_path, subs=subs, exports=(gradebook.CANVAS,), challenge=True)
    rows = graded_rows(subs)
    rows[2] = rows[2]._replace(challenge={"status": "scored", "psnr": 25.0, "ssim": 0.8})
    canvas = parse(gradebook.to_canvas(book, gradebook.apply(book, rows, TASKS), TASKS))
    assert canvas[0][-2:] == [gradebook.ASSIGNMENT, gradebook.CHALLENGE_TITLE] and canvas[1][-2:] == ["3", "1"]
    assert [line[2:] for line in canvas[2:]] == [
        ["s01", "", "A", "", ""],  # two submissions (ann, ann_late): blank until one is removed
        ["s02", "", "A", "2", "1"],
        ["s03", "", "B", "", ""],
        ["s04", "", "B", "", ""],
    ]
    assert "one of 2 submissions of student s01" in book.notes["ann_late"]
    by_id = book_of(tmp_path, overrides=f"{HEADER}s01,dae_model,passed,ok,{'0' * 16}\n", subs=subs)
    assert by_id.unapplied[0][1] == "student s01 has 2 submissions (ann, ann_late): name one"
    table = parse(report.to_csv(gradebook.apply(book, rows, TASKS), TASKS))
    assert [line[-2] for line in table] == ["challenge", "not attempted", "not attempted", "25.00 dB", "", ""]
    plain = book_of(tmp_path, subs=subs, exports=(gradebook.CANVAS,))
    assert gradebook.CHALLENGE_TITLE not in gradebook.to_canvas(plain, gradebook.apply(plain, rows, TASKS), TASKS)


def test_exports_need_a_roster_and_a_malformed_file_writes_nothing(tmp_path, capsys):
    subs = tmp_path / "subs"
    with pytest.raises(SystemExit) as exit_info:
        grade.main([str(subs), "--export", "canvas"])
    assert exit_info.value.code == 2
    roster = write(tmp_path, "roster.csv", "id,name\ns1,Ann\ns1,Bob\n")
    status, _, err = run_cli([subs, "--out", tmp_path / "out", "--roster", roster, "--export", "moodle"], capsys)
    assert status == grade.EXIT_USAGE and "roster.csv, line 3" in err and not (tmp_path / "out").exists()


def test_the_command_line_grades_with_a_roster_overrides_and_exports(tmp_path, capsys):
    subs = tmp_path / "subs"
    (subs / "ann.ipynb").unlink()
    (subs / "ann.ipynb").symlink_to("/etc/hostname")  # refused, not run: no kernel starts in this test
    (subs / "s02").mkdir()
    (subs / "s02" / "index.ipynb").symlink_to("/etc/hostname")
    (subs / "zed.ipynb").symlink_to("/etc/hostname")
    roster = write(tmp_path, "roster.csv", ROSTER)
    mine = f"{HEADER}s01,dae_model,passed,I graded it by hand,{gradebook.fingerprint(b'')}\n"  # by the roster id
    overrides = write(tmp_path, "overrides.csv", mine)
    out = tmp_path / "out"
    argv = [subs, "--out", out, "--roster", roster, "--overrides", overrides, "--export", "canvas", "--unsandboxed"]
    status, shown, err = run_cli([*argv, "--export", "moodle", "--export-challenge", "--assignment", "Lab 3"], capsys)
    assert status == grade.EXIT_UNGRADED and "Could not grade 2 submission(s): index, zed" in err  # ann: graded by hand
    assert "2 student(s) on the roster have no submission: Cy Dee (s03), Di Eve (s04)" in err
    assert "zed: matches no student on the roster" in err and "`Cy Dee`" in shown  # the printed table: the roster
    table = {line[0] or line[3]: line for line in read_rows(out / "grades.csv")[1:]}
    assert list(table) == ["s01", "s02", "s03", "s04", "zed"]
    assert table["s01"][run.load_tasks().index("dae_model") + 4] == "passed by the instructor: I graded it by hand"
    canvas = read_rows(out / "canvas.csv")
    assert canvas[0] == [*gradebook.CANVAS_COLUMNS, "Lab 3", gradebook.CHALLENGE_TITLE]
    assert [line[2] for line in canvas[2:]] == ["s01", "s02", "s03", "s04"] and canvas[2][5:] == ["1", ""]
    assert [line[5] for line in canvas[3:]] == ["", "", ""]  # not graded, no submission: blank
    assert read_rows(out / "moodle.csv")[0] == [*gradebook.MOODLE_COLUMNS, "Lab 3", gradebook.CHALLENGE_TITLE]
    assert sorted(path.stem for path in (out / "feedback").iterdir()) == ["ann", "ann", "index", "index", "zed", "zed"]


# ---------------------------------------------------------------- hostile cells stay data

FORMULA = '=HYPERLINK("http://evil","x")'


def test_roster_cells_reasons_and_file_names_stay_data_everywhere(tmp_path):
    roster = f'id,name,email,submission\ns01,"{FORMULA.replace(chr(34), chr(34) * 2)}",a@b.c,ann\ns02,<b>Bob</b> `x`,b@b.c,bob\n'
    subs = submissions(("ann.ipynb", "bob.ipynb", "@SUM(1).ipynb"))
    reason = "<script>alert(1)</script> | `code` =1+1"
    overrides = f'submission,task,verdict,reason,fingerprint\nbob,dae_model,failed,"{reason}",{gradebook.fingerprint(b"bob.ipynb")}\n'
    book = book_of(tmp_path, roster=roster, overrides=overrides, subs=subs, exports=gradebook.EXPORTS)
    rows = gradebook.apply(book, graded_rows(subs, hint="=cmd|' /C calc'!A0"), TASKS)
    out = tmp_path / "out"
    run.write_reports(rows, TASKS, out / "grades.csv", out / "grades.md", {}, None, book)
    for name in ("grades.csv", "canvas.csv", "moodle.csv"):
        for line in read_rows(out / name):
            assert not any(cell.startswith(("=", "+", "-", "@")) for cell in line), (name, line)
    assert read_rows(out / "canvas.csv")[2][0] == f"'{FORMULA}"  # shown as text, not run
    for name in ("grades.md", "summary.md", "feedback/bob.md"):
        shown = rendered_markdown((out / name).read_text())
        assert not shown["html"] and not shown["links"] and not shown["images"], name
    for name in ("report.html", "feedback/bob.html"):
        page = (out / name).read_text()
        assert "<script>" not in page and "<b>Bob" not in page and "&lt;script&gt;" in page, name


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.text(st.characters(exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")), min_size=1, max_size=30)
)
def test_any_visible_name_goes_into_the_exports_as_data(tmp_path, name):
    name = name.strip()
    if not name or text.hidden_in(name) is not None:
        return
    student = gradebook.Student("s1", name, "a@b.c")
    book = gradebook.Book(gradebook.Files(exports=gradebook.EXPORTS), [student])
    for written in (gradebook.to_canvas(book, [], TASKS), gradebook.to_moodle(book, [], TASKS)):
        lines = parse(written)
        cell = lines[-1][0 if lines[0][0] == "Student" else 2]
        assert cell in (report.one_line(name), "'" + report.one_line(name))
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))


# ---------------------------------------------------------------- malformed files, generated

VALID_ROSTER = [
    ["id", "name", "email", "submission"],
    ["s1", "Ann Lee", "ann@uni.edu", "ann"],
    ["s2", "Bob", "bob@uni.edu", ""],
]


def csv_bytes(lines):
    """Lines of cells as CSV bytes."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(lines)
    return buffer.getvalue().encode()


@st.composite
def malformed_rosters(draw):
    """A valid roster with one mistake: a hidden character, a formula-like identifier, a cell too many or an empty
    required cell, a duplicate, an unknown or missing column, or bytes that are not UTF-8."""
    lines = [list(line) for line in VALID_ROSTER]
    kind = draw(st.sampled_from(["hidden", "formula", "extra", "empty", "duplicate", "column", "bytes"]))
    row = draw(st.integers(1, len(lines) - 1))
    if kind == "hidden":
        column = draw(st.integers(0, 3))
        char = draw(st.sampled_from(["\x00", "\x1b", "\u200b", "\u202e", "\ufeff", "\x7f", "\U000e0041"]))
        lines[row][column] = draw(st.sampled_from(["", "x"])) + char + "y"
    elif kind == "formula":
        column = draw(st.sampled_from([0, 2, 3]))
        lines[row][column] = draw(st.sampled_from("=+-@")) + draw(st.sampled_from(["1", "cmd|' /C calc'!A0", ""]))
    elif kind == "extra":
        lines[row].append(draw(st.text(string.ascii_letters, max_size=3)))
    elif kind == "empty":
        lines[row][draw(st.integers(0, 1))] = " "
    elif kind == "duplicate":
        lines.append(list(lines[row]))
    elif kind == "column":
        lines[0][draw(st.integers(0, 3))] = draw(st.sampled_from(["mail", "student", "", "ID number"]))
    data = csv_bytes(lines)
    if kind == "bytes":
        cut = draw(st.integers(0, len(data)))
        data = data[:cut] + draw(st.sampled_from([b"\xff", b"\xc3(", b"\xe9", b"\xed\xa0\x80"])) + data[cut:]
    return kind, data


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(malformed_rosters())
def test_every_malformed_roster_is_refused_naming_its_line_and_nothing_is_written(tmp_path, capsys, case):
    kind, data = case
    path = tmp_path / "roster.csv"
    path.write_bytes(data)
    out = tmp_path / "out"
    status, _, err = run_cli([tmp_path / "subs", "--roster", path, "--out", out, "--export", "canvas"], capsys)
    assert status == grade.EXIT_USAGE, (kind, data, err)
    assert f"{path}, line " in err and "Nothing was graded or written" in err, (kind, err)
    assert not out.exists()


@st.composite
def malformed_overrides(draw):
    """A valid overrides file with one mistake in one cell, or a line twice."""
    line = ["ann", "noisy_data", "passed", "the check missed it", gradebook.fingerprint(b"ann.ipynb")]
    column = draw(st.integers(0, 5))
    if column == 5:
        return csv_bytes([gradebook.OVERRIDE_COLUMNS, line, line])
    bad = {
        0: st.sampled_from(["", "a\x1bb"]),
        1: st.text(string.ascii_lowercase + "_", min_size=1, max_size=12).filter(lambda task: task not in LAB_TASKS),
        2: st.sampled_from(["pass", "ok", "", "not attempted", "passed\u200b"]),
        3: st.sampled_from(["", " ", "why\x07"]),
        4: st.text("0123456789abcdefg", min_size=1, max_size=20).filter(lambda text: len(text) != 16 or "g" in text),
    }
    line[column] = draw(bad[column])
    return csv_bytes([gradebook.OVERRIDE_COLUMNS, line])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(malformed_overrides())
def test_every_malformed_overrides_file_is_refused_naming_its_line_and_nothing_is_written(tmp_path, capsys, data):
    path = tmp_path / "overrides.csv"
    path.write_bytes(data)
    out = tmp_path / "out"
    status, _, err = run_cli([tmp_path / "subs", "--overrides", path, "--out", out], capsys)
    assert status == grade.EXIT_USAGE, (data, err)
    assert f"{path}, line " in err and "Nothing was graded or written" in err, (data, err)
    assert not out.exists()


@pytest.fixture(autouse=True)
def class_folder(tmp_path):
    """A submissions folder with ann.ipynb (its bytes: its path's, as submissions() makes them)."""
    (tmp_path / "subs").mkdir(exist_ok=True)
    (tmp_path / "subs" / "ann.ipynb").write_bytes(b"ann.ipynb")
