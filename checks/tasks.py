"""The nine task checks with their hints, in the lab's order (`CHECKS`; what each reads is in checks/names.py). A new
task goes here, in `CHECKS`, and into the tables of checks/names.py.
"""

import helpers  # first: it imports Keras without the backend's start-up chatter
from helpers import CODE_SIZE, INPUT_DIM, NOISE_FACTOR, PARAMS  # the lab's numbers, defined in helpers

import numpy as np

from checks.figures import check_rows, row_sources, shown
from checks.models import (
    check_architecture,
    check_compiled,
    check_fitted,
    check_training,
    same_activation,
    shares_layers,
)
from checks.names import DEFINES
from checks.noise import (
    Outputs,
    check_history,
    check_noise,
    check_validation,
    check_validation_set,
    dae_direction,
    noise_correlation,
    trained_on_test_set,
    under_trained,
)
from checks.snapshots import FigureInfo, HistoryInfo, ModelInfo, type_name
from checks.variables import (
    SAMPLE,
    as_array,
    as_model,
    bar_scale,
    diagnose_scaling,
    earlier_images,
    is_image_array,
    pixel_rows,
    prerequisite,
    reference,
    run_model,
    same_rows,
    sample_rows,
    scale_between,
    scale_words,
    source_images,
    student_noise,
)
from checks.verdicts import Blocked, Failed, NotAttempted, Suspect, require

# The bars a trained model must meet, measured on the grader's own images (reference: the lab's first 300 test
# images, and fresh noise of the student's kind), with tiny models trained by tests/fixtures/make_fixtures.py's cheap
# recipe (one epoch of 16,384 images in batches of 256, Adam(0.01), 64 steps) against one batch and five:
# the regular autoencoder's test BCE: cheap 0.335, 5 batches 0.515, 1 batch 0.662 (the mean image scores 0.489);
# the DAE's, noise 0.25 / 0.3 / 0.5 / 0.5 unclipped / 1.0: cheap 0.337 / 0.340 / 0.349 / 0.339 / 0.393,
# 5 batches 0.518 / 0.516 / 0.517 / 0.528 / 0.520, 1 batch 0.661 / 0.658 / 0.660 / 0.668 / 0.658.
MAX_BCE = 0.40  # test BCE a trained model beats easily (about 0.29 after the lab's training, 0.69 untrained)


MAX_BCE_OTHER = 0.45  # a DAE of another architecture (dae_model's mistake): a sigmoid code scores 0.417-0.443 (cheap)


BCE_PER_NOISE = 0.05  # each unit of noise factor above NOISE_FACTOR raises the DAE's bars: 0.425 / 0.475 at 1.0


MAX_MSE_OTHER_OUTPUT = 0.08  # mean squared error, outputs clipped to [0, 1], of a DAE whose output is not sigmoid:
# a relu or linear output scores 0.058 cheaply trained, 0.118 after 5 batches, 0.162 after 1 (sigmoid: 0.036 cheap)


AE_VALIDATION = "clean inputs against themselves as targets"  # the cards' validation pairs, for hints
DAE_VALIDATION = "noisy inputs and clean targets"


def check_data(ns):
    """x_train and x_test: the training and test images flattened to rows of 784 floats in [0, 1]."""
    require(ns, *DEFINES["data"])
    pairs = (("x_train", "train_images", "x_test", "test_images"), ("x_test", "test_images", "x_train", "train_images"))
    for name, source, other_name, other in pairs:
        expected, alt = source_images(ns, name), source_images(ns, other_name)
        x = pixel_rows(ns[name], name)
        if x.max() < 0.5:
            raise Failed(
                f"{name}'s pixels only reach {x.max():.3g}: the images were divided by 255 more than once; "
                "divide the 0-255 images by 255 once"
            )
        k = min(100, len(x), len(expected))
        as_rows = lambda images, k=k: images[:k].reshape(k, -1).astype("float64") / 255
        if len(x) != len(expected) or not same_rows(x[:k], as_rows(expected)):
            if len(x) == len(alt) and same_rows(x[:k], as_rows(alt)):
                raise Failed(f"{name} holds the images of {other}: {name} is made from {source}")
            factor = scale_between(x[:k], as_rows(expected))
            if factor is not None and len(x) == len(expected):
                raise Failed(
                    f"{name} is {source} flattened but {scale_words(factor)}: a scale mistake; the card's pixels are "
                    "the 0-255 values divided by 255, so that white is exactly 1"
                )
            raise Failed(diagnose_scaling(x, expected.reshape(len(expected), -1), name, source))
    return "x_train and x_test are flattened, scaled to [0, 1] and complete"


def scaled_like_the_lab(ns):
    """Whether x_train and x_test are rows of pixels in [0, 1] that reach 1, like the images models are judged on."""
    try:
        return all(pixel_rows(ns[name], name).max() >= 0.5 for name in ("x_train", "x_test"))
    except (KeyError, Failed):
        return False


def check_regular_autoencoder(ns):
    """autoencoder and encoder: 784 -> 32 (relu) -> 784 (sigmoid), adam + BCE, trained clean -> clean.

    Its reconstructions are always judged, on the lab's test images loaded here: the student's variables never
    decide whether. Trained on data of another scale (the data task's mistake), it cannot be judged until data is
    fixed: measured with the cheap training, an autoencoder of images divided by 255 twice scores BCE 0.011 on
    them, worse than their mean image (0.0085), so no bar there tells training from a handful of steps.
    """
    require(ns, *DEFINES["regular_autoencoder"])
    x, _ = reference(ns)
    autoencoder = as_model(ns["autoencoder"], "autoencoder")
    encoder = as_model(ns["encoder"], "encoder")
    check_architecture(autoencoder, "autoencoder")
    codes = run_model(encoder, x, "encoder", width=CODE_SIZE)
    dae = ns.get("dae")
    if not shares_layers(encoder, autoencoder) and isinstance(dae, ModelInfo) and shares_layers(encoder, dae):
        raise Failed(
            "encoder is the DAE's encoder now, not the regular autoencoder's: a later cell gave the name to the "
            "DAE's first half; call that one dae_encoder, as the dae_model card says, and run this task's cell again"
        )
    if not shares_layers(encoder, autoencoder):
        raise Failed(
            "encoder is not the first half of autoencoder: the encoder is the same input and code layer as the "
            "autoencoder (the same layer objects, so it shares their trained weights), as a model of its own"
        )
    if codes.min() < 0:
        raise Failed("encoder's codes have negative values: its code layer should end in relu")
    check_compiled(autoencoder, "autoencoder")
    loss = helpers.mean_bce(x, run_model(autoencoder, x, "autoencoder"))  # the weights: the strongest evidence
    trained = loss <= MAX_BCE * bar_scale(x)[0]
    check_fitted(
        autoencoder, "autoencoder", "to reconstruct the training images (inputs and targets both x_train)", trained
    )
    if not scaled_like_the_lab(ns):
        raise Suspect(  # the data task fails then, and blame names it
            "autoencoder cannot be judged: x_train and x_test are not images scaled to [0, 1], like those it is "
            "measured on"
        )
    check_history(
        ns, "ae_history", "autoencoder", autoencoder, ("x_test", "x_test"), ("x_train", "x_train"), AE_VALIDATION
    )
    if not trained:
        raise Suspect(
            f"autoencoder reconstructs the test images poorly (BCE {loss:.2f}, about 0.29 expected): it must learn "
            "to give back its own input, so inputs and targets are both the clean training images, for the card's "
            "10 epochs"
        )
    check_training(autoencoder, ns["ae_history"], training_rows(ns, "x_train"), "autoencoder", "ae_history")
    return f"the autoencoder is trained (test BCE {loss:.3f})"


def training_rows(ns, name):
    """The number of rows of the training set `name`, or None when it is not an array of rows."""
    value = ns.get(name)
    return len(value) if is_image_array(value) else None


def check_reconstructions(ns):
    """codes, reconstructions and fig_autoencoder from the trained autoencoder on x_test (whatever x_test holds)."""
    require(ns, *DEFINES["reconstructions"])
    x_test = earlier_images(ns, "x_test", "data")
    autoencoder = earlier_model(ns, "autoencoder", "regular_autoencoder")
    encoder = earlier_model(ns, "encoder", "regular_autoencoder", width=CODE_SIZE)
    x = sample_rows(x_test)
    x_train = ns.get("x_train")
    for name, model, width in (("codes", encoder, CODE_SIZE), ("reconstructions", autoencoder, INPUT_DIM)):
        value = as_array(ns[name], name)
        maker = "encoder" if model is encoder else "autoencoder"
        what = "32-number code" if maker == "encoder" else "reconstruction"
        if value.shape != (len(x_test), width):
            raise Failed(
                f"{name} has shape {value.shape}, expected {(len(x_test), width)}: one {what} per test image, "
                f"what {maker} makes of each image of x_test"
            )
        got = value[: len(x)].astype("float64")
        expected = run_model(model, x, maker, width)
        if same_rows(got, expected):
            continue
        factor = scale_between(got, expected, integers=value.dtype.kind in "iu")
        if factor is not None:
            raise Failed(
                f"{name} is what {maker} gives for x_test, {scale_words(factor)}: a scale mistake; keep the "
                f"model's output as it is, {'pixels in [0, 1], ' if maker == 'autoencoder' else ''}with no rescaling"
            )
        if is_image_array(x_train) and x_train.ndim == 2 and x_train.shape[1] == INPUT_DIM:
            if same_rows(got, run_model(model, sample_rows(x_train), maker, width)):
                raise Failed(
                    f"{name} was made from the training images: the card asks what {maker} makes of the test "
                    "images, x_test, which it never trained on"
                )
        raise Failed(
            f"{name} is not what {maker} gives for x_test now: {maker} was trained, or x_test changed (noise added "
            "to it in place, say), after this cell ran; run its cell again once both are final"
        )
    sources = row_sources(
        ns["fig_autoencoder"], "fig_autoencoder", ns, ["x_test", "reconstructions", "x_test_noisy", "x_train"]
    )
    check_rows(
        sources,
        "fig_autoencoder",
        ["x_test", "reconstructions"],
        "so that each original stands above its reconstruction",
    )
    return "codes, reconstructions and the figure come from the trained autoencoder"


def check_noisy_data(ns):
    """x_train_noisy and x_test_noisy: each clean set plus NOISE_FACTOR * N(0, 1) noise of its own, clipped to [0, 1]."""
    require(ns, *DEFINES["noisy_data"])
    check_noise(ns, "x_train_noisy", "x_train", "x_test")
    check_noise(ns, "x_test_noisy", "x_test", "x_train")
    sets = [
        (earlier_images(ns, clean, "data")[:SAMPLE].astype("float64"), as_array(ns[noisy], noisy)[:SAMPLE])
        for clean, noisy in (("x_train", "x_train_noisy"), ("x_test", "x_test_noisy"))
    ]
    if noise_correlation(sets[1][0], np.clip(sets[1][1], 0, 1), sets[0][0], np.clip(sets[0][1], 0, 1)) > 0.5:
        raise Failed(
            "x_test_noisy has the same noise as x_train_noisy, pixel for pixel (the generator was seeded again, "
            "or one noise array was used twice): the test images must carry noise the DAE never saw in training, "
            "so draw each set's noise from the one generator, one after the other"
        )
    return f"both noisy sets are their clean set plus clipped noise of factor {NOISE_FACTOR:g}"


def check_dae_model(ns):
    """dae: a new 784 -> 32 (relu) -> 784 (sigmoid) model with 50,992 weights."""
    require(ns, *DEFINES["dae_model"])
    dae = as_model(ns["dae"], "dae")
    autoencoder = ns.get("autoencoder")
    if isinstance(autoencoder, ModelInfo) and (dae.ident == autoencoder.ident or shares_layers(dae, autoencoder)):
        raise Failed(
            "dae is (or shares layers with) the regular autoencoder: training it would change the autoencoder too; "
            "build a new model for the DAE, with layers of its own"
        )
    check_architecture(dae, "dae")
    return f"dae has the lab's architecture ({PARAMS:,} weights)"


def earlier_model(ns, name, task, width=INPUT_DIM):
    """Return the model `name` from an earlier task, runnable on rows of 784 pixels, or raise Blocked naming that task."""
    try:
        model = as_model(prerequisite(ns, name, task), name)
        run_model(model, np.random.default_rng(0).uniform(0, 1, (4, INPUT_DIM)), name, width)
    except Failed as err:
        raise Blocked(task, str(err)) from None
    return model


def check_dae_training(ns):
    """dae compiled with adam + BCE and trained noisy -> clean on the training set, validated; history is its History."""
    dae = ns.get("dae")
    if "history" not in ns:  # DEFINES["dae_training"]
        if isinstance(dae, ModelInfo) and dae.steps > 0:
            raise Failed("dae was trained but its History was not kept: keep what fit returns, as history")
        raise NotAttempted("define history")
    dae = earlier_model(ns, "dae", "dae_model")
    check_compiled(dae, "dae")
    factor, clipped = student_noise(ns)
    clean, noisy = reference(ns, factor, clipped)
    below_bar = bar_miss(dae, None, clean, noisy, factor)  # the weights first: the strongest evidence of training
    check_fitted(dae, "dae", "on the noisy training images for the card's epochs and batch size", not below_bar)
    history = ns["history"]
    if not isinstance(history, HistoryInfo) or "loss" not in history.history:
        raise Failed(
            f"history should be the History that fit returns, got {type_name(history)}: keep what fit returns, "
            "as history"
        )
    if history.model != dae.ident:
        raise Failed("history comes from another model's training: keep the History of dae's own training")
    if not scaled_like_the_lab(ns):
        raise Suspect(  # the data task fails then, and blame names it
            "dae cannot be judged: x_train and x_test are not images scaled to [0, 1], like those it is measured on"
        )
    loss = dae_direction(dae, clean, noisy, factor, clipped, history)
    outputs = Outputs(ns, dae)  # the model's outputs on the student's arrays, shared by the next two
    check_validation(ns, dae, history, outputs)
    trained_on_test_set(ns, dae, factor, clipped, outputs)
    if below_bar:
        raise Suspect(bar_miss(dae, history, clean, noisy, factor))
    output = dae.dense[-1][1] if dae.dense else "missing"
    done = f"dae is trained noisy -> clean (test BCE {loss:.3f})" + (
        ""
        if same_activation(output, "sigmoid")
        else f", a loss limited by its {output} output layer (the dae_model task's mistake)"
    )
    if "val_loss" not in history.history:
        raise Failed(
            "history has no val_loss: the card asks to validate on the noisy test images (inputs) and the clean "
            "ones (targets) after each epoch, to see how the DAE does on images it never trained on"
        )
    check_validation_set(
        ns, "history", dae, history, ("x_test_noisy", "x_test"), ("x_train_noisy", "x_train"), DAE_VALIDATION
    )
    check_training(dae, history, training_rows(ns, "x_train_noisy"), "dae", "history")
    return done


def bar_miss(dae, history, clean, noisy, factor):
    """The hint for a dae that restores the grader's noisy images worse than a trained DAE of its kind, or "".

    Every DAE meets a bar: BCE for a sigmoid output (higher for stronger noise and for another architecture), and
    mean squared error of the outputs clipped to [0, 1] for any other output, which binary cross-entropy trains badly.
    """
    bce_scale, mse_scale = bar_scale(clean)
    outputs = np.clip(run_model(dae, noisy, "dae"), 0, 1)
    if dae.dense and same_activation(dae.dense[-1][1], "sigmoid"):
        bar = (MAX_BCE if lab_architecture(dae) else MAX_BCE_OTHER) + BCE_PER_NOISE * max(factor - NOISE_FACTOR, 0)
        loss = helpers.mean_bce(clean, outputs)
        return under_trained(dae, history, loss) if loss > bar * bce_scale else ""
    error = float(np.mean((outputs - clean) ** 2))
    if error > MAX_MSE_OTHER_OUTPUT * mse_scale:
        return (
            f"dae's denoised test images are far from the clean ones (mean squared error {error:.3f}, at most "
            f"{MAX_MSE_OTHER_OUTPUT * mse_scale:.3f} expected): it learned too little from its training"
        )
    return ""


def lab_architecture(model):
    """Whether a model (ModelInfo) has the lab's architecture, 784 -> 32 (relu) -> 784 (sigmoid)."""
    try:
        check_architecture(model, "model")
    except Failed:
        return False
    return True


def check_predictions(ns):
    """x_test_denoised: the trained dae's output for x_test_noisy (whatever x_test_noisy holds)."""
    require(ns, *DEFINES["predictions"])
    dae = earlier_model(ns, "dae", "dae_model")
    x_test_noisy = earlier_images(ns, "x_test_noisy", "noisy_data")
    denoised = as_array(ns["x_test_denoised"], "x_test_denoised")
    got = (denoised[:SAMPLE] if denoised.ndim else denoised).astype("float64")  # a scalar has no rows
    expected = run_model(dae, sample_rows(x_test_noisy), "dae")
    if denoised.shape == x_test_noisy.shape and same_rows(got, expected):
        return "x_test_denoised is dae's output for x_test_noisy"
    factor = scale_between(got, expected, integers=denoised.dtype.kind in "iu")
    if denoised.shape == x_test_noisy.shape and factor is not None:
        raise Failed(
            f"x_test_denoised is dae's output for x_test_noisy {scale_words(factor)}: a scale mistake (running the "
            "cell again gives the same); the DAE's sigmoid outputs are already pixels in [0, 1], keep them as they are"
        )
    for name in ("x_train_noisy", "x_train"):
        x = ns.get(name)
        if (
            usable_rows(x)
            and got.shape == sample_rows(x).shape
            and same_rows(got, run_model(dae, sample_rows(x), "dae"))
        ):
            raise Failed(
                f"x_test_denoised was predicted from the training images ({name}): the DAE is judged on what it "
                "makes of images it never trained on, the test set"
            )
    if denoised.shape != x_test_noisy.shape:
        raise Failed(
            f"x_test_denoised has shape {denoised.shape}, expected {x_test_noisy.shape}: one denoised row for each "
            "noisy test image"
        )
    if same_rows(got, sample_rows(x_test_noisy).astype("float64"), atol=1e-6):
        raise Failed(
            "x_test_denoised is the noisy input itself: it should hold what the DAE made of the images it was "
            "given, not those images"
        )
    x_test = ns.get("x_test")
    sources = [("x_test_noisy", x_test_noisy)]
    if usable_rows(x_test):
        if same_rows(got, run_model(dae, sample_rows(x_test), "dae")):
            raise Failed(
                "x_test_denoised was predicted from the clean x_test: a denoiser is shown what it must clean up, "
                "the images as they arrive damaged, and x_test is what it should give back"
            )
        sources.append(("x_test", x_test))
    autoencoder = ns.get("autoencoder")
    if isinstance(autoencoder, ModelInfo):
        for source, x in sources:
            try:
                made_by_autoencoder = same_rows(got, run_model(autoencoder, sample_rows(x), "autoencoder"))
            except Failed:
                break
            if made_by_autoencoder:
                raise Failed(
                    f"x_test_denoised was made by the regular autoencoder from {source}: these predictions are the "
                    "denoiser's, the model trained to remove noise, not the one trained on clean images"
                )
    raise Failed(
        "x_test_denoised no longer matches dae and the noisy test images: dae was trained again, or x_test_noisy "
        "changed (the noise cell run again draws new noise), after its cell ran; run its cell again once both are "
        "final"
    )


def usable_rows(value):
    """Whether value is a numpy array of rows of 784 numbers, which a model can run on."""
    return is_image_array(value) and value.ndim == 2 and value.shape[1] == INPUT_DIM


def check_view_results(ns):
    """fig_clean shows clean test images; fig_results shows the same images noisy, denoised and clean, in that order."""
    require(ns, *DEFINES["view_results"])
    names = ["x_test", "x_test_noisy", "x_test_denoised", "x_train", "x_train_noisy", "reconstructions"]
    earlier_images(ns, "x_test", "data")
    clean_sources = row_sources(ns["fig_clean"], "fig_clean", ns, names)
    if any("x_test" not in row.arrays for row in clean_sources):
        scaled = (
            " (a scale mistake: show x_test itself, pixels in [0, 1])" if any(r.scaled for r in clean_sources) else ""
        )
        raise Failed(
            f"fig_clean shows {', '.join(shown(clean_sources))}{scaled}: it should show clean test images (x_test), "
            "the ones the DAE will be asked to restore"
        )
    earlier_images(ns, "x_test_noisy", "noisy_data")
    earlier_images(ns, "x_test_denoised", "predictions")
    sources = row_sources(ns["fig_results"], "fig_results", ns, names)
    check_rows(
        sources,
        "fig_results",
        ["x_test_noisy", "x_test_denoised", "x_test"],
        "so that each column lets the reader compare, for one test image, what the DAE was given, what it made of "
        "it and what it should have made",
    )
    return "both figures show the right arrays"


def check_loss_curve(ns):
    """fig_loss: the DAE's training and validation loss per epoch, from history."""
    require(ns, *DEFINES["loss_curve"])
    history = prerequisite(ns, "history", "dae_training")
    fig = ns["fig_loss"]
    if not isinstance(fig, FigureInfo):
        raise Failed(f"fig_loss should be a matplotlib Figure, got {type_name(fig)}: helpers.plot_history returns one")
    losses = history.history if isinstance(history, HistoryInfo) else None
    if not losses or "loss" not in losses:
        raise Blocked("dae_training", "history is not the History of dae's training")
    curves = fig.lines

    def shows(values):
        """Whether one of the figure's lines plots these values."""
        values = np.asarray(values, dtype="float64")
        return any(curve.shape == values.shape and np.allclose(curve, values) for curve in curves)

    for key, curve in (("loss", "training"), ("val_loss", "validation")):
        if key in losses and not shows(losses[key]):
            other = ns.get("ae_history")
            if isinstance(other, HistoryInfo) and key in other.history and shows(other.history[key]):
                raise Failed(
                    "fig_loss shows the regular autoencoder's losses (ae_history): the card asks for the DAE's, "
                    "from history"
                )
            twin = next((k for k in losses if k != key and np.shape(losses[k]) == np.shape(losses[key])), None)
            drawn = [line for line in curves if np.shape(line) == np.shape(losses[key])]
            if (
                twin
                and len(drawn) >= 2
                and all(np.allclose(line, np.asarray(losses[twin], "float64")) for line in drawn)
            ):
                raise Failed(
                    f"fig_loss draws history.history[{twin!r}] twice: its {curve} curve is the same numbers as the "
                    f"other; the {curve} loss is history.history[{key!r}]"
                )
            epochs = len(losses[key])
            if sum(np.asarray(line).shape == (epochs,) for line in curves) >= 2:  # a loss figure, other numbers
                raise Failed(
                    f"fig_loss's lines are not history's {curve} loss (history.history[{key!r}]): it was drawn "
                    "from an earlier training, or from other numbers; run its cell again after dae's last training"
                )
            raise Failed(
                f"fig_loss has no {curve} curve (history.history[{key!r}]): the card asks for both the training "
                "and the validation loss per epoch, so you can see whether the DAE does as well on images it "
                "never trained on"
            )
    return "fig_loss shows the DAE's losses"


CHECKS = {
    "data": check_data,
    "regular_autoencoder": check_regular_autoencoder,
    "reconstructions": check_reconstructions,
    "noisy_data": check_noisy_data,
    "dae_model": check_dae_model,
    "dae_training": check_dae_training,
    "predictions": check_predictions,
    "view_results": check_view_results,
    "loss_curve": check_loss_curve,
}
