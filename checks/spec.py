"""Each task's specification as data: what its card states, which model or array each setting is for, what the check
judges and from which evidence, strongest first. A plain table (no imports): tests/test_spec.py generates, from it, the
answers a card allows written in the other ways Keras allows (each must score 9/9) and one mistake per setting (each
must fail its own task only, with a hint naming it), and fails when a setting has neither.

Evidence, strongest first: `layers` (every layer a model has, its type and configuration, exported as plain data),
`weights` (the model rebuilt from its weights, run on the grader's own images), `values`
(the student's arrays compared with what the model or the given images make of them, at any scale), `history` (a
History's per-epoch numbers, matched against the model's own loss on each candidate set), `registry` (a compile
setting's name resolved through Keras's own keras.losses / keras.optimizers / keras.activations `get`),
`bookkeeping` (History's epochs and steps per epoch, the optimizer's step count, the training set's size and the
card's batch, cross-checked for consistency: what decides a setting the weights cannot, such as 10 epochs against 30).

Which evidence decides each setting: a model's `architecture` is decided by its exported layers (every layer, its type
and configuration: a layer the card's network has not fails it, whatever it does) and its weights (the rebuilt model
run on the grader's images); `trained` by the weights (the quality bar) and then the bookkeeping (TRAINING: epochs
run, steps per epoch against the training set's rows and the card's batch, the optimizer's steps against History's);
`validation` by History's val_loss matched against the model's own loss on each candidate set; the arrays' settings
by their values, tested against each plausible way of getting them wrong (checks/variables.py's diagnose).
"""

from typing import NamedTuple


class Setting(NamedTuple):
    """One thing a card states: the task, what it is for, the setting, the card's value, the evidence it is judged
    by (strongest first), and words the hint for a mistake in it must contain."""

    task: str
    subject: str
    setting: str
    card: str
    evidence: tuple
    mistake_words: str


SPEC = (
    Setting("data", "x_train, x_test", "shape", "rows of 784 pixels, one per image", ("values",), "flatten"),
    Setting("data", "x_train, x_test", "scale", "0-255 divided by 255, floats in [0, 1]", ("values",), "scale mistake"),
    Setting("data", "x_train, x_test", "source", "train_images, test_images, all, in order", ("values",), "holds the"),
    Setting(
        "regular_autoencoder",
        "autoencoder",
        "architecture",
        "784 -> 32 relu -> 784 sigmoid",
        ("layers", "weights", "registry"),
        "activation",
    ),
    Setting("regular_autoencoder", "autoencoder", "loss", "binary cross-entropy", ("registry",), "loss"),
    Setting("regular_autoencoder", "autoencoder", "optimizer", "adam", ("registry",), "optimizer is adam"),
    Setting(
        "regular_autoencoder",
        "autoencoder",
        "trained",
        "clean -> clean, 10 epochs of batch 128",
        ("weights", "bookkeeping"),
        "the card trains it",
    ),
    Setting(
        "regular_autoencoder", "ae_history", "kept", "the History fit returns", ("history",), "History was not kept"
    ),
    Setting(
        "regular_autoencoder",
        "ae_history",
        "validation",
        "the clean test images against themselves",
        ("history", "weights"),
        "validation_split",
    ),
    Setting(
        "reconstructions",
        "codes, reconstructions",
        "source",
        "encoder / autoencoder on x_test",
        ("values", "weights"),
        "training images",
    ),
    Setting(
        "reconstructions",
        "reconstructions",
        "scale",
        "the model's output as it is",
        ("values", "weights"),
        "scale mistake",
    ),
    Setting("reconstructions", "fig_autoencoder", "rows", "x_test, reconstructions", ("values",), "rows"),
    Setting(
        "noisy_data",
        "x_train_noisy, x_test_noisy",
        "noise",
        "clip(x + 0.5 N(0, 1), 0, 1), relative to the student's own clean set",
        ("values",),
        "noise",
    ),
    Setting("noisy_data", "x_train_noisy, x_test_noisy", "fresh", "each set its own draw", ("values",), "same noise"),
    Setting(
        "dae_model",
        "dae",
        "architecture",
        "784 -> 32 relu -> 784 sigmoid, new layers",
        ("layers", "weights", "registry"),
        "activation",
    ),
    Setting("dae_training", "dae", "loss", "binary cross-entropy", ("registry",), "loss"),
    Setting("dae_training", "dae", "optimizer", "adam", ("registry",), "optimizer is adam"),
    Setting("dae_training", "dae", "pairs", "noisy training images -> clean ones", ("weights",), "targets"),
    Setting(
        "dae_training", "dae", "trained", "30 epochs of batch 128", ("weights", "bookkeeping"), "the card trains it"
    ),
    Setting("dae_training", "history", "kept", "the History fit returns", ("history",), "History was not kept"),
    Setting(
        "dae_training",
        "history",
        "validation",
        "the noisy test images -> the clean ones",
        ("history", "weights"),
        "validation_split",
    ),
    Setting("predictions", "x_test_denoised", "source", "dae on x_test_noisy", ("values", "weights"), "predicted from"),
    Setting(
        "predictions", "x_test_denoised", "scale", "the model's output as it is", ("values", "weights"), "scale mistake"
    ),
    Setting("view_results", "fig_clean", "rows", "x_test", ("values",), "fig_clean shows"),
    Setting("view_results", "fig_clean", "scale", "pixels in [0, 1]", ("values",), "scale mistake"),
    Setting("view_results", "fig_results", "rows", "x_test_noisy, x_test_denoised, x_test", ("values",), "rows"),
    Setting("loss_curve", "fig_loss", "curves", "history's loss and val_loss", ("values",), "validation curve"),
)


class Training(NamedTuple):
    """The fit settings a card states for one model: epochs and batch size (on every row of its training set)."""

    epochs: int
    batch: int


TRAINING = {"autoencoder": Training(10, 128), "dae": Training(30, 128)}  # judged by the bookkeeping


TRAINING_SETTING = "DAE_LAB_TRAINING"  # the grader's environment may judge another plan (checks.models.card_training)


def settings(task):
    """The settings a task's card states, in SPEC's order."""
    return [setting for setting in SPEC if setting.task == task]
