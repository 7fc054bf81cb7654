"""The task self-checks: a correct lab passes, each listed mistake fails with its hint, nothing ever raises.

The lab is rebuilt small (3,000 training and 300 test images of the real Fashion-MNIST, 5 epochs
with a larger learning rate), so the whole file runs in seconds; trained models are shared per module.
"""

import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import helpers

import keras
import matplotlib.pyplot as plt
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import checks
import checks.spec

ROOT = Path(__file__).resolve().parent.parent
N_TRAIN, N_TEST, EPOCHS = 3000, 300, 5


def fit(model, inputs, targets, validation_data, seed=0, epochs=EPOCHS, batch_size=64, optimizer=None):
    """Compile model (adam, BCE, no XLA) and train it quickly; return the History."""
    keras.utils.set_random_seed(seed)
    model.compile(optimizer=optimizer or keras.optimizers.Adam(0.003), loss="binary_crossentropy")
    return model.fit(inputs, targets, epochs=epochs, batch_size=batch_size, validation_data=validation_data, verbose=0)


@pytest.fixture(scope="module")
def lab():
    """The variables of a correctly completed (small) lab, as a notebook would hold them."""
    (train_images, y_train), (test_images, y_test) = helpers.load_dataset()
    ns = {
        "train_images": train_images[:N_TRAIN].copy(),
        "test_images": test_images[:N_TEST].copy(),
        "NOISE_FACTOR": 0.5,
    }
    ns["x_train"], ns["x_test"] = helpers.prepare_images(ns["train_images"]), helpers.prepare_images(ns["test_images"])
    keras.utils.set_random_seed(1)
    ns["autoencoder"], ns["encoder"] = helpers.build_autoencoder()
    ns["ae_history"] = fit(ns["autoencoder"], ns["x_train"], ns["x_train"], (ns["x_test"], ns["x_test"]))
    ns["codes"] = ns["encoder"].predict(ns["x_test"], verbose=0)
    ns["reconstructions"] = ns["autoencoder"].predict(ns["x_test"], verbose=0)
    ns["fig_autoencoder"] = helpers.plot_rows([ns["x_test"], ns["reconstructions"]], ["original", "reconstructed"])
    rng = np.random.default_rng(2)
    ns["x_train_noisy"] = helpers.add_noise(ns["x_train"], 0.5, rng)
    ns["x_test_noisy"] = helpers.add_noise(ns["x_test"], 0.5, rng)
    keras.utils.set_random_seed(3)
    ns["dae"], ns["dae_encoder"] = helpers.build_autoencoder(name="dae")
    ns["history"] = fit(ns["dae"], ns["x_train_noisy"], ns["x_train"], (ns["x_test_noisy"], ns["x_test"]))
    ns["x_test_denoised"] = ns["dae"].predict(ns["x_test_noisy"], verbose=0)
    ns["fig_clean"] = helpers.plot_rows([ns["x_test"]], ["clean"])
    ns["fig_results"] = helpers.plot_rows(
        [ns["x_test_noisy"], ns["x_test_denoised"], ns["x_test"]], ["noisy", "denoised", "clean"]
    )
    ns["fig_loss"] = helpers.plot_history(ns["history"])
    yield ns
    plt.close("all")


@pytest.fixture(scope="module")
def dae_noisy_to_noisy(lab):
    """A DAE trained with noisy targets: (model, History)."""
    model, _ = helpers.build_autoencoder(name="dae")
    return model, fit(model, lab["x_train_noisy"], lab["x_train_noisy"], (lab["x_test_noisy"], lab["x_test_noisy"]))


def with_(lab, **changes):
    """A copy of the lab's variables with some replaced (None deletes one)."""
    ns = dict(lab)
    for name, value in changes.items():
        if value is None:
            ns.pop(name, None)
        else:
            ns[name] = value
    return ns


def assert_fails(ns, task, hint):
    """The task's check fails with a message containing hint."""
    result = checks.evaluate(task, ns)
    assert result.status == "failed", result
    assert hint in result.message, result.message


# ---------------------------------------------------------------- the API


def test_tasks_are_in_lab_order():
    assert checks.TASKS == (
        "data",
        "regular_autoencoder",
        "reconstructions",
        "noisy_data",
        "dae_model",
        "dae_training",
        "predictions",
        "view_results",
        "loss_curve",
    )


def test_checks_are_in_the_tables_order_and_a_task_with_no_variables_is_what_its_check_says():
    from checks.tasks import CHECKS

    assert tuple(CHECKS) == checks.TASKS == tuple(checks.READS) == tuple(checks.DEFINES)
    for task in checks.TASKS:
        assert set(checks.DEFINES[task]) <= set(checks.READS[task]), task
        with pytest.raises(checks.NotAttempted) as raised:  # the check itself, without judge's shortcut
            CHECKS[task]({})
        assert checks.judge(task, {}) == ("not attempted", str(raised.value)), task


def test_importing_the_checks_and_judging_what_nobody_attempted_load_no_keras():
    code = (
        "import sys, checks; "
        "print(sorted({checks.judge(task, {}).status for task in checks.TASKS}), 'keras' in sys.modules); "
        "checks.ModelInfo; print('keras' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[:2] == ["['not attempted'] False", "True"], done.stdout


def test_a_correct_lab_passes_every_check(lab):
    for task in checks.TASKS:
        result = checks.evaluate(task, lab)
        assert result.status == "passed", (task, result)


def test_a_blank_notebook_has_attempted_nothing():
    for task in checks.TASKS:
        result = checks.evaluate(task, {"train_images": np.zeros((2, 28, 28), np.uint8), "NOISE_FACTOR": 0.5})
        assert result.status == "not attempted" and result.message.startswith("define "), (task, result)


def test_check_reads_the_callers_variables_and_prints_one_line(lab, capsys):
    ns = {"check": checks.check, "x_train": lab["x_train"], "train_images": lab["train_images"]}
    exec('result = check("data")', ns)
    assert capsys.readouterr().out == "data: not attempted yet (define x_test)\n"
    assert ns["result"] == ("not attempted", "define x_test")
    ns["x_test"], ns["test_images"] = lab["x_test"], lab["test_images"]
    exec('result = check("data")', ns)
    assert capsys.readouterr().out == "data: passed\n" and ns["result"].status == "passed"


def test_check_prints_the_hint_of_a_failure(lab, capsys):
    result = checks.check("noisy_data", with_(lab, x_test_noisy=lab["x_test"] + 0.5))
    assert capsys.readouterr().out == f"noisy_data: failed - {result.message}\n"
    assert "clip them" in result.message


def test_a_deleted_variable_reads_as_not_attempted(lab):
    assert checks.evaluate("predictions", with_(lab, x_test_denoised=None)) == (
        "not attempted",
        "define x_test_denoised",
    )


def test_unknown_task_and_bad_namespace_give_a_failed_result(lab):
    assert "use one of data, " in checks.evaluate("nosuch", lab).message
    assert checks.evaluate("data", None).status == "failed"


def assert_blocked(ns, task, earlier, hint=""):
    """The task's check is blocked by the earlier task, naming it first and then hint."""
    result = checks.evaluate(task, ns)
    assert result.status == "blocked", result
    assert result.message.startswith(f"fix the {earlier} task first: "), result.message
    assert hint in result.message, result.message


def test_a_missing_earlier_task_is_named(lab):
    assert_blocked(with_(lab, x_test_noisy=None), "predictions", "noisy_data", "x_test_noisy is not defined")
    assert_blocked(with_(lab, dae=None), "predictions", "dae_model")
    assert_blocked(with_(lab, x_test=None), "view_results", "data")
    assert_blocked(with_(lab, history=None), "loss_curve", "dae_training")


def test_blocked_has_its_own_line_and_never_counts_as_passed(lab, capsys):
    result = checks.check("predictions", with_(lab, dae="not a model"))
    assert capsys.readouterr().out == f"predictions: blocked - {result.message}\n"
    assert result.status in checks.STATUSES and result.status != "passed"


# ---------------------------------------------------------------- mistakes and their hints


@pytest.mark.parametrize(
    "change, hint",
    [
        (lambda ns: {"x_train": ns["train_images"].reshape(len(ns["train_images"]), -1)}, "dividing by 255"),
        (
            lambda ns: {"x_train": ns["train_images"].reshape(len(ns["train_images"]), -1).astype("float32")},
            "scale them to [0, 1]",
        ),
        (lambda ns: {"x_test": ns["test_images"] / 255.0}, "flatten each 28x28 image"),
        (lambda ns: {"x_train": ns["x_train"] / 255.0}, "divide the 0-255 images by 255 once"),
        (lambda ns: {"x_train": ns["x_test"]}, "x_train holds the images of test_images"),
        (lambda ns: {"x_train": ns["x_train"][:100]}, "has 100 rows where train_images has 3,000 images"),
        (lambda ns: {"x_train": (flat(ns["train_images"]) // 255).astype("float32")}, "divided with // (floor"),
        (lambda ns: {"x_train": flat(ns["train_images"]) // 255}, "divided with // (floor division)"),
        (lambda ns: {"x_train": np.round(ns["x_train"])}, "rounded to whole numbers"),
        (lambda ns: {"x_train": min_max_rows(flat(ns["train_images"]))}, "rescaled image by image"),
        (lambda ns: {"x_train": ns["x_train"][::-1]}, "but in another order"),
        (lambda ns: {"x_train": np.sqrt(ns["x_train"])}, "no usual slip explains it (tested: // for /"),
        (lambda ns: {"x_train": noisy(ns["x_train"])}, "the noise was added to x_train itself, in place"),
        (lambda ns: {"x_test": np.full_like(ns["x_test"], np.nan)}, "NaN"),
        # noise added to x_train in place, not clipped: neither 0-255 nor [0, 1]; both possible causes are named
        (lambda ns: {"x_train": noisy(ns["x_train"], clip=False)}, "or noise was added to x_train itself, in place"),
    ],
    ids=[
        "not-scaled-uint8",
        "not-scaled-float",
        "not-flattened",
        "scaled-twice",
        "wrong-split",
        "subset",
        "floor-division",
        "floor-division-integers",
        "rounded",
        "min-max-per-image",
        "rows-reversed",
        "cause-unknown",
        "noisy-in-place-clipped",
        "nan",
        "noisy-in-place",
    ],
)
def test_data_mistakes(lab, change, hint):
    assert_fails(with_(lab, **change(lab)), "data", hint)


def test_data_is_judged_against_the_labs_own_images_whatever_the_notebook_did_to_its_own(lab, monkeypatch):
    ones = np.ones((4, 784), "float32")
    fake = np.full((4, 28, 28), 255, np.uint8)
    for images in ({"train_images": None, "test_images": None}, {"train_images": fake, "test_images": fake}):
        assert_fails(
            with_(lab, x_train=ones, x_test=ones, **images), "data", "has 4 rows where train_images has 60,000"
        )
    monkeypatch.delenv(checks.spec.TRAINING_SETTING)  # the cards' plan: all 60,000 images, even where cut short
    cut = {"train_images": lab["train_images"][:100], "x_train": lab["x_train"][:100]}
    assert_fails(with_(lab, **cut), "data", "has 100 rows where train_images has 60,000")


def flat(images):
    """Images as rows of pixels, as they are (0-255)."""
    return images.reshape(len(images), -1)


def min_max_rows(rows, per_image=True):
    """rows rescaled to [0, 1] from their smallest to their largest value (each row, or the whole set)."""
    rows = np.asarray(rows, "float64")
    low = rows.min(axis=1, keepdims=True) if per_image else rows.min()
    high = rows.max(axis=1, keepdims=True) if per_image else rows.max()
    return (rows - low) / (high - low)


def noisy(clean, factor=0.5, seed=5, clip=True):
    """clean + factor * N(0, 1), clipped or not."""
    out = clean + factor * np.random.default_rng(seed).standard_normal(clean.shape)
    return np.clip(out, 0, 1) if clip else out


@pytest.mark.parametrize(
    "change, hint",
    [
        (lambda ns: {"x_train_noisy": noisy(ns["x_train"], clip=False)}, "clip them back to [0, 1]"),
        (lambda ns: {"x_test_noisy": noisy(ns["x_test"], 0.3)}, "factor 0.30, not 0.5"),
        (lambda ns: {"x_test_noisy": noisy(ns["x_test"], 1.0)}, "factor 1.00, not 0.5"),
        (lambda ns: {"x_test_noisy": noisy(ns["x_train"])}, "has the shape of x_train"),
        (lambda ns: {"x_test_noisy": noisy(ns["x_train"][:N_TEST])}, "x_test_noisy was built from x_train"),
        (lambda ns: {"x_train_noisy": noisy(ns["x_test"])}, "has the shape of x_test"),
        (lambda ns: {"x_test_noisy": ns["x_test"]}, "equals x_test"),
        (
            lambda ns: {"x_test_noisy": noisy(ns["x_test"][::-1])},
            "x_test_noisy's rows are not x_test's images in order",
        ),
        (
            lambda ns: {
                "x_test_noisy": helpers.prepare_images(
                    ns["test_images"] + 0.5 * np.random.default_rng(5).standard_normal(ns["test_images"].shape)
                )
            },
            "255 times too little: the noise was added to the 0-255 images before dividing",
        ),
        (
            lambda ns: {
                "x_test_noisy": helpers.prepare_images(
                    np.clip(
                        ns["test_images"] + 0.5 * np.random.default_rng(5).standard_normal(ns["test_images"].shape),
                        0,
                        1,
                    )
                )
            },
            "added and clipped before dividing by 255",
        ),
        (
            lambda ns: {
                "x_test_noisy": ns["test_images"].reshape(N_TEST, -1)
                + 0.5 * np.random.default_rng(5).standard_normal((N_TEST, 784))
            },
            "the noise was added to the 0-255 images; the noise is added to x_test",
        ),
        (
            lambda ns: {"x_test_noisy": noisy(ns["x_test"], 0.25)},
            "factor 0.25 = 0.5 x 0.5: NOISE_FACTOR was applied twice",
        ),
        (
            lambda ns: {
                "x_test_noisy": np.clip(
                    ns["x_test"] + 0.5 * np.random.default_rng(5).uniform(-1.7, 1.7, (N_TEST, 784)), 0, 1
                )
            },
            "not normally distributed",
        ),
        (
            lambda ns: {
                "x_test_noisy": np.clip(ns["x_test"] + 0.5 * np.random.default_rng(5).random((N_TEST, 784)), 0, 1)
            },
            "100% of its noise is positive",
        ),
        (
            lambda ns: {
                "x_test_noisy": np.clip(
                    ns["x_test"] + 0.5 * np.random.default_rng(5).normal(0.3, 1, (N_TEST, 784)), 0, 1
                )
            },
            "of its noise is positive, where half should be: Gaussian noise has mean 0",
        ),
        (
            lambda ns: {"x_test_noisy": noisy(ns["x_test"], 0.3, clip=False)},
            "clip them back to [0, 1] after adding the noise (np.clip); "
            "also, once clipped, x_test_noisy looks like noise of factor 0.30",
        ),
        (lambda ns: {"x_test_noisy": noisy(ns["x_test"], 0.45)}, "factor 0.45, not 0.5"),
        (lambda ns: {"x_test_noisy": noisy(ns["x_test"], 0.55)}, "factor 0.55, not 0.5"),
        (
            lambda ns: {"x_test_noisy": min_max_rows(noisy(ns["x_test"], clip=False), per_image=False)},
            "by rescaling (min-max: minus its smallest value, divided by its range), not by clipping",
        ),
        (
            lambda ns: {
                "x_test_noisy": min_max_rows(
                    ns["x_test"] + 0.5 * np.random.default_rng(5).random((N_TEST, 784)), per_image=False
                )
            },
            "its noise is not Gaussian either",
        ),
    ],
    ids=[
        "not-clipped",
        "factor-0.3",
        "factor-1",
        "test-from-train",
        "test-from-train-rows",
        "train-from-test",
        "no-noise",
        "shuffled",
        "before-scaling",
        "clipped-before-scaling",
        "on-0-255-images",
        "factor-twice",
        "uniform",
        "positive",
        "mean-0.15",
        "not-clipped-and-factor-0.3",
        "factor-0.45",
        "factor-0.55",
        "min-max-not-clipped",
        "min-max-uniform",
    ],
)
def test_noise_mistakes(lab, change, hint):
    assert_fails(with_(lab, **change(lab)), "noisy_data", hint)


def model(code=32, code_activation="relu", out_activation="sigmoid", out_units=784):
    """A Functional model with the lab's layout but the given sizes and activations."""
    inputs = keras.Input(shape=(784,))
    code_layer = keras.layers.Dense(code, activation=code_activation)(inputs)
    return keras.Model(inputs, keras.layers.Dense(out_units, activation=out_activation)(code_layer))


@pytest.mark.parametrize(
    "dae, hint",
    [
        (lambda: model(code=16), "the code size must be 32"),
        (lambda: model(code_activation="sigmoid"), "use activation='relu'"),
        (lambda: model(out_activation="relu"), "use activation='sigmoid'"),
        (lambda: model(out_units=10), "output of shape (4, 10); expected (4, 784)"),
        (
            lambda: keras.Sequential(
                [
                    keras.Input((28, 28)),
                    keras.layers.Flatten(),
                    keras.layers.Dense(32, "relu"),
                    keras.layers.Dense(784, "sigmoid"),
                ]
            ),
            "cannot take rows of 784 pixels",
        ),
        (
            lambda: keras.Sequential(
                [keras.layers.Dense(64, "relu"), keras.layers.Dense(32, "relu"), keras.layers.Dense(784, "sigmoid")]
            ),
            "expected 50,992",
        ),
        (lambda: "a model", "should be a Keras model"),
    ],
    ids=["code-16", "code-sigmoid", "output-relu", "output-10", "not-flat-input", "deeper", "not-a-model"],
)
def test_architecture_mistakes(lab, dae, hint):
    assert_fails(with_(lab, dae=dae()), "dae_model", hint)


def test_dae_must_be_a_new_model(lab):
    assert_fails(with_(lab, dae=lab["autoencoder"]), "dae_model", "build a new model")
    shared = keras.Model(lab["autoencoder"].inputs, lab["autoencoder"].outputs)
    assert_fails(with_(lab, dae=shared), "dae_model", "build a new model")


def test_an_encoder_taken_over_by_the_dae_is_named(lab):
    encoder = keras.Model(lab["dae"].inputs, lab["dae"].layers[1].output)
    assert_fails(with_(lab, encoder=encoder), "regular_autoencoder", "call that one dae_encoder")


def test_encoder_must_be_the_autoencoders_first_half(lab):
    _, other_encoder = helpers.build_autoencoder()
    assert_fails(with_(lab, encoder=other_encoder), "regular_autoencoder", "first half of autoencoder")


@pytest.mark.parametrize(
    "compile_args, hint",
    [
        ({"optimizer": "adam", "loss": "mse"}, "use loss='binary_crossentropy'"),
        ({"optimizer": "sgd", "loss": "binary_crossentropy"}, "use optimizer='adam'"),
        (None, "is not compiled"),
    ],
    ids=["mse", "sgd", "not-compiled"],
)
def test_compile_mistakes(lab, compile_args, hint):
    dae, _ = helpers.build_autoencoder()
    if compile_args:
        dae.compile(**compile_args)
    assert_fails(with_(lab, dae=dae), "dae_training", hint)
    autoencoder, encoder = helpers.build_autoencoder()
    if compile_args:
        autoencoder.compile(**compile_args)
    assert_fails(with_(lab, autoencoder=autoencoder, encoder=encoder), "regular_autoencoder", hint)


def test_a_model_never_fitted_is_caught(lab):
    dae, _ = helpers.build_autoencoder()
    helpers.compile_autoencoder(dae)
    assert_fails(with_(lab, dae=dae), "dae_training", "dae was never fitted")
    autoencoder, encoder = helpers.build_autoencoder()
    helpers.compile_autoencoder(autoencoder)
    assert_fails(
        with_(lab, autoencoder=autoencoder, encoder=encoder), "regular_autoencoder", "autoencoder was never fitted"
    )


def test_dae_trained_noisy_to_noisy_is_caught(lab, dae_noisy_to_noisy):
    dae, history = dae_noisy_to_noisy
    assert_fails(with_(lab, dae=dae, history=history), "dae_training", "its targets must be the clean images")


def test_dae_trained_clean_to_clean_is_caught(lab):
    dae, _ = helpers.build_autoencoder()
    history = fit(dae, lab["x_train"], lab["x_train"], (lab["x_test_noisy"], lab["x_test"]))
    assert_fails(with_(lab, dae=dae, history=history), "dae_training", "trained on clean inputs")
    # the regular autoencoder as the DAE: dae_model's mistake, which dae_training cannot be judged without
    assert_blocked(
        with_(lab, dae=lab["autoencoder"], history=lab["ae_history"]), "dae_training", "dae_model", "build a new model"
    )


def test_history_must_be_kept_and_belong_to_the_dae(lab):
    assert_fails(with_(lab, history=None), "dae_training", "its History was not kept")
    assert_fails(with_(lab, history=lab["ae_history"]), "dae_training", "history comes from another model")
    untrained, _ = helpers.build_autoencoder()
    assert checks.evaluate("dae_training", with_(lab, dae=untrained, history=None)) == (
        "not attempted",
        "define history",
    )


def test_predictions_must_come_from_the_noisy_test_set(lab):
    from_clean = lab["dae"].predict(lab["x_test"], verbose=0)
    assert_fails(with_(lab, x_test_denoised=from_clean), "predictions", "predicted from the clean x_test")
    by_autoencoder = lab["autoencoder"].predict(lab["x_test_noisy"], verbose=0)
    assert_fails(with_(lab, x_test_denoised=by_autoencoder), "predictions", "made by the regular autoencoder")
    assert_fails(with_(lab, x_test_denoised=lab["x_test_noisy"]), "predictions", "the noisy input itself")
    assert_fails(with_(lab, x_test_denoised=lab["x_test_denoised"][:10]), "predictions", "has shape (10, 784)")


def test_figures_must_show_the_right_arrays(lab):
    noisy_clean = helpers.plot_rows([lab["x_test_noisy"]], ["clean?"])
    assert_fails(with_(lab, fig_clean=noisy_clean), "view_results", "fig_clean shows x_test_noisy")
    wrong_row = helpers.plot_rows([lab["x_test_noisy"], lab["reconstructions"], lab["x_test"]], ["n", "d", "c"])
    assert_fails(
        with_(lab, fig_results=wrong_row),
        "view_results",
        "second row shows reconstructions (the regular autoencoder's outputs) where the card asks for x_test_denoised (the DAE's outputs)",
    )
    train_row = helpers.plot_rows([lab["x_train"], lab["reconstructions"]], ["o", "r"])
    hint = "top row shows x_train (the training images) where the card asks for x_test (the clean test images)"
    assert_fails(with_(lab, fig_autoencoder=train_row), "reconstructions", hint)
    other_images = helpers.plot_rows([lab["x_test_noisy"], lab["x_test_denoised"], lab["x_test"][5:]], ["n", "d", "c"])
    assert_fails(with_(lab, fig_results=other_images), "view_results", "rows show different images")
    assert_fails(with_(lab, fig_results=plt.figure()), "view_results", "shows no images")
    wrong_reconstructions = helpers.plot_rows([lab["x_test"], lab["x_test_noisy"]], ["o", "r"])
    hint = "second row shows x_test_noisy (the noisy test images) where the card asks for reconstructions"
    assert_fails(with_(lab, fig_autoencoder=wrong_reconstructions), "reconstructions", hint)
    assert_fails(
        with_(lab, fig_loss=helpers.plot_history(lab["ae_history"])), "loss_curve", "regular autoencoder's losses"
    )
    plt.close("all")


def test_reconstructions_must_come_from_the_test_set(lab):
    from_train = lab["autoencoder"].predict(lab["x_train"][:N_TEST], verbose=0)
    assert_fails(with_(lab, reconstructions=from_train), "reconstructions", "made from the training images")
    stale = lab["autoencoder"].predict(lab["x_train"][:N_TEST][::-1], verbose=0)
    assert_fails(with_(lab, reconstructions=stale), "reconstructions", "is not what autoencoder gives for x_test")


def test_under_training_is_told_how_much_it_trained(lab):
    dae, _ = helpers.build_autoencoder()
    history = fit(
        dae,
        lab["x_train_noisy"][:1000],
        lab["x_train"][:1000],
        None,
        epochs=1,
        batch_size=256,
        optimizer=keras.optimizers.Adam(),
    )
    assert_fails(
        with_(lab, dae=dae, history=history), "dae_training", "it trained too little (1 epoch(s) of 4 batches, 4 steps"
    )


def bookkeeping(epochs=30, steps=469, run=None, optimizer_steps=None):
    """(a ModelInfo, its HistoryInfo) whose training's bookkeeping says these numbers."""
    run = epochs if run is None else run
    model = checks.ModelInfo(7, [], steps=run * steps if optimizer_steps is None else optimizer_steps)
    history = checks.HistoryInfo({"loss": np.linspace(0.3, 0.29, run)}, {"epochs": epochs, "steps": steps}, 7)
    return model, history


@pytest.mark.parametrize(
    "numbers, hint",
    [
        ({"epochs": 10}, "dae was trained for 10 epoch(s) (history has 10 losses): the card trains it for 30 epochs"),
        ({"epochs": 29}, "trained for 29 epoch(s)"),
        ({"epochs": 31}, "trained for 31 epoch(s)"),
        ({"steps": 1875}, "60,000 images in batches of 32 (Keras's default when batch_size is left out), not 128"),
        ({"steps": 235}, "batches of 256, not 128"),
        ({"steps": 128}, "at most 16,384 of the 60,000 training images in batches of 128: a part of the set"),
        ({"run": 12}, "history holds 12 epoch(s) of the 30 its fit was asked for: the training stopped early"),
        ({"optimizer_steps": 2 * 30 * 469}, "it was trained more than once"),
        ({"optimizer_steps": 469}, "its training is not the one this History records"),
    ],
    ids=["10", "29", "31", "batch-left-out", "batch-256", "part-of-the-set", "stopped-early", "twice", "other"],
)
def test_training_is_judged_by_its_bookkeeping(monkeypatch, numbers, hint):
    from checks.models import check_training
    from checks.verdicts import Failed

    monkeypatch.delenv(checks.spec.TRAINING_SETTING, raising=False)
    with pytest.raises(Failed) as failed:
        check_training(*bookkeeping(**numbers), 60000, "dae", "history")
    assert hint in str(failed.value), failed.value


def test_the_cards_training_passes_its_bookkeeping(monkeypatch):
    from checks.models import check_training

    monkeypatch.delenv(checks.spec.TRAINING_SETTING, raising=False)
    check_training(*bookkeeping(), 60000, "dae", "history")
    check_training(*bookkeeping(optimizer_steps=0), 60000, "dae", "history")  # compiled again after training
    check_training(*bookkeeping(10), 60000, "autoencoder", "ae_history")
    monkeypatch.setenv(checks.spec.TRAINING_SETTING, "1x256")  # a grader's other plan
    check_training(*bookkeeping(1, 235), 60000, "dae", "history")
    monkeypatch.setenv(checks.spec.TRAINING_SETTING, "any")  # no plan: the test suites' cheap keys
    check_training(*bookkeeping(3, 7), 60000, "dae", "history")


def test_training_on_the_test_set_is_caught(lab):
    dae, _ = helpers.build_autoencoder()
    history = fit(
        dae, lab["x_test_noisy"], lab["x_test"], (lab["x_test_noisy"], lab["x_test"]), epochs=30, batch_size=32
    )
    assert_fails(with_(lab, dae=dae, history=history), "dae_training", "dae was trained on the test set")


def test_validating_on_clean_images_is_caught(lab):
    dae, _ = helpers.build_autoencoder()
    history = fit(dae, lab["x_train_noisy"], lab["x_train"], (lab["x_test"], lab["x_test"]))
    assert_fails(with_(lab, dae=dae, history=history), "dae_training", "validated on clean images")


@pytest.fixture(scope="module")
def unclipped(lab):
    """The lab's variables from x_test_noisy on, with the noise left unclipped and a DAE trained on it."""
    ns = with_(
        lab, x_train_noisy=noisy(lab["x_train"], clip=False), x_test_noisy=noisy(lab["x_test"], seed=6, clip=False)
    )
    keras.utils.set_random_seed(3)
    ns["dae"], _ = helpers.build_autoencoder()
    ns["history"] = fit(ns["dae"], ns["x_train_noisy"], ns["x_train"], (ns["x_test_noisy"], ns["x_test"]))
    ns["x_test_denoised"] = ns["dae"].predict(ns["x_test_noisy"], verbose=0)
    ns["fig_results"] = helpers.plot_rows([ns["x_test_noisy"], ns["x_test_denoised"], ns["x_test"]], ["n", "d", "c"])
    ns["fig_loss"] = helpers.plot_history(ns["history"])
    return ns


def test_unclipped_noise_costs_only_the_noisy_data_task(unclipped):
    assert_fails(unclipped, "noisy_data", "clip them back to [0, 1]")
    for task in ("dae_model", "dae_training", "predictions", "view_results", "loss_curve"):
        assert checks.evaluate(task, unclipped).status == "passed", (task, checks.evaluate(task, unclipped))
    plt.close("all")


@pytest.mark.parametrize(
    "dae", [lambda: model(code_activation="sigmoid"), lambda: model(code=64)], ids=["code-sigmoid", "code-64"]
)
def test_another_architecture_costs_only_the_dae_model_task(lab, dae):
    dae = dae()  # a larger learning rate than the lab fixture's: at 0.003 a sigmoid code stays stuck at the mean image
    history = fit(
        dae,
        lab["x_train_noisy"],
        lab["x_train"],
        (lab["x_test_noisy"], lab["x_test"]),
        optimizer=keras.optimizers.Adam(0.01),
    )
    denoised = dae.predict(lab["x_test_noisy"], verbose=0)
    ns = with_(
        lab,
        dae=dae,
        history=history,
        x_test_denoised=denoised,
        fig_loss=helpers.plot_history(history),
        fig_results=helpers.plot_rows([lab["x_test_noisy"], denoised, lab["x_test"]], ["n", "d", "c"]),
    )
    assert checks.evaluate("dae_model", ns).status == "failed"
    for task in ("dae_training", "predictions", "view_results", "loss_curve"):
        assert checks.evaluate(task, ns).status == "passed", (task, checks.evaluate(task, ns))
    plt.close("all")


def test_a_dae_with_a_relu_output_costs_only_the_dae_model_task(lab):
    keras.utils.set_random_seed(1)  # its first weights, whatever ran before (a relu output may start half dead)
    # binary cross-entropy cannot train a relu output well: its loss says nothing of the training
    dae = model(out_activation="relu")
    history = fit(dae, lab["x_train_noisy"], lab["x_train"], (lab["x_test_noisy"], lab["x_test"]), epochs=1)
    ns = with_(lab, dae=dae, history=history)
    assert_fails(ns, "dae_model", "use activation='sigmoid'")
    result = checks.evaluate("dae_training", ns)
    # Passed, its loss put down to the relu output; or, for about 1 first weights in 8 (measured on the three
    # backends, seeds 0-3, 1 and 5 epochs), blocked on that same cause, when the outputs it kills make the training
    # look turned around: never another cause.
    passed = result.status == "passed" and "limited by its relu output layer" in result.message
    blocked = result.status == "blocked" and result.message.startswith("fix the dae_model task first: dae's output")
    assert passed or blocked, result


def test_a_dae_trained_on_noise_free_copies_is_blocked_on_the_noisy_data_task(lab):
    dae, _ = helpers.build_autoencoder()
    history = fit(dae, lab["x_train"], lab["x_train"], (lab["x_test"], lab["x_test"]))
    ns = with_(lab, dae=dae, history=history, x_train_noisy=lab["x_train"].copy(), x_test_noisy=lab["x_test"].copy())
    assert_fails(ns, "noisy_data", "x_train_noisy equals x_train: no noise was added")
    # a clean -> clean autoencoder is no DAE: judged on the lab's noise, it is blocked on the noise's mistake
    assert_blocked(ns, "dae_training", "noisy_data", "x_train_noisy equals x_train")


def test_figures_of_near_identical_outputs_are_matched_by_position(lab):
    flat = np.tile(lab["x_test_denoised"][:1], (N_TEST, 1)) + np.arange(N_TEST)[:, None] * 1e-6  # all within 1e-4
    fig = helpers.plot_rows([lab["x_test_noisy"], flat, lab["x_test"]], ["n", "d", "c"])
    assert checks.evaluate("view_results", with_(lab, x_test_denoised=flat, fig_results=fig)).status == "passed"
    plt.close("all")


def test_reads_hold_the_reads_of_every_prerequisite():
    for task, earlier in checks.PREREQUISITES.items():
        for other in earlier:
            assert set(checks.READS[other]) <= set(checks.READS[task]), (task, other)
            assert checks.TASKS.index(other) < checks.TASKS.index(task)


# ---------------------------------------------------------------- valid alternatives


def test_other_noise_code_with_the_same_statistics_passes(lab):
    rng = np.random.default_rng(11)
    ns = with_(
        lab,
        x_train_noisy=np.clip(lab["x_train"] + rng.normal(0, 0.5, lab["x_train"].shape), 0.0, 1.0),
        x_test_noisy=np.clip(lab["x_test"] + 0.5 * rng.standard_normal(lab["x_test"].shape), 0, 1),
    )
    assert checks.evaluate("noisy_data", ns).status == "passed"


def test_float64_data_passes(lab):
    ns = with_(
        lab,
        x_train=lab["train_images"].reshape(N_TRAIN, 784) / 255,
        x_test=lab["test_images"].reshape(N_TEST, 784) / 255,
    )
    assert checks.evaluate("data", ns).status == "passed"


def test_a_sequential_dae_with_an_adam_instance_batch_256_and_more_epochs_passes(lab):
    dae = keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(32),
            keras.layers.Activation("relu"),
            keras.layers.Dense(784, activation="sigmoid"),
        ]
    )
    history = fit(
        dae,
        lab["x_train_noisy"],
        lab["x_train"],
        (lab["x_test_noisy"], lab["x_test"]),
        epochs=15,
        batch_size=256,
        optimizer=keras.optimizers.Adam(0.003),
    )
    ns = with_(lab, dae=dae, history=history, x_test_denoised=dae.predict(lab["x_test_noisy"], verbose=0))
    for task in ("dae_model", "dae_training", "predictions"):
        assert checks.evaluate(task, ns).status == "passed", checks.evaluate(task, ns)


def test_figures_may_show_other_test_images_in_another_order(lab):
    picks = [250, 3, 77, 12, 199]
    rows = [lab["x_test_noisy"][picks], lab["x_test_denoised"][picks], lab["x_test"][picks]]
    ns = with_(
        lab,
        fig_clean=helpers.plot_rows(rows[2:], ["c"], n=5),
        fig_results=helpers.plot_rows(rows, ["n", "d", "c"], n=5),
    )
    assert checks.evaluate("view_results", ns).status == "passed", checks.evaluate("view_results", ns)
    plt.close("all")


def test_a_subclassed_dae_passes_the_model_check(lab):
    class Denoiser(keras.Model):
        def __init__(self):
            super().__init__()
            self.code = keras.layers.Dense(32, activation="relu")
            self.out = keras.layers.Dense(784, activation="sigmoid")

        def call(self, x):
            return self.out(self.code(x))

    assert checks.evaluate("dae_model", with_(lab, dae=Denoiser())).status == "passed"


def test_the_regular_autoencoder_trained_longer_passes(lab):
    autoencoder, encoder = helpers.build_autoencoder()
    ae_history = fit(
        autoencoder,
        lab["x_train"],
        lab["x_train"],
        (lab["x_test"], lab["x_test"]),
        epochs=12,
        batch_size=128,
        optimizer=keras.optimizers.Adam(0.003),
    )
    ns = with_(lab, autoencoder=autoencoder, encoder=encoder, ae_history=ae_history)
    assert checks.evaluate("regular_autoencoder", ns).status == "passed"


# ---------------------------------------------------------------- never raises


def odd_models():
    """Models a student might leave half-built or wrong."""
    two_outputs = keras.Input((784,))
    return [
        keras.Sequential(),
        keras.Sequential([keras.layers.Dense(3)]),
        keras.Model(two_outputs, [keras.layers.Dense(784)(two_outputs), keras.layers.Dense(32)(two_outputs)]),
        model(code=784, out_activation="linear"),
    ]


def odd_figures():
    """Figures with no images, a non-image, or random images."""
    empty = plt.figure()
    scatter, ax = plt.subplots()
    ax.scatter([1, 2], [3, 4])
    image, ax = plt.subplots()
    ax.imshow(np.random.default_rng(0).uniform(0, 1, (28, 28)))
    return [empty, scatter, image]


ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=4),
    st.lists(st.one_of(st.floats(), st.lists(st.integers(), max_size=2)), max_size=4),
    hnp.arrays(
        st.sampled_from(["uint8", "int64", "float16", "float32", "float64", "bool", "complex64", "U3"]),
        hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
    ),
    hnp.arrays(
        "float32",
        st.tuples(st.integers(1, 4), st.just(784)),
        elements=st.floats(-2, 2, width=32),
        fill=st.sampled_from([0.0, 0.5, 1.0, np.nan, np.inf]),
    ),
    st.sampled_from(["object", "dict", "model", "figure", "history"]),  # resolved in resolve()
)


def resolve(value, lab):
    """Turn the strategy's placeholders into objects hypothesis cannot build itself."""
    if isinstance(value, str) and value in ("object", "dict", "model", "figure", "history"):
        return {
            "object": object(),
            "dict": {"loss": [1.0]},
            "model": odd_models()[0],
            "figure": odd_figures()[2],
            "history": lab["ae_history"],
        }[value]
    return value


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    task=st.sampled_from(checks.TASKS),
    name=st.sampled_from(
        sorted(
            [
                "x_train",
                "x_test",
                "train_images",
                "test_images",
                "autoencoder",
                "encoder",
                "codes",
                "reconstructions",
                "fig_autoencoder",
                "x_train_noisy",
                "x_test_noisy",
                "dae",
                "history",
                "x_test_denoised",
                "fig_clean",
                "fig_results",
                "fig_loss",
                "ae_history",
            ]
        )
    ),
    value=ANY_VALUE,
    alone=st.booleans(),
)
def test_no_value_makes_a_check_raise(lab, task, name, value, alone):
    value = resolve(value, lab)
    ns = {name: value} if alone else with_(lab, **{name: value})
    result = checks.evaluate(task, ns)
    assert isinstance(result, checks.Result) and result.status in checks.STATUSES
    assert result.message and not result.message.startswith("the check could not inspect"), result
    plt.close("all")


@pytest.mark.parametrize("odd", range(4))
def test_odd_models_give_a_hint(lab, odd):
    for task, name in (
        ("regular_autoencoder", "autoencoder"),
        ("regular_autoencoder", "encoder"),
        ("dae_model", "dae"),
        ("dae_training", "dae"),
        ("predictions", "dae"),
        ("reconstructions", "encoder"),
    ):
        result = checks.evaluate(task, with_(lab, **{name: odd_models()[odd]}))
        assert result.status in ("failed", "blocked") and not result.message.startswith("the check could not"), (
            task,
            name,
            result,
        )


@pytest.mark.parametrize("odd", range(3))
def test_odd_figures_give_a_hint(lab, odd):
    for task, name in (
        ("view_results", "fig_clean"),
        ("view_results", "fig_results"),
        ("reconstructions", "fig_autoencoder"),
        ("loss_curve", "fig_loss"),
    ):
        result = checks.evaluate(task, with_(lab, **{name: odd_figures()[odd]}))
        assert result.status == "failed" and not result.message.startswith("the check could not"), (task, name, result)
    plt.close("all")


# ---------------------------------------------------------------- issue 21: hints for code written by hand


def test_every_hint_points_back_to_its_card(lab):
    result = checks.evaluate("noisy_data", with_(lab, x_test_noisy=lab["x_test"] + 0.5))
    assert result.message.endswith("; see the `noisy_data` card"), result.message
    result = checks.evaluate("predictions", with_(lab, dae="not a model"))
    assert result.status == "blocked" and result.message.endswith("; see the `dae_model` card"), result.message


def test_no_hint_holds_an_answer_line():
    import ast
    import inspect
    import re

    tree = ast.parse(inspect.getsource(checks))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    hints = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]
    answer = re.compile(r"\.(fit|predict|compile)\(|add_noise\(|plot_rows\(\[|plot_history\(\w|\w\s=\s\w+[.(\[]")
    assert [hint for hint in hints if answer.search(hint)] == []


def test_noise_added_in_place_is_named(lab):
    noisy_train = noisy(lab["x_train"])
    ns = with_(lab, x_train=noisy_train, x_train_noisy=noisy_train)  # x_train_noisy = x_train; x_train_noisy += ...
    assert_fails(ns, "noisy_data", "x_train itself holds noise now: the noise was added in place")
    unclipped = noisy(lab["x_train"], clip=False)  # x_train += noise; x_train_noisy = np.clip(x_train, 0, 1)
    ns = with_(lab, x_train=unclipped, x_train_noisy=np.clip(unclipped, 0, 1))
    assert_fails(ns, "noisy_data", "added in place")
    # train_images deleted: the lab's own images, which the checks load, still show x_train clean (no noise at all)
    without_images = with_(lab, x_train_noisy=lab["x_train"], train_images=None)
    assert_fails(without_images, "noisy_data", "no noise was added; the card's noise")


def test_the_same_noise_in_both_sets_is_caught(lab):
    draw = lambda shape: 0.5 * np.random.default_rng(7).standard_normal(shape)  # noqa: E731  (seeded again each time)
    ns = with_(
        lab,
        x_train_noisy=np.clip(lab["x_train"] + draw(lab["x_train"].shape), 0, 1),
        x_test_noisy=np.clip(lab["x_test"] + draw(lab["x_test"].shape), 0, 1),
    )
    assert_fails(ns, "noisy_data", "x_test_noisy has the same noise as x_train_noisy")
    one_pattern = np.clip(lab["x_test"] + draw((784,)), 0, 1)
    assert_fails(with_(lab, x_test_noisy=one_pattern), "noisy_data", "every image of x_test_noisy has the same noise")


def test_noise_on_data_of_another_scale_is_judged_as_noise(lab):
    twice = lab["x_train"] / 255
    ns = with_(lab, x_train=twice, x_train_noisy=noisy(twice))
    assert checks.evaluate("data", ns).status == "failed"
    assert checks.evaluate("noisy_data", ns).status == "passed", checks.evaluate("noisy_data", ns)
    unscaled = lab["train_images"].reshape(N_TRAIN, -1).astype("float32")
    ns = with_(lab, x_train=unscaled, x_train_noisy=noisy(unscaled))
    assert checks.evaluate("noisy_data", ns).status == "passed", checks.evaluate("noisy_data", ns)
    assert_fails(with_(ns, x_train_noisy=noisy(unscaled, 0.3)), "noisy_data", "factor 0.30")


def test_dae_trained_with_inputs_and_targets_swapped_is_named(lab):
    dae, _ = helpers.build_autoencoder()
    history = fit(dae, lab["x_train"], lab["x_train_noisy"], (lab["x_test"], lab["x_test_noisy"]))
    assert_fails(with_(lab, dae=dae, history=history), "dae_training", "its inputs and targets are swapped")


def test_a_dae_trained_without_validation_is_caught(lab):
    dae, _ = helpers.build_autoencoder()
    history = fit(dae, lab["x_train_noisy"], lab["x_train"], None)
    assert_fails(with_(lab, dae=dae, history=history), "dae_training", "history has no val_loss")


def test_predictions_from_the_training_set_are_named(lab):
    from_train = lab["dae"].predict(lab["x_train_noisy"], verbose=0)
    assert_fails(with_(lab, x_test_denoised=from_train), "predictions", "predicted from the training images")
    assert_fails(with_(lab, x_test_denoised=from_train[:N_TEST]), "predictions", "(x_train_noisy)")


def test_figure_rows_out_of_order_and_a_missing_validation_curve_are_named(lab):
    shuffled = helpers.plot_rows([lab["x_test"], lab["x_test_noisy"], lab["x_test_denoised"]], ["c", "n", "d"])
    assert_fails(with_(lab, fig_results=shuffled), "view_results", "rows are in another order")
    upside_down = helpers.plot_rows([lab["reconstructions"], lab["x_test"]], ["r", "o"])
    assert_fails(with_(lab, fig_autoencoder=upside_down), "reconstructions", "rows are in another order")
    fig, ax = plt.subplots()
    ax.plot(lab["history"].history["loss"])
    assert_fails(with_(lab, fig_loss=fig), "loss_curve", "fig_loss has no validation curve")
    fig, ax = plt.subplots()  # a loss figure drawn from an earlier training: both curves, other numbers
    for key in ("loss", "val_loss"):
        ax.plot(np.asarray(lab["history"].history[key]) + 0.05)
    assert_fails(with_(lab, fig_loss=fig), "loss_curve", "drawn from an earlier training")
    fig, ax = plt.subplots()  # the training loss drawn twice, once labelled validation (a copy-paste slip)
    for label in ("training", "validation"):
        ax.plot(lab["history"].history["loss"], label=label)
    assert_fails(with_(lab, fig_loss=fig), "loss_curve", "draws history.history['loss'] twice: its validation curve")
    fig, ax = plt.subplots()  # the stale-predictions case of reconstructions: x_test changed after the cell ran
    changed = np.clip(lab["x_test"] + 0.1, 0, 1).astype("float32")
    assert_fails(with_(lab, x_test=changed), "reconstructions", "or x_test changed")
    plt.close("all")


def test_a_noisy_set_made_in_place_still_shows_in_the_figures(lab):
    same = lab["x_test_noisy"]  # x_test is x_test_noisy: the figures' rows could be either
    ns = with_(
        lab,
        x_test=same,
        fig_clean=helpers.plot_rows([same], ["clean"]),
        fig_results=helpers.plot_rows([same, lab["x_test_denoised"], same], ["n", "d", "c"]),
    )
    assert checks.evaluate("view_results", ns).status == "passed", checks.evaluate("view_results", ns)
    plt.close("all")


# ---------------------------------------------------------------- issue 27: no quality bar can be skipped


def train_cheaply(inputs, targets, batches=None, seed=0, validation=None):
    """A lab-architecture model trained as the corpus does (one epoch in batches of 256, Adam(0.01)) or on `batches` only."""
    keras.utils.set_random_seed(seed)
    model, encoder = helpers.build_autoencoder()
    n = len(inputs) if batches is None else 256 * batches
    history = fit(model, inputs[:n], targets[:n], validation, seed, 1, 256, keras.optimizers.Adam(0.01))
    return model, encoder, history


@pytest.fixture(scope="module")
def trained():
    """Honest variables (8,192 training images) with a cheaply trained pair of models, and the same with one batch each."""
    (train_images, _), (test_images, _) = helpers.load_dataset()
    ns = {"train_images": train_images[:8192], "test_images": test_images[:1000], "DATASET": "fashion_mnist"}
    ns["x_train"], ns["x_test"] = helpers.prepare_images(ns["train_images"]), helpers.prepare_images(ns["test_images"])
    rng = np.random.default_rng(2)
    ns["x_train_noisy"] = helpers.add_noise(ns["x_train"], 0.5, rng)
    ns["x_test_noisy"] = helpers.add_noise(ns["x_test"], 0.5, rng)
    snapshots = {}
    for label, batches in (("cheap", None), ("one batch", 1)):
        models = dict(ns)
        models["autoencoder"], models["encoder"], models["ae_history"] = train_cheaply(
            ns["x_train"], ns["x_train"], batches, 1, (ns["x_test"], ns["x_test"])
        )
        models["dae"], _, models["history"] = train_cheaply(
            ns["x_train_noisy"], ns["x_train"], batches, 3, (ns["x_test_noisy"], ns["x_test"])
        )
        snapshots[label] = checks.snapshot(models, set().union(*checks.READS.values()))
    clean_dae, _, history = train_cheaply(ns["x_train"], ns["x_train"], None, 4, (ns["x_test_noisy"], ns["x_test"]))
    snapshots["clean to clean"] = {
        **snapshots["cheap"],
        **checks.snapshot({"dae": clean_dae, "history": history}, ("dae", "history")),
    }
    return snapshots


def faked(info, **fields):
    """A copy of a ModelInfo with some fields replaced (the weights kept)."""
    import copy

    info = copy.copy(info)
    info._rebuilt = None
    for name, value in fields.items():
        setattr(info, name, value)
    return info


def other_output(info, activation):
    """A ModelInfo whose output layer claims another activation."""
    *first, (units, _, kernel, bias, ident) = info.dense
    return faked(info, dense=(*first, (units, activation, kernel, bias, ident)))


def fake_history(snap, model):
    """A History that says the lab's training went well."""
    return checks.HistoryInfo(
        {"loss": np.linspace(0.35, 0.29, 30), "val_loss": np.linspace(0.34, 0.30, 30)},
        {"epochs": 30, "steps": 469},
        snap[model].ident,
    )


MANIPULATIONS = {  # everything a replaced export can change but the models' weights
    "x_train/255": lambda s: {"x_train": s["x_train"] / 255},
    "x_test/255": lambda s: {"x_test": s["x_test"] / 255},
    "both/255": lambda s: {"x_train": s["x_train"] / 255, "x_test": s["x_test"] / 255},
    "both*255": lambda s: {"x_train": s["x_train"] * 255, "x_test": s["x_test"] * 255},
    "both*0.5": lambda s: {"x_train": s["x_train"] * 0.5, "x_test": s["x_test"] * 0.5},
    "deleted": lambda s: {"x_train": None, "x_test": None},
    "x_test deleted": lambda s: {"x_test": None},
    "zeros": lambda s: {"x_train": np.zeros_like(s["x_train"]), "x_test": np.zeros_like(s["x_test"])},
    "random": lambda s: {
        name: np.random.default_rng(0).uniform(0, 1, s[name].shape).astype("float32") for name in ("x_train", "x_test")
    },
    "other images": lambda s: {"x_test": s["x_train"][: len(s["x_test"])]},
    "swapped": lambda s: {"x_train": s["x_test"], "x_test": s["x_train"], "x_train_noisy": s["x_test_noisy"]},
    "noisy = clean": lambda s: {"x_train_noisy": s["x_train"], "x_test_noisy": s["x_test"]},
    "noisy zeros": lambda s: {"x_train_noisy": np.zeros_like(s["x_train"]), "x_test_noisy": np.zeros_like(s["x_test"])},
    "noisy deleted": lambda s: {"x_train_noisy": None, "x_test_noisy": None},
    **{
        f"noise {factor}": lambda s, factor=factor: {
            "x_train_noisy": helpers.add_noise(s["x_train"], factor, 1),
            "x_test_noisy": helpers.add_noise(s["x_test"], factor, 2),
        }
        for factor in (0.02, 0.1, 0.2, 1.0)
    },
    "noise unclipped": lambda s: {"x_test_noisy": helpers.add_noise(s["x_test"], 0.5, 2, clip=False)},
    "DATASET unknown": lambda s: {"DATASET": "cifar10"},
    "DATASET deleted": lambda s: {"DATASET": None},
    "models say trained": lambda s: {
        name: faked(s[name], steps=30 * 469, compiled=True, adam=True, loss="binary_crossentropy", optimizer="adam")
        for name in ("autoencoder", "dae")
    },
    "history faked": lambda s: {"history": fake_history(s, "dae"), "ae_history": fake_history(s, "autoencoder")},
    "history without val_loss": lambda s: {
        "history": checks.HistoryInfo({"loss": s["history"].history["loss"]}, {}, s["history"].model)
    },
    "dae output relu": lambda s: {"dae": other_output(s["dae"], "relu")},
    "dae output linear": lambda s: {"dae": other_output(s["dae"], "linear")},
}


def manipulated(snap, name):
    """The snapshot with one manipulation applied (None deletes a variable)."""
    changed = {**snap, **MANIPULATIONS[name](snap)}
    return {key: value for key, value in changed.items() if value is not None}


def test_honestly_trained_models_pass(trained):
    for task in ("regular_autoencoder", "dae_training"):
        assert checks.judge(task, trained["cheap"]).status == "passed", (task, checks.judge(task, trained["cheap"]))


@pytest.mark.parametrize("name", [*MANIPULATIONS, "all at once"])
def test_no_quality_bar_can_be_skipped(trained, name):
    snap = trained["one batch"]
    if name == "all at once":
        for other in ("both/255", "noisy = clean", "models say trained", "history faked", "dae output relu"):
            snap = manipulated(snap, other)
    else:
        snap = manipulated(snap, name)
    for task in ("regular_autoencoder", "dae_training"):
        assert checks.judge(task, snap).status != "passed", (task, checks.judge(task, snap))


@pytest.mark.parametrize("name", ["noisy = clean", "noisy deleted", "noise 0.02", "noise 0.1", "noise 0.2"])
def test_a_clean_to_clean_autoencoder_never_passes_as_a_dae(trained, name):
    result = checks.judge("dae_training", manipulated(trained["clean to clean"], name))
    assert result.status != "passed", result


# ---------------------------------------------------------------- issue 27: the checks' remaining misjudgements


@pytest.mark.parametrize("shape", [lambda x: (len(x), 1), lambda x: (1, 1)], ids=["per-image", "one-draw"])
def test_noise_shared_by_an_images_pixels_is_named(lab, shape):
    rng = np.random.default_rng(8)
    x = lab["x_train"]
    shared = np.clip(x + 0.5 * rng.standard_normal(shape(x)), 0, 1).astype("float32")
    result = checks.evaluate("noisy_data", with_(lab, x_train_noisy=shared))
    assert result.status == "failed" and "each pixel gets its own draw" in result.message, result
    assert "not normally distributed" not in result.message


def test_validating_against_noisy_targets_is_caught(lab):
    dae, _ = helpers.build_autoencoder()
    history = fit(dae, lab["x_train_noisy"], lab["x_train"], (lab["x_test_noisy"], lab["x_test_noisy"]))
    ns = with_(lab, dae=dae, history=history)
    assert_fails(ns, "dae_training", "validated against noisy targets")
    assert_fails(ns, "dae_training", "its targets the clean ones")


def test_noise_with_a_shifted_mean_never_fails_dae_training_with_its_own_hint(lab):
    rng = np.random.default_rng(9)
    shifted = {
        name: np.clip(lab[name] + 0.5 * rng.normal(0.5, 1.0, lab[name].shape), 0, 1) for name in ("x_train", "x_test")
    }
    dae, _ = helpers.build_autoencoder()
    history = fit(dae, shifted["x_train"], lab["x_train"], (shifted["x_test"], lab["x_test"]))
    ns = with_(lab, dae=dae, history=history, x_train_noisy=shifted["x_train"], x_test_noisy=shifted["x_test"])
    assert checks.evaluate("noisy_data", ns).status == "failed"
    result = checks.evaluate("dae_training", ns)
    assert result.status == "passed" or result.message.startswith("fix the noisy_data task first: "), result


def test_predictions_made_before_the_noise_was_drawn_again_name_that_cause(lab):
    redrawn = noisy(lab["x_test"], seed=9)
    result = checks.evaluate("predictions", with_(lab, x_test_noisy=redrawn))
    assert result.status == "failed" and "x_test_noisy changed" in result.message, result
    assert "trained again" in result.message


def test_hints_point_at_the_idea_not_the_line_to_type(lab):
    from_clean = lab["dae"].predict(lab["x_test"], verbose=0)
    result = checks.evaluate("predictions", with_(lab, x_test_denoised=from_clean))
    assert "predict from" not in result.message and "x_test_noisy" not in result.message, result
    shuffled = helpers.plot_rows([lab["x_test"], lab["x_test_noisy"], lab["x_test_denoised"]], ["c", "n", "d"])
    result = checks.evaluate("view_results", with_(lab, fig_results=shuffled))
    assert "rows are in another order" in result.message and "what the DAE was given" in result.message, result
    assert "x_test_noisy, x_test_denoised, x_test" not in result.message, result
    plt.close("all")
