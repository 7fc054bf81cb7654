"""The class challenge's rules and score: one place, read by the student's `check("challenge")` and by the grader.

An entry is `challenge_model`, a Keras model the student designs (any architecture), trained on the training set
only, that maps noisy images in the lab's format (rows of 784 pixels in [0, 1], Gaussian noise of NOISE_FACTOR,
clipped) to denoised images of the same shape. Its score is the mean PSNR (dB) over the images, with the mean SSIM
beside it (scikit-image's metrics, through levelup.mean_scores). The student's check scores it on a public practice
set; the grader scores it on a hidden set drawn at grading time that no kernel ever holds the clean images of
(grading/challenge.py).
"""

TASK = "challenge"  # check("challenge"): optional, its own column, never in the core total
NAME = "challenge_model"  # the variable an entry is read from
BUDGET_S = 180  # seconds of `fit` on 2 CPU cores, all training of the entry together
MAX_PARAMS = 1_000_000  # weights of an entry (the core DAE has 50,992; benchmarks/hybrid.py's 483,860)
MAX_INFERENCE_S = 60  # to denoise HIDDEN_COUNT images on 2 CPU cores
HIDDEN_COUNT = 2000  # images in the grader's hidden set
PRACTICE_COUNT = 1000  # images in the public practice set: the first test images
PRACTICE_SEED = 20261204  # the practice set's noise (public: the hidden set's seeds are the grader's secret)


def score(clean, denoised):
    """(mean PSNR in dB, mean SSIM) of denoised rows against clean rows (both n x 784, in [0, 1])."""
    import levelup

    return levelup.mean_scores(clean, denoised)


def practice_set(x_test, noise_factor=None):
    """(clean, noisy): the first PRACTICE_COUNT rows of x_test and their noisy copies, from PRACTICE_SEED."""
    import helpers

    import numpy as np

    clean = np.asarray(x_test[:PRACTICE_COUNT], dtype="float32")
    factor = helpers.NOISE_FACTOR if noise_factor is None else noise_factor
    return clean, helpers.add_noise(clean, factor, np.random.default_rng(PRACTICE_SEED))
