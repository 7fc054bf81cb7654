"""The lab's constants, input checks, data, noise, model and plotting helpers for the denoising-autoencoder lab.

Each concept has its home in one section here, and the checks and levelup.py call it: the lab's
constants, what a bad input raises (checking inputs), the noise (add_noise in numpy,
ClippedGaussianNoise in Keras, and the statistics checks/noise.py recognises it by), the loss
(mean_bce) and the plots (each takes an optional axis and returns its Figure).

Nothing here runs on import but quieting the backend (its start-up lines, TensorFlow's retracing notice).
Randomness comes only from the seed or numpy
Generator you pass in. Only `keras` APIs are used, so any Keras 3 backend works.
"""

import contextlib
import gzip
import importlib.util
import logging
import os
import re
import struct
import sys
import tempfile
from pathlib import Path

# TensorFlow's C++ start-up lines that no setting silences on some CPUs (absl's pre-init warning,
# oneDNN and CPU-feature notices); see quiet_native_logs.
STARTUP_CHATTER = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\)|.*\] oneDNN custom operations are on"
    r"|.*cpu_feature_guard\.cc|To enable the following instructions"
)


@contextlib.contextmanager
def stderr_to(file):
    """Send file descriptor 2 (Python's and native libraries' error output) into the open file for the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(file.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def quiet_native_logs():
    """Hold back what native libraries print to stderr inside the block, re-printing all but known start-up chatter."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # read by TensorFlow at import
    try:
        sys.stderr.flush()
        os.fstat(2)
    except (OSError, ValueError):  # no file descriptor 2 to redirect: nothing to hold back
        yield
        return
    with tempfile.TemporaryFile() as held:
        try:
            with stderr_to(held):
                yield
        finally:
            held.seek(0)
            kept = [
                line
                for line in held.read().decode("utf-8", "replace").splitlines(keepends=True)
                if not STARTUP_CHATTER.match(line)
            ]
            if kept:
                sys.stderr.write("".join(kept))


def without_retracing_notice(record):
    """A logging filter: False for TensorFlow's "N out of the last N calls to <function> triggered tf.function
    retracing" warning. Keras makes one function per model, and predicting a new number of rows traces it again, so
    in this lab (which trains many models, and whose checks predict several sizes) it follows ordinary code and
    names nothing a student can change."""
    return "triggered tf.function retracing" not in record.getMessage()


logging.getLogger("tensorflow").addFilter(without_retracing_notice)  # TensorFlow's logger, made by name on any backend
with quiet_native_logs():  # the backend prints its start-up lines when Keras first imports it
    import keras

    if keras.backend.backend() != "tensorflow" and importlib.util.find_spec("tensorflow"):
        importlib.import_module("tensorflow")  # keras.utils.set_random_seed loads it on any backend: its lines too
import matplotlib.pyplot as plt  # noqa: E402  (after Keras: see quiet_native_logs)
import numpy as np  # noqa: E402
from scipy.special import ndtr  # noqa: E402

# ---------------------------------------------------------------- the lab's constants

IMAGE_SHAPE = (28, 28)  # Fashion-MNIST and MNIST images
INPUT_DIM = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]  # 784 pixels a row once flattened
CODE_SIZE = 32  # the code layer of the lab's autoencoders
NOISE_FACTOR = 0.5  # x + NOISE_FACTOR * N(0, 1), clipped to [0, 1]
PARAMS = INPUT_DIM * CODE_SIZE + CODE_SIZE + CODE_SIZE * INPUT_DIM + INPUT_DIM  # 50,992 weights and biases

DATA_DIR_ENV = "DAE_DATA_DIR"
DEBIAN_DIRS = {"fashion_mnist": Path("/usr/share/datasets/fashion-mnist")}
KERAS_LOADERS = {"fashion_mnist": "fashion_mnist", "mnist": "mnist"}
KERAS_CACHE_DIRS = {"fashion_mnist": "fashion-mnist", "mnist": "mnist"}
IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
IDX_TYPES = {0x08: np.uint8}


class DataError(RuntimeError):
    """A data file is missing, truncated or corrupt."""


# ---------------------------------------------------------------- checking inputs
# One error type per mistake: a value of the wrong type raises WrongTypeError, a number out of
# range raises ValueError; the message names the value and the fix.


class WrongTypeError(TypeError, ValueError):
    """A value of the wrong type, such as the string "0.5" where a number belongs.

    Also a ValueError, so that `except ValueError` catches every input the lab's helpers refuse.
    """


def is_integer(value):
    """Whether value is a Python or numpy integer (not a bool)."""
    return not isinstance(value, bool) and isinstance(value, (int, np.integer))


def is_number(value):
    """Whether value is a real Python or numpy number (not a bool)."""
    return is_integer(value) or isinstance(value, (float, np.floating))


def check_positive_int(label, value):
    """Return value, or raise WrongTypeError unless it is an integer, ValueError unless it is 1 or more."""
    message = f"{label} must be a positive integer, got {value!r}."
    if not is_integer(value):
        raise WrongTypeError(message)
    if value <= 0:
        raise ValueError(message)
    return value


def check_positive_ints(label, values):
    """Return values as a tuple, or raise WrongTypeError unless they are integers, ValueError unless 1 or more (and some)."""
    values = tuple(values)
    message = f"{label} must be a non-empty list of positive integers, got {values!r}."
    if not all(is_integer(v) for v in values):
        raise WrongTypeError(message)
    if not values or any(v <= 0 for v in values):
        raise ValueError(message)
    return values


def check_non_negative(label, value, example):
    """Return value as a float, or raise WrongTypeError unless it is a number, ValueError unless it is 0 or more."""
    message = f"{label} must be a number, 0 or more, such as {example}; got {value!r}."
    if not is_number(value):
        raise WrongTypeError(message)
    if not value >= 0:  # NaN too
        raise ValueError(message)
    return float(value)


def check_noise_factor(noise_factor):
    """Return noise_factor as a float, or raise WrongTypeError unless it is a number, ValueError unless 0 or more."""
    return check_non_negative("A noise factor", noise_factor, NOISE_FACTOR)


def check_budget(seconds):
    """Return seconds, or raise WrongTypeError unless it is a number, ValueError unless it is positive (a time budget)."""
    message = f"The time budget must be a positive number of seconds, got {seconds!r}."
    if not is_number(seconds):
        raise WrongTypeError(message)
    if not seconds > 0:
        raise ValueError(message)
    return seconds


def check_image_shape(image_shape, multiple=1):
    """Return image_shape as (height, width), or raise unless it is two positive sizes, multiples of multiple."""
    try:
        height, width = (int(v) for v in image_shape)
    except (TypeError, ValueError):
        raise WrongTypeError(
            f"image_shape must be (height, width), such as {IMAGE_SHAPE}; got {image_shape!r}."
        ) from None
    if height <= 0 or width <= 0:
        raise ValueError(f"image_shape must be two positive sizes, got {image_shape!r}.")
    if height % multiple or width % multiple:
        raise ValueError(
            f"The conv autoencoder shrinks images {multiple} times, so height and width must be divisible by "
            f"{multiple}; got {height}x{width}: crop or pad the images (e.g. to 28x28), or use kind='deep'."
        )
    return height, width


def check_choice(label, value, choices):
    """Return value, or raise ValueError naming the choices unless it is one of them."""
    if value not in choices:
        raise ValueError(f"Unknown {label} {value!r}: use one of {', '.join(repr(c) for c in choices)}.")
    return value


def check_input_size(model, data):
    """Raise ValueError if data's rows don't match the model's input size."""
    expected = model.input_shape[-1]
    got = np.shape(data)[-1] if np.ndim(data) else None
    if got != expected:
        raise ValueError(
            f"{model.name} takes rows of {expected} values, data has shape {np.shape(data)}: "
            "flatten images with prepare_images first, or build the model with input_dim matching the data."
        )


# ---------------------------------------------------------------- data


def read_idx(path):
    """Read one IDX file (gzipped or raw) into a numpy array, or raise DataError naming it."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path}: cannot read it ({err}); delete it and get the data again.") from err
    if len(raw) < 4 or raw[0:2] != b"\x00\x00" or raw[2] not in IDX_TYPES:
        raise DataError(f"{path}: not an IDX file of unsigned bytes (bad header); delete it and get the data again.")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated header; delete it and get the data again.")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise DataError(
            f"{path}: holds {len(raw)} bytes but its header {shape} needs {expected}; "
            "the file is truncated or corrupt: delete it and get the data again."
        )
    return np.frombuffer(raw, IDX_TYPES[raw[2]], offset=header).reshape(shape)


def read_idx_dir(directory):
    """Read the four IDX files in directory as ((x_train, y_train), (x_test, y_test))."""
    x_train, y_train, x_test, y_test = (read_idx(Path(directory) / name) for name in IDX_FILES)
    return (x_train, y_train), (x_test, y_test)


def has_idx_files(directory):
    """Whether directory holds all four IDX files."""
    return directory is not None and all((Path(directory) / name).is_file() for name in IDX_FILES)


def find_data_dir(name="fashion_mnist", data_dir=None):
    """Return the first directory with the dataset's IDX files, or None (Keras cache or download next)."""
    if data_dir is not None:
        if not has_idx_files(data_dir):
            raise DataError(f"{data_dir} does not hold the four files {', '.join(IDX_FILES)}.")
        return Path(data_dir)
    for candidate in (os.environ.get(DATA_DIR_ENV), DEBIAN_DIRS.get(name), keras_cache_dir(name)):
        if candidate and has_idx_files(candidate):
            return Path(candidate)
    return None


def keras_cache_dir(name):
    """Where Keras keeps a downloaded dataset's files."""
    home = os.environ.get("KERAS_HOME", Path.home() / ".keras")
    return Path(home) / "datasets" / KERAS_CACHE_DIRS[name]


def load_dataset(name="fashion_mnist", data_dir=None):
    """Load Fashion-MNIST or MNIST as uint8 ((x_train, y_train), (x_test, y_test)), offline first."""
    check_choice("dataset", name, KERAS_LOADERS)
    directory = find_data_dir(name, data_dir)
    if directory is not None:
        return read_idx_dir(directory)
    loader = getattr(keras.datasets, KERAS_LOADERS[name])
    try:
        return loader.load_data()  # Keras's cache, else its download (removes partial files itself)
    except Exception as err:
        tried = [
            f"${DATA_DIR_ENV}",
            str(DEBIAN_DIRS.get(name, "(no Debian package)")),
            "the Keras cache",
            "the Keras download",
        ]
        raise DataError(
            f"Could not load {name}: tried {', '.join(tried)}; the download failed ({err}). "
            f"Fix: connect to the internet and run again, or put the four IDX files {', '.join(IDX_FILES)} "
            f"in a folder and set {DATA_DIR_ENV} to it"
            + (" (on Debian/Ubuntu: apt-get install dataset-fashion-mnist)." if name in DEBIAN_DIRS else ".")
        ) from err


def prepare_images(images):
    """Flatten images to rows of pixels and scale 0-255 to float32 in [0, 1]."""
    images = np.asarray(images)
    return images.reshape(len(images), -1).astype("float32") / 255.0


# ---------------------------------------------------------------- noise
# The lab's noise, x + NOISE_FACTOR * N(0, 1) clipped to [0, 1], in one place: drawn in numpy
# (add_noise) and in Keras (ClippedGaussianNoise), and the statistics checks/noise.py recognises it by
# (fitted_noise, noise_kind, normal_shape). To change the noise, change all three here; the
# thresholds below were measured for this Gaussian noise, and checks/noise.py's hints (noise_mistake) name it.


def add_noise(images, noise_factor=NOISE_FACTOR, rng=None, draw_dtype="float64", clip=True):
    """Return images + noise_factor * N(0, 1), clipped back to [0, 1]; rng is a seed or Generator.

    draw_dtype="float32" draws the noise about three times faster (a different random stream);
    clip=False leaves the values out of [0, 1] (the checks use it to mimic a student's missing np.clip).
    """
    images = np.asarray(images)
    if not np.issubdtype(images.dtype, np.floating):
        raise WrongTypeError(
            f"add_noise needs float images in [0, 1], got {images.dtype}: scale to [0, 1] first (images / 255)."
        )
    if np.isnan(images).any():
        raise ValueError("add_noise got NaN pixels: fix or drop those images first.")
    if images.size and (images.min() < 0 or images.max() > 1):
        raise ValueError(
            f"add_noise needs images in [0, 1], got [{images.min():g}, {images.max():g}]: scale to [0, 1] first."
        )
    noise_factor = check_noise_factor(noise_factor)
    noise = np.random.default_rng(rng).standard_normal(images.shape, dtype=draw_dtype)
    noisy = images + noise.dtype.type(noise_factor) * noise
    return (np.clip(noisy, 0.0, 1.0) if clip else noisy).astype("float32")


@keras.saving.register_keras_serializable(package="helpers")
class ClippedGaussianNoise(keras.layers.Layer):
    """Add noise_factor * N(0, 1) and clip to [0, 1] in training only, drawing fresh noise for every batch."""

    def __init__(self, noise_factor=NOISE_FACTOR, seed=None, **kwargs):
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


def noisy_mean(clean, factor=NOISE_FACTOR):
    """E[clip(c + factor * N(0, 1), 0, 1)] for each clean pixel value c."""
    a, b = -clean / factor, (1 - clean) / factor
    pdf = lambda t: np.exp(-t * t / 2) / np.sqrt(2 * np.pi)  # noqa: E731
    return clean * (ndtr(b) - ndtr(a)) + factor * (pdf(a) - pdf(b)) + (1 - ndtr(b))


def mean_profile(clean, noisy):
    """Mean noisy pixel for clean pixels in each of 10 value bins (bins with few pixels are NaN)."""
    bins = np.minimum((clean * 10).astype(int), 9)
    counts = np.bincount(bins.ravel(), minlength=10)
    sums = np.bincount(bins.ravel(), weights=noisy.ravel(), minlength=10)
    return np.where(counts >= 2000, sums / np.maximum(counts, 1), np.nan)


def estimate_noise_factor(clean, noisy, draws):
    """The factor f for which clip(clean + f * draws) is as far from clean (mean |difference|) as noisy is."""
    target = np.mean(np.abs(noisy - clean))
    spread = lambda f: np.mean(np.abs(np.clip(clean + f * draws, 0, 1) - clean))  # noqa: E731
    low, high = 0.0, 4.0
    for _ in range(30):  # bisection: the spread grows with f
        mid = (low + high) / 2
        low, high = (mid, high) if spread(mid) < target else (low, mid)
    return (low + high) / 2


def looks_like_noise(clean, noisy, factor):
    """Whether noisy matches clean + factor * N(0, 1), clipped, in its mean pixel for each clean value."""
    difference = mean_profile(clean, noisy) - mean_profile(clean, noisy_mean(clean, factor))
    return bool(np.nanmax(np.abs(difference), initial=0.0) < 0.03)


def fitted_noise(clean, noisy):
    """(noise factor that explains noisy, whether clean + that noise matches noisy's statistics)."""
    factor = estimate_noise_factor(clean, noisy, np.random.default_rng(0).standard_normal(clean.shape))
    return factor, looks_like_noise(clean, noisy, factor)


def noise_kind(clean, noisy):
    """(factor, clipped) of clean + factor * N(0, 1) noise (clipped to [0, 1] or not) that explains noisy, or None."""
    if noisy.min() >= 0 and noisy.max() <= 1:
        factor, matches = fitted_noise(clean, noisy)
        return (factor, True) if matches else None
    difference = noisy - clean
    factor = float(np.std(difference))
    tails = float(np.mean(np.abs(difference) > 2 * factor))  # 4.6 % for a normal distribution
    return (factor, False) if abs(np.mean(difference)) < 0.05 * factor and 0.035 < tails < 0.06 else None


def centred(zeros):
    """Whether about half the noisy values of clean-black pixels are 0: noise of mean 0, half of it clipped away."""
    return bool(abs(np.mean(zeros <= 0) - 0.5) <= 0.03)


def normal_shape(zeros, factor):
    """Whether the noisy values of clean-black pixels spread as clip(factor * N(0, 1)) does: their share in 3 bins."""
    edges = np.minimum([0, factor / 2, factor, 2 * factor], 1)  # below 1, where clipping piles values up
    expected = np.diff(ndtr(edges / factor))
    shares = np.array([np.mean((zeros > lo) & (zeros < hi)) for lo, hi in zip(edges[:-1], edges[1:])])
    return bool(np.max(np.abs(shares - expected)) < 0.02)


# ---------------------------------------------------------------- models


def build_autoencoder(input_dim=INPUT_DIM, code_size=CODE_SIZE, name="autoencoder"):
    """Build input_dim -> code_size (relu) -> input_dim (sigmoid); return (autoencoder, encoder)."""
    check_positive_int("input_dim", input_dim)
    check_positive_int("code_size", code_size)
    inputs = keras.Input(shape=(input_dim,), name="inputs")
    code = keras.layers.Dense(code_size, activation="relu", name="code")(inputs)
    outputs = keras.layers.Dense(input_dim, activation="sigmoid", name="reconstruction")(code)
    return keras.Model(inputs, outputs, name=name), keras.Model(inputs, code, name=f"{name}_encoder")


# Fastest compile settings per Keras backend (benchmarks/bench_speed.py measures them; docs/benchmarks.md).
# steps_per_execution runs that many training steps per Python call; jit_compile asks for XLA
# (TensorFlow, JAX) or torch.compile (PyTorch), which Keras leaves off on a CPU unless asked.
COMPILE_OPTIONS = {
    "tensorflow": {"steps_per_execution": 32, "jit_compile": True},
    "jax": {
        "steps_per_execution": 1,
        "jit_compile": True,
    },  # jit already fuses a step; 32 per call compiled longer, ran no faster
    "torch": {"steps_per_execution": 1, "jit_compile": False},  # Keras allows only 1 step per call on PyTorch
}


def compile_options(backend=None, draws_noise=False):
    """Return the fastest model.compile settings (steps_per_execution, jit_compile) for backend, the current one by
    default; draws_noise: for a model that draws random numbers as it trains (a ClippedGaussianNoise layer)."""
    backend = backend or keras.backend.backend()
    options = dict(COMPILE_OPTIONS.get(backend, {}))  # another backend: Keras's defaults
    if draws_noise and backend == "tensorflow":  # XLA draws random numbers on a CPU about 3x slower than TensorFlow
        options["jit_compile"] = False
    return options


def compile_autoencoder(model, optimizer="adam", loss="binary_crossentropy", **options):
    """Compile with adam and binary cross-entropy (or optimizer, loss) and the backend's fastest settings (options override them)."""
    draws_noise = any(isinstance(layer, ClippedGaussianNoise) for layer in model.layers)
    model.compile(optimizer=optimizer, loss=loss, **{**compile_options(draws_noise=draws_noise), **options})
    return model


def train_autoencoder(
    model, inputs, targets, validation_data=None, epochs=30, batch_size=128, verbose=2, callbacks=None
):
    """Fit inputs -> targets with shuffling, validating each epoch if validation_data is given; return the History."""
    for data in (inputs, targets, *(validation_data or ())):
        check_input_size(model, data)
    return model.fit(
        inputs,
        targets,
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        validation_data=validation_data,
        verbose=verbose,
        callbacks=callbacks,
    )


def mean_bce(targets, predictions):
    """Mean binary cross-entropy of predicted against target pixels, as Keras computes it (predictions clipped to [1e-7, 1 - 1e-7]).

    In numpy, in the predictions' precision: float32 gives Keras's own number, float64 (as the checks pass) a more exact one.
    """
    epsilon = keras.config.epsilon()
    targets, p = np.asarray(targets), np.clip(np.asarray(predictions), epsilon, 1 - epsilon)
    return float(np.mean(-(targets * np.log(p) + (1 - targets) * np.log(1 - p)), dtype="float64"))


# ---------------------------------------------------------------- plotting


IMAGE_INCHES = 1.0  # the width of each image plot_rows draws, however long its row titles are
ROW_TITLE_INCHES = 0.3  # the strip above each image row that holds the row's title
GAP_INCHES = 0.06  # space between neighbouring images


def hide_figure_text():
    """In Jupyter, show figures as images with alt text (describe_figure), without a '<Figure size ...>' text line.

    Each figure is stored as a PNG (alt text in its metadata) and as an HTML <img> with the same alt text,
    which is what HTML exports (`jupyter nbconvert --to html`) show.
    """
    from IPython import get_ipython

    shell = get_ipython()
    if shell is not None:
        shell.run_line_magic("matplotlib", "inline")  # set up the backend first: it resets figure formatters
        formatters = shell.display_formatter.formatters
        png = formatters["image/png"].lookup_by_type(plt.Figure)
        formatters["text/plain"].for_type(plt.Figure, lambda fig, printer, cycle: None)
        formatters["image/png"].for_type(plt.Figure, lambda fig: (png(fig), {"alt": describe_figure(fig)}))
        formatters["text/html"].for_type(plt.Figure, lambda fig: figure_html(png(fig), describe_figure(fig)))


def figure_html(png, alt):
    """An HTML <img> showing base64 PNG data (str or bytes) with alt text."""
    import html

    data = png.decode("ascii") if isinstance(png, bytes) else png
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt, quote=True)}"/>'


def describe_figure(fig):
    """One line of alt text for a Figure: its image rows and their titles, or each plot's title, axes and legend."""
    image_axes = [ax for ax in fig.axes if ax.images and ax.get_label() != "<colorbar>"]
    plots = [
        ax
        for ax in fig.axes
        if not ax.images and ax.get_label() != "<colorbar>" and (ax.lines or ax.patches or ax.collections)
    ]
    parts = []
    if len(image_axes) > 1:
        rows = {}
        for ax in image_axes:
            spec = ax.get_subplotspec()
            rows.setdefault(spec.rowspan.start if spec is not None else round(ax.get_position().y0, 3), []).append(ax)
        titles = [
            next((t for ax in row for t in (ax.get_title(loc="left"), ax.get_title(), ax.get_ylabel()) if t), "")
            for row in rows.values()
        ]
        parts.append(
            f"{len(rows)} row(s) of {max(map(len, rows.values()))} images"
            + (f": {'; '.join(t for t in titles if t)}" if any(titles) else "")
        )
    elif image_axes:
        plots.insert(0, image_axes[0])
    for ax in plots:
        title = ax.get_title() or ax.get_title(loc="left")
        kind = "heat map" if ax.images else "histogram" if ax.patches and not ax.lines else "plot"
        text = f"{kind}{f' {title!r}' if title else ''} of {ax.get_ylabel() or 'values'} against {ax.get_xlabel() or 'index'}"
        legend = ax.get_legend()
        labels = [t.get_text() for t in legend.get_texts()] if legend else []
        parts.append(text + (f" ({', '.join(labels)})" if labels else ""))
    return ("Figure: " + "; ".join(parts)) if parts else "Figure"


def as_images(array, n, image_shape=IMAGE_SHAPE):
    """Return the first n images of array reshaped to image_shape, or raise ValueError."""
    array = np.asarray(array)
    size = int(np.prod(image_shape))
    if array.ndim < 2 or int(np.prod(array.shape[1:])) != size:
        raise ValueError(
            f"Expected images of {size} values ({image_shape[0]}x{image_shape[1]}), got an array of shape {array.shape}."
        )
    if len(array) < n:
        raise ValueError(
            f"Asked for {n} images but the array holds only {len(array)}: pass n={len(array)} or more images."
        )
    return array[:n].reshape(n, *image_shape)


def image_grid(n_rows, n_cols, image_shape=IMAGE_SHAPE):
    """A Figure sized to hold n_rows x n_cols images IMAGE_INCHES wide, each row under a title strip; return (fig, axes).

    The layout is fixed in inches (no tight_layout), so long titles never shrink the images.
    """
    width, height = IMAGE_INCHES, IMAGE_INCHES * image_shape[0] / image_shape[1]
    fig_width = n_cols * width + (n_cols - 1) * GAP_INCHES + 2 * GAP_INCHES
    fig_height = n_rows * (ROW_TITLE_INCHES + height) + GAP_INCHES
    fig = plt.figure(figsize=(fig_width, fig_height), layout="none")
    grid = fig.add_gridspec(
        n_rows,
        n_cols,
        left=GAP_INCHES / fig_width,
        right=1 - GAP_INCHES / fig_width,
        bottom=GAP_INCHES / fig_height,
        top=1 - ROW_TITLE_INCHES / fig_height,
        wspace=GAP_INCHES / width,
        hspace=ROW_TITLE_INCHES / height,
    )
    axes = np.array([[fig.add_subplot(grid[r, c]) for c in range(n_cols)] for r in range(n_rows)], dtype=object)
    return fig, axes


def plot_rows(rows, titles, n=10, image_shape=IMAGE_SHAPE, axes=None):
    """Show the first n images of each array in rows, one titled row per array; return the Figure.

    Each image is IMAGE_INCHES wide whatever the titles say; pass axes (len(rows) x n) to draw into your own figure.
    """
    if len(rows) != len(titles):
        raise ValueError(f"Got {len(rows)} rows but {len(titles)} titles: give one title per row.")
    grids = [as_images(row, n, image_shape) for row in rows]
    if axes is None:
        fig, axes = image_grid(len(grids), n, image_shape)
    else:
        axes = np.asarray(axes, dtype=object)
        if axes.size != len(grids) * n:
            raise ValueError(f"Got {axes.size} axes for {len(grids)} rows of {n} images: pass {len(grids) * n}.")
        axes = axes.reshape(len(grids), n)
        fig = axes[0, 0].figure
    for row_axes, images, title in zip(axes, grids, titles):
        for ax, image in zip(row_axes, images):
            ax.imshow(image, cmap="gray", vmin=0, vmax=1)
            ax.axis("off")
        row_axes[0].set_title(title, loc="left", fontsize=10)
    return fig


def figure_and_axes(ax=None, figsize=(6, 3.5)):
    """Return (ax's Figure, ax), or a new Figure of figsize inches (constrained layout) and its one axes."""
    if ax is not None:
        return ax.figure, ax
    return plt.subplots(figsize=figsize, layout="constrained")


def plot_curves(curves, ylabel="loss", title=None, ax=None):
    """Plot several per-epoch curves ({label: values}) on one axes (ax if given); return the Figure."""
    if not curves:
        raise ValueError("plot_curves needs at least one curve: pass {label: values}.")
    fig, ax = figure_and_axes(ax)
    for label, values in curves.items():
        ax.plot(np.arange(1, len(values) + 1), values, label=label)
    ax.set(xlabel="epoch", ylabel=ylabel, title=title)
    ax.legend()
    return fig


def plot_history(history, title="Denoising autoencoder", ax=None):
    """Plot training and validation loss per epoch from a Keras History (into ax if given); return the Figure."""
    losses = history.history
    curves = {"training loss": losses["loss"]}
    if "val_loss" in losses:
        curves["validation loss"] = losses["val_loss"]
    return plot_curves(curves, ylabel="binary cross-entropy", title=title, ax=ax)
