"""The class challenge on the grader's side: the hidden set, the in-kernel run of an entry, and its judgement.

An entry is the notebook's `challenge_model` (checks/challenge.py holds the rules and the score). The grader scores it
on a hidden set drawn here, in the grader worker, at grading time: HIDDEN_COUNT of the lab's test images, each bent
by a smooth random warp, with fresh noise at the lab's NOISE_FACTOR, every draw from seeds derived from the grader's
secret (the results store's key: HMAC-SHA256 of "challenge"), so a class's re-runs give the same board and no student
can know the seeds. The seed travels only in memory (a Dask task's argument, then the grader worker's standard input:
never a file, folder, environment or argument a kernel can reach); the clean images stay in the grader worker; the
noisy inputs, and nothing else, reach the kernel through its standard input, a pipe only the grader writes
(`hand_over`), so the grader never writes into a folder the kernel can fill or lock. Where a kernel would run as the
grader's own user with no sandbox (`guarded`), it could read the store's key itself: no entry is scored there.

At the challenge's boundary the kernel runs `run_entry` (a real function of this module, called by name like
export.save): it checks that `challenge_model` is a Keras model, counts its weights, reads the evidence of its design
and training that the rules name (checks.challenge.lab_model, training_updates: the same functions the student's check
calls), predicts the inputs and saves the outputs (`0.npy`) and what it found (`manifest.json`) in an export folder.
The grader measures that cell's wall time itself, reads the folder with the export's hardened reader (no pickle, sizes
checked against what it asked for) and scores the outputs here (`judge_entry`, checks.challenge.score) twice: on the
hidden set's public part (the live board a class watches during the lesson) and on the rest (the final ranking:
`split`). Whatever the kernel wrote, the worst it gets is a refusal naming the rule, or a score of what it output:
nothing of the student's is deserialised or run here. A notebook without `challenge_model` skipped the optional
challenge: not attempted (SKIPPED), never refused.
"""

import functools
import hashlib
import hmac
import json
import os
import re
import select
import threading

import numpy as np

from checks import challenge as rules
from grading.report import COUNT, MAX_PSNR, NOT_ATTEMPTED, REFUSED, SCORED
from grading.text import MAX_COUNT, REFERENCE_MARK, number

TASK, NAME = rules.TASK, rules.NAME
COUNT_VARIABLE = "DAE_CHALLENGE_HIDDEN"  # the hidden set's size where set (the tests use 200); else HIDDEN_COUNT
WARP_PIXELS, WARP_SMOOTHING = (
    2.5,
    4,
)  # a hidden image's smooth warp (deformed): its largest displacement, its smoothness
# Measured on 1,000 test images, with a dense DAE that scored 18.33 dB on them as they are: warped so, it scored
# 17.81 dB, and the perfect lookup of the unwarped images 16.22 dB. Moves of a pixel and left-right flips, tried
# too, cost the DAE 0.5 dB each and the lookup nothing, so the hidden set has neither.
# The public board's part of the hidden set (Kaggle's and Codabench's split against tuning to the board): of every 10
# images of the drawn order (random already), the first PUBLIC_TENTHS score the board a class watches during the
# lesson (tools/grade.py --watch), the others the final ranking, grades.csv and the feedback
PUBLIC_TENTHS = 3
PARTS_NUMBERS = ("psnr", "ssim", "public_psnr", "public_ssim")  # a scored entry's scores, final then public
OUTPUTS, DAE_OUTPUTS, MANIFEST = "0.npy", "1.npy", "manifest.json"  # in the entry's export folder
MAX_MANIFEST_BYTES = 2**16
# The training budget is counted in the kernel (rules.training_updates: the optimizers' own iteration counts), not
# timed; the grader's clock only bounds it, a safety limit well above what the budget takes (the answer key's entry
# trains its 3,752 updates in 46 s on 2 cores in `make lab`).
INFERENCE_GRACE_S = 30  # the inference cell is stopped this long after MAX_INFERENCE_S (then refused all the same)
PIXELS = 784
# An entry not attempted (the optional challenge skipped: no `challenge_model` when check("challenge") runs, as the
# handed-out notebook is, or a notebook whose code never names it): no result, "not attempted", never on the board
SKIPPED = {"status": NOT_ATTEMPTED}
# The rules an entry is refused by, each as its row says it (format with the numbers)
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
UNWRITTEN = "its outputs could not be written: the notebook used up its own {limit}"
UNGUARDED = (
    "not scored: graded unsandboxed as the grader's own user, where a kernel can read the grader's secret and so "
    "the hidden set (grade with bubblewrap, or as root: docs/grading-at-scale.md)"
)
CHUNK = 2**16  # bytes of the hidden inputs written into the kernel's standard input at a time


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
    the answer key's (whose `dae` is run and scored too). Kept in memory only: never in a job's folder."""
    return {"seed": derive_seed(secret), "count": hidden_count(), "reference": bool(reference)}


def guarded(box):
    """Whether a kernel on this machine (box: sandbox.probe's) is kept from the grader's processes and files, and so
    from its secret: in bubblewrap's namespaces, or as a user of its own. Not so unsandboxed as the grader's own user:
    there a kernel can read the results store's key and the grader worker's memory."""
    return bool(box.bwrap or box.users)


def for_box(settings_, box):
    """The challenge settings a job on this machine is given: as they are where the kernel is guarded, else without
    the seed, every entry refused (UNGUARDED); None stays None (no challenge)."""
    if settings_ is None or guarded(box):
        return settings_
    return {"refused": UNGUARDED, "reference": settings_["reference"]}


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


def hand_over(fd, noisy):
    """Start writing the hidden noisy inputs (float32 rows, nothing else) into the kernel's standard input (fd: the
    pipe's non-blocking end that only the grader holds, execute.SandboxKernelManager) from a thread of their own;
    return a function that stops the writing and waits for it. A kernel that closed or read its standard input itself
    gets its entry's own error; one that never reads costs a thread until the entry's cell ends."""
    data = memoryview(np.ascontiguousarray(noisy, dtype="<f4").tobytes())
    stop, writable = threading.Event(), select.poll()
    writable.register(fd, select.POLLOUT)

    def feed():
        sent = 0
        while sent < len(data) and not stop.is_set():
            if writable.poll(200):  # ms: POLLOUT, or POLLERR once the kernel's end is closed (then write raises)
                try:
                    sent += os.write(fd, data[sent : sent + CHUNK])
                except BlockingIOError:
                    continue
                except OSError:  # the kernel's end is closed (BrokenPipeError): its entry reads nothing more
                    return

    thread = threading.Thread(target=feed, name="challenge inputs", daemon=True)
    thread.start()

    def finish():
        stop.set()
        thread.join()

    return finish


def entry_cell(folder, reference=False):
    """The code cell that has the kernel run the entry, saving what it made into folder; the count of its inputs is
    set when they are drawn (entry_source)."""
    import nbformat

    return nbformat.v4.new_code_cell(entry_source(0, folder, reference))


def entry_source(count, folder, reference=False):
    """The entry cell's code: run_entry on the count hidden inputs its standard input brings, into folder."""
    return (
        f'__import__("grading.challenge").challenge.run_entry(globals(), {int(count)!r}, {str(folder)!r}, '
        f"{bool(reference)!r})"
    )


# ---------------------------------------------------------------- in the kernel


def run_entry(namespace, count, folder, reference=False, fd=0):
    """In the kernel: predict the count hidden inputs (read from fd, its standard input) with namespace's
    `challenge_model` and save the outputs (0.npy) and what was found (manifest.json: status, params, type, error)
    into folder; with reference (the answer key), also the core DAE's outputs (1.npy, and "dae" in the manifest).
    Raises nothing about the entry: what went wrong is in the manifest."""
    x = read_inputs(fd, count)
    os.makedirs(folder, exist_ok=True)
    found = predict_into(namespace.get(NAME), NAME in namespace, x, os.path.join(folder, OUTPUTS))
    if found["status"] == "ok":
        found.update(training_evidence(namespace, namespace[NAME]))
    if reference:
        found["dae"] = predict_into(namespace.get("dae"), "dae" in namespace, x, os.path.join(folder, DAE_OUTPUTS))
    with open(os.path.join(folder, MANIFEST), "w", encoding="utf-8") as file:
        json.dump(found, file)


def read_inputs(fd, count):
    """In the kernel: the count hidden inputs (rows of PIXELS float32) that the grader writes into fd (hand_over)."""
    data = bytearray(count * PIXELS * 4)
    view, got = memoryview(data), 0
    with os.fdopen(fd, "rb", buffering=0, closefd=False) as source:
        while got < len(data):
            read = source.readinto(view[got:])
            if not read:
                raise EOFError(
                    f"the hidden inputs ended after {got:,} of {len(data):,} bytes: "
                    "the notebook read or closed its kernel's standard input"
                )
            got += read
    return np.frombuffer(data, dtype="<f4").reshape(count, PIXELS)


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


def stopped(cells):
    """The result of an entry whose notebook stopped before its check("challenge") call: refused where some code
    cell names `challenge_model` (the student began an entry), else SKIPPED (a notebook that skipped the challenge and
    stopped earlier is not attempted, as the student's own check says)."""
    named = re.compile(rf"\b{NAME}\b")
    if any(cell.cell_type == "code" and named.search(cell.source) for cell in cells):
        return refused(STOPPED)
    return dict(SKIPPED)


def judge_entry(folder, clean, training_s, inference_s, reference=False):
    """The entry's result from the export folder the kernel wrote (untrusted), scored against the clean hidden images:
    {status, psnr, ssim (the final part's), public_psnr, public_ssim, params, train_s, infer_s}, {status: refused,
    rule, ...} or SKIPPED (no `challenge_model`: not attempted); with reference, the core DAE's scores and weights too
    ("dae_psnr", ...). Never raises on what the kernel wrote."""
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
                result.update({f"dae_{name}": dae[name] for name in (*PARTS_NUMBERS, "params")})
        return result
    except Exception as err:  # whatever the kernel wrote is the entry's: never the grader's failure
        return refused(UNREADABLE.format(why=f"{type(err).__name__}: {str(err)[:200]}"), **timed)
    finally:
        os.close(directory)


def scored(reader, found, name, clean, inference_s, entry=True):
    """One model's result from its manifest entry (found) and its outputs file name, against clean; the entry's rules
    on design and budget where entry (the answer key's core DAE, scored beside it, is not one)."""
    from grading import export

    status = found.get("status")
    if status == "missing":
        return dict(SKIPPED)
    if status == "not a model":
        return refused(NOT_A_MODEL.format(type=str(found.get("type"))[:100]))
    if status == "error":
        return refused(RAISED.format(error=str(found.get("error"))[:400]))
    params = number(found.get("params"), **COUNT)  # a 10**309 or a 1e400 is no count: this raises
    if status != "ok" or params is None:
        raise export.BadExport(
            f"its manifest says no status or parameter count the grader knows (a whole number up to {MAX_COUNT:,})"
        )
    if params > rules.MAX_PARAMS:
        return refused(TOO_BIG.format(params=params), params=params)
    if entry:
        updates, builder = number(found.get("updates"), **COUNT), found.get("lab_model")
        if updates is None or (builder is not None and builder not in rules.LAB_MODELS):
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
    public, private = split(len(clean))
    psnr, ssim = rules.score(clean[private], outputs[private])
    public_psnr, public_ssim = rules.score(clean[public], outputs[public])
    return {
        "status": SCORED,
        "psnr": min(psnr, MAX_PSNR),
        "ssim": ssim,
        "public_psnr": min(public_psnr, MAX_PSNR),
        "public_ssim": public_ssim,
        "params": params,
        **({"updates": found["updates"]} if entry else {}),
    }


def split(count):
    """(public, private): the indices of a hidden set of count images that the public board and the final ranking
    score (PUBLIC_TENTHS of every 10, the rest); with fewer than 2 images, both are all of them."""
    index = np.arange(count)
    if count < 2:
        return index, index
    public = index % 10 < PUBLIC_TENTHS
    return index[public], index[~public]


# The ladder's rungs too costly to train in the grader, as benchmarks/bench_challenge.py --ladder measured them within
# the budget on a hidden set drawn the same way from a fixed seed (another draw than a class's: hidden sets of 2,000
# differ by a few hundredths of a dB), labelled as measured: (label, psnr, ssim)
MEASURED = (
    (f"plain wider network 784-256-784, within the budget, measured {REFERENCE_MARK}", 18.00, 0.649),
    (f"hybrid DAE of level up, within the budget, measured {REFERENCE_MARK}", 19.08, 0.719),
)


@functools.lru_cache(maxsize=2)
def references(seed, count, public=False):
    """The reference rows of the board on the hidden set's final part (public: its public part): [(label, psnr, ssim)]
    for the noisy input itself and the classical denoisers (levelup.classical_denoise's median filter and TV),
    computed in the grader (once per process and part: a live board rewrites the page after every entry), and the
    ladder's MEASURED rungs."""
    clean, noisy = hidden_set(seed, count)
    part = split(count)[0 if public else 1]
    rows = [(label, *rules.score(clean[part], outputs[part])) for label, outputs in reference_outputs(seed, count)]
    return [(label, float(psnr), float(ssim)) for label, psnr, ssim in [*rows, *MEASURED]]


@functools.lru_cache(maxsize=1)
def reference_outputs(seed, count):
    """[(label, outputs)] of the reference rows on the whole hidden set: the noisy input and the classical denoisers."""
    import levelup

    _, noisy = hidden_set(seed, count)
    params = {"median filter": {"size": 5}, "TV (Chambolle)": {"weight": 0.2}}
    denoised = levelup.classical_denoise(noisy, None, params=params)
    return [(f"noisy input {REFERENCE_MARK}", noisy)] + [
        (f"{method} {REFERENCE_MARK}", np.clip(outputs, 0, 1)) for method, (outputs, _) in denoised.items()
    ]
