"""The hybrid DAE of the benchmark's quality table (docs/benchmarks.md, "Quality table"): the model, its fresh-noise
training with a decaying learning rate, and its MSE + SSIM loss.

The notebook's level-up section 7 describes the hybrid as a last exercise: `from benchmarks import hybrid`
in the lab's folder. Built on levelup.py and helpers.py like the notebook's models (flat rows of pixels in
and out); nothing here runs on import.
"""

import time

import helpers  # first: it imports Keras without the backend's start-up chatter
from helpers import IMAGE_SHAPE, NOISE_FACTOR

import keras
import numpy as np

import levelup

MODEL_KINDS = (*levelup.MODEL_KINDS, "hybrid")


def build_denoiser(kind, image_shape=IMAGE_SHAPE, name=None, **options):
    """levelup.build_denoiser with one more kind, 'hybrid' (build_hybrid_autoencoder); return (autoencoder, encoder)."""
    helpers.check_choice("model kind", kind, MODEL_KINDS)
    if kind == "hybrid":
        return build_hybrid_autoencoder(image_shape, name=name or "hybrid_dae", **options)
    return levelup.build_denoiser(kind, image_shape, name, **options)


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
    image_shape=IMAGE_SHAPE,
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
    height, width = helpers.check_image_shape(image_shape, multiple=patch)
    hidden = helpers.check_positive_ints("hidden", hidden)
    (filters,) = helpers.check_positive_ints("filters", [filters])
    if fine_filters:
        (fine_filters,) = helpers.check_positive_ints("fine_filters", [fine_filters])
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


def compile_with_decay(model, steps, learning_rate=3e-3, loss="binary_crossentropy"):
    """Compile like helpers.compile_autoencoder, with adam's learning rate falling to 0 over steps (cosine decay)."""
    (steps,) = helpers.check_positive_ints("steps", [steps])
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)
    return helpers.compile_autoencoder(model, optimizer=keras.optimizers.Adam(schedule), loss=loss)


def fit_fresh_noise(
    model, clean, epochs=20, noise_factor=NOISE_FACTOR, seed=None, batch_size=128, validation_data=None, budget=None
):
    """Train model to restore clean rows from a new noisy copy of them every epoch; return (losses per epoch, seconds per epoch).

    Fresh noise means the model never sees the same noisy image twice, so it cannot memorise the
    noise and bigger models keep improving. Drawing the noise (in float32) is counted in the seconds.
    With budget (seconds), training stops before an epoch that, as long as the last one, would end after it.
    """
    noise_factor = helpers.check_noise_factor(noise_factor)
    (epochs,) = helpers.check_positive_ints("epochs", [epochs])
    if budget is not None:
        helpers.check_budget(budget)
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


def ssim_rows(clean, images, image_shape=IMAGE_SHAPE):
    """Keras ops: the SSIM of each flat image row against its clean row, as scikit-image's structural_similarity(data_range=1) computes it.

    Written with Keras ops (scikit-image works on numpy arrays, outside the training graph) so that
    a loss can use it. Like scikit-image: means over a uniform 7x7 window, sample (co)variances,
    and only the windows that fit inside the image, which two matrix products give.
    """
    height, width = helpers.check_image_shape(image_shape)
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


def loss_with_ssim(loss="mean_squared_error", ssim_weight=0.05, image_shape=IMAGE_SHAPE):
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
    ssim_weight = helpers.check_non_negative("ssim_weight", ssim_weight, 0.05)
    helpers.check_image_shape(image_shape)

    def pixels_and_ssim(clean, images):
        return base(clean, images) + ssim_weight * (1 - ssim_rows(clean, images, image_shape))

    return pixels_and_ssim
