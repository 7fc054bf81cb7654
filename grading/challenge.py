"""The class challenge on the grader's side: the hidden set, the in-kernel run of an entry, and its judgement.

An entry is the notebook's `challenge_model` (checks/challenge.py holds the rules and the score). The grader scores it
on a hidden set drawn here, in the grader worker, at grading time: HIDDEN_COUNT of the lab's test images, each bent
by a smooth random warp, with fresh noise at the lab's NOISE_FACTOR, every draw from seeds derived from the grader's secret (the results store's key: HMAC-SHA256 of "challenge"), so a class's re-runs
give the same board and no student can know the seeds. Only the noisy inputs are ever written where a kernel can
read them (`write_inputs`); the clean images stay in this process.

At the challenge's boundary the kernel runs `run_entry` (a real function of this module, called by name like
export.save): it checks that `challenge_model` is a Keras model, counts its weights, reads the evidence of its design
and training that the rules name (checks.challenge.lab_model, training_updates: the same functions the student's check
calls), predicts the inputs and saves the outputs (`0.npy`) and what it found (`manifest.json`) in an export folder.
The grader measures that cell's wall time itself, reads the folder with the export's hardened reader (no pickle,
sizes checked against what it asked for) and scores the outputs here (`judge_entry`, checks.challenge.score). Whatever the kernel wrote, the worst it gets is a
refusal naming the rule, or a score of what it output: nothing of the student's is deserialised or run here.
"""

import functools
import hashlib
import hmac
import json
import math
import os
import secrets

import numpy as np

from checks import challenge as rules
from grading.report import MAX_PSNR, REFUSED, SCORED

TASK, NAME = rules.TASK, rules.NAME
COUNT_VARIABLE = "DAE_CHALLENGE_HIDDEN"  # the hidden set's size where set (the tests use 200); else HIDDEN_COUNT
WARP_PIXELS, WARP_SMOOTHING = (
    2.5,
    4,
)  # a hidden image's smooth warp (deformed): its largest displacement, its smoothness
# Measured on 1,000 test images, with a dense DAE that scored 18.33 dB on them as they are: warped so, it scored
# 17.81 dB, and the perfect lookup of the unwarped images 16.22 dB. Moves of a pixel and left-right flips, tried
# too, cost the DAE 0.5 dB each and the lookup nothing, so the hidden set has neither.
INPUTS = "challenge-inputs.npy"  # in the job's work folder, with a random part: the noisy inputs (never the clean)
OUTPUTS, DAE_OUTPUTS, MANIFEST = "0.npy", "1.npy", "manifest.json"  # in the entry's export folder
MAX_MANIFEST_BYTES = 2**16
# The training budget is counted in the kernel (rules.training_updates: the optimizers' own iteration counts), not
# timed; the grader's clock only bounds it, a safety limit well above what the budget takes (the answer key's entry
# trains its 3,752 updates in 46 s on 2 cores in `make lab`).
INFERENCE_GRACE_S = 30  # the inference cell is stopped this long after MAX_INFERENCE_S (then refused all the same)
PIXELS = 784
# The rules an entry is refused by, each as its row says it (format with the numbers)
MISSING = "missing: the notebook defines no `challenge_model`"
STOPPED = 'missing: the notebook stopped before its check("challenge") call'
NOT_A_MODEL = "not a Keras model: `challenge_model` is a {type}"
RAISED = "the entry raised {error} when it predicted the hidden inputs"
TOO_BIG = f"over the size limit: {{params:,}} parameters, over MAX_PARAMS = {rules.MAX_PARAMS:,}"
TOO_SLOW = f"over the time limit: inference took {{seconds:.1f}} s, over MAX_INFERENCE_S = {rules.MAX_INFERENCE_S} s"
TOO_LONG = (
    f'over the grader\'s time limit on training: the cells before check("challenge") took {{seconds:.0f}} s, over '
    f"MAX_TRAINING_S = {rules.MAX_TRAINING_S} s"
)
OVER_BUDGET = (
    f"over the training budget: {{updates:,}} optimizer updates, over BUDGET_UPDATES = {rules.BUDGET_UPDATES:,}"
)
READY_MADE = "not a design of the student's own: it is the lab's ready-made model from {builder}"
BAD_SHAPE = "output shape wrong: {shape} for inputs of shape {expected}"
BAD_VALUES = "output values outside [0, 1] or not finite ({found})"
UNREADABLE = "its outputs could not be read: {why}"


# ---------------------------------------------------------------- the hidden set (in the grader)


def hidden_count():
    """How many images the hidden set holds: $DAE_CHALLENGE_HIDDEN where set (1 to 10,000), else HIDDEN_COUNT."""
    value = os.environ.get(COUNT_VARIABLE, "")
    return min(max(int(value), 1), 10_000) if value.strip().isdigit() else rules.HIDDEN_COUNT


def derive_seed(secret):
    """The hidden set's seed (hex), from the grader's secret: HMAC-SHA256(secret, "challenge")."""
    return hmac.new(secret, b"challenge", hashlib.sha256).hexdigest()


def settings(secret, reference=False):
    """What one job needs to run the challenge (JSON-ready): the seed, the hidden set's size, and whether the entry is
    the answer key's (whose `dae` is run and scored too)."""
    return {"seed": derive_seed(secret), "count": hidden_count(), "reference": bool(reference)}


def deformed(rows, rng):
    """Rows of 28 x 28 images, each warped by a smooth random displacement field (gaussian-smoothed noise, at most
    WARP_PIXELS a pixel: the garment bends a little, as a photographed one would) drawn from rng; new float32 rows.
    A published image, however it is looked up, is then no longer the answer: the unwarped images score about 1.6 dB
    below what a dense DAE makes of the warped ones' noisy copies (measured, WARP_PIXELS)."""
    from scipy import ndimage

    stack = np.asarray(rows, dtype="float32").reshape(len(rows), 28, 28)
    grid = np.stack(np.meshgrid(np.arange(28), np.arange(28), indexing="ij")).astype("float64")
    out = np.empty_like(stack)
    for index, image in enumerate(stack):
        field = ndimage.gaussian_filter(rng.uniform(-1, 1, (2, 28, 28)), (0, WARP_SMOOTHING, WARP_SMOOTHING))
        field *= WARP_PIXELS / max(float(np.abs(field).max()), 1e-9)
        out[index] = ndimage.map_coordinates(image, grid + field, order=1, mode="constant")
    return np.clip(out, 0, 1).reshape(len(rows), PIXELS)


def draw(x_test, seed, count):
    """(clean, noisy, which test images): the hidden set drawn from x_test's rows by the hex seed."""
    import helpers

    digest = bytes.fromhex(seed)
    pick = np.random.default_rng(int.from_bytes(digest[:16], "big"))
    noise = np.random.default_rng(int.from_bytes(digest[16:], "big"))
    which = pick.choice(len(x_test), size=min(count, len(x_test)), replace=False)
    clean = deformed(x_test[which], pick)
    noisy = helpers.add_noise(clean, helpers.NOISE_FACTOR, noise).astype("float32")
    return clean, noisy, which


@functools.lru_cache(maxsize=2)
def hidden_set(seed, count):
    """(clean, noisy) of the hidden set, from the lab's test images (helpers.load_dataset), read-only; kept per
    process, so a grader worker draws it once for all the entries it grades."""
    import helpers

    _, (test_images, _) = helpers.load_dataset()
    clean, noisy, _ = draw(helpers.prepare_images(test_images), seed, count)
    clean.setflags(write=False)
    noisy.setflags(write=False)
    return clean, noisy


def write_inputs(work, noisy, ids=None):
    """Write the hidden noisy inputs (only those) into the kernel's work folder as a new file (INPUTS with a random
    part: O_EXCL, so nothing the kernel planted there, a link or a FIFO, is opened), readable by the kernel's user
    (ids: its (uid, gid), else by all); return its path (the same inside the sandbox)."""
    while True:
        path = os.path.join(work, INPUTS.replace(".npy", f"-{secrets.token_hex(8)}.npy"))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            break
        except FileExistsError:
            continue
    with os.fdopen(fd, "wb") as file:
        np.save(file, np.ascontiguousarray(noisy, dtype="float32"), allow_pickle=False)
    if ids is not None:
        os.chown(path, *ids)
    return path


def entry_cell(folder, reference=False):
    """The code cell that has the kernel run the entry, saving what it made into folder; its inputs file is named
    when it is written (entry_source)."""
    import nbformat

    return nbformat.v4.new_code_cell(entry_source(None, folder, reference))


def entry_source(inputs, folder, reference=False):
    """The entry cell's code: run_entry on the inputs file, into folder."""
    return (
        f'__import__("grading.challenge").challenge.run_entry(globals(), {str(inputs)!r}, {str(folder)!r}, '
        f"{bool(reference)!r})"
    )


# ---------------------------------------------------------------- in the kernel


def run_entry(namespace, inputs, folder, reference=False):
    """In the kernel: predict the inputs with namespace's `challenge_model` and save the outputs (0.npy) and what was
    found (manifest.json: status, params, type, error) into folder; with reference (the answer key), also the core
    DAE's outputs (1.npy, and "dae" in the manifest). Raises nothing about the entry: what went wrong is in the
    manifest."""
    os.makedirs(folder, exist_ok=True)
    x = np.load(inputs, allow_pickle=False)
    found = predict_into(namespace.get(NAME), NAME in namespace, x, os.path.join(folder, OUTPUTS))
    if found["status"] == "ok":
        found.update(training_evidence(namespace, namespace[NAME]))
    if reference:
        found["dae"] = predict_into(namespace.get("dae"), "dae" in namespace, x, os.path.join(folder, DAE_OUTPUTS))
    with open(os.path.join(folder, MANIFEST), "w", encoding="utf-8") as file:
        json.dump(found, file)


def training_evidence(namespace, model):
    """In the kernel: what the rules read from the entry itself: {updates: its optimizers' updates, lab_model: the lab
    builder it is or holds, or None}; {error} where they cannot be read."""
    try:
        return {"updates": rules.training_updates(namespace, model), "lab_model": rules.lab_model(model)}
    except Exception as err:
        return {"status": "error", "error": f"{type(err).__name__}: {str(err)[:300]} (reading its training)"}


def predict_into(model, defined, x, path):
    """Predict x with model and save the outputs at path; return {status, params, type, error}."""
    if not defined:
        return {"status": "missing"}
    import sys

    keras = sys.modules.get("keras")  # no Keras model exists where Keras was never imported: none is loaded for it
    if keras is None or not isinstance(model, keras.Model):
        return {"status": "not a model", "type": type(model).__name__[:100]}
    try:
        params = int(model.count_params())
        outputs = model.predict(x, batch_size=256, verbose=0)
        outputs = np.asarray(keras.ops.convert_to_numpy(outputs) if not isinstance(outputs, np.ndarray) else outputs)
        if outputs.dtype.kind not in "biuf":
            raise TypeError(f"outputs of dtype {outputs.dtype}")
        np.save(path, outputs, allow_pickle=False)
    except Exception as err:
        return {"status": "error", "error": f"{type(err).__name__}: {str(err)[:300]}"}
    return {"status": "ok", "params": params}


# ---------------------------------------------------------------- judging (in the grader)


def refused(rule, **numbers):
    """A refused entry's result: its rule, with the numbers measured so far."""
    return {"status": REFUSED, "rule": rule, **numbers}


def judge_entry(folder, clean, training_s, inference_s, reference=False):
    """The entry's result from the export folder the kernel wrote (untrusted), scored against the clean hidden images:
    {status, psnr, ssim, params, train_s, infer_s} or {status: refused, rule, ...}; with reference, "dae_psnr",
    "dae_ssim" and "dae_params" too. Never raises on what the kernel wrote."""
    from grading import export

    timed = {"train_s": round(float(training_s), 1), "infer_s": round(float(inference_s), 1)}
    try:
        directory = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as err:
        return refused(UNREADABLE.format(why=f"the kernel left no outputs ({err.strerror})"), **timed)
    try:
        reader = export.Reader(directory, os.path.basename(folder))
        manifest = json.loads(reader.read(MANIFEST, MAX_MANIFEST_BYTES))
        if not isinstance(manifest, dict):
            raise export.BadExport("its manifest is not a JSON object")
        result = {**scored(reader, manifest, OUTPUTS, clean, inference_s), **timed}
        if reference and isinstance(manifest.get("dae"), dict):
            dae = scored(reader, manifest["dae"], DAE_OUTPUTS, clean, 0, entry=False)
            if dae["status"] == SCORED:
                result.update(dae_psnr=dae["psnr"], dae_ssim=dae["ssim"], dae_params=dae["params"])
        return result
    except Exception as err:  # whatever the kernel wrote is the entry's: never the grader's failure
        return refused(UNREADABLE.format(why=f"{type(err).__name__}: {str(err)[:200]}"), **timed)
    finally:
        os.close(directory)


def is_count(value):
    """Whether value is a count: an int, 0 or more (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def scored(reader, found, name, clean, inference_s, entry=True):
    """One model's result from its manifest entry (found) and its outputs file name, against clean; the entry's rules
    on design and budget where entry (the answer key's core DAE, scored beside it, is not one)."""
    from grading import export

    status = found.get("status")
    if status == "missing":
        return refused(MISSING)
    if status == "not a model":
        return refused(NOT_A_MODEL.format(type=str(found.get("type"))[:100]))
    if status == "error":
        return refused(RAISED.format(error=str(found.get("error"))[:400]))
    params = found.get("params")
    if status != "ok" or not is_count(params):
        raise export.BadExport("its manifest says no status or parameter count the grader knows")
    if params > rules.MAX_PARAMS:
        return refused(TOO_BIG.format(params=params), params=params)
    if entry:
        updates, builder = found.get("updates"), found.get("lab_model")
        if not is_count(updates) or (builder is not None and builder not in rules.LAB_MODELS):
            raise export.BadExport("its manifest says no update count or lab model the grader knows")
        if builder is not None:
            return refused(READY_MADE.format(builder=builder), params=params, updates=updates)
        if updates > rules.BUDGET_UPDATES:
            return refused(OVER_BUDGET.format(updates=updates), params=params, updates=updates)
    if inference_s > rules.MAX_INFERENCE_S:
        return refused(TOO_SLOW.format(seconds=inference_s), params=params)
    limit = clean.size * 8 + 4096  # float64 outputs of the right shape, with a header
    outputs = export.npy_array(reader.read(name, limit), name)
    if outputs.shape != clean.shape:
        return refused(BAD_SHAPE.format(shape=tuple(outputs.shape), expected=tuple(clean.shape)), params=params)
    outputs = outputs.astype("float64")
    if not np.isfinite(outputs).all() or outputs.min() < 0 or outputs.max() > 1:
        finite = outputs[np.isfinite(outputs)]
        found_text = "not finite" if finite.size < outputs.size else f"from {finite.min():.3g} to {finite.max():.3g}"
        return refused(BAD_VALUES.format(found=found_text), params=params)
    psnr, ssim = rules.score(clean, outputs)
    result = {"status": SCORED, "psnr": min(psnr, MAX_PSNR), "ssim": ssim, "params": params}
    return {**result, "updates": found["updates"]} if entry else result


# The ladder's rungs too costly to train in the grader, as benchmarks/bench_challenge.py --ladder measured them within
# the budget on a hidden set drawn the same way from a fixed seed (another draw than a class's: hidden sets of 2,000
# differ by a few hundredths of a dB), labelled as measured: (label, psnr, ssim)
MEASURED = (
    ("plain wider network 784-256-784, within the budget (reference, measured)", 18.00, 0.649),
    ("hybrid DAE of level up, within the budget (reference, measured)", 19.08, 0.719),
)


def references(seed, count):
    """The reference rows of the board on the hidden set: [(label, psnr, ssim)] for the noisy input itself and the
    classical denoisers (levelup.classical_denoise's median filter and TV), computed in the grader, and the ladder's
    MEASURED rungs."""
    import levelup

    clean, noisy = hidden_set(seed, count)
    rows = [("noisy input (reference)", *rules.score(clean, noisy))]
    params = {"median filter": {"size": 5}, "TV (Chambolle)": {"weight": 0.2}}
    for method, (denoised, _) in levelup.classical_denoise(noisy, None, params=params).items():
        rows.append((f"{method} (reference)", *rules.score(clean, np.clip(denoised, 0, 1))))
    return [(label, float(psnr), float(ssim)) for label, psnr, ssim in [*rows, *MEASURED]]


def finite(value):
    """value as a float when it is a finite number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)
