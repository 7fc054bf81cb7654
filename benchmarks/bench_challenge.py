"""Measure the class challenge's rules: how closely a seeded entry's training reproduces, what training on the test
images gains on the hidden set, and the ladder of reference models the card states.

Every model is trained within the challenge's budget (checks.challenge.BUDGET_UPDATES optimizer updates, batches of
BATCH_SIZE) and scored on the public practice set (checks.challenge.practice_set) and on a hidden set drawn as the
grader draws it (grading.challenge.draw, HIDDEN_COUNT images, from a fixed seed here: the grader's is secret).

- the answer key's entry (solution.ipynb: a 784-384-192-384-784 swish network on fresh noise, its learning rate
  decaying to 0, 3,752 updates) trained twice from the same seed (identical entries: their spread), and once from
  another seed (the spread between two honest runs);
- the test-image shortcut: the same entry trained on the 10,000 test images (noisy to clean) for as many updates,
  against the same entry trained on the training set;
- the warped shortcut (--warped): the same entry trained on warped copies of the test images, made the way the
  hidden set is (grading.challenge.deformed, other draws), against it trained on the training images and on warped
  copies of them (a warp as augmentation: allowed, as the training images are the entry's to use);
- the ladder (--ladder): a plain wider network (784-256-784, relu, one fixed noisy copy), the lab's best model
  (benchmarks/hybrid.py's hybrid DAE, fresh noise, MSE + SSIM, its learning rate decaying) within the same budget,
  and the classical denoisers the grader's board shows (median filter, TV);
- through the grader (--graded): a tiny seeded entry notebook run here, as a student would, and graded by
  tools/grade.py twice (two identical copies at --jobs 2, then one alone in a new store), all scored on the same
  hidden set (a new grader secret in a temporary XDG_CACHE_HOME).

    nice .venv/bin/python benchmarks/bench_challenge.py [--ladder] [--graded] [--warped] [--seed 42]
"""

import argparse
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import helpers  # noqa: E402
from helpers import NOISE_FACTOR  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

import levelup  # noqa: E402
from benchmarks import hybrid  # noqa: E402
from checks import challenge as rules  # noqa: E402
from grading import challenge as grader  # noqa: E402

KEY_EPOCHS = 8  # the answer key's entry: 8 epochs of the training set, 3,752 updates
HIDDEN_SEED = grader.derive_seed(b"bench_challenge")  # a fixed hidden set (the grader's comes from its secret)


def per_epoch(images, batch_size=rules.BATCH_SIZE):
    """Optimizer updates in one epoch of images."""
    return math.ceil(len(images) / batch_size)


def key_entry(images, seed, updates):
    """The answer key's entry (solution.ipynb's challenge cell), trained on images (clean; fresh noise every batch)
    for as many whole epochs as fit in updates; return (model, updates made, seconds)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(784,), name="noisy")
    hidden = inputs
    for number, units in enumerate((384, 192, 384), start=1):
        hidden = keras.layers.Dense(units, activation="swish", name=f"hidden_{number}")(hidden)
    model = keras.Model(inputs, keras.layers.Dense(784, activation="sigmoid", name="denoised")(hidden))
    trainer = levelup.with_fresh_noise(model, NOISE_FACTOR, seed=seed)
    epochs = updates // per_epoch(images)
    decay = keras.optimizers.schedules.CosineDecay(3e-3, decay_steps=epochs * per_epoch(images))
    helpers.compile_autoencoder(trainer, optimizer=keras.optimizers.Adam(decay))
    _, seconds = levelup.fit_timed(trainer, images, images, epochs=epochs, max_updates=rules.BUDGET_UPDATES)
    return model, rules.training_updates({"trainer": trainer}, model), sum(seconds)


def warped_copies(images, copies, seed):
    """copies warped versions of each image (grading.challenge.deformed, drawn from seed), shuffled: float32 rows."""
    rng = np.random.default_rng(seed)
    rows = np.concatenate([grader.deformed(images, rng) for _ in range(copies)])
    return rows[rng.permutation(len(rows))]


def warped_run(x_train, x_test, practice, hidden, seed, updates):
    """The warped shortcut: the key's entry on the training images, on warped copies of them, and on warped copies of
    the test images (as many rows as the training set), each for the same updates; print the hidden-set gains."""
    on_train = run(f"key's entry, seed {seed}", key_entry(x_train, seed, updates), practice, hidden)
    augmented = warped_copies(x_train[: len(x_train) // 2], 2, seed + 100)
    allowed = run("key's entry on warped training images", key_entry(augmented, seed, updates), practice, hidden)
    shortcut = warped_copies(x_test, len(x_train) // len(x_test), seed + 200)
    cheat = run("key's entry on warped test images", key_entry(shortcut, seed, updates), practice, hidden)
    print(
        f"\nHidden set PSNR (dB): warped training images {allowed[2] - on_train[2]:+.3f} over the training images; "
        f"warped test images (the shortcut) {cheat[2] - on_train[2]:+.3f} over the training images, "
        f"{cheat[2] - allowed[2]:+.3f} over the warped training images."
    )


def wider_network(x_train, seed):
    """A plain wider network: 784-256-784 (relu, sigmoid), adam, one fixed noisy copy, BUDGET_EPOCHS epochs."""
    keras.utils.set_random_seed(seed)
    model, _ = helpers.build_autoencoder(code_size=256, name="wider")
    helpers.compile_autoencoder(model)
    noisy = helpers.add_noise(x_train, NOISE_FACTOR, np.random.default_rng(seed))
    _, seconds = levelup.fit_timed(model, noisy, x_train, epochs=rules.BUDGET_EPOCHS, max_updates=rules.BUDGET_UPDATES)
    return model, rules.training_updates({}, model), sum(seconds)


def hybrid_dae(x_train, seed):
    """The lab's best model (benchmarks/hybrid.py) within the budget: BUDGET_EPOCHS epochs of fresh noise."""
    keras.utils.set_random_seed(seed)
    model, _ = hybrid.build_denoiser("hybrid")
    hybrid.compile_with_decay(model, steps=rules.BUDGET_UPDATES, loss=hybrid.loss_with_ssim())
    _, seconds = hybrid.fit_fresh_noise(model, x_train, rules.BUDGET_EPOCHS, seed=seed)
    return model, rules.training_updates({}, model), sum(seconds)


def scores(model, practice, hidden):
    """(practice PSNR, SSIM, hidden PSNR, SSIM) of model."""
    return (
        *rules.score(practice[0], levelup.predict_rows(model, practice[1])),
        *rules.score(hidden[0], levelup.predict_rows(model, hidden[1])),
    )


TINY_ENTRY = """\
(train_images, _), _ = helpers.load_dataset()
train_rows = helpers.prepare_images(train_images[:4096])
import levelup
from checks import challenge
keras.utils.set_random_seed(5)
challenge_model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(128, activation="relu"),
                                    keras.layers.Dense(784, activation="sigmoid")], name="seeded_entry")
trainer = levelup.with_fresh_noise(challenge_model, seed=5)
helpers.compile_autoencoder(trainer, optimizer=keras.optimizers.Adam(0.003))
levelup.fit_timed(trainer, train_rows, train_rows, epochs=3, max_updates=challenge.BUDGET_UPDATES)"""
SETUP = "import helpers\nimport keras\nimport numpy as np\n\nfrom checks import check"


def graded_run():
    """Print the tiny seeded entry's scores: the student's run here (the check's line, and the hidden set), and the
    grader's, graded beside an identical copy and alone."""
    import csv
    import importlib.util
    import shutil
    import tempfile

    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    folder = Path(tempfile.mkdtemp(prefix="bench-challenge-"))
    os.environ["XDG_CACHE_HOME"] = str(folder / "cache")  # a new grader secret: its hidden set, known here
    from grading.store import cache_dir, secret

    cells = [new_code_cell(source) for source in (SETUP, TINY_ENTRY, 'check("challenge")')]
    text = nbformat.writes(
        new_notebook(
            cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
        )
    )
    namespace = {"helpers": helpers, "keras": keras, "np": np}
    exec(TINY_ENTRY, namespace)  # the student's run
    print(f"student's run: {rules.evaluate(namespace).message}")
    clean, noisy = grader.hidden_set(grader.derive_seed(secret(cache_dir())), rules.HIDDEN_COUNT)
    psnr, _ = rules.score(clean, levelup.predict_rows(namespace["challenge_model"], noisy))
    print(f"student's model on the grader's hidden set: PSNR {psnr:.3f} dB", flush=True)
    spec = importlib.util.spec_from_file_location(
        "grade", Path(__file__).resolve().parent.parent / "tools" / "grade.py"
    )
    grade = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(grade)
    try:
        for name, copies, jobs in (("together", ("a", "b"), 2), ("alone", ("a",), 1)):
            (folder / name).mkdir()
            for copy in copies:
                (folder / name / f"{copy}.ipynb").write_text(text, encoding="utf-8")
            out = folder / f"out-{name}"
            grade.main([str(folder / name), "--out", str(out), "--jobs", str(jobs), "--quiet"])
            with open(out / "leaderboard.csv", encoding="utf-8") as file:
                for row in csv.DictReader(file):
                    if row["kind"] != "reference":
                        print(f"graded {name} (--jobs {jobs}): {row['student']} {row['psnr_db']} dB {row['rule']}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # this run's grader secret and stores


def run(label, trained, practice, hidden):
    """Score a trained (model, updates, seconds) and print its row: label, scores, updates, training seconds; return
    the scores."""
    model, updates, seconds = trained
    found = scores(model, practice, hidden)
    print(
        f"| {label} | {found[0]:.3f} | {found[1]:.4f} | {found[2]:.3f} | {found[3]:.4f} | {updates:,} | {seconds:.0f} |",
        flush=True,
    )
    return found


def main(argv=None):
    """Command line: train and score the entries, print the table and the differences."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=42, help="the honest entries' seed (the other is seed + 1)")
    parser.add_argument("--ladder", action="store_true", help="also train and score the ladder's reference models")
    parser.add_argument("--graded", action="store_true", help="only grade a tiny seeded entry (see above)")
    parser.add_argument("--warped", action="store_true", help="only the warped shortcut (see above)")
    args = parser.parse_args(argv)
    if args.graded:
        return graded_run()

    (train_images, _), (test_images, _) = helpers.load_dataset()
    x_train, x_test = helpers.prepare_images(train_images), helpers.prepare_images(test_images)
    practice = rules.practice_set(x_test)
    hidden = grader.draw(x_test, HIDDEN_SEED, rules.HIDDEN_COUNT)[:2]
    updates = KEY_EPOCHS * per_epoch(x_train)
    print(
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, Keras {keras.__version__} on "
        f"{keras.backend.backend()}; hidden set: {rules.HIDDEN_COUNT:,} images from a fixed seed",
        flush=True,
    )
    print("| model | practice PSNR | SSIM | hidden PSNR | SSIM | updates | training s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    if args.warped:
        return warped_run(x_train, x_test, practice, hidden, args.seed, updates)
    identity = keras.Sequential([keras.Input((784,)), keras.layers.Identity()])
    run("noisy input", (identity, 0, 0.0), practice, hidden)
    seed, other = args.seed, args.seed + 1
    first = run(f"key's entry, seed {seed}", key_entry(x_train, seed, updates), practice, hidden)
    again = run(f"key's entry, seed {seed} again", key_entry(x_train, seed, updates), practice, hidden)
    honest = run(f"key's entry, seed {other}", key_entry(x_train, other, updates), practice, hidden)
    shortcut = run(f"key's entry on the test images, seed {seed}", key_entry(x_test, seed, updates), practice, hidden)
    if args.ladder:
        run("plain wider network 784-256-784", wider_network(x_train, seed), practice, hidden)
        run("hybrid DAE (benchmarks/hybrid.py)", hybrid_dae(x_train, seed), practice, hidden)
        params = {"median filter": {"size": 5}, "TV (Chambolle)": {"weight": 0.2}}
        for label, noisy in (("practice", practice), ("hidden", hidden)):
            for method, (denoised, _) in levelup.classical_denoise(noisy[1], None, params=params).items():
                psnr, ssim = rules.score(noisy[0], np.clip(denoised, 0, 1))
                print(f"{method} on the {label} set: PSNR {psnr:.3f} dB, SSIM {ssim:.4f}", flush=True)
    print(
        f"\nHidden set PSNR (dB): identical entries differ by {abs(first[2] - again[2]):.3f}, two honest seeds by "
        f"{abs(first[2] - honest[2]):.3f}; the test-image shortcut gains {shortcut[2] - first[2]:+.3f} over seed {seed} "
        f"and {shortcut[2] - honest[2]:+.3f} over seed {other}. Practice set: identical entries differ by "
        f"{abs(first[0] - again[0]):.3f}, the shortcut gains {shortcut[0] - first[0]:+.3f} there; practice minus "
        f"hidden for the key's entry: {first[0] - first[2]:.3f}."
    )


if __name__ == "__main__":
    main()
