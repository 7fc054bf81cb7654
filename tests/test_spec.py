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
import checks.spec
from checks.spec import SPEC

pytestmark = pytest.mark.heavy  # the grader's judgement of whole labs, which runs on the default backend (test_checks covers the checks on every backend): CI runs it on TensorFlow only

N_PRETRAIN, N_TRAIN, N_TEST = 8192, 256, 1000  # the models learn on 8,192 images, then train as the cards say on 256
CARD = checks.spec.TRAINING  # the cards' epochs and batch, judged from the bookkeeping


@pytest.fixture(scope="module", autouse=True)
def card_training():
    """The cards' own training plan is judged here (tests/conftest.py sets the suite's cheap one)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(checks.spec.TRAINING_SETTING, raising=False)
        yield


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


def with_layer(make, where="between"):
    """A builder of the lab's network with one more layer, made by make(), between the code and the output or after
    the output."""

    def build():
        inputs = keras.Input((784,))
        x = keras.layers.Dense(32, activation="relu")(inputs)
        x = make()(x) if where == "between" else x
        x = keras.layers.Dense(784, activation="sigmoid")(x)
        return keras.Model(inputs, make()(x) if where == "after" else x)

    return build


def output_only():
    """The network with its code layer missing: 784 -> 784 (sigmoid)."""
    inputs = keras.Input((784,))
    return keras.Model(inputs, keras.layers.Dense(784, activation="sigmoid")(inputs))


def card_fit(model, inputs, targets, which, **fit):
    """Compile model (adam, BCE) and fit it as its card says (epochs, batch of 128), fit's keywords overriding."""
    plan = CARD[which]
    model.compile(optimizer="adam", loss="binary_crossentropy")
    kwargs = {"epochs": plan.epochs, "batch_size": plan.batch, "verbose": 0, **fit}
    return model.fit(inputs, targets, **kwargs)


@pytest.fixture(scope="module")
def base():
    """An honest lab's variables (256 training images): an autoencoder and a DAE that learned cheaply on 8,192
    images, then trained on the lab's training set for the cards' epochs in batches of 128."""
    (train_images, _), (test_images, _) = helpers.load_dataset()
    pretrain = helpers.prepare_images(train_images[:N_PRETRAIN])
    ns = {"train_images": train_images[:N_TRAIN], "test_images": test_images[:N_TEST], "DATASET": "fashion_mnist"}
    ns["x_train"], ns["x_test"] = helpers.prepare_images(ns["train_images"]), helpers.prepare_images(ns["test_images"])
    rng = np.random.default_rng(2)
    ns["x_train_noisy"] = helpers.add_noise(ns["x_train"], 0.5, rng)
    ns["x_test_noisy"] = helpers.add_noise(ns["x_test"], 0.5, rng)
    keras.utils.set_random_seed(1)
    ns["autoencoder"], ns["encoder"] = helpers.build_autoencoder()
    ns["dae"], _ = helpers.build_autoencoder(name="dae")
    for model, inputs in ((ns["autoencoder"], pretrain), (ns["dae"], helpers.add_noise(pretrain, 0.5, rng))):
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
        model.fit(inputs, pretrain, epochs=1, batch_size=256, verbose=0)
    ns["ae_history"] = card_fit(
        ns["autoencoder"], ns["x_train"], ns["x_train"], "autoencoder", validation_data=(ns["x_test"], ns["x_test"])
    )
    ns["codes"] = ns["encoder"].predict(ns["x_test"], verbose=0)
    ns["reconstructions"] = ns["autoencoder"].predict(ns["x_test"], verbose=0)
    ns["fig_autoencoder"] = helpers.plot_rows([ns["x_test"], ns["reconstructions"]], ["o", "r"])
    ns["history"] = card_fit(
        ns["dae"], ns["x_train_noisy"], ns["x_train"], "dae", validation_data=(ns["x_test_noisy"], ns["x_test"])
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
    """ns with its autoencoder or dae replaced: a model of `build` holding the trained Dense weights, compiled with
    these spellings and fitted as the card says unless fit's keywords say otherwise (validated as `validation` says),
    every later variable made again from it. fit may hold rows (train on the first rows only) and twice (fit again)."""
    ns = dict(ns)
    name, history_name = ("dae", "history") if which == "dae" else ("autoencoder", "ae_history")
    inputs, targets, val = (
        ("x_train_noisy", "x_train", ("x_test_noisy", "x_test"))
        if which == "dae"
        else ("x_train", "x_train", ("x_test", "x_test"))
    )
    model = build() if build else helpers.build_autoencoder()[0]
    trained = [layer for layer in ns[name].layers if isinstance(layer, keras.layers.Dense)]
    for layer, source in zip([layer for layer in model.layers if isinstance(layer, keras.layers.Dense)], trained):
        if layer.kernel.shape == source.kernel.shape:
            layer.set_weights(source.get_weights())
    model.compile(optimizer=optimizer, loss=loss)
    plan = CARD["dae" if which == "dae" else "autoencoder"]
    rows, twice = fit.pop("rows", None), fit.pop("twice", False)
    kwargs = {"epochs": plan.epochs, "batch_size": plan.batch, "verbose": 0, **fit}
    if validation == "test":
        kwargs["validation_data"] = (ns[val[0]], ns[val[1]])
    elif validation == "subset":
        kwargs["validation_data"] = (ns[val[0]][:128], ns[val[1]][:128])
    elif validation == "split":
        kwargs["validation_split"] = 0.1
    if twice:
        model.fit(ns[inputs][:rows], ns[targets][:rows], **kwargs)
    ns[history_name] = model.fit(ns[inputs][:rows], ns[targets][:rows], **kwargs)
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


def training_departures(which):
    """name -> (change, task, words) for each departure of a model's training from its card, by class: fewer and
    more epochs, another batch (32 when batch_size is left out), a part of the training set, fitted twice, stopped
    early. The weights cannot tell these apart: the bookkeeping does."""
    plan, task = CARD[which], task_of(which)
    departures = {
        f"{which}-epochs-{epochs}": (
            lambda ns, e=epochs: refit(ns, which, epochs=e),
            task,
            f"trained for {epochs} epoch",
        )
        for epochs in sorted({plan.epochs // 3, plan.epochs - 1, plan.epochs + 1})
    }
    departures[f"{which}-batch-size-left-out"] = (
        lambda ns: refit(ns, which, batch_size=None),
        task,
        "batches of 32 (Keras's default when batch_size is left out)",
    )
    for batch in (64, 256):
        departures[f"{which}-batch-{batch}"] = (
            lambda ns, b=batch: refit(ns, which, batch_size=b),
            task,
            f"batches of {batch}, not {plan.batch}",
        )
    departures[f"{which}-part-of-the-training-set"] = (
        lambda ns: refit(ns, which, rows=N_TRAIN // 2),
        task,
        "a part of the training set",
    )
    departures[f"{which}-fitted-twice"] = (lambda ns: refit(ns, which, twice=True), task, "trained more than once")
    departures[f"{which}-stopped-early"] = (
        lambda ns: refit(
            ns, which, callbacks=[keras.callbacks.EarlyStopping(monitor="loss", min_delta=1.0, patience=1)]
        ),
        task,
        "the training stopped early",
    )
    return departures


LAYERS = {  # an extra layer of each kind a student may add (identity-like, so the weights alone cannot tell)
    "Dropout": lambda: keras.layers.Dropout(0.2),
    "GaussianNoise": lambda: keras.layers.GaussianNoise(0.1),
    "BatchNormalization": keras.layers.BatchNormalization,
    "Rescaling": lambda: keras.layers.Rescaling(1.0),
    "Lambda": lambda: keras.layers.Lambda(lambda x: x),
    "Activation": lambda: keras.layers.Activation("linear"),
}


def layer_departures(which):
    """name -> (change, task, words) for each departure of a model's layers from its card: an extra layer of every
    kind between the code and the output, one after the output, the code layer missing."""
    task = "dae_model" if which == "dae" else "regular_autoencoder"
    departures = {
        f"{which}-extra-{kind}": (
            lambda ns, make=make: refit(ns, which, with_layer(make)),
            task,
            f"{kind} layer between the code layer and the output layer",
        )
        for kind, make in LAYERS.items()
    }
    departures[f"{which}-extra-Dropout-after-the-output"] = (
        lambda ns: refit(ns, which, with_layer(LAYERS["Dropout"], "after")),
        task,
        "Dropout layer after the output layer",
    )
    departures[f"{which}-code-layer-missing"] = (lambda ns: refit(ns, which, output_only), task, "1 Dense layer")
    return departures


def as_data(x_train, x_test):
    """A data answer: the two arrays, in place of x_train and x_test."""
    return lambda ns: {**ns, "x_train": x_train(ns["train_images"]), "x_test": x_test(ns["test_images"])}


def flat(images):
    return images.reshape(len(images), -1)


def per_image_min_max(images):
    rows = flat(images).astype("float32")
    low, high = rows.min(axis=1, keepdims=True), rows.max(axis=1, keepdims=True)
    return (rows - low) / (high - low)


DATA_DEPARTURES = {  # another transform of the pixels: each must be named, not read as "cause unknown"
    "data-floor-division": (
        as_data(lambda i: (flat(i) // 255).astype("float32"), lambda i: (flat(i) // 255).astype("float32")),
        "data",
        "divided with // (floor division)",
    ),
    "data-floor-division-integers": (
        as_data(lambda i: flat(i) // 255, lambda i: flat(i) // 255),
        "data",
        "divided with // (floor division)",
    ),
    "data-min-max-per-image": (as_data(per_image_min_max, per_image_min_max), "data", "(min-max)"),
    "data-divided-by-256": MISTAKES.pop("data-divided-by-256"),
}


MISTAKES.update(
    {
        **{name: spec for which in ("autoencoder", "dae") for name, spec in training_departures(which).items()},
        **{name: spec for which in ("autoencoder", "dae") for name, spec in layer_departures(which).items()},
        **DATA_DEPARTURES,
    }
)


# a mistake in the data whose later tasks read the same arrays: they are judged relative to them
FOLLOWS = {
    name: "x_train_noisy and x_test_noisy drawn on the student's own x_train and x_test" for name in DATA_DEPARTURES
}


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
    ("data", "scale"): [*DATA_DEPARTURES, "test_checks.test_data_mistakes"],
    ("data", "source"): ["test_checks.test_data_mistakes"],
    ("regular_autoencoder", "architecture"): [
        *layer_departures("autoencoder"),
        "test_checks.test_architecture_mistakes",
    ],
    ("regular_autoencoder", "loss"): ["autoencoder-loss-mse", "autoencoder-loss-class-name-mse"],
    ("regular_autoencoder", "optimizer"): ["autoencoder-optimizer-sgd", "autoencoder-optimizer-adamw"],
    ("regular_autoencoder", "trained"): [
        *training_departures("autoencoder"),
        "test_checks.test_a_model_never_fitted_is_caught",
    ],
    ("regular_autoencoder", "kept"): ["ae-history-not-kept"],
    ("regular_autoencoder", "validation"): ["autoencoder-validation-split", "autoencoder-no-validation"],
    ("reconstructions", "source"): ["test_checks.test_reconstructions_must_come_from_the_test_set"],
    ("reconstructions", "scale"): ["reconstructions-times-255"],
    ("reconstructions", "rows"): ["test_checks.test_figures_must_show_the_right_arrays"],
    ("noisy_data", "noise"): ["test_checks.test_noise_mistakes"],
    ("noisy_data", "fresh"): ["test_checks.test_the_same_noise_in_both_sets_is_caught"],
    ("dae_model", "architecture"): [
        *layer_departures("dae"),
        "test_checks.test_another_architecture_costs_only_the_dae_model_task",
    ],
    ("dae_training", "loss"): ["dae-loss-mse", "dae-loss-from-logits"],
    ("dae_training", "optimizer"): ["dae-optimizer-sgd", "dae-optimizer-rmsprop"],
    ("dae_training", "pairs"): ["test_checks.test_dae_trained_clean_to_clean_is_caught"],
    ("dae_training", "trained"): [
        *training_departures("dae"),
        "test_checks.test_under_training_is_told_how_much_it_trained",
    ],
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
