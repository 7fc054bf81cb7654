"""Judging noise (its kind, strength and clipping, and which arrays it was added to) and what a DAE learned from
it (which way it was trained, how long, on which set, validated on what).
"""

import helpers  # first: it imports Keras without the backend's start-up chatter
from helpers import NOISE_FACTOR  # the lab's numbers, defined in helpers

import keras
import numpy as np

from checks.snapshots import HistoryInfo, type_name
from checks.variables import (
    REFERENCE_SEED,
    SAMPLE,
    as_array,
    earlier_images,
    pixel_rows,
    run_model,
    same_rows,
    scale_between,
    slips,
    source_images,
)
from checks.verdicts import Failed, Suspect

NOISY_TARGET_RATIO = 2.5  # see dae_direction


CLEAN_INPUT_GAP = 0.025  # see dae_direction


TEST_SET_MEMORY = 0.001  # see trained_on_test_set


VAL_LOSS_TOLERANCE = 0.003  # see check_validation


PIXEL_SPREAD = 0.5  # see pixel_spread


LAB_STEPS = 30 * 469  # the lab's training: 30 epochs of 469 batches of 128 images


def shape_of(value):
    """The array shape of value, or None when it has none."""
    try:
        return np.shape(value)
    except Exception:
        return None


def built_from(value, name, noisy):
    """Whether noisy rows look like the rows of value plus clipped Gaussian noise."""
    try:
        clean = pixel_rows(value, name)
    except Failed:
        return False
    if len(clean) < len(noisy):
        return False
    return helpers.fitted_noise(clean[: len(noisy)].astype("float64"), noisy)[1]


def rows_match(clean, noisy):
    """Whether each noisy row is the clean row of the same index (better correlated with it than with the next one)."""

    def correlation(a, b):
        """Mean correlation of the rows of a with the rows of b."""
        a, b = a - a.mean(axis=1, keepdims=True), b - b.mean(axis=1, keepdims=True)
        norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        return float(np.mean(np.sum(a * b, axis=1) / np.maximum(norms, 1e-12)))

    return correlation(noisy, clean) > correlation(noisy, np.roll(clean, 1, axis=0)) + 0.05


def faint(clean):
    """Whether images are too faint for noise of the lab's strength to leave them recognisable (scaled twice, say)."""
    return float(np.std(clean)) < NOISE_FACTOR / 20


def noise_correlation(c1, n1, c2, n2):
    """The correlation of two sets' noise (noisy - clean) over the pixels neither clipped, or 0 when too few are left."""
    k = min(len(c1), len(c2))
    d1, d2 = n1[:k] - c1[:k], n2[:k] - c2[:k]
    free = (n1[:k] > 0) & (n1[:k] < 1) & (n2[:k] > 0) & (n2[:k] < 1)
    if free.sum() < 1000 or np.std(d1[free]) == 0 or np.std(d2[free]) == 0:
        return 0.0
    return float(np.corrcoef(d1[free], d2[free])[0, 1])


def pixel_spread(c, n):
    """The share of the noise's variance found between the pixels of one image, over the pixels the clip left free.

    About 1 for the lab's noise (each pixel its own draw); 0 for one draw per image, shared by its pixels
    (rng.standard_normal((len(x), 1))); PIXEL_SPREAD is the bar between them. 1 when too few pixels are free.
    """
    d, free = n - c, (n > 0) & (n < 1)
    counts = free.sum(axis=1)
    rows = counts >= 20
    if rows.sum() < 10:
        return 1.0
    if np.std(d[free]) < 1e-4:  # one value for every pixel of every image (to float rounding), or no noise at all
        return 0.0 if abs(np.mean(d[free])) > 1e-4 else 1.0
    d, free, counts = d[rows], free[rows], counts[rows]
    means = (d * free).sum(axis=1) / counts
    within = (((d - means[:, None]) ** 2) * free).sum(axis=1) / counts
    return float(np.mean(within) / np.var(d[free]))


CLIPPED_SHARE = 0.01  # see rescaled_noise


def rescaled_noise(c, n):
    """(slope, black, factor, Gaussian?) when noisy rows n (in [0, 1]) are a straight-line rescaling of c plus noise
    (min-max instead of clipping), else None.

    Clipping piles values up at exactly 0 and 1 (about a quarter of the lab's noisy pixels: half of every black one);
    min-max rescaling leaves one 0 and one 1 per set, and n = slope * (c + noise) + black, so a least-squares line of
    n on c gives the slope and black level, and the residual's spread over the slope the noise's factor. Clipped noise
    leaves CLIPPED_SHARE or more of its pixels at 0 or 1; a residual that is normal has 4.6 % of its values beyond
    twice its standard deviation.
    """
    if np.mean((n <= 0) | (n >= 1)) >= CLIPPED_SHARE or np.std(c) == 0:
        return None
    slope = float(np.cov(c.ravel(), n.ravel())[0, 1] / np.var(c))
    black = float(np.mean(n) - slope * np.mean(c))
    residual = n - (slope * c + black)
    if not 0.05 < slope < 0.95 or abs(float(np.mean(residual))) > 0.01:
        return None
    spread = float(np.std(residual))
    tails = float(np.mean(np.abs(residual) > 2 * spread))
    return slope, black, spread / slope, 0.035 < tails < 0.06


def noise_mistake(name, clean_name, c, n):
    """What is wrong with n (clipped to [0, 1]) as c plus clipped noise of factor NOISE_FACTOR, or "" when nothing is.

    Judged on the pixels whose clean value lies in [0, 1], so that noise added to a clean set of another scale (the
    data task's mistake) is judged as the noise it is.
    """
    if pixel_spread(c, n) < PIXEL_SPREAD:
        return (
            f"{name} gives all the pixels of an image one noise value: noise that differs from image to image only "
            "is not the card's; each pixel gets its own draw, so the noise has the shape of the whole set, one "
            "number per pixel"
        )
    rescaled = rescaled_noise(c, n)
    if rescaled is not None:
        slope, black, factor, gaussian = rescaled
        return (
            f"{name} was brought back to [0, 1] by rescaling (min-max: minus its smallest value, divided by its "
            f"range), not by clipping: every pixel is squeezed to {slope:.2f} of its value and black sits at "
            f"{black:.2f} instead of 0, so the images are greyer and fainter than the card's; "
            + (
                f"the noise itself is Gaussian of factor {factor:.2f}. "
                if gaussian
                else "and its noise is not Gaussian either (uniform?). "
            )
            + "Clipping only cuts the values below 0 and above 1, and leaves every other pixel as it is"
        )
    zeros = n[c == 0]
    enough = zeros.size >= 2000
    if enough and not helpers.centred(zeros):
        return (
            f"{1 - np.mean(zeros <= 0):.0%} of its noise is positive, where half should be: Gaussian noise has "
            "mean 0, so it darkens pixels as often as it brightens them (rng.random and rng.uniform(0, 1) give "
            "positive numbers only)"
        )
    inside = (c >= 0) & (c <= 1)
    factor, matches = helpers.fitted_noise(c[inside], n[inside])
    if enough and not helpers.normal_shape(zeros, factor):
        return (
            "its noise is not normally distributed: the card's noise is Gaussian, N(0, 1) times NOISE_FACTOR "
            "(rng.standard_normal or rng.normal), not uniform (rng.uniform, rng.random)"
        )
    if matches and abs(factor - NOISE_FACTOR) <= 0.03:
        return ""
    if matches and abs(factor - NOISE_FACTOR**2) <= 0.03:
        return (
            f"{name} looks like noise of factor {factor:.2f} = {NOISE_FACTOR} x {NOISE_FACTOR}: NOISE_FACTOR was "
            "applied twice (a normal distribution of scale NOISE_FACTOR, then times NOISE_FACTOR again); the "
            "noise's standard deviation is NOISE_FACTOR, once"
        )
    if matches:
        return (
            f"{name} looks like noise of factor {factor:.2f}, not {NOISE_FACTOR}: the noise's standard deviation "
            f"is NOISE_FACTOR ({NOISE_FACTOR}) times that of standard normal noise"
        )
    return (
        f"{name} does not look like {clean_name} plus Gaussian noise: each pixel gets its own draw of "
        f"NOISE_FACTOR * N(0, 1), and the sum is clipped to [0, 1]"
    )


def made_noisy(ns, clean_name, clean):
    """Whether the clean set itself holds noise: it differs from the lab's images scaled as noise would make it."""
    source = source_images(ns, clean_name)
    if len(source) != len(clean):
        return False
    k = min(SAMPLE, len(clean))
    scaled = source[:k].reshape(k, -1).astype("float64") / 255
    if scaled.shape != clean[:k].shape or same_rows(clean[:k].astype("float64"), scaled):
        return False
    if scale_between(clean[:k], scaled) is not None:  # scaled another way (the data task's mistake), not noisy
        return False
    if any(same_rows(clean[:k].astype("float64"), made) for made in slips(scaled * 255).values()):
        return False  # another slip of the data task's (// for /, each image rescaled on its own), not noise
    return helpers.noise_kind(scaled, clean[:k].astype("float64")) is not None


def check_noise(ns, name, clean_name, other_name):
    """Raise Failed unless ns[name] is ns[clean_name] plus clipped Gaussian noise of factor NOISE_FACTOR.

    The noise is judged against the student's own clean set, whatever its scale (a mistake in it is the data
    task's): only rows of 784 numbers are needed.
    """
    clean = earlier_images(ns, clean_name, "data")
    other_shape = shape_of(ns.get(other_name))
    x = as_array(ns[name], name)
    if x.ndim == 2 and x.shape != clean.shape and x.shape == other_shape:
        raise Failed(
            f"{name} has the shape of {other_name}, {x.shape}: each noisy set is its own clean set plus noise, "
            f"so {name} is made from {clean_name}"
        )
    if x.shape != clean.shape:
        raise Failed(
            f"{name} has shape {x.shape} but {clean_name} has {clean.shape}: noise changes pixels, not the shape; "
            f"add it to {clean_name} itself"
        )
    if x.dtype.kind != "f" or not np.isfinite(x).all():
        pixel_rows(x, name)  # integers, NaN or infinity: its hint
    c, n = clean[:SAMPLE].astype("float64"), x[:SAMPLE].astype("float64")
    low, high = float(x.min()), float(x.max())
    scaled = float(c.max()) <= 1  # the data task's scaling, right or not, is not this task's business
    if high > 50 and scaled:  # far beyond what noise on [0, 1] images reaches
        raise Failed(
            f"{name}'s pixels go up to {high:.0f}: the noise was added to the 0-255 images; the noise is added to "
            f"{clean_name}, whose pixels are already scaled to [0, 1], then clipped"
        )
    if made_noisy(ns, clean_name, clean):
        raise Failed(
            f"{clean_name} itself holds noise now: the noise was added in place (+=, or np.clip with out=), which "
            f"changes {clean_name} too, and the DAE needs it clean as its targets; make {name} a new array and run "
            "the data cell again"
        )
    if np.array_equal(c, n):
        k = min(SAMPLE, len(c))
        source = source_images(ns, clean_name)[:k].reshape(k, -1).astype("float64") / 255
        how = (
            ""
            if source.shape == c[:k].shape and same_rows(c[:k], source)
            else f" (or it was added in place, +=, which made {clean_name} noisy too)"
        )
        raise Failed(f"{name} equals {clean_name}: no noise was added{how}; the card's noise is NOISE_FACTOR * N(0, 1)")
    if 0 < high <= 1 / 255 + 1e-6 < float(c.max()):
        raise Failed(
            f"{name}'s pixels only reach {high:.4f} (1/255): the noise was added and clipped before dividing "
            f"by 255; add it to {clean_name}, already in [0, 1]"
        )
    spread = float(np.std(n - c))
    if spread < 0.01 and abs(spread * 255 - NOISE_FACTOR) < 0.25:
        raise Failed(
            f"{name} differs from {clean_name} by about {spread:.4f} a pixel, 255 times too little: the noise "
            f"was added to the 0-255 images before dividing by 255; add it to {clean_name}, already in [0, 1]"
        )
    unclipped = low < 0 or high > 1
    n = np.clip(n, 0, 1)
    if not (faint(c) or rows_match(c, n)):  # faint images (the data task's mistake) cannot be told apart by row
        if other_name in ns and built_from(ns[other_name], other_name, n):
            raise Failed(f"{name} was built from {other_name}: each noisy set is its own clean set plus noise")
        raise Failed(
            f"{name}'s rows are not {clean_name}'s images in order: row i of the noisy set must be image i made "
            "noisy (no shuffling or reordering), so that the DAE learns each noisy image's own clean version"
        )
    if noise_correlation(c[:-1], n[:-1], c[1:], n[1:]) > 0.5:
        raise Failed(
            f"every image of {name} has the same noise pattern: each pixel of each image gets its own random "
            "draw, so the noise has the shape of the whole set"
        )
    mistake = noise_mistake(name, clean_name, c, n)
    if unclipped:
        raise Failed(
            f"{name}'s pixels run from {low:.2f} to {high:.2f}: pixels must stay in [0, 1], so clip them back "
            "to [0, 1] after adding the noise (np.clip)" + (f"; also, once clipped, {mistake}" if mistake else "")
        )
    if mistake:
        raise Failed(mistake if mistake.startswith(name) else f"{name}: {mistake}")


def dae_direction(dae, clean, noisy, factor=NOISE_FACTOR, clipped=True, history=None, error=Suspect):
    """Raise error (Suspect) if the DAE was trained towards noisy targets or from clean inputs; else return its BCE.

    Measured on small and full runs: a model trained noisy -> clean maps noisy images close to the
    clean ones (mean squared error to clean at most 1.3 times that to E[noisy | clean]; at most 0.9
    once trained for a few epochs), and maps clean inputs no better than noisy ones (BCE gap <= -0.01).
    One trained towards noisy targets outputs the grey, noise-averaged image E[noisy | clean]
    (ratio >= 3.5), and its training loss is near its loss against noisy targets; one barely trained
    outputs grey images too (ratio up to 2.7), but its training loss does not say noisy targets.
    One trained clean -> clean restores clean inputs much better than noisy ones (BCE gap >= +0.06).
    One trained clean -> noisy (inputs and targets swapped) shows both: ratio 3.6 and gap +0.09 in the corpus.
    Outputs are clipped to [0, 1] first, as binary cross-entropy clips them (a relu or linear output layer).
    """
    from_noisy = np.clip(run_model(dae, noisy, "dae"), 0, 1)
    from_clean = np.clip(run_model(dae, clean, "dae"), 0, 1)
    expected = helpers.noisy_mean(clean, factor) if clipped else clean
    ratio = np.mean((from_noisy - clean) ** 2) / max(np.mean((from_noisy - expected) ** 2), 1e-12)
    loss = helpers.mean_bce(clean, from_noisy)
    trained = history.history["loss"][-1] if history is not None and len(history.history["loss"]) else None
    towards_noisy = trained is None or abs(trained - helpers.mean_bce(noisy, from_noisy)) < abs(trained - loss)
    noisy_targets = ratio > NOISY_TARGET_RATIO and towards_noisy and loss < 0.6
    clean_inputs = loss - helpers.mean_bce(clean, from_clean) > CLEAN_INPUT_GAP
    if noisy_targets and clean_inputs:
        raise error(
            "dae turns clean images into noisy-looking ones: its inputs and targets are swapped. A denoising "
            "autoencoder is shown a noisy image as its input and must learn to give back the clean image as its "
            "target"
        )
    if noisy_targets:
        raise error(
            "dae learned to output noisy images: its targets must be the clean images. A denoising autoencoder "
            "must be shown what each image looked like without the noise, or it learns to reproduce the noise"
        )
    if clean_inputs:
        raise error(
            "dae restores clean images far better than noisy ones, so it was trained on clean inputs: its inputs "
            "must be the noisy images, the ones it will have to clean up"
        )
    return loss


def under_trained(dae, history, loss):
    """The hint for a DAE whose test loss is too high: how much it trained (History.params, the optimizer's steps)."""
    params = history.params if history is not None else {}
    epochs, batches = params.get("epochs"), params.get("steps")
    done = (f"{epochs} epoch(s) of {batches} batches, " if epochs and batches else "") + f"{dae.steps:,} steps in all"
    if dae.steps < LAB_STEPS / 2:
        return (
            f"dae's test BCE is {loss:.2f} (about 0.31 expected): it trained too little ({done}; the lab trains "
            f"30 epochs of all 60,000 images in batches of 128, {LAB_STEPS:,} steps): train it on the whole "
            "noisy training set for the card's 30 epochs of batch 128"
        )
    return (
        f"dae's test BCE is {loss:.2f} (about 0.31 expected) after {done}: it learned too little from its "
        "training; the card's optimizer is adam at its default learning rate (0.001)"
    )


class Outputs:
    """One model's outputs on the student's first 10,000 (clean, noisy) rows, and binary cross-entropies against
    them, each computed once per judgement (trained_on_test_set and check_validation read the same ones)."""

    def __init__(self, ns, model):
        self.ns, self.model, self.pairs, self.outputs, self.logs = ns, model, {}, {}, {}

    def pair(self, clean_name, noisy_name):
        """student_pairs(ns, clean_name, noisy_name), read once."""
        if (clean_name, noisy_name) not in self.pairs:
            self.pairs[clean_name, noisy_name] = student_pairs(self.ns, clean_name, noisy_name)
        return self.pairs[clean_name, noisy_name]

    def run(self, key, x):
        """The model's output for x, which `key` names (the same key, the same input)."""
        if key not in self.outputs:
            self.outputs[key] = run_model(self.model, x, "dae")
        return self.outputs[key]

    def bce(self, targets, key, x):
        """helpers.mean_bce(targets, the model's output for x), its logarithms taken once per output."""
        if key not in self.logs:
            epsilon = keras.config.epsilon()
            p = np.clip(self.run(key, x), epsilon, 1 - epsilon)
            self.logs[key] = np.log(p), np.log(1 - p)
        log_p, log_q = self.logs[key]
        return float(np.mean(-(targets * log_p + (1 - targets) * log_q), dtype="float64"))


def student_pairs(ns, clean_name, noisy_name, limit=10000):
    """(clean, noisy) first rows of the student's arrays as float32 when both are usable rows of the same shape, else None."""
    try:
        clean = pixel_rows(ns[clean_name], clean_name)[:limit]
        noisy = as_array(ns[noisy_name], noisy_name)
    except (KeyError, Failed):
        return None
    noisy = noisy[:limit] if noisy.ndim else noisy  # a scalar has no rows
    if noisy.shape != clean.shape or not np.isfinite(noisy).all():
        return None
    return np.asarray(clean, "float32"), np.asarray(noisy, "float32")


def trained_on_test_set(ns, dae, factor, clipped, outputs=None):
    """Raise Suspect if dae restores x_test_noisy's own noise clearly better than fresh noise on the same images.

    A model remembers a little of the exact noisy images it was trained on: measured on Fashion-MNIST,
    its loss on 10,000 of them is 0.0007 (1 epoch), 0.003 (5 epochs) and 0.0036 (20 epochs) lower than
    on the same images with fresh noise, while for noisy images it never saw the difference is chance,
    within about 0.0005 (TEST_SET_MEMORY is twice that). x_train_noisy, which it should have been
    trained on, is the yardstick: the test set must be remembered more than twice as well.
    """
    memory, outputs = {}, outputs or Outputs(ns, dae)
    for clean_name, noisy_name, seed in (("x_test", "x_test_noisy", 1), ("x_train", "x_train_noisy", 2)):
        pair = outputs.pair(clean_name, noisy_name)
        if pair is None:
            continue
        clean, noisy = pair
        fresh = helpers.add_noise(clean, factor, np.random.default_rng(REFERENCE_SEED + seed), clip=clipped)
        memory[noisy_name] = outputs.bce(clean, ("fresh", noisy_name), fresh) - outputs.bce(clean, noisy_name, noisy)
    test = memory.get("x_test_noisy", 0.0)
    if test > max(2 * memory.get("x_train_noisy", 0.0), TEST_SET_MEMORY):
        raise Suspect(  # a model of the wrong architecture can show this by chance: then dae_model blocks it
            "dae was trained on the test set (it restores x_test_noisy much better than fresh noisy copies "
            "of the same images): it must learn from the training set only; the test set measures how it does on "
            "images it never saw, for validation and predictions"
        )


def check_validation(ns, dae, history, outputs=None):
    """Raise Failed if history's last val_loss is dae's loss on a pair other than x_test_noisy -> x_test.

    The wrong pairs: clean inputs (x_test -> x_test), noisy targets (x_test_noisy -> x_test_noisy) or both swapped
    (x_test -> x_test_noisy); each is named when the last val_loss is within VAL_LOSS_TOLERANCE of dae's loss on it
    and clearly off its loss on the right pair.
    """
    values = history.history.get("val_loss")
    outputs = outputs or Outputs(ns, dae)
    pair = outputs.pair("x_test", "x_test_noisy")
    if values is None or not len(values) or pair is None:
        return
    clean, noisy = pair
    last = float(values[-1])
    right = outputs.bce(clean, "x_test_noisy", noisy)
    wrong = (
        ("on clean images", "x_test -> x_test", outputs.bce(clean, "x_test", clean)),
        ("against noisy targets", "x_test_noisy -> x_test_noisy", outputs.bce(noisy, "x_test_noisy", noisy)),
        ("with inputs and targets swapped", "x_test -> x_test_noisy", outputs.bce(noisy, "x_test", clean)),
    )
    for how, pairing, loss in wrong:
        if abs(last - loss) < VAL_LOSS_TOLERANCE < abs(last - right) / 3:
            raise Failed(
                f"dae was validated {how} (its last val_loss, {last:.4f}, is its loss on {pairing}): validation "
                "measures the task the DAE learns, on test images it never trained on, so its inputs are the noisy "
                "test images and its targets the clean ones"
            )


VAL_MATCH = 1e-5  # how close a History's last val_loss is to the model's loss on the set it was validated on (float32
# sums over thousands of images: measured within 6e-7, tests/test_spec.py), tight so that chance matches are rare


SPLITS = tuple(round(0.05 * k, 2) for k in range(1, 11))  # the validation_split fractions looked for: 0.05 to 0.5


ROUND_SIZES = (100, 128, 200, 250, 256, 500, 512, 1000, 1024, 2000, 2048, 2500, 4096, 5000, 8192)  # subsets' sizes


def row_losses(model, name, targets, inputs):
    """The model's binary cross-entropy on each row (targets from inputs), as Keras computes it, in float64."""
    epsilon = keras.config.epsilon()
    p = np.clip(run_model(model, np.asarray(inputs, "float32"), name), epsilon, 1 - epsilon)
    t = np.asarray(targets, "float64")
    return np.mean(-(t * np.log(p) + (1 - t) * np.log(1 - p)), axis=1)


def pair_rows(ns, targets_name, inputs_name):
    """(targets, inputs) of the student's arrays when both are rows of 784 finite numbers of one shape, else None."""
    try:
        targets = pixel_rows(ns[targets_name], targets_name)
        inputs = as_array(ns[inputs_name], inputs_name)
    except (KeyError, Failed):
        return None
    if inputs.shape != targets.shape or not np.isfinite(inputs).all():
        return None
    return targets, inputs


def validated_on(ns, model, name, last, test, training):
    """Which set a History's last val_loss was measured on, judged by the model's own loss on each: "test" when the
    test pair (or a subset of its first rows) gives it, else a phrase naming the training set's part that does
    (fit's validation_split keeps aside the training set's last rows), else None (nothing explains it)."""
    pair = pair_rows(ns, *test)
    if pair is not None:
        losses = row_losses(model, name, *pair)
        sizes = [n for n in (*ROUND_SIZES, len(losses)) if n <= len(losses)]
        if any(abs(float(np.mean(losses[:n])) - last) < VAL_MATCH for n in sizes):
            return "test"
    pair = pair_rows(ns, *training)
    if pair is None:
        return None
    targets, inputs = pair
    n = len(targets)
    start = min(int(np.floor(n * (1 - max(SPLITS)))), n - 1)
    tail = row_losses(model, name, targets[start:], inputs[start:])
    for fraction in SPLITS:
        split_at = int(np.floor(n * (1 - fraction)))  # as fit's validation_split computes it (train_validation_split)
        if split_at < n and abs(float(np.mean(tail[split_at - start :])) - last) < VAL_MATCH:
            return f"the last {fraction:.0%} of the training images (validation_split={fraction:g})"
    head = row_losses(model, name, targets[: min(n, 10000)], inputs[: min(n, 10000)])
    for size in (*ROUND_SIZES, len(head)):
        if size <= len(head) and abs(float(np.mean(head[:size])) - last) < VAL_MATCH:
            return "training images"
    return None


def check_validation_set(ns, history_name, model, history, test, training, what):
    """Raise Failed if the last val_loss of history is the model's loss on its training images (a validation_split,
    or the training pairs themselves) rather than on the test pair the card names (test: (inputs, targets) names).

    what: the card's validation pair in words, for the hint."""
    values = history.history.get("val_loss")
    if values is None or not len(values) or not np.isfinite(values[-1]):
        return
    name = "dae" if history_name == "history" else "autoencoder"
    inputs, targets = test
    found = validated_on(ns, model, name, float(values[-1]), (targets, inputs), (training[1], training[0]))
    if found not in (None, "test"):
        raise Failed(
            f"{name} was validated on {found}, not the test set (its last val_loss, {float(values[-1]):.4f}, is its "
            f"loss there): validation measures how the model does on images it never trains on, so the card "
            f"validates on the test images, {what}, with fit's validation_data"
        )


def check_history(ns, history_name, name, model, test, training, what):
    """Raise Failed unless ns[history_name] is the History of the model's training, validated as the card says."""
    if history_name not in ns:
        raise Failed(f"{name} was trained but its History was not kept: keep what fit returns, as {history_name}")
    history = ns[history_name]
    if not isinstance(history, HistoryInfo) or "loss" not in history.history:
        raise Failed(
            f"{history_name} should be the History that fit returns, got {type_name(history)}: keep what fit "
            f"returns, as {history_name}"
        )
    if history.model != model.ident:
        raise Failed(f"{history_name} comes from another model's training: keep the History of {name}'s own training")
    if "val_loss" not in history.history:
        raise Failed(
            f"{history_name} has no val_loss: the card asks to validate on the test images, {what}, after each "
            "epoch, to see how the model does on images it never trained on"
        )
    check_validation_set(ns, history_name, model, history, test, training, what)
