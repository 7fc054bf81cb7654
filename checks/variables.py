"""Reading the student's variables: read arrays and models, sample rows, run a model, make reference images."""

import functools
import os

import helpers  # first: it imports Keras without the backend's start-up chatter
from helpers import INPUT_DIM, NOISE_FACTOR  # the lab's numbers, defined in helpers

import keras
import numpy as np

from checks.snapshots import ModelInfo, type_name
from checks.spec import TRAINING_SETTING
from checks.verdicts import Blocked, Failed

SAMPLE = 300  # test images a check runs a model on: stable statistics, a few milliseconds on a CPU


NOISE_RANGE = (0.3, 1.0)  # the noise factors a model may be judged at: the student's own, within these bounds.
# Below 0.3, clean inputs and noisy ones are too alike for the direction checks: measured with the cheap training, an
# autoencoder trained clean -> clean restores clean inputs better than noisy ones by a BCE of 0.004 / 0.016 / 0.025 /
# 0.036 / 0.098 at noise 0.1 / 0.2 / 0.25 / 0.3 / 0.5 (checks/noise.py's CLEAN_INPUT_GAP is 0.025), a DAE by -0.011
# to -0.065. Above 1.0 the images are mostly noise.


REFERENCE_SEED = 20240  # the fresh noise models are judged on (not the lab's SEED, so not the student's noise)


def prerequisite(ns, name, task):
    """Return variable `name` from an earlier task, or raise Blocked saying which task to finish first."""
    if name not in ns:
        raise Blocked(task, f"{name} is not defined (run its cell)")
    return ns[name]


def is_image_array(value):
    """Whether value is a non-empty numpy array of images (integers or floats), such as train_images."""
    return isinstance(value, np.ndarray) and value.ndim >= 2 and len(value) > 0 and value.dtype.kind in "fiu"


def as_array(value, name):
    """Return value as a numpy array of real numbers, or raise Failed saying what it is instead."""
    if value is None:
        raise Failed(f"{name} is None: assign it the array the task asks for")
    try:
        array = np.asarray(value)
    except Exception:
        raise Failed(f"{name} is a {type(value).__name__}, not an array of numbers") from None
    if array.dtype.kind not in "fiu":
        raise Failed(f"{name} should be an array of numbers, got a {type(value).__name__} of dtype {array.dtype}")
    return array


def pixel_rows(value, name):
    """Return value as a 2-D float array of flattened images with pixels in [0, 1], or raise Failed."""
    x = as_array(value, name)
    if x.ndim != 2:
        raise Failed(
            f"{name} has shape {x.shape}: a Dense layer reads each image as one flat row, so flatten each "
            f"28x28 image to one row of {INPUT_DIM} values"
        )
    if x.shape[1] != INPUT_DIM or len(x) == 0:
        raise Failed(f"{name} has shape {x.shape}: it should hold rows of {INPUT_DIM} pixels (28x28 images flattened)")
    if x.dtype.kind != "f" and x.max() <= 1:
        raise Failed(
            f"{name} holds whole numbers from {x.min()} to {x.max()} ({x.dtype}): the pixels were divided with // "
            "(floor division), which rounds each down to 0 or 1 (only pure white stays 1); divide with / to keep the "
            "fractions, as floats in [0, 1]"
        )
    if x.dtype.kind != "f":
        raise Failed(
            f"{name} holds integers ({x.dtype}), pixel values 0-255: the sigmoid output and binary cross-entropy "
            "work on pixels in [0, 1], so scale them to floats in [0, 1] by dividing by 255"
        )
    if not np.isfinite(x).all():
        raise Failed(f"{name} contains NaN or infinite values: rebuild it from the images")
    low, high = float(x.min()), float(x.max())
    if high > 50:  # 0-255 values: unscaled images
        raise Failed(
            f"{name}'s pixels go up to {high:g}: the sigmoid output and binary cross-entropy work on pixels in "
            "[0, 1], so scale them to [0, 1] by dividing by 255"
        )
    if high > 1 or low < 0:  # neither 0-255 nor [0, 1]: a slip in the scaling, or noise added to the set itself
        raise Failed(
            f"{name}'s pixels run from {low:g} to {high:g}, outside [0, 1]: either the scaling to [0, 1] slipped, "
            f"or noise was added to {name} itself, in place (+=), which changes the clean set too; run the data "
            "cell again, and make each noisy set a new array (see the `noisy_data` card)"
        )
    return x


def earlier_rows(ns, name, task):
    """Return the pixel rows `name` made by an earlier task, validated, or raise Blocked naming that task."""
    value = prerequisite(ns, name, task)
    try:
        return pixel_rows(value, name)
    except Failed as err:
        raise Blocked(task, str(err)) from None


def earlier_images(ns, name, task):
    """Return `name` from an earlier task as rows of 784 finite numbers (any range), or raise Blocked naming that task."""
    value = prerequisite(ns, name, task)
    try:
        x = as_array(value, name)
    except Failed as err:
        raise Blocked(task, str(err)) from None
    if x.ndim != 2 or x.shape[1] != INPUT_DIM or len(x) == 0:
        raise Blocked(task, f"{name} has shape {x.shape}: it should hold rows of {INPUT_DIM} pixels")
    if not np.isfinite(x).all():
        raise Blocked(task, f"{name} contains NaN or infinite values")
    return x


def as_model(value, name):
    """Return value if it is a Keras model (a ModelInfo in the snapshot), else raise Failed."""
    if not isinstance(value, ModelInfo):
        raise Failed(
            f"{name} should be a Keras model, got {type_name(value)}: build it from keras layers into a keras.Model"
        )
    return value


RUN_BATCH = 2000  # rows a rebuilt model runs at a time: its activations stay small however wide its layers


def run_model(model, x, name, width=INPUT_DIM):
    """Return the model's output for x as numpy (its Dense layers rebuilt), checking one row of `width` finite values per image."""
    if model.unsupported:
        raise Failed(
            f"{name} has a {model.unsupported[0]} layer, which the grader cannot rebuild from plain data, so it "
            "cannot run the model: the lab's autoencoders are built from Dense layers only"
        )
    rebuilt = model.rebuilt()
    if rebuilt is None or rebuilt.input_shape[-1] != INPUT_DIM or model.input_shape not in (None, (INPUT_DIM,)):
        raise Failed(
            f"{name} cannot take rows of {INPUT_DIM} pixels: its input must take one flat row of {INPUT_DIM} values "
            "per image, and each Dense layer the output of the one before"
        )
    rows = np.asarray(x, dtype="float32")
    batches = [rows[start : start + RUN_BATCH] for start in range(0, len(rows), RUN_BATCH)] or [rows]
    out = np.concatenate(
        [np.asarray(keras.ops.convert_to_numpy(rebuilt(batch, training=False)), dtype="float64") for batch in batches]
    )
    if out.shape != (len(x), width):
        raise Failed(f"{name} turns {len(x)} images into an output of shape {out.shape}; expected ({len(x)}, {width})")
    if not np.isfinite(out).all():
        raise Failed(f"{name} outputs NaN or infinite values: build it again and train it again")
    return out


def same_rows(a, b, atol=1e-3):
    """Whether two arrays have the same shape and values (up to float rounding, relative for large values)."""
    return a.shape == b.shape and bool(np.allclose(a, b, atol=atol, rtol=1e-5))


def sample_rows(x):
    """The first SAMPLE rows as float32."""
    return np.asarray(x[:SAMPLE], dtype="float32")


@functools.lru_cache(maxsize=1)
def lab_images(dataset):
    """(train_images, test_images): the dataset's images as the lab loads them (0-255, read-only), loaded here once:
    what x_train and x_test are judged against, whatever the notebook did to its own train_images."""
    (train_images, _), (test_images, _) = helpers.load_dataset(dataset)
    for images in (train_images, test_images):
        images.setflags(write=False)
    return train_images, test_images


def source_images(ns, name):
    """The 0-255 images x_train or x_test (name) is judged against: the lab's own, loaded by the checks (a notebook
    that deleted or changed its train_images, or cut them short, is judged like any other). Only where the grader's
    environment names a training plan other than the cards' (DAE_LAB_TRAINING: checks.models.card_training, as the
    test suites do, whose notebooks train on the lab's first images to stay cheap), the notebook's own train_images
    or test_images where they are exactly those first images."""
    train_images, test_images = lab_images(lab_dataset(ns))
    lab, given = (train_images, ns.get("train_images")) if name == "x_train" else (test_images, ns.get("test_images"))
    cheap = bool(os.environ.get(TRAINING_SETTING))
    if cheap and is_image_array(given) and given.shape[1:] == lab.shape[1:] and len(given) <= len(lab):
        if np.array_equal(given, lab[: len(given)]):
            return given
    return lab


def lab_dataset(ns):
    """The dataset the notebook chose (DATASET), else Fashion-MNIST."""
    dataset = ns.get("DATASET")
    return dataset if dataset in helpers.KERAS_LOADERS else "fashion_mnist"


@functools.lru_cache(maxsize=2)
def reference_clean(dataset):
    """The dataset's first SAMPLE test images, loaded here once (read-only), as rows of pixels in [0, 1]."""
    clean = helpers.prepare_images(lab_images(dataset)[1][:SAMPLE])
    clean.setflags(write=False)  # cached for every later judgement (a grader worker judges many submissions)
    return clean


@functools.lru_cache(maxsize=8)
def reference_images(dataset, factor=NOISE_FACTOR, clipped=True):
    """(clean, noisy): the dataset's first SAMPLE test images, loaded here, with fresh noise (REFERENCE_SEED)."""
    clean = reference_clean(dataset)
    noisy = helpers.add_noise(clean, factor, np.random.default_rng(REFERENCE_SEED), clip=clipped)
    noisy.setflags(write=False)
    return clean, noisy


FASHION_MEAN_IMAGE = (0.4894, 0.0877)  # BCE and MSE of Fashion-MNIST's reference images against their mean image


def bar_scale(clean):
    """(BCE, MSE) factors for bars measured on Fashion-MNIST, on these reference images: how much better than
    Fashion-MNIST's their mean image (the best constant output, no training at all) scores, each at most 1. On
    MNIST, whose mean image scores about half, a bar measured on Fashion-MNIST would pass a constant output."""
    mean = np.broadcast_to(clean.mean(axis=0), clean.shape)
    bce, mse = helpers.mean_bce(clean, mean), float(np.mean((clean - mean) ** 2))
    return min(1.0, bce / FASHION_MEAN_IMAGE[0]), min(1.0, mse / FASHION_MEAN_IMAGE[1])


def reference(ns, factor=NOISE_FACTOR, clipped=True):
    """The images models are judged on, from the dataset the notebook chose (DATASET) or Fashion-MNIST."""
    return reference_images(lab_dataset(ns), factor, clipped)


def student_noise(ns):
    """(factor, clipped) of the Gaussian noise in the student's own noisy sets (factor to 0.05, within NOISE_RANGE).

    Read from x_test_noisy, else x_train_noisy; (NOISE_FACTOR, True) when neither is clean plus
    Gaussian noise of factor 0.05 or more. A model is judged on fresh noise of the kind it was trained on, so a mistake in
    the noise costs the noisy_data task only.
    """
    for clean_name, noisy_name in (("x_test", "x_test_noisy"), ("x_train", "x_train_noisy")):
        try:
            clean = pixel_rows(ns[clean_name], clean_name)[:SAMPLE].astype("float64")
            noisy = as_array(ns[noisy_name], noisy_name).astype("float64")
        except (KeyError, Failed):
            continue
        noisy = noisy[:SAMPLE] if noisy.ndim else noisy  # a scalar has no rows
        if clean.shape != noisy.shape or not np.isfinite(noisy).all():
            continue
        kind = helpers.noise_kind(clean, noisy)
        if kind is not None and kind[0] >= 0.05:  # weaker noise cannot show what a DAE learned
            return float(np.clip(round(kind[0] * 20) / 20, *NOISE_RANGE)), kind[1]
    return NOISE_FACTOR, True


def scale_between(got, expected, integers=False):
    """The factor s (not 1) with got = s * expected row for row (to float rounding, or to 1 for integers truncated
    from the product), or None when no single factor other than 1 explains got: a scale mistake, named as one."""
    got, expected = np.asarray(got, "float64"), np.asarray(expected, "float64")
    if got.shape != expected.shape or not got.size:
        return None
    energy = float(np.sum(expected * expected))
    if energy == 0:
        return None
    s = float(np.sum(got * expected)) / energy
    if not np.isfinite(s) or s <= 0 or abs(s - 1) < 1e-3:
        return None
    atol = 1.0 if integers else max(1e-3, 1e-3 * s)
    return s if np.allclose(got, s * expected, atol=atol, rtol=1e-4) else None


def scale_words(s):
    """A scale factor as a hint's words: 'times 255 (pixel values 0-255, not [0, 1])', 'divided by 256 (not 255)'."""
    if abs(s * 255 - 1) < 0.01:
        return "divided by 255 once more (pixels in [0, 1/255])"
    if abs(s / 255 - 1) < 0.01:
        return "times 255 (pixel values 0-255, not [0, 1])"
    divisor = 255 / s
    if 200 < divisor < 300:
        return f"divided by {divisor:.4g} instead of 255 (its pixels {s:.4g} times the lab's)"
    return f"times {s:.4g} (not pixels in [0, 1])"


def slips(images):
    """{the slip's words: the rows it makes of 0-255 image rows}: the plausible ways of getting "divided by 255"
    wrong that scale_between (one factor for all) cannot name, each a transformation of the right answer."""
    low, high = images.min(axis=1, keepdims=True), images.max(axis=1, keepdims=True)
    return {
        "divided with // (floor division), which rounds every pixel down to a whole number, 0 or 1 (only pure "
        "white stays 1): divide with /, which keeps the fractions": np.floor(images / 255),
        "rounded to whole numbers, 0 or 1: keep the fractions of each division by 255": np.round(images / 255),
        "rescaled image by image from its own darkest to its brightest pixel (min-max), so a dim image is stretched "
        "to full white: divide every pixel of every image by the same 255": (images - low) / np.maximum(high - low, 1),
        "inverted (1 minus each pixel, so black is 1): divide each pixel by 255 as it is": 1 - images / 255,
    }


def diagnose_scaling(x, images, name, source):
    """The hint for rows x that are not the 0-255 image rows `images` divided by 255: the slip among slips() that
    reproduces them, rows reordered, or, when none fits, "wrong, cause unknown" with what was measured."""
    k = min(100, len(x), len(images))
    got, rows = np.asarray(x[:k], "float64"), np.asarray(images[:k], "float64")
    for words, made in slips(rows).items():
        if same_rows(got, made):
            return f"{name} is {source} flattened but {words}"
    if len(x) == len(images) and len(x) > 1:
        sums, wanted = np.sort(np.asarray(x, "float64").sum(axis=1)), np.sort(images.sum(axis=1) / 255)
        if np.allclose(sums, wanted, atol=1e-2):
            return (
                f"{name} holds the images of {source}, each divided by 255, but in another order: row i must be "
                f"image i of {source} (no shuffling), so that its noisy copy and its labels line up with it"
            )
    if len(x) != len(images):
        return (
            f"{name} has {len(x):,} rows where {source} has {len(images):,} images: it holds every image of "
            f"{source}, in order, each flattened and divided by 255"
        )
    if got.min() >= 0 and got.max() <= 1 and helpers.noise_kind(rows / 255, got) is not None:
        return (
            f"{name} is {source} divided by 255 plus Gaussian noise: the noise was added to {name} itself, in place "
            f"(+=, or np.clip with out=), which changes the clean set too; make each noisy set a new array and run "
            "the data cell again"
        )
    error = np.abs(got - rows / 255)
    return (
        f"{name} is not {source} divided by 255, and no usual slip explains it (tested: // for /, rounding, each "
        "image rescaled on its own, another divisor, the other set, the rows reordered, noise added in place): measured on its first "
        f"{k} rows, its pixels differ from {source} / 255 by {error.mean():.3g} on average (at most "
        f"{error.max():.3g}), its values run from {got.min():.3g} to {got.max():.3g}, {len(np.unique(got)):,} "
        "distinct values; each pixel is its 0-255 value divided by 255"
    )
