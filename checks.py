"""Self-checks for the lab: after each task, `check("noisy_data")` prints one line saying how it went.

A check looks at what the task produced (shapes, pixel statistics, layer sizes, what a model
learned, what a figure shows), never at the code text, so any correct way of doing a task passes.
`check` reads the calling notebook's variables itself (as otter-grader does): students call it
with no arguments, and a variable that was never defined (or was deleted) reads as "not attempted
yet" instead of a NameError. `evaluate(name, namespace)` is the same check for a grader: it takes
the variables as a dict and returns a Result. Neither ever raises, whatever the variables hold.

Every check runs in two steps, so that a grader can run the second one outside the student's kernel:
`snapshot` turns the variables a task reads (`READS`) into plain data (arrays; a model's Dense
layers, weights and compile settings; a figure's images and lines; a History's numbers), and `judge`
decides the verdict from that data alone. Models are judged by rebuilding their Dense layers from
the weights (never by calling the student's model), on the lab's own test images with fresh noise.

Each task is judged on its own, with the earlier variables as they are, so one mistake costs one
task: predictions passes when x_test_denoised is dae's output for x_test_noisy, whatever x_test_noisy
holds; dae_training judges the training of the model it was given, whatever its architecture, on fresh
noise of the kind the student drew. Where a task cannot be judged until an earlier one is fixed (no
model to run, or a mistake that an earlier task's mistake may explain: `Suspect`, `PREREQUISITES`),
its status is "blocked" and its message starts "fix the <task> task first: " with that task's hint.
"""

import functools
import inspect
from collections.abc import Mapping
from typing import NamedTuple

import helpers  # first: it imports Keras without the backend's start-up chatter
from helpers import CODE_SIZE, INPUT_DIM, NOISE_FACTOR, PARAMS  # the lab's numbers, defined in helpers

import keras
import numpy as np
from matplotlib.figure import Figure

SAMPLE = 300  # test images a check runs a model on: stable statistics, a few milliseconds on a CPU
MAX_BCE = 0.40  # test BCE a trained model beats easily (about 0.29 after the lab's training, 0.69 untrained)
MAX_BCE_OTHER = 0.45  # the bar for a DAE of another architecture (dae_model's mistake): the mean image scores 0.49
NOISY_TARGET_RATIO = 2.5  # see dae_direction
CLEAN_INPUT_GAP = 0.025  # see dae_direction
REFERENCE_SEED = 20240  # the fresh noise models are judged on (not the lab's SEED, so not the student's noise)
STATUSES = ("passed", "not attempted", "failed", "blocked")  # blocked: an earlier task must be fixed first
TEST_SET_MEMORY = 0.001  # see trained_on_test_set
VAL_LOSS_TOLERANCE = 0.003  # see validated_on_clean
LAB_STEPS = 30 * 469  # the lab's training: 30 epochs of 469 batches of 128 images
DEFINES = {  # task -> the names its cell must define (the check reports "not attempted" until they exist)
    "data": ("x_train", "x_test"),
    "regular_autoencoder": ("autoencoder", "encoder"),
    "reconstructions": ("codes", "reconstructions", "fig_autoencoder"),
    "noisy_data": ("x_train_noisy", "x_test_noisy"),
    "dae_model": ("dae",),
    "dae_training": ("history",),
    "predictions": ("x_test_denoised",),
    "view_results": ("fig_clean", "fig_results"),
    "loss_curve": ("fig_loss",),
}


READS = {  # task -> every variable its check may read (a grader exports only these)
    "data": ("x_train", "x_test", "train_images", "test_images"),
    "regular_autoencoder": ("autoencoder", "encoder", "x_train", "x_test", "train_images", "test_images", "DATASET"),
    "reconstructions": (
        "codes",
        "reconstructions",
        "fig_autoencoder",
        "x_test",
        "autoencoder",
        "encoder",
        "x_test_noisy",
        "x_train",
    ),
    "noisy_data": ("x_train_noisy", "x_test_noisy", "x_train", "x_test", "train_images", "test_images"),
    "dae_model": ("dae", "autoencoder"),
    "dae_training": (
        "history",
        "dae",
        "autoencoder",
        "x_train",
        "x_test",
        "x_train_noisy",
        "x_test_noisy",
        "train_images",
        "test_images",
        "DATASET",
    ),  # with the reads of data, noisy_data and dae_model
    "predictions": ("x_test_denoised", "dae", "x_test", "x_test_noisy", "autoencoder", "x_train_noisy", "x_train"),
    "view_results": (
        "fig_clean",
        "fig_results",
        "x_test",
        "x_test_noisy",
        "x_test_denoised",
        "x_train",
        "x_train_noisy",
        "reconstructions",
    ),
    "loss_curve": ("fig_loss", "history", "ae_history"),
}


PREREQUISITES = {  # task -> the earlier tasks whose mistakes can make its own verdict fail (checked in this order)
    "regular_autoencoder": ("data",),
    "dae_training": ("data", "noisy_data", "dae_model"),
}


class Result(NamedTuple):
    """How one check went: a status of STATUSES; message says why or what to do (for "blocked": which task to fix first)."""

    status: str
    message: str

    def _ipython_display_(self):
        """Show nothing when a notebook cell ends in check(...): check has already printed the line."""

    def line(self, name):
        """The one line `check` prints, e.g. 'noisy_data: failed - ...'."""
        if self.status == "passed":
            return f"{name}: passed"
        if self.status == "not attempted":
            return f"{name}: not attempted yet ({self.message})"
        if self.status == "blocked":
            return f"{name}: blocked - {self.message}"
        return f"{name}: failed - {self.message}"


class Failed(Exception):
    """A check found a mistake; the message says how to fix it."""


class NotAttempted(Exception):
    """The task's variables are not defined yet."""


class Blocked(Exception):
    """The task cannot be judged until an earlier task is fixed; the message says which and why."""

    def __init__(self, task, message):
        super().__init__(
            message if message.startswith("fix the ") else f"fix the {task} task first: {pointed(task, message)}"
        )


class Suspect(Failed):
    """A mistake that an earlier task's mistake may have caused: reported as such when an earlier task fails."""


# ---------------------------------------------------------------- public API


def evaluate(name, namespace):
    """Run the check for task `name` on the variables in `namespace`; return a Result, never raise."""
    if name not in CHECKS:
        return Result("failed", f"there is no check called {name!r}: use one of {', '.join(TASKS)}")
    if not isinstance(namespace, Mapping):
        return Result("failed", f"the namespace must be a dict of variables, got {type(namespace).__name__}")
    return judge(name, snapshot(namespace, READS[name]))


def judge(name, data):
    """Decide task `name` from a snapshot (plain data, see `snapshot`); return a Result, never raise."""
    if name not in CHECKS:
        return Result("failed", f"there is no check called {name!r}: use one of {', '.join(TASKS)}")
    try:
        return Result("passed", CHECKS[name](data))
    except NotAttempted as err:
        return Result("not attempted", str(err))
    except Blocked as err:
        return Result("blocked", str(err))
    except Suspect as err:
        return blame(name, data) or Result("failed", pointed(name, str(err)))
    except Failed as err:
        return Result("failed", pointed(name, str(err)))
    except Exception as err:  # a value no check foresaw: report it rather than crash the student's notebook
        return Result(
            "failed",
            f"the check could not inspect your variables ({type(err).__name__}: {err}); re-run the task's cell",
        )


def pointed(task, hint):
    """A hint that ends by pointing back to the card that teaches it: '...; see the `noisy_data` card'."""
    return hint if "` card" in hint else f"{hint}; see the `{task}` card"


def blame(name, data):
    """A "blocked" Result naming the first earlier task (PREREQUISITES) that does not pass, or None when they all pass."""
    for task in PREREQUISITES.get(name, ()):
        result = judge(task, data)
        if result.status != "passed":
            return Result("blocked", str(Blocked(task, result.message)))
    return None


def check(name, namespace=None):
    """Check task `name` against the caller's variables (or `namespace`), print one line and return the Result."""
    if namespace is None:
        frame = inspect.currentframe().f_back
        namespace = frame.f_globals if frame is not None else {}
    result = evaluate(name, namespace)
    print(result.line(name))
    return result


# ---------------------------------------------------------------- snapshots: the plain data a check reads

PASS_THROUGH_LAYERS = (
    "InputLayer",
    "Dropout",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "Flatten",
    "ActivityRegularization",
    "Identity",
)  # layers that change nothing at inference
ACTIVATIONS = (
    "relu",
    "sigmoid",
    "linear",
    "tanh",
    "elu",
    "selu",
    "softplus",
    "softsign",
    "swish",
    "silu",
    "gelu",
    "leaky_relu",
    "relu6",
    "hard_sigmoid",
    "exponential",
    "softmax",
    "mish",
)  # Keras built-ins a rebuild may use


class ModelInfo:
    """A Keras model as data: its Dense layers (units, activation, kernel, bias, layer id) in order, how it was
    compiled and trained, and the layers a rebuild cannot reproduce."""

    def __init__(
        self,
        ident,
        dense,
        compiled=False,
        adam=False,
        optimizer="",
        loss="",
        steps=0,
        params=0,
        unsupported=(),
        problem="",
        input_shape=None,
    ):
        self.ident, self.dense, self.compiled, self.adam = ident, tuple(dense), compiled, adam
        self.input_shape = None if input_shape is None else tuple(input_shape)
        self.optimizer, self.loss, self.steps, self.params = optimizer, loss, steps, params
        self.unsupported, self.problem = tuple(unsupported), problem
        self._rebuilt = None

    def rebuilt(self):
        """A new Keras model of Dense layers holding these weights (built once), or None when it cannot be."""
        if self._rebuilt is None and not (self.problem or self.unsupported):
            # layers in the order they were made, else reversed (a subclassed model may define its decoder first)
            self._rebuilt = rebuild_dense(self.dense) or rebuild_dense(self.dense[::-1])
        return self._rebuilt


class FigureInfo(NamedTuple):
    """A matplotlib Figure as data: the flattened images of each row of axes (top first) and every line's y values."""

    rows: tuple
    lines: tuple


class HistoryInfo(NamedTuple):
    """A Keras History as data: history (key -> values per epoch), params (epochs, steps), the trained model's id."""

    history: dict
    params: dict
    model: int


class Foreign(NamedTuple):
    """A value no check can use, kept only by its type name for the hint."""

    type_name: str


def snapshot(namespace, names):
    """{name: plain data} for each of names defined in namespace (see the module docstring)."""
    return {name: describe(namespace[name]) for name in names if name in namespace}


def describe(value):
    """One variable as plain data: arrays, ModelInfo, FigureInfo, HistoryInfo, a str/number/None, or Foreign."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, keras.Model):
        return describe_model(value)
    if isinstance(value, Figure):
        return describe_figure(value)
    if isinstance(value, keras.callbacks.History):
        return describe_history(value)
    try:
        array = np.asarray(value)
    except Exception:
        return Foreign(type(value).__name__)
    return array if array.dtype.kind in "biuf" else Foreign(type(value).__name__)


def as_numpy(value):
    """A backend tensor or variable as a numpy array."""
    return np.asarray(keras.ops.convert_to_numpy(value))


def describe_model(model):
    """A model's Dense layers, weights and training settings as a ModelInfo (builds an unbuilt model first)."""
    problem = ""
    if not model.built or any(
        not layer.weights for layer in flat_layers(model) if isinstance(layer, keras.layers.Dense)
    ):
        try:
            model(np.zeros((1, INPUT_DIM), dtype="float32"))
        except Exception as err:
            problem = type(err).__name__
    dense, unsupported = [], []
    for layer in flat_layers(model):
        kind = type(layer).__name__
        if isinstance(layer, keras.layers.Dense):
            weights = [np.asarray(w) for w in layer.get_weights()] if layer.weights else []
            kernel = weights[0] if weights else np.zeros((0, layer.units), "float32")
            bias = weights[1] if len(weights) > 1 else np.zeros(layer.units, kernel.dtype)
            dense.append([layer.units, activation_name(layer.activation), kernel, bias, id(layer)])
        elif isinstance(layer, (keras.layers.Activation, keras.layers.ReLU)) and dense and dense[-1][1] == "linear":
            dense[-1][1] = "relu" if isinstance(layer, keras.layers.ReLU) else activation_name(layer.activation)
        elif kind not in PASS_THROUGH_LAYERS:
            unsupported.append(kind)
    optimizer = getattr(model, "optimizer", None)
    try:
        steps = int(as_numpy(optimizer.iterations)) if optimizer is not None else 0
    except Exception:
        steps = 0
    try:
        params = int(model.count_params())
    except Exception:
        params = sum(int(np.size(kernel)) + int(np.size(bias)) for _, _, kernel, bias, _ in dense)
    compiled = bool(getattr(model, "compiled", False)) and optimizer is not None
    try:
        input_shape = tuple(int(n) for n in model.inputs[0].shape[1:])
    except Exception:  # a subclassed model has no declared input
        input_shape = None
    return ModelInfo(
        id(model),
        [tuple(step) for step in dense],
        compiled=compiled,
        adam=isinstance(optimizer, keras.optimizers.Adam),
        optimizer=type(optimizer).__name__,
        loss=loss_name(model.loss) if compiled else "",
        steps=steps,
        params=params,
        unsupported=unsupported,
        problem=problem,
        input_shape=input_shape,
    )


def describe_figure(fig):
    """A Figure's images grouped into rows of axes (top row first) and its lines' y values, as a FigureInfo."""
    rows = {}
    for ax in fig.axes:
        if not ax.images:
            continue
        spec = ax.get_subplotspec()
        key = spec.rowspan.start if spec is not None else -round(ax.get_position().y0, 3)
        rows.setdefault(key, []).append(np.asarray(ax.images[-1].get_array(), dtype="float64").ravel())
    lines = tuple(np.asarray(line.get_ydata(), dtype="float64") for ax in fig.axes for line in ax.lines)
    return FigureInfo(tuple(tuple(rows[key]) for key in sorted(rows)), lines)


def describe_history(history):
    """A History's per-epoch values, params and the id of the model it trained, as a HistoryInfo."""
    values = getattr(history, "history", None)
    values = {str(k): np.asarray(v, dtype="float64") for k, v in values.items()} if isinstance(values, dict) else {}
    params = {str(k): v for k, v in (getattr(history, "params", None) or {}).items() if isinstance(v, (int, float))}
    return HistoryInfo(values, params, id(getattr(history, "model", None)))


def rebuild_dense(dense):
    """A Keras model of Dense layers with the given (units, activation, kernel, bias, id) steps, or None if they do not chain."""
    if not dense or dense[0][2].ndim != 2:
        return None
    inputs = keras.Input(shape=(dense[0][2].shape[0],))
    x, width = inputs, dense[0][2].shape[0]
    layers = []
    for units, activation, kernel, bias, _ in dense:
        if kernel.shape != (width, units) or np.shape(bias) != (units,) or activation not in ACTIVATIONS:
            return None
        layer = keras.layers.Dense(units, activation=activation)
        x, width = layer(x), units
        layers.append((layer, kernel, bias))
    model = keras.Model(inputs, x)
    for layer, kernel, bias in layers:
        layer.set_weights([np.asarray(kernel, "float32"), np.asarray(bias, "float32")])
    return model


# ---------------------------------------------------------------- reading variables


def require(ns, *names):
    """Raise NotAttempted naming the task's variables that are not defined yet."""
    missing = [name for name in names if name not in ns]
    if missing:
        names = ", ".join(missing[:-1]) + " and " + missing[-1] if len(missing) > 1 else missing[0]
        raise NotAttempted(f"define {names}")


def prerequisite(ns, name, task):
    """Return variable `name` from an earlier task, or raise Blocked saying which task to finish first."""
    if name not in ns:
        raise Blocked(task, f"{name} is not defined (run its cell)")
    return ns[name]


def as_array(value, name):
    """Return value as a numpy array of real numbers, or raise Failed saying what it is instead."""
    if value is None:
        raise Failed(f"{name} is None: assign it the array the task asks for")
    try:
        array = np.asarray(value)
    except Exception:
        raise Failed(f"{name} is a {type(value).__name__}, not an array of numbers") from None
    if array.dtype.kind not in "fiu":
        raise Failed(f"{name} should be an array of numbers, got a {type(value).__name__} of dtype {array.dtype}")
    return array


def pixel_rows(value, name):
    """Return value as a 2-D float array of flattened images with pixels in [0, 1], or raise Failed."""
    x = as_array(value, name)
    if x.ndim != 2:
        raise Failed(
            f"{name} has shape {x.shape}: a Dense layer reads each image as one flat row, so flatten each "
            f"28x28 image to one row of {INPUT_DIM} values"
        )
    if x.shape[1] != INPUT_DIM or len(x) == 0:
        raise Failed(f"{name} has shape {x.shape}: it should hold rows of {INPUT_DIM} pixels (28x28 images flattened)")
    if x.dtype.kind != "f":
        raise Failed(
            f"{name} holds integers ({x.dtype}), pixel values 0-255: the sigmoid output and binary cross-entropy "
            "work on pixels in [0, 1], so scale them to floats in [0, 1] by dividing by 255"
        )
    if not np.isfinite(x).all():
        raise Failed(f"{name} contains NaN or infinite values: rebuild it from the images")
    low, high = float(x.min()), float(x.max())
    if high > 50:  # 0-255 values: unscaled images
        raise Failed(
            f"{name}'s pixels go up to {high:g}: the sigmoid output and binary cross-entropy work on pixels in "
            "[0, 1], so scale them to [0, 1] by dividing by 255"
        )
    if high > 1 or low < 0:  # neither 0-255 nor [0, 1]: a slip in the scaling, or noise added to the set itself
        raise Failed(
            f"{name}'s pixels run from {low:g} to {high:g}, outside [0, 1]: either the scaling to [0, 1] slipped, "
            f"or noise was added to {name} itself, in place (+=), which changes the clean set too; run the data "
            "cell again, and make each noisy set a new array (see the `noisy_data` card)"
        )
    return x


def earlier_rows(ns, name, task):
    """Return the pixel rows `name` made by an earlier task, validated, or raise Blocked naming that task."""
    value = prerequisite(ns, name, task)
    try:
        return pixel_rows(value, name)
    except Failed as err:
        raise Blocked(task, str(err)) from None


def earlier_images(ns, name, task):
    """Return `name` from an earlier task as rows of 784 finite numbers (any range), or raise Blocked naming that task."""
    value = prerequisite(ns, name, task)
    try:
        x = as_array(value, name)
    except Failed as err:
        raise Blocked(task, str(err)) from None
    if x.ndim != 2 or x.shape[1] != INPUT_DIM or len(x) == 0:
        raise Blocked(task, f"{name} has shape {x.shape}: it should hold rows of {INPUT_DIM} pixels")
    if not np.isfinite(x).all():
        raise Blocked(task, f"{name} contains NaN or infinite values")
    return x


def type_name(value):
    """What a snapshot value was in the notebook, for hints: 'ndarray', 'Model', 'Figure', 'list'..."""
    kinds = {ModelInfo: "Model", FigureInfo: "Figure", HistoryInfo: "History"}
    return value.type_name if isinstance(value, Foreign) else kinds.get(type(value), type(value).__name__)


def as_model(value, name):
    """Return value if it is a Keras model (a ModelInfo in the snapshot), else raise Failed."""
    if not isinstance(value, ModelInfo):
        raise Failed(
            f"{name} should be a Keras model, got {type_name(value)}: build it from keras layers into a keras.Model"
        )
    return value


def run_model(model, x, name, width=INPUT_DIM):
    """Return the model's output for x as numpy (its Dense layers rebuilt), checking one row of `width` finite values per image."""
    if model.unsupported:
        raise Failed(
            f"{name} has a {model.unsupported[0]} layer, which the lab's checks cannot run: the lab's autoencoders "
            "are built from Dense layers only"
        )
    rebuilt = model.rebuilt()
    if rebuilt is None or rebuilt.input_shape[-1] != INPUT_DIM or model.input_shape not in (None, (INPUT_DIM,)):
        raise Failed(
            f"{name} cannot take rows of {INPUT_DIM} pixels: its input must take one flat row of {INPUT_DIM} values "
            "per image, and each Dense layer the output of the one before"
        )
    out = np.asarray(
        keras.ops.convert_to_numpy(rebuilt(np.asarray(x, dtype="float32"), training=False)), dtype="float64"
    )
    if out.shape != (len(x), width):
        raise Failed(f"{name} turns {len(x)} images into an output of shape {out.shape}; expected ({len(x)}, {width})")
    if not np.isfinite(out).all():
        raise Failed(f"{name} outputs NaN or infinite values: build it again and train it again")
    return out


def same_rows(a, b, atol=1e-3):
    """Whether two arrays have the same shape and values (up to float rounding, relative for large values)."""
    return a.shape == b.shape and bool(np.allclose(a, b, atol=atol, rtol=1e-5))


def sample_rows(x):
    """The first SAMPLE rows as float32."""
    return np.asarray(x[:SAMPLE], dtype="float32")


@functools.lru_cache(maxsize=4)
def reference_images(dataset, factor=NOISE_FACTOR, clipped=True):
    """(clean, noisy): the dataset's first SAMPLE test images, loaded here, with fresh noise (REFERENCE_SEED)."""
    (_, _), (test_images, _) = helpers.load_dataset(dataset)
    clean = helpers.prepare_images(test_images[:SAMPLE])
    noisy = helpers.add_noise(clean, factor, np.random.default_rng(REFERENCE_SEED), clip=clipped)
    for images in (clean, noisy):
        images.setflags(write=False)  # cached for every later judgement (a grader worker judges many submissions)
    return clean, noisy


def reference(ns, factor=NOISE_FACTOR, clipped=True):
    """The images models are judged on, from the dataset the notebook chose (DATASET) or Fashion-MNIST."""
    dataset = ns.get("DATASET")
    return reference_images(dataset if dataset in helpers.KERAS_LOADERS else "fashion_mnist", factor, clipped)


def student_noise(ns):
    """(factor, clipped) of the Gaussian noise in the student's own noisy sets (factor to 0.05, within 0.1-1.0).

    Read from x_test_noisy, else x_train_noisy; (NOISE_FACTOR, True) when neither is clean plus
    Gaussian noise of factor 0.05 or more. A model is judged on fresh noise of the kind it was trained on, so a mistake in
    the noise costs the noisy_data task only.
    """
    for clean_name, noisy_name in (("x_test", "x_test_noisy"), ("x_train", "x_train_noisy")):
        try:
            clean = pixel_rows(ns[clean_name], clean_name)[:SAMPLE].astype("float64")
            noisy = as_array(ns[noisy_name], noisy_name).astype("float64")
        except (KeyError, Failed):
            continue
        noisy = noisy[:SAMPLE] if noisy.ndim else noisy  # a scalar has no rows
        if clean.shape != noisy.shape or not np.isfinite(noisy).all():
            continue
        kind = helpers.noise_kind(clean, noisy)
        if kind is not None and kind[0] >= 0.05:  # weaker noise cannot show what a DAE learned
            return float(np.clip(round(kind[0] * 20) / 20, 0.1, 1.0)), kind[1]
    return NOISE_FACTOR, True


# ---------------------------------------------------------------- models


def flat_layers(model):
    """All layers of a model in order, looking inside nested models (Sequential, Functional or subclassed)."""
    layers = []
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.Model) or (hasattr(layer, "layers") and layer is not model):
            layers.extend(flat_layers(layer))
        else:
            layers.append(layer)
    return layers


def activation_name(function):
    """The name of an activation function, e.g. 'relu'."""
    return getattr(function, "__name__", type(function).__name__).lower()


def dense_steps(model):
    """[(units, activation)] for each Dense layer of a ModelInfo, a following Activation/ReLU layer folded in."""
    return [(units, activation) for units, activation, *_ in model.dense]


def shares_layers(a, b):
    """Whether models a and b (ModelInfo) share a Dense layer (and so its weights)."""
    return bool({step[4] for step in a.dense} & {step[4] for step in b.dense})


def check_architecture(model, name):
    """Raise Failed unless model is 784 -> 32 (relu) -> 784 (sigmoid) with 50,992 weights."""
    probe = np.random.default_rng(0).uniform(0, 1, (4, INPUT_DIM))
    run_model(model, probe, name)  # builds an unbuilt model and checks the input and output sizes
    steps = dense_steps(model)
    if len(steps) < 2:
        raise Failed(
            f"{name} has {len(steps)} Dense layer(s): an autoencoder needs two, a {CODE_SIZE}-unit relu code layer "
            f"(the encoder) and a {INPUT_DIM}-unit sigmoid output layer (the decoder)"
        )
    code_units, code_activation = min(steps[:-1], key=lambda step: step[0])
    out_units, out_activation = steps[-1]
    if code_units != CODE_SIZE:
        raise Failed(
            f"{name}'s code layer has {code_units} units: the code size must be {CODE_SIZE}, the bottleneck that "
            f"forces the model to compress each {INPUT_DIM}-pixel image"
        )
    if code_activation != "relu":
        raise Failed(
            f"{name}'s code layer uses the {code_activation} activation: the code layer uses relu, "
            "as the card says (use activation='relu')"
        )
    if out_activation != "sigmoid":
        raise Failed(
            f"{name}'s output layer uses the {out_activation} activation: outputs must be pixels in [0, 1], "
            "which binary cross-entropy needs, and only sigmoid gives that (use activation='sigmoid')"
        )
    if out_units != INPUT_DIM:
        raise Failed(f"{name}'s output layer has {out_units} units: it needs {INPUT_DIM}, one per pixel of the image")
    params = model.params
    if params != PARAMS:
        raise Failed(
            f"{name} has {params:,} weights, expected {PARAMS:,}: the lab's autoencoder is just two Dense layers, "
            f"{INPUT_DIM} -> {CODE_SIZE} (relu) -> {INPUT_DIM} (sigmoid)"
        )


def loss_name(loss):
    """A compiled loss (string, function or Loss object) as a lower-case name."""
    if isinstance(loss, str):
        return loss.lower()
    if isinstance(loss, keras.losses.BinaryCrossentropy):
        return "binary_crossentropy"
    return str(getattr(loss, "name", None) or getattr(loss, "__name__", type(loss).__name__)).lower()


def check_compiled(model, name):
    """Raise Failed unless model was compiled with adam and binary cross-entropy."""
    if not model.compiled:
        raise Failed(
            f"{name} is not compiled: a model must be compiled, with its optimizer (adam) and loss "
            "(binary cross-entropy), before it can be trained"
        )
    if model.loss not in ("binary_crossentropy", "bce"):
        raise Failed(
            f"{name} is compiled with the loss {model.loss}: the card's loss is binary cross-entropy, which treats "
            "each pixel in [0, 1] as a probability (use loss='binary_crossentropy')"
        )
    if not model.adam:
        raise Failed(f"{name} is compiled with {model.optimizer}: the card's optimizer is adam (use optimizer='adam')")


def check_fitted(model, name, how):
    """Raise Failed if the compiled model has not been trained."""
    if model.steps == 0:
        raise Failed(
            f"{name} was never fitted (its optimizer has taken no steps; compiling again after fitting gives it a "
            f"new optimizer, so compile first, then fit): train it {how}"
        )


# ---------------------------------------------------------------- noise


def shape_of(value):
    """The array shape of value, or None when it has none."""
    try:
        return np.shape(value)
    except Exception:
        return None


def built_from(value, name, noisy):
    """Whether noisy rows look like the rows of value plus clipped Gaussian noise."""
    try:
        clean = pixel_rows(value, name)
    except Failed:
        return False
    if len(clean) < len(noisy):
        return False
    return helpers.fitted_noise(clean[: len(noisy)].astype("float64"), noisy)[1]


def rows_match(clean, noisy):
    """Whether each noisy row is the clean row of the same index (better correlated with it than with the next one)."""

    def correlation(a, b):
        """Mean correlation of the rows of a with the rows of b."""
        a, b = a - a.mean(axis=1, keepdims=True), b - b.mean(axis=1, keepdims=True)
        norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        return float(np.mean(np.sum(a * b, axis=1) / np.maximum(norms, 1e-12)))

    return correlation(noisy, clean) > correlation(noisy, np.roll(clean, 1, axis=0)) + 0.05


def faint(clean):
    """Whether images are too faint for noise of the lab's strength to leave them recognisable (scaled twice, say)."""
    return float(np.std(clean)) < NOISE_FACTOR / 20


def noise_correlation(c1, n1, c2, n2):
    """The correlation of two sets' noise (noisy - clean) over the pixels neither clipped, or 0 when too few are left."""
    k = min(len(c1), len(c2))
    d1, d2 = n1[:k] - c1[:k], n2[:k] - c2[:k]
    free = (n1[:k] > 0) & (n1[:k] < 1) & (n2[:k] > 0) & (n2[:k] < 1)
    if free.sum() < 1000 or np.std(d1[free]) == 0 or np.std(d2[free]) == 0:
        return 0.0
    return float(np.corrcoef(d1[free], d2[free])[0, 1])


def noise_mistake(name, clean_name, c, n):
    """What is wrong with n (clipped to [0, 1]) as c plus clipped noise of factor NOISE_FACTOR, or "" when nothing is.

    Judged on the pixels whose clean value lies in [0, 1], so that noise added to a clean set of another scale (the
    data task's mistake) is judged as the noise it is.
    """
    zeros = n[c == 0]
    enough = zeros.size >= 2000
    if enough and not helpers.centred(zeros):
        return (
            f"{1 - np.mean(zeros <= 0):.0%} of its noise is positive, where half should be: Gaussian noise has "
            "mean 0, so it darkens pixels as often as it brightens them (rng.random and rng.uniform(0, 1) give "
            "positive numbers only)"
        )
    inside = (c >= 0) & (c <= 1)
    factor, matches = helpers.fitted_noise(c[inside], n[inside])
    if enough and not helpers.normal_shape(zeros, factor):
        return (
            "its noise is not normally distributed: the card's noise is Gaussian, N(0, 1) times NOISE_FACTOR "
            "(rng.standard_normal or rng.normal), not uniform (rng.uniform, rng.random)"
        )
    if matches and abs(factor - NOISE_FACTOR) <= 0.03:
        return ""
    if matches and abs(factor - NOISE_FACTOR**2) <= 0.03:
        return (
            f"{name} looks like noise of factor {factor:.2f} = {NOISE_FACTOR} x {NOISE_FACTOR}: NOISE_FACTOR was "
            "applied twice (a normal distribution of scale NOISE_FACTOR, then times NOISE_FACTOR again); the "
            "noise's standard deviation is NOISE_FACTOR, once"
        )
    if matches:
        return (
            f"{name} looks like noise of factor {factor:.2f}, not {NOISE_FACTOR}: the noise's standard deviation "
            f"is NOISE_FACTOR ({NOISE_FACTOR}) times that of standard normal noise"
        )
    return (
        f"{name} does not look like {clean_name} plus Gaussian noise: each pixel gets its own draw of "
        f"NOISE_FACTOR * N(0, 1), and the sum is clipped to [0, 1]"
    )


def made_noisy(ns, clean_name, clean):
    """Whether the clean set itself holds noise: it differs from the given images scaled as noise would make it."""
    source = ns.get({"x_train": "train_images", "x_test": "test_images"}[clean_name])
    if not is_image_array(source) or len(source) != len(clean):
        return False
    k = min(SAMPLE, len(clean))
    scaled = source[:k].reshape(k, -1).astype("float64") / 255
    if scaled.shape != clean[:k].shape or same_rows(clean[:k].astype("float64"), scaled):
        return False
    return helpers.noise_kind(scaled, clean[:k].astype("float64")) is not None


def check_noise(ns, name, clean_name, other_name):
    """Raise Failed unless ns[name] is ns[clean_name] plus clipped Gaussian noise of factor NOISE_FACTOR.

    The noise is judged against the student's own clean set, whatever its scale (a mistake in it is the data
    task's): only rows of 784 numbers are needed.
    """
    clean = earlier_images(ns, clean_name, "data")
    other_shape = shape_of(ns.get(other_name))
    x = as_array(ns[name], name)
    if x.ndim == 2 and x.shape != clean.shape and x.shape == other_shape:
        raise Failed(
            f"{name} has the shape of {other_name}, {x.shape}: each noisy set is its own clean set plus noise, "
            f"so {name} is made from {clean_name}"
        )
    if x.shape != clean.shape:
        raise Failed(
            f"{name} has shape {x.shape} but {clean_name} has {clean.shape}: noise changes pixels, not the shape; "
            f"add it to {clean_name} itself"
        )
    if x.dtype.kind != "f" or not np.isfinite(x).all():
        pixel_rows(x, name)  # integers, NaN or infinity: its hint
    c, n = clean[:SAMPLE].astype("float64"), x[:SAMPLE].astype("float64")
    low, high = float(x.min()), float(x.max())
    scaled = float(c.max()) <= 1  # the data task's scaling, right or not, is not this task's business
    if high > 50 and scaled:  # far beyond what noise on [0, 1] images reaches
        raise Failed(
            f"{name}'s pixels go up to {high:.0f}: the noise was added to the 0-255 images; the noise is added to "
            f"{clean_name}, whose pixels are already scaled to [0, 1], then clipped"
        )
    if made_noisy(ns, clean_name, clean):
        raise Failed(
            f"{clean_name} itself holds noise now: the noise was added in place (+=, or np.clip with out=), which "
            f"changes {clean_name} too, and the DAE needs it clean as its targets; make {name} a new array and run "
            "the data cell again"
        )
    if np.array_equal(c, n):
        how = (
            ""
            if is_image_array(ns.get({"x_train": "train_images", "x_test": "test_images"}[clean_name]))
            else f" (or it was added in place, +=, which made {clean_name} noisy too)"
        )
        raise Failed(f"{name} equals {clean_name}: no noise was added{how}; the card's noise is NOISE_FACTOR * N(0, 1)")
    if 0 < high <= 1 / 255 + 1e-6 < float(c.max()):
        raise Failed(
            f"{name}'s pixels only reach {high:.4f} (1/255): the noise was added and clipped before dividing "
            f"by 255; add it to {clean_name}, already in [0, 1]"
        )
    spread = float(np.std(n - c))
    if spread < 0.01 and abs(spread * 255 - NOISE_FACTOR) < 0.25:
        raise Failed(
            f"{name} differs from {clean_name} by about {spread:.4f} a pixel, 255 times too little: the noise "
            f"was added to the 0-255 images before dividing by 255; add it to {clean_name}, already in [0, 1]"
        )
    unclipped = low < 0 or high > 1
    n = np.clip(n, 0, 1)
    if not (faint(c) or rows_match(c, n)):  # faint images (the data task's mistake) cannot be told apart by row
        if other_name in ns and built_from(ns[other_name], other_name, n):
            raise Failed(f"{name} was built from {other_name}: each noisy set is its own clean set plus noise")
        raise Failed(
            f"{name}'s rows are not {clean_name}'s images in order: row i of the noisy set must be image i made "
            "noisy (no shuffling or reordering), so that the DAE learns each noisy image's own clean version"
        )
    if noise_correlation(c[:-1], n[:-1], c[1:], n[1:]) > 0.5:
        raise Failed(
            f"every image of {name} has the same noise pattern: each pixel of each image gets its own random "
            "draw, so the noise has the shape of the whole set"
        )
    mistake = noise_mistake(name, clean_name, c, n)
    if unclipped:
        raise Failed(
            f"{name}'s pixels run from {low:.2f} to {high:.2f}: pixels must stay in [0, 1], so clip them back "
            "to [0, 1] after adding the noise (np.clip)" + (f"; also, once clipped, {mistake}" if mistake else "")
        )
    if mistake:
        raise Failed(mistake if mistake.startswith(name) else f"{name}: {mistake}")


def dae_direction(dae, clean, noisy, factor=NOISE_FACTOR, clipped=True, history=None, error=Suspect):
    """Raise error (Suspect) if the DAE was trained towards noisy targets or from clean inputs; else return its BCE.

    Measured on small and full runs: a model trained noisy -> clean maps noisy images close to the
    clean ones (mean squared error to clean at most 1.3 times that to E[noisy | clean]; at most 0.9
    once trained for a few epochs), and maps clean inputs no better than noisy ones (BCE gap <= -0.01).
    One trained towards noisy targets outputs the grey, noise-averaged image E[noisy | clean]
    (ratio >= 3.5), and its training loss is near its loss against noisy targets; one barely trained
    outputs grey images too (ratio up to 2.7), but its training loss does not say noisy targets.
    One trained clean -> clean restores clean inputs much better than noisy ones (BCE gap >= +0.06).
    One trained clean -> noisy (inputs and targets swapped) shows both: ratio 3.6 and gap +0.09 in the corpus.
    Outputs are clipped to [0, 1] first, as binary cross-entropy clips them (a relu or linear output layer).
    """
    from_noisy = np.clip(run_model(dae, noisy, "dae"), 0, 1)
    from_clean = np.clip(run_model(dae, clean, "dae"), 0, 1)
    expected = helpers.noisy_mean(clean, factor) if clipped else clean
    ratio = np.mean((from_noisy - clean) ** 2) / max(np.mean((from_noisy - expected) ** 2), 1e-12)
    loss = helpers.mean_bce(clean, from_noisy)
    trained = history.history["loss"][-1] if history is not None and len(history.history["loss"]) else None
    towards_noisy = trained is None or abs(trained - helpers.mean_bce(noisy, from_noisy)) < abs(trained - loss)
    noisy_targets = ratio > NOISY_TARGET_RATIO and towards_noisy and loss < 0.6
    clean_inputs = loss - helpers.mean_bce(clean, from_clean) > CLEAN_INPUT_GAP
    if noisy_targets and clean_inputs:
        raise error(
            "dae turns clean images into noisy-looking ones: its inputs and targets are swapped. A denoising "
            "autoencoder is shown a noisy image as its input and must learn to give back the clean image as its "
            "target"
        )
    if noisy_targets:
        raise error(
            "dae learned to output noisy images: its targets must be the clean images. A denoising autoencoder "
            "must be shown what each image looked like without the noise, or it learns to reproduce the noise"
        )
    if clean_inputs:
        raise error(
            "dae restores clean images far better than noisy ones, so it was trained on clean inputs: its inputs "
            "must be the noisy images, the ones it will have to clean up"
        )
    return loss


def under_trained(dae, history, loss):
    """The hint for a DAE whose test loss is too high: how much it trained (History.params, the optimizer's steps)."""
    params = history.params if history is not None else {}
    epochs, batches = params.get("epochs"), params.get("steps")
    done = (f"{epochs} epoch(s) of {batches} batches, " if epochs and batches else "") + f"{dae.steps:,} steps in all"
    if dae.steps < LAB_STEPS / 2:
        return (
            f"dae's test BCE is {loss:.2f} (about 0.31 expected): it trained too little ({done}; the lab trains "
            f"30 epochs of all 60,000 images in batches of 128, {LAB_STEPS:,} steps): train it on the whole "
            "noisy training set for the card's 30 epochs of batch 128"
        )
    return (
        f"dae's test BCE is {loss:.2f} (about 0.31 expected) after {done}: it learned too little from its "
        "training; the card's optimizer is adam at its default learning rate (0.001)"
    )


def student_pairs(ns, clean_name, noisy_name, limit=10000):
    """(clean, noisy) first rows of the student's arrays as float32 when both are usable rows of the same shape, else None."""
    try:
        clean = pixel_rows(ns[clean_name], clean_name)[:limit]
        noisy = as_array(ns[noisy_name], noisy_name)
    except (KeyError, Failed):
        return None
    noisy = noisy[:limit] if noisy.ndim else noisy  # a scalar has no rows
    if noisy.shape != clean.shape or not np.isfinite(noisy).all():
        return None
    return np.asarray(clean, "float32"), np.asarray(noisy, "float32")


def trained_on_test_set(ns, dae, factor, clipped):
    """Raise Suspect if dae restores x_test_noisy's own noise clearly better than fresh noise on the same images.

    A model remembers a little of the exact noisy images it was trained on: measured on Fashion-MNIST,
    its loss on 10,000 of them is 0.0007 (1 epoch), 0.003 (5 epochs) and 0.0036 (20 epochs) lower than
    on the same images with fresh noise, while for noisy images it never saw the difference is chance,
    within about 0.0005 (TEST_SET_MEMORY is twice that). x_train_noisy, which it should have been
    trained on, is the yardstick: the test set must be remembered more than twice as well.
    """
    memory = {}
    for clean_name, noisy_name, seed in (("x_test", "x_test_noisy", 1), ("x_train", "x_train_noisy", 2)):
        pair = student_pairs(ns, clean_name, noisy_name)
        if pair is None:
            continue
        clean, noisy = pair
        fresh = helpers.add_noise(clean, factor, np.random.default_rng(REFERENCE_SEED + seed), clip=clipped)
        memory[noisy_name] = helpers.mean_bce(clean, run_model(dae, fresh, "dae")) - helpers.mean_bce(
            clean, run_model(dae, noisy, "dae")
        )
    test = memory.get("x_test_noisy", 0.0)
    if test > max(2 * memory.get("x_train_noisy", 0.0), TEST_SET_MEMORY):
        raise Suspect(  # a model of the wrong architecture can show this by chance: then dae_model blocks it
            "dae was trained on the test set (it restores x_test_noisy much better than fresh noisy copies "
            "of the same images): it must learn from the training set only; the test set measures how it does on "
            "images it never saw, for validation and predictions"
        )


def validated_on_clean(ns, dae, history):
    """Raise Failed if history's last val_loss is dae's loss on x_test -> x_test rather than on x_test_noisy -> x_test."""
    values = history.history.get("val_loss")
    pair = student_pairs(ns, "x_test", "x_test_noisy")
    if values is None or not len(values) or pair is None:
        return
    clean, noisy = pair
    last = float(values[-1])
    right = helpers.mean_bce(clean, run_model(dae, noisy, "dae"))
    on_clean = helpers.mean_bce(clean, run_model(dae, clean, "dae"))
    if abs(last - on_clean) < VAL_LOSS_TOLERANCE < abs(last - right) / 3:
        raise Failed(
            f"dae was validated on clean images (its last val_loss, {last:.4f}, is its loss on x_test -> "
            "x_test): validation measures the task the DAE learns, so its inputs are the noisy test images and "
            "its targets the clean ones"
        )


# ---------------------------------------------------------------- figures


def figure_rows(fig, name):
    """The flattened images a figure (FigureInfo) shows, grouped into its rows of axes, top row first."""
    if not isinstance(fig, FigureInfo):
        raise Failed(f"{name} should be a matplotlib Figure, got {type_name(fig)}: helpers.plot_rows returns one")
    if not fig.rows:
        raise Failed(f"{name} shows no images: draw them with helpers.plot_rows (imshow in each axes)")
    return [list(row) for row in fig.rows]


def candidate_arrays(ns, names):
    """{name: (rows, row sums)} for each variable that is an array of flattened images."""
    found = {}
    for name in names:
        x = ns.get(name)
        if isinstance(x, np.ndarray) and x.ndim == 2 and x.shape[1] == INPUT_DIM and x.dtype.kind in "biuf":
            found[name] = (x, np.sum(x, axis=1, dtype="float64"))
    return found


def identify(image, candidates):
    """{array name: set of its rows} for every array that holds the image (two when arrays are equal), or {}."""
    if image.size != INPUT_DIM or not np.isfinite(image).all():
        return {}
    total = float(np.sum(image))
    found = {}
    for name, (rows, sums) in candidates.items():
        near = np.flatnonzero(np.abs(sums - total) < INPUT_DIM * 1e-4)
        if near.size:
            exact = np.max(np.abs(rows[near].astype("float64") - image), axis=1) < 1e-4
            if exact.any():
                found[name] = set(near[exact].tolist())
    return found


def row_sources(fig, name, ns, names):
    """For each row of the figure: (the arrays that hold all its images, for each image the rows it may be).

    An array equal to another (a noisy set made in place is its clean set) holds the same images: both are named.
    """
    candidates = candidate_arrays(ns, names)
    sources = []
    for row in figure_rows(fig, name):
        found = [identify(image, candidates) for image in row]
        arrays = [array for array in candidates if all(array in each for each in found)]
        indices = [set().union(*each.values()) if each else set() for each in found]
        sources.append((tuple(arrays), indices))
    return sources


def shown(sources):
    """Each row's array as a word for hints: its name, or 'images from no single array'."""
    return [arrays[0] if arrays else "images from no single array" for arrays, _ in sources]


def rows_in_order(sources, expected):
    """Whether the figure's rows show the expected arrays, one row each, top to bottom."""
    return len(sources) == len(expected) and all(name in arrays for (arrays, _), name in zip(sources, expected))


def check_rows(sources, fig_name, expected, why):
    """Raise Failed unless the figure's rows show the expected arrays in order, the same images in every row."""
    owner = fig_name + ("'" if fig_name.endswith("s") else "'s")  # fig_results' rows, fig_autoencoder's rows
    if not rows_in_order(sources, expected):
        rows = shown(sources)
        if sorted(rows) == sorted(expected):
            raise Failed(
                f"{owner} rows are in another order ({', '.join(rows)} from the top): the card asks for "
                f"{', '.join(expected)} from top to bottom, {why}"
            )
        raise Failed(
            f"{owner} rows show {', '.join(rows)}: it needs one row each of {', '.join(expected)}, top to bottom, {why}"
        )
    if not same_images(sources):
        raise Failed(
            f"{owner} rows show different images: each column follows one test image through every row, so "
            "show the same images, in the same order, in every row"
        )


def same_images(sources):
    """Whether every row shows the same images: at each position, some row index all rows' images may be."""
    lengths = {len(indices) for _, indices in sources}
    if len(lengths) != 1:
        return False
    return all(set.intersection(*column) for column in zip(*(indices for _, indices in sources)))


# ---------------------------------------------------------------- the tasks


def is_image_array(value):
    """Whether value is a non-empty numpy array of images (integers or floats), such as train_images."""
    return isinstance(value, np.ndarray) and value.ndim >= 2 and len(value) > 0 and value.dtype.kind in "fiu"


def check_data(ns):
    """x_train and x_test: the training and test images flattened to rows of 784 floats in [0, 1]."""
    require(ns, *DEFINES["data"])
    pairs = (("x_train", "train_images", "test_images"), ("x_test", "test_images", "train_images"))
    for name, source, other in pairs:
        x = pixel_rows(ns[name], name)
        if x.max() < 0.5:
            raise Failed(
                f"{name}'s pixels only reach {x.max():.3g}: the images were divided by 255 more than once; "
                "divide the 0-255 images by 255 once"
            )
        images = {key: ns[key] for key in (source, other) if is_image_array(ns.get(key))}
        expected = images.get(source)
        if expected is None:
            continue  # the given images were deleted or changed: check what we can without them
        k = min(100, len(x), len(expected))
        as_rows = lambda images, k=k: images[:k].reshape(k, -1).astype("float64") / 255
        if len(x) != len(expected) or not same_rows(x[:k], as_rows(expected)):
            alt = images.get(other)
            if alt is not None and len(x) == len(alt) and same_rows(x[:k], as_rows(alt)):
                raise Failed(f"{name} holds the images of {other}: {name} is made from {source}")
            raise Failed(
                f"{name} is not {source} scaled to [0, 1]: it holds all {len(expected)} images of {source}, in "
                "their order, each flattened and divided by 255"
            )
    return "x_train and x_test are flattened, scaled to [0, 1] and complete"


def scaled_like_the_lab(ns):
    """Whether x_train and x_test are rows of pixels in [0, 1] that reach 1, like the images models are judged on."""
    try:
        return all(pixel_rows(ns[name], name).max() >= 0.5 for name in ("x_train", "x_test"))
    except (KeyError, Failed):
        return False


def check_regular_autoencoder(ns):
    """autoencoder and encoder: 784 -> 32 (relu) -> 784 (sigmoid), adam + BCE, trained clean -> clean.

    Its reconstructions are judged on the lab's test images when the student's data has their scale; trained on
    data of another scale (the data task's mistake), only how it was built, compiled and fitted can be judged:
    measured in the corpus, an autoencoder trained on images divided by 255 twice reconstructs them worse than
    their mean image does, whichever yardstick (the lab's images, or the student's own relative to their mean).
    """
    require(ns, *DEFINES["regular_autoencoder"])
    x, _ = reference(ns)
    autoencoder = as_model(ns["autoencoder"], "autoencoder")
    encoder = as_model(ns["encoder"], "encoder")
    check_architecture(autoencoder, "autoencoder")
    codes = run_model(encoder, x, "encoder", width=CODE_SIZE)
    if not shares_layers(encoder, autoencoder):
        raise Failed(
            "encoder is not the first half of autoencoder: the encoder is the same input and code layer as the "
            "autoencoder (the same layer objects, so it shares their trained weights), as a model of its own"
        )
    if codes.min() < 0:
        raise Failed("encoder's codes have negative values: its code layer should end in relu")
    check_compiled(autoencoder, "autoencoder")
    check_fitted(autoencoder, "autoencoder", "to reconstruct the training images (inputs and targets both x_train)")
    if not scaled_like_the_lab(ns):
        return "the autoencoder is built, compiled and trained (its reconstructions are judged once data passes)"
    loss = helpers.mean_bce(x, run_model(autoencoder, x, "autoencoder"))
    if loss > MAX_BCE:
        raise Suspect(
            f"autoencoder reconstructs the test images poorly (BCE {loss:.2f}, about 0.29 expected): it must learn "
            "to give back its own input, so inputs and targets are both the clean training images, for the card's "
            "10 epochs"
        )
    return f"the autoencoder is trained (test BCE {loss:.3f})"


def check_reconstructions(ns):
    """codes, reconstructions and fig_autoencoder from the trained autoencoder on x_test (whatever x_test holds)."""
    require(ns, *DEFINES["reconstructions"])
    x_test = earlier_images(ns, "x_test", "data")
    autoencoder = earlier_model(ns, "autoencoder", "regular_autoencoder")
    encoder = earlier_model(ns, "encoder", "regular_autoencoder", width=CODE_SIZE)
    x = sample_rows(x_test)
    x_train = ns.get("x_train")
    for name, model, width in (("codes", encoder, CODE_SIZE), ("reconstructions", autoencoder, INPUT_DIM)):
        value = as_array(ns[name], name)
        maker = "encoder" if model is encoder else "autoencoder"
        what = "32-number code" if maker == "encoder" else "reconstruction"
        if value.shape != (len(x_test), width):
            raise Failed(
                f"{name} has shape {value.shape}, expected {(len(x_test), width)}: one {what} per test image, "
                f"what {maker} makes of each image of x_test"
            )
        got = value[: len(x)].astype("float64")
        if same_rows(got, run_model(model, x, maker, width)):
            continue
        if is_image_array(x_train) and x_train.ndim == 2 and x_train.shape[1] == INPUT_DIM:
            if same_rows(got, run_model(model, sample_rows(x_train), maker, width)):
                raise Failed(
                    f"{name} was made from the training images: the card asks what {maker} makes of the test "
                    "images, x_test, which it never trained on"
                )
        raise Failed(
            f"{name} is not what {maker} gives for x_test now: {maker} was trained, or x_test changed (noise added "
            "to it in place, say), after this cell ran; run its cell again once both are final"
        )
    sources = row_sources(
        ns["fig_autoencoder"], "fig_autoencoder", ns, ["x_test", "reconstructions", "x_test_noisy", "x_train"]
    )
    check_rows(sources, "fig_autoencoder", ["x_test", "reconstructions"], "each original above its reconstruction")
    return "codes, reconstructions and the figure come from the trained autoencoder"


def check_noisy_data(ns):
    """x_train_noisy and x_test_noisy: each clean set plus NOISE_FACTOR * N(0, 1) noise of its own, clipped to [0, 1]."""
    require(ns, *DEFINES["noisy_data"])
    check_noise(ns, "x_train_noisy", "x_train", "x_test")
    check_noise(ns, "x_test_noisy", "x_test", "x_train")
    sets = [
        (earlier_images(ns, clean, "data")[:SAMPLE].astype("float64"), as_array(ns[noisy], noisy)[:SAMPLE])
        for clean, noisy in (("x_train", "x_train_noisy"), ("x_test", "x_test_noisy"))
    ]
    if noise_correlation(sets[1][0], np.clip(sets[1][1], 0, 1), sets[0][0], np.clip(sets[0][1], 0, 1)) > 0.5:
        raise Failed(
            "x_test_noisy has the same noise as x_train_noisy, pixel for pixel (the generator was seeded again, "
            "or one noise array was used twice): the test images must carry noise the DAE never saw in training, "
            "so draw each set's noise from the one generator, one after the other"
        )
    return f"both noisy sets are their clean set plus clipped noise of factor {NOISE_FACTOR:g}"


def check_dae_model(ns):
    """dae: a new 784 -> 32 (relu) -> 784 (sigmoid) model with 50,992 weights."""
    require(ns, *DEFINES["dae_model"])
    dae = as_model(ns["dae"], "dae")
    autoencoder = ns.get("autoencoder")
    if isinstance(autoencoder, ModelInfo) and (dae.ident == autoencoder.ident or shares_layers(dae, autoencoder)):
        raise Failed(
            "dae is (or shares layers with) the regular autoencoder: training it would change the autoencoder too; "
            "build a new model for the DAE, with layers of its own"
        )
    check_architecture(dae, "dae")
    return f"dae has the lab's architecture ({PARAMS:,} weights)"


def earlier_model(ns, name, task, width=INPUT_DIM):
    """Return the model `name` from an earlier task, runnable on rows of 784 pixels, or raise Blocked naming that task."""
    try:
        model = as_model(prerequisite(ns, name, task), name)
        run_model(model, np.random.default_rng(0).uniform(0, 1, (4, INPUT_DIM)), name, width)
    except Failed as err:
        raise Blocked(task, str(err)) from None
    return model


def own_pairs(ns):
    """The student's own (clean, noisy) test images (else training images) when the lab's images cannot stand in.

    None when the lab's reference images, with fresh noise of the student's kind, judge the DAE: the student's data
    has the lab's scale and its noise is strong enough to learn from. Otherwise the DAE is judged on what it was
    trained on: data of another scale (the data task's mistake), or noisy sets (nearly) equal to their clean sets
    (the noisy_data task's: no noise, noise added before scaling, or added in place).
    Raises Blocked when the student has no usable pair either: then nothing is left to judge the DAE on.
    """
    pairs = []
    for clean_name, noisy_name in (("x_test", "x_test_noisy"), ("x_train", "x_train_noisy")):
        clean, noisy = ns.get(clean_name), ns.get(noisy_name)
        if not all(is_image_array(v) and v.ndim == 2 and v.shape[1] == INPUT_DIM for v in (clean, noisy)):
            continue
        if clean.shape == noisy.shape and np.isfinite(clean[:SAMPLE]).all() and np.isfinite(noisy[:SAMPLE]).all():
            pairs.append((np.asarray(clean[:SAMPLE], "float64"), np.asarray(noisy[:SAMPLE], "float64")))
    if scaled_like_the_lab(ns) and not (pairs and np.std(pairs[0][1] - pairs[0][0]) < 0.05):
        return None
    if not pairs:
        task = "noisy_data" if scaled_like_the_lab(ns) else "data"
        result = judge(task, ns)
        raise Blocked(task, result.message if result.status != "passed" else "its arrays cannot be read")
    return pairs[0]


def check_dae_training(ns):
    """dae compiled with adam + BCE and trained noisy -> clean on the training set, validated; history is its History."""
    dae = ns.get("dae")
    if "history" not in ns:  # DEFINES["dae_training"]
        if isinstance(dae, ModelInfo) and dae.steps > 0:
            raise Failed("dae was trained but its History was not kept: keep what fit returns, as history")
        raise NotAttempted("define history")
    dae = earlier_model(ns, "dae", "dae_model")
    check_compiled(dae, "dae")
    check_fitted(dae, "dae", "on the noisy training images for the card's epochs and batch size")
    history = ns["history"]
    if not isinstance(history, HistoryInfo) or "loss" not in history.history:
        raise Failed(
            f"history should be the History that fit returns, got {type_name(history)}: keep what fit returns, "
            "as history"
        )
    if history.model != dae.ident:
        raise Failed("history comes from another model's training: keep the History of dae's own training")
    own = own_pairs(ns)
    if own is None:
        factor, clipped = student_noise(ns)
        clean, noisy = reference(ns, factor, clipped)
        loss = dae_direction(dae, clean, noisy, factor, clipped, history)
        validated_on_clean(ns, dae, history)
        trained_on_test_set(ns, dae, factor, clipped)
        # a non-sigmoid output is dae_model's mistake, and binary cross-entropy cannot train it well: no bar then
        sigmoid = bool(dae.dense) and dae.dense[-1][1] == "sigmoid"
        if sigmoid and loss > (MAX_BCE if lab_architecture(dae) else MAX_BCE_OTHER):
            raise Suspect(under_trained(dae, history, loss))
        done = f"dae is trained noisy -> clean (test BCE {loss:.3f})" + (
            ""
            if sigmoid
            else f", a loss limited by its {dae.dense[-1][1] if dae.dense else 'missing'} output layer (the dae_model task's mistake)"
        )
    else:
        clean, noisy = own
        if clean.min() >= 0 and clean.max() <= 1 and np.std(noisy - clean) >= 0.05:
            kind = helpers.noise_kind(clean, noisy)
            factor, clipped = kind if kind is not None and kind[0] >= 0.05 else (NOISE_FACTOR, True)
            dae_direction(dae, clean, np.clip(noisy, 0, 1) if clipped else noisy, factor, clipped, history, Failed)
        done = "dae is trained (judged on your own arrays: the data or noise it learned from is not yet right)"
    if "val_loss" not in history.history:
        raise Failed(
            "history has no val_loss: the card asks to validate on the noisy test images (inputs) and the clean "
            "ones (targets) after each epoch, to see how the DAE does on images it never trained on"
        )
    return done


def lab_architecture(model):
    """Whether a model (ModelInfo) has the lab's architecture, 784 -> 32 (relu) -> 784 (sigmoid)."""
    try:
        check_architecture(model, "model")
    except Failed:
        return False
    return True


def check_predictions(ns):
    """x_test_denoised: the trained dae's output for x_test_noisy (whatever x_test_noisy holds)."""
    require(ns, *DEFINES["predictions"])
    dae = earlier_model(ns, "dae", "dae_model")
    x_test_noisy = earlier_images(ns, "x_test_noisy", "noisy_data")
    denoised = as_array(ns["x_test_denoised"], "x_test_denoised")
    got = (denoised[:SAMPLE] if denoised.ndim else denoised).astype("float64")  # a scalar has no rows
    if denoised.shape == x_test_noisy.shape and same_rows(got, run_model(dae, sample_rows(x_test_noisy), "dae")):
        return "x_test_denoised is dae's output for x_test_noisy"
    for name in ("x_train_noisy", "x_train"):
        x = ns.get(name)
        if (
            usable_rows(x)
            and got.shape == sample_rows(x).shape
            and same_rows(got, run_model(dae, sample_rows(x), "dae"))
        ):
            raise Failed(
                f"x_test_denoised was predicted from the training images ({name}): the DAE is judged on what it "
                "makes of noisy test images it never trained on, x_test_noisy"
            )
    if denoised.shape != x_test_noisy.shape:
        raise Failed(
            f"x_test_denoised has shape {denoised.shape}, expected {x_test_noisy.shape}: one denoised row for each "
            "noisy test image"
        )
    if same_rows(got, sample_rows(x_test_noisy).astype("float64"), atol=1e-6):
        raise Failed("x_test_denoised is the noisy input itself: it must be what dae outputs for the noisy test images")
    x_test = ns.get("x_test")
    sources = [("x_test_noisy", x_test_noisy)]
    if usable_rows(x_test):
        if same_rows(got, run_model(dae, sample_rows(x_test), "dae")):
            raise Failed(
                "x_test_denoised was predicted from the clean x_test: a denoiser is shown noisy images, so "
                "predict from the noisy test images"
            )
        sources.append(("x_test", x_test))
    autoencoder = ns.get("autoencoder")
    if isinstance(autoencoder, ModelInfo):
        for source, x in sources:
            try:
                made_by_autoencoder = same_rows(got, run_model(autoencoder, sample_rows(x), "autoencoder"))
            except Failed:
                break
            if made_by_autoencoder:
                raise Failed(
                    f"x_test_denoised was made by the regular autoencoder from {source}: the denoising "
                    "autoencoder, dae, makes these predictions"
                )
    raise Failed(
        "x_test_denoised is not dae's output for x_test_noisy: run its cell again after training (predictions made "
        "before the last training are stale)"
    )


def usable_rows(value):
    """Whether value is a numpy array of rows of 784 numbers, which a model can run on."""
    return is_image_array(value) and value.ndim == 2 and value.shape[1] == INPUT_DIM


def check_view_results(ns):
    """fig_clean shows clean test images; fig_results shows the same images noisy, denoised and clean, in that order."""
    require(ns, *DEFINES["view_results"])
    names = ["x_test", "x_test_noisy", "x_test_denoised", "x_train", "x_train_noisy", "reconstructions"]
    earlier_images(ns, "x_test", "data")
    clean_sources = row_sources(ns["fig_clean"], "fig_clean", ns, names)
    if any("x_test" not in arrays for arrays, _ in clean_sources):
        raise Failed(
            f"fig_clean shows {', '.join(shown(clean_sources))}: it should show clean test images (x_test), the "
            "ones the DAE will be asked to restore"
        )
    earlier_images(ns, "x_test_noisy", "noisy_data")
    earlier_images(ns, "x_test_denoised", "predictions")
    sources = row_sources(ns["fig_results"], "fig_results", ns, names)
    check_rows(
        sources,
        "fig_results",
        ["x_test_noisy", "x_test_denoised", "x_test"],
        "so that each column reads: what the DAE was given, what it made of it, what it should have made",
    )
    return "both figures show the right arrays"


def check_loss_curve(ns):
    """fig_loss: the DAE's training and validation loss per epoch, from history."""
    require(ns, *DEFINES["loss_curve"])
    history = prerequisite(ns, "history", "dae_training")
    fig = ns["fig_loss"]
    if not isinstance(fig, FigureInfo):
        raise Failed(f"fig_loss should be a matplotlib Figure, got {type_name(fig)}: helpers.plot_history returns one")
    losses = history.history if isinstance(history, HistoryInfo) else None
    if not losses or "loss" not in losses:
        raise Blocked("dae_training", "history is not the History of dae's training")
    curves = fig.lines

    def shows(values):
        """Whether one of the figure's lines plots these values."""
        values = np.asarray(values, dtype="float64")
        return any(curve.shape == values.shape and np.allclose(curve, values) for curve in curves)

    for key, curve in (("loss", "training"), ("val_loss", "validation")):
        if key in losses and not shows(losses[key]):
            other = ns.get("ae_history")
            if isinstance(other, HistoryInfo) and key in other.history and shows(other.history[key]):
                raise Failed(
                    "fig_loss shows the regular autoencoder's losses (ae_history): the card asks for the DAE's, "
                    "from history"
                )
            epochs = len(losses[key])
            if sum(np.asarray(line).shape == (epochs,) for line in curves) >= 2:  # a loss figure, other numbers
                raise Failed(
                    f"fig_loss's lines are not history's {curve} loss (history.history[{key!r}]): it was drawn "
                    "from an earlier training, or from other numbers; run its cell again after dae's last training"
                )
            raise Failed(
                f"fig_loss has no {curve} curve (history.history[{key!r}]): the card asks for both the training "
                "and the validation loss per epoch, so you can see whether the DAE does as well on images it "
                "never trained on"
            )
    return "fig_loss shows the DAE's losses"


CHECKS = {
    "data": check_data,
    "regular_autoencoder": check_regular_autoencoder,
    "reconstructions": check_reconstructions,
    "noisy_data": check_noisy_data,
    "dae_model": check_dae_model,
    "dae_training": check_dae_training,
    "predictions": check_predictions,
    "view_results": check_view_results,
    "loss_curve": check_loss_curve,
}
TASKS = tuple(CHECKS)
