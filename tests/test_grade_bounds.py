"""Property tests for the grader's trusted readers: whatever a submission or its kernel hands over, the export reader,
the cell planner and admission each give only their own outcome (a snapshot or BadExport; a plan; a Submission row),
never another exception, within bounded time and memory. Each starts from a valid input and mutates it at every
position; the counts of cases tried are printed (pytest -s) and kept in COUNTS."""

import collections
import copy
import json
import os
import shutil
import tempfile
import time
import tracemalloc
from pathlib import Path

import nbformat
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grading import admit, execute, export

pytestmark = (
    pytest.mark.heavy
)  # the grader's trusted readers, which do not depend on the backend: CI runs it on TensorFlow only

COUNTS = collections.Counter()  # (test, outcome) -> cases
SMALL_ARRAY, SMALL_TOTAL = 2**20, 3 * 2**20  # the reader's limits, scaled down for these tests
MEMORY_SLACK = 16 * 2**20  # the reader's own work on top of the arrays it may hold: the manifest, its parse, headers
FAST = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@pytest.fixture(scope="module", autouse=True)
def say_counts():
    """Print the cases tried, by outcome, after the module's tests."""
    yield
    for (test, outcome), count in sorted(COUNTS.items()):
        print(f"{test}: {count} {outcome}")


@pytest.fixture(autouse=True)
def small_limits(monkeypatch):
    """The reader's size limits scaled down, so that the bound on its memory is cheap to test."""
    monkeypatch.setattr(export, "MAX_ARRAY_BYTES", SMALL_ARRAY)
    monkeypatch.setattr(export, "MAX_TOTAL_BYTES", SMALL_TOTAL)
    monkeypatch.setattr(export, "MAX_ARRAYS", 64)
    monkeypatch.setattr(export, "_previous", {})


# ---------------------------------------------------------------- the export reader


@pytest.fixture(scope="module")
def valid_export(tmp_path_factory):
    """A folder holding a valid export made by export.save: arrays, a model of Dense layers, a figure, a History, values."""
    import helpers

    import keras
    from matplotlib.figure import Figure

    model, _ = helpers.build_autoencoder(input_dim=16, code_size=4)
    fig = Figure()
    for n, ax in enumerate(fig.subplots(2, 2).ravel()):
        ax.imshow(np.full((4, 4), n / 4))
    fig.axes[0].plot([0.3, 0.2, 0.1])
    history = keras.callbacks.History()
    history.history, history.params = {"loss": [0.3, 0.2], "val_loss": [0.31, 0.25]}, {"epochs": 2, "steps": 10}
    history.set_model(model)
    namespace = {
        "x_train": np.random.default_rng(0).random((20, 16), dtype="float32"),
        "labels": np.arange(20),
        "dae": model,
        "fig": fig,
        "history": history,
        "DATASET": "mnist",
        "NOISE_FACTOR": 0.5,
        "seeded": True,
        "nothing": None,
        "junk": object(),
    }
    folder = tmp_path_factory.mktemp("valid") / "export-1"
    export.save(namespace, list(namespace), folder)
    assert set(export.load(folder)) == set(namespace)
    return folder


def paths(value, where=()):
    """Every position in a JSON value, as the keys and indices that lead to it (the root too)."""
    yield where
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, inner in items:
        yield from paths(inner, (*where, key))


def replaced(value, where, new):
    """A copy of the JSON value with the position where replaced by new (or deleted, when new is DELETE)."""
    if not where:
        return new
    value = copy.deepcopy(value)
    *parent, last = where
    holder = value
    for key in parent:
        holder = holder[key]
    if new is DELETE:
        del holder[last]
    else:
        holder[last] = new
    return value


DELETE = object()
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.sampled_from(["0.npy", "1.npy", "99.npy", "export-1/0.npy", "../manifest.json", "array", "model", ""])
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=6),
    max_leaves=20,
)


def read_outcome(folder, earlier=None):
    """'decoded' or 'BadExport' for export.load on folder, with its memory peak held to the bound; any other exception
    fails the test."""
    tracemalloc.start()
    try:
        data = export.load(folder, earlier)
        outcome = "decoded"
        assert isinstance(data, dict)
    except export.BadExport:
        outcome = "BadExport"
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak <= SMALL_TOTAL + MEMORY_SLACK, f"the reader held {peak:,} bytes"
    return outcome


def copied(folder):
    """A scratch copy of an export folder (removed by the caller)."""
    target = Path(tempfile.mkdtemp(prefix="bounds-")) / "export-2"
    shutil.copytree(folder, target, symlinks=True)
    return target


@FAST
@given(data=st.data())
def test_any_manifest_mutation_is_decoded_or_refused(valid_export, data):
    manifest = json.loads((valid_export / export.MANIFEST).read_text())
    where = data.draw(st.sampled_from(list(paths(manifest))))
    new = data.draw(JSON | st.just(DELETE)) if where else data.draw(JSON)
    folder = copied(valid_export)
    try:
        (folder / export.MANIFEST).write_text(json.dumps(replaced(manifest, where, new)))
        COUNTS["manifest mutations", read_outcome(folder)] += 1
    finally:
        shutil.rmtree(folder.parent)


def header(shape, descr, fortran=False, version=(1, 0)):
    """A .npy header (magic, version, dict) saying shape and descr, whatever the data after it."""
    text = repr({"descr": descr, "fortran_order": fortran, "shape": shape}).encode("latin1")
    text += b" " * (63 - (len(text) + 10) % 64) + b"\n"
    size = len(text).to_bytes(2 if version == (1, 0) else 4, "little")
    return b"\x93NUMPY" + bytes(version) + size + text


SHAPES = st.lists(st.integers(min_value=-2, max_value=2**62), max_size=4).map(tuple) | st.sampled_from(
    [(2**40,), (2**20, 2**20), (0, 2**62), (), (10**30,)]
)
DESCRS = st.sampled_from(["<f8", ">f4", "|u1", "<i8", "|b1", "|O", "<U5", "|V8", "<c16", "<M8[s]", "|S3"]) | st.just(
    [("a", "<f4"), ("b", "<i4")]
)


@FAST
@given(data=st.data())
def test_any_npy_file_mutation_is_decoded_or_refused(valid_export, data):
    folder = copied(valid_export)
    try:
        target = folder / data.draw(st.sampled_from(sorted(p.name for p in folder.glob("*.npy"))))
        body = target.read_bytes()
        how = data.draw(st.sampled_from(["lying header", "cut", "grown", "byte", "version", "sparse"]))
        if how == "lying header":
            version = data.draw(st.sampled_from([(1, 0), (2, 0), (3, 0), (9, 9)]))
            raw = header(data.draw(SHAPES), data.draw(DESCRS), data.draw(st.booleans()), version)
            target.write_bytes(raw + b"\0" * data.draw(st.integers(0, 4096)))
        elif how == "cut":
            target.write_bytes(body[: data.draw(st.integers(0, len(body)))])
        elif how == "grown":
            target.write_bytes(body + data.draw(st.binary(min_size=1, max_size=64)))
        elif how == "byte":
            at = data.draw(st.integers(0, len(body) - 1))
            target.write_bytes(body[:at] + bytes([data.draw(st.integers(0, 255))]) + body[at + 1 :])
        elif how == "version":
            target.write_bytes(
                body[:6] + bytes(data.draw(st.tuples(st.integers(0, 255), st.integers(0, 255)))) + body[8:]
            )
        else:  # a header claiming as many values as the (sparse) file could hold, up to past every limit
            size = data.draw(st.sampled_from([SMALL_ARRAY - 128, SMALL_ARRAY + 1, 2**40]))
            raw = header((size // 8,), "<f8")
            with open(target, "wb") as f:
                f.write(raw)
                f.truncate(len(raw) + size // 8 * 8)
        COUNTS[f"npy mutations ({how})", read_outcome(folder)] += 1
    finally:
        shutil.rmtree(folder.parent)


@settings(FAST, max_examples=150)
@given(data=st.data())
def test_any_file_kind_or_name_is_decoded_or_refused(valid_export, data):
    folder = copied(valid_export)
    try:
        names = sorted(p.name for p in folder.iterdir())
        target = folder / data.draw(st.sampled_from(names))
        kind = data.draw(st.sampled_from(["link out", "link in", "dangling", "folder", "fifo", "empty", "repeated"]))
        target.unlink()
        if kind == "link out":
            target.symlink_to("/etc/passwd")
        elif kind == "link in":
            target.symlink_to(folder / names[0])
        elif kind == "dangling":
            target.symlink_to(folder / "missing")
        elif kind == "folder":
            target.mkdir()
        elif kind == "fifo":
            os.mkfifo(target)
        elif kind == "empty":
            target.write_bytes(b"")
        else:  # every array entry names the same file, many times over
            manifest = {
                f"v{n}": {"kind": "array", "file": "0.npy"}
                for n in range(data.draw(st.sampled_from([2, 64, 65, 5000])))
            }
            shutil.copy(valid_export / "0.npy", folder / "0.npy")
            (folder / export.MANIFEST).write_text(json.dumps(manifest))
        COUNTS[f"file kinds ({kind})", read_outcome(folder)] += 1
    finally:
        shutil.rmtree(folder.parent)


@settings(FAST, max_examples=40)
@given(depth=st.integers(1, 200_000), opener=st.sampled_from(["[", '{"a":']))
def test_deep_or_huge_manifests_are_refused(tmp_path_factory, depth, opener):
    folder = tmp_path_factory.mktemp("deep") / "export-1"
    folder.mkdir()
    closer = "]" if opener == "[" else "}"
    (folder / export.MANIFEST).write_text(opener * depth + "1" + closer * depth)
    COUNTS["deep manifests", read_outcome(folder)] += 1


def write_npy(folder, name, nbytes):
    """A .npy file of nbytes of zeros, written sparse: it costs the kernel (and this test's disk) nothing."""
    raw = header((nbytes // 4,), "<f4")
    with open(folder / name, "wb") as f:
        f.write(raw)
        f.truncate(len(raw) + nbytes // 4 * 4)


def test_arrays_named_from_earlier_exports_count_against_one_total(tmp_path, monkeypatch):
    """A kernel that writes its limit of (sparse) arrays in every export and names every array it may from the last:
    the arrays the grader holds for the job never pass MAX_TOTAL_BYTES, however many exports there are."""
    monkeypatch.setattr(export, "REUSE_BYTES", 2**16)
    earlier, held = export.Earlier(), []
    tracemalloc.start()
    try:
        for number in range(1, 11):
            folder = tmp_path / f"export-{number}"
            folder.mkdir()
            manifest = {f"old{n}": {"kind": "array", "file": name} for n, name in enumerate(earlier.arrays)}
            for n in range(2):
                write_npy(folder, f"{n}.npy", SMALL_ARRAY - 256)
                manifest[f"new{n}"] = {"kind": "array", "file": f"{n}.npy"}
            (folder / export.MANIFEST).write_text(json.dumps(manifest))
            try:
                export.load(folder, earlier)
            except export.BadExport:
                pass
            held.append(sum(value.nbytes for value in earlier.arrays.values()))
            shutil.rmtree(folder)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    print(f"arrays held after each hostile export: {held}; the reader's peak {peak:,} bytes")
    assert max(held) <= SMALL_TOTAL and peak <= SMALL_TOTAL + MEMORY_SLACK


# ---------------------------------------------------------------- the cell planner

TASKS = ("data", "noisy_data", "dae_model")
SOURCES = st.lists(
    st.sampled_from(
        [
            'check("data")',
            "checks.check('noisy_data')",
            'check("dae_model"); x = 1',
            "check(name)",
            "%matplotlib inline",
            "def f():\n    return check",
            "(" * 300,
            "\0",
            "    indented = 1\n  check('data')",
            "x = '''unterminated",
            "[" * 2000 + "check('data')",
        ]
    )
    | st.text(max_size=40),
    max_size=4,
).map("\n".join)
CELLS = st.lists(
    st.builds(
        lambda kind, source: nbformat.NotebookNode(cell_type=kind, source=source, metadata={}),
        st.sampled_from(["code", "code", "markdown", "raw", "other"]),
        SOURCES,
    ),
    max_size=12,
)


@FAST
@given(cells=CELLS)
def test_any_cells_are_planned(cells):
    started = time.monotonic()
    plan, unbounded = execute.plan_cells(cells, TASKS)
    assert time.monotonic() - started < 5
    assert set(unbounded) <= set(TASKS) and all(cell is None or cell in cells for cell, _ in plan)
    judged = [task for cell, names in plan if cell is None for task in names]
    assert sorted(judged) == sorted(TASKS)  # every task is judged once, after its check call or at the end
    COUNTS["cell lists planned", f"{len(unbounded)} unbounded"] += 1


def test_cells_after_the_last_check_call_and_huge_cells_are_never_parsed(monkeypatch):
    parsed = []
    real_parse = execute.ast.parse
    monkeypatch.setattr(execute.ast, "parse", lambda source, *a, **k: parsed.append(len(source)) or real_parse(source))
    huge = "x = [" + "1, " * (execute.MAX_CELL_CHARS // 3) + "]"
    cells = [nbformat.v4.new_code_cell(source) for source in ('check("data")', huge, huge + "  # check('data')")]
    started = time.monotonic()
    plan, unbounded = execute.plan_cells(cells, ("data",))
    assert time.monotonic() - started < 1 and parsed == [len('check("data")')]
    assert [cell for cell, _ in plan] == [None] and not unbounded  # nothing after the check call is run either


# ---------------------------------------------------------------- admission

NAMES = st.text(st.characters(blacklist_characters="/\0"), min_size=1, max_size=60).filter(
    lambda name: name not in (".", "..") and len(name.encode("utf-8", "surrogateescape")) < 240
)
KINDS = st.sampled_from(
    ["notebook", "braces", "too large", "empty", "link out", "link in", "folder", "fifo", "folder of"]
)


@settings(FAST, max_examples=150)
@given(entries=st.lists(st.tuples(NAMES, KINDS, st.booleans()), min_size=1, max_size=6))
def test_any_folder_is_admitted_or_refused_row_by_row(monkeypatch, entries):
    monkeypatch.setattr(admit, "MAX_BYTES", 4096)
    monkeypatch.setattr(admit, "MAX_CONTAINERS", 100)
    root = Path(tempfile.mkdtemp(prefix="admit-"))
    try:
        for name, kind, notebook in entries:
            path = root / (name + (".ipynb" if notebook else ""))
            if os.path.lexists(path):
                continue
            make(path, kind, root)
        try:
            found = admit.find(root)
        except admit.UsageError:
            COUNTS["submission folders", "refused as a whole (no notebooks)"] += 1
            return
        assert all(isinstance(sub, admit.Submission) for sub in found.submissions)
        assert len({sub.name for sub in found.submissions}) == len(found.submissions)
        for sub in found.submissions:
            COUNTS["submissions", "refused" if sub.refused else "admitted"] += 1
    finally:
        shutil.rmtree(root)


def make(path, kind, root):
    """A file of the given kind at path."""
    if kind == "notebook":
        path.write_text(nbformat.writes(nbformat.v4.new_notebook()))
    elif kind == "braces":
        path.write_text("[" * 200)
    elif kind == "too large":
        with open(path, "wb") as f:
            f.truncate(2**30)  # sparse
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "link out":
        path.symlink_to("/etc/passwd")
    elif kind == "link in":
        path.symlink_to(root)
    elif kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
        (path / "inner.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook()))


def test_parse_takes_any_bytes():
    for data in (
        b"",
        b"\xff",
        b"[" * 100_000,
        b"{}",
        b'{"nbformat": 4, "cells": {}}',
        json.dumps({"nbformat": "x"}).encode(),
    ):
        with pytest.raises(admit.NotGradable):
            admit.parse(data)


# ---------------------------------------------------------------- attribution


def test_failures_on_what_a_kernel_exported_or_on_its_cells_are_the_submissions_errors(tmp_path, monkeypatch):
    import checks

    folder = tmp_path / "export-1"
    export.save({}, ["x"], folder)
    monkeypatch.setattr(checks, "judge", lambda task, data: 1 / 0)
    assert execute.judge_export(folder, ["data"]) == {
        "data": [
            "error",
            "the grader could not judge this task's exported variables (ZeroDivisionError: division by zero)",
        ]
    }
    folder.mkdir()
    (folder / export.MANIFEST).write_text('{"h": {"kind": "history", "history": [], "params": {}, "model": 1}}')
    status, message = execute.judge_export(folder, ["data"])["data"]
    assert status == "error" and "could not read" in message and "AttributeError" in message
    monkeypatch.setattr(execute, "plan_cells", lambda cells, tasks: [][0])
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('check("data")')])
    job = type("Job", (), {"folder": tmp_path})()  # where the worker notes its stage: no kernel is started for it
    results, error = execute.run(nb, ["data", "dae_model"], job)  # a notebook that could not be planned
    assert error == "" and {status for status, _ in results.values()} == {"error"}
    assert "could not plan" in results["data"][1]


def test_a_run_stopped_by_the_grader_keeps_the_rows_it_decided():
    from grading import run
    from grading.report import Row

    subs = [admit.Submission(name, f"{name}.ipynb") for name in ("a", "b", "c")]
    decided = {"a": Row("a", {"data": ("passed", "")}), "b": None}
    rows = run.ungraded_rest(decided, subs, ["data"])
    assert [row.name for row in rows] == ["a", "b", "c"] and rows[0].results["data"][0] == "passed"
    assert all(row.results["data"][0] == "not graded" and "stopped" in row.note for row in rows[1:])


# Names that clash after text.safe, and names made to look like the hash another clash would give (a file named like
# its classmate's hashed name): name_all must still give every submission a name of its own.
CLASHING = st.sampled_from(["a", "a\u200b", "a\\u200b", "A", "a b", "a  b", "a\u00a0b", "x" * 120, "x" * 121])


@settings(FAST, max_examples=200)
@given(stems=st.lists(CLASHING, min_size=1, max_size=6, unique=True), spoof=st.booleans())
def test_every_submission_gets_a_name_of_its_own(stems, spoof):
    paths = [f"{stem}.ipynb" for stem in stems]
    if spoof:  # a file named as the first clash would rename another: the hashes it could compute from the code
        for salt in ("", "0:", "1:"):
            spoofs = [admit.safe(path.removesuffix(".ipynb"), 100)[:87] for path in paths]
            paths += [f"{s}~{admit.short_hash(f'{salt}{path}')}.ipynb" for s, path in zip(spoofs, paths)]
    paths = list(dict.fromkeys(paths))
    names = [sub.name for sub in admit.name_all([admit.Submission(p, p, b"{}") for p in paths])]
    COUNTS["name_all", "lists named"] += 1
    assert len(set(names)) == len(names), names


def test_every_layer_is_exported_and_a_layers_configuration_is_bounded(tmp_path):
    import keras

    inputs = keras.Input((16,))
    code = keras.layers.BatchNormalization()(keras.layers.Dropout(0.2)(keras.layers.Dense(4, "relu")(inputs)))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x)(keras.layers.Dense(16, "sigmoid")(code)))
    export.save({"dae": model}, ["dae"], tmp_path / "export-1")
    dae = export.load(tmp_path / "export-1")["dae"]
    kinds = [layer.kind for layer in dae.layers]
    assert kinds == ["InputLayer", "Dense", "Dropout", "BatchNormalization", "Dense", "Lambda"]
    assert dae.layers[2].config["rate"] == 0.2 and len(dae.layers[3].weights) == 4
    assert dae.unsupported == ("Lambda",) and dae.rebuilt() is None  # named, never dropped
    manifest = json.loads((tmp_path / "export-1" / export.MANIFEST).read_text())
    dropout = ("dae", "layers", 2, 1)
    for where, value in {
        (*dropout, "rate"): {"nested": 1},  # only plain values
        (*dropout, "noise_shape"): list(range(17)),  # a short list of numbers
        (*dropout, "name"): "x" * 101,
        (*dropout, "seed"): float("nan"),
        dropout: {f"k{n}": n for n in range(25)},
        ("dae", "layers"): [manifest["dae"]["layers"][0]] * (export.MAX_LAYERS + 1),
        ("dae", "layers", 1, 2): ["0.npy"] * (export.MAX_LAYER_WEIGHTS + 1),
    }.items():
        folder = tmp_path / f"export-{len(where)}-{abs(hash(str(value))) % 1000}"
        folder.mkdir()
        for file in (tmp_path / "export-1").iterdir():
            shutil.copy(file, folder / file.name)
        (folder / export.MANIFEST).write_text(json.dumps(replaced(manifest, where, value)))
        with pytest.raises(export.BadExport):
            export.load(folder)
