"""Helpers for the lab's "level up" section: more models, sweeps, faces, anomalies, quality tables.

Kept apart from helpers.py so the core lab stays small. Nothing here runs on import; randomness
comes only from the seeds you pass in. Models use `keras` APIs only, and every model takes and
returns flat rows of pixels (like helpers.build_autoencoder), so helpers.train_autoencoder,
helpers.plot_rows and the scores below work on all of them.
"""

import time

import helpers  # first: it imports Keras without the backend's start-up chatter

import keras
import matplotlib.pyplot as plt
import numpy as np
from scipy import ndimage
from skimage import data as skdata
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.restoration import denoise_nl_means, denoise_tv_chambolle
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score

MODEL_KINDS = ("shallow", "deep", "conv", "hybrid")


def check_positive_ints(label, values):
    """Return values as a tuple, or raise ValueError unless it is a non-empty list of positive integers."""
    values = tuple(values)
    if not values or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0 for v in values):
        raise ValueError(f"{label} must be a non-empty list of positive integers, got {values!r}.")
    return values


def check_non_negative(label, value, example):
    """Return value as a float, or raise ValueError (naming label, suggesting example) unless it is a number, 0 or more."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not value >= 0:
        raise ValueError(f"{label} must be a number, 0 or more, such as {example}; got {value!r}.")
    return float(value)


def check_noise_factor(noise_factor):
    """Return noise_factor as a float, or raise ValueError unless it is a number, 0 or more."""
    return check_non_negative("A noise factor", noise_factor, 0.5)


def check_budget(seconds):
    """Return seconds, or raise ValueError unless it is a positive number (a time budget)."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        raise ValueError(f"The time budget must be a positive number of seconds, got {seconds!r}.")
    return seconds


def check_image_shape(image_shape, multiple=1):
    """Return image_shape as (height, width), or raise ValueError if it is not two positive multiples of multiple."""
    try:
        height, width = (int(v) for v in image_shape)
    except (TypeError, ValueError):
        raise ValueError(f"image_shape must be (height, width), such as (28, 28); got {image_shape!r}.") from None
    if height <= 0 or width <= 0:
        raise ValueError(f"image_shape must be two positive sizes, got {image_shape!r}.")
    if height % multiple or width % multiple:
        raise ValueError(
            f"The conv autoencoder shrinks images {multiple} times, so height and width must be divisible by "
            f"{multiple}; got {height}x{width}: crop or pad the images (e.g. to 28x28), or use kind='deep'."
        )
    return height, width


# ---------------------------------------------------------------- models


def build_deep_autoencoder(input_dim=784, hidden=(256, 128, 64), name="deep_autoencoder"):
    """Build input_dim -> hidden layers (relu, the last is the code) -> mirrored back -> input_dim (sigmoid); return (autoencoder, encoder)."""
    hidden = check_positive_ints("hidden", hidden)
    (input_dim,) = check_positive_ints("input_dim", [input_dim])
    inputs = keras.Input(shape=(input_dim,), name="inputs")
    x = inputs
    for i, units in enumerate(hidden):
        x = keras.layers.Dense(units, activation="relu", name="code" if i == len(hidden) - 1 else f"encode_{i + 1}")(x)
    code = x
    for i, units in enumerate(reversed(hidden[:-1])):
        x = keras.layers.Dense(units, activation="relu", name=f"decode_{i + 1}")(x)
    outputs = keras.layers.Dense(input_dim, activation="sigmoid", name="reconstruction")(x)
    return keras.Model(inputs, outputs, name=name), keras.Model(inputs, code, name=f"{name}_encoder")


def build_conv_autoencoder(image_shape=(28, 28), filters=64, name="conv_autoencoder"):
    """Build a conv encoder (4x4 patches, a 3x3 conv) and transposed-conv decoder on flat rows; return (autoencoder, encoder).

    The encoder cuts the image into 4x4 patches (a stride-4 convolution) and mixes neighbouring patches
    with a 3x3 convolution: its code is a (height/4, width/4, filters) map. The decoder mixes once more
    and grows the map back in two stride-2 transposed convolutions.
    """
    height, width = check_image_shape(image_shape, multiple=4)
    (filters,) = check_positive_ints("filters", [filters])
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


def to_patches(rows, image_shape, patch):
    """Keras layers: cut flat rows of image_shape pixels into a (height/patch, width/patch, patch*patch) map."""
    height, width = image_shape
    x = keras.layers.Reshape((height // patch, patch, width // patch, patch))(rows)
    x = keras.layers.Permute((1, 3, 2, 4))(x)
    return keras.layers.Reshape((height // patch, width // patch, patch * patch))(x)


def from_patches(patches, image_shape, patch):
    """Keras layers: the inverse of to_patches, back to flat rows of pixels."""
    height, width = image_shape
    x = keras.layers.Reshape((height // patch, width // patch, patch, patch))(patches)
    x = keras.layers.Permute((1, 3, 2, 4))(x)
    return keras.layers.Reshape((height * width,))(x)


def correct_blocks(logits, inputs, image_shape, patch, filters, activation, name):
    """Keras layers: add to logits a correction that a 3x3 conv computes from patch x patch blocks of logits and inputs."""
    blocks = keras.layers.Concatenate(name=f"{name}_blocks")(
        [to_patches(logits, image_shape, patch), to_patches(inputs, image_shape, patch)]
    )
    y = keras.layers.Conv2D(filters, 3, padding="same", activation=activation, name=name)(blocks)
    y = keras.layers.Conv2D(patch * patch, 3, padding="same", name=f"{name}_correction")(y)
    return keras.layers.Add(name=f"{name}_logits")([logits, from_patches(y, image_shape, patch)])


def build_hybrid_autoencoder(
    image_shape=(28, 28),
    hidden=(256, 256),
    filters=32,
    patch=4,
    fine_filters=16,
    activation="swish",
    name="hybrid_autoencoder",
):
    """Build a dense DAE whose coarse output small convs on blocks of pixels correct; return (autoencoder, encoder).

    The dense layers see the whole image and draw its overall shape (their last hidden layer is the
    code). A 3x3 convolution over the map of patch x patch blocks of the dense guess and of the noisy
    input then corrects each block from its neighbourhood, restoring local detail that the dense
    layers blur; with fine_filters > 0 a second one does the same on blocks half as big. Convolving
    blocks rather than pixels costs patch**2 times fewer steps, which is what makes this affordable
    on a CPU. Hidden layers use `activation` (swish: +0.2 dB over relu in our benchmark).
    """
    height, width = check_image_shape(image_shape, multiple=patch)
    hidden = check_positive_ints("hidden", hidden)
    (filters,) = check_positive_ints("filters", [filters])
    if fine_filters:
        (fine_filters,) = check_positive_ints("fine_filters", [fine_filters])
        if patch % 2:
            raise ValueError(
                f"The fine stage halves the blocks, so patch must be even, got {patch}: use patch=4 or fine_filters=0."
            )
    inputs = keras.Input(shape=(height * width,), name="inputs")
    x = inputs
    for i, units in enumerate(hidden):
        x = keras.layers.Dense(units, activation=activation, name="code" if i == len(hidden) - 1 else f"dense_{i + 1}")(
            x
        )
    code = x
    logits = keras.layers.Dense(height * width, name="coarse_logits")(x)
    logits = correct_blocks(logits, inputs, (height, width), patch, filters, activation, "refine")
    if fine_filters:
        logits = correct_blocks(logits, inputs, (height, width), patch // 2, fine_filters, activation, "fine")
    outputs = keras.layers.Activation("sigmoid", name="reconstruction")(logits)
    return keras.Model(inputs, outputs, name=name), keras.Model(inputs, code, name=f"{name}_encoder")


def build_denoiser(kind, image_shape=(28, 28), name=None, **options):
    """Build a 'shallow', 'deep', 'conv' or 'hybrid' autoencoder for flat rows of image_shape pixels; return (autoencoder, encoder).

    options go to the builder: code_size (shallow), hidden (deep, hybrid), filters (conv, hybrid), patch, fine_filters, activation (hybrid).
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"Unknown model kind {kind!r}: use one of {', '.join(repr(k) for k in MODEL_KINDS)}.")
    name = name or f"{kind}_dae"
    if kind == "conv":
        return build_conv_autoencoder(image_shape, name=name, **options)
    if kind == "hybrid":
        return build_hybrid_autoencoder(image_shape, name=name, **options)
    input_dim = int(np.prod(check_image_shape(image_shape)))
    if kind == "deep":
        return build_deep_autoencoder(input_dim, name=name, **options)
    return helpers.build_autoencoder(input_dim, name=name, **options)


def predict_rows(model, rows, batch_size=1000):
    """Run model on rows in batches (plain calls: no tracing, so cheap for one-off models); return a numpy array."""
    helpers.check_input_size(model, rows)
    rows = np.asarray(rows, dtype="float32")
    outputs = [
        keras.ops.convert_to_numpy(model(rows[i : i + batch_size], training=False))
        for i in range(0, len(rows), batch_size)
    ]
    return np.concatenate(outputs) if outputs else np.zeros((0, *model.output_shape[1:]), "float32")


# ---------------------------------------------------------------- fresh noise


@keras.saving.register_keras_serializable(package="levelup")
class ClippedGaussianNoise(keras.layers.Layer):
    """Add noise_factor * N(0, 1) and clip to [0, 1] in training only, drawing fresh noise for every batch."""

    def __init__(self, noise_factor=0.5, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.noise_factor = check_noise_factor(noise_factor)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        if not training:
            return inputs
        noise = keras.random.normal(keras.ops.shape(inputs), seed=self.seed_generator, dtype=inputs.dtype)
        return keras.ops.clip(inputs + self.noise_factor * noise, 0.0, 1.0)

    def get_config(self):
        return {**super().get_config(), "noise_factor": self.noise_factor, "seed": self.seed}


def with_fresh_noise(model, noise_factor=0.5, seed=None):
    """Return a model that corrupts its clean input with fresh noise in training, then runs model (weights shared)."""
    inputs = keras.Input(shape=model.input_shape[1:], name="clean_inputs")
    noisy = ClippedGaussianNoise(noise_factor, seed=seed, name="fresh_noise")(inputs)
    return keras.Model(inputs, model(noisy), name=f"{model.name}_fresh_noise")


def compile_with_decay(model, steps, learning_rate=3e-3, loss="binary_crossentropy"):
    """Compile like helpers.compile_autoencoder, with adam's learning rate falling to 0 over steps (cosine decay)."""
    (steps,) = check_positive_ints("steps", [steps])
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)
    return helpers.compile_autoencoder(model, optimizer=keras.optimizers.Adam(schedule), loss=loss)


def fit_fresh_noise(
    model, clean, epochs=20, noise_factor=0.5, seed=None, batch_size=128, validation_data=None, budget=None
):
    """Train model to restore clean rows from a new noisy copy of them every epoch; return (losses per epoch, seconds per epoch).

    Fresh noise means the model never sees the same noisy image twice, so it cannot memorise the
    noise and bigger models keep improving. Drawing the noise (in float32) is counted in the seconds.
    With budget (seconds), training stops before an epoch that, as long as the last one, would end after it.
    """
    noise_factor = check_noise_factor(noise_factor)
    (epochs,) = check_positive_ints("epochs", [epochs])
    if budget is not None:
        check_budget(budget)
    rng = np.random.default_rng(seed)
    losses, seconds = {}, []
    for _ in range(epochs):
        start = time.perf_counter()
        noisy = helpers.add_noise(clean, noise_factor, rng, draw_dtype="float32")
        history = helpers.train_autoencoder(
            model, noisy, clean, validation_data, epochs=1, batch_size=batch_size, verbose=0
        )
        seconds.append(time.perf_counter() - start)
        for key, values in history.history.items():
            losses.setdefault(key, []).extend(values)
        if budget is not None and sum(seconds) + seconds[-1] > budget:
            break
    return losses, seconds


# ---------------------------------------------------------------- timing and rewinding


class EpochTimer(keras.callbacks.Callback):
    """Record the wall-clock seconds of every training epoch in .seconds."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


class TimeBudget(keras.callbacks.Callback):
    """Stop training before an epoch that, as long as the last one, would end after `seconds` of training."""

    def __init__(self, seconds):
        super().__init__()
        self.budget = check_budget(seconds)

    def on_train_begin(self, logs=None):
        self.begin = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        if now - self.begin + (now - self.start) > self.budget:
            self.model.stop_training = True


def fit_timed(model, inputs, targets, validation_data=None, epochs=5, batch_size=128, verbose=0, budget=None):
    """Fit inputs -> targets with shuffling, within budget seconds if given; return (History, seconds of each epoch)."""
    timer = EpochTimer()
    callbacks = [timer] + ([TimeBudget(budget)] if budget is not None else [])
    history = helpers.train_autoencoder(model, inputs, targets, validation_data, epochs, batch_size, verbose, callbacks)
    return history, timer.seconds


def snapshot(model):
    """Save a compiled model's weights and optimizer state, to rewind() to later."""
    if getattr(model, "optimizer", None) is None:
        raise ValueError(f"{model.name} is not compiled: compile it (helpers.compile_autoencoder) before snapshot().")
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    return [v.numpy() for v in model.weights], [v.numpy() for v in model.optimizer.variables]


def rewind(model, state):
    """Restore the weights and optimizer state saved by snapshot(): train afresh without compiling again."""
    weights, optimizer_values = state
    if len(weights) != len(model.weights) or len(optimizer_values) != len(model.optimizer.variables):
        raise ValueError(f"This snapshot was not taken from {model.name}: take it with snapshot({model.name}).")
    for variable, value in zip(model.weights, weights):
        variable.assign(value)
    for variable, value in zip(model.optimizer.variables, optimizer_values):
        variable.assign(value)


# ---------------------------------------------------------------- image quality


def as_image_stack(images, image_shape):
    """Return images (rows or stacks) as float64 (n, height, width), or raise ValueError."""
    images = np.asarray(images, dtype="float64")
    return helpers.as_images(images, len(images) if images.ndim else 0, check_image_shape(image_shape))


def image_scores(clean, images, image_shape=(28, 28)):
    """Per-image PSNR (dB) and SSIM of images against clean, pixels in [0, 1]; return two arrays."""
    clean, images = as_image_stack(clean, image_shape), as_image_stack(images, image_shape)
    if clean.shape != images.shape:
        raise ValueError(f"clean holds {len(clean)} images but images holds {len(images)}: compare the same images.")
    if not len(clean):
        raise ValueError("No images to score: pass at least one image.")
    with np.errstate(divide="ignore"):  # a perfect image scores inf dB, as in scikit-image
        psnr = np.array([peak_signal_noise_ratio(c, d, data_range=1.0) for c, d in zip(clean, images)])
    ssim = np.array([structural_similarity(c, d, data_range=1.0) for c, d in zip(clean, images)])
    return psnr, ssim


def mean_scores(clean, images, image_shape=(28, 28)):
    """Mean per-image PSNR (dB) and SSIM of images against clean."""
    psnr, ssim = image_scores(clean, images, image_shape)
    return float(psnr.mean()), float(ssim.mean())


SSIM_WINDOW = 7  # scikit-image's default: a uniform 7x7 window
SSIM_C1, SSIM_C2 = 0.01**2, 0.03**2  # its K1, K2 constants, squared, for data_range 1


def running_mean_matrix(size, window=SSIM_WINDOW):
    """Return the (size - window + 1, size) matrix that takes the means of every `window` neighbours of a column."""
    if not 0 < window <= size:
        raise ValueError(
            f"SSIM's {window}x{window} window needs images at least {window} pixels high and wide, got {size}."
        )
    starts = np.arange(size - window + 1)[:, None]
    columns = np.arange(size)[None, :]
    return ((columns >= starts) & (columns < starts + window)).astype("float32") / window


def ssim_rows(clean, images, image_shape=(28, 28)):
    """Keras ops: the SSIM of each flat image row against its clean row, as scikit-image's structural_similarity(data_range=1) computes it.

    Written with Keras ops (scikit-image works on numpy arrays, outside the training graph) so that
    a loss can use it. Like scikit-image: means over a uniform 7x7 window, sample (co)variances,
    and only the windows that fit inside the image, which two matrix products give.
    """
    height, width = check_image_shape(image_shape)
    rows, cols = running_mean_matrix(height), running_mean_matrix(width).T
    ops = keras.ops
    a, b = ops.reshape(clean, (-1, height, width)), ops.reshape(images, (-1, height, width))
    stack = ops.stack([a, b, a * a, b * b, a * b], axis=1)
    mean_a, mean_b, mean_aa, mean_bb, mean_ab = ops.unstack(ops.matmul(rows, ops.matmul(stack, cols)), axis=1)
    sample = SSIM_WINDOW**2 / (SSIM_WINDOW**2 - 1)
    var_a, var_b = sample * (mean_aa - mean_a * mean_a), sample * (mean_bb - mean_b * mean_b)
    cov = sample * (mean_ab - mean_a * mean_b)
    ssim = (
        (2 * mean_a * mean_b + SSIM_C1)
        * (2 * cov + SSIM_C2)
        / ((mean_a * mean_a + mean_b * mean_b + SSIM_C1) * (var_a + var_b + SSIM_C2))
    )
    return ops.mean(ssim, axis=(1, 2))


def loss_with_ssim(loss="mean_squared_error", ssim_weight=0.05, image_shape=(28, 28)):
    """Return a Keras loss: the Keras loss named `loss`, plus ssim_weight * (1 - SSIM), for each image.

    SSIM rewards local contrast and structure that pixel losses average away. The defaults are the
    benchmark's (MSE + 0.05 SSIM); with binary cross-entropy, whose gradients are larger, 0.5 did
    as well for SSIM and 0.1 dB worse for PSNR.
    """
    try:
        base = keras.losses.get(loss)
    except ValueError:
        raise ValueError(
            f"Unknown loss {loss!r}: name a Keras loss such as 'mean_squared_error' or 'binary_crossentropy'."
        ) from None
    ssim_weight = check_non_negative("ssim_weight", ssim_weight, 0.05)
    check_image_shape(image_shape)

    def pixels_and_ssim(clean, images):
        return base(clean, images) + ssim_weight * (1 - ssim_rows(clean, images, image_shape))

    return pixels_and_ssim


# ---------------------------------------------------------------- classical denoisers

# Picked by PSNR on 300 training images at noise 0.5 (benchmarks/bench_quality.py --tune prints the grid).
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
    """Fit scikit-learn's PCA (exact, covariance eigendecomposition: deterministic) to training rows."""
    x_train = np.asarray(x_train, dtype="float32")
    if x_train.ndim != 2 or len(x_train) < 2:
        raise ValueError(f"fit_pca needs at least 2 rows of pixels, got an array of shape {x_train.shape}.")
    if (
        isinstance(n_components, bool)
        or not isinstance(n_components, (int, np.integer))
        or not 0 < n_components <= x_train.shape[1]
    ):
        raise ValueError(f"n_components must be an integer from 1 to {x_train.shape[1]}, got {n_components!r}.")
    return PCA(n_components, svd_solver="covariance_eigh").fit(x_train)


def pca_denoise(images, pca):
    """Project rows onto a fitted PCA's components and back, clipped to [0, 1]."""
    images = np.asarray(images, dtype="float32")
    return np.clip(pca.inverse_transform(pca.transform(images)), 0.0, 1.0)


def denoise_each(images, method, image_shape=(28, 28), **params):
    """Apply one classical per-image denoiser (see FILTERS) to every image; return rows."""
    if method not in FILTERS:
        raise ValueError(f"Unknown per-image denoiser {method!r}: use one of {sorted(FILTERS)}.")
    stack = as_image_stack(images, image_shape)
    return np.stack([FILTERS[method](image, **params) for image in stack]).reshape(len(stack), -1)


def classical_denoise(noisy, x_train, image_shape=(28, 28), params=None):
    """Denoise noisy rows with every classical method (PCA fitted on x_train); return {name: (rows, seconds)}."""
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


# ---------------------------------------------------------------- quality table


def quality_rows(clean, noisy, x_train, autoencoders, image_shape=(28, 28), classical_params=None):
    """Score the noisy input, every classical denoiser and every autoencoder on the same images; return rows.

    autoencoders maps a name to (model, training seconds or None), or to (model, seconds, kind) to give a
    kind other than "autoencoder" (quality_failures checks only that kind). Each row is a dict: method,
    kind, mean PSNR (dB) and SSIM, training seconds and seconds to denoise all the images.
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
    """Return quality rows as a markdown table, best PSNR first."""
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
    """List what fails: a challenger not beating baseline by PSNR, or an autoencoder not beating every classical denoiser."""
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


# ---------------------------------------------------------------- code size x noise sweep


def run_sweep(
    x_train,
    x_test,
    code_sizes=(16, 32, 64, 128),
    noise_factors=(0.3, 0.5, 0.7),
    epochs=3,
    seed=0,
    image_shape=(28, 28),
    n_examples=4,
    batch_size=128,
):
    """Train one shallow DAE per (code size, noise factor) the lab's way; return scores, times and example images.

    One model is compiled per code size and rewound to the same starting weights for each noise factor.
    The result holds code_sizes, noise_factors, epochs; psnr, ssim and seconds (arrays: code sizes down,
    noise factors across); noisy[factor] and denoised[(code_size, factor)], the first n_examples test images.
    """
    code_sizes = check_positive_ints("code_sizes", code_sizes)
    noise_factors = tuple(check_noise_factor(f) for f in noise_factors)
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


def plot_sweep(sweep, metric="psnr"):
    """Heat map of a sweep's mean test PSNR (or "ssim"), code sizes down, noise factors across; return the Figure."""
    if metric not in ("psnr", "ssim"):
        raise ValueError(f"metric must be 'psnr' or 'ssim', got {metric!r}.")
    values = np.asarray(sweep[metric])
    fig, ax = plt.subplots(figsize=(4.8, 3.6))
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
    fig.tight_layout()
    return fig


def plot_sweep_examples(sweep, image_shape=(28, 28)):
    """Example images of a sweep: a block of columns per noise factor, the noisy row then a row per code size."""
    factors, sizes = sweep["noise_factors"], sweep["code_sizes"]
    n = len(sweep["noisy"][factors[0]])
    rows = [("noisy", sweep["noisy"])] + [(f"code {c}", {f: sweep["denoised"][(c, f)] for f in factors}) for c in sizes]
    fig, axes = plt.subplots(
        len(rows), n * len(factors), figsize=(n * len(factors) * 0.8, len(rows) * 0.85), squeeze=False
    )
    for r, (label, blocks) in enumerate(rows):
        for b, factor in enumerate(factors):
            for k, image in enumerate(helpers.as_images(blocks[factor], n, image_shape)):
                ax = axes[r, b * n + k]
                ax.imshow(image, cmap="gray", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
                ax.spines[:].set_visible(False)
                if r == 0 and k == 0:
                    ax.set_title(f"noise {factor:g}", loc="left", fontsize=9)
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout(pad=0.3)
    return fig


# ---------------------------------------------------------------- faces and anomaly detection


def load_faces():
    """scikit-image's bundled LFW subset as float32 rows of 25x25 pixels in [0, 1]: (100 faces, 100 non-faces)."""
    images = skdata.lfw_subset().astype("float32")
    if images.shape != (200, 25, 25):
        raise ValueError(f"Expected lfw_subset() to hold 200 images of 25x25, got {images.shape}: check scikit-image.")
    rows = images.reshape(200, -1)
    return rows[:100], rows[100:]


def reconstruction_errors(model, images):
    """Mean squared error between each row and the model's reconstruction of it."""
    images = np.asarray(images, dtype="float32")
    return np.mean((predict_rows(model, images) - images) ** 2, axis=1)


def pick_threshold(normal_errors, quantile=0.95):
    """The error above which a sample is flagged: this quantile of the errors on normal data."""
    normal_errors = np.ravel(np.asarray(normal_errors, dtype="float64"))
    if not normal_errors.size:
        raise ValueError("pick_threshold needs the errors of at least one normal sample.")
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be between 0 and 1, such as 0.95; got {quantile}.")
    return float(np.quantile(normal_errors, quantile))


def roc_auc(normal_scores, anomaly_scores):
    """Area under the ROC curve (scikit-learn): the chance that a random anomaly scores above a random normal sample."""
    normal_scores, anomaly_scores = np.ravel(normal_scores), np.ravel(anomaly_scores)
    if not normal_scores.size or not anomaly_scores.size:
        raise ValueError("roc_auc needs at least one normal and one anomalous score.")
    labels = np.r_[np.zeros(normal_scores.size), np.ones(anomaly_scores.size)]
    return float(roc_auc_score(labels, np.r_[normal_scores, anomaly_scores]))


def detection_rates(normal_scores, anomaly_scores, threshold):
    """Return (share of anomalies flagged, share of normal samples wrongly flagged) at threshold."""
    return float(np.mean(np.ravel(anomaly_scores) > threshold)), float(np.mean(np.ravel(normal_scores) > threshold))


# ---------------------------------------------------------------- plots


def plot_error_histogram(normal_errors, anomaly_errors, threshold, labels=("normal", "anomalous")):
    """Overlaid histograms of reconstruction errors with the threshold marked; return the Figure."""
    normal_errors, anomaly_errors = np.ravel(normal_errors), np.ravel(anomaly_errors)
    if not normal_errors.size or not anomaly_errors.size:
        raise ValueError("plot_error_histogram needs at least one normal and one anomalous error.")
    bins = np.linspace(0, max(normal_errors.max(), anomaly_errors.max(), threshold) * 1.05, 31)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(normal_errors, bins=bins, alpha=0.6, label=labels[0])
    ax.hist(anomaly_errors, bins=bins, alpha=0.6, label=labels[1])
    ax.axvline(threshold, color="black", linestyle="--", label="threshold")
    ax.set(xlabel="reconstruction error (mean squared error per image)", ylabel="images")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_epoch_gains(history):
    """Left: training and validation loss per epoch; right: how much each epoch lowered the validation loss (log scale)."""
    losses = history.history
    if len(losses.get("val_loss", [])) < 2:
        raise ValueError(
            "plot_epoch_gains needs a History with validation loss for 2 epochs or more: fit with validation_data."
        )
    epochs = np.arange(1, len(losses["val_loss"]) + 1)
    gains = -np.diff(losses["val_loss"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    left.plot(epochs, losses["loss"], label="training loss")
    left.plot(epochs, losses["val_loss"], label="validation loss")
    left.set(xlabel="epoch", ylabel="binary cross-entropy", title="loss per epoch")
    left.legend()
    improved = gains > 0
    right.semilogy(epochs[1:][improved], gains[improved], "o-", markersize=3)
    right.set(xlabel="epoch", ylabel="drop in validation loss", title="what each epoch gained (log scale)")
    fig.tight_layout()
    return fig


def plot_curves(curves, ylabel="loss", title=None):
    """Plot several per-epoch curves ({label: values}) on one axes; return the Figure."""
    if not curves:
        raise ValueError("plot_curves needs at least one curve: pass {label: values}.")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, values in curves.items():
        ax.plot(np.arange(1, len(values) + 1), values, label=label)
    ax.set(xlabel="epoch", ylabel=ylabel, title=title)
    ax.legend()
    fig.tight_layout()
    return fig
