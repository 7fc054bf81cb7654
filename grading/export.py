"""The file format a submission's kernel hands its variables over in, and the trusted reader of it.

`save` runs inside the submission's kernel (the grader's export cell calls it): it writes
`checks.snapshot` of the named variables as one `manifest.json` and one `.npy` file per array. An array of 1 MiB or
more that the kernel's previous export already held, byte for byte (its CRC-32, shape and dtype), is named by
where that export held it ("export-12/0.npy") instead of written again: the checks read x_train and its kin after
every task, and writing and reading 190 MB nine times a notebook was most of the grader's cost on it.
`load` runs in the grader, outside the kernel, and trusts nothing it reads: JSON and numpy without
pickle only, files opened without following links, every size capped, every field type-checked. Whatever the folder
holds, it returns a snapshot or raises BadExport, never another exception (a failure it did not foresee is one too),
and holds at most MAX_TOTAL_BYTES of one job's arrays at a time: an array's header is checked against the bytes present
before anything is made of it, and the arrays an export names from the previous one count against the same total.
A kernel can write anything there; the worst it gets is a snapshot of made-up data, which the
checks judge like any other (models by their weights, on the grader's own images). A name of an earlier array is
looked up among the arrays the grader itself read for the previous export (`Earlier`), so it can only repeat data the
kernel could have written again.
"""

import json
import math
import os
import re
import stat

import numpy as np

from grading.text import MAX_COUNT, number

MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 4 * 2**20
MAX_MANIFEST_CONTAINERS = 10_000  # JSON objects and arrays in one manifest (an honest one has a few per variable)
MAX_ARRAY_BYTES = 1 * 2**30  # one array (x_train in float64 is 376 MB)
MAX_TOTAL_BYTES = (
    3 * 2**30
)  # the arrays one job's grader holds at a time: an export's, with those it names from the last
MAX_ARRAYS = 4096  # arrays one export reads or names (a figure is judged on 200 images at most)
MAX_MODEL_WEIGHTS = 2**24  # of one model's layers (the lab's are 50,992; a level-up deep DAE's 484,944): judged
# in float32 on the grader's images in batches (checks.variables.run_model), so a model's memory there stays under 1 GiB
MAX_LAYERS = 64  # of one model (the lab's has 3, a level-up deep DAE 9)
MAX_LAYER_WEIGHTS = 8  # weight arrays of one layer (a BatchNormalization layer has 4)
MAX_CONFIG_LIST = 16  # numbers in one list of a layer's configuration (checks.snapshots.plain_config keeps as many)
MAX_HEADER_BYTES = 10_000  # of one .npy file's header (numpy's own default bound)
ARRAY_FILE = re.compile(r"\d{1,6}\.npy")
EARLIER_FILE = re.compile(r"export-\d{1,6}/\d{1,6}\.npy")  # an array of the previous export, by where it was
REUSE_BYTES = 2**20  # arrays this large are named rather than written again when unchanged

_previous = {}  # in the kernel: (dtype, shape, CRC-32) -> "export-N/K.npy" of each large array the last export held


class BadExport(Exception):
    """The export is missing, too large or malformed; the message says what."""


# ---------------------------------------------------------------- in the kernel


def save(namespace, names, folder):
    """Write checks.snapshot(namespace, names) into folder (created) as manifest.json and .npy files."""
    global _previous
    os.makedirs(folder, exist_ok=True)
    if not any(name in namespace for name in names):  # nothing to describe: no need to import the checks (and Keras)
        with open(os.path.join(folder, MANIFEST), "w", encoding="utf-8") as f:
            json.dump({}, f)
        _previous = {}  # this export holds no array for the next to name
        return
    import zlib

    import checks

    arrays, held = [], {}

    def array(value):
        """Save one array, or name the previous export's identical one; return its file name."""
        value = np.ascontiguousarray(value)
        key = (value.dtype.str, value.shape, zlib.crc32(value.data.cast("B"))) if value.nbytes >= REUSE_BYTES else None
        if key in _previous:
            held[key] = _previous[key]
            return held[key]
        name = f"{len(arrays)}.npy"
        np.save(os.path.join(folder, name), value, allow_pickle=False)
        arrays.append(name)
        if key is not None:
            held[key] = f"{os.path.basename(os.path.normpath(folder))}/{name}"
        return name

    manifest = {name: encode(value, array, checks) for name, value in checks.snapshot(namespace, names).items()}
    with open(os.path.join(folder, MANIFEST), "w", encoding="utf-8") as f:
        json.dump(manifest, f)
    _previous = held


def encode(value, array, checks):
    """One snapshot value as JSON, its arrays saved through array()."""
    if isinstance(value, np.ndarray):
        return {"kind": "array", "file": array(value)}
    if isinstance(value, checks.ModelInfo):
        return {
            "kind": "model",
            "ident": value.ident,
            "compiled": value.compiled,
            "adam": value.adam,
            "optimizer": value.optimizer,
            "loss": value.loss,
            "steps": value.steps,
            "params": value.params,
            "problem": value.problem,
            "input_shape": None if value.input_shape is None else list(value.input_shape),
            "layers": [
                [layer.kind, layer.config, [array(weight) for weight in layer.weights], layer.ident]
                for layer in value.layers
            ],
        }
    if isinstance(value, checks.FigureInfo):
        return {
            "kind": "figure",
            "rows": [[array(image) for image in row] for row in value.rows],
            "lines": [array(line) for line in value.lines],
        }
    if isinstance(value, checks.HistoryInfo):
        return {
            "kind": "history",
            "history": {k: array(v) for k, v in value.history.items()},
            "params": value.params,
            "model": value.model,
        }
    if isinstance(value, checks.Foreign):
        return {"kind": "foreign", "type": value.type_name}
    return {"kind": "value", "value": value}


# ---------------------------------------------------------------- in the grader


class Earlier:
    """The grader's own copies of the arrays one job's previous export held, by the names save gives them: what the
    next export may name instead of writing again (only the last export's, so at most one export's size is kept)."""

    def __init__(self):
        self.arrays = {}


def load(folder, earlier=None):
    """Read an export written by save (untrusted) back into a snapshot dict, or raise BadExport. earlier: the job's
    Earlier, whose arrays this export may name, and which then holds this export's."""
    import checks

    try:
        directory = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as err:
        raise BadExport(f"the kernel left no export ({err.strerror})") from None
    earlier = earlier if earlier is not None else Earlier()
    try:
        reader = Reader(directory, os.path.basename(os.path.normpath(folder)), earlier.arrays)
        data = {str(name): decode(entry, reader, checks) for name, entry in manifest_of(reader).items()}
    except BadExport:
        raise
    except Exception as err:  # any other failure on what the kernel wrote is the export's: never the grader's
        raise BadExport(f"the export is malformed ({type(err).__name__}: {str(err)[:200]})") from None
    finally:
        os.close(directory)
    earlier.arrays = reader.held
    return data


def manifest_of(reader):
    """The export's manifest, a JSON object of at most MAX_MANIFEST_CONTAINERS objects and arrays (so its depth and
    its entries are bounded too), or raise BadExport."""
    raw = reader.read(MANIFEST, MAX_MANIFEST_BYTES)
    if raw.count(b"{") + raw.count(b"[") > MAX_MANIFEST_CONTAINERS:  # brackets in strings count too: an overestimate
        raise BadExport(f"the export's manifest holds over {MAX_MANIFEST_CONTAINERS:,} JSON objects and arrays")
    manifest = json.loads(raw)
    if not isinstance(manifest, dict):
        raise BadExport("the export's manifest is not a JSON object")
    return manifest


class Reader:
    """Reads regular files from one folder (no links, no paths), within the size limits. Its total starts at the
    bytes of the previous export's arrays, which stay in memory while it reads: naming one adds nothing, reading a
    file adds its size, so the arrays held for one job never pass MAX_TOTAL_BYTES, however many exports name them."""

    def __init__(self, directory, name="", earlier=None):
        self.directory, self.earlier, self.held = directory, earlier or {}, {}  # held: the large arrays read or named
        self.name, self.total = name, sum(value.nbytes for value in self.earlier.values())
        self.count = 0  # arrays read or named

    def read(self, name, limit):
        """The bytes of file `name`, refusing links, special files and anything over limit (or the total)."""
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=self.directory)
        except OSError as err:
            raise BadExport(f"cannot open {name} in the export ({err.strerror})") from None
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise BadExport(f"{name} in the export is not a regular file")
            if info.st_size > limit or self.total + info.st_size > MAX_TOTAL_BYTES:
                raise BadExport(f"{name} in the export is too large ({info.st_size:,} bytes)")
            data = f.read(info.st_size + 1)  # no more than fstat said: a larger buffer is never asked for
        if len(data) != info.st_size:
            raise BadExport(f"{name} in the export changed while it was read")
        self.total += len(data)
        return data

    def array(self, name):
        """A numeric numpy array from file `name` (numpy format, no pickle), or the previous export's array `name`."""
        self.count += 1
        if self.count > MAX_ARRAYS:
            raise BadExport(f"the export names over {MAX_ARRAYS:,} arrays")
        if isinstance(name, str) and EARLIER_FILE.fullmatch(name):
            if name not in self.earlier:
                raise BadExport(f"the export names an array {name!r} that the previous export did not hold")
            self.held[name] = self.earlier[name]
            return self.earlier[name]
        if not isinstance(name, str) or not ARRAY_FILE.fullmatch(name):
            raise BadExport(f"the export names an array file {name!r}: not one it could have written")
        value = npy_array(self.read(name, MAX_ARRAY_BYTES), name)
        if value.nbytes >= REUSE_BYTES:
            value.setflags(write=False)  # judged again after later tasks: no check may change it
            self.held[f"{self.name}/{name}"] = value
            return value
        return value.copy()  # small: a writable copy of its own


def npy_array(data, name):
    """The numeric array in the bytes of a .npy file (format 1.0 or 2.0, no pickle), a read-only view of data; raise
    BadExport unless its header is sound and its shape and dtype account for exactly the bytes after it."""
    import io

    stream = io.BytesIO(data)
    version = np.lib.format.read_magic(stream)
    if version not in ((1, 0), (2, 0)):
        raise BadExport(f"{name} in the export is not in numpy's format 1.0 or 2.0")
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read_header(stream, max_header_size=MAX_HEADER_BYTES)
    if dtype.kind not in "biuf" or dtype.fields is not None or dtype.subdtype is not None or dtype.itemsize == 0:
        raise BadExport(f"{name} in the export is not an array of numbers")
    if not all(isinstance(n, int) and 0 <= n <= MAX_ARRAY_BYTES for n in shape):
        raise BadExport(f"{name} in the export has an impossible shape")
    count = math.prod(shape)
    if count * dtype.itemsize != len(data) - stream.tell():
        raise BadExport(f"{name} in the export holds other than the {count:,} values its header says")
    return np.frombuffer(data, dtype, count, stream.tell()).reshape(shape, order="F" if fortran else "C")


def decode(entry, reader, checks):
    """One manifest entry back as snapshot data, every field checked."""
    kind = entry["kind"]
    if kind == "array":
        return reader.array(entry["file"])
    if kind == "model":
        from checks.snapshots import dense_steps

        if not isinstance(entry["layers"], list) or len(entry["layers"]) > MAX_LAYERS:
            raise BadExport(f"a model has more than {MAX_LAYERS} layers, or its layers are not a list")
        layers = [layer_of(item, reader, checks) for item in entry["layers"]]
        if sum(weight.size for layer in layers for weight in layer.weights) > MAX_MODEL_WEIGHTS:
            raise BadExport(f"a model has more than {MAX_MODEL_WEIGHTS:,} weights: too large to judge")
        shape = entry["input_shape"]
        return checks.ModelInfo(
            whole(entry["ident"]),
            dense_steps(layers),
            compiled=flag(entry["compiled"]),
            adam=flag(entry["adam"]),
            optimizer=text(entry["optimizer"]),
            loss=text(entry["loss"]),
            steps=whole(entry["steps"]),
            params=whole(entry["params"]),
            problem=text(entry["problem"]),
            input_shape=None if shape is None else [whole(n) for n in shape],
            layers=layers,
        )
    if kind == "figure":
        rows = tuple(tuple(reader.array(name) for name in row) for row in entry["rows"])
        return checks.FigureInfo(rows, tuple(reader.array(name) for name in entry["lines"]))
    if kind == "history":
        history = {text(k): reader.array(v) for k, v in entry["history"].items()}
        params = {text(k): v for k, v in entry["params"].items() if number(v) is not None}  # bounded numbers only
        return checks.HistoryInfo(history, params, whole(entry["model"]))
    if kind == "foreign":
        return checks.Foreign(text(entry["type"]))
    if kind == "value":
        value = entry["value"]
        if type(value) is int and number(value) is None:  # a count past text.MAX_COUNT is no number the judge takes
            raise BadExport(f"the export holds an integer past {MAX_COUNT:,}")
        if value is None or isinstance(value, (bool, int, float)) or (isinstance(value, str) and len(value) < 1000):
            return value
        raise BadExport("the export holds a value of an unexpected type")
    raise BadExport(f"the export holds an entry of unknown kind {kind!r}")


def layer_of(item, reader, checks):
    """One exported layer, [type name, configuration, weight files, id], back as a LayerInfo, every field checked."""
    kind, config, weights, ident = item
    if not isinstance(weights, list) or len(weights) > MAX_LAYER_WEIGHTS:
        raise BadExport(f"a layer has more than {MAX_LAYER_WEIGHTS} weight arrays, or they are not a list")
    layer = checks.LayerInfo(
        text(kind), layer_config(config), tuple(reader.array(name) for name in weights), whole(ident)
    )
    if layer.kind == "Dense" and layer.weights:
        units, (kernel, *bias) = layer.config.get("units"), layer.weights
        if kernel.ndim != 2 or kernel.shape[1] != units or any(b.shape != (units,) for b in bias):
            raise BadExport("a Dense layer's weights do not have the shapes of its units")
    return layer


def layer_config(config):
    """A layer's exported configuration if it is plain data of the bounded size checks.snapshots.plain_config writes
    (short keys; None, true/false, finite numbers, short strings, short lists of numbers), else raise ValueError."""
    from checks.snapshots import MAX_CONFIG_ENTRIES

    if not isinstance(config, dict) or len(config) > MAX_CONFIG_ENTRIES:
        raise ValueError("a layer's configuration is not a small JSON object")
    for key, value in config.items():
        numbers = (
            isinstance(value, list)
            and len(value) <= MAX_CONFIG_LIST
            and all(plain_value(v) and v is not None and not isinstance(v, str) for v in value)
        )
        if len(key) > 40 or not (numbers or plain_value(value)):
            raise ValueError(f"a layer's configuration holds {key[:40]!r}: not a plain value")
    return config


def plain_value(value):
    """Whether value is None, a bool, an int, a finite float or a string of at most 100 characters."""
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, (bool, int)) or (isinstance(value, str) and len(value) <= 100)


def whole(value):
    """value if it is an int (not a bool) within text.number's bounds, else raise ValueError."""
    if isinstance(value, float) or number(value, whole=True) is None:
        raise ValueError(f"expected an integer up to {MAX_COUNT:,}, got {type(value).__name__}")
    return value


def text(value):
    """value if it is a short str, else raise ValueError."""
    if not isinstance(value, str) or len(value) > 200:
        raise ValueError(f"expected a short string, got {type(value).__name__}")
    return value


def flag(value):
    """value if it is a bool, else raise ValueError."""
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {type(value).__name__}")
    return value
