"""Where the grader writes (grading/outputs.py: through folder descriptors, no link followed, an output name of the
wrong kind refused) and names a person can tell apart (text.safe's escapes of hidden characters, admit.alike). Cheap:
the writers are called directly, and the command line is refused before it grades anything."""

import os
import stat
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grading import admit, outputs, run, store, text
from grading.admit import UsageError
from grading.report import Row
from grading.run import check_outputs, write_reports
from grading_support import grade

TASKS = ("data", "dae_model")
ROWS = [Row(name, {t: ("passed", "") for t in TASKS}) for name in ("README", "alice", "x/../../etc")]


def tree(*folders):
    """Every entry under folders (no link followed) with its kind, bytes (files), link target and modification time."""
    found = {}
    for folder in folders:
        for here, dirs, files in os.walk(folder):
            for name in dirs + files:
                path = os.path.join(here, name)
                info = os.lstat(path)
                content = (
                    open(path, "rb").read()
                    if stat.S_ISREG(info.st_mode)
                    else os.readlink(path)
                    if stat.S_ISLNK(info.st_mode)
                    else None
                )
                found[path] = (stat.S_IFMT(info.st_mode), content, info.st_mtime_ns)
    return found


@pytest.fixture
def places(tmp_path):
    """(submissions folder with one notebook, a stand-in for the lab's folder with its README.md, a folder elsewhere)."""
    subs, lab, elsewhere = tmp_path / "subs", tmp_path / "lab", tmp_path / "elsewhere"
    for folder in (subs, lab, elsewhere):
        folder.mkdir()
    (subs / "README.ipynb").write_text("{}")  # its feedback would be README.md
    (lab / "README.md").write_text("the lab's own README\n")
    (elsewhere / "grades.csv").write_text("someone's file\n")
    return subs, lab, elsewhere


def plant(subs, lab, elsewhere, how):
    """Put one hostile output entry among the submissions."""
    if how == "feedback -> lab":
        (subs / "feedback").symlink_to(lab)
    elif how == "feedback -> elsewhere":
        (subs / "feedback").symlink_to(elsewhere)
    elif how == "feedback is a file":
        (subs / "feedback").write_text("not a folder\n")
    elif how == "grades.csv -> elsewhere":
        (subs / "grades.csv").symlink_to(elsewhere / "grades.csv")
    elif how == "report.html -> lab":
        (subs / "report.html").symlink_to(lab / "README.md")
    elif how == "grades.md is a folder":
        (subs / "grades.md").mkdir()
    elif how == "summary.md is a FIFO":
        os.mkfifo(subs / "summary.md")


HOSTILE = (
    "feedback -> lab",
    "feedback -> elsewhere",
    "feedback is a file",
    "grades.csv -> elsewhere",
    "report.html -> lab",
    "grades.md is a folder",
    "summary.md is a FIFO",
)


@pytest.mark.parametrize("how", HOSTILE)
def test_an_output_name_that_is_a_link_or_of_the_wrong_kind_is_refused_and_nothing_written(places, how, capsys):
    subs, lab, elsewhere = places
    plant(subs, lab, elsewhere, how)
    before = tree(*places)
    name = how.split()[0]
    for write in (
        lambda: check_outputs(subs / "grades.csv", subs / "grades.md"),
        lambda: write_reports(ROWS, TASKS, subs / "grades.csv", subs / "grades.md"),
    ):
        with pytest.raises(UsageError, match=rf"Refusing to write .*{name}: it is .*never through a link"):
            write()
        assert tree(*places) == before
    status = grade.main([str(subs)])  # as the docs show it: no --out, the outputs among the submissions
    err = capsys.readouterr().err
    assert status == grade.EXIT_USAGE and f"{name}: it is " in err and "nothing was written" in err, err
    assert tree(*places) == before


def test_outputs_are_written_through_descriptors_into_the_folder_opened(tmp_path):
    out = tmp_path / "out"
    write_reports(ROWS, TASKS, out / "grades.csv", out / "grades.md")
    feedback = sorted(p.name for p in (out / "feedback").iterdir())
    assert feedback == sorted(f"{text.file_stem(row.name)}.{ext}" for row in ROWS for ext in ("md", "html"))
    assert {p.name for p in out.iterdir()} == {"grades.csv", "grades.md", "report.html", "summary.md", "feedback"}
    with outputs.Folder.open(out) as folder:
        folder.write("grades.csv", b"again")  # a regular file is replaced, atomically
        assert folder.read("grades.csv", 100) == b"again"
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # no temporary file left
    (out / "link").symlink_to(tmp_path)
    with outputs.Folder.open(out) as folder, pytest.raises(UsageError, match="a symbolic link"):
        folder.folder("link")


def test_the_store_and_its_key_are_never_written_through_a_link(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / ".grades").symlink_to(elsewhere)
    base, names = store.place(tmp_path / "subs", out)
    with pytest.raises(UsageError, match=r"\.grades: it is a symbolic link"):
        store.Store(base.joinpath(*names), b"k" * 32, base)
    (tmp_path / "cache" / "dae-lab").mkdir(parents=True)
    (tmp_path / "cache" / "dae-lab" / "store.key").symlink_to(elsewhere / "key")
    with pytest.raises(UsageError, match=r"store.key: it is a symbolic link"):
        store.secret()
    assert list(elsewhere.iterdir()) == []


# ---------------------------------------------------------------- names a person can tell apart

UNSAFE = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}


@settings(max_examples=500, deadline=None)
@given(st.text(st.characters(codec=None, exclude_categories=()), max_size=60), st.booleans())
def test_safe_text_never_holds_a_hidden_character_unescaped(name, lines):
    shown = text.safe(name, lines=lines)
    kept = "\t\n" if lines else ""
    assert not [c for c in shown if unicodedata.category(c) in UNSAFE and c not in kept], ascii(shown)
    assert text.hidden_in(shown) is None
    stem = text.file_stem(text.safe(name, text.NAME_CHARS))
    assert stem.isascii() and "/" not in stem and not stem.startswith(".") and len(stem) <= 100


def test_invisible_and_format_characters_are_shown_as_escapes():
    ignorable = ("\u034f", "\ufe0f", "\U000e0100", "\u180b", "\u17b4", "\u3164", "\u115f", "\uffa0")  # not Cf
    for char in (
        "\u200b",
        "\u200d",
        "\u2060",
        "\u00ad",
        "\U000e0041",
        "\ufeff",
        "\u202e",
        "\ue000",
        "\u0378",
        *ignorable,
    ):
        assert text.safe(f"C0_control{char}") == f"C0_control{ascii(char)[1:-1]}"
    assert text.safe("Zoë ﬁle 名前") == "Zoë ﬁle 名前"  # printable letters stay as they are
    assert text.likeness("bob\u2215lab") == text.likeness("bob/lab")  # a division slash reads as a path's


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(st.sampled_from("aAbB\u200b\u00adﬁ\uff21_"), min_size=1, max_size=4), max_size=8, unique=True))
def test_look_alike_names_are_marked_both_ways(stems):
    subs = admit.name_all([admit.Submission(f"{s}.ipynb", f"{s}.ipynb") for s in stems])
    alike = admit.alike(subs)
    raw = dict(zip((sub.name for sub in subs), stems))
    for name, others in alike.items():
        for other in others:
            assert name in alike[other]  # symmetric
            assert text.likeness(raw[name]) == text.likeness(raw[other])
    for a in raw:
        for b in raw:
            if a != b and text.likeness(raw[a]) == text.likeness(raw[b]):
                assert b in alike.get(a, [])


def test_a_zero_width_look_alike_is_marked_in_the_console_the_tables_and_the_report(tmp_path):
    subs = admit.name_all([admit.Submission(p, p) for p in ("C0_control.ipynb", "C0_control\u200b.ipynb", "bob.ipynb")])
    names = [sub.name for sub in subs]
    assert names[1] == "C0_control\\u200b"
    (warning,) = admit.shared_names(subs)
    assert "C0_control, C0_control\\u200b" in warning and "look alike" in warning
    alike = admit.alike(subs)
    rows = [Row(name, {t: ("passed", "") for t in TASKS}) for name in names]
    write_reports(rows, TASKS, tmp_path / "grades.csv", tmp_path / "grades.md", alike)
    table = (tmp_path / "grades.csv").read_text(encoding="utf-8")
    assert "C0_control,passed,passed,2,name looks like C0_control\\u200b" in table
    assert "C0_control\\u200b,passed,passed,2,name looks like C0_control\n" in table
    assert "bob,passed,passed,2,\n" in table
    for report in ("summary.md", "report.html"):
        assert "Names that look alike" in (tmp_path / report).read_text(encoding="utf-8")
    assert "looks like" not in (tmp_path / "feedback" / "C0_control.md").read_text(encoding="utf-8")


def test_same_script_and_cross_script_look_alikes_are_marked():
    stems = [
        "C0_control",
        "C0_\u1d04ontrol",
        "C0_\u0441ontrol",
        "CO_control",
        "paypal",
        "\u0440\u0430\u0443\u0440\u0430l",
        "bob",
    ]
    subs = admit.name_all([admit.Submission(f"{s}.ipynb", f"{s}.ipynb") for s in stems])
    alike = admit.alike(subs)
    # a Latin small capital C (the same script), a Cyrillic es, a capital O for the zero: Unicode's confusables
    assert sorted(alike["C0_control"]) == sorted(["C0_\u1d04ontrol", "C0_\u0441ontrol", "CO_control"])
    assert alike["paypal"] == ["\u0440\u0430\u0443\u0440\u0430l"] and "bob" not in alike
    (warning,) = [line for line in admit.shared_names(subs) if "C0_control" in line]
    assert "4 submissions have names that look alike" in warning and "confusables" in warning


def test_no_submission_takes_a_reference_rows_label():
    from grading import leaderboard

    stems = [
        "answer key's entry (reference)",
        "noisy input \uff08REFERENCE\uff09",  # fullwidth brackets, upper case
        "answer key's entry (r\u0435ference)",  # a Cyrillic e
        "answer key's entry (reference)\u2800",  # a blank braille pattern after it (a symbol)
        "answer key's entry (reference)\u0301",  # a combining accent after it
        "my (reference) notes",
        "reference",
        "my references",
    ]
    subs = admit.name_all([admit.Submission(f"{s}.ipynb", f"{s}.ipynb") for s in stems])
    names = [sub.name for sub in subs]
    assert names[6:] == stems[6:]  # only a name that holds a reference row's label is changed
    for name in names[:6]:
        assert not text.reserved(name) and name.startswith(admit.plain(stems[names.index(name)])[:10]), name
    assert len(set(names)) == len(names) and all("~" in name for name in names[:6])
    rows = [Row(n, {}, challenge={"status": "scored", "psnr": 200.0, "ssim": 1.0, "params": 1}) for n in names]
    key = Row("key", {}, challenge={"status": "scored", "psnr": 20.0, "ssim": 0.5})
    lines = leaderboard.board([row.clean() for row in rows], [], key.clean())
    assert [line.kind for line in lines if line.who == leaderboard.KEY_NAME] == ["reference"]
    assert not any(text.reserved(line.who) for line in lines if line.kind == "entry")
    warnings = admit.shared_names(subs)
    assert sum("reads like a leaderboard reference row's label" in line for line in warnings) == 6


def test_a_link_inside_feedback_is_refused_before_grading(tmp_path):
    outside = tmp_path / "outside.md"
    outside.write_text("not the grader's")
    (tmp_path / "feedback").mkdir()
    (tmp_path / "feedback" / "zzz.md").symlink_to(outside)
    csv_path, md_path = run.table_paths(tmp_path)
    run.check_outputs(csv_path, md_path, ["aaa"])  # another student's files: nothing in the way
    with pytest.raises(run.UsageError, match="zzz.md"):
        run.check_outputs(csv_path, md_path, ["aaa", "zzz"])
    assert outside.read_text() == "not the grader's" and not (tmp_path / "grades.csv").exists()
