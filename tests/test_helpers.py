"""Noise, models, training and plotting helpers."""

import matplotlib

matplotlib.use("Agg")

import helpers

import keras
import numpy as np
import pytest


@pytest.fixture
def images():
    return np.random.default_rng(1).uniform(0, 1, (2000, 784)).astype("float32")


# ---------------------------------------------------------------- noise


def test_noise_has_the_asked_statistics_where_clipping_cannot_bite():
    clean = np.full((200, 784), 0.5, dtype="float32")
    noise = helpers.add_noise(clean, 0.1, rng=0) - clean  # 0.5 +- 5 sigma stays inside [0, 1]
    assert abs(noise.mean()) < 0.002
    assert noise.std() == pytest.approx(0.1, rel=0.02)


def test_noise_is_clipped_to_the_unit_range(images):
    noisy = helpers.add_noise(images, 0.5, rng=0)
    assert noisy.dtype == np.float32 and noisy.shape == images.shape
    assert noisy.min() == 0.0 and noisy.max() == 1.0  # heavy noise reaches both bounds


def test_noise_is_reproducible_from_a_seed_or_generator(images):
    np.testing.assert_array_equal(helpers.add_noise(images, rng=7), helpers.add_noise(images, rng=7))
    assert not np.array_equal(helpers.add_noise(images, rng=7), helpers.add_noise(images, rng=8))
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    np.testing.assert_array_equal(helpers.add_noise(images, rng=a), helpers.add_noise(images, rng=b))


@pytest.mark.parametrize("draw_dtype", ["float64", "float32"])
def test_noise_drawn_in_either_precision_has_the_asked_statistics(draw_dtype):
    clean = np.full((200, 784), 0.5, dtype="float32")
    noisy = helpers.add_noise(clean, 0.1, rng=0, draw_dtype=draw_dtype)
    assert noisy.dtype == np.float32
    assert noisy.mean() == pytest.approx(0.5, abs=0.002) and (noisy - clean).std() == pytest.approx(0.1, rel=0.02)


def test_float32_noise_is_a_different_stream(images):
    assert not np.array_equal(helpers.add_noise(images, rng=7), helpers.add_noise(images, rng=7, draw_dtype="float32"))


def test_zero_noise_returns_the_images(images):
    np.testing.assert_array_equal(helpers.add_noise(images, 0.0, rng=0), images)


@pytest.mark.parametrize(
    "data, factor, error, message",
    [
        (np.full((2, 784), 200, np.uint8), 0.5, TypeError, "scale to \\[0, 1\\] first"),
        (np.full((2, 784), 200.0), 0.5, ValueError, "scale to \\[0, 1\\] first"),
        (np.full((2, 784), np.nan), 0.5, ValueError, "NaN"),
        (np.zeros((2, 784)), -0.1, ValueError, "0 or more"),
        (np.zeros((2, 784)), "0.5", TypeError, "must be a number"),
        (np.zeros((2, 784)), None, TypeError, "must be a number"),
        (np.zeros((2, 784)), float("nan"), ValueError, "0 or more"),
    ],
)
def test_add_noise_rejects_bad_input(data, factor, error, message):
    with pytest.raises(error, match=message):
        helpers.add_noise(data, factor, rng=0)


def test_fresh_noise_layer_is_clipped_training_noise_and_identity_otherwise():
    layer = helpers.ClippedGaussianNoise(0.5, seed=1)
    x = np.full((2000, 50), 0.5, "float32")
    noisy = keras.ops.convert_to_numpy(layer(x, training=True))
    assert noisy.min() >= 0 and noisy.max() <= 1
    reference = helpers.add_noise(x, 0.5, np.random.default_rng(0))  # the same noise, drawn by numpy
    assert abs(noisy.mean() - reference.mean()) < 0.01 and abs(noisy.std() - reference.std()) < 0.01  # ~0.5, ~0.359
    again = keras.ops.convert_to_numpy(layer(x, training=True))
    assert not np.array_equal(noisy, again)  # a new draw every call
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)


@pytest.mark.parametrize("factor", [-0.1, "0.5", None, float("nan")])
def test_fresh_noise_refuses_bad_factors(factor):
    with pytest.raises(ValueError, match="noise factor must be a number, 0 or more"):
        helpers.ClippedGaussianNoise(factor)


@pytest.mark.parametrize(
    "call",
    [
        lambda: helpers.add_noise(np.zeros((2, 784)), "0.5"),
        lambda: helpers.ClippedGaussianNoise("0.5"),
        lambda: helpers.check_noise_factor("0.5"),
        lambda: helpers.build_autoencoder(code_size="32"),
    ],
)
def test_a_value_of_the_wrong_type_raises_the_same_error_everywhere(call):
    with pytest.raises(helpers.WrongTypeError) as caught:
        call()
    assert isinstance(caught.value, TypeError) and isinstance(caught.value, ValueError)


def test_the_statistics_recognise_the_lab_noise_and_its_factor(images):
    clean = images[:300].astype("float64")
    noisy = helpers.add_noise(clean, helpers.NOISE_FACTOR, rng=3).astype("float64")
    factor, matches = helpers.fitted_noise(clean, noisy)
    assert matches and factor == pytest.approx(helpers.NOISE_FACTOR, abs=0.03)
    assert helpers.noise_kind(clean, noisy)[1] is True
    unclipped = helpers.add_noise(clean, helpers.NOISE_FACTOR, rng=3, clip=False).astype("float64")
    assert helpers.noise_kind(clean, unclipped) == (pytest.approx(helpers.NOISE_FACTOR, abs=0.03), False)
    assert (
        helpers.fitted_noise(clean, np.clip(clean + 0.5 * np.random.default_rng(3).random(clean.shape), 0, 1))[1]
        is False
    )


# ---------------------------------------------------------------- models


def test_autoencoder_has_the_lab_architecture():
    model, encoder = helpers.build_autoencoder()
    assert model.count_params() == 50_992
    assert model.input_shape == (None, 784) and model.output_shape == (None, 784)
    assert model.layers[0].name == "inputs"
    code, out = model.layers[1], model.layers[2]
    assert (code.units, code.activation.__name__) == (32, "relu")
    assert (out.units, out.activation.__name__) == (784, "sigmoid")
    assert encoder.output_shape == (None, 32)
    assert encoder.layers[1] is code  # the encoder shares the autoencoder's weights


def test_encoder_gives_a_code_per_image(images):
    _, encoder = helpers.build_autoencoder(code_size=16)
    assert encoder.predict(images[:5], verbose=0).shape == (5, 16)


@pytest.mark.parametrize("size", [0, -3, 2.5, "32", None, True])
def test_builder_rejects_bad_code_sizes(size):
    with pytest.raises(ValueError, match="code_size must be a positive integer"):
        helpers.build_autoencoder(code_size=size)


def test_compile_uses_adam_and_binary_cross_entropy():
    model, _ = helpers.build_autoencoder()
    helpers.compile_autoencoder(model)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert model.loss == "binary_crossentropy"


def test_compile_uses_the_current_backends_fastest_settings():
    model, _ = helpers.build_autoencoder()
    helpers.compile_autoencoder(model)
    assert model.steps_per_execution == helpers.compile_options()["steps_per_execution"]
    helpers.compile_autoencoder(model, steps_per_execution=1)
    assert model.steps_per_execution == 1


def test_compile_options_cover_every_backend_and_torch_runs_one_step_per_call():
    assert set(helpers.COMPILE_OPTIONS) == {"tensorflow", "jax", "torch"}
    assert helpers.compile_options("torch")["steps_per_execution"] == 1  # Keras refuses more on PyTorch
    assert helpers.compile_options("tensorflow") == {"steps_per_execution": 32, "jit_compile": True}
    assert helpers.compile_options("numpy") == {}  # another backend keeps Keras's defaults
    helpers.compile_options("jax")["jit_compile"] = False
    assert helpers.compile_options("jax")["jit_compile"]  # a copy: callers cannot change the table


def test_a_model_that_draws_noise_as_it_trains_is_compiled_without_xla_on_tensorflow():
    assert helpers.compile_options("tensorflow", draws_noise=True) == {"steps_per_execution": 32, "jit_compile": False}
    assert helpers.compile_options("jax", draws_noise=True) == helpers.compile_options("jax")  # jit is JAX's way
    plain, _ = helpers.build_autoencoder()
    inputs = keras.Input(shape=(helpers.INPUT_DIM,))
    noisy = keras.Model(inputs, plain(helpers.ClippedGaussianNoise(0.5, seed=0)(inputs)))
    for model, draws in ((plain, False), (noisy, True)):
        helpers.compile_autoencoder(model)
        assert model.jit_compile == helpers.compile_options(draws_noise=draws)["jit_compile"]


def test_training_is_reproducible_and_lowers_the_loss(images):
    def train():
        keras.utils.set_random_seed(0)
        model, _ = helpers.build_autoencoder(code_size=8)
        helpers.compile_autoencoder(model)
        noisy = helpers.add_noise(images, 0.3, rng=0)
        return helpers.train_autoencoder(model, noisy, images, (noisy[:200], images[:200]), epochs=2, verbose=0)

    first, second = train(), train()
    assert first.history == second.history
    assert first.history["loss"][1] < first.history["loss"][0]
    assert first.params["epochs"] == 2


def test_training_rejects_data_of_the_wrong_size(images):
    model, _ = helpers.build_autoencoder()
    helpers.compile_autoencoder(model)
    square = images[:10].reshape(10, 28, 28)
    with pytest.raises(ValueError, match="takes rows of 784 values.*prepare_images"):
        helpers.train_autoencoder(model, square, images[:10], (images[:10], images[:10]), epochs=1)


def test_mean_bce_matches_keras_loss(images):
    noisy = helpers.add_noise(images, 0.2, rng=0)
    expected = keras.losses.BinaryCrossentropy()(images, noisy)
    assert helpers.mean_bce(images, noisy) == pytest.approx(float(expected), rel=1e-5)


# ---------------------------------------------------------------- plotting


def test_plot_rows_draws_titled_rows_with_a_fixed_grey_range(images):
    fig = helpers.plot_rows([images, images[::-1]], ["noisy", "denoised"], n=4)
    assert len(fig.axes) == 8
    assert [fig.axes[0].get_title(loc="left"), fig.axes[4].get_title(loc="left")] == ["noisy", "denoised"]
    shown = fig.axes[1].images[0]
    assert shown.get_clim() == (0, 1) and shown.get_cmap().name == "gray"
    np.testing.assert_array_equal(shown.get_array(), images[1].reshape(28, 28))


def test_plot_rows_takes_square_images_too(images):
    fig = helpers.plot_rows([images.reshape(-1, 28, 28)], ["clean"], n=3)
    assert len(fig.axes) == 3


@pytest.mark.parametrize(
    "rows, titles, n, message",
    [
        ([np.zeros((5, 784))], ["a"], 10, "only 5"),
        ([np.zeros((10, 100))], ["a"], 10, "784 values"),
        ([np.zeros((10, 32, 32))], ["a"], 10, "784 values"),
        ([np.zeros(784)], ["a"], 1, "784 values"),
        ([np.zeros((10, 784))], ["a", "b"], 10, "one title per row"),
    ],
)
def test_plot_rows_rejects_bad_input(rows, titles, n, message):
    with pytest.raises(ValueError, match=message):
        helpers.plot_rows(rows, titles, n=n)


def test_lab_constants_agree_with_the_model():
    model, _ = helpers.build_autoencoder()
    assert model.count_params() == helpers.PARAMS == 50_992
    assert helpers.INPUT_DIM == 784 == np.prod(helpers.IMAGE_SHAPE) and helpers.CODE_SIZE == 32


def test_plot_history_draws_both_losses():
    history = keras.callbacks.History()
    history.history = {"loss": [0.4, 0.3, 0.29], "val_loss": [0.35, 0.31, 0.3]}
    fig = helpers.plot_history(history, title="DAE")
    (ax,) = fig.axes
    assert ax.get_title() == "DAE"
    assert [line.get_label() for line in ax.lines] == ["training loss", "validation loss"]
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), [0.35, 0.31, 0.3])


@pytest.mark.parametrize("image_shape", [(28, 28), (25, 25)])
def test_plot_rows_images_keep_their_size_whatever_the_titles(images, image_shape):
    """Long row titles used to make tight_layout shrink every image to a few pixels."""
    rows = [images[:, : image_shape[0] * image_shape[1]]] * 2
    sizes = []
    for titles in (
        ["a", "b"],
        ["original", "reconstructed by the regular autoencoder, a much longer title than usual"],
    ):
        fig = helpers.plot_rows(rows, titles, image_shape=image_shape)
        fig.canvas.draw()
        sizes.append({tuple(np.round(ax.get_window_extent().size, 3)) for ax in fig.axes})
    assert sizes[0] == sizes[1] and len(sizes[0]) == 1
    ((width, _),) = sizes[0]
    assert width == pytest.approx(helpers.IMAGE_INCHES * fig.dpi)


def test_plot_rows_and_plot_history_draw_into_given_axes(images):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3)
    assert helpers.plot_rows([images, images], ["a", "b"], n=3, axes=axes) is fig
    assert all(ax.images for ax in axes.ravel())
    history = keras.callbacks.History()
    history.history = {"loss": [0.4, 0.3], "val_loss": [0.35, 0.31]}
    fig, ax = plt.subplots()
    assert helpers.plot_history(history, ax=ax) is fig and len(ax.lines) == 2


def test_describe_figure_gives_alt_text_from_titles_and_labels(images):
    fig = helpers.plot_rows([images, images], ["noisy", "denoised"], n=4)
    assert helpers.describe_figure(fig) == "Figure: 2 row(s) of 4 images: noisy; denoised"
    history = keras.callbacks.History()
    history.history = {"loss": [0.4, 0.3], "val_loss": [0.35, 0.31]}
    text = helpers.describe_figure(helpers.plot_history(history, title="DAE"))
    assert text == "Figure: plot 'DAE' of binary cross-entropy against epoch (training loss, validation loss)"
    assert 'alt="a &quot;b&quot;"' in helpers.figure_html(b"iVBOR", 'a "b"')


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's own warning")
def test_tensorflow_retracing_notice_is_not_shown(monkeypatch):
    import logging

    logger, seen = logging.getLogger("tensorflow"), []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    logger.addHandler(handler)
    try:
        for shown in (True, False):  # without the lab's filter first: the notice is printed, then not
            if shown:
                monkeypatch.setattr(
                    logger, "filters", [f for f in logger.filters if f != helpers.without_retracing_notice]
                )
            else:
                monkeypatch.undo()
            model, _ = helpers.build_autoencoder()
            helpers.compile_autoencoder(model, jit_compile=False)  # the same notice, without XLA's compile time
            for rows in range(100, 300, 37):  # a new number of rows, a new trace: the checks predict several sizes
                model.predict(np.zeros((rows, 784), "float32"), verbose=0)
            assert any("retracing" in message for message in seen) == shown
            seen.clear()
    finally:
        logger.removeHandler(handler)
