"""Tests for the live board's watch loop (grading/live.py, tools/grade.py --watch), with a stand-in for run.grade: it
grades when the folder changed and then held still, skips a round that changed nothing, and stops after its rounds or
on Ctrl-C, cleanly."""

import io

import pytest

from grading import live


def graded_folders(tmp_path, arrivals, rounds, interrupt_at=None, force=False):
    """Run live.watch on tmp_path for rounds looks (no sleeping); arrivals: {look: [notebook names written just before
    it]}. Return (the snapshots each grading saw, the options each got, the watch's result, what it said)."""
    calls, looks, real = [], iter(range(rounds + 1)), live.snapshot

    def grade(path, **options):
        calls.append((real(path), options))
        if interrupt_at == len(calls):
            raise KeyboardInterrupt
        return f"graded {len(calls)}"

    def snapshot(path):
        look = next(looks)
        for name in arrivals.get(look, []):
            content = {"changed": '{"cells": [1]}', "churn": f'{{"cells": [{look}]}}'}  # churn: new bytes every look
            (tmp_path / name).write_text(next((v for k, v in content.items() if k in name), '{"cells": []}'))
        return real(path)

    log = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(live, "snapshot", snapshot)
        patch.setattr(live.time, "sleep", lambda seconds: None)
        result = live.watch(tmp_path, 0.01, rounds, log=log, grade=grade, jobs=1, force=force)
    return [sorted(seen) for seen, _ in calls], [options for _, options in calls], result, log.getvalue()


def test_it_grades_what_changed_once_it_held_still(tmp_path):
    # look 0: the folder is empty; 1: a.ipynb lands; 2: held still -> graded; 3: b lands; 4: held still -> graded;
    # 5 to 7: nothing new -> nothing graded
    arrivals = {1: ["a.ipynb"], 3: ["b.ipynb"]}
    seen, options, result, said = graded_folders(tmp_path, arrivals, 8)
    assert seen == [["a"], ["a", "b"]] and result == "graded 2"
    assert [(o["live"], o["preflight_first"], o["jobs"]) for o in options] == [
        (live.REFRESH_S, True, 1),
        (30, False, 1),
    ]
    assert said.count("board updated") == 2


def test_a_notebook_still_being_written_waits_a_look(tmp_path):
    arrivals = {1: ["a.ipynb"], 2: ["a_changed.ipynb"], 3: ["a_changed.ipynb"]}  # a second file lands at look 2
    seen, options, *_ = graded_folders(tmp_path, arrivals, 5)
    # look 1: a is new, not yet still; look 2: a held still, a_changed has just landed (held back); look 3: a_changed
    # held still; look 4: nothing new
    assert seen == [["a", "a_changed"], ["a", "a_changed"]]
    assert [o["hold"] for o in options] == [{"a_changed"}, set()]


def test_a_notebook_rewritten_at_every_look_never_delays_the_others(tmp_path):
    arrivals = {look: ["churn.ipynb"] for look in range(1, 9)} | {2: ["churn.ipynb", "b.ipynb"]}
    _, options, *_ = graded_folders(tmp_path, arrivals, 9)
    assert [o["hold"] for o in options] == [{"churn", "b"} - {"b"}]  # b graded at the look after it landed


def test_a_held_notebook_gets_a_row_that_says_so_and_is_not_run(tmp_path):
    from grading import run

    (tmp_path / "subs").mkdir()
    (tmp_path / "subs" / "churn.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    log = io.StringIO()
    rows, *_ = run.grade(tmp_path / "subs", out=tmp_path / "out", hold={"churn"}, log=log, unsandboxed=True)
    assert [row.name for row in rows] == ["churn"] and run.STILL_CHANGING in rows[0].note
    assert "Grading 0 notebook(s)" in log.getvalue() and "Pre-flight" not in log.getvalue()  # no kernel started


def test_force_regrades_in_the_first_round_only(tmp_path):
    _, options, *_ = graded_folders(tmp_path, {1: ["a.ipynb"], 3: ["b.ipynb"]}, 6, force=True)
    assert [o["force"] for o in options] == [True, False]


def test_ctrl_c_ends_the_watch_cleanly(tmp_path):
    seen, _, result, said = graded_folders(tmp_path, {1: ["a.ipynb"]}, 10, interrupt_at=1)
    assert seen == [["a"]] and result is None and "Stopped watching" in said and "without --watch" in said


def test_a_missing_folder_is_a_usage_error(tmp_path):
    with pytest.raises(live.UsageError, match="does not exist"):
        live.watch(tmp_path / "nowhere", 0.01, 1, log=io.StringIO(), grade=None)


def test_grade_py_watch_flags(tmp_path, monkeypatch, capsys):
    from grading_support import grade

    got = {}
    monkeypatch.setattr(grade.live, "watch", lambda *args, **options: got.update(args=args, **options))
    assert grade.main([str(tmp_path), "--watch", "--watch-interval", "2", "--watch-rounds", "3", "--jobs", "1"]) == 0
    assert got["args"] == (str(tmp_path), 2.0, 3) and got["jobs"] == 1
    with pytest.raises(SystemExit):
        grade.main([str(tmp_path), "--watch-rounds", "3"])
    assert "give --watch too" in capsys.readouterr().err
