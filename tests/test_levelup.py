"""Level-up helpers (model shapes, fresh noise, rewinding, image scores, classical denoisers, sweeps, anomalies, plots)
and benchmarks/hybrid.py, built on them for the quality benchmark."""

import math

import helpers

import keras
import matplotlib
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import levelup
from benchmarks import hybrid

matplotlib.use("Agg")


@pytest.fixture
def images():
    """Twelve smooth 28x28 test images in [0, 1] (planes: a 3-dimensional family), as rows."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:28, :28] / 27.0 - 0.5
    stack = [a * xx + b * yy + c for a, b, c in rng.uniform((-0.4, -0.4, 0.45), (0.4, 0.4, 0.55), (12, 3))]
    return np.stack(stack).reshape(12, 784).astype("float32")


# ---------------------------------------------------------------- models


def test_deep_autoencoder_mirrors_its_hidden_layers():
    model, _ = levelup.build_deep_autoencoder(784, hidden=(256, 128, 64))
    units = [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert units == [256, 128, 64, 128, 256, 784]
    assert model.get_layer("reconstruction").activation.__name__ == "sigmoid"
    assert model.count_params() == 2 * (784 * 256 + 256 * 128 + 128 * 64) + 256 + 128 + 64 + 128 + 256 + 784


def test_conv_autoencoder_takes_other_image_sizes():
    model, encoder = levelup.build_denoiser("conv", image_shape=(32, 24), filters=4)
    assert model.output_shape == (None, 32 * 24) and encoder.output_shape == (None, 8, 6, 4)


def test_conv_model_refuses_sizes_it_cannot_halve_twice():
    with pytest.raises(ValueError, match="divisible by 4; got 25x25.*crop or pad"):
        levelup.build_denoiser("conv", image_shape=(25, 25))


@pytest.mark.parametrize("hidden", [(), (64, 0), (64, 2.5), (True,)])
def test_deep_model_refuses_bad_hidden_sizes(hidden):
    with pytest.raises(ValueError, match="hidden must be a non-empty list of positive integers"):
        levelup.build_deep_autoencoder(784, hidden=hidden)


def test_predict_rows_matches_predict_and_checks_the_input_size(images):
    model, _ = levelup.build_denoiser("shallow")
    np.testing.assert_allclose(
        levelup.predict_rows(model, images, batch_size=5), model.predict(images, verbose=0), atol=1e-6
    )
    with pytest.raises(ValueError):
        levelup.predict_rows(model, images[:, :625])


# ---------------------------------------------------------------- fresh noise, timing, rewinding


def test_fresh_noise_wrapper_shares_the_weights():
    model, _ = levelup.build_denoiser("shallow")
    wrapper = levelup.with_fresh_noise(model, 0.5, seed=0)
    assert {id(w) for w in model.weights} == {id(w) for w in wrapper.weights}
    assert isinstance(
        keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(wrapper.layers[1])),
        helpers.ClippedGaussianNoise,
    )


def test_fit_timed_times_every_epoch_and_the_budget_stops_early(images):
    keras.utils.set_random_seed(0)
    model, _ = levelup.build_denoiser("shallow", code_size=4)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    history, seconds = levelup.fit_timed(model, images, images, epochs=3, batch_size=4)
    assert len(seconds) == len(history.history["loss"]) == 3 and all(s > 0 for s in seconds)
    _, seconds = levelup.fit_timed(model, images, images, epochs=50, batch_size=4, budget=1e-6)
    assert len(seconds) == 1
    with pytest.raises(ValueError, match="time budget must be a positive number of seconds"):
        levelup.TimeBudget(0)


def test_fit_timed_refuses_a_fit_past_max_updates_before_training(images):
    keras.utils.set_random_seed(0)
    model, _ = levelup.build_denoiser("shallow", code_size=4)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    levelup.fit_timed(model, images, images, epochs=2, batch_size=4, max_updates=6)  # 2 epochs of 3 updates
    assert int(model.optimizer.iterations) == 6
    weights = [w.copy() for w in model.get_weights()]
    with pytest.raises(
        ValueError,
        match=r"1 epoch of 12 images in batches of 4 are 3 optimizer updates, but 6 of the "
        r"8 allowed were made already: at most 0 more epochs fit",
    ):
        levelup.fit_timed(model, images, images, epochs=1, batch_size=4, max_updates=8)
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights()))  # refused before any update
    with pytest.raises(ValueError, match="max_updates must be a positive integer"):
        levelup.fit_timed(model, images, images, max_updates=0)
    with pytest.raises(ValueError, match="not compiled"):
        levelup.fit_timed(levelup.build_denoiser("shallow", code_size=4)[0], images, images, max_updates=9)


def test_rewind_restores_weights_and_optimizer_state(images):
    keras.utils.set_random_seed(0)
    model, _ = levelup.build_denoiser("shallow", code_size=4)
    helpers.compile_autoencoder(model)
    start = levelup.snapshot(model)
    first = model.fit(images, images, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"]
    levelup.rewind(model, start)
    second = model.fit(images, images, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(first, second, rtol=1e-5)
    other, _ = levelup.build_denoiser("shallow", code_size=8)
    helpers.compile_autoencoder(other)
    with pytest.raises(ValueError, match="snapshot was not taken from"):
        levelup.rewind(other, start)


def test_snapshot_needs_a_compiled_model():
    model, _ = levelup.build_denoiser("shallow")
    with pytest.raises(ValueError, match="is not compiled: compile it"):
        levelup.snapshot(model)


# ---------------------------------------------------------------- image scores


def test_scores_agree_with_scikit_image_on_known_images(images):
    noisy = helpers.add_noise(images, 0.3, np.random.default_rng(1))
    psnr, ssim = levelup.image_scores(images, noisy)
    for k in (0, 5, 11):
        clean, other = images[k].reshape(28, 28).astype("float64"), noisy[k].reshape(28, 28).astype("float64")
        assert psnr[k] == pytest.approx(peak_signal_noise_ratio(clean, other, data_range=1.0))
        assert ssim[k] == pytest.approx(structural_similarity(clean, other, data_range=1.0))
    assert levelup.mean_scores(images, noisy) == pytest.approx((psnr.mean(), ssim.mean()))


def test_psnr_of_a_known_error():
    clean = np.zeros((1, 784))
    psnr, ssim = levelup.image_scores(clean, clean + 0.1)  # MSE 0.01: 20 dB
    assert psnr[0] == pytest.approx(20.0)
    assert levelup.image_scores(clean + 0.5, clean + 0.5)[0][0] == math.inf


@pytest.mark.parametrize(
    "clean, other, message",
    [
        (np.zeros((3, 784)), np.zeros((2, 784)), "clean holds 3 images but images holds 2"),
        (np.zeros((0, 784)), np.zeros((0, 784)), "No images to score"),
        (np.zeros((2, 700)), np.zeros((2, 700)), "Expected images of 784 values"),
    ],
)
def test_scores_refuse_mismatched_or_empty_images(clean, other, message):
    with pytest.raises(ValueError, match=message):
        levelup.image_scores(clean, other)


# ---------------------------------------------------------------- classical denoisers and the quality table


def test_pca_keeps_what_lies_in_its_components(images):
    pca = levelup.fit_pca(images, n_components=3)  # the images are planes: 3 components hold them
    np.testing.assert_allclose(levelup.pca_denoise(images, pca), images, atol=1e-4)
    with pytest.raises(ValueError, match="n_components must be an integer from 1 to 784"):
        levelup.fit_pca(images, n_components=0)
    with pytest.raises(ValueError, match="at least 2 rows"):
        levelup.fit_pca(images[:1])


def test_every_classical_denoiser_improves_a_noisy_smooth_image(images):
    noisy = helpers.add_noise(images, 0.3, np.random.default_rng(2))
    results = levelup.classical_denoise(noisy, np.tile(images, (3, 1)))  # PCA-32 needs 32 rows or more
    assert set(results) == set(levelup.CLASSICAL_PARAMS)
    noisy_psnr = levelup.mean_scores(images, noisy)[0]
    for name, (denoised, seconds) in results.items():
        assert denoised.shape == images.shape and seconds >= 0
        assert levelup.mean_scores(images, denoised)[0] > noisy_psnr, name


def test_unknown_per_image_denoiser_is_named(images):
    with pytest.raises(ValueError, match="Unknown per-image denoiser 'wiener'"):
        levelup.denoise_each(images, "wiener")


def test_quality_rows_table_and_failures(images):
    noisy = helpers.add_noise(images, 0.3, np.random.default_rng(3))
    identity = keras.Sequential([keras.Input((784,)), keras.layers.Identity()])
    rows = levelup.quality_rows(
        images, noisy, images, {"copy": (identity, 1.5)}, classical_params={"Gaussian filter": {"sigma": 1.0}}
    )
    assert [(r["method"], r["kind"]) for r in rows] == [
        ("noisy input", "none"),
        ("Gaussian filter", "classical"),
        ("copy", "autoencoder"),
    ]
    assert rows[2]["psnr"] == pytest.approx(rows[0]["psnr"])  # an identity model is as bad as its input
    table = levelup.format_table(rows).splitlines()
    assert table[2].startswith("| Gaussian filter |") and len(table) == 5  # best PSNR first
    failures = levelup.quality_failures(rows, baseline="noisy input", challengers=["copy"])
    assert len(failures) == 2 and "copy" in failures[0] and "Gaussian filter" in failures[1]
    with pytest.raises(ValueError, match=r"No rows named \['deep'\]"):
        levelup.quality_failures(rows, baseline="copy", challengers=["deep"])
    with pytest.raises(ValueError, match="clean holds 12 images but noisy holds 11"):
        levelup.quality_rows(images, noisy[:11], images, {})


# ---------------------------------------------------------------- sweep


def test_sweep_trains_every_setting_and_keeps_its_books(images):
    x_train = np.tile(images, (20, 1))
    sweep = levelup.run_sweep(x_train, images, code_sizes=(4, 8), noise_factors=(0.3, 0.7), epochs=1, n_examples=3)
    assert sweep["code_sizes"] == (4, 8) and sweep["noise_factors"] == (0.3, 0.7) and sweep["epochs"] == 1
    for key in ("psnr", "ssim", "seconds"):
        assert sweep[key].shape == (2, 2) and np.all(np.isfinite(sweep[key]))
    assert sorted(sweep["denoised"]) == [(4, 0.3), (4, 0.7), (8, 0.3), (8, 0.7)]
    assert all(v.shape == (3, 784) for v in sweep["denoised"].values())
    assert np.all(sweep["seconds"] > 0) and np.all((0 < sweep["ssim"]) & (sweep["ssim"] <= 1))
    assert len(levelup.plot_sweep(sweep).axes) == 2  # the map and its colour bar
    assert len(levelup.plot_sweep_examples(sweep).axes) == 3 * 3 * 2


@pytest.mark.parametrize(
    "options, message",
    [
        ({"code_sizes": ()}, "code_sizes must be a non-empty list"),
        ({"noise_factors": ()}, "noise_factors is empty"),
        ({"noise_factors": (0.5, -1)}, "noise factor must be a number, 0 or more"),
        ({"n_examples": 0}, "n_examples must be from 1"),
    ],
)
def test_empty_or_bad_sweeps_are_refused(images, options, message):
    with pytest.raises(ValueError, match=message):
        levelup.run_sweep(images, images, **options)


def test_plot_sweep_refuses_unknown_metrics():
    with pytest.raises(ValueError, match="metric must be 'psnr' or 'ssim'"):
        levelup.plot_sweep({}, metric="mse")


# ---------------------------------------------------------------- faces and anomaly detection


def test_faces_are_100_faces_and_100_others_in_unit_range():
    faces, others = levelup.load_faces()
    assert faces.shape == others.shape == (100, 625) and faces.dtype == np.float32
    assert 0 <= faces.min() and faces.max() <= 1


def test_reconstruction_errors_are_per_row_squared_errors(images):
    identity = keras.Sequential([keras.Input((784,)), keras.layers.Identity()])
    np.testing.assert_allclose(levelup.reconstruction_errors(identity, images), 0)
    zeros = keras.Sequential([keras.Input((784,)), keras.layers.Lambda(lambda x: x * 0)])
    np.testing.assert_allclose(levelup.reconstruction_errors(zeros, images), np.mean(images**2, axis=1), rtol=1e-6)


def test_threshold_auc_and_rates_on_known_scores():
    normal, anomalies = np.arange(100.0), np.array([50.0, 200.0, 300.0])
    assert levelup.pick_threshold(normal, 0.9) == pytest.approx(89.1)
    assert levelup.roc_auc(normal, anomalies) == pytest.approx((50.5 + 100 + 100) / 300)
    rates = levelup.detection_rates(normal, anomalies, 89.1)
    assert rates == pytest.approx((2 / 3, 0.10))
    assert (rates.anomalies_flagged, rates.normal_flagged) == pytest.approx((2 / 3, 0.10))  # named fields, that order


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: levelup.pick_threshold([], 0.95), "errors of at least one normal sample"),
        (lambda: levelup.pick_threshold([1.0], 1.5), "quantile must be between 0 and 1"),
        (lambda: levelup.roc_auc([1.0], []), "at least one normal and one anomalous"),
        (lambda: levelup.plot_error_histogram([], [1.0], 0.5), "at least one normal and one anomalous"),
    ],
)
def test_anomaly_helpers_refuse_empty_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ---------------------------------------------------------------- plots


def test_plots_return_their_figures_with_titles():
    fig = levelup.plot_error_histogram([0.1, 0.2], [0.5], 0.3, labels=("ok", "odd"))
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["ok", "odd", "threshold"]
    history = keras.callbacks.History()
    history.history = {"loss": [0.4, 0.35, 0.34], "val_loss": [0.41, 0.36, 0.355]}
    fig = levelup.plot_epoch_gains(history)
    assert [ax.get_title() for ax in fig.axes] == ["loss per epoch", "what each epoch gained (log scale)"]
    fig = helpers.plot_curves({"a": [1, 2], "b": [2, 1]}, title="t")
    assert fig.axes[0].get_title() == "t" and len(fig.axes[0].lines) == 2


def test_composite_figures_draw_with_the_plain_helpers_into_given_axes(images):
    import matplotlib.pyplot as plt

    history = keras.callbacks.History()
    history.history = {"loss": [0.4, 0.35, 0.34], "val_loss": [0.41, 0.36, 0.355]}
    fig, axes = plt.subplots(1, 2)
    assert levelup.plot_epoch_gains(history, axes=axes) is fig
    assert [line.get_label() for line in axes[0].lines] == ["training loss", "validation loss"]  # plot_history's
    sweep = {
        "code_sizes": (4,),
        "noise_factors": (0.3, 0.7),
        "noisy": {0.3: images[:2], 0.7: images[2:4]},
        "denoised": {(4, 0.3): images[4:6], (4, 0.7): images[6:8]},
    }
    fig = levelup.plot_sweep_examples(sweep)
    assert helpers.describe_figure(fig) == "Figure: 2 row(s) of 4 images: noise 0.3: noisy; code size 4"
    fig, ax = plt.subplots()
    assert levelup.plot_error_histogram([0.1], [0.5], 0.3, ax=ax) is fig
    assert levelup.plot_sweep({"psnr": [[1.0, 2.0]], "noise_factors": (0.3, 0.7), "code_sizes": (4,)}, ax=ax) is fig


def test_plots_refuse_missing_data():
    history = keras.callbacks.History()
    history.history = {"loss": [0.4]}
    with pytest.raises(ValueError, match="validation loss for 2 epochs or more"):
        levelup.plot_epoch_gains(history)
    with pytest.raises(ValueError, match="at least one curve"):
        helpers.plot_curves({})


# ---------------------------------------------------------------- benchmarks/hybrid.py


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
