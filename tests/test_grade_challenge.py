"""Tests for the class challenge's grading (grading/challenge.py, grading/leaderboard.py): the hidden set, the rules
as refusals, the Row's entry, the leaderboard writer, and one graded folder of entries (dense, convolutional, over
the size limit, one that hunts for the hidden images from inside its kernel, one that hard-codes outputs, a string,
a missing model) with a cheap answer key, on a hidden set of HIDDEN images."""

import csv
import io
import json
import os
import re

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell

from checks import challenge as rules
from grading import challenge, leaderboard, report
from grading.report import Row
from grading_support import make_fixtures, read_csv

HIDDEN = 200  # images in the tests' hidden set ($DAE_CHALLENGE_HIDDEN): the class's is rules.HIDDEN_COUNT
SECRET = b"s" * 32

# ---------------------------------------------------------------- the hidden set


@pytest.fixture(scope="module")
def x_test():
    import helpers

    _, (images, _) = helpers.load_dataset()
    return helpers.prepare_images(images)


def test_hidden_set_is_deterministic_from_the_secret_and_differs_from_the_test_set(x_test):
    seed = challenge.derive_seed(SECRET)
    clean, noisy, which = challenge.draw(x_test, seed, HIDDEN)
    again, noisy_again, _ = challenge.draw(x_test, challenge.derive_seed(SECRET), HIDDEN)
    other, other_noisy, other_which = challenge.draw(x_test, challenge.derive_seed(b"t" * 32), HIDDEN)
    assert np.array_equal(clean, again) and np.array_equal(noisy, noisy_again)  # the same secret: the same board
    assert not np.array_equal(which, other_which) and not np.array_equal(noisy, other_noisy)
    assert clean.shape == noisy.shape == (HIDDEN, 784) and clean.dtype == noisy.dtype == np.float32
    assert 0 <= noisy.min() and noisy.max() <= 1 and len(set(which)) == HIDDEN
    # every hidden image was warped: none equals its test image, nor any test image
    assert (np.abs(clean - x_test[which]).sum(axis=1) > 1).all()
    nearest = np.array([np.abs(x_test - image).sum(axis=1).min() for image in clean[:50]])
    assert (nearest > 1).all()
    # the noise is the lab's: NOISE_FACTOR 0.5, clipped
    import helpers

    noise_seed = int.from_bytes(bytes.fromhex(seed)[16:], "big")
    expected = helpers.add_noise(clean, helpers.NOISE_FACTOR, np.random.default_rng(noise_seed))
    assert np.allclose(noisy, expected) and np.abs(noisy - clean).mean() > 0.2


def test_only_the_noisy_inputs_reach_the_kernel_through_its_standard_input(x_test):
    clean, noisy, _ = challenge.draw(x_test, challenge.derive_seed(SECRET), HIDDEN)
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    finish = challenge.hand_over(write_end, noisy)  # 627 kB: ten times a pipe's buffer, so the thread must wait
    try:
        received = challenge.read_inputs(read_end, HIDDEN)
    finally:
        finish()
        os.close(write_end)
    assert np.array_equal(received, noisy) and not np.allclose(received, clean)
    assert os.read(read_end, 1) == b""  # nothing but the inputs: the writer's end is closed, the pipe empty
    os.close(read_end)


def test_the_seed_goes_only_where_a_kernel_is_kept_from_the_grader():
    from grading.sandbox import Sandbox

    settings = challenge.settings(SECRET)
    assert challenge.for_box(settings, Sandbox((), "/usr/bin/bwrap", ())) == settings  # bubblewrap's namespaces
    assert challenge.for_box(settings, Sandbox(((999, 999),), "", ("no namespaces",))) == settings  # a user of its own
    unguarded = challenge.for_box(settings, Sandbox((), "", ("no namespaces and no user of its own",)))
    assert unguarded == {"refused": challenge.UNGUARDED, "reference": False}  # no seed: the kernel would be the grader
    assert challenge.for_box(None, Sandbox((), "", ())) is None


def test_a_kernel_that_took_its_own_inputs_gets_a_clear_error_and_the_grader_stops_writing(x_test):
    _, noisy, _ = challenge.draw(x_test, challenge.derive_seed(SECRET), 20)
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    finish = challenge.hand_over(write_end, noisy)
    os.read(read_end, 100)  # the notebook read its standard input itself
    finish()  # the cell ended
    os.close(write_end)
    with pytest.raises(EOFError, match="the notebook read or closed its kernel's standard input"):
        challenge.read_inputs(read_end, 20)
    os.close(read_end)
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    os.close(read_end)  # a kernel that closed its standard input: the writer ends at once, raising nothing
    finish = challenge.hand_over(write_end, noisy)
    finish()
    os.close(write_end)


# ---------------------------------------------------------------- the rules, in-process


def entry_folder(tmp_path, namespace, inputs, reference=False):
    """Run challenge.run_entry in this process (as the kernel would) on inputs, read from a file's descriptor as the
    kernel reads its standard input; return the export folder."""
    tmp_path.mkdir(exist_ok=True)
    np.asarray(inputs, dtype="<f4").tofile(tmp_path / "inputs.f4")
    folder = tmp_path / "entry"
    fd = os.open(tmp_path / "inputs.f4", os.O_RDONLY)
    try:
        challenge.run_entry(namespace, len(inputs), str(folder), reference, fd)
    finally:
        os.close(fd)
    return folder


def dense(units=784, activation="sigmoid", shape=784):
    import keras

    return keras.Sequential(
        [keras.Input((784,)), keras.layers.Dense(shape, activation=activation)][: 2 if units else 1]
    )


@pytest.fixture(scope="module")
def small_set(x_test):
    clean, noisy, _ = challenge.draw(x_test, challenge.derive_seed(SECRET), 20)
    return clean, noisy


def test_rules_each_refusal_says_its_rule(tmp_path, small_set, monkeypatch):
    import keras

    clean, noisy = small_set
    cases = {
        "string": ({"challenge_model": "my model"}, "not a Keras model: `challenge_model` is a str"),
        "big": (
            {
                "challenge_model": keras.Sequential(
                    [keras.Input((784,)), keras.layers.Dense(1300), keras.layers.Dense(784)]
                )
            },
            "over the size limit: 2,04",
        ),
        "shape": ({"challenge_model": dense(shape=10)}, "output shape wrong: (20, 10)"),
        "values": ({"challenge_model": dense(activation="linear")}, "output values outside [0, 1]"),
    }
    for name, (namespace, said) in cases.items():
        folder = entry_folder(tmp_path / name, namespace, noisy)
        result = challenge.judge_entry(str(folder), clean, 3.0, 1.0)
        assert result["status"] == report.REFUSED and result["rule"].startswith(said), (name, result)
    # no challenge_model when check("challenge") runs (the handed-out notebook, challenge skipped): not attempted
    skipped = challenge.judge_entry(str(entry_folder(tmp_path / "missing", {}, noisy)), clean, 3.0, 1.0)
    assert skipped["status"] == report.NOT_ATTEMPTED and report.clean_entry(skipped) is None
    import levelup

    ready_made = levelup.with_fresh_noise(levelup.build_denoiser("deep", hidden=(32, 16))[0])
    made = challenge.judge_entry(
        str(entry_folder(tmp_path / "made", {"challenge_model": ready_made}, noisy)), clean, 3, 1
    )
    assert made["status"] == report.REFUSED and made["rule"] == challenge.READY_MADE.format(
        builder="levelup.build_deep_autoencoder (the deep DAE)"
    ), made
    trained = dense()
    trainer = levelup.with_fresh_noise(trained)
    trainer.compile(optimizer="adam", loss="binary_crossentropy")
    trainer.fit(clean, clean, epochs=1, batch_size=1, verbose=0)  # 20 updates, through a trainer
    namespace = {"challenge_model": trained, "trainer": trainer}
    within = challenge.judge_entry(str(entry_folder(tmp_path / "within", namespace, noisy)), clean, 3, 1)
    assert within["status"] == report.SCORED and within["updates"] == 20, within
    monkeypatch.setattr(rules, "BUDGET_UPDATES", 19)
    over = challenge.judge_entry(str(entry_folder(tmp_path / "over", namespace, noisy)), clean, 3, 1)
    assert over["status"] == report.REFUSED and over["rule"].startswith(
        "over the training budget: 20 optimizer updates"
    )
    slow = challenge.judge_entry(
        str(entry_folder(tmp_path / "slow", {"challenge_model": dense()}, noisy)), clean, 3, 61
    )
    assert slow["rule"].startswith("over the time limit: inference took 61.0 s, over MAX_INFERENCE_S = 60 s")
    # an identity network passes the noisy input through: its score is the noisy input's own, on any backend
    # (a randomly initialised one scores an SSIM near 0, of either sign)
    identity = dense(activation="linear")
    identity.set_weights([np.eye(784, dtype="float32"), np.zeros(784, dtype="float32")])
    fine = challenge.judge_entry(
        str(entry_folder(tmp_path / "fine", {"challenge_model": identity}, noisy)), clean, 3, 1
    )
    public, private = challenge.split(len(clean))
    assert len(public) == 6 and len(private) == 14 and not set(public) & set(private)  # 3 of every 10 images public
    psnr, ssim = rules.score(clean[private], noisy[private])
    assert fine["status"] == report.SCORED and fine["params"] == 784 * 785 and 0 < fine["ssim"] < 1
    assert np.isclose(fine["psnr"], psnr, atol=1e-3) and np.isclose(fine["ssim"], ssim, atol=1e-3)
    psnr, ssim = rules.score(clean[public], noisy[public])
    assert np.isclose(fine["public_psnr"], psnr, atol=1e-3) and np.isclose(fine["public_ssim"], ssim, atol=1e-3)
    assert report.clean_entry(fine)["public_psnr"] == fine["public_psnr"]


def test_a_notebook_that_stopped_before_its_challenge_call_is_refused_only_if_it_began_an_entry():
    began = [new_code_cell("x = 1"), new_code_cell("challenge_model = build()"), new_code_cell('check("challenge")')]
    assert challenge.stopped(began) == challenge.refused(challenge.STOPPED)
    skipped = [new_code_cell("my_challenge_model_notes = 1"), nbformat.v4.new_markdown_cell("challenge_model: ...")]
    assert challenge.stopped(skipped)["status"] == report.NOT_ATTEMPTED


def test_what_a_kernel_writes_is_at_worst_a_refusal(tmp_path, small_set):
    clean, noisy = small_set
    folder = entry_folder(tmp_path, {"challenge_model": dense()}, noisy)
    attacks = {
        "manifest.json": [
            b"[1, 2]",
            b"{",
            json.dumps({"status": "ok", "params": "many"}).encode(),
            json.dumps({"status": "ok", "params": 1, "updates": -1, "lab_model": None}).encode(),
            json.dumps({"status": "ok", "params": 1, "updates": True, "lab_model": None}).encode(),
            json.dumps({"status": "ok", "params": 1, "lab_model": None}).encode(),
            json.dumps({"status": "ok", "params": 1, "updates": 0, "lab_model": "<b>made up</b>"}).encode(),
            b"\xff" * 10,
        ],
        "0.npy": [
            b"",
            b"\x93NUMPY\x01\x00" + b"v" * 200,
            np.lib.format.magic(1, 0) + b"F\x00{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776,), }",
        ],
    }
    for name, payloads in attacks.items():
        for payload in payloads:
            (folder / name).write_bytes(payload)
            result = challenge.judge_entry(str(folder), clean, 1, 1)
            assert result["status"] == report.REFUSED, (name, payload[:40], result)
        entry_folder(tmp_path, {"challenge_model": dense()}, noisy)
    (folder / "0.npy").unlink()
    (folder / "0.npy").symlink_to(tmp_path / "inputs.f4")  # a link to data the kernel did not make
    assert challenge.judge_entry(str(folder), clean, 1, 1)["rule"].startswith("its outputs could not be read")
    nan = np.full_like(clean, np.nan)
    (folder / "0.npy").unlink()
    np.save(folder / "0.npy", nan)
    assert "not finite" in challenge.judge_entry(str(folder), clean, 1, 1)["rule"]
    assert challenge.judge_entry(str(tmp_path / "nowhere"), clean, 1, 1)["status"] == report.REFUSED


def test_entry_rows_round_trip_and_are_cleaned():
    entry = {"status": "scored", "psnr": 21.5, "ssim": 0.71, "params": 1234, "train_s": 42.0, "infer_s": 1.5}
    row = Row("alice", {"data": ("passed", "")}, challenge=entry)
    again = Row.from_json(json.loads(json.dumps(row.to_json())))
    assert again == row.clean() and again.challenge == entry and again.total == 1  # the entry is never in the total
    assert Row.from_json({**row.to_json(), "challenge": None}).challenge is None
    hostile = {"status": "refused", "rule": "\x1b[2J=cmd|' /C calc'!A0\n# heading", "psnr": "20", "params": True}
    cleaned = report.clean_entry(hostile)
    assert cleaned == {"status": "refused", "rule": report.one_line(hostile["rule"])} and "\x1b" not in cleaned["rule"]
    assert report.clean_entry({"status": "scored", "psnr": float("nan")})["status"] == "refused"
    assert report.clean_entry({"status": "passed"}) is None and report.clean_entry([1]) is None
    assert report.clean_entry({"status": "scored", "psnr": float("inf"), "ssim": 1})["psnr"] == report.MAX_PSNR
    table = list(csv.DictReader(io.StringIO(report.to_csv([row, Row("bob", {"data": ("failed", "x")})], ["data"]))))
    assert [(line["challenge"], line["total"]) for line in table] == [("21.50 dB", "1"), ("not attempted", "0")]


# ---------------------------------------------------------------- the leaderboard writer


def scored_row(name, psnr, ssim=0.5, params=10, public=None):
    public = {} if public is None else {"public_psnr": public, "public_ssim": ssim}
    entry = {"status": "scored", "psnr": psnr, "ssim": ssim, "params": params, "train_s": 5.0, **public}
    return Row(name, {}, challenge=entry)


def test_board_ranks_ties_references_and_refusals():
    rows = [
        scored_row("b", 20.004, 0.6),
        scored_row("a", 20.0, 0.7),  # the same PSNR to 0.01 dB: the same rank, the better SSIM first
        scored_row("c", 22.0),
        scored_row("d", 18.0),
        Row("e", {}, challenge={"status": "refused", "rule": "over the size limit"}),
        Row("f", {}),
    ]
    key = Row("key", {}, challenge={"status": "scored", "psnr": 21.0, "ssim": 0.6, "dae_psnr": 19.0, "dae_ssim": 0.5})
    lines = leaderboard.board([row.clean() for row in rows], [("noisy input (reference)", 9.0, 0.3)], key.clean())
    shown = [(line.rank, line.who, line.kind) for line in lines]
    assert shown == [
        (1, "c", "entry"),
        (None, leaderboard.KEY_NAME, "reference"),
        (2, "a", "entry"),
        (2, "b", "entry"),
        (None, leaderboard.DAE_NAME, "reference"),
        (4, "d", "entry"),
        (None, "noisy input (reference)", "reference"),
        (None, "e", "refused"),
    ]
    standing = leaderboard.standing([row.clean() for row in rows])
    assert standing["b"] == {"rank": 2, "entries": 4, "best_psnr": 22.0, "best_ssim": 0.5} and "e" not in standing


def test_the_live_board_ranks_by_the_public_part_and_the_page_sums_up_and_plots():
    rows = [scored_row("a", 20.0, public=18.0), scored_row("b", 19.0, public=19.5, params=5000), Row("c", {})]
    rows.append(Row("d", {}, challenge={"status": "refused", "rule": "over the size limit"}))
    final, public = (leaderboard.board([row.clean() for row in rows], public=part) for part in (False, True))
    assert [(line.who, line.psnr) for line in final if line.kind == "entry"] == [("a", 20.0), ("b", 19.0)]
    assert [(line.who, line.psnr) for line in public if line.kind == "entry"] == [("b", 19.5), ("a", 18.0)]
    assert "c" not in [line.who for line in final]  # not attempted: not on the board
    assert leaderboard.summary_text(final) == "2 entries scored, 1 refused; best PSNR 20.00 dB, SSIM 0.500"
    said = leaderboard.to_text(public)
    assert said[0].split()[:4] == ["1", "b", "19.50", "dB"] and said[-1].endswith("d: refused: over the size limit")
    page = leaderboard.to_html(public, note=", its public part", refresh=30)
    assert "<meta http-equiv='refresh' content='30'>" in page and "2 entries scored, 1 refused" in page
    png = re.search(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert png and __import__("base64").b64decode(png.group(1)).startswith(b"\x89PNG")
    assert "refresh" not in leaderboard.to_html(final) and "<img" not in leaderboard.to_html(public[-1:])
    from grading import run

    assert run.challenge_text(rows[0], public=True) == "18.00 dB (public part)"  # the live console: never the final
    assert run.challenge_text(rows[0]) == "20.00 dB" and run.challenge_text(rows[3], True).startswith("refused")


def test_board_files_escape_every_name_and_rule():
    attack = '<script>alert(1)</script><img src=http://evil/x.png>=HYPERLINK("x")\u202e'
    rows = [scored_row(attack, 20.0), Row("r", {}, challenge={"status": "refused", "rule": attack})]
    lines = leaderboard.board([row.clean() for row in rows])
    page = leaderboard.to_html(lines)
    assert "<script" not in page and "<img src=http" not in page and "\u202e" not in page
    assert page.count("<img") == 1 and "\u202e" not in "".join(leaderboard.to_text(lines))  # the plot: ranks only
    assert not re.search(r"""(src|href)=["'](?!data:)""", page) and report.NOTHING_FROM_ELSEWHERE in page
    cells = [cell for line in csv.reader(io.StringIO(leaderboard.to_csv(lines))) for cell in line]
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells) and "\u202e" not in "".join(cells)


def test_pseudonyms_are_stable_distinct_and_keyed():
    names = [f"student{n}" for n in range(120)]
    shown = leaderboard.pseudonyms(names, SECRET)
    assert len(set(shown.values())) == len(names) and all(re.fullmatch(r"Entry \d+", v) for v in shown.values())
    assert leaderboard.pseudonyms(names, SECRET) == shown and leaderboard.pseudonyms(names, b"k" * 32) != shown


# ---------------------------------------------------------------- one graded folder of entries

DENSE = """\
import keras
challenge_model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(128, activation="relu"),
                                    keras.layers.Dense(784, activation="sigmoid")], name="dense_entry")
challenge_model.compile(optimizer=keras.optimizers.Adam(0.003), loss="binary_crossentropy")
clean = x_train[:8192]
noisy = helpers.add_noise(clean, 0.5, np.random.default_rng(1))
challenge_model.fit(noisy, clean, epochs=3, batch_size=64, verbose=0)"""
LOAD = """\
(train_images, _), (test_images, _) = helpers.load_dataset()
train_rows = helpers.prepare_images(train_images[:4096])  # not the core tasks' names: nothing is exported for them
test_rows = helpers.prepare_images(test_images)
"""
CONV = (
    LOAD
    + """\
import time
import keras
inputs = keras.Input((784,))
x = keras.layers.Reshape((28, 28, 1))(inputs)
x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
x = keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(x)
challenge_model = keras.Model(inputs, keras.layers.Reshape((784,))(x), name="conv_entry")
challenge_model.compile(optimizer=keras.optimizers.Adam(0.003), loss="binary_crossentropy")
noisy = helpers.add_noise(train_rows, 0.5, np.random.default_rng(1))
challenge_model.fit(noisy, train_rows, epochs=1, batch_size=64, verbose=0)
time.sleep(2)  # the training time the board shows is the grader's clock: at least this"""
)
TOO_BIG = """\
import keras
challenge_model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(1400, activation="relu"),
                                    keras.layers.Dense(784, activation="sigmoid")])"""
HUNTER = (
    LOAD
    + """\
# Look for the hidden clean images from inside the kernel: files anywhere, other processes, then fall back on the
# clean test set (a nearest-neighbour search, unshifted). The model outputs whatever it found.
import glob
import keras
found = []
for top, folders, files in os.walk("/"):
    if top.startswith(("/proc", "/sys", "/usr", "/dev")):
        folders[:] = []
        continue
    for name in files:
        if name.endswith((".npy", ".npz")):
            try:
                array = np.load(os.path.join(top, name), allow_pickle=False)
                found.append(array.reshape(len(array), -1))
            except Exception:
                pass
for path in glob.glob("/proc/[0-9]*/environ") + glob.glob("/proc/[0-9]*/cmdline"):
    try:
        found.append(open(path, "rb").read())
    except OSError:
        pass

class Hunter(keras.Model):
    def call(self, x):
        return x
    def predict(self, x, **kwargs):
        x = np.asarray(x, dtype="float32")
        for array in found:
            if isinstance(array, np.ndarray) and array.shape == x.shape and not np.array_equal(array, x):
                return array  # what a leak would give: a perfect score
        distances = (x ** 2).sum(1)[:, None] - 2 * x @ test_rows.T + (test_rows ** 2).sum(1)[None, :]
        return test_rows[distances.argmin(axis=1)]

challenge_model = Hunter()
challenge_model(np.zeros((1, 784), "float32"))"""
)
HARD_CODED = (
    LOAD
    + """\
import keras
class Recall(keras.Model):
    def call(self, x):
        return keras.ops.convert_to_tensor(test_rows[: keras.ops.shape(x)[0]])
challenge_model = Recall()
challenge_model(np.zeros((1, 784), "float32"))"""
)
KEY = """\
import keras
challenge_model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(256, activation="relu"),
                                    keras.layers.Dense(784, activation="sigmoid")], name="key_entry")
challenge_model.compile(optimizer=keras.optimizers.Adam(0.003), loss="binary_crossentropy")
# trained by the key's notebook for its training time alone: its score is the mechanism's, not a bar"""
ENTRIES = {  # name: (core tasks answered, challenge cell or None for a call without a model)
    "dense": (None, DENSE),  # None: all nine
    "conv": ((), CONV),
    "too_big": ((), TOO_BIG),
    "hunter": ((), HUNTER),
    "hard_coded": ((), HARD_CODED),
    "ready_made": ((), 'import levelup\nchallenge_model = levelup.build_denoiser("deep", hidden=(64, 32))[0]'),
    "a_string": ((), 'challenge_model = "my best model"'),
    "no_model": ((), None),
}


def entry_notebook(tasks, cell, challenge_call=True):
    """A fixture submission answering tasks (all when None) with make_fixtures' cheap answers, then, after the nine
    core check calls and before "## Level up", the challenge cell and a bare check("challenge") cell."""
    fixtures = make_fixtures()
    answers = fixtures.ANSWERS if tasks is None else {task: fixtures.ANSWERS[task] for task in tasks}
    nb = fixtures.notebook(answers)
    level_up = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and "Level up" in c.source)
    extra = [new_code_cell(cell)] if cell else []
    extra += [new_code_cell('check("challenge")')] if challenge_call else []
    nb.cells[level_up:level_up] = extra
    for number, c in enumerate(nb.cells):
        c.id = f"cell-{number}"
    return nbformat.writes(nb)


@pytest.fixture(scope="module")
def board_run(tmp_path_factory):
    """Grade the entries once, with the cheap key (--key), then again from the store with --pseudonyms: (rows, files
    of the first run, files of the second, the hidden clean set, exit statuses, elapsed seconds)."""
    import time

    subs, out = tmp_path_factory.mktemp("entries"), tmp_path_factory.mktemp("board")
    for name, (tasks, cell) in ENTRIES.items():
        (subs / f"{name}.ipynb").write_text(entry_notebook(tasks, cell), encoding="utf-8")
    key = tmp_path_factory.mktemp("key") / "solution.ipynb"
    key.write_text(entry_notebook(("dae_model",), KEY), encoding="utf-8")
    files = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(challenge.COUNT_VARIABLE, str(HIDDEN))
        from grading_support import grade

        started = time.monotonic()
        status = grade.main([str(subs), "--out", str(out), "--jobs", "2", "--key", str(key), "--quiet"])
        elapsed = time.monotonic() - started
        files["names"] = {p.name: p.read_text() for p in out.iterdir() if p.is_file()}
        files["feedback"] = {p.name: p.read_text() for p in (out / "feedback").iterdir()}
        again = grade.main([str(subs), "--out", str(out), "--key", str(key), "--pseudonyms", "--quiet"])
        files["pseudonyms"] = {p.name: p.read_text() for p in out.iterdir() if p.name.startswith("leaderboard")}
        from grading.store import cache_dir, secret

        clean, _ = challenge.hidden_set(challenge.derive_seed(secret(cache_dir())), HIDDEN)
    return read_csv(out / "grades.csv"), files, clean, (status, again), elapsed


def board_table(text):
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.heavy
def test_entries_are_ranked_and_refused_by_rule(board_run):
    rows, files, _, statuses, elapsed = board_run
    print(f"graded {len(ENTRIES)} entries and the key in {elapsed:.0f} s")
    assert statuses == (0, 0)
    board = {line["student"]: line for line in board_table(files["names"]["leaderboard.csv"])}
    psnr = {name: float(line["psnr_db"]) for name, line in board.items() if line["psnr_db"]}
    assert board["dense"]["kind"] == board["conv"]["kind"] == board["hunter"]["kind"] == "entry"
    assert min(psnr["dense"], psnr["conv"]) > max(psnr["hard_coded"], psnr["hunter"]), psnr
    assert psnr["conv"] > max(psnr["hard_coded"], psnr["hunter"]) + 1, psnr  # two seconds of training already
    assert psnr["dense"] > psnr["noisy input (reference)"] + 3
    assert (
        int(board["conv"]["training_s"]) >= 2 and int(board["dense"]["parameters"]) == (784 + 1) * 128 + (128 + 1) * 784
    )
    assert board["too_big"]["kind"] == "refused" and board["too_big"]["rule"].startswith(
        f"over the size limit: {(784 + 1) * 1400 + (1400 + 1) * 784:,} parameters, over MAX_PARAMS = {rules.MAX_PARAMS:,}"
    )
    assert board["a_string"]["rule"] == "not a Keras model: `challenge_model` is a str"
    assert "no_model" not in board  # the challenge skipped (its check call left as handed out): not on the board
    assert board["ready_made"]["rule"] == challenge.READY_MADE.format(
        builder="levelup.build_deep_autoencoder (the deep DAE)"
    ), board
    assert leaderboard.KEY_NAME in board and leaderboard.DAE_NAME in board and board[leaderboard.KEY_NAME]["rank"] == ""
    assert all(board[label]["kind"] == "reference" for label, _, _ in challenge.MEASURED)  # the ladder's costly rungs
    ranks = [int(line["rank"]) for line in board_table(files["names"]["leaderboard.csv"]) if line["rank"]]
    assert ranks == sorted(ranks) and ranks[0] == 1
    assert "answer key" not in rows and "solution" not in rows  # the key is never a row


@pytest.mark.heavy
def test_the_hidden_clean_images_never_reach_a_kernel(board_run):
    rows, files, clean, *_ = board_run
    board = {line["student"]: line for line in board_table(files["names"]["leaderboard.csv"])}
    # the hunter outputs any array of the inputs' shape it finds anywhere it can read, else the nearest test image:
    # had the clean hidden images been anywhere in its sandbox, it would score a perfect (capped) PSNR
    assert float(board["hunter"]["psnr_db"]) < 20 and clean.shape == (HIDDEN, 784)
    assert rows["hunter"]["challenge"] == board["hunter"]["psnr_db"] + " dB"


@pytest.mark.heavy
def test_core_totals_and_the_challenge_column(board_run):
    rows, files, *_ = board_run
    assert rows["dense"]["total"] == "9"  # the cheap answers' known score, challenge or not
    assert {name: rows[name]["total"] for name in ("conv", "too_big", "hunter", "hard_coded")} == dict.fromkeys(
        ("conv", "too_big", "hunter", "hard_coded"), "0"
    )
    assert rows["too_big"]["challenge"].startswith("refused: over the size limit")
    assert rows["no_model"]["challenge"] == "not attempted"
    assert re.fullmatch(r"\d+\.\d\d dB", rows["conv"]["challenge"])
    assert re.search(r"\| total +\| challenge +\| note", files["names"]["grades.md"].splitlines()[0])


@pytest.mark.heavy
def test_feedback_says_own_score_rank_and_best_never_another_name(board_run):
    _, files, *_ = board_run
    best = max(
        (line for line in board_table(files["names"]["leaderboard.csv"]) if line["kind"] == "entry"),
        key=lambda line: float(line["psnr_db"]),
    )
    for name in ("conv", "hard_coded"):
        for suffix in ("md", "html"):
            page = files["feedback"][f"{name}.{suffix}"]
            assert "Your score on the hidden set: PSNR" in page and "Your rank:" in page
            assert f"the best entry scored PSNR {best['psnr_db']} dB" in page
            assert not any(other in page for other in ENTRIES if other != name and other not in name), name
    assert "Your entry was refused: over the size limit" in files["feedback"]["too_big.md"]


@pytest.mark.heavy
def test_leaderboard_files_and_pseudonyms(board_run):
    _, files, *_ = board_run
    page = files["names"]["leaderboard.html"]
    assert report.NOTHING_FROM_ELSEWHERE in page and "<script" not in page and "Refused entries" in page
    assert not re.search(r"""(src|href)=["'](?!data:)""", page)
    first = board_table(files["names"]["leaderboard.csv"])
    shown = board_table(files["pseudonyms"]["leaderboard.csv"])
    entries = [line for line in shown if line["kind"] != "reference"]
    assert all(re.fullmatch(r"Entry \d+", line["student"]) for line in entries)
    assert not any(name in files["pseudonyms"]["leaderboard.html"] for name in ENTRIES)
    assert [(a["psnr_db"], a["kind"]) for a in first] == [(b["psnr_db"], b["kind"]) for b in shown]  # from the store


# ---------------------------------------------------------------- the secret and the hand-over, in every mode

SEEKER = """\
# What an attacker who read the grader tries before check("challenge"): every environment, argument and file it can
# reach (the job folder's known names too: unsandboxed as root it may pass through it without listing it), searched
# for the challenge's seed, the store's key and clean hidden pixels, which the test writes in here reversed (so that
# this notebook, in the job folder too, does not hold them).
import glob, os
from pathlib import Path
wanted = {{"seed": {seed!r}.encode(), "key": {key!r}.encode(), "raw_key": {raw_key!r}, "clean": {clean!r}}}
wanted = {{what: needle[::-1] for what, needle in wanted.items()}}
found, looked = set(), 0
def look(data, where):
    global looked
    looked += 1
    found.update(f"{{what}}_in_{{where}}" for what, needle in wanted.items() if needle in data)
for path in ["/proc/self/environ", "/proc/self/cmdline", *glob.glob("/proc/[0-9]*/cmdline"),
             *glob.glob("/proc/[0-9]*/environ")]:
    try:
        look(open(path, "rb").read(), "proc")
    except OSError:
        pass
for parent in list(Path.cwd().parents)[:3]:
    for name in ("job.json", "progress.json", "outcome.json", "submission.ipynb", "stderr.txt"):
        try:
            look((parent / name).read_bytes(), "job_folder")
        except OSError:
            pass
    for top, _, files in os.walk(parent):
        for name in files[:1000]:
            try:
                with open(os.path.join(top, name), "rb") as file:
                    look(file.read(2**22), "files")
            except OSError:
                pass
challenge_model = type("_".join(sorted(found)) or f"nothing_found_in_{{looked}}_places", (), {{}})()
"""
FILLER = """\
# Every inode of its writable space used just before check("challenge"), where the grader once wrote the inputs
import os
challenge_model = None
os.makedirs("fill", exist_ok=True)
try:
    for n in range(10**6):
        open(f"fill/{n}", "w").close()
except OSError as err:
    print(n, err)
"""


def light_notebook(cell):
    """A notebook of one cell and a check("challenge") call: no Keras anywhere, so its kernel is light."""
    nb = nbformat.v4.new_notebook(cells=[new_code_cell(cell), new_code_cell('check("challenge")')])
    for number, c in enumerate(nb.cells):
        c.id = f"cell-{number}"
    return nbformat.writes(nb)


@pytest.mark.heavy
@pytest.mark.parametrize("sandboxed", [True, False], ids=["sandboxed", "unsandboxed"])
def test_no_kernel_reaches_the_secret_and_a_full_space_is_its_own(tmp_path, monkeypatch, sandboxed):
    """Graded sandboxed and --unsandboxed: a kernel that searches everything it can reach finds neither the seed nor
    the store's key nor a clean hidden pixel; one that fills its space's inodes before check("challenge") gets its own
    refusal, never "the grader failed" (the grader once wrote the inputs into that space: ENOSPC was its own)."""
    import shutil

    from grading import sandbox
    from grading.store import cache_dir, secret
    from grading_support import SANDBOX, grade

    if sandboxed and not SANDBOX.bwrap:
        pytest.skip("bubblewrap does not work here")
    monkeypatch.setenv(challenge.COUNT_VARIABLE, str(HIDDEN))
    if not sandboxed:
        monkeypatch.setenv(sandbox.BWRAP_VARIABLE, "")
    key = secret(cache_dir())
    seed = challenge.derive_seed(key)
    clean, _ = challenge.hidden_set(seed, HIDDEN)
    pixels = clean[np.argmax((clean > 0.2).sum(axis=1))]  # the busiest hidden image: 32 pixels of it, as written
    subs, out = tmp_path / "subs", tmp_path / "out"
    subs.mkdir()
    needles = {"seed": seed, "key": key.hex(), "raw_key": key, "clean": pixels[392:424].tobytes()}
    seeker = SEEKER.format(**{what: needle[::-1] for what, needle in needles.items()})
    (subs / "seeker.ipynb").write_text(light_notebook(seeker), encoding="utf-8")
    (subs / "filler.ipynb").write_text(light_notebook(FILLER), encoding="utf-8")
    flags = [] if sandboxed else ["--unsandboxed"]
    assert grade.main([str(subs), "--out", str(out), "--jobs", "1", "--quiet", *flags]) == 0
    rows = read_csv(out / "grades.csv")
    guarded = sandboxed or bool(sandbox.probe(1).users)  # unsandboxed as the grader's own user: nothing is guarded
    if guarded:
        assert re.fullmatch(
            r"refused: not a Keras model: `challenge_model` is a nothing_found_in_\d+_places",
            rows["seeker"]["challenge"],
        ), rows["seeker"]
        found = re.search(r"\d+", rows["seeker"]["challenge"])
        assert int(found.group()) > 10  # it did look: its environment, its argv, the job folder's files, /proc
    else:
        assert rows["seeker"]["challenge"] == f"refused: {challenge.UNGUARDED}"
    filler = rows["filler"]["challenge"]
    assert filler.startswith("refused: ") and "grader failed" not in rows["filler"]["note"], rows["filler"]
    if SANDBOX.space:  # the job's own space, whose inodes it used up: the rule names it
        assert (
            filler == "refused: its outputs could not be written: the notebook used up its own disk space (limit 2 GiB)"
        )
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_plan_without_a_challenge_call_is_the_core_plan():
    from grading.execute import plan_cells

    nb = nbformat.reads(entry_notebook(None, None, challenge_call=False), as_version=4)
    tasks = make_fixtures().TASKS
    assert plan_cells(nb.cells, tasks, ("challenge",)) == plan_cells(nb.cells, tasks)
    nb = nbformat.reads(entry_notebook(None, DENSE), as_version=4)
    plan, _ = plan_cells(nb.cells, tasks, ("challenge",))
    assert plan[-1] == (None, ["challenge"]) and plan[-2][0].source == DENSE
    assert [names for _, names in plan if names] == [*([task] for task in tasks), ["challenge"]]
    core, _ = plan_cells(nb.cells, tasks)
    assert [step for step in plan if step != (None, ["challenge"])][: len(core)] == core[: len(core)]
