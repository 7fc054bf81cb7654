"""Snapshots: the plain data a check reads (arrays; a model's Dense layers, weights and compile settings; a
figure's images and lines; a History's numbers), made by `snapshot` in the student's kernel and encoded by the grader
(grading/export.py), so that `judge` never needs the student's objects.
"""

from typing import NamedTuple

from helpers import INPUT_DIM  # the lab's numbers, defined in helpers

import keras
import numpy as np
from matplotlib.figure import Figure

IDENTITY_LAYERS = (
    "InputLayer",
    "Dropout",
    "SpatialDropout1D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "Flatten",
    "ActivityRegularization",
    "Identity",
)  # layers that pass rows of pixels through unchanged at inference: a rebuild leaves them out


REBUILT_LAYERS = ("Dense", "Activation", "ReLU", "BatchNormalization", "Rescaling")  # rebuilt from plain data


MAX_CONFIG_ENTRIES = 24  # of one layer's exported configuration (a Dense layer's has 12)


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
)  # Keras built-ins a rebuild may use (any other name is resolved by keras.activations.get, or refused)


class LayerInfo(NamedTuple):
    """One layer of a model as data: its type name, its configuration (plain JSON-able values, see plain_config), its
    weights (numpy arrays, in Keras's order) and its id."""

    kind: str
    config: dict
    weights: tuple
    ident: int


class ModelInfo:
    """A Keras model as data: every layer (`layers`, LayerInfo in order), its Dense layers (units, activation, kernel,
    bias, layer id) with a following Activation/ReLU folded in, how it was compiled and trained. A ModelInfo made from
    Dense steps alone (`layers` empty) is judged as those Dense layers."""

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
        layers=(),
    ):
        self.ident, self.dense, self.compiled, self.adam = ident, tuple(dense), compiled, adam
        self.input_shape = None if input_shape is None else tuple(input_shape)
        self.optimizer, self.loss, self.steps, self.params = optimizer, loss, steps, params
        self.layers = tuple(layers)
        self.unsupported = tuple(unsupported) + tuple(not_rebuilt(self.layers))
        self.problem = problem
        self._rebuilt = None

    def rebuilt(self):
        """A new Keras model holding these weights (built once), or None when it cannot be."""
        if self._rebuilt is None and not (self.problem or self.unsupported):
            # layers in the order they were made, else reversed (a subclassed model may define its decoder first)
            rebuild = rebuild_layers if self.layers else rebuild_dense
            steps = self.layers or self.dense
            self._rebuilt = rebuild(steps) or rebuild(steps[::-1])
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
    """A model's layers, weights and training settings as a ModelInfo (builds an unbuilt model first)."""
    problem = ""
    if not model.built or any(
        not layer.weights for layer in flat_layers(model) if isinstance(layer, keras.layers.Dense)
    ):
        try:
            model(np.zeros((1, INPUT_DIM), dtype="float32"))
        except Exception as err:
            problem = type(err).__name__
    layers = [describe_layer(layer) for layer in flat_layers(model)]
    dense = dense_steps(layers)
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
        dense,
        compiled=compiled,
        adam=isinstance(optimizer, keras.optimizers.Adam),
        optimizer=type(optimizer).__name__,
        loss=loss_name(model.loss) if compiled else "",
        steps=steps,
        params=params,
        problem=problem,
        input_shape=input_shape,
        layers=layers,
    )


def describe_layer(layer):
    """One Keras layer as a LayerInfo: its type name, plain configuration and weights."""
    config = plain_config(layer)
    if isinstance(layer, (keras.layers.Dense, keras.layers.Activation, keras.layers.ReLU)):
        config["activation"] = activation_name(layer.activation if isinstance(layer, keras.layers.Dense) else layer)
    try:
        weights = tuple(np.asarray(w) for w in layer.get_weights())
    except Exception:
        weights = ()
    return LayerInfo(type(layer).__name__[:100], config, weights, id(layer))


def plain_config(layer):
    """The layer's configuration (get_config) as plain JSON-able data of bounded size: its entries whose values are
    None, a bool, a number, a short string or a short list of numbers, at most MAX_CONFIG_ENTRIES of them."""
    try:
        config = layer.get_config()
    except Exception:
        return {}
    plain = {}
    for key, value in config.items() if isinstance(config, dict) else ():
        if isinstance(value, tuple):
            value = list(value)
        if isinstance(value, list) and len(value) <= 16 and all(plain_number(v) for v in value):
            plain[str(key)[:40]] = value
        elif plain_number(value) or value is None or (isinstance(value, str) and len(value) <= 100):
            plain[str(key)[:40]] = value
        if len(plain) >= MAX_CONFIG_ENTRIES:
            break
    return plain


def plain_number(value):
    """Whether value is a bool, an int or a finite float (what JSON holds exactly)."""
    return isinstance(value, (bool, int)) or (isinstance(value, float) and np.isfinite(value))


def dense_steps(layers):
    """[(units, activation, kernel, bias, layer id)] of the Dense layers among LayerInfo layers, in order, an
    Activation or ReLU layer right after a linear one folded in as its activation."""
    dense = []
    for layer in layers:
        if layer.kind == "Dense":
            units = layer.config.get("units")
            units = units if isinstance(units, int) and not isinstance(units, bool) else 0
            kernel = layer.weights[0] if layer.weights else np.zeros((0, units), "float32")
            bias = layer.weights[1] if len(layer.weights) > 1 else np.zeros(units, kernel.dtype)
            dense.append([units, str(layer.config.get("activation", "linear")), kernel, bias, layer.ident])
        elif layer.kind in ("Activation", "ReLU") and dense and dense[-1][1] == "linear" and folds(layers, layer):
            dense[-1][1] = str(layer.config.get("activation", ""))
    return [tuple(step) for step in dense]


def folds(layers, layer):
    """Whether an Activation/ReLU layer comes right after a Dense layer (so it is that layer's activation)."""
    index = [id(item) for item in layers].index(id(layer))
    return index > 0 and layers[index - 1].kind == "Dense"


def not_rebuilt(layers):
    """The type names of the layers a rebuild from plain data cannot reproduce faithfully, in order."""
    return [layer.kind for layer in layers if layer.kind not in IDENTITY_LAYERS + REBUILT_LAYERS]


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
    """An activation (function, name or layer) as Keras's own serialised name, e.g. 'relu': resolved through
    keras.activations (`get`, then `serialize`), so every spelling Keras treats as relu reads 'relu'. A ReLU or
    Activation layer used as an activation reads as the function it computes (a ReLU with other settings does not)."""
    if isinstance(function, keras.layers.Activation):
        return activation_name(function.activation)
    if isinstance(function, keras.layers.ReLU):
        plain = function.max_value is None and not function.negative_slope and not function.threshold
        return "relu" if plain else "relu_with_settings"
    try:
        name = keras.activations.serialize(keras.activations.get(function))
    except Exception:
        name = None
    if isinstance(name, str):
        return name
    return str(getattr(function, "__name__", type(function).__name__)).lower()


def loss_name(loss):
    """A compiled loss (a name Keras knows, a function or a Loss object) as Keras's canonical function name, resolved
    through keras.losses (`get`, then the function a Loss wraps): 'BinaryCrossentropy', 'bce' and
    keras.losses.BinaryCrossentropy() all read 'binary_crossentropy'. Settings that change the maths (from_logits,
    label smoothing) are kept in the name, so that it no longer resolves to the plain loss."""
    try:
        resolved = keras.losses.get(loss) if isinstance(loss, str) else loss
    except Exception:
        return str(loss)[:100]
    function = getattr(resolved, "fn", resolved)  # a Loss object wraps its function
    name = getattr(function, "__name__", None) or type(resolved).__name__
    settings = getattr(resolved, "_fn_kwargs", None) or {}
    changed = [
        f"{key}={value}"
        for key, value in sorted(settings.items())
        if (key == "from_logits" and value) or (key == "label_smoothing" and value)
    ]
    return str(name).lower() + (f"({', '.join(changed)})" if changed else "")


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
        function = keras_activation(activation)
        if kernel.shape != (width, units) or np.shape(bias) != (units,) or function is None:
            return None
        layer = keras.layers.Dense(units, activation=function)
        x, width = layer(x), units
        layers.append((layer, kernel, bias))
    model = keras.Model(inputs, x)
    for layer, kernel, bias in layers:
        layer.set_weights([np.asarray(kernel, "float32"), np.asarray(bias, "float32")])
    return model


def rebuild_layers(layers):
    """A Keras model of the layers a rebuild reproduces from plain data (LayerInfo, identity layers left out) holding
    their weights, or None when they do not chain on rows of pixels or a setting is not one Keras's built-ins take."""
    layers = [layer for layer in layers if layer.kind not in IDENTITY_LAYERS]
    if not layers or layers[0].kind != "Dense" or not layers[0].weights or np.ndim(layers[0].weights[0]) != 2:
        return None
    width = np.shape(layers[0].weights[0])[0]
    inputs = keras.Input(shape=(width,))
    x, made = inputs, []
    try:
        for info in layers:
            layer, weights, width = rebuilt_layer(info, width)
            if layer is None:
                return None
            x = layer(x)
            made.append((layer, weights))
        model = keras.Model(inputs, x)
        for layer, weights in made:
            if weights:
                layer.set_weights([np.asarray(w, "float32") for w in weights])
    except Exception:  # weights of other shapes than the configuration says, a setting Keras refuses
        return None
    return model


def rebuilt_layer(info, width):
    """(a new Keras layer made from a LayerInfo's plain data, the weights it takes, its output width), or
    (None, None, width) when its configuration is not one this rebuild reproduces."""
    config, weights = info.config, list(info.weights)
    if info.kind == "Dense":
        function = keras_activation(config.get("activation", "linear"))
        units = config.get("units")
        if function is None or len(weights) not in (1, 2) or np.shape(weights[0]) != (width, units):
            return None, None, width
        if len(weights) == 2 and np.shape(weights[1]) != (units,):
            return None, None, width
        return keras.layers.Dense(units, activation=function, use_bias=len(weights) == 2), weights, units
    if info.kind in ("Activation", "ReLU"):
        function = keras_activation(config.get("activation"))
        return (
            (keras.layers.Activation(function), [], width)
            if function is not None and not weights
            else (None, None, width)
        )
    if info.kind == "Rescaling":
        scale, offset = config.get("scale"), config.get("offset", 0.0)
        numbers = all(plain_number(v) and not isinstance(v, bool) for v in (scale, offset))
        return (keras.layers.Rescaling(scale, offset), [], width) if numbers and not weights else (None, None, width)
    if info.kind == "BatchNormalization":
        epsilon, axis = config.get("epsilon"), config.get("axis", -1)
        center, scale = config.get("center", True) is True, config.get("scale", True) is True
        count = 2 + center + scale
        plain = isinstance(epsilon, float) and axis in (-1, 1, [-1], [1])
        if not plain or len(weights) != count or any(np.shape(w) != (width,) for w in weights):
            return None, None, width
        layer = keras.layers.BatchNormalization(epsilon=epsilon, center=center, scale=scale)
        return layer, weights, width
    return None, None, width


def keras_activation(name):
    """The Keras built-in activation a name resolves to (keras.activations.get, inside a try), or None: a name from a
    snapshot is only ever looked up in Keras's own registry of built-ins, never run or imported."""
    if not isinstance(name, str) or name not in ACTIVATIONS:
        try:
            function = keras.activations.get(name) if isinstance(name, str) else None
        except Exception:
            return None
        return function if getattr(function, "__module__", "").startswith("keras.") else None
    return keras.activations.get(name)


def type_name(value):
    """What a snapshot value was in the notebook, for hints: 'ndarray', 'Model', 'Figure', 'list'..."""
    kinds = {ModelInfo: "Model", FigureInfo: "Figure", HistoryInfo: "History"}
    return value.type_name if isinstance(value, Foreign) else kinds.get(type(value), type(value).__name__)
