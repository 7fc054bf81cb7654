"""Data, noise, model and plotting helpers for the denoising-autoencoder lab.

Nothing here runs on import. Randomness comes only from the seed or numpy
Generator you pass in. Only `keras` APIs are used, so any Keras 3 backend works.
"""

import contextlib
import gzip
import importlib.util
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
def quiet_native_logs():
    """Hold back what native libraries print to stderr inside the block, re-printing all but known start-up chatter."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # read by TensorFlow at import
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no file descriptor 2 to redirect: nothing to hold back
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [
                line
                for line in held.read().decode("utf-8", "replace").splitlines(keepends=True)
                if not STARTUP_CHATTER.match(line)
            ]
            if kept:
                sys.stderr.write("".join(kept))


# PyTorch's CPU kernels wait for their OpenMP threads by spinning: for this lab's small layers one
# thread is faster, several times so on a busy machine (README "Backends"). Read when torch loads.
if os.environ.get("KERAS_BACKEND") == "torch":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
with quiet_native_logs():  # the backend prints its start-up lines when Keras first imports it
    import keras

    if keras.backend.backend() != "tensorflow" and importlib.util.find_spec("tensorflow"):
        importlib.import_module("tensorflow")  # keras.utils.set_random_seed loads it on any backend: its lines too
import matplotlib.pyplot as plt  # noqa: E402  (after Keras: see quiet_native_logs)
import numpy as np  # noqa: E402

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
    if name not in KERAS_LOADERS:
        raise ValueError(f"Unknown dataset {name!r}: use one of {sorted(KERAS_LOADERS)}.")
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


def add_noise(images, noise_factor=0.5, rng=None, draw_dtype="float64"):
    """Return images + noise_factor * N(0, 1), clipped back to [0, 1]; rng is a seed or Generator.

    draw_dtype="float32" draws the noise about three times faster (a different random stream).
    """
    images = np.asarray(images)
    if not np.issubdtype(images.dtype, np.floating):
        raise TypeError(
            f"add_noise needs float images in [0, 1], got {images.dtype}: scale to [0, 1] first (images / 255)."
        )
    if np.isnan(images).any():
        raise ValueError("add_noise got NaN pixels: fix or drop those images first.")
    if images.size and (images.min() < 0 or images.max() > 1):
        raise ValueError(
            f"add_noise needs images in [0, 1], got [{images.min():g}, {images.max():g}]: scale to [0, 1] first."
        )
    if isinstance(noise_factor, bool) or not isinstance(noise_factor, (int, float, np.number)):
        raise TypeError(f"noise_factor must be a number such as 0.5, got {noise_factor!r}.")
    if not noise_factor >= 0:
        raise ValueError(f"noise_factor must be 0 or more, got {noise_factor}.")
    noise = np.random.default_rng(rng).standard_normal(images.shape, dtype=draw_dtype)
    return np.clip(images + noise.dtype.type(noise_factor) * noise, 0.0, 1.0).astype("float32")


# ---------------------------------------------------------------- models


def build_autoencoder(input_dim=784, code_size=32, name="autoencoder"):
    """Build input_dim -> code_size (relu) -> input_dim (sigmoid); return (autoencoder, encoder)."""
    for label, value in (("input_dim", input_dim), ("code_size", code_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise ValueError(f"{label} must be a positive integer, got {value!r}.")
    inputs = keras.Input(shape=(input_dim,), name="inputs")
    code = keras.layers.Dense(code_size, activation="relu", name="code")(inputs)
    outputs = keras.layers.Dense(input_dim, activation="sigmoid", name="reconstruction")(code)
    return keras.Model(inputs, outputs, name=name), keras.Model(inputs, code, name=f"{name}_encoder")


# Fastest compile settings per Keras backend (benchmarks/bench_speed.py measures them; README "Backends").
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


def compile_options(backend=None):
    """Return the fastest model.compile settings (steps_per_execution, jit_compile) for backend, the current one by default."""
    backend = backend or keras.backend.backend()
    return dict(COMPILE_OPTIONS.get(backend, {}))  # another backend: Keras's defaults


def compile_autoencoder(model, optimizer="adam", loss="binary_crossentropy", **options):
    """Compile with adam and binary cross-entropy (or optimizer, loss) and the backend's fastest settings (options override them)."""
    model.compile(optimizer=optimizer, loss=loss, **{**compile_options(), **options})
    return model


def check_input_size(model, data):
    """Raise ValueError if data's rows don't match the model's input size."""
    expected = model.input_shape[-1]
    got = np.shape(data)[-1] if np.ndim(data) else None
    if got != expected:
        raise ValueError(
            f"{model.name} takes rows of {expected} values, data has shape {np.shape(data)}: "
            "flatten images with prepare_images first, or build the model with input_dim matching the data."
        )


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
    """Mean binary cross-entropy between target and predicted pixels, as Keras computes it."""
    return float(keras.ops.mean(keras.losses.binary_crossentropy(targets, predictions)))


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


def as_images(array, n, image_shape=(28, 28)):
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


def image_grid(n_rows, n_cols, image_shape=(28, 28)):
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


def plot_rows(rows, titles, n=10, image_shape=(28, 28), axes=None):
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


def plot_history(history, title="Denoising autoencoder", ax=None):
    """Plot training and validation loss per epoch from a Keras History (into ax if given); return the Figure."""
    losses = history.history
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
    else:
        fig = ax.figure
    epochs = np.arange(1, len(losses["loss"]) + 1)
    ax.plot(epochs, losses["loss"], label="training loss")
    if "val_loss" in losses:
        ax.plot(epochs, losses["val_loss"], label="validation loss")
    ax.set(xlabel="epoch", ylabel="binary cross-entropy", title=title)
    ax.legend()
    return fig
