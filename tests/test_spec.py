"""Generated from checks/spec.py: for each card, answers written in the other ways Keras allows (name strings, class
names, objects, Sequential and Activation layers, initialisers, callbacks, re-compiling after training, a test subset
for validation, pyplot figures, data prepared by hand) must score 9/9, and one mistake per stated setting must fail
its own task only, with a hint naming it. In-process and cheap: two models are trained once (one epoch on 8,192
images), and each variant copies their weights and fits one step, so the whole file runs in about a minute.
"""

import matplotlib

matplotlib.use("Agg")

import helpers

import keras
import matplotlib.pyplot as plt
import numpy as np
import pytest

import checks
from checks.spec import SPEC

pytestmark = pytest.mark.heavy  # the grader's judgement of whole labs, which runs on the default backend (test_checks covers the checks on every backend): CI runs it on TensorFlow only

N_TRAIN, N_TEST = 8192, 1000


def functional(code="relu", out="sigmoid", init="glorot_uniform"):
    inputs = keras.Input((784,))
    code_layer = keras.layers.Dense(32, activation=code, kernel_initializer=init)(inputs)
    return keras.Model(inputs, keras.layers.Dense(784, activation=out, kernel_initializer=init)(code_layer))


def sequential_layers():
    return keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(32),
            keras.layers.ReLU(),
            keras.layers.Dense(784),
            keras.layers.Activation("sigmoid"),
        ]
    )


@pytest.fixture(scope="module")
def base():
    """An honest lab's variables (8,192 training images), with a cheaply trained autoencoder and DAE."""
    (train_images, _), (test_images, _) = helpers.load_dataset()
    ns = {"train_images": train_images[:N_TRAIN], "test_images": test_images[:N_TEST], "DATASET": "fashion_mnist"}
    ns["x_train"], ns["x_test"] = helpers.prepare_images(ns["train_images"]), helpers.prepare_images(ns["test_images"])
    rng = np.random.default_rng(2)
    ns["x_train_noisy"] = helpers.add_noise(ns["x_train"], 0.5, rng)
    ns["x_test_noisy"] = helpers.add_noise(ns["x_test"], 0.5, rng)
    keras.utils.set_random_seed(1)
    ns["autoencoder"], ns["encoder"] = helpers.build_autoencoder()
    ns["autoencoder"].compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
    ns["ae_history"] = ns["autoencoder"].fit(
        ns["x_train"], ns["x_train"], epochs=1, batch_size=256, validation_data=(ns["x_test"], ns["x_test"]), verbose=0
    )
    ns["codes"] = ns["encoder"].predict(ns["x_test"], verbose=0)
    ns["reconstructions"] = ns["autoencoder"].predict(ns["x_test"], verbose=0)
    ns["fig_autoencoder"] = helpers.plot_rows([ns["x_test"], ns["reconstructions"]], ["o", "r"])
    ns["dae"], _ = helpers.build_autoencoder(name="dae")
    ns["dae"].compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
    ns["history"] = ns["dae"].fit(
        ns["x_train_noisy"],
        ns["x_train"],
        epochs=1,
        batch_size=256,
        validation_data=(ns["x_test_noisy"], ns["x_test"]),
        verbose=0,
    )
    finish(ns)
    yield ns
    plt.close("all")


def finish(ns):
    """The tasks after dae_training, from ns's dae and history."""
    ns["x_test_denoised"] = ns["dae"].predict(ns["x_test_noisy"], verbose=0)
    ns["fig_clean"] = helpers.plot_rows([ns["x_test"]], ["clean"])
    ns["fig_results"] = helpers.plot_rows([ns["x_test_noisy"], ns["x_test_denoised"], ns["x_test"]], ["n", "d", "c"])
    ns["fig_loss"] = helpers.plot_history(ns["history"])


def refit(
    ns, which, build=None, loss="binary_crossentropy", optimizer="adam", validation="test", recompile=False, **fit
):
    """ns with its autoencoder or dae replaced: a model of `build` holding the trained weights, compiled with these
    spellings and fitted one step (validated as `validation` says), every later variable made again from it."""
    ns = dict(ns)
    name, history_name = ("dae", "history") if which == "dae" else ("autoencoder", "ae_history")
    inputs, targets, val = (
        ("x_train_noisy", "x_train", ("x_test_noisy", "x_test"))
        if which == "dae"
        else ("x_train", "x_train", ("x_test", "x_test"))
    )
    model = build() if build else helpers.build_autoencoder()[0]
    model.set_weights(ns[name].get_weights())
    model.compile(optimizer=optimizer, loss=loss)
    kwargs = {"epochs": 1, "batch_size": 256, "verbose": 0, **fit}
    if validation == "test":
        kwargs["validation_data"] = (ns[val[0]], ns[val[1]])
    elif validation == "subset":
        kwargs["validation_data"] = (ns[val[0]][:256], ns[val[1]][:256])
    elif validation == "split":
        kwargs["validation_split"] = 0.1
    n = len(ns[inputs]) if validation == "split" else 256
    ns[history_name] = model.fit(ns[inputs][:n], ns[targets][:n], **kwargs)
    if recompile:  # compiled again to add a metric: a new optimizer, whose step count is 0
        model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["mse"])
    ns[name] = model
    if which == "dae":
        finish(ns)
    else:
        ns["encoder"] = keras.Model(model.inputs, model.layers[1].output)
        ns["codes"] = ns["encoder"].predict(ns["x_test"], verbose=0)
        ns["reconstructions"] = model.predict(ns["x_test"], verbose=0)
        ns["fig_autoencoder"] = helpers.plot_rows([ns["x_test"], ns["reconstructions"]], ["o", "r"])
    return ns


def pyplot_rows(rows):
    """A figure drawn with pyplot by hand: one row of axes per array, ten images each."""
    fig, axes = plt.subplots(len(rows), 10, squeeze=False)
    for row, images in zip(axes, rows):
        for ax, image in zip(row, images[:10]):
            ax.imshow(np.asarray(image).reshape(28, 28), cmap="gray", vmin=0, vmax=1)
    return fig


BOTH = ("autoencoder", "dae")
# (setting, name) -> change(ns): answers the card allows, written another way
VALID = {
    **{
        (("loss", which), f"{which}-loss-{label}"): (lambda ns, w=which, loss=loss: refit(ns, w, loss=loss()))
        for which in BOTH
        for label, loss in {
            "name": lambda: "binary_crossentropy",
            "class-name": lambda: "BinaryCrossentropy",
            "bce": lambda: "bce",
            "object": lambda: keras.losses.BinaryCrossentropy(),
            "function": lambda: keras.losses.binary_crossentropy,
        }.items()
    },
    **{
        (("optimizer", which), f"{which}-optimizer-{label}"): (lambda ns, w=which, o=opt: refit(ns, w, optimizer=o()))
        for which in BOTH
        for label, opt in {
            "name": lambda: "adam",
            "class-name": lambda: "Adam",
            "object": lambda: keras.optimizers.Adam(),
            "object-lr": lambda: keras.optimizers.Adam(learning_rate=1e-4),
        }.items()
    },
    **{
        (("trained", which), f"{which}-recompiled-after-training"): (lambda ns, w=which: refit(ns, w, recompile=True))
        for which in BOTH
    },
    **{
        (("validation", which), f"{which}-validated-on-a-test-subset"): (
            lambda ns, w=which: refit(ns, w, validation="subset")
        )
        for which in BOTH
    },
    **{
        (("trained", which), f"{which}-callbacks"): (
            lambda ns, w=which: refit(ns, w, callbacks=[keras.callbacks.TerminateOnNaN(), keras.callbacks.History()])
        )
        for which in BOTH
    },
    (("architecture", "dae"), "dae-sequential-relu-activation-layers"): lambda ns: refit(ns, "dae", sequential_layers),
    (("architecture", "dae"), "dae-activation-functions-initialiser"): lambda ns: refit(
        ns, "dae", lambda: functional(keras.activations.relu, keras.activations.sigmoid, "he_normal")
    ),
    (("architecture", "dae"), "dae-activation-layer-objects"): lambda ns: refit(
        ns, "dae", lambda: functional(keras.layers.ReLU(), keras.layers.Activation("sigmoid"))
    ),
    (("scale", "data"), "data-by-hand-float64"): lambda ns: {
        **ns,
        "x_train": ns["train_images"].reshape(N_TRAIN, -1) / 255.0,
        "x_test": ns["test_images"].reshape(N_TEST, -1) / 255.0,
    },
    (("rows", "figures"), "figures-pyplot-by-hand"): lambda ns: {
        **ns,
        "fig_clean": pyplot_rows([ns["x_test"]]),
        "fig_results": pyplot_rows([ns["x_test_noisy"], ns["x_test_denoised"], ns["x_test"]]),
        "fig_autoencoder": pyplot_rows([ns["x_test"], ns["reconstructions"]]),
    },
    (("source", "predictions"), "predictions-by-calling-the-model"): lambda ns: {
        **ns,
        "x_test_denoised": keras.ops.convert_to_numpy(ns["dae"](ns["x_test_noisy"])),
    },
}


def with_predictions(ns, denoised):
    """ns with x_test_denoised replaced, and fig_results drawn from it (the figure shows the student's own array)."""
    fig = helpers.plot_rows([ns["x_test_noisy"], denoised, ns["x_test"]], ["n", "d", "c"])
    return {**ns, "x_test_denoised": denoised, "fig_results": fig}


def task_of(which, dae_task="dae_training"):
    return dae_task if which == "dae" else "regular_autoencoder"


# name -> (change(ns), the task that fails, words its hint contains)
MISTAKES = {
    **{
        f"{which}-loss-{label}": (lambda ns, w=which, loss=loss: refit(ns, w, loss=loss()), task_of(which), "loss")
        for which in BOTH
        for label, loss in {
            "mse": lambda: "mse",
            "class-name-mse": lambda: "MeanSquaredError",
            "from-logits": lambda: keras.losses.BinaryCrossentropy(from_logits=True),
        }.items()
    },
    **{
        f"{which}-optimizer-{label}": (
            lambda ns, w=which, o=opt: refit(ns, w, optimizer=o()),
            task_of(which),
            "the card's optimizer is adam",
        )
        for which in BOTH
        for label, opt in {"sgd": lambda: "SGD", "adamw": lambda: "AdamW", "rmsprop": keras.optimizers.RMSprop}.items()
    },
    **{
        f"{which}-validation-split": (
            lambda ns, w=which: refit(ns, w, validation="split"),
            task_of(which),
            "validation_split=0.1",
        )
        for which in BOTH
    },
    **{
        f"{which}-no-validation": (lambda ns, w=which: refit(ns, w, validation=None), task_of(which), "no val_loss")
        for which in BOTH
    },
    "ae-history-not-kept": (
        lambda ns: {k: v for k, v in ns.items() if k != "ae_history"},
        "regular_autoencoder",
        "History was not kept",
    ),
    "data-divided-by-256": (
        lambda ns: {
            **ns,
            "x_train": ns["train_images"].reshape(N_TRAIN, -1).astype("float32") / 256,
            "x_test": ns["test_images"].reshape(N_TEST, -1).astype("float32") / 256,
        },
        "data",
        "divided by 256 instead of 255",
    ),
    "reconstructions-times-255": (
        lambda ns: {**ns, "reconstructions": ns["reconstructions"] * 255},
        "reconstructions",
        "times 255",
    ),
    "predictions-times-255": (
        lambda ns: with_predictions(ns, ns["x_test_denoised"] * 255),
        "predictions",
        "times 255",
    ),
    "predictions-uint8": (
        lambda ns: with_predictions(ns, (ns["x_test_denoised"] * 255).astype("uint8")),
        "predictions",
        "scale mistake",
    ),
    "fig-clean-uint8": (
        lambda ns: {**ns, "fig_clean": helpers.plot_rows([ns["test_images"].reshape(N_TEST, -1)], ["clean"])},
        "view_results",
        "x_test times 255",
    ),
    "fig-results-uint8-clean-row": (
        lambda ns: {
            **ns,
            "fig_results": helpers.plot_rows(
                [ns["x_test_noisy"], ns["x_test_denoised"], ns["test_images"].reshape(N_TEST, -1)], ["n", "d", "c"]
            ),
        },
        "view_results",
        "scale mistake",
    ),
}
# a mistake in the data whose later tasks read the same arrays: they are judged relative to them
FOLLOWS = {"data-divided-by-256": "x_train_noisy and x_test_noisy drawn on the student's own x_train and x_test"}


def redo_noise(ns):
    """Every variable after the data task made again from the changed x_train and x_test (models kept)."""
    rng = np.random.default_rng(3)
    ns = {
        **ns,
        "x_train_noisy": np.clip(ns["x_train"] + 0.5 * rng.standard_normal(ns["x_train"].shape), 0, 1),
        "x_test_noisy": np.clip(ns["x_test"] + 0.5 * rng.standard_normal(ns["x_test"].shape), 0, 1),
        "codes": ns["encoder"].predict(ns["x_test"], verbose=0),
        "reconstructions": ns["autoencoder"].predict(ns["x_test"], verbose=0),
    }
    ns["fig_autoencoder"] = helpers.plot_rows([ns["x_test"], ns["reconstructions"]], ["o", "r"])
    finish(ns)
    return ns


def verdicts(ns):
    return {task: checks.evaluate(task, ns) for task in checks.TASKS}


# For each setting the spec states: the single mistakes that must fail it, generated here (MISTAKES) or written in
# tests/test_checks.py ("test_checks.NAME"), so that no setting of a card goes unjudged
MISTAKES_OF = {
    ("data", "shape"): ["test_checks.test_data_mistakes"],
    ("data", "scale"): ["data-divided-by-256", "test_checks.test_data_mistakes"],
    ("data", "source"): ["test_checks.test_data_mistakes"],
    ("regular_autoencoder", "architecture"): ["test_checks.test_architecture_mistakes"],
    ("regular_autoencoder", "loss"): ["autoencoder-loss-mse", "autoencoder-loss-class-name-mse"],
    ("regular_autoencoder", "optimizer"): ["autoencoder-optimizer-sgd", "autoencoder-optimizer-adamw"],
    ("regular_autoencoder", "trained"): ["test_checks.test_a_model_never_fitted_is_caught"],
    ("regular_autoencoder", "kept"): ["ae-history-not-kept"],
    ("regular_autoencoder", "validation"): ["autoencoder-validation-split", "autoencoder-no-validation"],
    ("reconstructions", "source"): ["test_checks.test_reconstructions_must_come_from_the_test_set"],
    ("reconstructions", "scale"): ["reconstructions-times-255"],
    ("reconstructions", "rows"): ["test_checks.test_figures_must_show_the_right_arrays"],
    ("noisy_data", "noise"): ["test_checks.test_noise_mistakes"],
    ("noisy_data", "fresh"): ["test_checks.test_the_same_noise_in_both_sets_is_caught"],
    ("dae_model", "architecture"): ["test_checks.test_another_architecture_costs_only_the_dae_model_task"],
    ("dae_training", "loss"): ["dae-loss-mse", "dae-loss-from-logits"],
    ("dae_training", "optimizer"): ["dae-optimizer-sgd", "dae-optimizer-rmsprop"],
    ("dae_training", "pairs"): ["test_checks.test_dae_trained_clean_to_clean_is_caught"],
    ("dae_training", "trained"): ["test_checks.test_under_training_is_told_how_much_it_trained"],
    ("dae_training", "kept"): ["test_checks.test_history_must_be_kept_and_belong_to_the_dae"],
    ("dae_training", "validation"): ["dae-validation-split", "dae-no-validation"],
    ("predictions", "source"): ["test_checks.test_predictions_must_come_from_the_noisy_test_set"],
    ("predictions", "scale"): ["predictions-times-255", "predictions-uint8"],
    ("view_results", "rows"): ["test_checks.test_figures_must_show_the_right_arrays"],
    ("view_results", "scale"): ["fig-clean-uint8", "fig-results-uint8-clean-row"],
    ("loss_curve", "curves"): ["test_checks.test_figure_rows_out_of_order_and_a_missing_validation_curve_are_named"],
}


def test_every_setting_of_the_spec_has_mistakes_that_fail_its_own_task():
    import test_checks

    assert {(s.task, s.setting) for s in SPEC} == set(MISTAKES_OF), "a setting of the spec has no mistake, or is gone"
    for (task, setting), names in MISTAKES_OF.items():
        for name in names:
            if name.startswith("test_checks."):
                assert callable(getattr(test_checks, name.removeprefix("test_checks."), None)), name
            else:
                assert MISTAKES[name][1] == task, (name, task, setting)
    assert {("validation", "autoencoder"), ("validation", "dae")} <= {setting for setting, _ in VALID}


@pytest.mark.parametrize("key", list(VALID), ids=[name for _, name in VALID])
def test_a_valid_variant_scores_full_marks(base, key):
    ns = VALID[key](base)
    results = verdicts(ns)
    assert {t: r.status for t, r in results.items()} == {t: "passed" for t in checks.TASKS}, {
        t: r for t, r in results.items() if r.status != "passed"
    }
    plt.close("all")


@pytest.mark.parametrize("name", list(MISTAKES))
def test_a_mistake_fails_its_own_task_only_naming_its_cause(base, name):
    change, task, words = MISTAKES[name]
    ns = change(base)
    if name in FOLLOWS:
        ns = redo_noise(ns)
    results = verdicts(ns)
    assert results[task].status == "failed", (task, results[task])
    assert words in results[task].message, results[task].message
    assert "run its cell again" not in results[task].message, results[task].message
    others = {t: r for t, r in results.items() if t != task and r.status != "passed"}
    assert all(r.status == "blocked" and f"fix the {task} task first" in r.message for r in others.values()), others
    plt.close("all")


def test_val_loss_matches_the_models_own_loss_to_the_tolerance(base):
    from checks.noise import VAL_MATCH, row_losses

    snap = checks.snapshot(base, ("dae", "autoencoder"))
    for model, history, inputs, targets in (
        (snap["dae"], base["history"], "x_test_noisy", "x_test"),
        (snap["autoencoder"], base["ae_history"], "x_test", "x_test"),
    ):
        loss = float(np.mean(row_losses(model, "m", base[targets], base[inputs])))
        assert abs(loss - history.history["val_loss"][-1]) < VAL_MATCH / 5
