"""benchmarks/hybrid.py: the hybrid DAE, fresh-noise training with cosine decay, the SSIM loss in Keras ops."""

import helpers

import keras
import numpy as np
import pytest
from skimage.metrics import structural_similarity

import levelup
from benchmarks import hybrid


@pytest.fixture
def images():
    """Twelve smooth 28x28 test images in [0, 1] (planes: a 3-dimensional family), as rows."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:28, :28] / 27.0 - 0.5
    stack = [a * xx + b * yy + c for a, b, c in rng.uniform((-0.4, -0.4, 0.45), (0.4, 0.4, 0.55), (12, 3))]
    return np.stack(stack).reshape(12, 784).astype("float32")


@pytest.mark.parametrize(
    "kind, code_shape", [("shallow", (32,)), ("deep", (64,)), ("conv", (7, 7, 8)), ("hybrid", (256,))]
)
def test_every_kind_maps_flat_rows_to_flat_rows(kind, code_shape):
    options = {"filters": 8} if kind in ("conv", "hybrid") else {}
    model, encoder = hybrid.build_denoiser(kind, **options)
    assert model.input_shape == (None, 784) and model.output_shape == (None, 784)
    assert encoder.output_shape == (None, *code_shape)
    assert model.get_layer("inputs") is not None and model.get_layer("reconstruction") is not None


def test_patches_round_trip_and_hold_blocks():
    rows = np.arange(2 * 8 * 12, dtype="float32").reshape(2, 96)
    inputs = keras.Input(shape=(96,))
    patches = hybrid.to_patches(inputs, (8, 12), 4)
    blocks = keras.Model(inputs, patches)(rows)
    back = keras.Model(inputs, hybrid.from_patches(patches, (8, 12), 4))(rows)
    images = rows.reshape(2, 8, 12)
    assert blocks.shape == (2, 2, 3, 16)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(blocks)[1, 1, 2], images[1, 4:8, 8:12].ravel())
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(back), rows)


def test_hybrid_autoencoder_adds_block_corrections_to_a_dense_guess():
    model, encoder = hybrid.build_hybrid_autoencoder((28, 28), hidden=(64, 32), filters=8, patch=4, fine_filters=4)
    dense = 784 * 64 + 64 + 64 * 32 + 32 + 32 * 784 + 784
    convs = 3 * 3 * 32 * 8 + 8 + 3 * 3 * 8 * 16 + 16  # on 4x4 blocks: 16 + 16 channels in, 16 out
    fine = 3 * 3 * 8 * 4 + 4 + 3 * 3 * 4 * 4 + 4  # on 2x2 blocks: 4 + 4 channels in, 4 out
    assert model.count_params() == dense + convs + fine and encoder.output_shape == (None, 32)
    assert model.get_layer("reconstruction").activation.__name__ == "sigmoid"
    assert model.get_layer("code").activation.__name__ == "silu"  # swish
    coarse = keras.Model(model.input, model.get_layer("coarse_logits").output)
    rows = np.random.default_rng(0).random((3, 784)).astype("float32")

    def coarse_guess():
        return keras.ops.convert_to_numpy(
            keras.ops.sigmoid(coarse.predict(rows, verbose=0))
        )  # a backend tensor otherwise

    assert np.abs(model.predict(rows, verbose=0) - coarse_guess()).max() > 1e-3
    model.get_layer("refine_correction").set_weights([np.zeros((3, 3, 8, 16)), np.zeros(16)])
    model.get_layer("fine_correction").set_weights([np.zeros((3, 3, 4, 4)), np.zeros(4)])
    np.testing.assert_allclose(model.predict(rows, verbose=0), coarse_guess(), atol=1e-6)


def test_hybrid_model_without_fine_stage():
    model, _ = hybrid.build_hybrid_autoencoder((28, 28), hidden=(64,), filters=8, fine_filters=0, activation="relu")
    assert [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)] == [
        "refine",
        "refine_correction",
    ]
    assert model.get_layer("code").activation.__name__ == "relu"


@pytest.mark.parametrize(
    "options, message",
    [
        ({"image_shape": (25, 25)}, "divisible by 4; got 25x25"),
        ({"image_shape": (27, 27), "patch": 3}, "patch must be even, got 3"),
        ({"fine_filters": -2}, "fine_filters must be a non-empty list of positive integers"),
    ],
)
def test_hybrid_model_refuses_sizes_its_patches_do_not_tile(options, message):
    with pytest.raises(ValueError, match=message):
        hybrid.build_denoiser("hybrid", **options)


def test_cosine_decay_brings_the_learning_rate_to_zero(images):
    model, _ = levelup.build_denoiser("shallow", code_size=4)
    hybrid.compile_with_decay(model, steps=6, learning_rate=0.01)
    model.fit(images, images, epochs=2, batch_size=4, verbose=0)  # 3 steps an epoch
    assert float(model.optimizer.learning_rate) == pytest.approx(0.0, abs=1e-9)
    assert model.loss == "binary_crossentropy"
    loss = hybrid.loss_with_ssim()
    assert hybrid.compile_with_decay(model, steps=6, loss=loss).loss is loss
    with pytest.raises(ValueError, match="steps must be a non-empty list of positive integers"):
        hybrid.compile_with_decay(model, steps=0)


def test_fit_fresh_noise_draws_new_noise_every_epoch(images, monkeypatch):
    keras.utils.set_random_seed(0)
    model, _ = levelup.build_denoiser("shallow", code_size=4)
    helpers.compile_autoencoder(model)
    drawn = []
    add_noise = helpers.add_noise
    monkeypatch.setattr(helpers, "add_noise", lambda *args, **kw: drawn.append(add_noise(*args, **kw)) or drawn[-1])
    losses, seconds = hybrid.fit_fresh_noise(
        model, images, epochs=3, seed=1, batch_size=4, validation_data=(images, images)
    )
    assert len(drawn) == len(seconds) == len(losses["loss"]) == len(losses["val_loss"]) == 3
    assert not np.array_equal(drawn[0], drawn[1]) and drawn[0].dtype == np.float32
    assert int(model.optimizer.iterations) == 9  # 12 rows, batch 4, 3 epochs
    _, seconds = hybrid.fit_fresh_noise(model, images, epochs=50, batch_size=4, budget=1e-6)
    assert len(seconds) == 1


@pytest.mark.parametrize(
    "options, message",
    [
        ({"epochs": 0}, "epochs must be a non-empty list of positive integers"),
        ({"noise_factor": -1}, "noise factor must be a number, 0 or more"),
        ({"budget": -5}, "time budget must be a positive number of seconds"),
    ],
)
def test_fit_fresh_noise_refuses_bad_settings(images, options, message):
    model, _ = levelup.build_denoiser("shallow", code_size=4)
    helpers.compile_autoencoder(model)
    with pytest.raises(ValueError, match=message):
        hybrid.fit_fresh_noise(model, images, **options)


def test_unknown_model_kind_names_the_kinds():
    with pytest.raises(ValueError, match="Unknown model kind 'cnn'.*'shallow', 'deep', 'conv', 'hybrid'"):
        hybrid.build_denoiser("cnn")


@pytest.mark.parametrize("shape", [(28, 28), (25, 20)])
def test_keras_ssim_matches_scikit_image(shape):
    rng = np.random.default_rng(3)
    clean = rng.random((4, shape[0] * shape[1])).astype("float32")
    other = helpers.add_noise(clean, 0.4, rng)
    ours = keras.ops.convert_to_numpy(hybrid.ssim_rows(clean, other, shape))
    theirs = [structural_similarity(c.reshape(shape), o.reshape(shape), data_range=1.0) for c, o in zip(clean, other)]
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(hybrid.ssim_rows(clean, clean, shape)), 1.0, atol=1e-6)


@pytest.mark.parametrize("loss, weight", [("binary_crossentropy", 0.5), ("mean_squared_error", 0.05), ("mse", 0)])
def test_loss_with_ssim_adds_the_weighted_ssim_gap(images, loss, weight):
    noisy = helpers.add_noise(images, 0.3, np.random.default_rng(1))
    _, ssim = levelup.image_scores(images, noisy)
    pixels = keras.ops.convert_to_numpy(keras.losses.get(loss)(images, noisy))
    combined = keras.ops.convert_to_numpy(hybrid.loss_with_ssim(loss, weight)(images, noisy))
    np.testing.assert_allclose(combined, pixels + weight * (1 - ssim), rtol=1e-5)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: hybrid.loss_with_ssim(ssim_weight=-1), "ssim_weight must be a number, 0 or more"),
        (lambda: hybrid.loss_with_ssim(ssim_weight="high"), "ssim_weight must be a number, 0 or more"),
        (lambda: hybrid.loss_with_ssim("psnr"), "Unknown loss 'psnr': name a Keras loss"),
        (
            lambda: hybrid.ssim_rows(np.zeros((1, 30)), np.zeros((1, 30)), (5, 6)),
            "7x7 window needs images at least 7 pixels",
        ),
    ],
)
def test_ssim_loss_refuses_bad_settings(call, message):
    with pytest.raises(ValueError, match=message):
        call()
