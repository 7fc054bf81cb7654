"""The class challenge's rules and score: one place, read by the student's `check("challenge")` and by the grader.

An entry is `challenge_model`, a Keras model the student designs from their own layers, trained on the training set
only, that maps noisy images in the lab's format (rows of 784 pixels in [0, 1], Gaussian noise of NOISE_FACTOR,
clipped) to denoised images of the same shape. Its score is the mean PSNR (dB) over the images, with the mean SSIM
beside it (scikit-image's metrics, through levelup.mean_scores). The student's check scores it on a public practice
set; the grader scores it on a hidden set drawn at grading time that no kernel ever holds the clean images of
(grading/challenge.py).

The training budget is counted, not timed: BUDGET_UPDATES optimizer updates of at most BATCH_SIZE images, read from
the optimizers that trained the entry (training_updates), the same on a student's laptop and in the grader, so a
seeded entry trains the same way in both. An entry that is one of the lab's ready-made models (lab_model: the layer
names its builder gives) is not the student's design and is refused by name.
"""

TASK = "challenge"  # check("challenge"): optional, its own column, never in the core total
NAME = "challenge_model"  # the variable an entry is read from
BATCH_SIZE = 128  # images an optimizer update may average over, at most
BUDGET_EPOCHS = 10  # passes over the 60,000 training images at BATCH_SIZE: the budget, in the card's words
BUDGET_UPDATES = BUDGET_EPOCHS * -(-60_000 // BATCH_SIZE)  # 4,690 optimizer updates, all training of the entry together
MAX_TRAINING_S = 600  # the grader's safety limit on its own 2 cores (not the budget): see grading/challenge.py
MAX_PARAMS = 1_000_000  # weights of an entry (the core DAE has 50,992; benchmarks/hybrid.py's 483,860)
MAX_INFERENCE_S = 60  # to denoise HIDDEN_COUNT images on 2 CPU cores
HIDDEN_COUNT = 2000  # images in the grader's hidden set
PRACTICE_COUNT = 1000  # images in the public practice set: the first test images
PRACTICE_SEED = 20261204  # the practice set's noise (public: the hidden set's seeds are the grader's secret)


def score(clean, denoised):
    """(mean PSNR in dB, mean SSIM) of denoised rows against clean rows (both n x 784, in [0, 1])."""
    import levelup

    return levelup.mean_scores(clean, denoised)


def practice_set(x_test, noise_factor=None):
    """(clean, noisy): the first PRACTICE_COUNT rows of x_test and their noisy copies, from PRACTICE_SEED."""
    import helpers

    import numpy as np

    clean = np.asarray(x_test[:PRACTICE_COUNT], dtype="float32")
    factor = helpers.NOISE_FACTOR if noise_factor is None else noise_factor
    return clean, helpers.add_noise(clean, factor, np.random.default_rng(PRACTICE_SEED))


# The lab's ready-made models, which an entry may not be (nor hold): the builder, and the layer names it gives, in
# order (an Input aside), as a pattern. A verbatim copy of a builder's code gives the same names; a student's own
# design, even one that reuses a name such as "code", gives others. Reusable all the same: helpers.ClippedGaussianNoise
# and levelup.with_fresh_noise around a model of your own, losses (hybrid.loss_with_ssim), optimizers and schedules
# (hybrid.compile_with_decay), the fit helpers (levelup.fit_timed), hybrid.to_patches and its block layers.
LAB_MODELS = {
    "helpers.build_autoencoder (the core DAE)": r"code reconstruction",
    "levelup.build_deep_autoencoder (the deep DAE)": r"(encode_\d+ )+code (decode_\d+ )+reconstruction",
    "levelup.build_conv_autoencoder (the convolutional DAE)": r"to_image patches code decode upsample to_pixels "
    r"reconstruction",
    "benchmarks/hybrid.py's build_hybrid_autoencoder (the hybrid DAE)": r"(dense_\d+ )*code coarse_logits (\w+ )*"
    r"refine_correction (\w+ )*refine_logits( (\w+ )*fine_correction (\w+ )*fine_logits)? reconstruction",
}
MAX_DEPTH = 8  # how deep models nested in models are looked into


def submodels(model, depth=0):
    """model and the Keras models nested in it (its layers that are models, recursively, MAX_DEPTH deep)."""
    import keras

    yield model
    if depth < MAX_DEPTH:
        for layer in getattr(model, "layers", ()):
            if isinstance(layer, keras.Model):
                yield from submodels(layer, depth + 1)


def lab_model(model):
    """The builder of the lab's ready-made model that model is or holds (LAB_MODELS, by its layer names), else None."""
    import re

    import keras

    for part in submodels(model):
        names = " ".join(layer.name for layer in part.layers if not isinstance(layer, keras.layers.InputLayer))
        for builder, pattern in LAB_MODELS.items():
            if re.fullmatch(pattern, names):
                return builder
    return None


def training_updates(namespace, model):
    """The optimizer updates that trained model: the iterations of each optimizer (counted once) of the Keras models in
    namespace that are model or hold it (a trainer such as levelup.with_fresh_noise's). An optimizer replaced by a
    new compile is no longer counted: compile once (the grader's clock, MAX_TRAINING_S, bounds the rest)."""
    import keras

    found = {}
    for value in [model, *namespace.values()]:
        if isinstance(value, keras.Model) and any(part is model for part in submodels(value)):
            optimizer = getattr(value, "optimizer", None)
            if isinstance(optimizer, keras.optimizers.Optimizer):
                found[id(optimizer)] = int(keras.ops.convert_to_numpy(optimizer.iterations))
    return sum(found.values())


# ---------------------------------------------------------------- the student's check: check("challenge")

BAR_PSNR, BAR_SSIM = (
    19.12,
    0.704,
)  # the answer key's entry on the practice set (solution.ipynb's challenge section, `make lab`)
# How closely the grader reproduces a practice score: the same seeded entry trained again (the same updates, the
# same batches) scores within REPRODUCE_DB of it, stated with a margin over what was measured (0.000 dB apart in one
# process, benchmarks/bench_challenge.py; a tiny seeded entry 15.25 dB on the grader's hidden set in a student's
# process and in the grader's kernels, graded alone and beside an identical copy; tests/test_challenge.py tests it).
# The hidden set, warped, costs the answer key's entry HIDDEN_GAP_DB (measured: 19.12 dB practice, 18.17 hidden).
REPRODUCE_DB, HIDDEN_GAP_DB = 0.05, 1.0
PRACTICE_INFERENCE_S = MAX_INFERENCE_S * PRACTICE_COUNT / HIDDEN_COUNT  # the time limit, scaled to the practice set
PIXEL_SLACK = 1e-6  # float rounding allowed outside [0, 1]


def practice_images(dataset):
    """(clean, noisy): the practice set of the dataset's test images, loaded here (the student's x_test may differ)."""
    import helpers

    key = dataset if dataset in helpers.KERAS_LOADERS else "fashion_mnist"
    if key not in _PRACTICE:
        (_, _), (test_images, _) = helpers.load_dataset(key)
        clean, noisy = practice_set(helpers.prepare_images(test_images))
        clean.setflags(write=False)
        noisy.setflags(write=False)
        _PRACTICE[key] = clean, noisy
    return _PRACTICE[key]


_PRACTICE = {}  # dataset -> (clean, noisy), loaded once per kernel


def admissible_model(value):
    """Return value if it is a built Keras model within MAX_PARAMS weights, else raise Failed naming the rule."""
    import keras

    from checks.verdicts import Failed

    if not isinstance(value, keras.Model):
        raise Failed(
            f"the rule on a Keras model: {NAME} is a {type(value).__name__}; build it from keras layers into a "
            "keras.Model (Sequential, functional or subclassed) and assign the model itself, not its output or "
            "a function"
        )
    try:
        params = int(value.count_params())
    except ValueError:
        raise Failed(
            f"the rule on a Keras model: {NAME} has no weights yet (it was never built); give it an input "
            "(keras.Input(shape=(784,))) or train it, so its layers are built"
        ) from None
    if params > MAX_PARAMS:
        raise Failed(
            f"the rule on size, at most {MAX_PARAMS:,} weights: {NAME} has {params:,} (count_params()); make it smaller "
            "(fewer or narrower layers, fewer filters)"
        )
    return params


def denoised_rows(model, noisy):
    """The model's output for noisy rows as a float64 numpy array, timed: (output, seconds); raise Failed on a rule."""
    import time

    import keras
    import numpy as np

    from checks.verdicts import Failed

    try:
        probe = np.asarray(keras.ops.convert_to_numpy(model(noisy[:2], training=False)))
    except Exception as err:  # any error of the student's model, in its own kernel
        raise Failed(
            f"the rule on input: {NAME} cannot take noisy images as rows of 784 pixels ({type(err).__name__}: "
            f"{str(err)[:200]}); its input must accept an array of shape (n, 784), float32 in [0, 1]: start it "
            "with keras.Input(shape=(784,)) and reshape inside the model if it needs 28×28 images"
        ) from None
    if probe.shape != (2, noisy.shape[1]):
        raise Failed(
            f"the rule on output: {NAME} turns 2 images of shape (2, 784) into an output of shape {probe.shape}; it "
            "must give back one denoised row of 784 pixels per image, shape (n, 784): end it with 784 outputs "
            "(reshape back to (784,) if it works on 28×28 images)"
        )
    start = time.perf_counter()
    try:
        out = model.predict(noisy, batch_size=250, verbose=0)
    except Exception as err:
        raise Failed(
            f"the rule on input: {NAME}.predict failed on the {len(noisy)} practice images ({type(err).__name__}: "
            f"{str(err)[:200]}); it must denoise any number n of rows of shape (n, 784)"
        ) from None
    seconds = time.perf_counter() - start
    out = np.asarray(keras.ops.convert_to_numpy(out) if not isinstance(out, np.ndarray) else out, dtype="float64")
    if out.shape != noisy.shape:
        raise Failed(
            f"the rule on output: {NAME} turns {noisy.shape[0]} images into an output of shape {out.shape}, expected "
            f"{noisy.shape}: one denoised row of 784 pixels per image"
        )
    if not np.isfinite(out).all():
        raise Failed(
            f"the rule on output: {NAME} outputs NaN or infinite values; its training diverged: train it again, with "
            "a smaller learning rate if it happens again"
        )
    low, high = float(out.min()), float(out.max())
    if low < -PIXEL_SLACK or high > 1 + PIXEL_SLACK:
        raise Failed(
            f"the rule on output: {NAME}'s outputs run from {low:.3g} to {high:.3g}, but denoised images are pixels in "
            "[0, 1]: end the model with a sigmoid, or clip inside the model (the grader uses what the model "
            "outputs, as it is)"
        )
    if seconds > PRACTICE_INFERENCE_S:
        raise Failed(
            f"the rule on inference time: {NAME} took {seconds:.1f} s to denoise the {len(noisy):,} practice images, "
            f"over the {PRACTICE_INFERENCE_S:.0f} s allowed ({MAX_INFERENCE_S} s for the grader's {HIDDEN_COUNT:,}); "
            "make it cheaper to run (fewer or smaller layers, less work per pixel)"
        )
    return out, seconds


def designed_here(model):
    """Raise Failed naming the rule on design if model is (or holds) one of the lab's ready-made models."""
    from checks.verdicts import Failed

    builder = lab_model(model)
    if builder is not None:
        raise Failed(
            f"the rule on design: {NAME} is the lab's ready-made model from {builder} (its layers carry the names that "
            "builder gives); the entry must be a design of your own: build it from keras layers yourself (the level-up "
            "models are worked examples to learn from, and the bars to beat)"
        )


def within_budget(ns, model):
    """The optimizer updates that trained model (training_updates); raise Failed naming the rule over BUDGET_UPDATES."""
    from checks.verdicts import Failed

    updates = training_updates(ns, model)
    if updates > BUDGET_UPDATES:
        raise Failed(
            f"the rule on the training budget, at most {BUDGET_UPDATES:,} optimizer updates: {NAME} was trained by "
            f"{updates:,} (its optimizers' iterations); train fewer epochs (levelup.fit_timed(..., "
            f"max_updates=challenge.BUDGET_UPDATES) refuses a fit that would go over), and start again from a new model"
        )
    return updates


def check_challenge(ns):
    """challenge_model: admissible (a Keras model of the student's own design, within the training budget, rows of 784
    in, rows of 784 in [0, 1] out, at most MAX_PARAMS weights, fast enough), and its score on the practice set; return
    the message. Raise NotAttempted or Failed."""
    from checks.verdicts import require

    require(ns, NAME)
    params = admissible_model(ns[NAME])
    designed_here(ns[NAME])
    updates = within_budget(ns, ns[NAME])
    clean, noisy = practice_images(ns.get("DATASET"))
    out, seconds = denoised_rows(ns[NAME], noisy)
    psnr, ssim = score(clean, out)
    bar = ""
    if BAR_PSNR is not None:
        shown = round(psnr, 2)  # as printed: a score printed like the bar is level with it
        side = "above" if shown > BAR_PSNR else "level with" if shown == BAR_PSNR else "below"
        bar = f", {side} the bar to beat ({BAR_PSNR:.2f} dB, SSIM {BAR_SSIM:.3f})"
    return (
        f"{NAME} is admissible ({params:,} weights, trained by {updates:,} of the {BUDGET_UPDATES:,} optimizer updates "
        f"allowed, {len(noisy):,} practice images denoised in {seconds:.1f} s; the training set only is yours to "
        "keep); "
        f"practice set: PSNR {psnr:.2f} dB, SSIM {ssim:.3f}{bar}. The grader runs your notebook again and trains it "
        f"the same way: seeded (keras.utils.set_random_seed), it scores within {REPRODUCE_DB:.2f} dB of this on the "
        f"practice set; its grade is the score on a hidden set of {HIDDEN_COUNT:,} images nobody has seen, slightly "
        f"warped, where the answer key's entry scores about {HIDDEN_GAP_DB:.1f} dB less than here"
    )


def evaluate(namespace):
    """check("challenge") on the variables in namespace: a Result, never raised (as checks.evaluate)."""
    from checks.verdicts import Failed, NotAttempted, Result

    try:
        return Result("passed", check_challenge(namespace))
    except NotAttempted as err:
        return Result("not attempted", str(err))
    except Failed as err:
        return Result("failed", f"{err}; see the challenge's card")
    except Exception as err:  # a value no rule foresaw: report it rather than crash the student's notebook
        return Result("failed", f"the check could not run {NAME} ({type(err).__name__}: {str(err)[:200]})")


def line(result):
    """The line check("challenge") prints: as other checks', with the score after "passed"."""
    if result.status == "passed":
        return f"{TASK}: passed - {result.message}"
    return result.line(TASK)
