"""A corpus of filled-in notebooks, one student mistake (or one valid alternative) each, for tests/test_corpus.py.

    .venv/bin/python tests/make_corpus.py FOLDER [NAME ...]   # writes FOLDER/NAME.ipynb (every entry by default)

Each notebook is tests/fixtures/make_fixtures.py's cheap answer key (each model trains one epoch on
16,384 images with Adam(0.01): seconds, enough for the checks' bounds) with one task's answer
replaced. MISTAKES says, for each, the task that must fail, words its hint must contain, and any
later task that may say "blocked" instead of passing because it cannot be judged until the earlier
one is fixed; every other task must pass. VALID notebooks must pass all nine tasks. The notebooks are
written at test time into a temporary folder: nothing generated is committed.
"""

import importlib.util
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("make_fixtures", HERE / "fixtures" / "make_fixtures.py")
fixtures = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fixtures)

ANSWERS = fixtures.ANSWERS
FIT = fixtures.FIT
DAE_FIT = ANSWERS["dae_training"]
HAND_NOISE = (  # the noise as a student writes it now, by hand (helpers.add_noise refuses unscaled images)
    "NOISE_FACTOR = 0.5\n"
    "x_train_noisy = np.clip(x_train + NOISE_FACTOR * rng.standard_normal(x_train.shape), 0.0, 1.0)\n"
    "x_test_noisy = np.clip(x_test + NOISE_FACTOR * rng.standard_normal(x_test.shape), 0.0, 1.0)"
)
LOAD = ANSWERS["data"].split("x_train =")[0]


def answers(**changes):
    """The cheap answer key with some tasks' answers replaced."""
    return {**ANSWERS, **changes}


def noise(expression):
    """A noisy_data answer drawing both sets with expression, in which X stands for the clean set."""
    return (
        "NOISE_FACTOR = 0.5\n"
        f"x_train_noisy = {expression.replace('X', 'x_train')}\n"
        f"x_test_noisy = {expression.replace('X', 'x_test')}"
    )


def dae_by_hand(code_units=32, code_activation="relu"):
    """A dae_model answer writing the DAE's layers by hand."""
    return (
        "inputs = keras.Input(shape=(784,))\n"
        f"code = keras.layers.Dense({code_units}, activation={code_activation!r})(inputs)\n"
        "dae = keras.Model(inputs, keras.layers.Dense(784, activation='sigmoid')(code), name='denoising_autoencoder')"
    )


def dae_fit(
    inputs="x_train_noisy[:16384]",
    targets="x_train[:16384]",
    validation="(x_test_noisy[:1024], x_test[:1024])",
    fit=FIT,
    optimizer="keras.optimizers.Adam(0.01)",
    loss='"binary_crossentropy"',
):
    """A dae_training answer with the given inputs, targets, validation data, fit settings and compile settings."""
    return (
        f"dae.compile(optimizer={optimizer}, loss={loss})\n"
        f"history = dae.fit({inputs}, {targets}, validation_data={validation}, {fit})"
    )


# name -> (answers, the task that fails, words of its hint, {later task: words of its "blocked" message})
MISTAKES = {
    # the findings
    "noise_unclipped": (
        answers(noisy_data=noise("X + NOISE_FACTOR * rng.standard_normal(X.shape)")),
        "noisy_data",
        ["clip them back to [0, 1]", "np.clip"],
        {},
    ),
    "under_trained": (
        answers(dae_training=dae_fit("x_train_noisy[:1000]", "x_train[:1000]", optimizer="keras.optimizers.Adam()")),
        "dae_training",
        ["trained too little", "1 epoch(s) of 4 batches", "30 epochs"],
        {},
    ),
    "code_sigmoid": (answers(dae_model=dae_by_hand(code_activation="sigmoid")), "dae_model", ["activation='relu'"], {}),
    "code_64": (answers(dae_model=dae_by_hand(code_units=64)), "dae_model", ["code size must be 32"], {}),
    "test_noise_shuffled": (
        answers(
            noisy_data="NOISE_FACTOR = 0.5\n"
            "x_train_noisy = helpers.add_noise(x_train, NOISE_FACTOR, rng)\n"
            "x_test_noisy = helpers.add_noise(x_test[rng.permutation(len(x_test))], NOISE_FACTOR, rng)"
        ),
        "noisy_data",
        ["x_test_noisy's rows are not x_test's images in order", "no shuffling"],
        {"dae_training": "fix the dae_model task first"},
    ),
    "trained_on_test_set": (
        answers(dae_training=dae_fit("x_test_noisy", "x_test", fit="epochs=5, batch_size=256, verbose=0")),
        "dae_training",
        ["trained on the test set", "training set only"],
        {},
    ),
    "validated_on_clean": (
        answers(dae_training=dae_fit(validation="(x_test, x_test)")),
        "dae_training",
        ["validated on clean images", "inputs are the noisy test images"],
        {},
    ),
    "noise_before_scaling": (
        answers(
            noisy_data=(
                "NOISE_FACTOR = 0.5\n"
                "x_train_noisy = helpers.prepare_images(train_images + NOISE_FACTOR * rng.standard_normal(train_images.shape))\n"
                "x_test_noisy = helpers.prepare_images(test_images + NOISE_FACTOR * rng.standard_normal(test_images.shape))"
            )
        ),
        "noisy_data",
        ["255 times too little", "before dividing by 255"],
        {"dae_training": "fix the noisy_data task first"},
    ),
    "noise_factor_twice": (
        answers(noisy_data=noise("np.clip(X + NOISE_FACTOR * rng.normal(0, NOISE_FACTOR, X.shape), 0.0, 1.0)")),
        "noisy_data",
        ["factor 0.25", "applied twice"],
        {},
    ),
    "noise_uniform": (
        answers(noisy_data=noise("np.clip(X + NOISE_FACTOR * rng.uniform(-1.7, 1.7, X.shape), 0.0, 1.0)")),
        "noisy_data",
        ["not normally distributed", "rng.standard_normal"],
        {},
    ),
    "noise_positive": (
        answers(noisy_data=noise("np.clip(X + NOISE_FACTOR * rng.random(X.shape), 0.0, 1.0)")),
        "noisy_data",
        ["100% of its noise is positive", "mean 0"],
        {},
    ),
    "noise_mean_shifted": (
        answers(noisy_data=noise("np.clip(X + NOISE_FACTOR * rng.normal(0.5, 1.0, X.shape), 0.0, 1.0)")),
        "noisy_data",
        ["of its noise is positive", "mean 0"],
        {"dae_training": "fix the noisy_data task first"},
    ),
    # mistakes tests/test_checks.py lists, each in a whole notebook
    "noise_factor_0.3": (
        answers(noisy_data=ANSWERS["noisy_data"].replace("= 0.5", "= 0.3")),
        "noisy_data",
        ["factor 0.30, not 0.5"],
        {},
    ),
    "noisy_targets": (
        answers(
            dae_training=dae_fit(
                targets="x_train_noisy[:16384]",
                validation="(x_test_noisy, x_test_noisy)",
                fit="epochs=3, batch_size=256, verbose=0",
            )
        ),
        "dae_training",
        ["targets must be the clean images"],
        {},
    ),
    "clean_inputs": (
        answers(dae_training=dae_fit("x_train[:16384]", "x_train[:16384]", validation="(x_test, x_test)")),
        "dae_training",
        ["trained on clean inputs"],
        {},
    ),
    "dae_is_autoencoder": (answers(dae_model="dae = autoencoder"), "dae_model", ["build a new model"], {}),
    "compiled_mse": (answers(dae_training=dae_fit(loss='"mse"')), "dae_training", ["loss='binary_crossentropy'"], {}),
    "predicted_from_clean": (
        answers(predictions="x_test_denoised = dae.predict(x_test, verbose=0)"),
        "predictions",
        ["predicted from the clean x_test"],
        {},
    ),
    "results_wrong_row": (
        answers(view_results=ANSWERS["view_results"].replace("x_test_denoised, x_test]", "reconstructions, x_test]")),
        "view_results",
        [
            "second row shows reconstructions (the regular autoencoder's outputs) where the card asks for x_test_denoised (the DAE's outputs)"
        ],
        {},
    ),
    "loss_of_autoencoder": (
        answers(loss_curve="fig_loss = helpers.plot_history(ae_history)"),
        "loss_curve",
        ["regular autoencoder's losses"],
        {},
    ),
    # issue 21: mistakes of a student who writes the code by hand (each must cost its own task only)
    "data_scaled_twice": (
        answers(
            data=LOAD + "x_train = helpers.prepare_images(train_images) / 255\n"
            "x_test = helpers.prepare_images(test_images) / 255",
            noisy_data=HAND_NOISE,
        ),
        "data",
        ["divided by 255 more than once", "divide the 0-255 images by 255 once"],
        {"regular_autoencoder": "fix the data task first", "dae_training": "fix the data task first"},
    ),
    "data_not_scaled": (
        answers(
            data=LOAD + "x_train = train_images.reshape(len(train_images), -1).astype('float32')\n"
            "x_test = test_images.reshape(len(test_images), -1).astype('float32')",
            noisy_data=HAND_NOISE,
        ),
        "data",
        ["x_train's pixels go up to 255", "scale them to [0, 1]"],
        {"regular_autoencoder": "fix the data task first", "dae_training": "fix the data task first"},
    ),
    "noise_same_for_both_sets": (
        answers(
            noisy_data="NOISE_FACTOR = 0.5\n"
            "x_train_noisy = np.clip(x_train + NOISE_FACTOR * np.random.default_rng(7).standard_normal(x_train.shape), 0, 1)\n"
            "x_test_noisy = np.clip(x_test + NOISE_FACTOR * np.random.default_rng(7).standard_normal(x_test.shape), 0, 1)"
        ),
        "noisy_data",
        ["x_test_noisy has the same noise as x_train_noisy", "never saw in training"],
        {},
    ),
    "noise_in_place": (
        answers(
            noisy_data="NOISE_FACTOR = 0.5\n"
            "x_train_noisy, x_test_noisy = x_train, x_test\n"
            "x_train_noisy += NOISE_FACTOR * rng.standard_normal(x_train.shape)\n"
            "x_test_noisy += NOISE_FACTOR * rng.standard_normal(x_test.shape)\n"
            "np.clip(x_train_noisy, 0.0, 1.0, out=x_train_noisy)\n"
            "np.clip(x_test_noisy, 0.0, 1.0, out=x_test_noisy)"
        ),
        "noisy_data",
        ["x_train itself holds noise now", "added in place", "clean as its targets"],
        {"dae_training": "fix the noisy_data task first"},
    ),
    "dae_swapped": (
        answers(dae_training=dae_fit("x_train[:16384]", "x_train_noisy[:16384]", validation="(x_test, x_test_noisy)")),
        "dae_training",
        ["inputs and targets are swapped", "noisy image as its input", "clean image as its target"],
        {},
    ),
    "dae_output_relu": (
        answers(dae_model=dae_by_hand().replace("activation='sigmoid'", "activation='relu'")),
        "dae_model",
        ["output layer uses the relu activation", "pixels in [0, 1]"],
        {},
    ),
    "dae_output_linear": (
        answers(dae_model=dae_by_hand().replace(", activation='sigmoid'", "")),
        "dae_model",
        ["output layer uses the linear activation", "pixels in [0, 1]"],
        {},
    ),
    "predicted_from_training_set": (
        answers(predictions="x_test_denoised = dae.predict(x_train_noisy[:10000], verbose=0)"),
        "predictions",
        ["predicted from the training images (x_train_noisy)", "never trained on"],
        {},
    ),
    "results_rows_out_of_order": (
        answers(
            view_results=ANSWERS["view_results"].replace(
                "[x_test_noisy, x_test_denoised, x_test]", "[x_test, x_test_noisy, x_test_denoised]"
            )
        ),
        "view_results",
        ["rows are in another order (x_test, x_test_noisy, x_test_denoised from the top)"],
        {},
    ),
    "loss_without_validation": (
        answers(
            loss_curve="import matplotlib.pyplot as plt\n"
            "fig_loss, ax = plt.subplots()\n"
            "ax.plot(history.history['loss'], label='training loss')\n"
            "ax.legend()"
        ),
        "loss_curve",
        ["fig_loss has no validation curve", "images it never trained on"],
        {},
    ),
}

# name -> answers that must pass all nine tasks
VALID = {
    # the seed tutorial's own code: numpy's global noise, a hand-written model, Adam(), batch 256 (50 epochs there; 3 here)
    "seed_tutorial": answers(
        data=ANSWERS["data"].split("x_train =")[0] + "x_train = train_images.astype('float32') / 255.\n"
        "x_test = test_images.astype('float32') / 255.\n"
        "x_train = x_train.reshape((len(x_train), np.prod(x_train.shape[1:])))\n"
        "x_test = x_test.reshape((len(x_test), np.prod(x_test.shape[1:])))",
        noisy_data="noise_factor = 0.5\n"
        "x_train_noisy = x_train + noise_factor * np.random.normal(loc=0.0, scale=1.0, size=x_train.shape)\n"
        "x_test_noisy = x_test + noise_factor * np.random.normal(loc=0.0, scale=1.0, size=x_test.shape)\n"
        "x_train_noisy = np.clip(x_train_noisy, 0., 1.)\n"
        "x_test_noisy = np.clip(x_test_noisy, 0., 1.)",
        dae_model="input_img = keras.Input(shape=(784,))\n"
        "encoded = keras.layers.Dense(32, activation='relu')(input_img)\n"
        "decoded = keras.layers.Dense(784, activation='sigmoid')(encoded)\n"
        "dae = keras.Model(input_img, decoded)",
        dae_training="dae.compile(optimizer=keras.optimizers.Adam(), loss='binary_crossentropy')\n"
        "history = dae.fit(x_train_noisy, x_train, epochs=3, batch_size=256, shuffle=True,\n"
        "                  validation_data=(x_test_noisy, x_test), verbose=0)",
    ),
    # a Sequential DAE with Activation layers, loss and optimizer objects, float64 data, model(x) instead of predict
    # (the figures' rows must be in the card's order: results_rows_out_of_order)
    "sequential_objects_float64": answers(
        data=ANSWERS["data"].split("x_train =")[0]
        + "x_train = train_images.reshape(len(train_images), 784) / 255.0  # float64\n"
        "x_test = test_images.reshape(len(test_images), 784) / 255.0",
        dae_model="dae = keras.Sequential([keras.Input((784,)), keras.layers.Dense(32), keras.layers.Activation('relu'),\n"
        "                        keras.layers.Dense(784), keras.layers.Activation('sigmoid')])",
        dae_training=dae_fit(loss="keras.losses.BinaryCrossentropy()"),
        predictions="x_test_denoised = dae(x_test_noisy)",
        view_results="fig_clean = helpers.plot_rows([x_test], ['clean'])\n"
        "fig_results = helpers.plot_rows([x_test_noisy, x_test_denoised, x_test], ['noisy', 'denoised', 'clean'])",
    ),
    # a subclassed DAE, noise from keras.random, and other test images in the figures
    "subclassed_keras_noise": answers(
        noisy_data="NOISE_FACTOR = 0.5\n"
        "def corrupt(x, seed):\n"
        "    noisy = x + NOISE_FACTOR * keras.random.normal(x.shape, seed=seed)\n"
        "    return keras.ops.convert_to_numpy(keras.ops.clip(noisy, 0.0, 1.0))\n"
        "x_train_noisy = corrupt(x_train, 1)\n"
        "x_test_noisy = corrupt(x_test, 2)",
        dae_model="class Denoiser(keras.Model):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.code = keras.layers.Dense(32, activation='relu')\n"
        "        self.out = keras.layers.Dense(784, activation='sigmoid')\n"
        "\n"
        "    def call(self, x):\n"
        "        return self.out(self.code(x))\n"
        "\n"
        "dae = Denoiser()",
        view_results="picks = [7, 123, 4567, 9999, 42]\n"
        "fig_clean = helpers.plot_rows([x_test[picks]], ['clean'], n=5)\n"
        "fig_results = helpers.plot_rows([x_test_noisy[picks], x_test_denoised[picks], x_test[picks]],\n"
        "                                ['noisy', 'denoised', 'clean'], n=5)",
    ),
    # an encoder model and a decoder model composed into the DAE, compiled and trained with the lab's helpers
    "composed_helpers": answers(
        dae_model="dae_encoder = keras.Sequential([keras.Input((784,)), keras.layers.Dense(32, activation='relu')])\n"
        "decoder = keras.Sequential([keras.Input((32,)), keras.layers.Dense(784, activation='sigmoid')])\n"
        "inputs = keras.Input((784,))\n"
        "dae = keras.Model(inputs, decoder(dae_encoder(inputs)))",
        dae_training="helpers.compile_autoencoder(dae)\n"
        "dae.optimizer.learning_rate.assign(0.01)\n"
        "history = helpers.train_autoencoder(dae, x_train_noisy[:16384], x_train[:16384],\n"
        "                                    validation_data=(x_test_noisy, x_test), epochs=1, batch_size=256)",
    ),
}


def corpus():
    """Notebook name -> notebook, every mistake and valid alternative."""
    books = {name: fixtures.notebook(spec[0]) for name, spec in MISTAKES.items()}
    books.update({name: fixtures.notebook(spec) for name, spec in VALID.items()})
    return books


def write(folder, names=None):
    """Write the corpus (or the named notebooks) into folder; return their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, nb in corpus().items():
        if names is None or name in names:
            paths.append(folder / f"{name}.ipynb")
            nbformat.write(nb, paths[-1])
    return paths


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__.split("\n\n")[1])
    for path in write(sys.argv[1], sys.argv[2:] or None):
        print(path)
