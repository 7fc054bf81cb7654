"""Judging a model: its architecture, how it was compiled and whether it was trained."""

import math
import os

from helpers import CODE_SIZE, INPUT_DIM, PARAMS  # the lab's numbers, defined in helpers

import keras
import numpy as np

from checks.snapshots import IDENTITY_LAYERS, keras_activation
from checks.spec import TRAINING, TRAINING_SETTING, Training
from checks.variables import run_model
from checks.verdicts import Failed


def dense_steps(model):
    """[(units, activation)] for each Dense layer of a ModelInfo, a following Activation/ReLU layer folded in."""
    return [(units, activation) for units, activation, *_ in model.dense]


def shares_layers(a, b):
    """Whether models a and b (ModelInfo) share a Dense layer (and so its weights)."""
    return bool({step[4] for step in a.dense} & {step[4] for step in b.dense})


def extra_layers(model):
    """[(layer type, where)] of the layers of a ModelInfo that the card's network has not: anything but its input,
    its Dense layers and an Activation/ReLU layer right after a linear Dense one (that layer's activation)."""
    extra, dense_seen, previous = [], 0, None
    total = len(model.dense)
    for layer in model.layers:
        folded = layer.kind in ("Activation", "ReLU") and previous is not None and previous.kind == "Dense"
        folded = folded and previous.config.get("activation") == "linear"
        if layer.kind == "Dense":
            dense_seen += 1
        elif layer.kind != "InputLayer" and not folded:
            where = (
                "before the code layer"
                if dense_seen == 0
                else "after the output layer"
                if dense_seen >= total
                else "between the code layer and the output layer"
            )
            extra.append((layer.kind, where))
        previous = layer
    return extra


def check_layers(model, name):
    """Raise Failed if the model has a layer the card's network has not, naming it (and saying when the grader cannot
    rebuild it to run the model)."""
    extra = extra_layers(model)
    if not extra:
        return
    kind, where = extra[0]
    others = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
    effect = (
        "it changes nothing at prediction time, but the card's network has no such layer"
        if kind in IDENTITY_LAYERS
        else "the card's network has no such layer"
    )
    a = "an" if kind[:1] in "AEIOU" else "a"
    cannot = (
        f"; the grader cannot rebuild {a} {kind} layer from plain data, so it cannot run {name} either"
        if kind in model.unsupported
        else ""
    )
    raise Failed(
        f"{name} has {a} {kind} layer {where}{others}: {effect}. The card's network is exactly three layers, "
        f"{INPUT_DIM} inputs -> a {CODE_SIZE}-unit relu code layer -> a {INPUT_DIM}-unit sigmoid output layer; "
        f"remove the {kind} layer{cannot}"
    )


def check_architecture(model, name):
    """Raise Failed unless model is 784 -> 32 (relu) -> 784 (sigmoid) with 50,992 weights and no other layer."""
    if model.input_shape in (None, (INPUT_DIM,)):  # else the input is the first thing to fix: run_model says so
        check_layers(model, name)
    probe = np.random.default_rng(0).uniform(0, 1, (4, INPUT_DIM))
    run_model(model, probe, name)  # builds an unbuilt model and checks the input and output sizes
    steps = dense_steps(model)
    if len(steps) < 2:
        raise Failed(
            f"{name} has {len(steps)} Dense layer(s): an autoencoder needs two, a {CODE_SIZE}-unit relu code layer "
            f"(the encoder) and a {INPUT_DIM}-unit sigmoid output layer (the decoder)"
        )
    code_units, code_activation = min(steps[:-1], key=lambda step: step[0])
    out_units, out_activation = steps[-1]
    if code_units != CODE_SIZE:
        raise Failed(
            f"{name}'s code layer has {code_units} units: the code size must be {CODE_SIZE}, the bottleneck that "
            f"forces the model to compress each {INPUT_DIM}-pixel image"
        )
    if not same_activation(code_activation, "relu"):
        raise Failed(
            f"{name}'s code layer uses the {code_activation} activation: the code layer uses relu, "
            "as the card says (use activation='relu')"
        )
    if not same_activation(out_activation, "sigmoid"):
        raise Failed(
            f"{name}'s output layer uses the {out_activation} activation: outputs must be pixels in [0, 1], "
            "which binary cross-entropy needs, and only sigmoid gives that (use activation='sigmoid')"
        )
    if out_units != INPUT_DIM:
        raise Failed(f"{name}'s output layer has {out_units} units: it needs {INPUT_DIM}, one per pixel of the image")
    params = max(model.params, sum(np.size(kernel) + np.size(bias) for _, _, kernel, bias, _ in model.dense))
    if params != PARAMS:
        raise Failed(
            f"{name} has {params:,} weights, expected {PARAMS:,}: the lab's autoencoder is just two Dense layers, "
            f"{INPUT_DIM} -> {CODE_SIZE} (relu) -> {INPUT_DIM} (sigmoid)"
        )


def same_loss(name, canonical="binary_crossentropy"):
    """Whether a loss name (a snapshot's, untrusted) resolves through keras.losses.get to Keras's own canonical loss: the
    same function, with no setting that changes its maths (from_logits, label smoothing)."""
    try:
        resolved = keras.losses.get(name)
        wanted = keras.losses.get(canonical)
    except Exception:
        return False
    settings = getattr(resolved, "_fn_kwargs", None) or {}
    plain = not settings.get("from_logits") and not settings.get("label_smoothing")
    return getattr(resolved, "fn", resolved) is wanted and plain


def same_optimizer(name, canonical="adam"):
    """Whether an optimizer name (a snapshot's class name, untrusted) resolves through keras.optimizers.get to an
    optimizer of exactly the canonical one's class (Adam, not its subclass AdamW)."""
    try:
        return type(keras.optimizers.get(name)) is type(keras.optimizers.get(canonical))
    except Exception:
        return False


def same_activation(name, canonical):
    """Whether an activation name (a snapshot's, untrusted) resolves to the same Keras built-in as canonical."""
    function = keras_activation(name)
    return function is not None and function is keras_activation(canonical)


def check_compiled(model, name):
    """Raise Failed unless model was compiled with adam and binary cross-entropy, in any spelling Keras resolves to
    them (names, class names, objects: snapshots.loss_name records the canonical name)."""
    if not model.compiled:
        raise Failed(
            f"{name} is not compiled: a model must be compiled, with its optimizer (adam) and loss "
            "(binary cross-entropy), before it can be trained"
        )
    if not same_loss(model.loss):
        raise Failed(
            f"{name} is compiled with the loss {model.loss}: the card's loss is binary cross-entropy, which treats "
            "each pixel in [0, 1] as a probability (use loss='binary_crossentropy')"
        )
    if not same_optimizer(model.optimizer):
        raise Failed(f"{name} is compiled with {model.optimizer}: the card's optimizer is adam (use optimizer='adam')")


def check_fitted(model, name, how, trained):
    """Raise Failed if the model shows no training: the strongest evidence first, its weights (`trained`, whether they
    meet the bar on the grader's images); only when they do not, the optimizer's step count (0 after compiling again)."""
    if model.steps == 0 and not trained:
        raise Failed(
            f"{name} was never fitted (its optimizer has taken no steps and its weights are untrained; compiling "
            f"again after fitting gives it a new optimizer, so compile first, then fit): train it {how}"
        )


BATCHES = (32, 64, 256, 16, 512, 1024, 8, 100, 200, 500, 1000, 2048)  # batch sizes a hint looks for, likeliest first:
# 32 is Keras's default when batch_size is left out


def card_training(name):
    """The fit settings the card states for model `name` (spec.TRAINING), or the plan the grader's environment names in
    DAE_LAB_TRAINING: "EPOCHSxBATCH" judges that plan, "any" judges no plan (the test suites whose notebooks train
    cheaply, as their tests need, set it; a grader of students' work leaves it unset)."""
    value = os.environ.get(TRAINING_SETTING, "")
    if value == "any":
        return None
    epochs, _, batch = value.partition("x")
    if epochs.isdigit() and batch.isdigit():
        return Training(int(epochs), int(batch))
    return TRAINING[name]


def check_training(model, history, rows, name, history_name):
    """Raise Failed unless the bookkeeping of the model's training agrees with itself and with the card: History's
    epochs run and asked for, its steps per epoch against the training set's rows in the card's batches, and the
    optimizer's steps against History's (0 allowed: compiled again after training). rows: the training set's size,
    or None when unknown."""
    plan = card_training(name)
    if plan is None:
        return
    run = len(history.history.get("loss", ()))
    asked, steps = history.params.get("epochs"), history.params.get("steps")
    how = f"the card trains it for {plan.epochs} epochs in batches of {plan.batch}, on the whole training set"
    if isinstance(asked, int) and asked != run:
        raise Failed(
            f"{history_name} holds {run} epoch(s) of the {asked} its fit was asked for: the training stopped early "
            f"(a callback such as EarlyStopping, or a later initial_epoch); {how}"
        )
    if run != plan.epochs:
        raise Failed(f"{name} was trained for {run} epoch(s) ({history_name} has {run} losses): {how}")
    if isinstance(steps, int) and rows and steps != math.ceil(rows / plan.batch):
        raise Failed(f"{name} was trained in {steps} steps per epoch, {batch_cause(steps, rows, plan.batch)}: {how}")
    done = run * steps if isinstance(steps, int) else None
    if done is not None and model.steps not in (0, done):
        more = model.steps > done
        raise Failed(
            f"{name}'s optimizer took {model.steps:,} steps, where {history_name} counts {done:,} "
            f"({run} epochs of {steps}): "
            + (
                "it was trained more than once (fit called again, or its cell run twice, without building it "
                "again); build it anew and train it once"
                if more
                else "its training is not the one this History records"
            )
            + f"; {how}"
        )


def batch_cause(steps, rows, batch):
    """Words for what steps per epoch say about a training set of `rows` rows: which batch size gives them, or that
    only a part of the set was used, or the numbers when neither explains them."""
    part = steps < math.ceil(rows / batch)
    for size in BATCHES:
        if size != batch and math.ceil(rows / size) == steps:
            default = " (Keras's default when batch_size is left out)" if size == 32 else ""
            also = f" (or a part of the training set, at most {steps * batch:,} images, in batches of {batch})"
            return f"which is {rows:,} images in batches of {size}{default}, not {batch}" + (also if part else "")
    if part:
        return f"so at most {steps * batch:,} of the {rows:,} training images in batches of {batch}: a part of the set"
    return f"where {rows:,} images in batches of {batch} take {math.ceil(rows / batch)}"
