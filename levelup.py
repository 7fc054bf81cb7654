"""Helpers for the lab's "level up" sections, in the notebook's order: 1. epochs, 2. code size x noise,
3. deep DAE, 4. conv DAE, 5. faces, 6. anomalies, 7. classical denoisers.

Each function's docstring names the section that first uses it. Kept apart from helpers.py so the
core lab stays small; the lab's constants, input checks, noise and plots live in helpers.py, and
what only the benchmarks use lives in benchmarks/. Nothing here runs on import; randomness comes
only from the seeds you pass in. Models use `keras` APIs only, and every model takes and returns
flat rows of pixels (like helpers.build_autoencoder), so helpers.train_autoencoder,
helpers.plot_rows and the scores below work on all of them.
"""

import time
from typing import NamedTuple

import helpers  # first: it imports Keras without the backend's start-up chatter
from helpers import IMAGE_SHAPE, NOISE_FACTOR

import keras
import matplotlib.pyplot as plt
import numpy as np
from scipy import ndimage
from skimage import data as skdata
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.restoration import denoise_nl_means, denoise_tv_chambolle
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score

# ---------------------------------------------------------------- 1. How many epochs are worth it?


def plot_epoch_gains(history, axes=None):
    """Two plots: helpers.plot_history's loss per epoch, and plot_gains (axes: a pair, if given); return the Figure.

    Defined in the level-up section '1. How many epochs are worth it?'.
    """
    epoch_gains(history)  # the History must hold what plot_gains needs before a figure is made
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), layout="constrained")
    left, right = axes
    plot_gains(history, ax=right)
    helpers.plot_history(history, title="loss per epoch", ax=left)
    return left.figure


def epoch_gains(history):
    """(epochs 2, 3, ..., how much each lowered the validation loss) from a Keras History, or raise ValueError.

    Defined in the level-up section '1. How many epochs are worth it?'.
    """
    val_loss = history.history.get("val_loss", [])
    if len(val_loss) < 2:
        raise ValueError(
            "Plotting what each epoch gained needs a History with validation loss for 2 epochs or more: "
            "fit with validation_data."
        )
    return np.arange(2, len(val_loss) + 1), -np.diff(val_loss)


def plot_gains(history, ax=None):
    """How much each epoch lowered the validation loss, on a log scale (into ax if given); return the Figure.

    Defined in the level-up section '1. How many epochs are worth it?'.
    """
    epochs, gains = epoch_gains(history)
    fig, ax = helpers.figure_and_axes(ax)
    improved = gains > 0
    ax.semilogy(epochs[improved], gains[improved], "o-", markersize=3)
    ax.set(xlabel="epoch", ylabel="drop in validation loss", title="what each epoch gained (log scale)")
    return fig


# ---------------------------------------------------------------- 2. Code size against noise level


def snapshot(model):
    """Save a compiled model's weights and optimizer state, to rewind() to later.

    Defined in the level-up section '2. Code size against noise level'.
    """
    if getattr(model, "optimizer", None) is None:
        raise ValueError(f"{model.name} is not compiled: compile it (helpers.compile_autoencoder) before snapshot().")
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    return [v.numpy() for v in model.weights], [v.numpy() for v in model.optimizer.variables]


def rewind(model, state):
    """Restore the weights and optimizer state saved by snapshot(): train afresh without compiling again.

    Defined in the level-up section '2. Code size against noise level'.
    """
    weights, optimizer_values = state
    if len(weights) != len(model.weights) or len(optimizer_values) != len(model.optimizer.variables):
        raise ValueError(f"This snapshot was not taken from {model.name}: take it with snapshot({model.name}).")
    for variable, value in zip(model.weights, weights):
        variable.assign(value)
    for variable, value in zip(model.optimizer.variables, optimizer_values):
        variable.assign(value)


def predict_rows(model, rows, batch_size=1000):
    """Run model on rows in batches (plain calls: no tracing, so cheap for one-off models); return a numpy array.

    Defined in the level-up section '2. Code size against noise level'.
    """
    helpers.check_input_size(model, rows)
    rows = np.asarray(rows, dtype="float32")
    outputs = [
        keras.ops.convert_to_numpy(model(rows[i : i + batch_size], training=False))
        for i in range(0, len(rows), batch_size)
    ]
    return np.concatenate(outputs) if outputs else np.zeros((0, *model.output_shape[1:]), "float32")


def as_image_stack(images, image_shape):
    """Return images (rows or stacks) as float64 (n, height, width), or raise ValueError.

    Defined in the level-up section '2. Code size against noise level'.
    """
    images = np.asarray(images, dtype="float64")
    return helpers.as_images(images, len(images) if images.ndim else 0, helpers.check_image_shape(image_shape))


def image_scores(clean, images, image_shape=IMAGE_SHAPE):
    """Per-image PSNR (dB) and SSIM of images against clean, pixels in [0, 1]; return two arrays.

    Defined in the level-up section '2. Code size against noise level'.
    """
    clean, images = as_image_stack(clean, image_shape), as_image_stack(images, image_shape)
    if clean.shape != images.shape:
        raise ValueError(f"clean holds {len(clean)} images but images holds {len(images)}: compare the same images.")
    if not len(clean):
        raise ValueError("No images to score: pass at least one image.")
    with np.errstate(divide="ignore"):  # a perfect image scores inf dB, as in scikit-image
        psnr = np.array([peak_signal_noise_ratio(c, d, data_range=1.0) for c, d in zip(clean, images)])
    ssim = np.array([structural_similarity(c, d, data_range=1.0) for c, d in zip(clean, images)])
    return psnr, ssim


def mean_scores(clean, images, image_shape=IMAGE_SHAPE):
    """Mean per-image PSNR (dB) and SSIM of images against clean.

    Defined in the level-up section '2. Code size against noise level'.
    """
    psnr, ssim = image_scores(clean, images, image_shape)
    return float(psnr.mean()), float(ssim.mean())


def run_sweep(
    x_train,
    x_test,
    code_sizes=(16, 32, 64, 128),
    noise_factors=(0.3, 0.5, 0.7),
    epochs=3,
    seed=0,
    image_shape=IMAGE_SHAPE,
    n_examples=4,
    batch_size=128,
):
    """Train one shallow DAE per (code size, noise factor) the lab's way; return scores, times and example images.

    One model is compiled per code size and rewound to the same starting weights for each noise factor.
    The result holds code_sizes, noise_factors, epochs; psnr, ssim and seconds (arrays: code sizes down,
    noise factors across); noisy[factor] and denoised[(code_size, factor)], the first n_examples test images.

    Defined in the level-up section '2. Code size against noise level'.
    """
    code_sizes = helpers.check_positive_ints("code_sizes", code_sizes)
    noise_factors = tuple(helpers.check_noise_factor(f) for f in noise_factors)
    if not noise_factors:
        raise ValueError("noise_factors is empty: give at least one, such as (0.5,).")
    if not 0 < n_examples <= len(x_test):
        raise ValueError(f"n_examples must be from 1 to the {len(x_test)} test images, got {n_examples}.")
    rng = np.random.default_rng(seed)
    noisy_sets = {f: (helpers.add_noise(x_train, f, rng), helpers.add_noise(x_test, f, rng)) for f in noise_factors}
    shape = (len(code_sizes), len(noise_factors))
    result = {
        "code_sizes": code_sizes,
        "noise_factors": noise_factors,
        "epochs": epochs,
        "psnr": np.zeros(shape),
        "ssim": np.zeros(shape),
        "seconds": np.zeros(shape),
        "noisy": {f: test[:n_examples] for f, (_, test) in noisy_sets.items()},
        "denoised": {},
    }
    for i, code_size in enumerate(code_sizes):
        keras.utils.set_random_seed(seed)
        model, _ = helpers.build_autoencoder(x_train.shape[1], code_size, name=f"dae_code_{code_size}")
        start = snapshot(helpers.compile_autoencoder(model))
        for j, factor in enumerate(noise_factors):
            train_noisy, test_noisy = noisy_sets[factor]
            rewind(model, start)
            began = time.perf_counter()
            helpers.train_autoencoder(model, train_noisy, x_train, epochs=epochs, batch_size=batch_size, verbose=0)
            result["seconds"][i, j] = time.perf_counter() - began
            denoised = predict_rows(model, test_noisy)
            result["psnr"][i, j], result["ssim"][i, j] = mean_scores(x_test, denoised, image_shape)
            result["denoised"][(code_size, factor)] = denoised[:n_examples]
    return result


def plot_sweep(sweep, metric="psnr", ax=None):
    """Heat map of a sweep's mean test PSNR (or "ssim"), code sizes down, noise factors across (into ax if given); return the Figure.

    Defined in the level-up section '2. Code size against noise level'.
    """
    if metric not in ("psnr", "ssim"):
        raise ValueError(f"metric must be 'psnr' or 'ssim', got {metric!r}.")
    values = np.asarray(sweep[metric])
    fig, ax = helpers.figure_and_axes(ax, figsize=(4.8, 3.6))
    image = ax.imshow(values, cmap="viridis", aspect="auto")
    middle = (values.min() + values.max()) / 2
    for (i, j), value in np.ndenumerate(values):
        ax.text(
            j,
            i,
            f"{value:.1f}" if metric == "psnr" else f"{value:.2f}",
            ha="center",
            va="center",
            color="white" if value < middle else "black",
        )
    ax.set_xticks(range(len(sweep["noise_factors"])), [f"{f:g}" for f in sweep["noise_factors"]])
    ax.set_yticks(range(len(sweep["code_sizes"])), [str(c) for c in sweep["code_sizes"]])
    ax.set(xlabel="noise factor", ylabel="code size", title=f"mean test {'PSNR (dB)' if metric == 'psnr' else 'SSIM'}")
    fig.colorbar(image, ax=ax)
    return fig


def plot_sweep_examples(sweep, image_shape=IMAGE_SHAPE, axes=None):
    """Example images of a sweep: helpers.plot_rows for each noise factor, side by side (the noisy row, then a row per code size).

    axes, if given, holds (1 + code sizes) rows of (examples x noise factors) axes. Returns the Figure.

    Defined in the level-up section '2. Code size against noise level'.
    """
    factors, sizes = sweep["noise_factors"], sweep["code_sizes"]
    n = len(sweep["noisy"][factors[0]])
    if axes is None:
        _, axes = helpers.image_grid(1 + len(sizes), n * len(factors), image_shape)
    axes = np.asarray(axes, dtype=object).reshape(1 + len(sizes), n * len(factors))
    for b, factor in enumerate(factors):
        rows = [sweep["noisy"][factor]] + [sweep["denoised"][(size, factor)] for size in sizes]
        titles = [f"noise {factor:g}: noisy"] + [f"code size {size}" for size in sizes]
        helpers.plot_rows(rows, titles, n, image_shape, axes=axes[:, b * n : (b + 1) * n])
    return axes[0, 0].figure


# ---------------------------------------------------------------- 3. A deep DAE


MODEL_KINDS = ("shallow", "deep", "conv")  # benchmarks/hybrid.py adds "hybrid"


def build_deep_autoencoder(input_dim=helpers.INPUT_DIM, hidden=(256, 128, 64), name="deep_autoencoder"):
    """Build input_dim -> hidden layers (relu, the last is the code) -> mirrored back -> input_dim (sigmoid); return (autoencoder, encoder).

    Defined in the level-up section '3. A deep DAE'.
    """
    hidden = helpers.check_positive_ints("hidden", hidden)
    (input_dim,) = helpers.check_positive_ints("input_dim", [input_dim])
    inputs = keras.Input(shape=(input_dim,), name="inputs")
    x = inputs
    for i, units in enumerate(hidden):
        x = keras.layers.Dense(units, activation="relu", name="code" if i == len(hidden) - 1 else f"encode_{i + 1}")(x)
    code = x
    for i, units in enumerate(reversed(hidden[:-1])):
        x = keras.layers.Dense(units, activation="relu", name=f"decode_{i + 1}")(x)
    outputs = keras.layers.Dense(input_dim, activation="sigmoid", name="reconstruction")(x)
    return keras.Model(inputs, outputs, name=name), keras.Model(inputs, code, name=f"{name}_encoder")


def build_denoiser(kind, image_shape=IMAGE_SHAPE, name=None, **options):
    """Build a 'shallow', 'deep' or 'conv' autoencoder for flat rows of image_shape pixels; return (autoencoder, encoder).

    options go to the builder: code_size (shallow), hidden (deep), filters (conv).

    Defined in the level-up section '3. A deep DAE'.
    """
    helpers.check_choice("model kind", kind, MODEL_KINDS)
    name = name or f"{kind}_dae"
    if kind == "conv":
        return build_conv_autoencoder(image_shape, name=name, **options)
    input_dim = int(np.prod(helpers.check_image_shape(image_shape)))
    if kind == "deep":
        return build_deep_autoencoder(input_dim, name=name, **options)
    return helpers.build_autoencoder(input_dim, name=name, **options)


class EpochTimer(keras.callbacks.Callback):
    """Record the wall-clock seconds of every training epoch in .seconds.

    Defined in the level-up section '3. A deep DAE'.
    """

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


class TimeBudget(keras.callbacks.Callback):
    """Stop training before an epoch that, as long as the last one, would end after `seconds` of training.

    Defined in the level-up section '3. A deep DAE'.
    """

    def __init__(self, seconds):
        super().__init__()
        self.budget = helpers.check_budget(seconds)

    def on_train_begin(self, logs=None):
        self.begin = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        if now - self.begin + (now - self.start) > self.budget:
            self.model.stop_training = True


def fit_timed(
    model, inputs, targets, validation_data=None, epochs=5, batch_size=128, verbose=0, budget=None, max_updates=None
):
    """Fit inputs -> targets with shuffling, within budget seconds if given; return (History, seconds of each epoch).

    max_updates: refuse (ValueError, before training) a fit that would take model's optimizer past that many updates
    in all, those it made before included: a budget counted in steps, the same on every machine (the class challenge's
    checks.challenge.BUDGET_UPDATES), unlike budget, which buys as many epochs as the machine gives.

    Defined in the level-up section '3. A deep DAE'.
    """
    if max_updates is not None:
        check_updates(model, len(inputs), epochs, batch_size, max_updates)
    timer = EpochTimer()
    callbacks = [timer] + ([TimeBudget(budget)] if budget is not None else [])
    history = helpers.train_autoencoder(model, inputs, targets, validation_data, epochs, batch_size, verbose, callbacks)
    return history, timer.seconds


def check_updates(model, count, epochs, batch_size, max_updates):
    """Raise ValueError if epochs of count rows in batches of batch_size take model's optimizer past max_updates.

    Defined in the level-up section '3. A deep DAE'.
    """
    for label, value in (("epochs", epochs), ("batch_size", batch_size), ("max_updates", max_updates)):
        helpers.check_positive_int(label, value)
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        raise ValueError(f"{model.name} is not compiled: compile it (helpers.compile_autoencoder) before fit_timed.")
    done = int(keras.ops.convert_to_numpy(optimizer.iterations))
    per_epoch = -(-count // batch_size)
    if done + epochs * per_epoch > max_updates:
        left = max(max_updates - done, 0)
        raise ValueError(
            f"{epochs} epoch{'s' * (epochs != 1)} of {count:,} images in batches of {batch_size} are "
            f"{epochs * per_epoch:,} optimizer updates, but {done:,} of the {max_updates:,} allowed were made already: at most {left // per_epoch} "
            "more epochs fit."
        )


# ---------------------------------------------------------------- 4. A convolutional DAE


def build_conv_autoencoder(image_shape=IMAGE_SHAPE, filters=64, name="conv_autoencoder"):
    """Build a conv encoder (4x4 patches, a 3x3 conv) and transposed-conv decoder on flat rows; return (autoencoder, encoder).

    The encoder cuts the image into 4x4 patches (a stride-4 convolution) and mixes neighbouring patches
    with a 3x3 convolution: its code is a (height/4, width/4, filters) map. The decoder mixes once more
    and grows the map back in two stride-2 transposed convolutions.

    Defined in the level-up section '4. A convolutional DAE'.
    """
    height, width = helpers.check_image_shape(image_shape, multiple=4)
    (filters,) = helpers.check_positive_ints("filters", [filters])
    layers = keras.layers
    inputs = keras.Input(shape=(height * width,), name="inputs")
    x = layers.Reshape((height, width, 1), name="to_image")(inputs)
    x = layers.Conv2D(filters, 4, strides=4, padding="same", activation="relu", name="patches")(x)
    code = layers.Conv2D(filters, 3, padding="same", activation="relu", name="code")(x)
    x = layers.Conv2D(filters, 3, padding="same", activation="relu", name="decode")(code)
    x = layers.Conv2DTranspose(max(filters // 4, 1), 4, strides=2, padding="same", activation="relu", name="upsample")(
        x
    )
    x = layers.Conv2DTranspose(1, 4, strides=2, padding="same", activation="sigmoid", name="to_pixels")(x)
    outputs = layers.Reshape((height * width,), name="reconstruction")(x)
    return keras.Model(inputs, outputs, name=name), keras.Model(inputs, code, name=f"{name}_encoder")


# ---------------------------------------------------------------- 5. Faces: few images, fresh noise


def load_faces():
    """scikit-image's bundled LFW subset as float32 rows of 25x25 pixels in [0, 1]: (100 faces, 100 non-faces).

    Defined in the level-up section '5. Faces: few images, fresh noise'.
    """
    images = skdata.lfw_subset().astype("float32")
    if images.shape != (200, 25, 25):
        raise ValueError(f"Expected lfw_subset() to hold 200 images of 25x25, got {images.shape}: check scikit-image.")
    rows = images.reshape(200, -1)
    return rows[:100], rows[100:]


def with_fresh_noise(model, noise_factor=NOISE_FACTOR, seed=None):
    """Return a model that corrupts its clean input with fresh noise in training, then runs model (weights shared).

    Defined in the level-up section '5. Faces: few images, fresh noise'.
    """
    inputs = keras.Input(shape=model.input_shape[1:], name="clean_inputs")
    noisy = helpers.ClippedGaussianNoise(noise_factor, seed=seed, name="fresh_noise")(inputs)
    return keras.Model(inputs, model(noisy), name=f"{model.name}_fresh_noise")


# ---------------------------------------------------------------- 6. Anomaly detection by reconstruction error


def reconstruction_errors(model, images):
    """Mean squared error between each row and the model's reconstruction of it.

    Defined in the level-up section '6. Anomaly detection by reconstruction error'.
    """
    images = np.asarray(images, dtype="float32")
    return np.mean((predict_rows(model, images) - images) ** 2, axis=1)


def pick_threshold(normal_errors, quantile=0.95):
    """The error above which a sample is flagged: this quantile of the errors on normal data.

    Defined in the level-up section '6. Anomaly detection by reconstruction error'.
    """
    normal_errors = np.ravel(np.asarray(normal_errors, dtype="float64"))
    if not normal_errors.size:
        raise ValueError("pick_threshold needs the errors of at least one normal sample.")
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be between 0 and 1, such as 0.95; got {quantile}.")
    return float(np.quantile(normal_errors, quantile))


def roc_auc(normal_scores, anomaly_scores):
    """Area under the ROC curve (scikit-learn): the chance that a random anomaly scores above a random normal sample.

    Defined in the level-up section '6. Anomaly detection by reconstruction error'.
    """
    normal_scores, anomaly_scores = np.ravel(normal_scores), np.ravel(anomaly_scores)
    if not normal_scores.size or not anomaly_scores.size:
        raise ValueError("roc_auc needs at least one normal and one anomalous score.")
    labels = np.r_[np.zeros(normal_scores.size), np.ones(anomaly_scores.size)]
    return float(roc_auc_score(labels, np.r_[normal_scores, anomaly_scores]))


class DetectionRates(NamedTuple):
    """The share of each group scored above an anomaly threshold (detection_rates returns it)."""

    anomalies_flagged: float  # anomalies caught
    normal_flagged: float  # normal samples wrongly flagged (false alarms)


def detection_rates(normal_scores, anomaly_scores, threshold):
    """Return DetectionRates(anomalies_flagged, normal_flagged): each group's share of scores above threshold.

    Defined in the level-up section '6. Anomaly detection by reconstruction error'.
    """
    return DetectionRates(
        anomalies_flagged=float(np.mean(np.ravel(anomaly_scores) > threshold)),
        normal_flagged=float(np.mean(np.ravel(normal_scores) > threshold)),
    )


def plot_error_histogram(normal_errors, anomaly_errors, threshold, labels=("normal", "anomalous"), ax=None):
    """Overlaid histograms of reconstruction errors with the threshold marked (into ax if given); return the Figure.

    Defined in the level-up section '6. Anomaly detection by reconstruction error'.
    """
    normal_errors, anomaly_errors = np.ravel(normal_errors), np.ravel(anomaly_errors)
    if not normal_errors.size or not anomaly_errors.size:
        raise ValueError("plot_error_histogram needs at least one normal and one anomalous error.")
    bins = np.linspace(0, max(normal_errors.max(), anomaly_errors.max(), threshold) * 1.05, 31)
    fig, ax = helpers.figure_and_axes(ax)
    ax.hist(normal_errors, bins=bins, alpha=0.6, label=labels[0])
    ax.hist(anomaly_errors, bins=bins, alpha=0.6, label=labels[1])
    ax.axvline(threshold, color="black", linestyle="--", label="threshold")
    ax.set(xlabel="reconstruction error (mean squared error per image)", ylabel="images")
    ax.legend()
    return fig


# ---------------------------------------------------------------- 7. Against classical denoisers


# Picked by PSNR on 300 training images at the lab's noise (benchmarks/bench_quality.py --tune prints the grid).
CLASSICAL_PARAMS = {
    "Gaussian filter": {"sigma": 1.0},
    "median filter": {"size": 5},
    "TV (Chambolle)": {"weight": 0.2},
    "non-local means": {"h": 0.2, "patch_size": 5, "patch_distance": 6},
    "PCA-32": {"n_components": 32},
}


FILTERS = {
    "Gaussian filter": ndimage.gaussian_filter,
    "median filter": ndimage.median_filter,
    "TV (Chambolle)": denoise_tv_chambolle,
    "non-local means": lambda image, **params: denoise_nl_means(image, fast_mode=True, **params),
}


def fit_pca(x_train, n_components=32):
    """Fit scikit-learn's PCA (exact, covariance eigendecomposition: deterministic) to training rows.

    Defined in the level-up section '7. Against classical denoisers'.
    """
    x_train = np.asarray(x_train, dtype="float32")
    if x_train.ndim != 2 or len(x_train) < 2:
        raise ValueError(f"fit_pca needs at least 2 rows of pixels, got an array of shape {x_train.shape}.")
    if not helpers.is_integer(n_components) or not 0 < n_components <= x_train.shape[1]:
        raise ValueError(f"n_components must be an integer from 1 to {x_train.shape[1]}, got {n_components!r}.")
    return PCA(n_components, svd_solver="covariance_eigh").fit(x_train)


def pca_denoise(images, pca):
    """Project rows onto a fitted PCA's components and back, clipped to [0, 1].

    Defined in the level-up section '7. Against classical denoisers'.
    """
    images = np.asarray(images, dtype="float32")
    return np.clip(pca.inverse_transform(pca.transform(images)), 0.0, 1.0)


def denoise_each(images, method, image_shape=IMAGE_SHAPE, **params):
    """Apply one classical per-image denoiser (see FILTERS) to every image; return rows.

    Defined in the level-up section '7. Against classical denoisers'.
    """
    helpers.check_choice("per-image denoiser", method, FILTERS)
    stack = as_image_stack(images, image_shape)
    return np.stack([FILTERS[method](image, **params) for image in stack]).reshape(len(stack), -1)


def classical_denoise(noisy, x_train, image_shape=IMAGE_SHAPE, params=None):
    """Denoise noisy rows with every classical method (PCA fitted on x_train); return {name: (rows, seconds)}.

    Defined in the level-up section '7. Against classical denoisers'.
    """
    params = CLASSICAL_PARAMS if params is None else params
    results = {}
    for method, method_params in params.items():
        start = time.perf_counter()
        if method.startswith("PCA"):
            denoised = pca_denoise(noisy, fit_pca(x_train, **method_params))
        else:
            denoised = denoise_each(noisy, method, image_shape, **method_params)
        results[method] = (denoised, time.perf_counter() - start)
    return results


def quality_rows(clean, noisy, x_train, autoencoders, image_shape=IMAGE_SHAPE, classical_params=None):
    """Score the noisy input, every classical denoiser and every autoencoder on the same images; return rows.

    autoencoders maps a name to (model, training seconds or None), or to (model, seconds, kind) to give a
    kind other than "autoencoder" (quality_failures checks only that kind). Each row is a dict: method,
    kind, mean PSNR (dB) and SSIM, training seconds and seconds to denoise all the images.

    Defined in the level-up section '7. Against classical denoisers'.
    """
    if len(clean) != len(noisy):
        raise ValueError(f"clean holds {len(clean)} images but noisy holds {len(noisy)}: pass the same test images.")

    def row(method, kind, denoised, train_s, denoise_s):
        psnr, ssim = mean_scores(clean, denoised, image_shape)
        return {"method": method, "kind": kind, "psnr": psnr, "ssim": ssim, "train_s": train_s, "denoise_s": denoise_s}

    rows = [row("noisy input", "none", noisy, None, 0.0)]
    for method, (denoised, seconds) in classical_denoise(noisy, x_train, image_shape, classical_params).items():
        rows.append(row(method, "classical", denoised, None, seconds))
    for name, (model, train_s, *kind) in autoencoders.items():
        start = time.perf_counter()
        denoised = predict_rows(model, noisy)
        rows.append(row(name, kind[0] if kind else "autoencoder", denoised, train_s, time.perf_counter() - start))
    return rows


def format_table(rows):
    """Return quality rows as a markdown table, best PSNR first.

    Defined in the level-up section '7. Against classical denoisers'.
    """
    lines = [
        "| method | kind | PSNR (dB) | SSIM | training (s) | denoising (s) |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in sorted(rows, key=lambda r: -r["psnr"]):
        train = "–" if r["train_s"] is None else f"{r['train_s']:.0f}"
        lines.append(
            f"| {r['method']} | {r['kind']} | {r['psnr']:.2f} | {r['ssim']:.3f} | {train} | {r['denoise_s']:.1f} |"
        )
    return "\n".join(lines)


def quality_failures(rows, baseline, challengers):
    """List what fails: a challenger not beating baseline by PSNR, or an autoencoder not beating every classical denoiser.

    Defined in the level-up section '7. Against classical denoisers'.
    """
    by_name = {r["method"]: r for r in rows}
    missing = [name for name in (baseline, *challengers) if name not in by_name]
    if missing:
        raise ValueError(f"No rows named {missing}: the table has {sorted(by_name)}.")
    failures = [
        f"{name} ({by_name[name]['psnr']:.2f} dB) does not beat {baseline} ({by_name[baseline]['psnr']:.2f} dB)"
        for name in challengers
        if by_name[name]["psnr"] <= by_name[baseline]["psnr"]
    ]
    classical = [r for r in rows if r["kind"] == "classical"]
    for ae in (r for r in rows if r["kind"] == "autoencoder"):
        failures += [
            f"{ae['method']} ({ae['psnr']:.2f} dB) does not beat {c['method']} ({c['psnr']:.2f} dB)"
            for c in classical
            if ae["psnr"] <= c["psnr"]
        ]
    return failures
