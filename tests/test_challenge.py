"""The class challenge, student side: check("challenge") admits a model by the rules (each refusal names its rule),
scores it on the public practice set, and leaves the core tasks alone; the notebook states the rules and the bar."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

import helpers  # noqa: E402  (first: it imports Keras quietly)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import checks  # noqa: E402
from checks import challenge  # noqa: E402


def dense(*units, output="sigmoid", bias=0.0, input_shape=(helpers.INPUT_DIM,)):
    """An untrained Sequential model: the given hidden relu layers, then the output layer (its size the last unit)."""
    keras.utils.set_random_seed(0)
    layers = [keras.Input(shape=input_shape)]
    layers += [keras.layers.Dense(u, activation="relu") for u in units[:-1]]
    layers.append(keras.layers.Dense(units[-1], activation=output, bias_initializer=keras.initializers.Constant(bias)))
    return keras.Sequential(layers)


def entry(model):
    """The result of check("challenge") on a namespace holding model as challenge_model."""
    return checks.evaluate("challenge", {challenge.NAME: model})


@pytest.fixture(scope="module")
def tiny():
    """A tiny dense entry trained a few steps on the training images (never the test set), with fresh noise."""
    (train_images, _), _ = helpers.load_dataset("fashion_mnist")
    x = helpers.prepare_images(train_images[:8192])
    model = dense(32, helpers.INPUT_DIM)
    helpers.compile_autoencoder(model, optimizer=keras.optimizers.Adam(0.01))
    model.fit(helpers.add_noise(x, helpers.NOISE_FACTOR, 0), x, epochs=2, batch_size=256, verbose=0)
    return model


def test_a_tiny_dense_entry_is_admitted_and_scored_on_the_practice_set(tiny):
    result = entry(tiny)
    assert result.status == "passed", result.message
    psnr, ssim = (float(v) for v in re.search(r"PSNR ([\d.]+) dB, SSIM ([\d.]+)", result.message).groups())
    clean, noisy = challenge.practice_images("fashion_mnist")
    assert (psnr, ssim) == pytest.approx(challenge.score(clean, tiny.predict(noisy, verbose=0)), abs=0.01)
    noisy_psnr, _ = challenge.score(clean, noisy)
    assert psnr > noisy_psnr + 2  # even 64 steps denoise
    assert f"{tiny.count_params():,} weights" in result.message
    assert "hidden set" in result.message and f"{challenge.BAR_PSNR:.2f} dB" in result.message


def test_the_practice_set_is_public_and_fixed():
    clean, noisy = challenge.practice_images("fashion_mnist")
    assert clean.shape == noisy.shape == (challenge.PRACTICE_COUNT, helpers.INPUT_DIM)
    assert noisy.dtype == np.float32 and 0 <= noisy.min() and noisy.max() <= 1
    (_, _), (test_images, _) = helpers.load_dataset("fashion_mnist")
    again = challenge.practice_set(helpers.prepare_images(test_images))
    assert np.array_equal(again[0], clean) and np.array_equal(again[1], noisy)


@pytest.mark.parametrize(
    "make, rule, change",
    [
        (lambda: dense(16, 10), "the rule on output", "784 outputs"),
        (lambda: dense(700, helpers.INPUT_DIM), "the rule on size, at most 1,000,000 weights", "make it smaller"),
        (lambda: dense(16, helpers.INPUT_DIM, output="linear", bias=2.0), "the rule on output", "sigmoid"),
        (lambda: dense(16, helpers.INPUT_DIM, input_shape=(28, 28)), "the rule on input", "keras.Input(shape=(784,))"),
        (lambda: np.zeros((10, helpers.INPUT_DIM)), "the rule on a Keras model", "keras.Model"),
        (lambda: lambda x: x, "the rule on a Keras model", "not its output or a function"),
        (lambda: keras.Sequential([keras.layers.Dense(784)]), "the rule on a Keras model", "keras.Input(shape=(784,))"),
    ],
    ids=["output shape", "too many weights", "outside [0, 1]", "input shape", "an array", "a function", "unbuilt"],
)
def test_a_model_against_the_rules_is_refused_naming_the_rule_and_what_to_change(make, rule, change):
    result = entry(make())
    assert result.status == "failed"
    assert result.message.startswith(rule), result.message
    assert change in result.message


def test_a_model_too_slow_is_refused_naming_the_time_rule(tiny, monkeypatch):
    monkeypatch.setattr(challenge, "PRACTICE_INFERENCE_S", 0.0)
    result = entry(tiny)
    assert result.status == "failed" and result.message.startswith("the rule on inference time"), result.message
    assert f"{challenge.MAX_INFERENCE_S} s for the grader's {challenge.HIDDEN_COUNT:,}" in result.message


def lab_models():
    """The lab's ready-made models, as a student might enter them: built, wrapped for fresh noise, or nested."""
    import levelup
    from benchmarks import hybrid

    deep = levelup.build_denoiser("deep", hidden=(64, 32))[0]
    return {
        "core DAE": helpers.build_autoencoder(code_size=256)[0],
        "deep DAE": deep,
        "conv DAE": levelup.build_conv_autoencoder(filters=8)[0],
        "hybrid DAE": hybrid.build_denoiser("hybrid", hidden=(64,), filters=8, fine_filters=4)[0],
        "hybrid DAE, no fine stage": hybrid.build_hybrid_autoencoder(hidden=(64, 64), filters=8, fine_filters=0)[0],
        "fresh noise around the deep DAE": levelup.with_fresh_noise(deep),
        "nested in a Sequential": keras.Sequential([keras.Input((784,)), keras.layers.Identity(), deep]),
    }


def test_the_labs_ready_made_models_are_refused_by_the_rule_on_design():
    for label, model in lab_models().items():
        result = entry(model)
        assert result.status == "failed" and result.message.startswith("the rule on design"), (label, result.message)
        assert "design of your own" in result.message


def test_a_design_of_ones_own_is_admitted_even_with_the_labs_layer_names(tiny):
    inputs = keras.Input((784,))
    code = keras.layers.Dense(64, activation="swish", name="code")(inputs)
    hidden = keras.layers.Dense(128, activation="swish", name="widen")(code)
    own = keras.Model(inputs, keras.layers.Dense(784, activation="sigmoid", name="reconstruction")(hidden))
    assert challenge.lab_model(own) is None and challenge.lab_model(tiny) is None
    assert entry(own).status == "passed"


def seeded_entry(seed, x):
    """A tiny seeded entry trained as the card asks (a trainer with fresh noise, levelup.fit_timed within the budget)."""
    import levelup

    keras.utils.set_random_seed(seed)
    model = dense(32, helpers.INPUT_DIM)
    trainer = levelup.with_fresh_noise(model, seed=seed)
    helpers.compile_autoencoder(trainer, optimizer=keras.optimizers.Adam(0.01))
    levelup.fit_timed(trainer, x, x, epochs=2, batch_size=128, max_updates=challenge.BUDGET_UPDATES)
    return model, trainer


def test_the_budget_is_counted_from_the_optimizers_that_trained_the_entry(monkeypatch):
    (train_images, _), _ = helpers.load_dataset("fashion_mnist")
    x = helpers.prepare_images(train_images[:1024])
    model, trainer = seeded_entry(0, x)
    assert challenge.training_updates({"trainer": trainer}, model) == 16  # 2 epochs of 8 batches, through the trainer
    assert challenge.training_updates({}, model) == 0  # the trainer gone: nothing counts it
    result = checks.evaluate("challenge", {challenge.NAME: model, "trainer": trainer})
    assert result.status == "passed" and f"trained by 16 of the {challenge.BUDGET_UPDATES:,}" in result.message
    monkeypatch.setattr(challenge, "BUDGET_UPDATES", 15)
    result = checks.evaluate("challenge", {challenge.NAME: model, "trainer": trainer})
    assert result.status == "failed", result.message
    assert result.message.startswith(
        "the rule on the training budget, at most 15 optimizer updates: challenge_model was trained by 16"
    ), result.message


def test_a_seeded_entry_trained_twice_scores_alike_within_the_stated_tolerance():
    (train_images, _), _ = helpers.load_dataset("fashion_mnist")
    x = helpers.prepare_images(train_images[:2048])
    clean, noisy = challenge.practice_images("fashion_mnist")
    first, second = (challenge.score(clean, seeded_entry(7, x)[0].predict(noisy, verbose=0))[0] for _ in range(2))
    other = challenge.score(clean, seeded_entry(8, x)[0].predict(noisy, verbose=0))[0]
    assert abs(first - second) <= challenge.REPRODUCE_DB, (first, second)
    assert abs(first - other) > abs(first - second)  # the seed, not chance, makes them alike


def test_without_challenge_model_the_challenge_is_not_attempted_and_loads_nothing():
    assert entry.__name__  # the namespace below has no challenge_model
    result = checks.evaluate("challenge", {"x_test": np.zeros((3, 784))})
    assert result == checks.Result("not attempted", f"define {challenge.NAME}")
    assert result.line("challenge") == "challenge: not attempted yet (define challenge_model)"


def test_check_prints_the_score_on_its_line(tiny, capsys):
    result = checks.check("challenge", {"challenge_model": tiny})
    said = capsys.readouterr().out
    assert said.startswith("challenge: passed - challenge_model is admissible") and result.status == "passed"


def test_the_challenge_is_optional_outside_the_core_tasks():
    assert checks.OPTIONAL == ("challenge",) == (challenge.TASK,)
    assert challenge.TASK not in checks.TASKS and challenge.TASK not in checks.READS
    from checks.tasks import CHECKS

    assert list(CHECKS) == list(checks.TASKS) and len(CHECKS) == 9


def test_importing_checks_loads_no_keras():
    code = "import sys, checks, checks.challenge; print('keras' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr


# ---------------------------------------------------------------- the notebook


def challenge_cells(nb):
    """The cells of the challenge section: from its heading to "## Level up"."""
    start = next(n for n, c in enumerate(nb.cells) if c.source.startswith("## The class challenge"))
    end = next(n for n, c in enumerate(nb.cells) if c.source.startswith("## Level up"))
    return nb.cells[start:end]


def test_the_challenge_comes_after_the_core_tasks_and_before_level_up(solution):
    sources = [c.source for c in solution.cells]
    core_end = max(n for n, s in enumerate(sources) if re.fullmatch(r'check\("(\w+)"\)', s) and "challenge" not in s)
    start = next(n for n, s in enumerate(sources) if s.startswith("## The class challenge"))
    level_up = next(n for n, s in enumerate(sources) if s.startswith("## Level up"))
    assert core_end < start < level_up
    assert 'check("challenge")' in [c.source for c in challenge_cells(solution)]


def test_the_card_states_every_rule_and_the_measured_bar(solution):
    text = " ".join(" ".join(c.source for c in challenge_cells(solution) if c.cell_type == "markdown").split())
    for rule in (
        f"{challenge.BUDGET_UPDATES:,} optimizer updates",
        f"{challenge.BUDGET_EPOCHS} epochs",
        f"batches of at most {challenge.BATCH_SIZE}",
        "max_updates=challenge.BUDGET_UPDATES",
        f"{challenge.MAX_TRAINING_S // 60} minutes",
        f"within {challenge.REPRODUCE_DB:.2f} dB",
        "ready-made",
        "validation",
        "one thing at a time",
        f"{challenge.MAX_PARAMS:,} weights",
        f"{challenge.HIDDEN_COUNT:,} images in {challenge.MAX_INFERENCE_S} s",
        "`challenge_model`",
        "(n, 784)",
        "[0, 1]",
        "PSNR",
        "SSIM",
        "hidden set",
        "training set only",
        "optional",
    ):
        assert rule in text, rule
    assert f"{challenge.BAR_PSNR:.2f} dB" in text and text.count(f"{challenge.BAR_PSNR:.2f} dB") == 1
    said = "".join(
        o.get("text", "") for c in challenge_cells(solution) if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert f"PSNR {challenge.BAR_PSNR:.2f} dB, SSIM {challenge.BAR_SSIM:.3f}" in said  # the bar is the one measured
