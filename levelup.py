"""Helpers for the lab's "level up" section: more models, sweeps, faces, anomalies, quality tables.

Kept apart from helpers.py so the core lab stays small. Nothing here runs on import; randomness
comes only from the seeds you pass in. Models use `keras` APIs only, and every model takes flat
rows of pixels (like helpers.build_autoencoder), so helpers.train_autoencoder works on all of them.
"""

import time

import keras
import matplotlib.pyplot as plt
import numpy as np
from scipy import ndimage, stats
from skimage import data as skdata
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.restoration import denoise_nl_means, denoise_tv_chambolle

import helpers

MODEL_KINDS = ("shallow", "deep", "conv")
CLASSICAL_METHODS = ("Gaussian filter", "median filter", "TV (Chambolle)", "non-local means", "PCA-32")


def check_positive_ints(label, values):
    """Raise ValueError unless values is a non-empty sequence of positive integers."""
    values = tuple(values)
    if not values or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0 for v in values):
        raise ValueError(f"{label} must be a non-empty list of positive integers, got {values!r}.")
    return values


# ---------------------------------------------------------------- models


def build_deep_autoencoder(input_dim=784, hidden=(256, 128, 64), name="deep_autoencoder"):
    """Build input_dim -> hidden... (relu) -> mirrored back -> input_dim (sigmoid); return (autoencoder, encoder)."""
    hidden = check_positive_ints("hidden", hidden)
    inputs = keras.Input(shape=(input_dim,), name="inputs")
    x = inputs
    for i, units in enumerate(hidden):
        x = keras.layers.Dense(units, activation="relu", name="code" if i == len(hidden) - 1 else f"encode_{i + 1}")(x)
    code = x
    for i, units in enumerate(reversed(hidden[:-1])):
        x = keras.layers.Dense(units, activation="relu", name=f"decode_{i + 1}")(x)
    outputs = keras.layers.Dense(input_dim, activation="sigmoid", name="reconstruction")(x)
    return keras.Model(inputs, outputs, name=name), keras.Model(inputs, code, name=f"{name}_encoder")


def check_image_shape(image_shape, input_dim=None, downsampling=1):
    """Return image_shape as (height, width), or raise ValueError if it cannot be used."""
    try:
        height, width = (int(v) for v in image_shape)
    except (TypeError, ValueError):
        raise ValueError(f"image_shape must be (height, width), got {image_shape!r}.") from None
    if height <= 0 or width <= 0:
        raise ValueError(f"image_shape must be positive, got {image_shape!r}.")
    if input_dim is not None and height * width != input_dim:
        raise ValueError(f"image_shape {image_shape} holds {height * width} pixels but rows hold {input_dim}.")
    if height % downsampling or width % downsampling:
        raise ValueError(
            f"The conv autoencoder shrinks images {downsampling} times, so height and width must be divisible by "
            f"{downsampling}; got {height}x{width}: crop or pad the images (e.g. to 28x28), or use kind='deep'."
        )
    return height, width



def build_conv_autoencoder(image_shape=(28, 28), filters=64, name="conv_autoencoder"):
    """Build a conv encoder (4x4 patches, 3x3 conv) and a transposed-conv decoder on flat rows; return (autoencoder, encoder).

    The encoder cuts the image into 4x4 patches (a stride-4 convolution) and mixes neighbours with a 3x3
    convolution: its code is a (height/4, width/4, filters) map. The decoder mixes once more and grows the
    map back in two stride-2 transposed convolutions. Rows in and out, like helpers.build_autoencoder.
    """
    height, width = check_image_shape(image_shape, downsampling=4)
    (filters,) = check_positive_ints("filters", [filters])
    layers = keras.layers
    inputs = keras.Input(shape=(height * width,), name="inputs")
    x = layers.Reshape((height, width, 1), name="to_image")(inputs)
    x = layers.Conv2D(filters, 4, strides=4, padding="same", activation="relu", name="patches")(x)
    code = layers.Conv2D(filters, 3, padding="same", activation="relu", name="code")(x)
    x = layers.Conv2D(filters, 3, padding="same", activation="relu", name="decode")(code)
    x = layers.Conv2DTranspose(max(filters // 4, 1), 4, strides=2, padding="same", activation="relu", name="upsample")(x)
    x = layers.Conv2DTranspose(1, 4, strides=2, padding="same", activation="sigmoid", name="to_pixels")(x)
    outputs = layers.Reshape((height * width,), name="reconstruction")(x)
    return keras.Model(inputs, outputs, name=name), keras.Model(inputs, code, name=f"{name}_encoder")


def build_denoiser(kind, image_shape=(28, 28), name=None, **options):
    """Build a 'shallow', 'deep' or 'conv' autoencoder on flat rows of image_shape pixels; return (autoencoder, encoder)."""
    builders = {
        "shallow": lambda **o: helpers.build_autoencoder(int(np.prod(check_image_shape(image_shape))), name=name, **o),
        "deep": lambda **o: build_deep_autoencoder(int(np.prod(check_image_shape(image_shape))), name=name, **o),
        "conv": lambda **o: build_conv_autoencoder(image_shape, name=name, **o),
    }
    name = name or f"{kind}_dae"
    if kind in builders:
        return builders[kind](**options)
    raise ValueError(f"Unknown model kind {kind!r}: use one of {', '.join(repr(k) for k in MODEL_KINDS)}.")

@keras.saving.register_keras_serializable(package="levelup")
class ClippedGaussianNoise(keras.layers.Layer):
    """Add noise_factor * N(0, 1) and clip to [0, 1] during training only: fresh noise every batch."""

    def __init__(self, noise_factor=0.5, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(noise_factor, bool) or not isinstance(noise_factor, (int, float, np.number)) or not noise_factor >= 0:
            raise ValueError(f"noise_factor must be a number, 0 or more, such as 0.5; got {noise_factor!r}.")
        self.noise_factor = float(noise_factor)
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
    """Return a model that corrupts its (clean) input with fresh noise in training, then runs model (shared weights)."""
    inputs = keras.Input(shape=model.input_shape[1:], name="clean_inputs")
    noisy = ClippedGaussianNoise(noise_factor, seed=seed, name="fresh_noise")(inputs)
    return keras.Model(inputs, model(noisy), name=f"{model.name}_fresh_noise")


# ---------------------------------------------------------------- timing


class EpochTimer(keras.callbacks.Callback):
    """Record the wall-clock seconds of every training epoch in .seconds."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


def fit_timed(model, inputs, targets, validation_data=None, epochs=5, batch_size=128, verbose=0):
    """Fit inputs -> targets with shuffling; return (History, seconds per epoch as a list)."""
    timer = EpochTimer()
    history = model.fit(
        inputs, targets, epochs=epochs, batch_size=batch_size, shuffle=True,
        validation_data=validation_data, verbose=verbose, callbacks=[timer],
    )
    return history, timer.seconds


# ---------------------------------------------------------------- image quality


def as_image_stack(images, image_shape):
    """Return images (rows or stacks) as float64 (n, height, width), or raise ValueError."""
    images = np.asarray(images, dtype="float64")
    height, width = image_shape
    if images.ndim < 2 or int(np.prod(images.shape[1:])) != height * width:
        raise ValueError(f"Expected images of {height * width} values ({height}x{width}), got an array of shape {images.shape}.")
    return images.reshape(len(images), height, width)


def image_scores(clean, images, image_shape=(28, 28)):
    """Per-image PSNR (dB) and SSIM of images against clean (pixels in [0, 1]); return two arrays."""
    clean, images = as_image_stack(clean, image_shape), as_image_stack(images, image_shape)
    if clean.shape != images.shape:
        raise ValueError(f"clean holds {len(clean)} images but images holds {len(images)}: compare the same images.")
    if not len(clean):
        raise ValueError("No images to score: pass at least one image.")
    psnr = np.array([peak_signal_noise_ratio(c, d, data_range=1.0) for c, d in zip(clean, images)])
    ssim = np.array([structural_similarity(c, d, data_range=1.0) for c, d in zip(clean, images)])
    return psnr, ssim


def mean_scores(clean, images, image_shape=(28, 28)):
    """Mean per-image PSNR (dB) and SSIM of images against clean."""
    psnr, ssim = image_scores(clean, images, image_shape)
    return float(psnr.mean()), float(ssim.mean())


# ---------------------------------------------------------------- classical denoisers

# Picked by PSNR on 300 training images at noise 0.5 (benchmarks/bench_quality.py --tune prints the grid).
CLASSICAL_PARAMS = {
    "Gaussian filter": {"sigma": 1.0},
    "median filter": {"size": 5},
    "TV (Chambolle)": {"weight": 0.2},
    "non-local means": {"h": 0.2, "patch_size": 5, "patch_distance": 6},
    "PCA-32": {"n_components": 32},
}


def fit_pca(x_train, n_components=32):
    """Fit PCA on training rows; return (mean row, components as rows)."""
    x_train = np.asarray(x_train, dtype="float64")
    if x_train.ndim != 2 or not 0 < n_components <= min(x_train.shape):
        raise ValueError(f"fit_pca needs rows of pixels and 0 < n_components <= {min(np.shape(x_train) or [0])}, got shape {x_train.shape} and {n_components}.")
    mean = x_train.mean(axis=0)
    _, vectors = np.linalg.eigh(np.cov(x_train - mean, rowvar=False))  # ascending eigenvalues
    return mean, vectors[:, ::-1][:, :n_components].T


def pca_denoise(images, mean, components):
    """Project rows onto the PCA components and back, clipped to [0, 1]."""
    images = np.asarray(images, dtype="float64")
    return np.clip((images - mean) @ components.T @ components + mean, 0.0, 1.0)


def denoise_each(images, image_shape, method, **params):
    """Apply one classical per-image denoiser (Gaussian, median, TV, non-local means) to every image; return rows."""
    filters = {
        "Gaussian filter": lambda im: ndimage.gaussian_filter(im, **params),
        "median filter": lambda im: ndimage.median_filter(im, **params),
        "TV (Chambolle)": lambda im: denoise_tv_chambolle(im, **params),
        "non-local means": lambda im: denoise_nl_means(im, fast_mode=True, **params),
    }
    if method not in filters:
        raise ValueError(f"Unknown per-image denoiser {method!r}: use one of {sorted(filters)}.")
    stack = as_image_stack(images, image_shape)
    return np.stack([filters[method](im) for im in stack]).reshape(len(stack), -1)


def classical_denoise(noisy, x_train, image_shape=(28, 28), params=None):
    """Denoise noisy rows with every classical method; return {name: (denoised rows, seconds)}."""
    params = CLASSICAL_PARAMS if params is None else params
    results = {}
    for method in CLASSICAL_METHODS:
        start = time.perf_counter()
        if method.startswith("PCA"):
            denoised = pca_denoise(noisy, *fit_pca(x_train, **params[method]))
        else:
            denoised = denoise_each(noisy, image_shape, method, **params[method])
        results[method] = (denoised, time.perf_counter() - start)
    return results


# ---------------------------------------------------------------- quality table


def quality_rows(clean, noisy, x_train, autoencoders, image_shape=(28, 28), classical_params=None):
    """Score the noisy input, every classical denoiser and every autoencoder on the same images; return rows.

    autoencoders maps a name to (model, training seconds); each row is a dict with the method, its kind,
    mean PSNR (dB) and SSIM, training seconds and seconds to denoise all the images.
    """
    if len(clean) != len(noisy):
        raise ValueError(f"clean holds {len(clean)} images but noisy holds {len(noisy)}: pass the same test images.")

    def row(method, kind, denoised, train_s, denoise_s):
        psnr, ssim = mean_scores(clean, denoised, image_shape)
        return {"method": method, "kind": kind, "psnr": psnr, "ssim": ssim, "train_s": train_s, "denoise_s": denoise_s}

    rows = [row("noisy input", "none", noisy, None, 0.0)]
    for method, (denoised, seconds) in classical_denoise(noisy, x_train, image_shape, classical_params).items():
        rows.append(row(method, "classical", denoised, None, seconds))
    for name, (model, train_s) in autoencoders.items():
        start = time.perf_counter()
        denoised = model.predict(noisy, batch_size=1000, verbose=0)
        rows.append(row(name, "autoencoder", denoised, train_s, time.perf_counter() - start))
    return rows


def format_table(rows):
    """Return quality rows as a markdown table, best PSNR first."""
    lines = ["| method | kind | PSNR (dB) | SSIM | training (s) | denoising (s) |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    for r in sorted(rows, key=lambda r: -r["psnr"]):
        train = "–" if r["train_s"] is None else f"{r['train_s']:.0f}"
        lines.append(f"| {r['method']} | {r['kind']} | {r['psnr']:.2f} | {r['ssim']:.3f} | {train} | {r['denoise_s']:.1f} |")
    return "\n".join(lines)


def quality_failures(rows, baseline, challengers):
    """List what fails: a challenger not beating baseline by PSNR, or an autoencoder not beating every classical one."""
    by_name = {r["method"]: r for r in rows}
    missing = [name for name in (baseline, *challengers) if name not in by_name]
    if missing:
        raise ValueError(f"No rows named {missing}: the table has {sorted(by_name)}.")
    failures = [
        f"{name} ({by_name[name]['psnr']:.2f} dB) does not beat {baseline} ({by_name[baseline]['psnr']:.2f} dB)"
        for name in challengers if by_name[name]["psnr"] <= by_name[baseline]["psnr"]
    ]
    classical = [r for r in rows if r["kind"] == "classical"]
    for ae in (r for r in rows if r["kind"] == "autoencoder"):
        failures += [
            f"{ae['method']} ({ae['psnr']:.2f} dB) does not beat {c['method']} ({c['psnr']:.2f} dB)"
            for c in classical if ae["psnr"] <= c["psnr"]
        ]
    return failures


# ---------------------------------------------------------------- code size x noise sweep


def check_noise_factors(noise_factors):
    """Return noise_factors as a tuple of floats, or raise ValueError if empty or not numbers >= 0."""
    noise_factors = tuple(noise_factors)
    if not noise_factors or any(
        isinstance(f, bool) or not isinstance(f, (int, float, np.number)) or not f >= 0 for f in noise_factors
    ):
        raise ValueError(f"noise_factors must be a non-empty list of numbers, 0 or more, got {noise_factors!r}.")
    return tuple(float(f) for f in noise_factors)


def run_sweep(x_train, x_test, code_sizes=(16, 32, 64, 128), noise_factors=(0.3, 0.5, 0.7), epochs=3,
              seed=0, image_shape=(28, 28), n_examples=4, batch_size=128):
    """Train one shallow DAE per (code size, noise factor) the lab's way; return scores, times and example images.

    The result holds code_sizes, noise_factors, psnr and ssim and seconds (arrays, code sizes down, noise
    factors across), noisy[f] and denoised[(code_size, f)] (the first n_examples test images).
    """
    code_sizes = check_positive_ints("code_sizes", code_sizes)
    noise_factors = check_noise_factors(noise_factors)
    if not 0 < n_examples <= len(x_test):
        raise ValueError(f"n_examples must be between 1 and the {len(x_test)} test images, got {n_examples}.")
    rng = np.random.default_rng(seed)
    shape = (len(code_sizes), len(noise_factors))
    result = {"code_sizes": code_sizes, "noise_factors": noise_factors, "epochs": epochs,
              "psnr": np.zeros(shape), "ssim": np.zeros(shape), "seconds": np.zeros(shape), "noisy": {}, "denoised": {}}
    for j, factor in enumerate(noise_factors):
        train_noisy, test_noisy = helpers.add_noise(x_train, factor, rng), helpers.add_noise(x_test, factor, rng)
        result["noisy"][factor] = test_noisy[:n_examples]
        for i, code_size in enumerate(code_sizes):
            keras.utils.set_random_seed(seed)  # same initial-weight stream for every setting
            model, _ = helpers.build_autoencoder(x_train.shape[1], code_size, name=f"dae_{code_size}_{factor:g}")
            helpers.compile_autoencoder(model)
            start = time.perf_counter()
            model.fit(train_noisy, x_train, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0)
            result["seconds"][i, j] = time.perf_counter() - start
            denoised = model.predict(test_noisy, batch_size=1000, verbose=0)
            result["psnr"][i, j], result["ssim"][i, j] = mean_scores(x_test, denoised, image_shape)
            result["denoised"][(code_size, factor)] = denoised[:n_examples]
    return result


def plot_sweep(sweep, metric="psnr"):
    """Heat map of a sweep's mean test PSNR (or SSIM), code sizes down, noise factors across; return the Figure."""
    values = np.asarray(sweep[metric])
    fig, ax = plt.subplots(figsize=(4.8, 3.6))
    image = ax.imshow(values, cmap="viridis", aspect="auto")
    for (i, j), value in np.ndenumerate(values):
        ax.text(j, i, f"{value:.1f}" if metric == "psnr" else f"{value:.2f}", ha="center", va="center",
                color="white" if value < values.mean() else "black")
    ax.set_xticks(range(len(sweep["noise_factors"])), [f"{f:g}" for f in sweep["noise_factors"]])
    ax.set_yticks(range(len(sweep["code_sizes"])), [str(c) for c in sweep["code_sizes"]])
    ax.set(xlabel="noise factor", ylabel="code size", title=f"test {'PSNR (dB)' if metric == 'psnr' else 'SSIM'}")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    return fig


def plot_sweep_examples(sweep, image_shape=(28, 28)):
    """Grid of example images: per noise factor a block of columns; the noisy row, then one row per code size."""
    factors, sizes = sweep["noise_factors"], sweep["code_sizes"]
    n = len(sweep["noisy"][factors[0]])
    rows = [("noisy", {f: sweep["noisy"][f] for f in factors})]
    rows += [(f"code {c}", {f: sweep["denoised"][(c, f)] for f in factors}) for c in sizes]
    fig, axes = plt.subplots(len(rows), n * len(factors), figsize=(n * len(factors) * 0.8, len(rows) * 0.9), squeeze=False)
    for r, (label, blocks) in enumerate(rows):
        for b, factor in enumerate(factors):
            for k, image in enumerate(helpers.as_images(blocks[factor], n, image_shape)):
                ax = axes[r, b * n + k]
                ax.imshow(image, cmap="gray", vmin=0, vmax=1)
                ax.set_xticks([]), ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_visible(False)
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
    """Mean squared error between each row and its reconstruction by model."""
    helpers.check_input_size(model, images)
    images = np.asarray(images, dtype="float32")
    return np.mean((model.predict(images, batch_size=1000, verbose=0) - images) ** 2, axis=1)


def pick_threshold(normal_errors, quantile=0.95):
    """Error above which a sample is flagged: the quantile of errors on normal (training) data."""
    normal_errors = np.asarray(normal_errors, dtype="float64")
    if not normal_errors.size:
        raise ValueError("pick_threshold needs errors of at least one normal sample.")
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be between 0 and 1, such as 0.95; got {quantile}.")
    return float(np.quantile(normal_errors, quantile))


def roc_auc(normal_scores, anomaly_scores):
    """Area under the ROC curve: the chance that a random anomaly scores higher than a random normal sample."""
    normal_scores, anomaly_scores = np.ravel(normal_scores), np.ravel(anomaly_scores)
    if not normal_scores.size or not anomaly_scores.size:
        raise ValueError("roc_auc needs at least one normal and one anomalous score.")
    u = stats.mannwhitneyu(anomaly_scores, normal_scores, alternative="two-sided").statistic  # ties count one half
    return float(u / (normal_scores.size * anomaly_scores.size))


def detection_rates(normal_scores, anomaly_scores, threshold):
    """Return (share of anomalies flagged, share of normal samples wrongly flagged) at threshold."""
    return float(np.mean(np.ravel(anomaly_scores) > threshold)), float(np.mean(np.ravel(normal_scores) > threshold))


def plot_error_histogram(normal_errors, anomaly_errors, threshold, labels=("normal", "anomalous")):
    """Overlaid histograms of reconstruction errors with the threshold marked; return the Figure."""
    normal_errors, anomaly_errors = np.ravel(normal_errors), np.ravel(anomaly_errors)
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
        raise ValueError("plot_epoch_gains needs a History with validation loss for at least 2 epochs: fit with validation_data.")
    epochs = np.arange(1, len(losses["val_loss"]) + 1)
    gains = -np.diff(losses["val_loss"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    left.plot(epochs, losses["loss"], label="training loss")
    left.plot(epochs, losses["val_loss"], label="validation loss")
    left.set(xlabel="epoch", ylabel="binary cross-entropy", title="loss per epoch")
    left.legend()
    right.semilogy(epochs[1:][gains > 0], gains[gains > 0], "o-", markersize=3)
    right.set(xlabel="epoch", ylabel="drop in validation loss", title="gain from each epoch (log scale)")
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
