"""The grader's trusted side treats everything from a submission as hostile: admission (grading/admit.py), text
(grading/text.py, report.py), the results store (grading/store.py), the cell planner and the kernel's messages
(grading/execute.py). Cheap tests on the functions with hostile inputs, and one grading run of a small hostile class."""

import csv
import io
import json
import math
import os
import time

import nbformat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grading import admit, execute, report, store, text
from grading.report import Row, ungraded
from grading_support import answered, grade, read_csv, rendered_markdown

TASKS = ("data", "dae_model")
ATTACK = (
    "\x1b[2J\x1b]0;title\x07\x1b]52;c;cm0gLXJmIH4=\x07\x1b]8;;http://evil/\x07link\x1b]8;;\x07\u202eevil\x9b\x7f\ud800"
)

KERNEL_ATTACK = ATTACK.replace("\ud800", "")  # what a kernel can send (it cannot encode a lone surrogate)


def notebook_bytes(cells=()):
    """A small valid notebook with these code cells, as bytes."""
    return nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])).encode()


# ---------------------------------------------------------------- admission


def test_only_regular_files_in_the_folder_are_admitted(tmp_path):
    subs, outside = tmp_path / "subs", tmp_path / "outside"
    (subs / "real").mkdir(parents=True)
    outside.mkdir()
    (outside / "other.ipynb").write_bytes(notebook_bytes(["x = 1"]))
    (outside / "deep.ipynb").write_bytes(notebook_bytes())
    (subs / "real" / "alice.ipynb").write_bytes(notebook_bytes(["y = 2"]))
    (subs / "link.ipynb").symlink_to(outside / "other.ipynb")
    (subs / "linked_folder").symlink_to(outside)
    os.mkfifo(subs / "pipe.ipynb")
    with open(subs / "huge.ipynb", "wb") as f:  # sparse: costs no disk
        f.truncate(admit.MAX_BYTES + 1)
    (subs / "brackets.ipynb").write_bytes(b"[" * (admit.MAX_CONTAINERS + 1))
    (subs / ".grades").mkdir()
    found = admit.find(subs)
    by_name = {sub.name: sub for sub in found.submissions}
    assert set(by_name) == {"alice", "link", "linked_folder", "pipe", "huge", "brackets"}
    assert by_name["alice"].data == (subs / "real" / "alice.ipynb").read_bytes() and not by_name["alice"].refused
    assert by_name["link"].refused.startswith("a symbolic link (to ") and not by_name["link"].data
    assert by_name["linked_folder"].refused.startswith("a symbolic link (to ")  # and not searched: no "deep"
    assert by_name["pipe"].refused == "not a regular file (a FIFO): not read"
    assert by_name["huge"].refused.startswith("too large: 50.0 MiB")
    assert by_name["brackets"].refused.startswith("not a notebook: over 1,000,000 JSON objects")
    assert found.stores == [".grades"]


def test_a_link_as_the_only_file_is_refused_not_followed(tmp_path):
    (tmp_path / "secret.ipynb").write_bytes(notebook_bytes())
    (tmp_path / "subs").mkdir()
    (tmp_path / "subs" / "mine.ipynb").symlink_to("../secret.ipynb")
    (sub,) = admit.find(tmp_path / "subs").submissions
    assert sub.refused == (
        "a symbolic link (to ../secret.ipynb): only regular files in the submissions folder are graded, not read"
    )


def test_hostile_names_become_short_safe_and_unique(tmp_path):
    long_a, long_b = "a" * 240 + "1", "a" * 240 + "2"  # legal names (245 bytes with .ipynb) alike in 100 characters
    for stem in (long_a, long_b, "=cmd|' -C calc'!A0", "x\x1b]0;t\x07|y"):
        (tmp_path / f"{stem}.ipynb").write_bytes(notebook_bytes())
    names = [sub.name for sub in admit.find(tmp_path).submissions]
    assert len(set(names)) == 4 and all(len(name) <= text.NAME_CHARS for name in names)
    assert "x\\x1b]0;t\\x07|y" in names and "=cmd|' -C calc'!A0" in names
    assert not any("\x1b" in name for name in names)


def test_the_parse_says_why_a_file_is_not_a_notebook():
    assert admit.parse(notebook_bytes(["check('data')"])).cells[0].source == "check('data')"
    for data, words in [
        (b"\xff\xfe", "not UTF-8"),
        (b"{not json", "malformed JSON"),
        (b"[1]", "no 'nbformat' key"),
        (b"[" * 100_000 + b"]" * 100_000, "not a notebook"),
        (b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code"}]}', "not a notebook"),
    ]:
        with pytest.raises(admit.NotGradable, match=words):
            admit.parse(data)


# ---------------------------------------------------------------- text wherever it lands


def test_safe_text_escapes_every_control_character_and_is_capped_cheaply():
    shown = text.safe(ATTACK)
    assert text.hidden_in(shown) is None and "\\x1b]52;" in shown and "\\u202e" in shown and "\\ud800" in shown
    assert text.safe("line 1\n\tline 2\r", lines=True) == "line 1\n\tline 2\\r"
    assert text.safe("a\nb | c") == "a b | c"
    start = time.monotonic()
    big = text.safe(ATTACK * 300_000)  # 16 MiB
    assert time.monotonic() - start < 1 and len(big) == text.MESSAGE_CHARS and big.endswith(text.CUT)
    assert text.safe(big) == big  # safe text stays as it is


def test_csv_cells_never_start_a_formula_and_names_never_break_rows():
    rows = [
        ungraded('=HYPERLINK("http://evil")', TASKS, "-2+3"),
        Row("@SUM(A1)", {"data": ("failed", "+1 is not 2"), "dae_model": ("error", "\tx")}),
        ungraded("two\nlines", TASKS, ATTACK),
    ]
    table = list(csv.reader(io.StringIO(report.to_csv(rows, TASKS))))
    assert len(table) == 4
    cells = [cell for line in table[1:] for cell in line]
    assert not any(cell.startswith(text.FORMULA_START) for cell in cells), cells
    assert not any(text.hidden_in(cell) for cell in cells)


def test_markdown_tables_hold_whatever_a_name_or_message_says():
    rows = [ungraded("a|b\n| forged | row |", TASKS, "x | y\n\n# heading"), ungraded("plain", TASKS, "ok")]
    shown = rendered_markdown(report.to_markdown(rows, TASKS))
    assert len(shown["rows"]) == 3 and all(len(row) == len(TASKS) + 3 for row in shown["rows"]), shown["rows"]
    assert not shown["headings"]


def test_reports_of_hostile_rows_are_written_with_short_distinct_feedback_names(tmp_path):
    from grading.run import write_reports

    names = ["a" * 240 + "1", "a" * 240 + "2", "x/../../etc", "=1+1", ATTACK, "plain_name"]
    rows = [Row(name, {t: ("error", ATTACK * 1000) for t in TASKS}, "", ATTACK * 1000) for name in names]
    write_reports(rows, TASKS, tmp_path / "grades.csv", tmp_path / "grades.md")
    feedback = sorted(p.name for p in (tmp_path / "feedback").iterdir())
    assert len(feedback) == 2 * len(names) and "plain_name.md" in feedback
    assert all(len(name) < 100 and "/" not in name for name in feedback)
    for path in tmp_path.rglob("*.*"):
        content = path.read_text(encoding="utf-8")
        assert text.hidden_in(content) is None, path
        assert len(content) < 200_000, path  # a row costs kilobytes, whatever its messages


def test_rows_from_data_are_made_safe():
    row = Row.from_json(
        {"name": ATTACK, "results": {"data": ["passed", ATTACK * 10**5], "x": ["forged", ""]}, "note": "", "error": ""}
    )
    assert text.hidden_in(json.dumps(row.to_json(), ensure_ascii=False)) is None
    assert len(row.results["data"][1]) <= text.MESSAGE_CHARS and row.results["x"][0] == report.ERROR


# ---------------------------------------------------------------- numbers a kernel reports

# Whatever JSON (or a kernel's Python) can hold where a number is due: huge and negative ints, nan, infinities,
# bools, strings, containers, nested
LIES = st.recursive(
    st.one_of(
        st.integers(),
        st.integers(min_value=10**15, max_value=10**400),
        st.sampled_from([10**309, -(10**309), 2**53 + 1, float("nan"), float("inf"), float("-inf"), True, False, None]),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=20),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
NUMBER_BOUNDS = [report.PSNR, report.SSIM, report.COUNT, report.SECONDS, {}]


@settings(max_examples=150, deadline=None, derandomize=True)
@given(value=LIES, bounds=st.sampled_from(NUMBER_BOUNDS))
def test_any_reported_number_is_bounded_or_dropped(value, bounds):
    kept = text.number(value, **bounds)
    if kept is not None:
        low, high = bounds.get("low", -text.MAX_COUNT), bounds.get("high", text.MAX_COUNT)
        assert type(kept) is (int if bounds.get("whole") else float) and low <= kept <= high
        assert math.isfinite(kept) and not isinstance(value, (bool, str, list, dict))
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
        assert (
            not bounds.get("clamp")
            and not (bounds.get("low", -text.MAX_COUNT) <= value <= bounds.get("high", text.MAX_COUNT))
            or (bounds.get("whole") and not float(value).is_integer())
        )


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    numbers=st.dictionaries(st.sampled_from(sorted(report.ENTRY_NUMBERS)), LIES),
    status=st.sampled_from(["scored", "refused"]),
)
def test_an_entry_with_any_numbers_is_cleaned_never_raising(numbers, status):
    row = Row("liar", {"data": ("passed", "")}, challenge={"status": status, "rule": "x", **numbers}).clean()
    entry = row.challenge
    assert entry["status"] in ("scored", "refused") and json.dumps(row.to_json(), allow_nan=False)
    assert report.challenge_text(entry) and Row.from_json(row.to_json()) == row
    for name, value in entry.items():
        if name in report.ENTRY_NUMBERS:
            assert math.isfinite(value) and value == text.number(numbers[name], **report.ENTRY_NUMBERS[name])


def test_a_ten_to_the_309_parameter_count_is_a_refusal_never_the_graders_failure(tmp_path):
    import numpy as np

    from grading import challenge

    clean = np.zeros((4, 784), "float32")
    for params in ("1" + "0" * 309, "1e400", "-5", "true", '"50"', "2.5", "[1]"):
        folder = tmp_path / f"entry-{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        (folder / "manifest.json").write_text(f'{{"status": "ok", "params": {params}}}')
        np.save(folder / "0.npy", clean)
        result = challenge.judge_entry(str(folder), clean, 1.0, 1.0)
        assert result["rule"].startswith("its outputs could not be read: BadExport: its manifest says no status or "), (
            params
        )
        assert Row("liar", {}, challenge=result).clean().challenge["status"] == "refused"
    from grading import export

    with pytest.raises(ValueError, match="expected an integer up to"):
        export.whole(10**309)  # a model's parameter count, steps or shape in an export
    huge = Row("liar", {}, challenge={"status": "refused", "rule": "r", "params": 10**309, "train_s": float("inf")})
    assert huge.clean().challenge == {"status": "refused", "rule": "r"}  # once: OverflowError in the grader's process


# ---------------------------------------------------------------- the results store


def test_the_store_is_never_inside_the_submissions_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    subs = tmp_path / "subs"
    subs.mkdir()
    assert store.locate(subs, tmp_path / "out") == (tmp_path / "out" / ".grades").resolve()
    for tables in (subs, subs / "tables"):
        folder = store.locate(subs, tables)
        assert not folder.is_relative_to(subs.resolve()) and folder.is_relative_to(tmp_path / "cache" / "dae-lab")
    assert store.locate(subs, subs) != store.locate(tmp_path, tmp_path)


def test_only_entries_signed_with_the_secret_are_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    secret = store.secret()
    assert store.secret() == secret and len(secret) == 32
    assert (tmp_path / "cache" / "dae-lab" / "store.key").stat().st_mode & 0o777 == 0o600
    kept = store.Store(tmp_path / "store", secret)
    row = Row("s", {task: ("passed", "") for task in TASKS})
    kept.put("k1", row)
    assert kept.get("k1") == row
    entry = json.loads((tmp_path / "store" / "k1.json").read_text())
    (tmp_path / "store" / "k2.json").write_text(json.dumps(entry))  # a good entry under another key
    entry["row"]["results"]["data"] = ["passed", "forged"]
    (tmp_path / "store" / "k3.json").write_text(json.dumps(entry))  # an edited entry
    (tmp_path / "store" / "k4.json").write_text(json.dumps(row.to_json()))  # the old, unsigned format
    assert [kept.get(k) for k in ("k2", "k3", "k4", "missing")] == [None] * 4
    assert store.Store(tmp_path / "store", b"another secret" * 3).get("k1") is None


# ---------------------------------------------------------------- the planner and the kernel's messages


def test_a_padded_check_cell_plans_in_linear_time():
    cells = [nbformat.v4.new_code_cell(source) for source in ['check("data")' + " " * 100_000 + "x", " " * 100_000]]
    start = time.monotonic()
    plan, unbounded = execute.plan_cells(cells, TASKS)
    assert time.monotonic() - start < 1
    assert unbounded == ["dae_model"] and [names for _, names in plan] == [None, ["data"], None, ["dae_model"]]


def test_check_calls_are_read_by_the_parser():
    assert execute.check_calls('check("data")\nchecks.check( "dae_model" );') == (["data", "dae_model"], True)
    assert execute.check_calls('x = 1\ncheck("data")') == (["data"], False)
    assert execute.check_calls('%matplotlib inline\ncheck("data")') == (["data"], False)  # not Python: its tokens
    assert execute.check_calls('check(name)\ncheck("a b")\nprint("check(\'data\')")') == ([], False)
    assert execute.check_calls("(" * 10_000) == ([], False)


def test_the_client_keeps_nothing_the_kernel_sends():
    from grading import client as kernel_client
    from run_notebook import notebook_client

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    client = notebook_client(nb, ".")
    kernel_client.keep_nothing(client)
    cell = nb.cells[0]
    state = {"_model_module": "@jupyter-widgets/output", "_model_name": "OutputModel", "big": "x" * 1000}
    for msg_type, content in [
        ("comm_open", {"comm_id": "c1", "target_name": "jupyter.widget", "data": {"state": state}}),
        ("comm_msg", {"comm_id": "c1", "data": {"state": state, "buffer_paths": [["b"]]}}),
        ("stream", {"name": "stdout", "text": "x" * 1000}),
        ("display_data", {"data": {"text/plain": "x"}, "metadata": {}, "transient": {"display_id": "d"}}),
    ]:
        msg = {"msg_type": msg_type, "content": content, "parent_header": {}, "header": {}, "buffers": [b"x" * 1000]}
        client.process_message(msg, cell, 0)
    assert cell.outputs == [] and client.widget_state == {} and client.widget_buffers == {}
    assert client.comm_objects == {}


# ---------------------------------------------------------------- one hostile class, graded


@pytest.mark.heavy
def test_a_hostile_class_is_graded_as_data(tmp_path, monkeypatch, capsys):
    from grading.run import LAB_DIR, load_tasks

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    subs, outside = tmp_path / "subs", tmp_path / "outside"
    for folder in (subs, outside):
        folder.mkdir()
        (folder / "data_only.ipynb").write_text(answered("data"))  # graded like any notebook: 1 point
    (subs / "link.ipynb").symlink_to(outside / "data_only.ipynb")
    empty = notebook_bytes()
    (subs / "empty.ipynb").write_bytes(empty)
    (subs / "empty\u200b.ipynb").write_bytes(empty)  # prints like "empty": a look-alike, marked with it
    (subs / "=cmd|' -C calc'!A0.ipynb").write_bytes(empty)
    long_name = "b" * 239  # with ".ipynb", the longest name a file may have
    (subs / f"{long_name}.ipynb").write_bytes(notebook_bytes([f"raise ValueError({KERNEL_ATTACK!r} + 'A' * 2**24)"]))
    planted = subs / ".grades"  # "9/9" for the never-run notebook, under the keys the old store would have used
    planted.mkdir()
    tasks = load_tasks()
    forged = Row("empty", {task: ("passed", "") for task in tasks}).to_json()
    for sandboxed in (True, False):
        entry_key = store.key(empty, "empty", store.fingerprint(LAB_DIR, tasks, 300, sandboxed))
        (planted / f"{entry_key}.json").write_text(json.dumps({"row": forged, "mac": "0" * 64, **forged}))

    before = {p.name: p.read_bytes() for p in planted.iterdir()}
    status = grade.main([str(subs), "--jobs", "2", "--timeout", "300"])
    out, err = capsys.readouterr()
    assert status == grade.EXIT_UNGRADED, err  # the link is not graded
    assert "Traceback" not in err and "Ignoring .grades/ in the submissions folder" in err
    rows = read_csv(subs / "grades.csv")
    assert rows["data_only"]["total"] == "1"
    assert rows["link"]["total"] == "0" and rows["link"]["note"].startswith("a symbolic link (to ")
    assert rows["empty"]["total"] == "0" and rows["'=cmd|' -C calc'!A0"]["total"] == "0"  # the CSV's apostrophe
    (long_row,) = [row for name, row in rows.items() if name.startswith("bbb")]
    assert long_row["data"].startswith("error: ValueError: \\x1b[2J")
    assert len(long_row["submission"]) <= text.NAME_CHARS
    for path in [*subs.glob("*.*"), *(subs / "feedback").iterdir()]:
        if path.is_file() and path.suffix != ".ipynb":
            content = path.read_text(encoding="utf-8")
            assert text.hidden_in(content) is None and len(content) < 500_000, path
    assert text.hidden_in(out + err) is None
    assert len(list((subs / "feedback").iterdir())) == 2 * len(rows)
    assert {p.name: p.read_bytes() for p in planted.iterdir()} == before  # neither read nor written
    assert (tmp_path / "cache" / "dae-lab" / "store.key").exists()
    assert rows["empty\\u200b"]["note"].endswith("name looks like empty")
    assert rows["empty"]["note"].endswith("name looks like empty\\u200b")
    assert "2 submissions have names that look alike: empty, empty\\u200b" in err
    summary = (subs / "summary.md").read_text(encoding="utf-8")
    assert "## Names that look alike" in summary and "`empty\\u200b`" in summary
    assert "looks like" not in (subs / "feedback" / "empty.md").read_text(encoding="utf-8")  # no one else's name
