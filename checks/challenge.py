"""The class challenge's rules and score: one place, read by the student's `check("challenge")` and by the grader.

An entry is `challenge_model`, a Keras model the student designs (any architecture), trained on the training set
only, that maps noisy images in the lab's format (rows of 784 pixels in [0, 1], Gaussian noise of NOISE_FACTOR,
clipped) to denoised images of the same shape. Its score is the mean PSNR (dB) over the images, with the mean SSIM
beside it (scikit-image's metrics, through levelup.mean_scores). The student's check scores it on a public practice
set; the grader scores it on a hidden set drawn at grading time that no kernel ever holds the clean images of
(grading/challenge.py).
"""

TASK = "challenge"  # check("challenge"): optional, its own column, never in the core total
NAME = "challenge_model"  # the variable an entry is read from
BUDGET_S = 180  # seconds of `fit` on 2 CPU cores, all training of the entry together
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


# ---------------------------------------------------------------- the student's check: check("challenge")

BAR_PSNR, BAR_SSIM = (
    19.12,
    0.704,
)  # the answer key's entry on the practice set (solution.ipynb's challenge section, `make lab`)
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


def check_challenge(ns):
    """challenge_model: admissible (a Keras model, rows of 784 in, rows of 784 in [0, 1] out, at most MAX_PARAMS weights,
    fast enough), and its score on the practice set; return the message. Raise NotAttempted or Failed."""
    from checks.verdicts import require

    require(ns, NAME)
    params = admissible_model(ns[NAME])
    clean, noisy = practice_images(ns.get("DATASET"))
    out, seconds = denoised_rows(ns[NAME], noisy)
    psnr, ssim = score(clean, out)
    bar = ""
    if BAR_PSNR is not None:
        shown = round(psnr, 2)  # as printed: a score printed like the bar is level with it
        side = "above" if shown > BAR_PSNR else "level with" if shown == BAR_PSNR else "below"
        bar = f", {side} the bar to beat ({BAR_PSNR:.2f} dB, SSIM {BAR_SSIM:.3f})"
    return (
        f"{NAME} is admissible ({params:,} weights, {len(noisy):,} practice images denoised in {seconds:.1f} s; "
        f"the training budget and the training set only are yours to keep); practice set: PSNR {psnr:.2f} dB, "
        f"SSIM {ssim:.3f}{bar}. The grade scores it on a hidden set of {HIDDEN_COUNT:,} images nobody has seen, "
        "slightly warped, so expect a score a little below this one"
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
