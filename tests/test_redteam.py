"""Red-team regression tests: attacks on the judge by a student who has read the grader (issue 27's "measure").

Each builds the snapshot a hostile kernel can export (grading/export.py's reader accepts any well-typed data, so the
kernel can hand the judge anything these dicts hold) and calls `checks.judge` directly: no kernel, a few seconds.
Each attack here once worked (the bars measured on Fashion-MNIST judged MNIST; dae_model read the exported parameter
count; a figure of 450,000 image references kept the judge busy for hours) or is a defence worth keeping.
"""

import signal
import time

import helpers

import numpy as np
import pytest

import checks
from checks import FigureInfo, HistoryInfo, ModelInfo

ZERO_WORK_STEPS = 14070  # what a forged export claims: the lab's 30 epochs of 469 batches


@pytest.fixture(scope="module")
def data():
    """A student's data and noise on Fashion-MNIST (a slice: the checks read the first rows)."""
    (train_images, _), (test_images, _) = helpers.load_dataset("fashion_mnist")
    train_images, test_images = train_images[:4096], test_images[:1000]
    x_train, x_test = helpers.prepare_images(train_images), helpers.prepare_images(test_images)
    rng = np.random.default_rng(3)
    return {
        "train_images": train_images,
        "test_images": test_images,
        "x_train": x_train,
        "x_test": x_test,
        "x_train_noisy": helpers.add_noise(x_train, 0.5, rng),
        "x_test_noisy": helpers.add_noise(x_test, 0.5, rng),
        "DATASET": "fashion_mnist",
    }


def forged(ident, kernel1, bias1, kernel2, bias2):
    """A lab-architecture ModelInfo with every training field forged: compiled with adam and BCE, fully trained."""
    dense = [(32, "relu", kernel1, bias1, ident + 1), (784, "sigmoid", kernel2, bias2, ident + 2)]
    return ModelInfo(
        ident,
        dense,
        compiled=True,
        adam=True,
        optimizer="Adam",
        loss="binary_crossentropy",
        steps=ZERO_WORK_STEPS,
        params=helpers.PARAMS,
        input_shape=(784,),
    )


def mean_image_model(ident, x_train):
    """The zero-work model: no weights at all, its output bias the logit of the training set's mean image."""
    mean = np.clip(x_train.mean(axis=0), 1e-4, 1 - 1e-4)
    return forged(
        ident,
        np.zeros((784, 32), "float32"),
        np.zeros(32, "float32"),
        np.zeros((32, 784), "float32"),
        np.log(mean / (1 - mean)).astype("float32"),
    )


def history_of(model, loss=0.29):
    """A History forged for model: a loss and a val_loss of a well trained DAE, the lab's epochs and steps."""
    return HistoryInfo(
        {"loss": np.array([loss]), "val_loss": np.array([loss])}, {"epochs": 30, "steps": 469}, model.ident
    )


def test_a_mean_image_model_with_forged_training_fails_both_bars(data):
    """Defence that holds: forged compile settings, steps and History earn nothing, the weights are run."""
    autoencoder, dae = mean_image_model(10, data["x_train"]), mean_image_model(20, data["x_train"])
    encoder = ModelInfo(11, [autoencoder.dense[0]], params=784 * 32 + 32, input_shape=(784,))
    ns = {**data, "autoencoder": autoencoder, "encoder": encoder, "dae": dae, "history": history_of(dae)}
    assert checks.judge("regular_autoencoder", ns).status == "failed"
    assert checks.judge("dae_training", ns).status == "failed"


def test_untrained_weights_with_forged_training_fail(data):
    """Defence that holds: Keras's initial weights, the export claiming 14,070 steps of adam on BCE."""
    rng = np.random.default_rng(0)
    glorot = lambda fan_in, fan_out: (
        rng.uniform(-1, 1, (fan_in, fan_out)).astype("float32")
        * np.sqrt(  # noqa: E731
            6 / (fan_in + fan_out)
        )
    )
    dae = forged(20, glorot(784, 32), np.zeros(32, "float32"), glorot(32, 784), np.zeros(784, "float32"))
    assert checks.judge("dae_training", {**data, "dae": dae, "history": history_of(dae)}).status == "failed"


@pytest.fixture
def mnist(monkeypatch):
    """MNIST's training images for the judge's DATASET = "mnist": the real ones where this machine has them, else a
    stand-in of its kind (Fashion-MNIST with every pixel under 220 put to 0: sparse bright strokes on black, whose
    mean image scores 0.26 against Fashion-MNIST's 0.49, as MNIST's does)."""
    from checks import variables

    try:
        (train_images, _), _ = helpers.load_dataset("mnist")
    except Exception:
        real = helpers.load_dataset

        def sparse(name="fashion_mnist", data_dir=None):
            (train, train_labels), (test, test_labels) = real("fashion_mnist", data_dir)
            return (np.where(train < 220, 0, train), train_labels), (np.where(test < 220, 0, test), test_labels)

        monkeypatch.setattr(helpers, "load_dataset", lambda name="fashion_mnist", data_dir=None: sparse())
        (train_images, _), _ = sparse()
    for cached in (variables.reference_clean, variables.reference_images):
        cached.cache_clear()
    yield helpers.prepare_images(train_images[:4096])
    for cached in (variables.reference_clean, variables.reference_images):
        cached.cache_clear()


def test_the_zero_work_model_fails_on_mnist_too(data, mnist):
    """A student sets DATASET = "mnist" (the README offers it; in the kernel, data can stay Fashion-MNIST: only the
    judge reads DATASET) and exports the mean-image model: its BCE on MNIST is under MAX_BCE = 0.40."""
    autoencoder = mean_image_model(10, mnist)
    encoder = ModelInfo(11, [autoencoder.dense[0]], params=784 * 32 + 32, input_shape=(784,))
    ns = {**data, "DATASET": "mnist", "autoencoder": autoencoder, "encoder": encoder}
    assert checks.judge("regular_autoencoder", ns).status != "passed"


def test_a_deeper_dae_with_a_forged_parameter_count_fails_dae_model():
    """784 -> 512 -> 32 -> 512 -> 784 (relu, sigmoid output), its params field forged to 50,992."""
    rng = np.random.default_rng(0)
    sizes = [(784, 512, "relu"), (512, 32, "relu"), (32, 512, "relu"), (512, 784, "sigmoid")]
    dense = [
        (n_out, act, rng.normal(0, 0.05, (n_in, n_out)).astype("float32"), np.zeros(n_out, "float32"), 2 + i)
        for i, (n_in, n_out, act) in enumerate(sizes)
    ]
    dae = ModelInfo(1, dense, params=helpers.PARAMS, input_shape=(784,))
    assert checks.judge("dae_model", {"dae": dae}).status == "failed"


class TookTooLong(Exception):
    """Raised by the alarm to stop the judge (which reports it as a failed check: the test looks for that)."""


def test_judging_a_hostile_figure_is_bounded():
    """A figure of 20,000 references to one image, against three 100,000-row arrays: must be judged in 5 s.

    At grading scale (60,000-450,000 references, 300,000-row arrays, all within the reader's caps) this took
    ~22 ms a reference here: hours of the grader's CPU per export.
    """
    big = np.zeros((100_000, 784), "uint8")
    big[:, 0] = np.arange(100_000) % 200  # row sums that never match the image's: every reference scans every row
    figure = FigureInfo(((np.full(784, 200, "uint8"),) * 20_000,), ())
    ns = {name: big for name in ("x_test", "x_test_noisy", "x_test_denoised")}
    ns.update(fig_clean=figure, fig_results=figure)

    def alarm(signum, frame):
        raise TookTooLong

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(5)
    try:
        start = time.monotonic()
        result = checks.judge("view_results", ns)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert "TookTooLong" not in result.message and time.monotonic() - start < 5
